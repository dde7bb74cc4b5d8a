// Random input must make the parsers return or throw, never trap. The generator is seeded, so a
// failure is reproducible; the inputs are biased toward almost-valid structures, which reach
// deeper into the parsers than uniform noise.

import Hypervisor
import Testing
@testable import X86

@Suite struct RobustnessTests {
  static let iterations = 3000

  @Test func madtParseNeverTraps() {
    var random = SeededGenerator(seed: 0x5EED_0001)
    var parsed = 0
    for iteration in 0..<Self.iterations {
      var table: [UInt8]
      if iteration % 2 == 0 {
        table = random.bytes(Int(random.next() % 200))
      } else {
        // A real header and fixed fields, then random entries with plausible types and lengths.
        var entries: [[UInt8]] = []
        for _ in 0..<Int(random.next() % 8) {
          let type = UInt8(random.next() % 12)
          let length = UInt8(random.next() % 20)
          entries.append([type, length] + random.bytes(Int(random.next() % 18)))
        }
        table = madt(entries: entries)
        if random.next() % 4 == 0 { table = Array(table.prefix(Int(random.next() % UInt64(table.count + 1)))) }
      }
      if let madt = try? MADT.parse(table) {
        parsed += 1
        _ = madt.usableProcessors
      }
    }
    // Some of the almost-valid tables must have gotten through, or this tested nothing.
    #expect(parsed > 0)
  }

  @Test func multiboot2ParseNeverTraps() {
    var random = SeededGenerator(seed: 0x5EED_0002)
    var parsed = 0
    for iteration in 0..<Self.iterations {
      var mbi: [UInt8]
      if iteration % 2 == 0 {
        mbi = random.bytes(8 + Int(random.next() % 256))
        // Usually make total_size agree with what is there, so the tag walk runs.
        if random.next() % 4 != 0 {
          let size = UInt32(mbi.count)
          mbi.replaceSubrange(0..<4, with: [UInt8(size & 0xFF), UInt8(size >> 8), 0, 0])
        }
      } else {
        var builder = MBIBuilder()
        for _ in 0..<Int(random.next() % 6) {
          let type = UInt32(random.next() % 16)
          let payload = random.bytes(Int(random.next() % 64))
          let size: UInt32? = random.next() % 3 == 0 ? UInt32(random.next() % 128) : nil
          builder.tag(type, payload, size: size)
        }
        mbi = builder.finish(endTag: random.next() % 8 != 0)
      }
      var memory = FakeMemory()
      memory.place(mbi, at: 0x1_0000)
      if (try? BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)) != nil { parsed += 1 }
    }
    #expect(parsed > 0)
  }

  @Test func otherParsersNeverTrap() {
    var random = SeededGenerator(seed: 0x5EED_0003)
    for iteration in 0..<Self.iterations {
      var bytes = random.bytes(Int(random.next() % 300))
      if iteration % 3 == 0 && bytes.count >= 8 {
        bytes.replaceSubrange(0..<4, with: ascii("_S5_"))
        bytes[0] = 0x08
      }
      _ = try? FADT.parse(bytes)
      _ = try? HPETTable.parse(bytes)
      _ = try? RSDP.parse(bytes)
      _ = ACPI.s5SleepTypes(dsdt: bytes)
      _ = ACPI.s5SleepTypes(dsdt: [0x08] + ascii("_S5_") + [0x12] + bytes.prefix(6))
      // Random tables behind a valid FADT header and a real header length.
      _ = try? FADT.parse(acpiTable("FACP", body: bytes))
      _ = try? HPETTable.parse(acpiTable("HPET", body: bytes))
    }
  }

  @Test func pvhAndACPILoadNeverTrap() {
    var random = SeededGenerator(seed: 0x5EED_0004)
    for _ in 0..<500 {
      // Random pointers into a few random chunks: every path must end in a value or an error.
      var memory = FakeMemory()
      let bases: [UInt64] = [0x1000, 0x2000, 0x6000, 0x7000, 0x8000, 0x9000]
      for base in bases { memory.place(random.bytes(Int(random.next() % 512)), at: base) }
      func pointer() -> UInt64 { random.next() % 2 == 0 ? bases[Int(random.next() % 6)] + random.next() % 64 : random.next() }

      memory.place(pvhStartInfo(version: UInt32(random.next() % 3), modules: UInt32(random.next() % 4),
                                modlist: pointer(), cmdline: pointer(), rsdp: pointer(),
                                memmap: pointer(), memmapEntries: UInt32(random.next() % 8)), at: 0x5000)
      _ = try? BootInfo.parsePVH(startInfo: 0x5000, memory: memory)

      let rsdp = RSDP(revision: 2, rsdtAddress: UInt32(truncatingIfNeeded: pointer()), xsdtAddress: pointer())
      _ = try? ACPITables.load(rsdp: rsdp, memory: memory)
      // A valid root table pointing at the random chunks.
      memory.place(rootTable("XSDT", pointers: [pointer(), pointer(), pointer()]), at: 0xA000)
      _ = try? ACPITables.load(rsdp: RSDP(revision: 2, rsdtAddress: 0, xsdtAddress: 0xA000), memory: memory)
    }
  }
}
