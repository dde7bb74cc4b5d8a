#if os(none)
import Hypervisor
import Support

/// A clock of known frequency to calibrate the TSC and the APIC timer against: the HPET when ACPI
/// describes one, else the legacy PIT (channel 2, polled through port 0x61).
public enum ReferenceClock {
  case hpet(base: UInt64)
  case pit

  public var name: StaticString {
    switch self { case .hpet: "HPET"; case .pit: "PIT" }
  }

  /// Runs `during` while `milliseconds` of reference time pass; returns false if the clock
  /// did not advance (a missing or broken device).
  public func wait(milliseconds: UInt64) -> Bool {
    switch self {
    case .hpet(let base): return Self.waitHPET(base: base, milliseconds: milliseconds)
    case .pit: return Self.waitPIT(milliseconds: milliseconds)
    }
  }

  private static func waitHPET(base: UInt64, milliseconds: UInt64) -> Bool {
    let capabilities = hv_mmio_read64(base + 0x00)
    let femtosecondsPerTick = capabilities >> 32
    guard femtosecondsPerTick > 0, femtosecondsPerTick <= 100_000_000 else { return false }
    let config = hv_mmio_read64(base + 0x10)
    hv_mmio_write64(base + 0x10, config | 1)           // ENABLE_CNF: main counter runs
    let ticks = milliseconds * 1_000_000_000_000 / femtosecondsPerTick
    let start = hv_mmio_read64(base + 0xF0)
    var spins: UInt64 = 0
    while hv_mmio_read64(base + 0xF0) &- start < ticks {
      spins += 1
      if spins > 2_000_000_000 { return false }
    }
    return true
  }

  private static func waitPIT(milliseconds: UInt64) -> Bool {
    // Channel 2 in mode 0 counts down once from `count`; OUT2 (port 0x61 bit 5) rises at zero.
    var remaining = milliseconds
    while remaining > 0 {
      let step = min(remaining, 50)                   // 16-bit counter: at most ~54 ms per run
      let count = UInt16(1_193_182 * step / 1000)
      let gate = hv_inb(0x61)
      hv_outb(0x61, (gate & ~0x02) | 0x01)             // speaker off, gate on
      hv_outb(0x43, 0b1011_0000)                        // channel 2, lobyte/hibyte, mode 0
      hv_outb(0x42, UInt8(count & 0xFF))
      hv_outb(0x42, UInt8(count >> 8))
      var spins: UInt64 = 0
      while hv_inb(0x61) & 0x20 == 0 {
        spins += 1
        if spins > 500_000_000 { return false }
      }
      remaining -= step
    }
    return true
  }
}

/// The hypervisor's time: the TSC, calibrated once at boot.
///
/// Conversions multiply by a 32.32 fixed-point scale (`TimeScale`), as Xen's `scale_delta` does:
/// they run on every exit, and a 128-bit division is a software routine of thousands of
/// instructions on x86_64. Nanoseconds since boot use the very scale the guests get in their
/// vcpu_time_info, so the hypervisor's clock and the guests' agree.
public enum Clock {
  // The calibration: set once at boot, before any other pcpu starts, and only read afterwards
  // (on every exit); each read is marked `unsafe` for that reason.
  nonisolated(unsafe) public private(set) static var tscHz: UInt64 = 0
  nonisolated(unsafe) public static var bootTSC: UInt64 = 0
  /// TSC ticks to nanoseconds (what guests compute too).
  nonisolated(unsafe) public private(set) static var nanosecondsPerTick = TimeScale(mul: 1 << 31, shift: 1)
  /// Nanoseconds to TSC ticks, saturating.
  nonisolated(unsafe) public private(set) static var ticksPerNanosecond = TimeScale(mul: 1 << 31, shift: 1)

  /// Sets the calibrated TSC rate and the scales made from it.
  public static func setTSCRate(_ hz: UInt64) {
    unsafe tscHz = max(hz, 1)
    unsafe nanosecondsPerTick = TimeScale(tscHz: tscHz)
    unsafe ticksPerNanosecond = TimeScale(ratio: tscHz, to: 1_000_000_000)
  }

  /// Nanoseconds since boot.
  public static func now() -> UInt64 { unsafe nanoseconds(fromTicks: CPU.rdtsc() &- bootTSC) }

  public static func nanoseconds(fromTicks ticks: UInt64) -> UInt64 {
    guard unsafe tscHz > 0 else { return 0 }
    return unsafe nanosecondsPerTick.nanoseconds(ticks)
  }

  /// TSC ticks in `ns` nanoseconds; `UInt64.max` when that does not fit (a guest's far deadline).
  public static func ticks(fromNanoseconds ns: UInt64) -> UInt64 {
    unsafe ticksPerNanosecond.scaledSaturating(ns)
  }

  /// The system time `now()` gives when the TSC reads `tsc` (0 for a value before boot).
  public static func systemTime(atTSC tsc: UInt64) -> UInt64 {
    unsafe tsc > bootTSC ? nanoseconds(fromTicks: tsc - bootTSC) : 0
  }

  /// The TSC value from which `now()` is at or past system time `ns`, or `UInt64.max` when that
  /// never comes (a deadline a guest set centuries ahead): a timer armed there finds its deadline
  /// passed when it fires, and the sum with `bootTSC` saturates instead of wrapping into the past.
  public static func tsc(atSystemTime ns: UInt64) -> UInt64 {
    let ticks = unsafe TimeScale.ticks(reaching: ns, toTicks: ticksPerNanosecond, toNanoseconds: nanosecondsPerTick)
    return unsafe ticks == .max ? .max : bootTSC.addingSaturating(ticks)
  }
}
#endif
