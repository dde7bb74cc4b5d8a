// Byte fixtures for the parser tests: a fake physical memory and little-endian builders.

import Hypervisor
@testable import X86

/// Physical memory made of separate chunks. A read is served only when it lies entirely inside
/// one chunk, so a parser that reads past what it should gets nil, as it would from an unmapped
/// hole in the image.
struct FakeMemory: PhysicalMemoryReader {
  var chunks: [UInt64: [UInt8]] = [:]

  mutating func place(_ bytes: [UInt8], at address: UInt64) {
    chunks[address] = bytes
  }

  func read(_ address: UInt64, count: Int) -> [UInt8]? {
    guard count >= 0 else { return nil }
    for (base, bytes) in chunks where address >= base {
      let offset = address - base
      guard offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset else { continue }
      let start = Int(offset)
      return Array(bytes[start..<start + count])
    }
    return nil
  }
}

/// A little-endian byte builder.
struct ByteWriter {
  var bytes: [UInt8] = []

  var count: Int { bytes.count }

  mutating func u8(_ value: UInt8) { bytes.append(value) }
  mutating func u16(_ value: UInt16) { append(value) }
  mutating func u32(_ value: UInt32) { append(value) }
  mutating func u64(_ value: UInt64) { append(value) }
  mutating func bytes(_ more: [UInt8]) { bytes += more }
  mutating func ascii(_ text: String) { bytes += Array(text.utf8) }
  /// The text followed by a NUL.
  mutating func cString(_ text: String) { ascii(text); u8(0) }
  mutating func zeros(_ count: Int) { bytes += [UInt8](repeating: 0, count: count) }
  mutating func align(to alignment: Int) {
    while bytes.count % alignment != 0 { bytes.append(0) }
  }

  mutating func set32(_ value: UInt32, at offset: Int) {
    for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
  }

  private mutating func append<T: FixedWidthInteger>(_ value: T) {
    for i in 0..<(T.bitWidth / 8) { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
  }
}

func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

/// Sets `bytes[index]` so that `bytes[range]` sums to zero modulo 256.
func fixChecksum(_ bytes: inout [UInt8], at index: Int, over range: Range<Int>) {
  bytes[index] = 0
  var sum: UInt8 = 0
  for i in range { sum &+= bytes[i] }
  bytes[index] = 0 &- sum
}

/// A complete ACPI table: a 36-byte header with the right length and checksum, then `body`.
func acpiTable(_ signature: String, revision: UInt8 = 1, body: [UInt8]) -> [UInt8] {
  var writer = ByteWriter()
  writer.ascii(signature)
  writer.u32(UInt32(36 + body.count))
  writer.u8(revision)
  writer.u8(0)  // checksum, fixed below
  writer.ascii("SWIFTV")
  writer.ascii("TESTTABL")
  writer.u32(1)
  writer.ascii("SWVT")
  writer.u32(1)
  writer.bytes(body)
  var bytes = writer.bytes
  fixChecksum(&bytes, at: 9, over: 0..<bytes.count)
  return bytes
}

/// An RSDP: 20 bytes for revision 0, 36 with the extended part for revision 2.
func rsdpBytes(revision: UInt8, rsdt: UInt32, xsdt: UInt64 = 0) -> [UInt8] {
  var writer = ByteWriter()
  writer.ascii("RSD PTR ")
  writer.u8(0)  // checksum
  writer.ascii("SWIFTV")
  writer.u8(revision)
  writer.u32(rsdt)
  if revision >= 2 {
    writer.u32(36)
    writer.u64(xsdt)
    writer.u8(0)  // extended checksum
    writer.zeros(3)
  }
  var bytes = writer.bytes
  fixChecksum(&bytes, at: 8, over: 0..<20)
  if revision >= 2 { fixChecksum(&bytes, at: 32, over: 0..<36) }
  return bytes
}

/// A root table (RSDT with 32-bit or XSDT with 64-bit pointers).
func rootTable(_ signature: String, pointers: [UInt64]) -> [UInt8] {
  var body = ByteWriter()
  for pointer in pointers {
    if signature == "XSDT" { body.u64(pointer) } else { body.u32(UInt32(pointer)) }
  }
  return acpiTable(signature, body: body.bytes)
}

/// A small deterministic PRNG (SplitMix64) so the robustness tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  mutating func bytes(_ count: Int) -> [UInt8] {
    var result: [UInt8] = []
    result.reserveCapacity(count)
    for _ in 0..<count { result.append(UInt8(truncatingIfNeeded: next())) }
    return result
  }
}
