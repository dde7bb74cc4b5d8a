import Hypervisor

// The Fixed ACPI Description Table ("FACP"): fixed hardware registers and the DSDT's address.
//
// Offsets used here (ACPI 6.5 table 5.9); fields past the table's length read as 0, since
// ACPI 1.0 tables (116 bytes) end before the 2.0 additions:
//   40 DSDT u32          46 SCI_INT u16        48 SMI_CMD u32        52 ACPI_ENABLE u8
//   56 PM1a_EVT_BLK u32  60 PM1b_EVT_BLK u32   64 PM1a_CNT_BLK u32   68 PM1b_CNT_BLK u32
//   76 PM_TMR_BLK u32    89 PM1_CNT_LEN u8     108 CENTURY u8        109 IAPC_BOOT_ARCH u16
//  112 Flags u32        116 RESET_REG GAS     128 RESET_VALUE u8    140 X_DSDT u64
//  172 X_PM1a_CNT_BLK GAS                     184 X_PM1b_CNT_BLK GAS

/// The parts of the FADT a hypervisor needs: power-off (PM1 control), reset, and the DSDT.
public struct FADT: Sendable {
  /// A register write that resets the machine.
  public struct ResetRegister: Equatable, Sendable {
    public var register: GenericAddress
    public var value: UInt8

    public init(register: GenericAddress, value: UInt8) {
      self.register = register
      self.value = value
    }
  }

  /// Flags bits used here.
  public static let resetRegisterSupported: UInt32 = 1 << 10
  public static let hardwareReducedACPI: UInt32 = 1 << 20
  /// IAPC_BOOT_ARCH bits.
  public static let bootArchLegacyDevices: UInt16 = 1 << 0
  public static let bootArch8042: UInt16 = 1 << 1
  public static let bootArchNoVGA: UInt16 = 1 << 2
  public static let bootArchNoCMOSRTC: UInt16 = 1 << 5

  /// I/O port of PM1a control (SLP_TYP, SLP_EN), 0 if none.
  public var pm1aControlBlock: UInt32
  /// I/O port of PM1b control, 0 if none.
  public var pm1bControlBlock: UInt32
  public var pm1aEventBlock: UInt32
  public var pm1bEventBlock: UInt32
  /// I/O port of the ACPI PM timer, 0 if none.
  public var pmTimerBlock: UInt32
  /// Physical address of the DSDT (X_DSDT when present and nonzero, else DSDT).
  public var dsdtAddress: UInt64
  public var sciInterrupt: UInt16
  /// Port to write `acpiEnableValue` to in order to switch to ACPI mode (0: always in ACPI mode).
  public var smiCommandPort: UInt32
  public var acpiEnableValue: UInt8
  public var century: UInt8
  public var bootArchitectureFlags: UInt16
  public var flags: UInt32
  /// The reset register, when the table has one and sets RESET_REG_SUP.
  public var resetRegister: ResetRegister?

  /// Parse a whole FADT (header included; checksum already verified by ACPITables).
  ///
  /// - Throws: `.truncated` when the table is shorter than 72 bytes (through PM1b_CNT_BLK) or
  ///   than its header says.
  public static func parse(_ table: [UInt8]) throws(ACPIError) -> FADT {
    let header = try ACPITableHeader.checked(table, minimumLength: 72)
    let length = Int(header.length)

    // Fields beyond the table's own length do not exist in this revision: read them as 0.
    func u8(_ at: Int) -> UInt8 { at < length ? table[at] : 0 }
    func u16(_ at: Int) -> UInt16 { at + 2 <= length ? table.littleEndian(UInt16.self, at: at) ?? 0 : 0 }
    func u32(_ at: Int) -> UInt32 { at + 4 <= length ? table.littleEndian(UInt32.self, at: at) ?? 0 : 0 }
    func u64(_ at: Int) -> UInt64 { at + 8 <= length ? table.littleEndian(UInt64.self, at: at) ?? 0 : 0 }
    func gas(_ at: Int) -> GenericAddress? { at + 12 <= length ? GenericAddress(table, at: at) : nil }

    /// The 32-bit port field, or the 2.0 extended register when only that one is filled in
    /// (and it is an I/O port, the only kind these blocks can be outside hardware-reduced ACPI).
    func port(_ legacy: Int, extended: Int) -> UInt32 {
      let value = u32(legacy)
      if value != 0 { return value }
      if let register = gas(extended), register.addressSpace == GenericAddress.systemIO,
        register.address <= UInt64(UInt32.max)
      {
        return UInt32(register.address)
      }
      return 0
    }

    let xDSDT = u64(140)
    let flags = u32(112)
    var resetRegister: ResetRegister? = nil
    if flags & resetRegisterSupported != 0, length >= 129, let register = gas(116) {
      resetRegister = ResetRegister(register: register, value: u8(128))
    }

    return FADT(
      pm1aControlBlock: port(64, extended: 172),
      pm1bControlBlock: port(68, extended: 184),
      pm1aEventBlock: u32(56),
      pm1bEventBlock: u32(60),
      pmTimerBlock: u32(76),
      dsdtAddress: xDSDT != 0 ? xDSDT : UInt64(u32(40)),
      sciInterrupt: u16(46),
      smiCommandPort: u32(48),
      acpiEnableValue: u8(52),
      century: u8(108),
      bootArchitectureFlags: u16(109),
      flags: flags,
      resetRegister: resetRegister)
  }
}
