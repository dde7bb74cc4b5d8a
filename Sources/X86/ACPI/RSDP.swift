import Hypervisor

// The Root System Description Pointer: where ACPI starts.
//
//   offset  size  field
//        0     8  signature "RSD PTR "
//        8     1  checksum over bytes 0..<20
//        9     6  OEM ID
//       15     1  revision (0 = ACPI 1.0, 2 = ACPI 2.0 and later)
//       16     4  RSDT address
//   -- revision 2 and later --
//       20     4  length of the whole structure (36)
//       24     8  XSDT address
//       32     1  extended checksum over bytes 0..<36
//       33     3  reserved
//
// A boot loader usually tells us where it is (PVH rsdp_paddr, multiboot2 tags 14/15). Without
// that, legacy BIOS firmware puts it on a 16-byte boundary in the first KiB of the EBDA or in
// the BIOS area 0xE0000..<0x100000; UEFI-only machines have it only through the loader.

import Hypervisor

/// A checksum-verified RSDP.
public struct RSDP: Equatable, Sendable {
  public static let sizeVersion1 = 20
  public static let sizeVersion2 = 36

  public var revision: UInt8
  public var oemID: [UInt8]
  /// Physical address of the RSDT (0 when the firmware has none).
  public var rsdtAddress: UInt32
  /// Physical address of the XSDT; nil before revision 2 or when the field is 0.
  public var xsdtAddress: UInt64?

  public init(revision: UInt8, oemID: [UInt8] = [], rsdtAddress: UInt32, xsdtAddress: UInt64? = nil) {
    self.revision = revision
    self.oemID = oemID
    self.rsdtAddress = rsdtAddress
    self.xsdtAddress = xsdtAddress
  }

  /// Parse and verify an RSDP from its bytes (20 for revision 0, 36 for revision 2+).
  ///
  /// - Throws: `.noRSDP` when the signature is wrong, `.truncated` when too few bytes are given
  ///   for the revision, `.badChecksum` when either checksum fails.
  public static func parse(_ bytes: [UInt8]) throws(ACPIError) -> RSDP {
    let signature = ACPI.Signature.rsdp
    guard bytes.count >= sizeVersion1 else { throw .truncated(signature: signature) }
    guard Array(bytes[0..<8]) == signature else { throw .noRSDP }
    guard ACPI.checksumIsValid(bytes, count: sizeVersion1) else { throw .badChecksum(signature: signature) }

    var rsdp = RSDP(revision: bytes[15], oemID: Array(bytes[9..<15]),
                    rsdtAddress: bytes.littleEndian(UInt32.self, at: 16) ?? 0)
    if rsdp.revision >= 2 {
      guard bytes.count >= sizeVersion2 else { throw .truncated(signature: signature) }
      guard ACPI.checksumIsValid(bytes, count: sizeVersion2) else {
        throw .badChecksum(signature: signature)
      }
      let xsdt = bytes.littleEndian(UInt64.self, at: 24) ?? 0
      rsdp.xsdtAddress = xsdt == 0 ? nil : xsdt
    }
    return rsdp
  }

  /// Read and verify the RSDP at physical `address`.
  public static func read<Memory: PhysicalMemoryReader>(
    at address: UInt64, memory: Memory
  ) throws(ACPIError) -> RSDP {
    // The revision byte decides whether the extended part exists, so read the short form first.
    let short = try ACPI.readBytes(address, count: sizeVersion1, memory: memory)
    guard short[15] >= 2 else { return try parse(short) }
    let full = try ACPI.readBytes(address, count: sizeVersion2, memory: memory)
    return try parse(full)
  }
}

extension ACPI {
  /// Where the BIOS data area keeps the EBDA's real-mode segment.
  static let ebdaSegmentPointer: UInt64 = 0x40E
  /// The read-only BIOS area the RSDP may live in.
  static let biosAreaStart: UInt64 = 0xE0000
  static let biosAreaEnd: UInt64 = 0x100000

  /// Find the RSDP.
  ///
  /// With a `hint` (the boot loader's address), only that address is tried: a loader that gives
  /// one is authoritative, and on UEFI machines there is nothing to scan. Without one (or with
  /// 0), the first KiB of the EBDA and then 0xE0000..<0x100000 are scanned on 16-byte boundaries
  /// for "RSD PTR " with valid checksum(s); candidates that fail their checksum are skipped.
  ///
  /// - Throws: for a hint, the reason it is not a valid RSDP (`.noRSDP` for a wrong signature,
  ///   `.badChecksum`, `.unreadable`); for a scan, `.noRSDP`.
  public static func findRSDP<Memory: PhysicalMemoryReader>(
    hint: UInt64?, memory: Memory
  ) throws(ACPIError) -> (address: UInt64, rsdp: RSDP) {
    if let hint, hint != 0 {
      return (hint, try RSDP.read(at: hint, memory: memory))
    }

    if let segment = memory.readLE(UInt16.self, at: ebdaSegmentPointer), segment != 0 {
      let ebda = UInt64(segment) << 4
      if let found = scanForRSDP(from: ebda, to: ebda + 1024, memory: memory) { return found }
    }
    if let found = scanForRSDP(from: biosAreaStart, to: biosAreaEnd, memory: memory) { return found }
    throw .noRSDP
  }

  /// The first valid RSDP on a 16-byte boundary in `start..<end`.
  ///
  /// The area is read a page at a time (never one large buffer: the early heap is small), and
  /// a page that cannot be read is skipped.
  static func scanForRSDP<Memory: PhysicalMemoryReader>(
    from start: UInt64, to end: UInt64, memory: Memory
  ) -> (address: UInt64, rsdp: RSDP)? {
    let pageSize: UInt64 = 4096
    let signature = ACPI.Signature.rsdp
    var windowStart = start & ~15  // candidates are paragraph-aligned
    while windowStart < end {
      let windowEnd = min(end, (windowStart / pageSize + 1) * pageSize)
      defer { windowStart = windowEnd }
      guard let window = memory.read(windowStart, count: Int(windowEnd - windowStart)) else { continue }

      var offset = 0
      while offset + signature.count <= window.count {
        defer { offset += 16 }
        guard window[offset] == signature[0], Array(window[offset..<offset + 8]) == signature else {
          continue
        }
        let candidate = windowStart + UInt64(offset)
        if let rsdp = try? RSDP.read(at: candidate, memory: memory) { return (candidate, rsdp) }
      }
    }
    return nil
  }
}
