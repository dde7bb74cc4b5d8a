/// Arithmetic on deadlines and periods a guest chose. A guest may pass any 64-bit value, and a
/// Swift overflow trap in the hypervisor ends the whole machine, so a sum that includes such a
/// value saturates: a deadline too far to represent becomes `UInt64.max`, which means "never",
/// instead of trapping, or wrapping to a small number (a deadline in the past, which fires at
/// once and, re-armed, again and again).
extension UInt64 {
  /// `self + other`, or `UInt64.max` when the sum does not fit.
  @inline(__always)
  public func addingSaturating(_ other: UInt64) -> UInt64 {
    let (sum, overflow) = addingReportingOverflow(other)
    return overflow ? .max : sum
  }
}

extension TimeScale {
  /// System time that never comes: 2^62 ns, 146 years after boot (Xen's bound for a timer
  /// delta, STIME_DELTA_MAX, is one less). A deadline at or beyond it is never armed.
  public static let neverNanoseconds: UInt64 = 1 << 62

  /// The tick count at which a clock reaches `nanoseconds`: `toNanoseconds.nanoseconds(t) >=
  /// nanoseconds`, with `t` the first such count or a tick or two later. `toTicks` is the
  /// inverse scale (nanoseconds to ticks); both round down, so converting a deadline with
  /// `toTicks` alone can give a tick whose time is a little before the deadline, and a timer that
  /// fires there, checks the time, finds its deadline still ahead and re-arms for the same tick
  /// fires again at once, until the clock catches up. `UInt64.max` (never) for a deadline at or
  /// beyond `neverNanoseconds`, or when the ticks do not fit in 64 bits.
  public static func ticks(reaching nanoseconds: UInt64, toTicks: TimeScale, toNanoseconds: TimeScale) -> UInt64 {
    guard nanoseconds < neverNanoseconds else { return .max }
    // Below 2^62 ns, `toNanoseconds.nanoseconds` cannot overflow for the counts reached here
    // (the shifted count stays below about 2^63), so it only grows with `t`.
    var t = toTicks.scaledSaturating(nanoseconds)
    for _ in 0..<8 {
      guard t != .max else { return .max }
      let reached = toNanoseconds.nanoseconds(t)
      if reached >= nanoseconds { return t }
      // Each step closes the gap to within the scales' rounding: two or three steps at most.
      t = t.addingSaturating(Swift.max(toTicks.scaledSaturating(nanoseconds - reached), 1))
    }
    return t
  }
}
