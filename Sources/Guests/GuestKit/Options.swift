/// The guest's command line (`start_info.cmdline_paddr`), as `key=value` words separated by spaces.
/// Pure byte-level parsing, so it builds on the host too.
public struct CommandLineOptions {
  public let bytes: [UInt8]

  public init(_ bytes: [UInt8]) { self.bytes = bytes }

  /// The value of the last `key=value` word with this key, or nil. `key` alone (no `=`) gives "".
  public func value(_ key: StaticString) -> ArraySlice<UInt8>? {
    var found: ArraySlice<UInt8>? = nil
    key.withUTF8Buffer { k in
      for word in bytes.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0a }) {
        let eq = word.firstIndex(of: UInt8(ascii: "=")) ?? word.endIndex
        if word[word.startIndex..<eq].elementsEqual(k) {
          found = eq == word.endIndex ? word[eq...] : word[(eq + 1)...]
        }
      }
    }
    return found
  }

  /// `key=<n>` as a non-negative integer (decimal, or hex with 0x), else `defaultValue`.
  public func integer(_ key: StaticString, default defaultValue: Int) -> Int {
    guard let v = value(key), let n = CommandLineOptions.parseInteger(v) else { return defaultValue }
    return n
  }

  public static func parseInteger(_ digits: ArraySlice<UInt8>) -> Int? {
    var d = digits
    var radix = 10
    if d.count > 2, d[d.startIndex] == UInt8(ascii: "0"),
       d[d.startIndex + 1] == UInt8(ascii: "x") || d[d.startIndex + 1] == UInt8(ascii: "X") {
      radix = 16
      d = d.dropFirst(2)
    }
    guard !d.isEmpty, d.count <= 18 else { return nil }
    var n = 0
    for c in d {
      let v: Int
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): v = Int(c - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): v = Int(c - UInt8(ascii: "a")) + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): v = Int(c - UInt8(ascii: "A")) + 10
      default: return nil
      }
      guard v < radix else { return nil }
      // Int is 32 bits in a 32-bit guest: a number that does not fit is not a number.
      let (shifted, overflow) = n.multipliedReportingOverflow(by: radix)
      let (sum, carry) = shifted.addingReportingOverflow(v)
      guard !overflow && !carry else { return nil }
      n = sum
    }
    return n
  }
}

/// "0x" followed by lowercase hex digits, no leading zeros.
public func hex(_ value: UInt64) -> String {
  "0x" + String(value, radix: 16)
}

/// "0x" followed by exactly `digits` lowercase hex digits.
public func hex(_ value: UInt64, digits: Int) -> String {
  var s = String(value, radix: 16)
  while s.utf8.count < digits { s = "0" + s }
  return "0x" + s
}
