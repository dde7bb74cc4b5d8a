#if os(none)
import Hypervisor
import XenABI
import XenPublic
import Support
import Synchronization

/// The arch layer's answer to HypercallEnvironment: guest memory through GuestMemory, p2m
/// changes through the domain's nested page table.
struct X86HypercallEnvironment: HypercallEnvironment {
  // Unowned: an environment lives for one hypercall, while the vcpu and the pcpu outlive it
  // (the run loop holds both), and counting references on every hypercall costs instructions
  // on the path every exit takes.
  unowned(unsafe) let vcpu: VCPU
  let memory: GuestMemory
  unowned(unsafe) let pcpu: PerCPU
  /// When the hypercall started (TSC), for its preemption points.
  let startTSC: UInt64

  /// A hypercall that has run this long stops at its next preemption point.
  static let preemptionBudgetNanoseconds: UInt64 = 1_000_000

  // Borrowed, as they are stored unowned: an owned argument costs a retain in the caller
  // and a release here.
  init(_ vcpu: __shared VCPU, on pcpu: __shared PerCPU) {
    self.vcpu = vcpu
    self.pcpu = pcpu
    startTSC = CPU.rdtsc()
    memory = GuestMemory(vcpu)
  }

  func read(_ guestVirtual: UInt64, count: Int) -> [UInt8]? { memory.read(guestVirtual, count: count) }
  func write(_ guestVirtual: UInt64, _ bytes: [UInt8]) -> Bool { memory.write(guestVirtual, bytes) }
  func readStructure<T: GuestStructure>(_ type: T.Type, at address: UInt64) -> T? {
    memory.readStructure(type, at: address)
  }
  func writeStructure<T: GuestStructure>(_ value: T, at address: UInt64) -> Bool {
    memory.writeStructure(value, at: address)
  }

  var memoryMap: [(address: UInt64, size: UInt64, type: UInt32)] { DomainBuilder.memoryMap(for: vcpu.domain) }

  func pinVCPUInfo(_ target: VCPU, gfn: UInt64) -> UInt64? {
    vcpu.domain.changeP2M(by: vcpu) { p2m -> UInt64? in
      guard target.vcpuInfoGFN == nil, let frame = p2m.hold(gfn) else { return nil }
      target.vcpuInfoGFN = gfn
      target.vcpuInfoFrame = frame
      return frame
    }
  }

  func holdEventFrame(gfn: UInt64) -> UInt64? {
    let domain = vcpu.domain
    return domain.changeP2M(by: vcpu) { p2m -> UInt64? in
      // The reference and its record in one change, as the isolation check expects.
      guard let frame = p2m.hold(gfn) else { return nil }
      domain.eventFrames.append(frame)
      return frame
    }
  }

  func releaseEventFrames(_ frames: [UInt64]) {
    guard !frames.isEmpty else { return }
    let domain = vcpu.domain
    domain.changeP2M(by: vcpu) { p2m in
      for frame in frames {
        guard let index = domain.eventFrames.firstIndex(of: frame) else { continue }
        domain.eventFrames.remove(at: index)
        p2m.dropHold(frame)
      }
    }
  }

  func placeSharedInfo(gfn: UInt64) -> XenABI.Errno? {
    changeP2M { p2m throws(P2M.Failure) in try p2m.placeSharedInfo(at: gfn) }
  }

  func placeGrantFrame(_ index: Int, gfn: UInt64) -> XenABI.Errno? {
    changeP2M { p2m throws(P2M.Failure) in try p2m.placeGrantFrame(index, at: gfn) }
  }

  func growGrantTable(to frames: Int) -> XenABI.Errno? {
    changeP2M { p2m throws(P2M.Failure) in try p2m.growGrantTable(to: frames) }
  }

  /// One change of the domain's p2m under its lock, its failure as the guest hears it: a place
  /// out of range or beyond the domain's limit is -EINVAL, anything else (no frame or table
  /// page to be had) -ENOMEM.
  private func changeP2M(_ change: (inout P2M) throws(P2M.Failure) -> Void) -> XenABI.Errno? {
    vcpu.domain.changeP2M(by: vcpu) { p2m -> XenABI.Errno? in
      do throws(P2M.Failure) {
        try change(&p2m)
        return nil
      } catch {
        return error == .outOfRange || error == .overQuota ? .EINVAL : .ENOMEM
      }
    }
  }

  func populate(gfn: UInt64, order: Int) -> Bool {
    guard DomainBuilder.isOutsideReservedAreas(gfn << 12, bytes: UInt64(4096) << UInt64(order)) else { return false }
    return vcpu.domain.changeP2M(by: vcpu) { p2m in (try? p2m.populate(gfn, order: order)) != nil }
  }

  func release(gfn: UInt64, order: Int) -> Bool {
    vcpu.domain.changeP2M(by: vcpu) { p2m in (try? p2m.release(gfn, order: order)) != nil }
  }

  func initialiseVCPU(_ target: VCPU, context: vcpu_hvm_context) -> XenABI.Errno? {
    guard context.mode == 1 else { return .EOPNOTSUPP }      // VCPU_HVM_MODE_64B; 32-bit start states: not yet
    let start = context.cpu_regs.x86_64
    // A 64-bit start state must really be long mode: paging, PAE, LME.
    guard start.cr0 & (1 << 31) != 0, start.cr0 & 1 != 0, start.cr4 & (1 << 5) != 0, start.efer & (1 << 8) != 0 else { return .EINVAL }
    guard target.vmcb != 0 || ArchVCPU.create(target) else { return .ENOMEM }
    ArchVCPU.set64BitStart(target, rip: start.rip, rsp: start.rsp, cr0: start.cr0, cr3: start.cr3, cr4: start.cr4,
                           efer: start.efer, rflags: start.rflags,
                           gprs: [(.rcx, start.rcx), (.rdx, start.rdx), (.rbx, start.rbx), (.rbp, start.rbp),
                                  (.rsi, start.rsi), (.rdi, start.rdi)])
    GuestRegisters(target)[.rax] = start.rax
    return nil
  }

  /// Interrupts are off in hypervisor code, so a timer cannot interrupt a long hypercall: it
  /// checks the time it has taken instead (1 ms), and whether another pcpu asked for a reschedule.
  func preemptionRequested() -> Bool {
    CPU.rdtsc() &- startTSC > Clock.ticks(fromNanoseconds: Self.preemptionBudgetNanoseconds)
      || pcpu.softirqPending.load(ordering: .acquiring) != 0
      || pcpu.rescheduleRequested.load(ordering: .acquiring)
  }
}
#endif
