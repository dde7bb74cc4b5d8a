import Testing

@testable import Hypervisor

@Suite struct RestartThrottleTests {
  let second: UInt64 = 1_000_000_000

  /// The answers to restarts at `times`, in order.
  func answers(_ throttle: inout RestartThrottle, _ times: [UInt64]) -> [Bool] {
    times.map { throttle.allow(at: $0) }
  }

  @Test func theLimitHoldsWithinTheWindowAndOpensAgainAfterIt() {
    var throttle = RestartThrottle()
    let first = answers(&throttle, (0..<UInt64(RestartThrottle.limit)).map { 100 * second + $0 * second })
    #expect(first.allSatisfy { $0 })
    let tooMany = answers(&throttle, [110 * second, 159 * second])
    #expect(tooMany == [false, false], "restarts past the limit within the window")
    // The first restart leaves the window 60 s after it: one more may go, and then none.
    let later = answers(&throttle, [160 * second, 160 * second + 1])
    #expect(later == [true, false])
  }

  @Test func restartsSpreadOutAreNeverRefused() {
    var throttle = RestartThrottle()
    let all = answers(&throttle, (0..<UInt64(1000)).map { $0 * 7 * second })
    #expect(all.allSatisfy { $0 })
    #expect(throttle.recent.count <= RestartThrottle.limit)
  }

  @Test func aClockAtZeroOrWrappingDoesNotTrap() {
    var throttle = RestartThrottle()
    let all = answers(&throttle, [0, UInt64.max, 5])
    #expect(all == [true, true, true])
  }
}
