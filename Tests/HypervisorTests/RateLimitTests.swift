import Testing

@testable import Hypervisor

/// The console budget and the message limiter (`TokenBucket`, `MessageLimiter`), with the time
/// given by the test.
@Suite struct RateLimitTests {
  static let second: UInt64 = 1_000_000_000

  @Test func aFullBucketGivesItsBurstThenItsRate() {
    var bucket = TokenBucket(perSecond: 1000, burst: 4000, now: 0)
    #expect(bucket.take(10_000, now: 0) == 4000)            // the burst, no more
    #expect(bucket.take(1, now: 0) == 0)
    #expect(bucket.take(10_000, now: Self.second / 2) == 500)   // half a second: 500 more
    #expect(bucket.take(10_000, now: Self.second / 2) == 0)
    // A long pause refills it to the burst only.
    #expect(bucket.take(10_000, now: 100 * Self.second) == 4000)
  }

  @Test func whatIsNotTakenStays() {
    var bucket = TokenBucket(perSecond: 1000, burst: 100, now: 0)
    #expect(bucket.take(30, now: 0) == 30)
    #expect(bucket.available(1000, now: 0) == 70)
    #expect(bucket.take(70, now: 0) == 70)
    // Fractions of a token add up: 1 ms is one token at 1000/s, 0.5 ms twice is one too.
    #expect(bucket.take(5, now: 500_000) == 0)
    #expect(bucket.take(5, now: 1_000_000) == 1)
  }

  @Test func overAnyWindowAtMostBurstPlusRate() {
    // Taking at every millisecond for 10 s, wanting far more each time.
    var bucket = TokenBucket(perSecond: 16 * 1024, burst: 128 * 1024, now: 0)
    var total: UInt64 = 0
    for ms in 0...10_000 as ClosedRange<UInt64> { total += bucket.take(1 << 20, now: ms * 1_000_000) }
    let bound = UInt64(128 * 1024 + 10 * 16 * 1024)
    #expect(total <= bound)
    #expect(total >= bound - 16 * 1024 / 1000 - 1)   // within a token or so of the bound
  }

  @Test func aClockGoingBackwardsAddsNothing() {
    var bucket = TokenBucket(perSecond: 1000, burst: 10, now: 5 * Self.second)
    #expect(bucket.take(10, now: 5 * Self.second) == 10)
    #expect(bucket.take(10, now: 1 * Self.second) == 0)
    #expect(bucket.take(10, now: 5 * Self.second + 2_000_000) == 2)
  }

  @Test func extremesNeverTrap() {
    var huge = TokenBucket(nanosecondsPerToken: .max, burst: .max, now: 0)
    #expect(huge.take(.max, now: .max) <= .max)
    var fast = TokenBucket(perSecond: 2_000_000_000, burst: .max, now: 0)     // a token per ns at most
    #expect(fast.nanosecondsPerToken == 1)
    _ = fast.take(.max, now: .max)
    #expect(fast.take(1, now: 0) <= 1)
    var unlimited = TokenBucket(perSecond: 0, burst: 0, now: 0)
    #expect(unlimited.isUnlimited)
    #expect(unlimited.take(.max, now: 0) == .max)
  }

  @Test func messagesAsXensPrintkRatelimit() {
    // Xen's defaults: 10 at once, then one per 5 s.
    var limiter = MessageLimiter(intervalNanoseconds: 5 * Self.second, burst: 10, now: 0)
    for _ in 0..<10 { #expect(limiter.admit(now: 0) == (true, 0)) }
    for _ in 0..<7 { #expect(limiter.admit(now: Self.second) == (false, 0)) }
    #expect(limiter.suppressed == 7)
    // 5 s after the burst: one more, saying 7 were held back.
    #expect(limiter.admit(now: 5 * Self.second) == (true, 7))
    #expect(limiter.admit(now: 5 * Self.second) == (false, 0))
    #expect(limiter.admit(now: 10 * Self.second) == (true, 1))
  }
}
