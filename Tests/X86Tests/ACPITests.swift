import Hypervisor
import Testing
@testable import X86

// MARK: - RSDP

@Suite struct RSDPTests {
  @Test func parsesVersion1AtHint() throws {
    var memory = FakeMemory()
    memory.place(rsdpBytes(revision: 0, rsdt: 0x7FE1_000), at: 0x8000)
    let found = try ACPI.findRSDP(hint: 0x8000, memory: memory)
    #expect(found.address == 0x8000)
    #expect(found.rsdp.revision == 0)
    #expect(found.rsdp.rsdtAddress == 0x7FE1_000)
    #expect(found.rsdp.xsdtAddress == nil)
    #expect(found.rsdp.oemID == ascii("SWIFTV"))
  }

  @Test func parsesVersion2WithXSDT() throws {
    var memory = FakeMemory()
    memory.place(rsdpBytes(revision: 2, rsdt: 0x7FE1_000, xsdt: 0x1_2345_6000), at: 0x8000)
    let found = try ACPI.findRSDP(hint: 0x8000, memory: memory)
    #expect(found.rsdp.revision == 2)
    #expect(found.rsdp.rsdtAddress == 0x7FE1_000)
    #expect(found.rsdp.xsdtAddress == 0x1_2345_6000)
  }

  @Test func scanFindsItInTheBIOSArea() throws {
    var bios = [UInt8](repeating: 0, count: 0x20000)
    // A decoy with the signature but a broken checksum comes first and must be skipped.
    var decoy = rsdpBytes(revision: 0, rsdt: 0x1111_0000)
    decoy[8] &+= 1
    bios.replaceSubrange(0x1000..<0x1000 + decoy.count, with: decoy)
    // A signature not on a 16-byte boundary is not a candidate either.
    let unaligned = rsdpBytes(revision: 0, rsdt: 0x2222_0000)
    bios.replaceSubrange(0x2008..<0x2008 + unaligned.count, with: unaligned)
    let real = rsdpBytes(revision: 2, rsdt: 0x7FE1_000, xsdt: 0x7FE2_000)
    bios.replaceSubrange(0x15A40..<0x15A40 + real.count, with: real)

    var memory = FakeMemory()
    memory.place(bios, at: 0xE0000)
    let found = try ACPI.findRSDP(hint: nil, memory: memory)
    #expect(found.address == 0xF5A40)
    #expect(found.rsdp.xsdtAddress == 0x7FE2_000)
  }

  @Test func scanLooksInTheEBDAFirst() throws {
    var memory = FakeMemory()
    memory.place([0xC0, 0x9F], at: 0x40E)  // EBDA segment 0x9FC0 -> 0x9FC00
    var ebda = [UInt8](repeating: 0, count: 1024)
    let inEBDA = rsdpBytes(revision: 0, rsdt: 0xAAAA_0000)
    ebda.replaceSubrange(0x30..<0x30 + inEBDA.count, with: inEBDA)
    memory.place(ebda, at: 0x9FC00)
    var bios = [UInt8](repeating: 0, count: 0x20000)
    let inBIOS = rsdpBytes(revision: 0, rsdt: 0xBBBB_0000)
    bios.replaceSubrange(0x100..<0x100 + inBIOS.count, with: inBIOS)
    memory.place(bios, at: 0xE0000)

    let found = try ACPI.findRSDP(hint: nil, memory: memory)
    #expect(found.address == 0x9FC30)
    #expect(found.rsdp.rsdtAddress == 0xAAAA_0000)
  }

  @Test func badChecksumsAreRejected() {
    var memory = FakeMemory()
    var short = rsdpBytes(revision: 0, rsdt: 0x1000)
    short[16] &+= 1  // the RSDT address no longer matches the checksum
    memory.place(short, at: 0x8000)
    #expect(throws: ACPIError.badChecksum(signature: ascii("RSD PTR "))) {
      try ACPI.findRSDP(hint: 0x8000, memory: memory)
    }

    // Version 2: the first 20 bytes are fine, the extended checksum is not.
    var long = rsdpBytes(revision: 2, rsdt: 0x1000, xsdt: 0x2000)
    long[24] &+= 1
    memory.place(long, at: 0x9000)
    #expect(throws: ACPIError.badChecksum(signature: ascii("RSD PTR "))) {
      try ACPI.findRSDP(hint: 0x9000, memory: memory)
    }
  }

  @Test func missingOrWrongRSDPs() {
    var memory = FakeMemory()
    #expect(throws: ACPIError.noRSDP) { try ACPI.findRSDP(hint: nil, memory: memory) }
    #expect(throws: ACPIError.unreadable(address: 0x8000)) { try ACPI.findRSDP(hint: 0x8000, memory: memory) }
    memory.place([UInt8](repeating: 0x41, count: 36), at: 0x8000)
    #expect(throws: ACPIError.noRSDP) { try ACPI.findRSDP(hint: 0x8000, memory: memory) }
    // Revision 2 claimed, but only the 20-byte part is there.
    memory.place(rsdpBytes(revision: 2, rsdt: 0x1000, xsdt: 0x2000).prefix(20).map { $0 }, at: 0xA000)
    #expect(throws: ACPIError.unreadable(address: 0xA000)) { try ACPI.findRSDP(hint: 0xA000, memory: memory) }
  }
}

// MARK: - Root tables

@Suite struct ACPITablesTests {
  /// Memory with an RSDT listing one "APIC" table and an XSDT listing another.
  func twoRoots() -> (FakeMemory, RSDP) {
    var memory = FakeMemory()
    memory.place(acpiTable("APIC", body: [1, 2, 3, 4]), at: 0x10000)
    memory.place(acpiTable("APIC", body: [5, 6, 7, 8]), at: 0x20000)
    memory.place(acpiTable("HPET", body: [UInt8](repeating: 0, count: 20)), at: 0x30000)
    memory.place(rootTable("RSDT", pointers: [0x10000]), at: 0x1000)
    memory.place(rootTable("XSDT", pointers: [0x20000, 0x30000]), at: 0x2000)
    return (memory, RSDP(revision: 2, rsdtAddress: 0x1000, xsdtAddress: 0x2000))
  }

  @Test func xsdtIsPreferredOverRSDT() throws {
    let (memory, rsdp) = twoRoots()
    let tables = try ACPITables.load(rsdp: rsdp, memory: memory)
    #expect(tables.rootSignature == ascii("XSDT"))
    #expect(tables.signatures == [ascii("APIC"), ascii("HPET")])
    #expect(tables.table(ACPI.Signature.madt)?.suffix(4) == [5, 6, 7, 8])
    #expect(tables.table(ascii("MCFG")) == nil)
    #expect(tables.rejected.isEmpty)
  }

  @Test func rsdtIsUsedWithoutXSDT() throws {
    let (memory, _) = twoRoots()
    let tables = try ACPITables.load(rsdp: RSDP(revision: 0, rsdtAddress: 0x1000), memory: memory)
    #expect(tables.rootSignature == ascii("RSDT"))
    #expect(tables.table(ACPI.Signature.madt)?.suffix(4) == [1, 2, 3, 4])
  }

  @Test func brokenXSDTFallsBackToRSDT() throws {
    var (memory, rsdp) = twoRoots()
    var xsdt = rootTable("XSDT", pointers: [0x20000])
    xsdt[40] &+= 1
    memory.place(xsdt, at: 0x2000)
    let tables = try ACPITables.load(rsdp: rsdp, memory: memory)
    #expect(tables.rootSignature == ascii("RSDT"))
    #expect(tables.table(ACPI.Signature.madt)?.suffix(4) == [1, 2, 3, 4])
  }

  @Test func rootChecksumFailureIsAnError() {
    var memory = FakeMemory()
    var rsdt = rootTable("RSDT", pointers: [0x10000])
    rsdt[36] &+= 1
    memory.place(rsdt, at: 0x1000)
    #expect(throws: ACPIError.badChecksum(signature: ascii("RSDT"))) {
      try ACPITables.load(rsdp: RSDP(revision: 0, rsdtAddress: 0x1000), memory: memory)
    }
    // A root table with the wrong signature.
    memory.place(acpiTable("FACP", body: []), at: 0x1000)
    #expect(throws: ACPIError.missingTable(signature: ascii("RSDT"))) {
      try ACPITables.load(rsdp: RSDP(revision: 0, rsdtAddress: 0x1000), memory: memory)
    }
  }

  @Test func tableChecksumFailureRejectsOnlyThatTable() throws {
    var (memory, rsdp) = twoRoots()
    var madt = acpiTable("APIC", body: [5, 6, 7, 8])
    madt[37] &+= 1
    memory.place(madt, at: 0x20000)
    let tables = try ACPITables.load(rsdp: rsdp, memory: memory)
    #expect(tables.table(ACPI.Signature.madt) == nil)
    #expect(tables.table(ACPI.Signature.hpet) != nil)
    #expect(tables.rejected == [.badChecksum(signature: ascii("APIC"))])
  }

  @Test func unreadableAndTruncatedTablesAreRejected() throws {
    var memory = FakeMemory()
    var short = acpiTable("SSDT", body: [])
    short[4] = 20  // length below the header's own size
    memory.place(short, at: 0x30000)
    var long = acpiTable("SSDT", body: [])
    long[4] = 200  // length past what memory holds
    memory.place(long, at: 0x40000)
    memory.place(rootTable("XSDT", pointers: [0x30000, 0x40000, 0x50000, 0]), at: 0x2000)
    let tables = try ACPITables.load(rsdp: RSDP(revision: 2, rsdtAddress: 0, xsdtAddress: 0x2000), memory: memory)
    #expect(tables.all.isEmpty)
    #expect(tables.rejected == [
      .truncated(signature: ascii("SSDT")),
      .unreadable(address: 0x40000),
      .unreadable(address: 0x50000),
    ])
  }

  @Test func dsdtIsLoadedThroughTheFADT() throws {
    var memory = FakeMemory()
    let dsdt = acpiTable("DSDT", body: s5Name(rootPrefix: false, elements: [0x0A, 0x05, 0x0A, 0x05]))
    memory.place(dsdt, at: 0x50000)
    memory.place(fadt(dsdt: 0x50000, xDSDT: nil), at: 0x40000)
    memory.place(acpiTable("SSDT", body: [0x10]), at: 0x41000)
    memory.place(acpiTable("SSDT", body: [0x20]), at: 0x42000)
    memory.place(rootTable("RSDT", pointers: [0x40000, 0x41000, 0x42000]), at: 0x1000)
    let tables = try ACPITables.load(rsdp: RSDP(revision: 0, rsdtAddress: 0x1000), memory: memory)
    #expect(tables.signatures == [ascii("FACP"), ascii("SSDT"), ascii("SSDT"), ascii("DSDT")])
    #expect(tables.tables(ACPI.Signature.ssdt).map { $0.last } == [0x10, 0x20])
    let loaded = try #require(tables.table(ACPI.Signature.dsdt))
    #expect(loaded == dsdt)
    let types = try #require(ACPI.s5SleepTypes(dsdt: loaded))
    #expect(types.a == 5 && types.b == 5)
  }
}

// MARK: - MADT

func madtEntry(_ type: UInt8, _ fields: [UInt8]) -> [UInt8] {
  [type, UInt8(2 + fields.count)] + fields
}

func localAPIC(uid: UInt8, apicID: UInt8, flags: UInt32) -> [UInt8] {
  var writer = ByteWriter()
  writer.u8(uid); writer.u8(apicID); writer.u32(flags)
  return madtEntry(0, writer.bytes)
}

func localX2APIC(id: UInt32, flags: UInt32, uid: UInt32) -> [UInt8] {
  var writer = ByteWriter()
  writer.u16(0); writer.u32(id); writer.u32(flags); writer.u32(uid)
  return madtEntry(9, writer.bytes)
}

func madt(revision: UInt8 = 5, localAPICAddress: UInt32 = 0xFEE0_0000, flags: UInt32 = 1,
          entries: [[UInt8]]) -> [UInt8] {
  var body = ByteWriter()
  body.u32(localAPICAddress)
  body.u32(flags)
  for entry in entries { body.bytes(entry) }
  return acpiTable("APIC", revision: revision, body: body.bytes)
}

@Suite struct MADTTests {
  @Test func parsesEveryKnownEntryAndSkipsUnknownOnes() throws {
    var ioAPIC = ByteWriter()
    ioAPIC.u8(2); ioAPIC.u8(0); ioAPIC.u32(0xFEC0_0000); ioAPIC.u32(0)
    var override0 = ByteWriter()
    override0.u8(0); override0.u8(0); override0.u32(2); override0.u16(0)
    var override9 = ByteWriter()
    override9.u8(0); override9.u8(9); override9.u32(9); override9.u16(0x000D)
    var nmi = ByteWriter()
    nmi.u8(0xFF); nmi.u16(0x0005); nmi.u8(1)
    var x2nmi = ByteWriter()
    x2nmi.u16(0); x2nmi.u32(3); x2nmi.u8(1); x2nmi.zeros(3)
    var addressOverride = ByteWriter()
    addressOverride.u16(0); addressOverride.u64(0x1_FEE0_0000)

    let table = madt(entries: [
      localAPIC(uid: 0, apicID: 0, flags: 1),
      madtEntry(0x7F, [0xAA, 0xBB, 0xCC]),  // unknown type
      localAPIC(uid: 1, apicID: 1, flags: 0),
      localX2APIC(id: 0x100, flags: 1, uid: 3),
      madtEntry(1, ioAPIC.bytes),
      madtEntry(2, override0.bytes),
      madtEntry(2, override9.bytes),
      madtEntry(4, nmi.bytes),
      madtEntry(10, x2nmi.bytes),
      madtEntry(5, addressOverride.bytes),
    ])
    let parsed = try MADT.parse(table)
    #expect(parsed.localAPICAddress == 0x1_FEE0_0000)
    #expect(parsed.flags & MADT.pcatCompatible != 0)
    #expect(parsed.processors == [
      MADT.Processor(apicID: 0, processorUID: 0, enabled: true, onlineCapable: false, isX2APIC: false),
      MADT.Processor(apicID: 1, processorUID: 1, enabled: false, onlineCapable: false, isX2APIC: false),
      MADT.Processor(apicID: 0x100, processorUID: 3, enabled: true, onlineCapable: false, isX2APIC: true),
    ])
    #expect(parsed.ioAPICs == [MADT.IOAPIC(id: 2, address: 0xFEC0_0000, gsiBase: 0)])
    #expect(parsed.overrides == [
      MADT.InterruptOverride(bus: 0, source: 0, gsi: 2, flags: 0),
      MADT.InterruptOverride(bus: 0, source: 9, gsi: 9, flags: 0x000D),
    ])
    #expect(parsed.nmis == [
      MADT.LocalNMI(processorUID: MADT.LocalNMI.allProcessors, flags: 5, lint: 1),
      MADT.LocalNMI(processorUID: 3, flags: 0, lint: 1),
    ])
  }

  @Test func headerAddressIsUsedWithoutOverride() throws {
    let parsed = try MADT.parse(madt(localAPICAddress: 0xFEE0_0000, flags: 0, entries: []))
    #expect(parsed.localAPICAddress == 0xFEE0_0000)
    #expect(parsed.flags == 0)
    #expect(parsed.processors.isEmpty)
  }

  @Test func usableProcessorsAreEnabledThenOnlineCapableWithoutDuplicates() throws {
    let table = madt(entries: [
      localAPIC(uid: 0, apicID: 0, flags: 1),
      localAPIC(uid: 1, apicID: 1, flags: 0),       // disabled for good
      localAPIC(uid: 2, apicID: 2, flags: 2),       // online capable
      localAPIC(uid: 3, apicID: 3, flags: 1),
      localX2APIC(id: 0, flags: 1, uid: 4),         // the same CPU as APIC ID 0
      localX2APIC(id: 0x200, flags: 1, uid: 5),
      localAPIC(uid: 6, apicID: 0xFF, flags: 1),    // broadcast ID: not a CPU
      localX2APIC(id: 0xFFFF_FFFF, flags: 1, uid: 7),
    ])
    let usable = try MADT.parse(table).usableProcessors
    #expect(usable.map { $0.apicID } == [0, 3, 0x200, 2])
    #expect(usable.map { $0.processorUID } == [0, 3, 5, 2])
    #expect(!usable.contains { $0.apicID == 1 })
  }

  @Test func onlineCapableNeedsRevision5() throws {
    let table = madt(revision: 3, entries: [localAPIC(uid: 0, apicID: 0, flags: 1), localAPIC(uid: 1, apicID: 1, flags: 2)])
    let parsed = try MADT.parse(table)
    #expect(parsed.processors[1].onlineCapable == false)
    #expect(parsed.usableProcessors.map { $0.apicID } == [0])
  }

  @Test(arguments: [
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],  // entry length 0
    [0x00, 0x01],                                    // entry length 1
    [0x00, 0x08, 0x00, 0x00],                        // length 8 but only 4 bytes left
    [0x00, 0x04, 0x00, 0x00],                        // a local APIC entry of 4 bytes
    [0x09, 0x08, 0, 0, 0, 0, 0, 0],                  // an x2APIC entry of 8 bytes
    [0x01, 0x06, 0, 0, 0, 0],                        // an I/O APIC entry of 6 bytes
    [0x02, 0x08, 0, 0, 0, 0, 0, 0],                  // an override of 8 bytes
    [0x05, 0x04, 0, 0],                              // an address override of 4 bytes
    [0x00],                                          // a lone type byte
  ] as [[UInt8]])
  func truncatedEntriesThrow(entry: [UInt8]) {
    let table = madt(entries: [localAPIC(uid: 0, apicID: 0, flags: 1), entry])
    #expect(throws: ACPIError.truncated(signature: ascii("APIC"))) { try MADT.parse(table) }
  }

  @Test func truncatedTablesThrow() {
    let whole = madt(entries: [localAPIC(uid: 0, apicID: 0, flags: 1)])
    // The header promises more bytes than were given.
    #expect(throws: ACPIError.truncated(signature: ascii("APIC"))) { try MADT.parse(Array(whole.prefix(48))) }
    // Shorter than the fixed fields.
    #expect(throws: ACPIError.truncated(signature: ascii("APIC"))) { try MADT.parse(acpiTable("APIC", body: [0, 0])) }
    // Shorter than a header.
    #expect(throws: ACPIError.truncated(signature: ascii("APIC"))) { try MADT.parse(ascii("APIC")) }
    #expect(throws: ACPIError.truncated(signature: [])) { try MADT.parse([]) }
  }

  @Test func bytesAfterTheHeaderLengthAreIgnored() throws {
    let table = madt(entries: [localAPIC(uid: 0, apicID: 0, flags: 1)]) + [0x00, 0x00]
    #expect(try MADT.parse(table).processors.count == 1)
  }
}

// MARK: - HPET and FADT

/// An FADT: 116 bytes (ACPI 1.0) when `xDSDT` is nil, else 244 bytes with X_DSDT and a reset register.
func fadt(dsdt: UInt32, xDSDT: UInt64?, pm1a: UInt32 = 0x604, pm1b: UInt32 = 0, flags: UInt32 = 0) -> [UInt8] {
  var body = [UInt8](repeating: 0, count: (xDSDT == nil ? 116 : 244) - 36)
  func put(_ value: UInt64, at offset: Int, size: Int) {
    for i in 0..<size { body[offset - 36 + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }
  put(UInt64(dsdt), at: 40, size: 4)
  put(9, at: 46, size: 2)          // SCI_INT
  put(0xB2, at: 48, size: 4)       // SMI_CMD
  put(0xF1, at: 52, size: 1)       // ACPI_ENABLE
  put(0x600, at: 56, size: 4)      // PM1a_EVT_BLK
  put(UInt64(pm1a), at: 64, size: 4)
  put(UInt64(pm1b), at: 68, size: 4)
  put(0x608, at: 76, size: 4)      // PM_TMR_BLK
  put(0x32, at: 108, size: 1)      // CENTURY
  put(0x0003, at: 109, size: 2)    // IAPC_BOOT_ARCH: legacy devices, 8042
  put(UInt64(flags), at: 112, size: 4)
  if let xDSDT {
    put(1, at: 116, size: 1)       // RESET_REG: system I/O
    put(8, at: 117, size: 1)       // bit width
    put(1, at: 119, size: 1)       // byte access
    put(0xCF9, at: 120, size: 8)
    put(0x06, at: 128, size: 1)    // RESET_VALUE
    put(xDSDT, at: 140, size: 8)
  }
  return acpiTable("FACP", revision: xDSDT == nil ? 1 : 5, body: body)
}

@Suite struct FixedTableTests {
  @Test func parsesHPET() throws {
    var body = ByteWriter()
    body.u32(0x8086_A201)  // event timer block ID
    body.u8(0); body.u8(64); body.u8(0); body.u8(0)  // GAS: memory, 64 bits
    body.u64(0xFED0_0000)
    body.u8(0)             // HPET number
    body.u16(0x0080)       // minimum tick
    body.u8(0)             // page protection
    let hpet = try HPETTable.parse(acpiTable("HPET", body: body.bytes))
    #expect(hpet.baseAddress == 0xFED0_0000)
    #expect(hpet.addressSpace == GenericAddress.systemMemory)
    #expect(hpet.minimumTick == 0x80)
    #expect(hpet.hpetNumber == 0)
    #expect(hpet.eventTimerBlockID == 0x8086_A201)

    #expect(throws: ACPIError.truncated(signature: ascii("HPET"))) {
      try HPETTable.parse(acpiTable("HPET", body: Array(body.bytes.prefix(10))))
    }
  }

  @Test func parsesACPI1FADT() throws {
    let parsed = try FADT.parse(fadt(dsdt: 0x7FE0_000, xDSDT: nil, pm1a: 0x604, pm1b: 0x704))
    #expect(parsed.dsdtAddress == 0x7FE0_000)
    #expect(parsed.pm1aControlBlock == 0x604)
    #expect(parsed.pm1bControlBlock == 0x704)
    #expect(parsed.pm1aEventBlock == 0x600)
    #expect(parsed.pmTimerBlock == 0x608)
    #expect(parsed.sciInterrupt == 9)
    #expect(parsed.smiCommandPort == 0xB2)
    #expect(parsed.acpiEnableValue == 0xF1)
    #expect(parsed.century == 0x32)
    #expect(parsed.bootArchitectureFlags == FADT.bootArchLegacyDevices | FADT.bootArch8042)
    #expect(parsed.resetRegister == nil)
  }

  @Test func prefersNonzeroXDSDTAndReadsTheResetRegister() throws {
    let parsed = try FADT.parse(fadt(dsdt: 0x7FE0_000, xDSDT: 0x1_0000_0000, flags: FADT.resetRegisterSupported))
    #expect(parsed.dsdtAddress == 0x1_0000_0000)
    let reset = try #require(parsed.resetRegister)
    #expect(reset.register == GenericAddress(addressSpace: 1, bitWidth: 8, bitOffset: 0, accessSize: 1, address: 0xCF9))
    #expect(reset.value == 6)

    let zeroX = try FADT.parse(fadt(dsdt: 0x7FE0_000, xDSDT: 0))
    #expect(zeroX.dsdtAddress == 0x7FE0_000)
    // RESET_REG_SUP clear: the register is not to be used.
    #expect(zeroX.resetRegister == nil)
  }

  @Test func usesExtendedPM1ControlWhenTheLegacyFieldIsZero() throws {
    var table = fadt(dsdt: 0x1000, xDSDT: 0x1000, pm1a: 0)
    table[172] = GenericAddress.systemIO
    table[173] = 16
    table[176] = 0x04; table[177] = 0x0B  // 0xB04
    fixChecksum(&table, at: 9, over: 0..<table.count)
    #expect(try FADT.parse(table).pm1aControlBlock == 0xB04)
  }

  @Test func truncatedFADTThrows() {
    #expect(throws: ACPIError.truncated(signature: ascii("FACP"))) {
      try FADT.parse(acpiTable("FACP", body: [UInt8](repeating: 0, count: 20)))
    }
  }
}

// MARK: - _S5_

/// `Name (_S5_, Package (n) { elements })` in AML; `elements` are already encoded.
func s5Name(rootPrefix: Bool, elements: [UInt8], count: UInt8 = 4) -> [UInt8] {
  var aml: [UInt8] = [0x10, 0x05, 0x5C, 0x00]  // an unrelated Scope header before it
  aml += [0x08] + (rootPrefix ? [0x5C] : []) + ascii("_S5_")
  aml += [0x12, UInt8(2 + elements.count), count] + elements
  aml += [0x14, 0x08] + ascii("_PTS") + [0x01, 0xA3]  // a method after it
  return aml
}

@Suite struct SleepTypeTests {
  @Test func bytePrefixElements() throws {
    let dsdt = acpiTable("DSDT", body: s5Name(rootPrefix: false, elements: [0x0A, 0x05, 0x0A, 0x07, 0x00, 0x00]))
    let types = try #require(ACPI.s5SleepTypes(dsdt: dsdt))
    #expect(types.a == 5 && types.b == 7)
  }

  @Test func bareZeroOpElementsWithRootPrefix() throws {
    let dsdt = acpiTable("DSDT", body: s5Name(rootPrefix: true, elements: [0x00, 0x00, 0x00, 0x00]))
    let types = try #require(ACPI.s5SleepTypes(dsdt: dsdt))
    #expect(types.a == 0 && types.b == 0)
  }

  @Test func mixedAndWiderEncodings() throws {
    let one = try #require(ACPI.s5SleepTypes(dsdt: s5Name(rootPrefix: false, elements: [0x01, 0x0B, 0x07, 0x00])))
    #expect(one.a == 1 && one.b == 7)
    // A multi-byte PkgLength (two bytes: lead 0x4n).
    let aml: [UInt8] = [0x08] + ascii("_S5_") + [0x12, 0x40, 0x01, 0x02, 0x0A, 0x03, 0x0A, 0x04]
    let wide = try #require(ACPI.s5SleepTypes(dsdt: aml))
    #expect(wide.a == 3 && wide.b == 4)
    // One element: SLP_TYPa in the low byte, SLP_TYPb in the next.
    let single = try #require(ACPI.s5SleepTypes(dsdt: s5Name(rootPrefix: false, elements: [0x0B, 0x05, 0x06], count: 1)))
    #expect(single.a == 5 && single.b == 6)
  }

  @Test func noS5() {
    let dsdt = acpiTable("DSDT", body: [0x10, 0x05, 0x5C, 0x00] + [0x08] + ascii("_S4_") + [0x12, 0x06, 0x04, 0x0A, 0x04, 0x0A, 0x04])
    #expect(ACPI.s5SleepTypes(dsdt: dsdt) == nil)
    #expect(ACPI.s5SleepTypes(dsdt: []) == nil)
  }

  @Test func referencesAndMalformedPackagesAreNotMatches() {
    // "_S5_" used, not defined (no NameOp before it).
    #expect(ACPI.s5SleepTypes(dsdt: [0x70] + ascii("_S5_") + [0x12, 0x06, 0x04, 0x0A, 0x05, 0x0A, 0x05]) == nil)
    // Not a package.
    #expect(ACPI.s5SleepTypes(dsdt: [0x08] + ascii("_S5_") + [0x0A, 0x05]) == nil)
    // Cut off in the middle.
    #expect(ACPI.s5SleepTypes(dsdt: [0x08] + ascii("_S5_") + [0x12, 0x06, 0x04, 0x0A]) == nil)
    #expect(ACPI.s5SleepTypes(dsdt: [0x08] + ascii("_S5_") + [0x12, 0xC0]) == nil)
    // An element kind this does not understand (a method call).
    #expect(ACPI.s5SleepTypes(dsdt: [0x08] + ascii("_S5_") + [0x12, 0x06, 0x04, 0x5F, 0x41, 0x42, 0x43]) == nil)
  }

  @Test func aLaterDefinitionIsFoundAfterAFalseMatch() throws {
    let aml: [UInt8] = [0x08] + ascii("_S5_") + [0x0A, 0x01] + [0x08] + ascii("_S5_") + [0x12, 0x06, 0x02, 0x0A, 0x05, 0x01]
    let types = try #require(ACPI.s5SleepTypes(dsdt: aml))
    #expect(types.a == 5 && types.b == 1)
  }
}
