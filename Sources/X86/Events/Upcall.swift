#if os(none)
import Hypervisor

/// Delivery of the event-channel upcall to a PVH/HVM vcpu: the vector the guest chose with
/// HVM_PARAM_CALLBACK_IRQ, injected directly (not through a virtual local APIC: the guest's
/// handler does not EOI it), whenever the vcpu has an upcall pending and can take an interrupt.
///
/// It is posted as an SVM virtual interrupt (V_IRQ with V_IGN_TPR): the CPU itself delivers
/// it as soon as the guest has RFLAGS.IF set and no interrupt shadow, without another exit,
/// and clears V_IRQ when it does. Evaluated before every VMRUN, so it is level-like: while
/// upcall_pending stays set the vector is posted again; once the guest cleared it, a posted
/// but undelivered vector is withdrawn.
enum Upcall {
  // VMCB offset 0x60 (V_TPR … V_INTR_VECTOR), AMD APM vol. 2, table B-1.
  static let virtualIRQ: UInt64 = 1 << 8
  static let priorityMask: UInt64 = 0xF << 16
  static let ignoreTPR: UInt64 = 1 << 20
  static let vectorShift: UInt64 = 32
  static let vectorMask: UInt64 = 0xFF << 32

  static func prepare(_ vcpu: VCPU, _ vmcb: VMCB) {
    let current = vmcb.read64(VMCB.Control.virtualInterrupt)
    var next = current & ~(virtualIRQ | priorityMask | ignoreTPR | vectorMask)
    if let vector = Events.upcallVector(for: vcpu) {
      next |= virtualIRQ | priorityMask | ignoreTPR | (UInt64(vector) << vectorShift)
    }
    if next != current { vmcb.write64(VMCB.Control.virtualInterrupt, next) }
  }
}
#endif
