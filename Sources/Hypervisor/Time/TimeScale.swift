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

  /// The scale for a TSC running at `tscHz` ticks per second (nanoseconds per tick, in 32.32 fixed point).
  public init(tscHz: UInt64) {
    precondition(tscHz > 0, "a TSC frequency is needed")
    // Bring the ratio 1e9 / tscHz into [0.5, 1) by shifting the tick count, then take 32 bits of it.
    var shift: Int8 = 0
    var numerator: UInt64 = 1_000_000_000
    var denominator = tscHz
    while denominator > numerator * 2 || denominator > UInt64(UInt32.max) {
      denominator >>= 1
      shift -= 1
    }
    while numerator >= denominator {
      numerator >>= 1
      shift += 1
    }
    // numerator / denominator is now in [0.5, 1): its 32-bit fraction fits in `mul`.
    mul = UInt32(truncatingIfNeeded: (numerator << 32) / denominator)
    self.shift = shift
  }

  /// What a guest computes from a TSC delta.
  public func nanoseconds(_ ticks: UInt64) -> UInt64 {
    let shifted = shift >= 0 ? ticks << UInt64(shift) : ticks >> UInt64(-shift)
    let product = shifted.multipliedFullWidth(by: UInt64(mul))
    return (product.high << 32) | (product.low >> 32)
  }
}
