import Testing

@testable import Hypervisor

/// Guest-physical memory for hand-built page tables: zero where nothing was written, and
/// nothing (not the domain's memory) from `limit` up.
private struct FakeGuestPhysical {
  var bytes: [UInt64: UInt8] = [:]
  var limit: UInt64 = 0x1_0000_0000
  var reads: [(UInt64, Int)] = []

  mutating func set(_ address: UInt64, _ value: UInt64, size: Int) {
    for i in 0..<size { bytes[address + UInt64(i)] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }

  mutating func read(_ address: UInt64, _ size: Int) -> UInt64? {
    reads.append((address, size))
    guard address < limit, address &+ UInt64(size) <= limit else { return nil }
    var value: UInt64 = 0
    for i in 0..<size { value |= UInt64(bytes[address + UInt64(i)] ?? 0) << (8 * UInt64(i)) }
    return value
  }
}

private let pg: UInt64 = 1 << 31
private let wp: UInt64 = 1 << 16
private let pae: UInt64 = 1 << 5
private let pse: UInt64 = 1 << 4
private let lma: UInt64 = (1 << 10) | (1 << 8)
private let nxe: UInt64 = 1 << 11
private let p: UInt64 = 1, rw: UInt64 = 2, us: UInt64 = 4, ps: UInt64 = 0x80
private let nx: UInt64 = 1 << 63

private func translate(_ memory: inout FakeGuestPhysical, _ walk: GuestPageWalk, _ gva: UInt64, _ access: GuestAccess = .read) -> Result<UInt64, PageFault> {
  walk.translate(gva, access: access) { memory.read($0, $1) }
}

private func fault(_ kind: PageFault.Kind, level: Int, _ gva: UInt64, _ access: GuestAccess = .read) -> Result<UInt64, PageFault> {
  .failure(PageFault(kind, level: level, address: gva, access: access))
}

@Suite struct GuestPageWalkTests {
  @Test func picksTheModeFromCR0CR4AndEFER() {
    #expect(GuestPagingMode(cr0: 0x11, cr4: pae, efer: lma) == .off)
    #expect(GuestPagingMode(cr0: pg | 1, cr4: 0, efer: 0) == .legacy)
    #expect(GuestPagingMode(cr0: pg | 1, cr4: pse, efer: 0) == .legacy)
    #expect(GuestPagingMode(cr0: pg | 1, cr4: pae, efer: 0) == .pae)
    #expect(GuestPagingMode(cr0: pg | 1, cr4: pae, efer: lma) == .long)
  }

  @Test func pagingOffIsTheIdentityOnTheLow32Bits() {
    var memory = FakeGuestPhysical()
    let walk = GuestPageWalk(cr0: 0x11, cr3: 0x1000, cr4: 0, efer: 0)
    #expect(translate(&memory, walk, 0x1234_5678) == .success(0x1234_5678))
    #expect(translate(&memory, walk, 0x1_0000_0010) == .success(0x10))
    #expect(memory.reads.isEmpty)
  }

  // ---- Legacy 32-bit paging ----

  /// A directory at 0x10000 with a table at 0x11000 for 0x0040_0000..0x007F_FFFF and a 4 MiB
  /// page at 0x8000_0000 (→ 0x0C00_0000).
  fileprivate func legacyTables() -> FakeGuestPhysical {
    var memory = FakeGuestPhysical()
    memory.set(0x10000 + 1 * 4, 0x11000 | p | rw | us, size: 4)
    memory.set(0x10000 + 0x200 * 4, 0x0C00_0000 | p | rw | ps, size: 4)
    memory.set(0x11000 + 5 * 4, 0x2345_6000 | p | rw | us, size: 4)
    memory.set(0x11000 + 6 * 4, 0x2346_7000 | p | us, size: 4)              // read-only
    // The entry after index 5 is non-zero: a 4-byte walk must not see it as high bits.
    return memory
  }

  @Test func legacyWalksTwoLevelsOfFourByteEntries() {
    var memory = legacyTables()
    let walk = GuestPageWalk(cr0: pg | wp | 1, cr3: 0x10000, cr4: pse, efer: 0)
    #expect(translate(&memory, walk, 0x0040_5ABC) == .success(0x2345_6ABC))
    #expect(memory.reads.map(\.1) == [4, 4])
    #expect(memory.reads.map(\.0) == [0x10004, 0x11014])
    #expect(translate(&memory, walk, 0x8012_3456) == .success(0x0C12_3456))
    // Without CR4.PSE the PS bit is ignored: the entry names a page table.
    memory.set(0x0C00_0000 + 0x123 * 4, 0x7777_7000 | p, size: 4)
    let noPSE = GuestPageWalk(cr0: pg | 1, cr3: 0x10000, cr4: 0, efer: 0)
    #expect(translate(&memory, noPSE, 0x8012_3456) == .success(0x7777_7456))
  }

  @Test func legacyFaults() {
    var memory = legacyTables()
    let walk = GuestPageWalk(cr0: pg | wp | 1, cr3: 0x10000, cr4: pse, efer: 0)
    #expect(translate(&memory, walk, 0x00C0_0000) == fault(.notPresent, level: 2, 0x00C0_0000))
    #expect(translate(&memory, walk, 0x0040_7000) == fault(.notPresent, level: 1, 0x0040_7000))
    #expect(translate(&memory, walk, 0x0040_6000, .write) == fault(.protection, level: 1, 0x0040_6000, .write))
    #expect(translate(&memory, walk, 0x0040_6000) == .success(0x2346_7000))
    // CR0.WP clear: a supervisor write ignores R/W; a user write never does.
    let noWP = GuestPageWalk(cr0: pg | 1, cr3: 0x10000, cr4: pse, efer: 0)
    #expect(translate(&memory, noWP, 0x0040_6000, .write) == .success(0x2346_7000))
    #expect(translate(&memory, noWP, 0x0040_6000, [.write, .user]) == fault(.protection, level: 1, 0x0040_6000, [.write, .user]))
    // The 4 MiB page is supervisor-only.
    #expect(translate(&memory, walk, 0x8000_0000, .user) == fault(.protection, level: 2, 0x8000_0000, .user))
    // Above 4 GiB is no 32-bit address.
    #expect(translate(&memory, walk, 0x1_0040_5000) == fault(.outOfRange, level: 0, 0x1_0040_5000))
    // A 4 MiB page with bits 21:13 set (no PSE-36): reserved.
    memory.set(0x10000 + 0x201 * 4, 0x0C40_0000 | p | ps | (1 << 13), size: 4)
    #expect(translate(&memory, walk, 0x8040_0000) == fault(.reservedBit, level: 2, 0x8040_0000))
    #expect(fault(.reservedBit, level: 2, 0, .write) == .failure(PageFault(.reservedBit, level: 2, address: 0, access: .write)))
  }

  @Test func legacyPSE36PutsAddressBits39To32InTheDirectoryEntry() {
    var memory = legacyTables()
    memory.set(0x10000 + 0x201 * 4, 0x0C40_0000 | p | ps | (0x3 << 13), size: 4)
    let walk = GuestPageWalk(cr0: pg | 1, cr3: 0x10000, cr4: pse, efer: 0, physicalAddressBits: 40, pse36: true)
    #expect(translate(&memory, walk, 0x8041_2345) == .success(0x3_0C41_2345))
    // Address bits at or above MAXPHYADDR (36 here: PDE bits 20:17) are reserved, bit 21 always.
    let narrow = GuestPageWalk(cr0: pg | 1, cr3: 0x10000, cr4: pse, efer: 0, physicalAddressBits: 36, pse36: true)
    #expect(translate(&memory, narrow, 0x8041_2345) == .success(0x3_0C41_2345))
    memory.set(0x10000 + 0x201 * 4, 0x0C40_0000 | p | ps | (1 << 17), size: 4)
    #expect(translate(&memory, narrow, 0x8041_2345) == fault(.reservedBit, level: 2, 0x8041_2345))
    memory.set(0x10000 + 0x201 * 4, 0x0C40_0000 | p | ps | (1 << 21), size: 4)
    #expect(translate(&memory, walk, 0x8041_2345) == fault(.reservedBit, level: 2, 0x8041_2345))
  }

  // ---- PAE ----

  /// PDPT at 0x10020 (32-byte aligned, inside a page); PDPT[1] → directory 0x12000; PDE 3 →
  /// table 0x13000; PDE 4 a 2 MiB page at 0x0060_0000.
  fileprivate func paeTables() -> FakeGuestPhysical {
    var memory = FakeGuestPhysical()
    memory.set(0x10020 + 1 * 8, 0x12000 | p, size: 8)
    memory.set(0x12000 + 3 * 8, 0x13000 | p | rw | us, size: 8)
    memory.set(0x12000 + 4 * 8, 0x0060_0000 | p | rw | ps, size: 8)
    memory.set(0x13000 + 7 * 8, 0x1_2345_6000 | p | rw | us, size: 8)     // above 4 GiB: PAE can
    memory.set(0x13000 + 8 * 8, 0x0004_5000 | p | rw | us | nx, size: 8)
    return memory
  }

  @Test func paeWalksThePDPTThenTwoLevels() {
    var memory = paeTables()
    let walk = GuestPageWalk(cr0: pg | wp | 1, cr3: 0x10020, cr4: pae, efer: nxe)
    let gva: UInt64 = (1 << 30) | (3 << 21) | (7 << 12) | 0x321
    #expect(translate(&memory, walk, gva) == .success(0x1_2345_6321))
    #expect(memory.reads.map(\.0) == [0x10028, 0x12018, 0x13038])
    #expect(memory.reads.map(\.1) == [8, 8, 8])
    let large: UInt64 = (1 << 30) | (4 << 21) | 0x1_2345
    #expect(translate(&memory, walk, large, .write) == .success(0x0061_2345))
  }

  @Test func paeFaults() {
    var memory = paeTables()
    let walk = GuestPageWalk(cr0: pg | wp | 1, cr3: 0x10020, cr4: pae, efer: nxe)
    #expect(translate(&memory, walk, 0) == fault(.notPresent, level: 3, 0))
    #expect(translate(&memory, walk, 1 << 30) == fault(.notPresent, level: 2, 1 << 30))
    let pte: UInt64 = (1 << 30) | (3 << 21)
    #expect(translate(&memory, walk, pte) == fault(.notPresent, level: 1, pte))
    // NX with EFER.NXE: a fetch faults, a read does not; without NXE bit 63 is reserved.
    let noExec = pte | (8 << 12)
    #expect(translate(&memory, walk, noExec) == .success(0x45000))
    #expect(translate(&memory, walk, noExec, .execute) == fault(.protection, level: 1, noExec, .execute))
    let withoutNXE = GuestPageWalk(cr0: pg | 1, cr3: 0x10020, cr4: pae, efer: 0)
    #expect(translate(&memory, withoutNXE, noExec) == fault(.reservedBit, level: 1, noExec))
    // The PDPT entry has no R/W or U/S: set, they are reserved.
    memory.set(0x10020 + 1 * 8, 0x12000 | p | rw, size: 8)
    #expect(translate(&memory, walk, pte | (7 << 12)) == fault(.reservedBit, level: 3, pte | (7 << 12)))
    memory.set(0x10020 + 1 * 8, 0x12000 | p, size: 8)
    // A and D in the PDPT entry are not reserved: the CPU sets A there on its own walks.
    let withoutAD = translate(&memory, walk, pte | (7 << 12))
    memory.set(0x10020 + 1 * 8, 0x12000 | p | (3 << 5), size: 8)
    #expect(translate(&memory, walk, pte | (7 << 12)) == withoutAD)
    memory.set(0x10020 + 1 * 8, 0x12000 | p, size: 8)
    // A 2 MiB page with bits 20:13 set; an address bit above MAXPHYADDR; bits 62:52.
    memory.set(0x12000 + 4 * 8, 0x0060_0000 | p | ps | (1 << 14), size: 8)
    let large: UInt64 = (1 << 30) | (4 << 21)
    #expect(translate(&memory, walk, large) == fault(.reservedBit, level: 2, large))
    memory.set(0x12000 + 4 * 8, 0x0060_0000 | p | ps | (1 << 12), size: 8)        // bit 12: PAT
    #expect(translate(&memory, walk, large) == .success(0x60_0000))
    let narrow = GuestPageWalk(cr0: pg | 1, cr3: 0x10020, cr4: pae, efer: nxe, physicalAddressBits: 32)
    #expect(translate(&memory, narrow, pte | (7 << 12)) == fault(.reservedBit, level: 1, pte | (7 << 12)))
    memory.set(0x13000 + 7 * 8, (1 << 55) | 0x6000 | p, size: 8)
    #expect(translate(&memory, walk, pte | (7 << 12)) == fault(.reservedBit, level: 1, pte | (7 << 12)))
    #expect(translate(&memory, walk, 0x1_0000_0000) == fault(.outOfRange, level: 0, 0x1_0000_0000))
  }

  // ---- Long mode ----

  /// PML4 0x10000; entry 0 → PDPT 0x11000; PDPT[0] → PD 0x12000; PDPT[1] a 1 GiB page at
  /// 0x8000_0000; PD[0] → PT 0x13000; PD[1] a 2 MiB page at 0x20_0000; PT[2] → 0x5000.
  fileprivate func longTables() -> FakeGuestPhysical {
    var memory = FakeGuestPhysical()
    memory.set(0x10000, 0x11000 | p | rw | us, size: 8)
    memory.set(0x11000, 0x12000 | p | rw | us, size: 8)
    memory.set(0x11008, 0x8000_0000 | p | rw | ps, size: 8)
    memory.set(0x12000, 0x13000 | p | rw | us, size: 8)
    memory.set(0x12008, 0x20_0000 | p | ps, size: 8)
    memory.set(0x13010, 0x5000 | p | rw | us, size: 8)
    // The top of the address space: PML4[511] → the same PDPT.
    memory.set(0x10000 + 511 * 8, 0x11000 | p | rw, size: 8)
    return memory
  }

  @Test func longModeWalksFourLevelsWithLargePages() {
    var memory = longTables()
    let walk = GuestPageWalk(cr0: pg | wp | 1, cr3: 0x10000, cr4: pae, efer: lma)
    #expect(translate(&memory, walk, 0x2ABC, .write) == .success(0x5ABC))
    #expect(memory.reads.map(\.0) == [0x10000, 0x11000, 0x12000, 0x13010])
    #expect(translate(&memory, walk, 0x4012_3456) == .success(0x8012_3456))
    #expect(translate(&memory, walk, 0x3F_FFFF) == .success(0x3F_FFFF))
    #expect(translate(&memory, walk, 0xFFFF_FF80_0000_2000) == .success(0x5000))
  }

  @Test func longModeFaults() {
    var memory = longTables()
    let walk = GuestPageWalk(cr0: pg | wp | 1, cr3: 0x10000, cr4: pae, efer: lma)
    #expect(translate(&memory, walk, 0x0000_8000_0000_0000) == fault(.outOfRange, level: 0, 0x0000_8000_0000_0000))
    #expect(translate(&memory, walk, 0x80_0000_0000) == fault(.notPresent, level: 4, 0x80_0000_0000))
    #expect(translate(&memory, walk, 0x8000_0000) == fault(.notPresent, level: 3, 0x8000_0000))
    #expect(translate(&memory, walk, 0x40_0000) == fault(.notPresent, level: 2, 0x40_0000))
    #expect(translate(&memory, walk, 0x3000) == fault(.notPresent, level: 1, 0x3000))
    #expect(translate(&memory, walk, 0x20_0000, .write) == fault(.protection, level: 2, 0x20_0000, .write))
    #expect(translate(&memory, walk, 0x2000, .user) == .success(0x5000))
    #expect(translate(&memory, walk, 0xFFFF_FF80_0000_2000, .user) == fault(.protection, level: 1, 0xFFFF_FF80_0000_2000, .user))
    // PS in a PML4 entry, G in a PML4 entry (AMD), a 1 GiB page's bits 29:13.
    memory.set(0x10000, 0x11000 | p | rw | ps, size: 8)
    #expect(translate(&memory, walk, 0x2000) == fault(.reservedBit, level: 4, 0x2000))
    memory.set(0x10000, 0x11000 | p | rw | 0x100, size: 8)
    #expect(translate(&memory, walk, 0x2000) == fault(.reservedBit, level: 4, 0x2000))
    memory.set(0x10000, 0x11000 | p | rw | us, size: 8)
    memory.set(0x11008, 0x8000_0000 | p | rw | ps | (1 << 20), size: 8)
    #expect(translate(&memory, walk, 0x4000_0000) == fault(.reservedBit, level: 3, 0x4000_0000))
    // A table outside the domain's memory: no guest fault, the walk just fails.
    memory.set(0x13010, 0x5000 | p | rw | us, size: 8)
    memory.set(0x12000, 0x2_0000_0000 | p | rw | us, size: 8)
    #expect(translate(&memory, walk, 0x2000) == fault(.tableNotMemory, level: 1, 0x2000))
  }

  @Test func errorCodesAreTheCPUs() {
    #expect(PageFault(.notPresent, level: 1, address: 0, access: .write).errorCode == 0x2)
    #expect(PageFault(.protection, level: 1, address: 0, access: [.write, .user]).errorCode == 0x7)
    #expect(PageFault(.reservedBit, level: 2, address: 0, access: .read).errorCode == 0x9)
    #expect(PageFault(.protection, level: 1, address: 0, access: .execute).errorCode == 0x11)
  }

  /// Random entries in every mode: any outcome, never a trap, and every entry read inside the
  /// table the walk was at.
  @Test func randomTablesNeverTrap() {
    var random = SplitMix64(seed: 0x5EED_0016)
    let modes: [(cr0: UInt64, cr4: UInt64, efer: UInt64)] = [
      (pg | wp | 1, pse, 0), (pg | 1, 0, 0), (pg | wp | 1, pae, nxe), (pg | 1, pae, 0),
      (pg | wp | 1, pae, lma | nxe), (pg | 1, pae, lma), (0x11, 0, 0),
    ]
    for _ in 0..<400 {
      var memory = FakeGuestPhysical()
      memory.limit = 0x40_0000
      // Entries anywhere in the first 4 MiB, random values (mostly present, addresses small).
      for _ in 0..<64 {
        let address = random.next() & 0x3F_FFF8
        var value = random.next()
        if value & 0x30 != 0 { value &= 0x8000_0000_003F_F1FF }
        memory.set(address, value, size: 8)
      }
      for mode in modes {
        let walk = GuestPageWalk(cr0: mode.cr0, cr3: random.next(), cr4: mode.cr4, efer: mode.efer,
                                 physicalAddressBits: Int(random.next() % 80), pse36: random.next() & 1 != 0)
        let access = GuestAccess(rawValue: UInt32(random.next() & 0x16))
        _ = translate(&memory, walk, random.next() & (random.next() & 1 == 0 ? 0xFFFF_FFFF : ~0), access)
        #expect(memory.reads.count <= 4)
        memory.reads.removeAll()
      }
    }
  }
}
