#if os(none)
import Support

/// The CMOS real-time clock: the wall-clock time at boot, for the guests' shared_info wallclock.
public enum RTC {
  static func register(_ index: UInt8) -> UInt8 {
    hv_outb(0x70, index)
    return hv_inb(0x71)
  }

  /// Seconds since 1970-01-01 00:00 UTC (the RTC keeps UTC under QEMU's default `-rtc base=utc`),
  /// or nil if the clock reads as nonsense.
  public static func secondsSinceEpoch() -> UInt64? {
    // Wait out an update in progress, then read twice until two reads agree.
    var spins = 0
    while register(0x0A) & 0x80 != 0 && spins < 1_000_000 { spins += 1 }
    var previous: [UInt8] = []
    for _ in 0..<5 {
      let now = [register(0x00), register(0x02), register(0x04), register(0x07), register(0x08), register(0x09), register(0x32)]
      if now == previous { break }
      previous = now
    }
    let statusB = register(0x0B)
    let binary = statusB & 0x04 != 0
    let hours24 = statusB & 0x02 != 0
    func decode(_ raw: UInt8) -> Int { binary ? Int(raw) : Int(raw & 0x0F) + Int(raw >> 4) * 10 }
    let second = decode(previous[0]), minute = decode(previous[1])
    var hour = decode(previous[2] & 0x7F)
    if !hours24 && previous[2] & 0x80 != 0 { hour = (hour % 12) + 12 }
    let day = decode(previous[3]), month = decode(previous[4])
    let century = decode(previous[6])
    let year = (century >= 19 && century <= 30 ? century * 100 : 2000) + decode(previous[5])
    guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60 else { return nil }
    return UInt64(daysSinceEpoch(year: year, month: month, day: day)) * 86_400
      + UInt64(hour * 3600 + minute * 60 + second)
  }

  /// Days from 1970-01-01 to a civil date (Howard Hinnant's days_from_civil).
  static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }
}
#endif
