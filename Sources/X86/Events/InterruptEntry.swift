/// What the next entry does with an interrupt that is due (the event-channel upcall or a
/// virtual LAPIC vector): `Upcall.deliver` asks, with what the VMCB says about the guest.
///
/// One rule beyond "inject when the guest can take it, else open a window": when the guest's
/// next instruction is HLT, the HLT is completed first (RIP past it, shadow cleared) and the
/// interrupt then wakes it, as an interrupt that came an instant later would. Taken before the
/// HLT instead, its handler runs and returns to the HLT, and the vcpu sleeps through the event
/// it was waiting for. Under QEMU 7.2's TCG that happened: after an exit between `sti` and `hlt`
/// (a kick's IPI) the next VMRUN did not keep the STI shadow the exit reported, so the window
/// opened before the HLT (docs/known-issues.md, "guest-pingpong stops beside guest-fuzz").
///
/// Pure, so the host tests run it.
public enum InterruptEntry: Equatable, Sendable {
  /// In EVENTINJ now; `completingHalt`: after moving RIP past the HLT at RIP.
  case inject(completingHalt: Bool)
  /// Not now: ask for an interrupt window (V_IRQ with the VINTR intercept).
  case window

  /// - Parameters:
  ///   - interruptsEnabled: the guest's RFLAGS.IF.
  ///   - shadow: the VMCB's interrupt shadow (the instruction after STI or MOV SS).
  ///   - injecting: another event is in EVENTINJ already.
  ///   - haltsNext: asked only when it matters: is the instruction at RIP a HLT?
  public static func decide(
    interruptsEnabled: Bool, shadow: Bool, injecting: Bool, haltsNext: () -> Bool
  ) -> InterruptEntry {
    guard interruptsEnabled && !injecting else { return .window }
    if haltsNext() { return .inject(completingHalt: true) }
    return shadow ? .window : .inject(completingHalt: false)
  }
}
