/// A set of pcpus a vcpu may run on: its hard affinity (xl's `cpus`, Xen's `cpu_hard_affinity`).
///
/// One bit per pcpu, pcpus 0…63. "all" is every bit, including pcpus that do not exist: the
/// scheduler intersects with the pcpus it has, as Xen intersects with the cpupool's online mask.
public struct CPUAffinity: Equatable, Sendable {
  public static let maximumPCPUs = 64
  public var bits: UInt64

  public init(bits: UInt64) { self.bits = bits }

  public init(pcpus: some Sequence<Int>) {
    bits = 0
    for pcpu in pcpus { insert(pcpu) }
  }

  /// Every pcpu (xl's "all", and the default when `cpus` is not given).
  public static let all = CPUAffinity(bits: .max)

  public static func only(_ pcpu: Int) -> CPUAffinity { CPUAffinity(pcpus: CollectionOfOne(pcpu)) }

  public func contains(_ pcpu: Int) -> Bool {
    pcpu >= 0 && pcpu < Self.maximumPCPUs && bits & (1 << UInt64(pcpu)) != 0
  }

  public mutating func insert(_ pcpu: Int) {
    if pcpu >= 0 && pcpu < Self.maximumPCPUs { bits |= 1 << UInt64(pcpu) }
  }

  public mutating func remove(_ pcpu: Int) {
    if pcpu >= 0 && pcpu < Self.maximumPCPUs { bits &= ~(1 << UInt64(pcpu)) }
  }

  public var isEmpty: Bool { bits == 0 }
  public var count: Int { bits.nonzeroBitCount }

  /// The pcpus of this set below `pcpuCount`: what is usable on a machine with that many.
  public func limited(to pcpuCount: Int) -> CPUAffinity {
    if pcpuCount >= Self.maximumPCPUs { return self }
    if pcpuCount <= 0 { return CPUAffinity(bits: 0) }
    return CPUAffinity(bits: bits & ((1 << UInt64(pcpuCount)) - 1))
  }

  /// Why a `cpus` string was refused.
  public enum ParseError: Error, Equatable, Sendable {
    /// Nothing is left once every item is applied ("" or "^1" alone, or "1,^1").
    case empty
    /// Not `N`, `N-M`, `all`, or one of those after `^`; `offset` is where the bad item starts.
    case syntax(offset: Int)
    /// A pcpu number of 64 or more.
    case outOfRange(Int)
    /// `M-N` with M > N.
    case reversedRange(Int, Int)
    /// "^all": xl refuses it too.
    case excludesAll
  }

  /// Parses xl's `cpus` syntax: comma-separated items applied left to right to an empty set,
  /// each `N`, `N-M` or `all` (added) or `^N`, `^N-M` (removed). "0-3,^1" is {0, 2, 3}. Spaces
  /// around items are ignored. This is libxl's `update_cpumap_range` without the `nodes:` forms.
  public static func parse(_ text: some Collection<UInt8>) throws(ParseError) -> CPUAffinity {
    let bytes = Array(text)
    var result = CPUAffinity(bits: 0)
    var start = 0
    while start <= bytes.count {
      var end = start
      while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
      try apply(bytes, from: start, to: end, into: &result)
      start = end + 1
    }
    if result.isEmpty { throw .empty }
    return result
  }

  private static func apply(
    _ bytes: [UInt8], from start: Int, to end: Int, into result: inout CPUAffinity
  ) throws(ParseError) {
    var i = start, j = end
    while i < j && isSpace(bytes[i]) { i += 1 }
    while j > i && isSpace(bytes[j - 1]) { j -= 1 }
    if i == j {
      // "" as the whole string means nothing selected; an empty item inside a list is a typo.
      if start == 0 && end == bytes.count { return }
      throw .syntax(offset: start)
    }
    let itemStart = i
    var exclude = false
    if bytes[i] == UInt8(ascii: "^") {
      exclude = true
      i += 1
    }
    if j - i == 3 && bytes[i] == UInt8(ascii: "a") && bytes[i + 1] == UInt8(ascii: "l")
      && bytes[i + 2] == UInt8(ascii: "l")
    {
      if exclude { throw .excludesAll }
      result = .all
      return
    }
    guard let (low, afterLow) = number(bytes, at: i, end: j) else { throw .syntax(offset: itemStart) }
    var high = low
    if afterLow < j {
      guard bytes[afterLow] == UInt8(ascii: "-"),
        let (value, afterHigh) = number(bytes, at: afterLow + 1, end: j), afterHigh == j
      else { throw .syntax(offset: itemStart) }
      high = value
    }
    if low >= maximumPCPUs { throw .outOfRange(low) }
    if high >= maximumPCPUs { throw .outOfRange(high) }
    if low > high { throw .reversedRange(low, high) }
    for pcpu in low...high {
      if exclude { result.remove(pcpu) } else { result.insert(pcpu) }
    }
  }

  /// Decimal digits at `index`: the value and the index after them (at most 9 digits).
  private static func number(_ bytes: [UInt8], at index: Int, end: Int) -> (Int, Int)? {
    var i = index, value = 0
    while i < end, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9"), i - index < 9 {
      value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
      i += 1
    }
    if i == index { return nil }
    if i < end, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { return nil }
    return (value, i)
  }

  private static func isSpace(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
  }
}
