/// Xen's conversion from TSC ticks to nanoseconds, as guests apply it (pvclock):
///
///     ns = ((ticks << shift) * mul) >> 32        (a negative shift shifts right)
///
/// `mul` is a 32-bit fraction and `shift` a small exponent, chosen so that `mul` keeps as many
/// significant bits as possible (Xen's `set_time_scale`). The hypervisor publishes the pair in
/// every vcpu_time_info; guests compute system time from the TSC without an exit.
public struct TimeScale: Equatable, Sendable {
  public var mul: UInt32
  public var shift: Int8

  /// A scale given as its two numbers: `TimeScale(mul: 1 << 31, shift: 1)` is the identity.
  /// A constant one makes a statically initialised global (no lazy initialisation check on
  /// every use, which `Clock.now()` would pay on every exit).
  public init(mul: UInt32, shift: Int8) {
    self.mul = mul
    self.shift = shift
  }

  /// The scale for a TSC running at `tscHz` ticks per second (nanoseconds per tick, in 32.32 fixed point).
  public init(tscHz: UInt64) {
    precondition(tscHz > 0, "a TSC frequency is needed")
    self.init(ratio: 1_000_000_000, to: tscHz)
  }

  /// The scale that multiplies by `numerator / denominator` (both non-zero): the hypervisor's
  /// own conversions (nanoseconds to TSC ticks, TSC ticks to APIC timer counts) use it too, so
  /// no exit path divides 128-bit numbers (a software division of a few thousand instructions).
  public init(ratio numerator: UInt64, to denominator: UInt64) {
    precondition(numerator > 0 && denominator > 0, "a ratio of two non-zero numbers")
    // Bring the ratio into [0.5, 1) by powers of two (the exponent is `shift`), growing the
    // smaller number rather than cutting the larger, so no bit of either is lost; then take
    // the ratio's first 32 bits. Boot-time only: the 128-bit division here costs nothing later.
    var shift: Int8 = 0
    var numerator = numerator
    var denominator = denominator
    while numerator >= denominator {
      if denominator <= UInt64.max / 2 { denominator <<= 1 } else { numerator >>= 1 }
      shift += 1
    }
    while numerator < denominator - denominator / 2 {   // numerator < denominator / 2, rounded up
      if numerator <= UInt64.max / 2 { numerator <<= 1 } else { denominator >>= 1 }
      shift -= 1
    }
    // numerator / denominator is now in [0.5, 1): its 32-bit fraction fits in `mul`.
    mul = UInt32(truncatingIfNeeded: denominator.dividingFullWidth((high: numerator >> 32, low: numerator << 32)).quotient)
    self.shift = shift
  }

  /// What a guest computes from a TSC delta.
  public func nanoseconds(_ ticks: UInt64) -> UInt64 {
    // Masking shifts: `shift` is within -63...63 for any ratio `init(ratio:to:)` makes from
    // real clock rates, and the smart shifts' range checks cost every exit a few branches.
    let shifted = shift >= 0 ? ticks &<< UInt64(shift) : ticks &>> UInt64(0 &- Int(shift))
    let product = shifted.multipliedFullWidth(by: UInt64(mul))
    return (product.high << 32) | (product.low >> 32)
  }

  /// `value` times the ratio, rounded down, or `UInt64.max` when the result does not fit: for
  /// values a guest chooses (a deadline in ns), which must never trap or wrap.
  public func scaledSaturating(_ value: UInt64) -> UInt64 {
    // value * mul is at most 96 bits; the result is that shifted right by 32 - shift.
    let product = value.multipliedFullWidth(by: UInt64(mul))
    let right = 32 - Int(shift)
    if right >= 128 { return 0 }
    if right >= 64 { return product.high >> UInt64(right - 64) }
    if right <= 0 {
      // shift >= 32 never comes out of init (the ratio is brought below 2^32 first), but a
      // hand-made scale may: shift left, saturating.
      let left = -right
      guard product.high == 0, left < 64, product.low >> UInt64(64 - left) == 0 || left == 0 else { return .max }
      return product.low << UInt64(left)
    }
    guard product.high >> UInt64(right) == 0 else { return .max }
    return (product.high << UInt64(64 - right)) | (product.low >> UInt64(right))
  }
}
