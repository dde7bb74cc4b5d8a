import Hypervisor

/// The ACPI tables a PVH domain gets from its builder (docs/linux-pvh-facts.md): RSDP, XSDT, a
/// hardware-reduced FADT, an empty DSDT and a MADT with one local APIC per vcpu (UID = vcpu id,
/// APIC ID = vcpu id), and no I/O APIC. Linux needs the MADT even for one vcpu: without it, it
/// never sets up the Xen clock. Pure: the builder copies the bytes into the guest.
public enum GuestACPITables {
  /// Where the tables go in guest-physical memory: the legacy BIOS area, which the domain's
  /// memory map reports as reserved and the builder backs with memory. Old kernels also look
  /// for the RSDP here.
  public static let base: UInt64 = 0xE_0000
  static let xsdtOffset = 0x40
  static let fadtOffset = 0x100
  static let dsdtOffset = 0x300
  static let madtOffset = 0x400
  /// The local APIC address the MADT reports (the guest uses x2APIC MSRs, but the field exists).
  static let localAPICAddress: UInt32 = 0xFEE0_0000

  public static var rsdpAddress: UInt64 { base }

  /// The tables for a domain with `vcpus` vcpus, laid out from `base`.
  public static func build(vcpus: Int) -> [UInt8] {
    var blob = [UInt8](repeating: 0, count: madtOffset + 44 + 8 * vcpus)
    func put(_ bytes: [UInt8], at offset: Int) { blob.replaceSubrange(offset..<offset + bytes.count, with: bytes) }

    // MADT: LAPIC address, flags 0 (no 8259), then type-0 entries {type, length 8, UID, APIC ID, flags: enabled}.
    var madt = header("APIC", length: 44 + 8 * vcpus, revision: 5)
    madt += le(localAPICAddress) + le(UInt32(0))
    for id in 0..<vcpus { madt += [0, 8, UInt8(id), UInt8(id)] + le(UInt32(1)) }
    put(checksummed(madt), at: madtOffset)

    // DSDT: a bare header; the hardware-reduced FADT needs no AML.
    put(checksummed(header("DSDT", length: 36, revision: 2)), at: dsdtOffset)

    // FADT revision 6, 276 bytes. Hardware-reduced (flags bit 20): no SCI, no PM timer, no
    // legacy devices; bit 19 forces physical destination mode for x2APIC. IAPC_BOOT_ARCH: no
    // VGA (bit 2), no CMOS RTC (bit 5).
    var fadt = header("FACP", length: 276, revision: 6)
    fadt += [UInt8](repeating: 0, count: 276 - 36)
    func field(_ bytes: [UInt8], _ offset: Int) { fadt.replaceSubrange(offset..<offset + bytes.count, with: bytes) }
    field(le(UInt32(truncatingIfNeeded: base + UInt64(dsdtOffset))), 40)        // DSDT
    field(le(UInt16((1 << 2) | (1 << 5))), 109)                                 // IAPC_BOOT_ARCH
    field(le(UInt32((1 << 20) | (1 << 19))), 112)                               // flags
    fadt[131] = 5                                                               // FADT minor version
    field(le(base + UInt64(dsdtOffset)), 140)                                   // X_DSDT
    put(checksummed(fadt), at: fadtOffset)

    // XSDT: the FADT and the MADT.
    var xsdt = header("XSDT", length: 36 + 16, revision: 1)
    xsdt += le(base + UInt64(fadtOffset)) + le(base + UInt64(madtOffset))
    put(checksummed(xsdt), at: xsdtOffset)

    // RSDP, revision 2: checksum over the first 20 bytes, extended checksum over all 36.
    var rsdp = Array("RSD PTR ".utf8) + [0] + Array("SWIFTV".utf8) + [2] + le(UInt32(0))
    rsdp += le(UInt32(36)) + le(base + UInt64(xsdtOffset)) + [0, 0, 0, 0]
    rsdp[8] = checksum(rsdp[0..<20])
    rsdp[32] = checksum(rsdp[0..<36])
    put(rsdp, at: 0)
    return blob
  }

  static func header(_ signature: String, length: Int, revision: UInt8) -> [UInt8] {
    var bytes = Array(signature.utf8)
    bytes += le(UInt32(length)) + [revision, 0]
    bytes += Array("SWIFTV".utf8) + Array("SWIFTVSR".utf8) + le(UInt32(1))
    bytes += Array("SWVR".utf8) + le(UInt32(1))
    return bytes
  }

  static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { littleEndianBytes(value) }

  static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt8 {
    var sum: UInt8 = 0
    for byte in bytes { sum &+= byte }
    return 0 &- sum
  }

  static func checksummed(_ table: [UInt8]) -> [UInt8] {
    var table = table
    table[9] = 0
    table[9] = checksum(table[...])
    return table
  }
}
