import Hypervisor

// The Multiple APIC Description Table ("APIC"): which CPUs and interrupt controllers exist.
//
//   offset  size  field
//        0    36  header
//       36     4  local APIC physical address
//       40     4  flags (bit 0: PCAT_COMPAT, the machine also has dual 8259 PICs)
//       44     -  entries: u8 type, u8 length, type-specific fields
//
// Entries used here (offsets within the entry):
//   0  local APIC       (8):  u8 processor UID @2, u8 APIC ID @3, u32 flags @4
//   1  I/O APIC         (12): u8 ID @2, u8 reserved, u32 address @4, u32 GSI base @8
//   2  source override  (10): u8 bus @2, u8 source IRQ @3, u32 GSI @4, u16 flags @8
//   4  local APIC NMI   (6):  u8 processor UID @2 (0xFF = all), u16 flags @3, u8 LINT# @5
//   5  LAPIC address override (12): u16 reserved, u64 address @4
//   9  local x2APIC     (16): u16 reserved, u32 x2APIC ID @4, u32 flags @8, u32 UID @12
//  10  local x2APIC NMI (12): u16 flags @2, u32 processor UID @4 (0xFFFFFFFF = all), u8 LINT# @8
// Processor flags: bit 0 enabled, bit 1 online capable (MADT revision 5 / ACPI 6.3 and later).

/// A parsed MADT.
public struct MADT: Sendable {
  /// A logical processor (a local APIC or local x2APIC entry).
  public struct Processor: Equatable, Sendable {
    public var apicID: UInt32
    public var processorUID: UInt32
    /// The processor is usable now.
    public var enabled: Bool
    /// The processor is disabled but the OS may bring it online (hot-add capable).
    public var onlineCapable: Bool
    /// It came from an x2APIC entry (type 9) rather than a local APIC entry (type 0).
    public var isX2APIC: Bool

    public init(apicID: UInt32, processorUID: UInt32, enabled: Bool, onlineCapable: Bool, isX2APIC: Bool) {
      self.apicID = apicID
      self.processorUID = processorUID
      self.enabled = enabled
      self.onlineCapable = onlineCapable
      self.isX2APIC = isX2APIC
    }
  }

  /// An I/O APIC and the first global system interrupt it handles.
  public struct IOAPIC: Equatable, Sendable {
    public var id: UInt8
    public var address: UInt32
    public var gsiBase: UInt32

    public init(id: UInt8, address: UInt32, gsiBase: UInt32) {
      self.id = id
      self.address = address
      self.gsiBase = gsiBase
    }
  }

  /// An ISA IRQ that is not identity-mapped to a GSI, or has non-default polarity/trigger.
  public struct InterruptOverride: Equatable, Sendable {
    /// Always 0 (ISA).
    public var bus: UInt8
    /// The ISA IRQ.
    public var source: UInt8
    public var gsi: UInt32
    /// MPS INTI flags: bits 0-1 polarity, bits 2-3 trigger mode.
    public var flags: UInt16

    public init(bus: UInt8, source: UInt8, gsi: UInt32, flags: UInt16) {
      self.bus = bus
      self.source = source
      self.gsi = gsi
      self.flags = flags
    }
  }

  /// Which local APIC input (LINT0/LINT1) is wired to NMI, for which processors.
  public struct LocalNMI: Equatable, Sendable {
    /// The processor UID, or `LocalNMI.allProcessors`.
    public var processorUID: UInt32
    public var flags: UInt16
    public var lint: UInt8

    /// The UID that means "every processor" (0xFF in type 4 entries, widened here).
    public static let allProcessors: UInt32 = 0xFFFF_FFFF

    public init(processorUID: UInt32, flags: UInt16, lint: UInt8) {
      self.processorUID = processorUID
      self.flags = flags
      self.lint = lint
    }
  }

  /// Entry types.
  public enum EntryType {
    public static let localAPIC: UInt8 = 0
    public static let ioAPIC: UInt8 = 1
    public static let interruptOverride: UInt8 = 2
    public static let localAPICNMI: UInt8 = 4
    public static let localAPICAddressOverride: UInt8 = 5
    public static let localX2APIC: UInt8 = 9
    public static let localX2APICNMI: UInt8 = 10
  }

  /// Physical address of the local APICs (from the header, replaced by a type 5 entry).
  public var localAPICAddress: UInt64
  /// Bit 0: PCAT_COMPAT (legacy 8259 PICs present and must be masked).
  public var flags: UInt32
  /// Processors in table order.
  public var processors: [Processor]
  public var ioAPICs: [IOAPIC]
  public var overrides: [InterruptOverride]
  public var nmis: [LocalNMI]

  public static let pcatCompatible: UInt32 = 1 << 0

  public init(localAPICAddress: UInt64 = 0xFEE0_0000, flags: UInt32 = 0, processors: [Processor] = [],
              ioAPICs: [IOAPIC] = [], overrides: [InterruptOverride] = [], nmis: [LocalNMI] = []) {
    self.localAPICAddress = localAPICAddress
    self.flags = flags
    self.processors = processors
    self.ioAPICs = ioAPICs
    self.overrides = overrides
    self.nmis = nmis
  }

  /// Parse a whole MADT (header included; checksum already verified by ACPITables).
  ///
  /// Entries are walked up to the header's length. Unknown entry types are skipped.
  ///
  /// - Throws: `.truncated` when the table is shorter than 44 bytes or than its header says, or
  ///   an entry has length < 2, runs past the end, or is too short for its type.
  public static func parse(_ table: [UInt8]) throws(ACPIError) -> MADT {
    let header = try ACPITableHeader.checked(table, minimumLength: 44)
    let signature = header.signature
    let end = Int(header.length)
    // The online-capable bit was reserved before MADT revision 5; older firmware may set it.
    let onlineCapableDefined = header.revision >= 5

    var madt = MADT(localAPICAddress: UInt64(table.littleEndian(UInt32.self, at: 36) ?? 0),
                    flags: table.littleEndian(UInt32.self, at: 40) ?? 0)

    var offset = 44
    while offset < end {
      guard end - offset >= 2 else { throw .truncated(signature: signature) }
      let type = table[offset]
      let length = Int(table[offset + 1])
      guard length >= 2, length <= end - offset else { throw .truncated(signature: signature) }
      // The entry's bytes, so every field read below is bounds-checked against the entry.
      let entry = Array(table[offset..<offset + length])
      offset += length

      func need(_ minimum: Int) throws(ACPIError) {
        if length < minimum { throw .truncated(signature: signature) }
      }
      func u16(_ at: Int) -> UInt16 { entry.littleEndian(UInt16.self, at: at) ?? 0 }
      func u32(_ at: Int) -> UInt32 { entry.littleEndian(UInt32.self, at: at) ?? 0 }

      switch type {
      case EntryType.localAPIC:
        try need(8)
        let flags = u32(4)
        madt.processors.append(Processor(
          apicID: UInt32(entry[3]), processorUID: UInt32(entry[2]),
          enabled: flags & 1 != 0, onlineCapable: onlineCapableDefined && flags & 2 != 0,
          isX2APIC: false))

      case EntryType.localX2APIC:
        try need(16)
        let flags = u32(8)
        madt.processors.append(Processor(
          apicID: u32(4), processorUID: u32(12),
          enabled: flags & 1 != 0, onlineCapable: onlineCapableDefined && flags & 2 != 0,
          isX2APIC: true))

      case EntryType.ioAPIC:
        try need(12)
        madt.ioAPICs.append(IOAPIC(id: entry[2], address: u32(4), gsiBase: u32(8)))

      case EntryType.interruptOverride:
        try need(10)
        madt.overrides.append(InterruptOverride(bus: entry[2], source: entry[3], gsi: u32(4), flags: u16(8)))

      case EntryType.localAPICNMI:
        try need(6)
        let uid = entry[2] == 0xFF ? LocalNMI.allProcessors : UInt32(entry[2])
        madt.nmis.append(LocalNMI(processorUID: uid, flags: u16(3), lint: entry[5]))

      case EntryType.localX2APICNMI:
        try need(9)
        madt.nmis.append(LocalNMI(processorUID: u32(4), flags: u16(2), lint: entry[8]))

      case EntryType.localAPICAddressOverride:
        try need(12)
        madt.localAPICAddress = entry.littleEndian(UInt64.self, at: 4) ?? madt.localAPICAddress

      default:
        break  // Types this hypervisor does not use (GIC, RINTC, ...): skip by length.
      }
    }
    return madt
  }

  /// The CPUs a hypervisor may start: the enabled ones first, in table order, then the
  /// online-capable ones. Each APIC ID appears once (firmware may list a CPU both as local APIC
  /// and as x2APIC); the broadcast IDs (0xFF for xAPIC entries, 0xFFFFFFFF) are left out.
  public var usableProcessors: [Processor] {
    var result: [Processor] = []
    func addIfNew(_ processor: Processor) {
      if !processor.isX2APIC && processor.apicID == 0xFF { return }
      if processor.apicID == 0xFFFF_FFFF { return }
      for existing in result where existing.apicID == processor.apicID { return }
      result.append(processor)
    }
    for processor in processors where processor.enabled { addIfNew(processor) }
    for processor in processors where !processor.enabled && processor.onlineCapable { addIfNew(processor) }
    return result
  }
}
