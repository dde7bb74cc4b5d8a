import Hypervisor

// The HPET Description Table ("HPET"): where the High Precision Event Timer's registers are.
//
//   offset  size  field
//       36     4  event timer block ID (hardware revision, comparator count, vendor)
//       40    12  base address (Generic Address Structure; address u64 @44)
//       52     1  HPET number
//       53     2  minimum clock tick in periodic mode
//       55     1  page protection and OEM attributes

/// A parsed HPET table.
public struct HPETTable: Sendable {
  /// The event timer block ID (the HPET's general capabilities register, low 32 bits).
  public var eventTimerBlockID: UInt32
  /// Physical address of the register block.
  public var baseAddress: UInt64
  /// Address space of `baseAddress`: 0 (system memory) on every real machine.
  public var addressSpace: UInt8
  /// Which HPET this is, when a machine has several.
  public var hpetNumber: UInt8
  /// The smallest periodic tick the firmware allows, in main counter ticks.
  public var minimumTick: UInt16

  /// Parse a whole HPET table (header included; checksum already verified by ACPITables).
  ///
  /// - Throws: `.truncated` when the table is shorter than 56 bytes or than its header says.
  public static func parse(_ table: [UInt8]) throws(ACPIError) -> HPETTable {
    _ = try ACPITableHeader.checked(table, minimumLength: 56)
    return HPETTable(
      eventTimerBlockID: table.littleEndian(UInt32.self, at: 36) ?? 0,
      baseAddress: table.littleEndian(UInt64.self, at: 44) ?? 0,
      addressSpace: table[40],
      hpetNumber: table[52],
      minimumTick: table.littleEndian(UInt16.self, at: 53) ?? 0)
  }
}
