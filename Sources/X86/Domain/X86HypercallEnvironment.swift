#if os(none)
import Hypervisor
import XenABI
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
  func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at address: UInt64) -> T? {
    memory.readLE(type, at: address)
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

  func placeSharedInfo(gfn: UInt64) -> XenABI.Errno? {
    vcpu.domain.changeP2M(by: vcpu) { p2m -> XenABI.Errno? in
      do throws(P2M.Failure) {
        try p2m.placeSharedInfo(at: gfn)
        return nil
      } catch {
        return error == .outOfRange ? .EINVAL : .ENOMEM
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

  func initialiseVCPU(_ target: VCPU, context: [UInt8]) -> XenABI.Errno? {
    // struct vcpu_hvm_context (public/hvm/hvm_vcpu.h): mode u32 (0 = 32-bit, 1 = 64-bit), pad,
    // then for 64-bit: rax rcx rdx rbx rsp rbp rsi rdi rip rflags cr0 cr3 cr4 efer (u64 each).
    guard let mode = context.littleEndian(UInt32.self, at: 0) else { return .EFAULT }
    guard mode == 1 else { return .EOPNOTSUPP }              // 32-bit start states: not yet
    func field(_ n: Int) -> UInt64 { context.littleEndian(UInt64.self, at: 8 + n * 8) ?? 0 }
    let cr0 = field(10), cr4 = field(12), efer = field(13)
    // A 64-bit start state must really be long mode: paging, PAE, LME.
    guard cr0 & (1 << 31) != 0, cr0 & 1 != 0, cr4 & (1 << 5) != 0, efer & (1 << 8) != 0 else { return .EINVAL }
    guard target.vmcb != 0 || ArchVCPU.create(target) else { return .ENOMEM }
    ArchVCPU.set64BitStart(target, rip: field(8), rsp: field(4), cr0: cr0, cr3: field(11), cr4: cr4,
                           efer: efer, rflags: field(9),
                           gprs: [(.rcx, field(1)), (.rdx, field(2)), (.rbx, field(3)), (.rbp, field(5)),
                                  (.rsi, field(6)), (.rdi, field(7))])
    GuestRegisters(target)[.rax] = field(0)
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
