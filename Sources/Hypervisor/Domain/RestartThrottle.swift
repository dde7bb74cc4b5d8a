/// How often a domain may be restarted (`on_reboot`/`on_crash = "restart"`): at most `limit`
/// restarts within `window` nanoseconds of system time. A guest that reboots or crashes in a
/// loop would otherwise keep a pcpu building domains for ever; past the limit its domain is
/// destroyed instead, with a message, and counts as a domain that did not end cleanly.
///
/// The history goes from each domain to the one restarted from it (`Domain.restartHistory`).
/// Xen leaves this to its toolstack; xl restarts without a limit.
public struct RestartThrottle: Sendable, Equatable {
  public static let limit = 10
  public static let window: UInt64 = 60_000_000_000

  /// System times (ns) of the restarts inside the window, oldest first.
  public private(set) var recent: [UInt64] = []

  public init() {}

  /// Records a restart at `now` and says whether it may go ahead.
  public mutating func allow(at now: UInt64) -> Bool {
    recent.removeAll { now &- $0 >= Self.window }
    guard recent.count < Self.limit else { return false }
    recent.append(now)
    return true
  }
}
