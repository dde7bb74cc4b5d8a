import Hypervisor

// Finding and checking the firmware's ACPI tables.
//
// The chain is: RSDP (found by the boot loader or by scanning low memory, see RSDP.swift) ->
// XSDT (64-bit table pointers, ACPI 2.0+) or RSDT (32-bit pointers, ACPI 1.0) -> the tables
// themselves, each starting with a 36-byte header. The DSDT is not listed in the root table; it
// hangs off the FADT ("FACP"), so it is loaded from there.
//
// Every table is read whole and its checksum verified (all bytes sum to 0 mod 256) before any
// parser looks at it. The parsers (MADT, FADT, HPETTable, ACPI.s5SleepTypes) then work on plain
// byte arrays and bounds-check every field.

import Hypervisor

/// Why ACPI information could not be found or used.
public enum ACPIError: Error, Equatable, Sendable {
  /// No valid RSDP at the given address or anywhere in the scanned BIOS areas.
  case noRSDP
  /// The table (or the RSDP, signature "RSD PTR ") does not sum to zero.
  case badChecksum(signature: [UInt8])
  /// The table is shorter than its header or its own fields require, or an entry runs past its end.
  case truncated(signature: [UInt8])
  /// A read from physical memory failed at this address.
  case unreadable(address: UInt64)
  /// A table with this signature was expected but is not there (or has another signature).
  case missingTable(signature: [UInt8])
}

/// The ACPI namespace: signatures, limits and the free functions of this layer.
public enum ACPI {
  /// Four-byte table signatures (eight for the RSDP), as the bytes appear in memory.
  public enum Signature {
    public static let rsdp: [UInt8] = [0x52, 0x53, 0x44, 0x20, 0x50, 0x54, 0x52, 0x20]  // "RSD PTR "
    public static let rsdt: [UInt8] = [0x52, 0x53, 0x44, 0x54]  // "RSDT"
    public static let xsdt: [UInt8] = [0x58, 0x53, 0x44, 0x54]  // "XSDT"
    public static let madt: [UInt8] = [0x41, 0x50, 0x49, 0x43]  // "APIC"
    public static let fadt: [UInt8] = [0x46, 0x41, 0x43, 0x50]  // "FACP"
    public static let dsdt: [UInt8] = [0x44, 0x53, 0x44, 0x54]  // "DSDT"
    public static let ssdt: [UInt8] = [0x53, 0x53, 0x44, 0x54]  // "SSDT"
    public static let hpet: [UInt8] = [0x48, 0x50, 0x45, 0x54]  // "HPET"
    public static let mcfg: [UInt8] = [0x4D, 0x43, 0x46, 0x47]  // "MCFG"
  }

  /// The longest table accepted. Large server DSDTs are a few hundred KiB; a length near this
  /// is a corrupt header, and reading it would only exhaust the early heap.
  public static let maxTableLength = 4 << 20

  /// True when `bytes[0..<count]` sums to zero modulo 256, as every ACPI checksum requires.
  public static func checksumIsValid(_ bytes: [UInt8], count: Int) -> Bool {
    guard count >= 0, count <= bytes.count else { return false }
    var sum: UInt8 = 0
    for i in 0..<count { sum &+= bytes[i] }
    return sum == 0
  }

  /// Exactly `count` bytes at `address`, or `.unreadable`.
  static func readBytes<Memory: PhysicalMemoryReader>(
    _ address: UInt64, count: Int, memory: Memory
  ) throws(ACPIError) -> [UInt8] {
    guard let bytes = memory.read(address, count: count), bytes.count == count else {
      throw .unreadable(address: address)
    }
    return bytes
  }
}

/// The 36-byte header every ACPI table (except the RSDP and FACS) starts with.
public struct ACPITableHeader: Equatable, Sendable {
  public static let size = 36

  public var signature: [UInt8]   // 4 bytes @0
  public var length: UInt32       // @4, of the whole table including this header
  public var revision: UInt8      // @8
  public var checksum: UInt8      // @9
  public var oemID: [UInt8]       // 6 bytes @10
  public var oemTableID: [UInt8]  // 8 bytes @16
  public var oemRevision: UInt32  // @24
  public var creatorID: UInt32    // @28
  public var creatorRevision: UInt32  // @32

  /// The header at the start of `bytes`, or nil when fewer than 36 bytes are given.
  public init?(_ bytes: [UInt8]) {
    guard bytes.count >= ACPITableHeader.size else { return nil }
    signature = Array(bytes[0..<4])
    length = bytes.littleEndian(UInt32.self, at: 4) ?? 0
    revision = bytes[8]
    checksum = bytes[9]
    oemID = Array(bytes[10..<16])
    oemTableID = Array(bytes[16..<24])
    oemRevision = bytes.littleEndian(UInt32.self, at: 24) ?? 0
    creatorID = bytes.littleEndian(UInt32.self, at: 28) ?? 0
    creatorRevision = bytes.littleEndian(UInt32.self, at: 32) ?? 0
  }

  /// The header of `table`, checked to cover at least `minimumLength` bytes, all of which are
  /// present in `table`. The parsers use this before touching any field.
  static func checked(_ table: [UInt8], minimumLength: Int) throws(ACPIError) -> ACPITableHeader {
    guard let header = ACPITableHeader(table) else {
      throw .truncated(signature: Array(table.prefix(4)))
    }
    let length = Int(header.length)
    guard length >= minimumLength, length <= table.count else {
      throw .truncated(signature: header.signature)
    }
    return header
  }
}

/// An ACPI Generic Address Structure (12 bytes): where a register lives.
public struct GenericAddress: Equatable, Sendable {
  /// Address space IDs.
  public static let systemMemory: UInt8 = 0
  public static let systemIO: UInt8 = 1
  public static let pciConfiguration: UInt8 = 2

  public var addressSpace: UInt8  // @0
  public var bitWidth: UInt8      // @1
  public var bitOffset: UInt8     // @2
  public var accessSize: UInt8    // @3: 0 undefined, 1 byte, 2 word, 3 dword, 4 qword
  public var address: UInt64      // @4

  public init(addressSpace: UInt8, bitWidth: UInt8, bitOffset: UInt8, accessSize: UInt8, address: UInt64) {
    self.addressSpace = addressSpace
    self.bitWidth = bitWidth
    self.bitOffset = bitOffset
    self.accessSize = accessSize
    self.address = address
  }

  /// The structure at `offset` in `bytes`, or nil when it does not fit.
  init?(_ bytes: [UInt8], at offset: Int) {
    guard offset >= 0, offset <= bytes.count - 12,
      let address = bytes.littleEndian(UInt64.self, at: offset + 4)
    else { return nil }
    self.init(addressSpace: bytes[offset], bitWidth: bytes[offset + 1],
              bitOffset: bytes[offset + 2], accessSize: bytes[offset + 3], address: address)
  }
}

/// The firmware's ACPI tables, found through the RSDP and checksum-verified.
public struct ACPITables: Sendable {
  /// One table: where it was and all of its bytes (header included).
  public struct Table: Sendable {
    public var signature: [UInt8]
    public var address: UInt64
    public var bytes: [UInt8]

    public init(signature: [UInt8], address: UInt64, bytes: [UInt8]) {
      self.signature = signature
      self.address = address
      self.bytes = bytes
    }
  }

  /// The tables in the order the root table lists them, then the DSDT (from the FADT).
  public var all: [Table]
  /// The root table the list came from: "XSDT" or "RSDT".
  public var rootSignature: [UInt8]
  /// Tables the root table listed that could not be used (unreadable, bad checksum, truncated).
  /// Firmware sometimes ships a broken table nobody needs, so this is not fatal by itself.
  public var rejected: [ACPIError]

  /// The signature of every loaded table, in order (repeated for tables such as SSDT).
  public var signatures: [[UInt8]] {
    var result: [[UInt8]] = []
    for table in all { result.append(table.signature) }
    return result
  }

  /// The bytes of the first table with this signature, or nil.
  public func table(_ signature: [UInt8]) -> [UInt8]? {
    for table in all where table.signature == signature { return table.bytes }
    return nil
  }

  /// The bytes of every table with this signature (SSDTs come in numbers).
  public func tables(_ signature: [UInt8]) -> [[UInt8]] {
    var result: [[UInt8]] = []
    for table in all where table.signature == signature { result.append(table.bytes) }
    return result
  }

  public init(all: [Table] = [], rootSignature: [UInt8] = [], rejected: [ACPIError] = []) {
    self.all = all
    self.rootSignature = rootSignature
    self.rejected = rejected
  }

  /// Load every table the RSDP leads to.
  ///
  /// Uses the XSDT when the RSDP has one and it is valid, else the RSDT. Each listed table is
  /// read whole and checksum-verified; one that fails is left out and recorded in `rejected`.
  /// If the FADT is present, the DSDT it points to is loaded too.
  ///
  /// - Throws: the root table's error when neither the XSDT nor the RSDT is usable.
  public static func load<Memory: PhysicalMemoryReader>(
    rsdp: RSDP, memory: Memory
  ) throws(ACPIError) -> ACPITables {
    var rootError = ACPIError.missingTable(signature: ACPI.Signature.rsdt)
    var tables = ACPITables()

    // Prefer the XSDT: on 64-bit firmware the RSDT may be missing or list stale copies.
    var root: [UInt8]? = nil
    var pointerSize = 4
    if let xsdtAddress = rsdp.xsdtAddress, xsdtAddress != 0 {
      do {
        root = try readTable(at: xsdtAddress, expecting: ACPI.Signature.xsdt, memory: memory)
        pointerSize = 8
        tables.rootSignature = ACPI.Signature.xsdt
      } catch {
        rootError = error
      }
    }
    if root == nil && rsdp.rsdtAddress != 0 {
      do {
        root = try readTable(at: UInt64(rsdp.rsdtAddress), expecting: ACPI.Signature.rsdt, memory: memory)
        pointerSize = 4
        tables.rootSignature = ACPI.Signature.rsdt
      } catch {
        rootError = error
      }
    }
    guard let root else { throw rootError }

    // The pointers follow the header up to the table's length (checked by readTable).
    var offset = ACPITableHeader.size
    while offset + pointerSize <= root.count {
      let address = pointerSize == 8
        ? root.littleEndian(UInt64.self, at: offset) ?? 0
        : UInt64(root.littleEndian(UInt32.self, at: offset) ?? 0)
      offset += pointerSize
      if address == 0 { continue }  // some firmware leaves empty slots
      tables.add(at: address, expecting: nil, memory: memory)
    }

    // The DSDT is reached only through the FADT.
    if let fadtBytes = tables.table(ACPI.Signature.fadt),
      let fadt = try? FADT.parse(fadtBytes), fadt.dsdtAddress != 0
    {
      tables.add(at: fadt.dsdtAddress, expecting: ACPI.Signature.dsdt, memory: memory)
    }
    return tables
  }

  /// Load the table at `address` into `all`, or record why it could not be.
  private mutating func add<Memory: PhysicalMemoryReader>(
    at address: UInt64, expecting signature: [UInt8]?, memory: Memory
  ) {
    do {
      let bytes = try ACPITables.readTable(at: address, expecting: signature, memory: memory)
      all.append(Table(signature: Array(bytes[0..<4]), address: address, bytes: bytes))
    } catch {
      rejected.append(error)
    }
  }

  /// Read the whole table at `address` and verify its length and checksum (and signature, when
  /// one is expected).
  ///
  /// - Throws: `.unreadable`, `.truncated` (length below 36 or above ACPI.maxTableLength),
  ///   `.badChecksum`, or `.missingTable(expected)` when the signature differs.
  public static func readTable<Memory: PhysicalMemoryReader>(
    at address: UInt64, expecting signature: [UInt8]? = nil, memory: Memory
  ) throws(ACPIError) -> [UInt8] {
    let headerBytes = try ACPI.readBytes(address, count: ACPITableHeader.size, memory: memory)
    guard let header = ACPITableHeader(headerBytes) else { throw .unreadable(address: address) }
    if let signature, header.signature != signature { throw .missingTable(signature: signature) }
    let length = Int(header.length)
    guard length >= ACPITableHeader.size, length <= ACPI.maxTableLength else {
      throw .truncated(signature: header.signature)
    }
    let bytes = try ACPI.readBytes(address, count: length, memory: memory)
    guard ACPI.checksumIsValid(bytes, count: length) else {
      throw .badChecksum(signature: header.signature)
    }
    return bytes
  }
}
