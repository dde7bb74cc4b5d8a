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
  let npt: NestedPageTable
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
    npt = NestedPageTable(root: vcpu.domain.p2mRoot)
  }

  func read(_ guestVirtual: UInt64, count: Int) -> [UInt8]? { memory.read(guestVirtual, count: count) }
  func write(_ guestVirtual: UInt64, _ bytes: [UInt8]) -> Bool { memory.write(guestVirtual, bytes) }
  func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at address: UInt64) -> T? {
    memory.readLE(type, at: address)
  }

  var memoryMap: [(address: UInt64, size: UInt64, type: UInt32)] { DomainBuilder.memoryMap(for: vcpu.domain) }

  /// True if the hypervisor uses the page at `gfn` itself (a vcpu_info placed there): the
  /// guest may not give it back or map something else over it.
  private func isPinned(_ gfn: UInt64) -> Bool {
    vcpu.domain.vcpus.contains { $0.vcpuInfoGFN == gfn }
  }

  func pinForHypervisor(gfn: UInt64) -> UInt64? {
    guard gfn != vcpu.domain.sharedInfoGFN, let (machine, _) = npt.translate(gfn << 12) else { return nil }
    return machine & ~0xFFF
  }

  /// Frees the RAM page at `gfn`, splitting a 2 MiB mapping first if needed.
  private func dropRAM(at gfn: UInt64) -> Bool {
    guard !isPinned(gfn) else { return false }
    let gpa = gfn << 12
    if npt.translate(gpa) == nil { return true }
    guard npt.splitLarge(covering: gpa) else { return false }
    // The first page of a split 2 MiB block carries the whole block's ownership: freeing it
    // would free all 512 pages while 511 stay mapped in this guest (and then go to others).
    // Refused; the other pages of the block can go (they stay the domain's until destroy).
    guard !npt.headsSplitBlock(gpa) else { return false }
    guard let (machine, owned) = npt.unmapSmall(gpa: gpa) else { return false }
    if owned, Frames.release(machine) { vcpu.domain.framesInUse -= 1 }
    flushGuestTLBs()
    return true
  }

  func isRAM(gfn: UInt64) -> Bool {
    gfn != vcpu.domain.sharedInfoGFN && npt.translate(gfn << 12) != nil
  }

  func mapNewFrame(gfn: UInt64) -> UInt64? {
    guard let frame = Frames.allocate(order: 0) else { return nil }
    PhysicalMemory.zero(frame, count: 4096)
    guard dropRAM(at: gfn), npt.map(gpa: gfn << 12, machine: frame, size: .small, owned: true) else {
      Frames.release(frame)
      return nil
    }
    vcpu.domain.framesInUse += 1
    return frame
  }

  func remapFrame(machine: UInt64, from oldGFN: UInt64?, to gfn: UInt64) -> Bool {
    if let oldGFN, oldGFN == gfn { return true }
    if let oldGFN { _ = npt.unmapSmall(gpa: oldGFN << 12) }
    guard dropRAM(at: gfn) else { return false }
    let ok = npt.map(gpa: gfn << 12, machine: machine, size: .small, owned: true)
    flushGuestTLBs()
    return ok
  }

  func populate(gfn: UInt64, order: Int) -> Bool {
    let gpa = gfn << 12
    guard DomainBuilder.isOutsideReservedAreas(gpa, bytes: UInt64(4096) << UInt64(order)) else { return false }
    for i in 0..<UInt64(1 << order) where npt.translate(gpa + i * 4096) != nil { return false }
    if order == 9, let block = Frames.allocate(order: 9) {
      PhysicalMemory.zero(block, count: 2 << 20)
      guard npt.map(gpa: gpa, machine: block, size: .large, owned: true) else { Frames.release(block); return false }
      vcpu.domain.framesInUse += 512
      return true
    }
    for i in 0..<UInt64(1 << order) {
      guard let frame = Frames.allocate(order: 0) else { return false }
      PhysicalMemory.zero(frame, count: 4096)
      guard npt.map(gpa: gpa + i * 4096, machine: frame, size: .small, owned: true) else { Frames.release(frame); return false }
      vcpu.domain.framesInUse += 1
    }
    return true
  }

  func release(gfn: UInt64, order: Int) -> Bool {
    for i in 0..<UInt64(1 << order) {
      let gpa = (gfn + i) << 12
      guard npt.translate(gpa) != nil, gfn + i != vcpu.domain.sharedInfoGFN else { return false }
      guard dropRAM(at: gfn + i) else { return false }
    }
    return true
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

  /// After a p2m change, every vcpu of the domain must drop its cached translations.
  private func flushGuestTLBs() {
    for other in vcpu.domain.vcpus { other.needsTLBFlush = true }
  }
}
#endif
