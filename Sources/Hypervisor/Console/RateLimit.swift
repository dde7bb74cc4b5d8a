/// A token bucket with its time given by the caller (system time in ns), so the host tests drive
/// it: `burst` tokens at most, one more every `nanosecondsPerToken`.
///
/// The credit is kept as time, as Xen's printk_ratelimit keeps it (xen/common/console.c): the
/// nanoseconds since the last take, saturated at `burst` tokens' worth. A take of n tokens
/// spends n times the cost. Nothing here can overflow: every product and sum saturates, and a
/// clock that goes backwards adds nothing.
public struct TokenBucket: Sendable, Equatable {
  public let nanosecondsPerToken: UInt64
  public let burst: UInt64
  /// Saved credit, in ns; at most `capacity`.
  public private(set) var credit: UInt64
  /// The time `credit` was last brought up to date.
  public private(set) var updatedAt: UInt64

  /// Full at `now`. A cost of 0 is "unlimited": every take is granted in full.
  public init(nanosecondsPerToken: UInt64, burst: UInt64, now: UInt64 = 0) {
    self.nanosecondsPerToken = nanosecondsPerToken
    self.burst = burst
    let (capacity, overflow) = nanosecondsPerToken.multipliedReportingOverflow(by: burst)
    credit = overflow ? .max : capacity
    updatedAt = now
  }

  /// `rate` tokens a second, `burst` at once; a rate of 0 is unlimited.
  public init(perSecond rate: UInt64, burst: UInt64, now: UInt64 = 0) {
    self.init(nanosecondsPerToken: rate == 0 ? 0 : max(1_000_000_000 / rate, 1), burst: burst, now: now)
  }

  public var isUnlimited: Bool { nanosecondsPerToken == 0 }

  var capacity: UInt64 {
    let (product, overflow) = nanosecondsPerToken.multipliedReportingOverflow(by: burst)
    return overflow ? .max : product
  }

  private mutating func refill(now: UInt64) {
    if now > updatedAt {
      let (sum, overflow) = credit.addingReportingOverflow(now - updatedAt)
      credit = overflow ? capacity : min(sum, capacity)
      updatedAt = now
    }
  }

  /// How many tokens a take at `now` would get, at most `wanted`.
  public mutating func available(_ wanted: UInt64, now: UInt64) -> UInt64 {
    if isUnlimited { return wanted }
    refill(now: now)
    return min(wanted, credit / nanosecondsPerToken)
  }

  /// Takes up to `wanted` tokens at `now`; returns how many it got.
  @discardableResult
  public mutating func take(_ wanted: UInt64, now: UInt64) -> UInt64 {
    let granted = available(wanted, now: now)
    if !isUnlimited { credit -= granted * nanosecondsPerToken }    // granted * cost <= credit
    return granted
  }
}

/// Xen's printk_ratelimit for the messages a guest can make the hypervisor print: `burst`
/// messages at once, then one every `interval` ns; the first message let through after some were
/// held back says how many (`suppressedBefore`).
public struct MessageLimiter: Sendable, Equatable {
  public private(set) var bucket: TokenBucket
  /// Messages held back since the last one let through.
  public private(set) var suppressed: UInt64 = 0

  public init(intervalNanoseconds: UInt64, burst: UInt64, now: UInt64 = 0) {
    bucket = TokenBucket(nanosecondsPerToken: intervalNanoseconds, burst: burst, now: now)
  }

  /// Whether a message at `now` is printed; if it is, how many were held back before it.
  public mutating func admit(now: UInt64) -> (printed: Bool, suppressedBefore: UInt64) {
    guard bucket.take(1, now: now) == 1 else {
      suppressed &+= 1
      return (false, 0)
    }
    defer { suppressed = 0 }
    return (true, suppressed)
  }
}

/// The limits a guest's output and the messages it causes are held to (docs/console.md, "Limits").
/// Set once at boot from the command line; each domain takes its buckets from here when built.
public enum ConsoleLimits {
  /// Console bytes a domain may print per second (`guest_console_rate=`, 0: unlimited) and at
  /// once (`guest_console_burst=`). A Linux boot prints about 40 KiB through console_io and
  /// the ring together within its first seconds: the burst lets it through unslowed.
  nonisolated(unsafe) public static var bytesPerSecond: UInt64 = 16 * 1024
  nonisolated(unsafe) public static var burstBytes: UInt64 = 128 * 1024
  /// Xen's printk_ratelimit_ms and printk_ratelimit_burst (the same names on the command line):
  /// 10 messages at once, then one per 5 s, per domain.
  nonisolated(unsafe) public static var messageIntervalMilliseconds: UInt64 = 5000
  nonisolated(unsafe) public static var messageBurst: UInt64 = 10
  /// How often the bytes a domain had dropped are reported: one line per domain at most this often.
  public static let dropReportInterval: UInt64 = 1_000_000_000

  public static func consoleBudget(now: UInt64) -> TokenBucket {
    unsafe TokenBucket(perSecond: bytesPerSecond, burst: burstBytes, now: now)
  }

  public static func messageLimiter(now: UInt64) -> MessageLimiter {
    let (interval, overflow) = unsafe messageIntervalMilliseconds.multipliedReportingOverflow(by: 1_000_000)
    return unsafe MessageLimiter(intervalNanoseconds: overflow ? .max : interval, burst: messageBurst, now: now)
  }
}
