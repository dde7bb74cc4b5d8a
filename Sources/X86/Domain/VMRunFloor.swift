#if os(none)
import Hypervisor
import Support

/// The floor under every exit: the cost of a bare VMRUN/#VMEXIT round trip on this machine, with
/// no exit handling at all. A throw-away vcpu runs one page of code, `vmmcall; jmp back`, and
/// the hypervisor re-enters it right away, timing each round trip with the TSC. `visor bench`
/// prints hypercall and CPUID costs beside this floor, so the ratio, not the noisy absolute
/// time under emulation, is what is tracked.
public enum VMRunFloor {
  public static func measure(samples: Int) -> UInt64? {
    guard samples > 0 else { return nil }
    let domain = Domain(id: 0x7FF4, name: Array("vmrun-floor".utf8), memoryBytes: 4096)
    domain.p2mPoolLimit = 4
    domain.maximumPages = 1
    let mapped = domain.changeP2M(by: nil) { p2m -> Bool in
      guard p2m.createRoot(), let page = p2m.newFrames(order: 0, as: .guestRAM) else { return false }
      let code: [UInt8] = [0x0F, 0x01, 0xD9, 0xEB, 0xFB]        // 1: vmmcall; jmp 1b
      PhysicalMemory.write(code, to: page)
      do throws(P2M.Failure) { try p2m.map(1, page, .ram) } catch { p2m.discardFrames(page, count: 1); return false }
      return true
    }
    defer { domain.changeP2M(by: nil) { _ = $0.destroy() } }
    guard mapped else { return nil }
    let vcpu = VCPU(id: 0, domain: domain)
    guard ArchVCPU.create(vcpu) else { return nil }
    defer { ArchVCPU.destroy(vcpu) }
    ArchVCPU.setPVHStart(vcpu, .init(entry: 0x1000, startInfo: 0))
    let vmcb = VMCB(address: vcpu.vmcb)
    vmcb.write8(VMCB.Control.tlbControl, 1)
    let host = SVM.hostVMCBForThisCPU
    var rounds = [UInt32](repeating: 0, count: samples)
    for i in 0..<samples {
      let start = CPU.rdtsc()
      hv_vmrun(vcpu.vmcb, vcpu.context, host)
      let end = CPU.rdtsc()
      guard vmcb.exitCode == ExitCode.vmmcall || vmcb.exitCode == ExitCode.intr else { return nil }
      if vmcb.exitCode == ExitCode.vmmcall { vmcb.advanceRIP(by: 3) }
      vmcb.write8(VMCB.Control.tlbControl, 0)
      rounds[i] = UInt32(clamping: end &- start)
      if i % 1024 == 0 { hv_interrupt_window() }
    }
    rounds.sort()
    return UInt64(rounds[samples / 2])
  }
}
#endif
