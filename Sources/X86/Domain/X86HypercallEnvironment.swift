#if os(none)
import Hypervisor
import XenABI
import XenPublic
import Support
import Synchronization

/// The arch layer's answer to HypercallEnvironment: guest memory through GuestMemory, p2m
/// changes through the domain's nested page table.
// @safe: its unsafe stored property (`borrowedDomain`) is the caller's domain, which outlives
// the environment (see below).
@safe struct X86HypercallEnvironment: HypercallEnvironment {
  // Unowned: an environment lives for one hypercall, while the vcpu and the pcpu outlive it
  // (the run loop holds both), and counting references on every hypercall costs instructions
  // on the path every exit takes.
  unowned(unsafe) let caller: VCPU
  /// The calling vcpu, read from its unowned reference (see above), so that the protocol's
  /// requirement is met by a safe property.
  var vcpu: VCPU { unsafe caller }
  /// The caller's domain, kept unretained as the vcpu is: read through the vcpu, every use
  /// retained and released the vcpu on the way. An `Unmanaged`, not an `unowned(unsafe)`
  /// property: lending that one out (`borrowedDomain`) was still a retain and a release.
  let borrowedDomain: Unmanaged<Domain>
  var domain: Domain { unsafe borrowedDomain.takeUnretainedValue() }   // unsafe: see above
  let memory: GuestMemory
  /// The caller's mode when it made the call (Exits.hypercall): 64-bit code is native.
  let abi: GuestABI
  unowned(unsafe) let pcpu: PerCPU
  /// When the hypercall started (TSC), for its preemption points.
  let startTSC: UInt64

  /// A hypercall that has run this long stops at its next preemption point.
  static let preemptionBudgetNanoseconds: UInt64 = 1_000_000

  // Borrowed, as they are stored unowned: an owned argument costs a retain in the caller
  // and a release here.
  init(_ vcpu: __shared VCPU, on pcpu: __shared PerCPU, abi: GuestABI) {
    unsafe self.caller = vcpu
    unsafe self.borrowedDomain = Unmanaged.passUnretained(vcpu.domain)   // unsafe: see `borrowedDomain`
    self.abi = abi
    unsafe self.pcpu = pcpu
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

  var memoryMap: [(address: UInt64, size: UInt64, type: UInt32)] { DomainBuilder.memoryMap(for: unsafe vcpu.domain) }

  func pinVCPUInfo(_ target: VCPU, gfn: UInt64) -> UInt64? {
    unsafe vcpu.domain.changeP2M(by: vcpu) { p2m -> UInt64? in
      guard target.vcpuInfoGFN == nil, let frame = p2m.hold(gfn) else { return nil }
      target.vcpuInfoGFN = gfn
      target.vcpuInfoFrame = frame
      return frame
    }
  }

  func holdEventFrame(gfn: UInt64) -> UInt64? {
    let domain = unsafe vcpu.domain
    return domain.changeP2M(by: vcpu) { p2m -> UInt64? in
      // The reference and its record in one change, as the isolation check expects.
      guard let frame = p2m.hold(gfn) else { return nil }
      domain.eventFrames.append(frame)
      return frame
    }
  }

  func releaseEventFrames(_ frames: [UInt64]) {
    guard !frames.isEmpty else { return }
    let domain = unsafe vcpu.domain
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
    unsafe vcpu.domain.changeP2M(by: vcpu) { p2m -> XenABI.Errno? in
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
    return unsafe vcpu.domain.changeP2M(by: vcpu) { p2m in (try? p2m.populate(gfn, order: order)) != nil }
  }

  func release(gfn: UInt64, order: Int) -> Bool {
    unsafe vcpu.domain.changeP2M(by: vcpu) { p2m in (try? p2m.release(gfn, order: order)) != nil }
  }

  func initialiseVCPU(_ target: VCPU, context: vcpu_hvm_context) -> XenABI.Errno? {
    if context.mode == 0 { return initialise32(target, context: context) }   // VCPU_HVM_MODE_32B
    guard context.mode == 1 else { return .EINVAL }          // VCPU_HVM_MODE_64B; nothing else, as Xen
    let start = unsafe context.cpu_regs.x86_64   // unsafe: a C union's member, the one `mode` says was written
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

  /// VCPU_HVM_MODE_32B: the segments and registers `StartState32` checked, then what this
  /// hypervisor must refuse to run (VMRUN would fail on it, ending the domain, where Xen's
  /// hvm_efer_valid and CR4 checks answer -EINVAL): CR4 bits the CPUID policy does not offer,
  /// EFER bits other than SCE, LME and NXE, paging without protection, NW without CD, LME with
  /// paging but without PAE. EFER.LMA follows LME with paging on.
  private func initialise32(_ target: VCPU, context: vcpu_hvm_context) -> XenABI.Errno? {
    let start: StartState32
    do throws(XenABI.Errno) { start = try StartState32(context) } catch { return error }
    let cr0 = UInt64(start.cr0), cr4 = UInt64(start.cr4)
    let paging = cr0 & (1 << 31) != 0, longModeEnabled = start.efer & (1 << 8) != 0
    guard cr4 & ~ControlRegisterExits.guestValidBits(target) == 0,
          start.efer & ~UInt64((1 << 0) | (1 << 8) | (1 << 10) | (1 << 11)) == 0,
          !paging || cr0 & 1 != 0,
          cr0 & (1 << 29) == 0 || cr0 & (1 << 30) != 0,
          !(paging && longModeEnabled) || cr4 & (1 << 5) != 0 else { return .EINVAL }
    guard target.vmcb != 0 || ArchVCPU.create(target) else { return .ENOMEM }
    func segment(_ s: StartState32.Segment) -> VMCB.SegmentValue {
      VMCB.SegmentValue(selector: 0, attributes: s.attributes, limit: s.limit, base: UInt64(s.base))
    }
    let efer = (start.efer & ~UInt64(1 << 10)) | (paging && longModeEnabled ? 1 << 10 : 0)
    ArchVCPU.set32BitStart(target, cs: segment(start.cs), ds: segment(start.ds), ss: segment(start.ss),
                           es: segment(start.es), tr: segment(start.tr),
                           eip: start.eip, esp: start.esp, cr0: cr0, cr3: UInt64(start.cr3), cr4: cr4,
                           efer: efer, eflags: start.eflags,
                           gprs: [(.rax, UInt64(start.eax)), (.rcx, UInt64(start.ecx)), (.rdx, UInt64(start.edx)),
                                  (.rbx, UInt64(start.ebx)), (.rbp, UInt64(start.ebp)), (.rsi, UInt64(start.esi)),
                                  (.rdi, UInt64(start.edi))])
    return nil
  }

  /// Interrupts are off in hypervisor code, so a timer cannot interrupt a long hypercall: it
  /// checks the time it has taken instead (1 ms), and whether another pcpu asked for a reschedule.
  func preemptionRequested() -> Bool {
    unsafe CPU.rdtsc() &- startTSC > Clock.ticks(fromNanoseconds: Self.preemptionBudgetNanoseconds)
      || pcpu.softirqPending.load(ordering: .acquiring) != 0
      || pcpu.rescheduleRequested.load(ordering: .acquiring)
  }
}
#endif
