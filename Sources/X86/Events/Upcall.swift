#if os(none)
import Hypervisor
import XenABI
import Synchronization

/// Delivery of the event-channel upcall to a PVH/HVM vcpu: the vector the guest chose with
/// HVM_PARAM_CALLBACK_IRQ, injected directly (not through a virtual local APIC: the guest's
/// handler does not EOI it), whenever the vcpu has an upcall pending and can take an interrupt.
///
/// Evaluated before every VMRUN, so delivery is level-like: while upcall_pending stays set the
/// vector is offered again. When the guest can take an interrupt now (RFLAGS.IF set, no
/// interrupt shadow, no other event being injected) the vector goes in EVENTINJ; otherwise the
/// vcpu asks for an **interrupt window**: a dummy virtual interrupt (V_IRQ) with the VINTR
/// intercept, so the CPU exits as soon as the guest enables interrupts, and the next entry
/// injects. This is what Xen and KVM do; the CPU never delivers V_IRQ itself, so a posted
/// vector cannot arrive in a state the hypervisor did not look at.
enum Upcall {
  // VMCB offset 0x60 (V_TPR … V_INTR_VECTOR), AMD APM vol. 2, table B-1.
  static let virtualIRQ: UInt64 = 1 << 8
  static let priorityMask: UInt64 = 0xF << 16
  static let ignoreTPR: UInt64 = 1 << 20
  static let vectorMask: UInt64 = 0xFF << 32
  static let interruptFlag: UInt64 = 1 << 9

  /// Before every entry. Nearly every exit finds no upcall pending, no LAPIC request and no
  /// window open: that is decided here, inline in the run loop, and only the rest is a call.
  @inline(__always) static func prepare(_ vcpu: VCPU, _ vmcb: VMCB) {
    if !upcallPending(vcpu) && !vcpu.lapicHasRequests.load(ordering: .acquiring)
      && vmcb.read32(VMCB.Control.interceptMisc1) & VMCB.Intercept1.virtualInterrupt == 0 {
      return
    }
    deliver(vcpu, vmcb)
  }

  /// What to inject, or whether to ask for an interrupt window, when something may be due.
  @inline(never) static func deliver(_ vcpu: VCPU, _ vmcb: VMCB) {
    // The callback vector and the virtual LAPIC's best request compete by vector number (the
    // priority class), as they would in one APIC.
    let upcall = upcallPending(vcpu) ? Events.callbackVector(for: vcpu).map { Int($0) } : nil
    let intercepts = vmcb.read32(VMCB.Control.interceptMisc1)
    let window = VMCB.Intercept1.virtualInterrupt
    // With something due and RFLAGS.IF clear, the answer is the window whatever the LAPIC
    // holds (`InterruptEntry.decide`): when it is open already, as below, nothing changes. A
    // guest that makes its hypercalls with interrupts off (a xenstore read's reply) comes here
    // after each one.
    if upcall != nil && vmcb.rflags & interruptFlag == 0 && intercepts & window != 0 {
      let virtual = vmcb.read64(VMCB.Control.virtualInterrupt)
      if virtual == askingForWindow(virtual) { return }
    }
    let lapic = VirtualLAPIC.deliverable(vcpu)
    // Nearly every exit: nothing to deliver and no window open. The window's V_IRQ is only
    // ever set together with its intercept (below), so there is nothing to clear either.
    if upcall == nil && lapic == nil && intercepts & window == 0 { return }
    let virtual = vmcb.read64(VMCB.Control.virtualInterrupt)
    var wantWindow = false
    let vector = max(upcall ?? -1, lapic ?? -1)
    if vector >= 0 {
      let entry = InterruptEntry.decide(
        interruptsEnabled: vmcb.rflags & interruptFlag != 0,
        shadow: vmcb.read64(VMCB.Control.interruptShadow) & 1 != 0,
        injecting: vmcb.read64(VMCB.Control.eventInjection) & (1 << 31) != 0,
        haltsNext: { haltsNext(vcpu, vmcb) })
      switch entry {
      case .inject(let completingHalt):
        if completingHalt {
          // `sti; hlt`: the interrupt wakes the HLT rather than running just before it and
          // leaving the vcpu asleep (InterruptEntry says why).
          vmcb.advanceRIP(by: 1)
          vmcb.write64(VMCB.Control.interruptShadow, 0)
        }
        if vector == lapic && vector != upcall { VirtualLAPIC.accept(vector, vcpu) }
        vmcb.inject(vector: UInt8(vector), type: .externalInterrupt)
      case .window:
        wantWindow = true
      }
    }
    let nextVirtual = wantWindow
      ? askingForWindow(virtual)
      : virtual & ~(virtualIRQ | priorityMask | ignoreTPR | vectorMask)
    if nextVirtual != virtual { vmcb.write64(VMCB.Control.virtualInterrupt, nextVirtual) }
    let nextIntercepts = wantWindow ? intercepts | window : intercepts & ~window
    if nextIntercepts != intercepts { vmcb.write32(VMCB.Control.interceptMisc1, nextIntercepts) }
  }

  /// The VMCB's V_IRQ word (`virtual`) with the dummy interrupt that opens the window: V_IRQ
  /// at the highest priority, the TPR ignored, no vector.
  @inline(__always) static func askingForWindow(_ virtual: UInt64) -> UInt64 {
    (virtual & ~vectorMask) | virtualIRQ | priorityMask | ignoreTPR
  }

  /// True if the guest's next instruction is HLT (0xF4, which has no prefixes in code that
  /// halts). Read through the guest's page tables; unreadable code is not a HLT.
  static func haltsNext(_ vcpu: VCPU, _ vmcb: VMCB) -> Bool {
    GuestMemory(vcpu).readCodeByte(at: vmcb.codeAddress(is64BitCode: vmcb.is64BitCode)) == 0xF4
  }

  /// True if an interrupt waits for the vcpu (a halted or blocked vcpu must not sleep then).
  static func pending(_ vcpu: VCPU) -> Bool {
    (upcallPending(vcpu) && Events.callbackVector(for: vcpu) != nil) || VirtualLAPIC.deliverable(vcpu) != nil
  }

  /// The guest's `upcall_pending` flag, read straight from its vcpu_info: the cheap first test
  /// before every entry (`Events.callbackVector(for:)` then says where to deliver).
  @inline(__always) static func upcallPending(_ vcpu: VCPU) -> Bool {
    guard let info = Events.vcpuInfo(of: vcpu) else { return false }
    return PhysicalMemory.ownRead8(info + UInt64(XenABI.VCPUInfo.Offset.upcallPending)) != 0
  }

  /// Right after every #VMEXIT: what was injected at the last entry has been delivered, unless
  /// the exit interrupted its delivery (EXITINTINFO valid: the delivery itself caused the
  /// exit), in which case it must be delivered again at the next entry, or it is lost.
  @inline(__always) static func afterExit(_ vmcb: VMCB) {
    let interrupted = vmcb.read64(VMCB.Control.exitInterruptInfo)
    vmcb.write64(VMCB.Control.eventInjection, interrupted & (1 << 31) != 0 ? interrupted : 0)
  }
}
#endif
