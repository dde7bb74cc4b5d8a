import Testing
import Hypervisor
@testable import X86

/// The tables a domain's builder writes, read back with the same parsers the hypervisor uses
/// on the machine's own firmware.
@Suite struct GuestACPITablesTests {
  struct Blob: PhysicalMemoryReader {
    let bytes: [UInt8]
    func read(_ address: UInt64, count: Int) -> [UInt8]? {
      guard address >= GuestACPITables.base else { return nil }
      let offset = Int(address - GuestACPITables.base)
      guard offset + count <= bytes.count else { return nil }
      return Array(bytes[offset..<offset + count])
    }
  }

  @Test(arguments: [1, 2, 4]) func everyTableParsesAndTheMADTListsEachVCPU(vcpus: Int) throws {
    let memory = Blob(bytes: GuestACPITables.build(vcpus: vcpus))
    let rsdp = try RSDP.read(at: GuestACPITables.rsdpAddress, memory: memory)
    #expect(rsdp.revision == 2)
    let tables = try ACPITables.load(rsdp: rsdp, memory: memory)
    #expect(tables.rejected.isEmpty)
    let madt = try MADT.parse(try #require(tables.table(ACPI.Signature.madt)))
    #expect(madt.processors.count == vcpus)
    for (id, processor) in madt.processors.enumerated() {
      #expect(processor.processorUID == UInt32(id) && processor.apicID == UInt32(id) && processor.enabled)
    }
    #expect(madt.ioAPICs.isEmpty)
    let fadt = try FADT.parse(try #require(tables.table(ACPI.Signature.fadt)))
    #expect(fadt.dsdtAddress == GuestACPITables.base + 0x300)
    #expect(tables.table(ACPI.Signature.dsdt) != nil)
  }
}
