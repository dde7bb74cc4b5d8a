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

  @Test func matchesTheExactRatioOverAnHour() {
    let tscHz: UInt64 = 2_472_442_000
    let scale = TimeScale(tscHz: tscHz)
    let hour = tscHz * 3600
    let exact = UInt64(3600) * 1_000_000_000
    let ns = scale.nanoseconds(hour)
    #expect(exact - ns < 20_000, "drift \(exact - ns) ns in an hour")
  }
}
