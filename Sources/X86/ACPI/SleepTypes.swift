import Hypervisor

// The S5 (soft-off) sleep type values from the DSDT.
//
// Powering off through ACPI means writing SLP_TYPa | SLP_EN to PM1a_CNT (and SLP_TYPb to
// PM1b_CNT), and the SLP_TYP values live only in AML: the DSDT defines
//
//     Name (_S5_, Package (0x04) { 0x05, 0x05, Zero, Zero })
//
// which compiles to
//
//     08                NameOp
//     5C                '\' root prefix (optional)
//     5F 53 35 5F       "_S5_"
//     12                PackageOp
//     PkgLength         1 to 4 bytes: bits 7-6 of the first byte count the bytes that follow
//     NumElements       u8
//     elements          each 0A nn (BytePrefix), 0B nnnn (WordPrefix), 0C nnnnnnnn (DWordPrefix),
//                       00 (ZeroOp) or 01 (OneOp)
//
// Rather than interpret AML, this finds that byte pattern. It is what most small kernels do,
// and a false match needs "_S5_" preceded by NameOp followed by a well-formed package.

extension ACPI {
  /// The S5 sleep types `(SLP_TYPa, SLP_TYPb)` from the DSDT's `_S5_` object, or nil when there
  /// is no `_S5_` package in a form this recognizes.
  ///
  /// Like ACPICA, a package with a single element takes SLP_TYPa from its low byte and SLP_TYPb
  /// from the next byte.
  public static func s5SleepTypes(dsdt: [UInt8]) -> (a: UInt8, b: UInt8)? {
    let name: [UInt8] = [0x5F, 0x53, 0x35, 0x5F]  // "_S5_"
    let nameOp: UInt8 = 0x08
    let rootPrefix: UInt8 = 0x5C

    var index = 1
    while index + name.count <= dsdt.count {
      defer { index += 1 }
      guard dsdt[index] == name[0], Array(dsdt[index..<index + name.count]) == name else { continue }
      let namedDirectly = dsdt[index - 1] == nameOp
      let namedFromRoot = index >= 2 && dsdt[index - 1] == rootPrefix && dsdt[index - 2] == nameOp
      guard namedDirectly || namedFromRoot else { continue }
      if let types = s5Package(dsdt, at: index + name.count) { return types }
    }
    return nil
  }

  /// The sleep types from the package starting at `offset` (at its PackageOp), or nil.
  private static func s5Package(_ aml: [UInt8], at offset: Int) -> (a: UInt8, b: UInt8)? {
    let packageOp: UInt8 = 0x12
    var cursor = offset
    guard cursor < aml.count, aml[cursor] == packageOp else { return nil }
    cursor += 1

    // PkgLength: the package's own length is not needed, only its encoded size.
    guard cursor < aml.count else { return nil }
    cursor += 1 + Int(aml[cursor] >> 6)

    guard cursor < aml.count else { return nil }
    let elementCount = aml[cursor]
    cursor += 1
    guard elementCount >= 1, let first = integer(aml, at: &cursor) else { return nil }
    if elementCount == 1 {
      return (UInt8(truncatingIfNeeded: first), UInt8(truncatingIfNeeded: first >> 8))
    }
    guard let second = integer(aml, at: &cursor) else { return nil }
    return (UInt8(truncatingIfNeeded: first), UInt8(truncatingIfNeeded: second))
  }

  /// An AML integer constant at `cursor`, advancing past it; nil for anything else.
  private static func integer(_ aml: [UInt8], at cursor: inout Int) -> UInt64? {
    guard cursor < aml.count else { return nil }
    let opcode = aml[cursor]
    let dataSize: Int
    switch opcode {
    case 0x00: cursor += 1; return 0  // ZeroOp
    case 0x01: cursor += 1; return 1  // OneOp
    case 0x0A: dataSize = 1           // BytePrefix
    case 0x0B: dataSize = 2           // WordPrefix
    case 0x0C: dataSize = 4           // DWordPrefix
    default: return nil
    }
    guard cursor + 1 + dataSize <= aml.count else { return nil }
    var value: UInt64 = 0
    for i in 0..<dataSize { value |= UInt64(aml[cursor + 1 + i]) << UInt64(8 * i) }
    cursor += 1 + dataSize
    return value
  }
}
