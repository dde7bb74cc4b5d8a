import Synchronization

/// Requests into a vcpu's virtual local APIC from anywhere: an IPI another vcpu sends, a self
/// IPI, the LAPIC timer's expiry (`VCPUTimers.expire`). The request sets an IRR bit and
/// `VCPU.lapicHasRequests` under the target's `lapicLock`, then kicks the target through the
/// events' platform (wake it if it halted, IPI its pcpu if it runs), so the entry after the
/// kick injects it (X86/Events/Upcall.swift; docs/vlapic.md).
public enum LocalAPICDelivery {
  /// Posts a fixed interrupt. Illegal vectors (0–15) and a hardware-disabled APIC drop it.
  public static func post(_ vector: Int, to target: VCPU) {
    let taken = target.lapicLock.withLock { () -> Bool in
      guard target.lapic.request(vector) else { return false }
      target.lapicHasRequests.store(true, ordering: .releasing)
      return true
    }
    if taken { unsafe Events.platform?.kick(target) }
  }

  /// The LAPIC timer of `vcpu` expired: its LVT vector as a fixed interrupt, unless the LVT is
  /// masked or the APIC is disabled (the count goes on either way).
  public static func timerExpired(_ vcpu: VCPU) {
    let vector = vcpu.lapicLock.withLock { vcpu.lapic.timerVector }
    if let vector { post(vector, to: vcpu) }
  }
}
