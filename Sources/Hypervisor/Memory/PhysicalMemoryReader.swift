/// Read-only access to physical memory, as the boot-time parsers need it (ACPI tables, boot
/// loader information). The image implements it over its identity map; host tests implement it
/// over byte fixtures. A read outside what the implementation can reach returns nil, never traps.
public protocol PhysicalMemoryReader {
  func read(_ address: UInt64, count: Int) -> [UInt8]?
}

extension PhysicalMemoryReader {
  public func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at address: UInt64) -> T? {
    guard let bytes = read(address, count: MemoryLayout<T>.size) else { return nil }
    return bytes.littleEndian(T.self, at: 0)
  }
}

extension Array where Element == UInt8 {
  /// Little-endian integer at `offset`, or nil when it does not fit.
  public func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at offset: Int) -> T? {
    let size = MemoryLayout<T>.size
    guard offset >= 0, offset <= count - size else { return nil }
    var value: T = 0
    for i in 0..<size { value |= T(self[offset + i]) << T(8 * i) }
    return value
  }
}
