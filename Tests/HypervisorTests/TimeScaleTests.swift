import Testing

@testable import Hypervisor

@Suite struct TimeScaleTests {
  /// The guest's formula, applied to a second's worth of ticks, gives a second within a few ns,
  /// for TSCs from 100 MHz to 6 GHz (and the odd values calibration produces).
  @Test(arguments: [100_000_000, 1_000_000_000, 2_472_442_000, 2_999_999_999, 3_000_000_000, 4_294_967_296, 6_000_000_000] as [UInt64])
  func oneSecondOfTicksIsOneSecond(tscHz: UInt64) {
    let scale = TimeScale(tscHz: tscHz)
    let ns = scale.nanoseconds(tscHz)
    #expect(ns <= 1_000_000_000 && 1_000_000_000 - ns < 10, "tsc \(tscHz): \(ns) ns, mul \(scale.mul), shift \(scale.shift)")
    #expect(scale.mul >= 1 << 31, "mul keeps 32 significant bits")
  }

  /// The constant the clock starts with (before calibration) is the ratio 1, as made by
  /// `init(ratio:to:)`, and converts exactly.
  @Test func theConstantIdentityIsTheRatioOne() {
    let identity = TimeScale(mul: 1 << 31, shift: 1)
    #expect(identity == TimeScale(ratio: 1, to: 1))
    for ticks: UInt64 in [0, 1, 12_345, 1 << 40, (1 << 62) - 1] { #expect(identity.nanoseconds(ticks) == ticks) }
  }

  @Test func matchesTheExactRatioOverAnHour() {
    let tscHz: UInt64 = 2_472_442_000
    let scale = TimeScale(tscHz: tscHz)
    let hour = tscHz * 3600
    let exact = UInt64(3600) * 1_000_000_000
    let ns = scale.nanoseconds(hour)
    #expect(exact - ns < 20_000, "drift \(exact - ns) ns in an hour")
  }

  /// The hypervisor's own conversions: nanoseconds to TSC ticks and TSC ticks to APIC counts,
  /// within a part in 2^30 of the exact ratio, and saturating instead of trapping or wrapping.
  @Test(arguments: [(1_000_000_000, 100_000_000), (6_601_153_000, 1_000_000_000), (2_618_818_000, 1_000_000_000),
                    (63_070_000, 2_618_818_000), (158_956_000, 6_601_153_000), (1, 1), (3, 7)] as [(UInt64, UInt64)])
  func ratiosAreExactEnoughAndSaturate(numerator: UInt64, denominator: UInt64) {
    let scale = TimeScale(ratio: numerator, to: denominator)
    for value in [0, 1, 999, 1_000_000_000, 123_456_789_012, 3_600_000_000_000] as [UInt64] {
      let exact = value.multipliedFullWidth(by: numerator)
      let expected = denominator.dividingFullWidth(exact).quotient
      let got = scale.scaledSaturating(value)
      let error = got > expected ? got - expected : expected - got
      #expect(error <= expected >> 30 + 1, "\(value) * \(numerator)/\(denominator): \(got), exact \(expected)")
    }
    // Far values a guest may give: never a trap, never a wrap to a small number.
    let far = scale.scaledSaturating(.max)
    #expect(numerator > denominator ? far == .max : far <= .max)
    #expect(scale.scaledSaturating(1 << 63) >= (numerator >= denominator ? 1 << 62 : 0))
  }

  @Test func saturatingAdditionNeverTrapsNorWraps() {
    #expect(UInt64(5).addingSaturating(7) == 12)
    #expect((UInt64.max - 1).addingSaturating(1) == .max)
    #expect((UInt64.max - 1).addingSaturating(2) == .max)
    #expect(UInt64.max.addingSaturating(UInt64.max) == .max)
    #expect((UInt64(1) << 63).addingSaturating(1 << 63) == .max)
  }

  /// A timer armed for `ticks(reaching: d)` ticks finds, when it fires, a clock at or past `d`
  /// (the deadline has passed, nothing re-arms for the same tick), at most a few ns late; far
  /// deadlines are "never" (`UInt64.max`), never a small number.
  @Test(arguments: [100_000_000, 1_000_000_000, 2_472_442_000, 2_622_721_000, 2_999_999_999, 3_000_000_000,
                    4_294_967_296, 4_500_000_000, 6_000_000_000] as [UInt64])
  func deadlinesConvertToATickThatReachesThem(tscHz: UInt64) {
    let toTicks = TimeScale(ratio: tscHz, to: 1_000_000_000)
    let toNanoseconds = TimeScale(tscHz: tscHz)
    var random = SplitMix64(seed: tscHz)
    var deadlines: [UInt64] = [0, 1, 2, 999, 1_000_000, 1_000_000_007, 86_400_000_000_000, 31_536_000_000_000_000,
                               TimeScale.neverNanoseconds - 1]
    for _ in 0..<3000 {
      let bits = random.next() % 62 + 1
      deadlines.append(random.next() & ((1 << bits) - 1))
    }
    // Late by no more than the scales' rounding: a couple of ns and a couple of ticks.
    let lateness = 2 + 2 * ((1_000_000_000 + tscHz - 1) / tscHz)
    for deadline in deadlines {
      let t = TimeScale.ticks(reaching: deadline, toTicks: toTicks, toNanoseconds: toNanoseconds)
      if t == .max { continue }      // beyond 64 bits of ticks: never (checked below)
      let reached = toNanoseconds.nanoseconds(t)
      #expect(reached >= deadline, "tsc \(tscHz): \(deadline) ns -> \(t) ticks -> \(reached) ns")
      #expect(reached - deadline <= lateness, "tsc \(tscHz): \(deadline) ns -> \(t) ticks -> \(reached) ns, too late")
    }
    for far: UInt64 in [TimeScale.neverNanoseconds, 1 << 63, UInt64.max - 1, .max] {
      #expect(TimeScale.ticks(reaching: far, toTicks: toTicks, toNanoseconds: toNanoseconds) == .max)
    }
    // Below 2^62 ns a deadline maps to ticks unless they exceed 64 bits (a TSC above 4 GHz).
    let nearFar = TimeScale.ticks(reaching: TimeScale.neverNanoseconds - 1, toTicks: toTicks, toNanoseconds: toNanoseconds)
    #expect(tscHz > 4_000_000_000 ? nearFar == .max : nearFar != .max)
  }
}
