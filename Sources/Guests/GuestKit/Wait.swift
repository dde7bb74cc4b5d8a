#if os(none)
import GuestSupport

/// How a vcpu sleeps until an event arrives.
public enum WaitMode: UInt8, Sendable {
  /// `sti; hlt`: the hypervisor intercepts HLT with interrupts on and blocks the vcpu.
  case halt
  /// SCHEDOP_block with interrupts off, then `sti` to take the upcall. Relies on the
  /// hypervisor not blocking a vcpu whose upcall is already pending, whatever its RFLAGS.IF
  /// (Swiftvisor checks exactly that; Xen's HVM path looks at IF too, so under Xen only `halt`
  /// and `poll` are free of lost wake-ups).
  case block
  /// SCHEDOP_poll on the given ports (with the wait's deadline as its timeout), then `sti`.
  /// Wakes only for those ports.
  case poll
  /// No sleeping: interrupts on and PAUSE, checking the clock. The only mode that ends at the
  /// deadline even when no event ever comes.
  case spin

  /// `wait=halt|block|poll|spin` on the command line, else `fallback`.
  public static func fromOptions(_ options: CommandLineOptions, default fallback: WaitMode = .halt) -> WaitMode {
    guard let word = options.value("wait") else { return fallback }
    if word.elementsEqual("halt".utf8) { return .halt }
    if word.elementsEqual("block".utf8) { return .block }
    if word.elementsEqual("poll".utf8) { return .poll }
    if word.elementsEqual("spin".utf8) { return .spin }
    return fallback
  }

  public var name: StaticString {
    switch self {
    case .halt: "halt"
    case .block: "block"
    case .poll: "poll"
    case .spin: "spin"
    }
  }
}

public enum Wait {
  /// Waits until `condition()` holds (checked with interrupts off, so an upcall cannot slip in
  /// between the check and the sleep) or system time reaches `deadline` (0: no deadline).
  /// Returns whether the condition held; interrupts are on afterwards.
  ///
  /// The deadline is checked only when the vcpu is awake: in every mode but `.spin`, a vcpu
  /// whose event never comes sleeps until something else wakes it.
  @discardableResult
  public static func until(
    _ mode: WaitMode, deadline: UInt64 = 0, ports: [UInt32] = [], _ condition: () -> Bool
  ) -> Bool {
    while true {
      CPU.disableInterrupts()
      if condition() {
        CPU.enableInterrupts()
        return true
      }
      if deadline != 0 && SystemTime.now() >= deadline {
        CPU.enableInterrupts()
        return false
      }
      switch mode {
      case .halt:
        CPU.enableInterruptsAndHalt()
      case .block:
        Xen.block()
        // The upcall that woke it is taken here, before the loop disables interrupts again.
        CPU.enableInterruptsBriefly()
      case .poll:
        Xen.poll(ports: ports, timeout: deadline)
        CPU.enableInterruptsBriefly()
      case .spin:
        CPU.enableInterrupts()
        CPU.pause()
      }
    }
  }

  /// Interrupts on for `nanoseconds` of system time, spinning: for checking that nothing arrives.
  public static func spin(nanoseconds: UInt64) {
    let end = SystemTime.now() &+ nanoseconds
    CPU.enableInterrupts()
    while SystemTime.now() < end { CPU.pause() }
  }
}
#endif
