import Hypervisor
import Testing
@testable import X86

// MARK: - PVH

/// An hvm_start_info; `version` 0 gives the 40-byte form.
func pvhStartInfo(magic: UInt32 = 0x336E_C578, version: UInt32, modules: UInt32 = 0, modlist: UInt64 = 0,
                  cmdline: UInt64 = 0, rsdp: UInt64 = 0, memmap: UInt64 = 0, memmapEntries: UInt32 = 0) -> [UInt8] {
  var writer = ByteWriter()
  writer.u32(magic)
  writer.u32(version)
  writer.u32(0)  // flags
  writer.u32(modules)
  writer.u64(modlist)
  writer.u64(cmdline)
  writer.u64(rsdp)
  if version >= 1 {
    writer.u64(memmap)
    writer.u32(memmapEntries)
    writer.u32(0)
  }
  return writer.bytes
}

func memmapEntry(_ base: UInt64, _ length: UInt64, _ type: UInt32) -> [UInt8] {
  var writer = ByteWriter()
  writer.u64(base); writer.u64(length); writer.u32(type); writer.u32(0)
  return writer.bytes
}

/// Memory with a command line, two modules (one with a command line) and a memory map.
func pvhMemory() -> FakeMemory {
  var memory = FakeMemory()
  memory.place(cString("console=com1 loglvl=all"), at: 0x8000)
  memory.place(cString("bundle"), at: 0x8100)
  var modlist = ByteWriter()
  modlist.u64(0x20_0000); modlist.u64(0x1234); modlist.u64(0x8100); modlist.u64(0)
  modlist.u64(0x40_0000); modlist.u64(0x10); modlist.u64(0); modlist.u64(0)
  memory.place(modlist.bytes, at: 0x7000)
  let memmap = memmapEntry(0, 0x9_FC00, 1)
    + memmapEntry(0x9_FC00, 0x400, 2)
    + memmapEntry(0x10_0000, 0x7EF0_0000, 1)
    + memmapEntry(0x7F00_0000, 0x1_0000, 3)
    + memmapEntry(0x7FFF_0000, 0x1_0000, 7)   // PVH "persistent memory": not for us
    + memmapEntry(0xFEE0_0000, 0x1000, 99)    // unknown type
    + memmapEntry(0xFFFF_0000, 0, 1)          // empty: dropped
  memory.place(memmap, at: 0x9000)
  return memory
}

let expectedPVHRegions = [
  MemoryRegion(base: 0, length: 0x9_FC00, kind: .ram),
  MemoryRegion(base: 0x9_FC00, length: 0x400, kind: .reserved),
  MemoryRegion(base: 0x10_0000, length: 0x7EF0_0000, kind: .ram),
  MemoryRegion(base: 0x7F00_0000, length: 0x1_0000, kind: .acpiReclaimable),
  MemoryRegion(base: 0x7FFF_0000, length: 0x1_0000, kind: .reserved),
  MemoryRegion(base: 0xFEE0_0000, length: 0x1000, kind: .reserved),
]

@Suite struct PVHStartInfoTests {
  @Test func version1WithEverything() throws {
    var memory = pvhMemory()
    memory.place(pvhStartInfo(version: 1, modules: 2, modlist: 0x7000, cmdline: 0x8000, rsdp: 0xF_5A40,
                              memmap: 0x9000, memmapEntries: 7), at: 0x6000)
    let info = try BootInfo.parsePVH(startInfo: 0x6000, memory: memory)
    #expect(info.loader == .pvh)
    #expect(info.commandLine == ascii("console=com1 loglvl=all"))
    #expect(info.rsdpAddress == 0xF_5A40)
    #expect(info.loaderName.isEmpty)
    #expect(info.modules == [
      BootModule(start: 0x20_0000, size: 0x1234, commandLine: ascii("bundle")),
      BootModule(start: 0x40_0000, size: 0x10, commandLine: []),
    ])
    #expect(info.memoryMap.regions == expectedPVHRegions)
  }

  @Test func version0HasNoMemoryMap() throws {
    var memory = pvhMemory()
    // Only the 40 bytes of version 0 exist: reading further would fail.
    memory.place(pvhStartInfo(version: 0, modules: 1, modlist: 0x7000, cmdline: 0x8000), at: 0x6000)
    let info = try BootInfo.parsePVH(startInfo: 0x6000, memory: memory)
    #expect(info.commandLine == ascii("console=com1 loglvl=all"))
    #expect(info.rsdpAddress == nil)
    #expect(info.modules == [BootModule(start: 0x20_0000, size: 0x1234, commandLine: ascii("bundle"))])
    #expect(info.memoryMap.regions.isEmpty)
  }

  @Test func zeroAddressesMeanAbsent() throws {
    var memory = FakeMemory()
    memory.place(pvhStartInfo(version: 1, modules: 3, modlist: 0, memmap: 0, memmapEntries: 4), at: 0x6000)
    let info = try BootInfo.parsePVH(startInfo: 0x6000, memory: memory)
    #expect(info.commandLine.isEmpty)
    #expect(info.modules.isEmpty)
    #expect(info.memoryMap.regions.isEmpty)
    #expect(info.rsdpAddress == nil)
  }

  @Test func badMagic() {
    var memory = FakeMemory()
    memory.place(pvhStartInfo(magic: 0x1234_5678, version: 1), at: 0x6000)
    #expect(throws: BootInfoError.badMagic(0x1234_5678)) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }
    #expect(throws: BootInfoError.unreadable(address: 0x5000)) { try BootInfo.parsePVH(startInfo: 0x5000, memory: memory) }
  }

  @Test func countsAreCapped() {
    var memory = pvhMemory()
    memory.place(pvhStartInfo(version: 1, memmap: 0x9000, memmapEntries: 5000), at: 0x6000)
    #expect(throws: BootInfoError.tooManyEntries(5000)) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }
    memory.place(pvhStartInfo(version: 1, modules: 0xFFFF_FFFF, modlist: 0x7000), at: 0x6000)
    #expect(throws: BootInfoError.tooManyEntries(0xFFFF_FFFF)) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }
    // A plausible count whose table is not all there.
    memory.place(pvhStartInfo(version: 1, modules: 3, modlist: 0x7000), at: 0x6000)
    #expect(throws: BootInfoError.unreadable(address: 0x7000)) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }
  }

  @Test func commandLineReading() throws {
    var memory = FakeMemory()
    // A string that ends right before unreadable memory, at an unaligned address.
    memory.place(cString("abc"), at: 0x8005)
    memory.place(pvhStartInfo(version: 0, cmdline: 0x8005), at: 0x6000)
    #expect(try BootInfo.parsePVH(startInfo: 0x6000, memory: memory).commandLine == ascii("abc"))

    // A string longer than one chunk.
    let long = String(repeating: "x", count: 1000)
    memory.place(cString(long), at: 0x9000)
    memory.place(pvhStartInfo(version: 0, cmdline: 0x9000), at: 0x6000)
    #expect(try BootInfo.parsePVH(startInfo: 0x6000, memory: memory).commandLine == ascii(long))

    // No NUL anywhere near: a bad pointer.
    memory.place([UInt8](repeating: 0x41, count: 5000), at: 0x10000)
    memory.place(pvhStartInfo(version: 0, cmdline: 0x10000), at: 0x6000)
    #expect(throws: BootInfoError.truncated) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }

    // Runs into unreadable memory.
    memory.place(ascii("abcdef"), at: 0x20000)
    memory.place(pvhStartInfo(version: 0, cmdline: 0x20000), at: 0x6000)
    #expect(throws: BootInfoError.unreadable(address: 0x20006)) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }

    // At the very top of the address space.
    memory.place(pvhStartInfo(version: 0, cmdline: UInt64.max), at: 0x6000)
    #expect(throws: BootInfoError.unreadable(address: UInt64.max)) { try BootInfo.parsePVH(startInfo: 0x6000, memory: memory) }
  }
}

// MARK: - Multiboot2

/// Builds a multiboot2 information structure tag by tag, remembering where each tag starts.
struct MBIBuilder {
  var body = ByteWriter()
  var tagOffsets: [Int] = []

  init() {
    body.u32(0)  // total_size, set by finish()
    body.u32(0)
  }

  mutating func tag(_ type: UInt32, _ payload: [UInt8], size: UInt32? = nil) {
    body.align(to: 8)
    tagOffsets.append(body.count)
    body.u32(type)
    body.u32(size ?? UInt32(8 + payload.count))
    body.bytes(payload)
  }

  mutating func finish(endTag: Bool = true) -> [UInt8] {
    if endTag { tag(0, []) }
    body.set32(UInt32(body.count), at: 0)
    return body.bytes
  }
}

func moduleTag(_ start: UInt32, _ end: UInt32, _ string: String) -> [UInt8] {
  var writer = ByteWriter()
  writer.u32(start); writer.u32(end); writer.cString(string)
  return writer.bytes
}

func mmapTag(entrySize: UInt32 = 24, _ entries: [(UInt64, UInt64, UInt32)]) -> [UInt8] {
  var writer = ByteWriter()
  writer.u32(entrySize); writer.u32(0)
  for (base, length, type) in entries {
    writer.bytes(memmapEntry(base, length, type))
    writer.zeros(Int(entrySize) - 24)
  }
  return writer.bytes
}

let mb2Magic: UInt32 = 0x36D7_6289

@Suite struct Multiboot2Tests {
  @Test func parsesEveryTagItKnows() throws {
    var builder = MBIBuilder()
    builder.tag(1, cString("hv console=com1"))
    builder.tag(2, cString("GRUB 2.12"))
    builder.tag(4, [0x80, 0x02, 0, 0, 0x00, 0xFC, 0x07, 0])  // basic meminfo: skipped
    builder.tag(3, moduleTag(0x30_0000, 0x30_1000, "bundle.bin"))
    builder.tag(3, moduleTag(0x40_0000, 0x40_0100, ""))
    builder.tag(6, mmapTag([
      (0, 0x9_FC00, 1), (0x9_FC00, 0x400, 2), (0x10_0000, 0x3FF0_0000, 1),
      (0x4000_0000, 0x1_0000, 4), (0xFFFC_0000, 0x4_0000, 12),
    ]))
    builder.tag(14, rsdpBytes(revision: 0, rsdt: 0x3FFE_0000))
    builder.tag(15, rsdpBytes(revision: 2, rsdt: 0x3FFE_0000, xsdt: 0x3FFE_1000))
    let newRSDPOffset = builder.tagOffsets.last!
    let mbi = builder.finish()

    var memory = FakeMemory()
    memory.place(mbi, at: 0x1_0000)
    let info = try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    #expect(info.loader == .multiboot2)
    #expect(info.commandLine == ascii("hv console=com1"))
    #expect(info.loaderName == ascii("GRUB 2.12"))
    #expect(info.modules == [
      BootModule(start: 0x30_0000, size: 0x1000, commandLine: ascii("bundle.bin")),
      BootModule(start: 0x40_0000, size: 0x100, commandLine: []),
    ])
    #expect(info.memoryMap.regions == [
      MemoryRegion(base: 0, length: 0x9_FC00, kind: .ram),
      MemoryRegion(base: 0x9_FC00, length: 0x400, kind: .reserved),
      MemoryRegion(base: 0x10_0000, length: 0x3FF0_0000, kind: .ram),
      MemoryRegion(base: 0x4000_0000, length: 0x1_0000, kind: .acpiNVS),
      MemoryRegion(base: 0xFFFC_0000, length: 0x4_0000, kind: .reserved),
    ])
    // The tag holds a copy of the RSDP; its address is what the ACPI code should be given.
    let rsdpAddress = try #require(info.rsdpAddress)
    #expect(rsdpAddress == 0x1_0000 + UInt64(newRSDPOffset) + 8)
    let found = try ACPI.findRSDP(hint: rsdpAddress, memory: memory)
    #expect(found.rsdp.xsdtAddress == 0x3FFE_1000)
  }

  @Test func newRSDPWinsWhicheverComesFirst() throws {
    var builder = MBIBuilder()
    builder.tag(15, rsdpBytes(revision: 2, rsdt: 0x1000, xsdt: 0x2000))
    let newOffset = builder.tagOffsets.last!
    builder.tag(14, rsdpBytes(revision: 0, rsdt: 0x1000))
    var memory = FakeMemory()
    memory.place(builder.finish(), at: 0x1_0000)
    let info = try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    #expect(info.rsdpAddress == 0x1_0000 + UInt64(newOffset) + 8)

    var oldOnly = MBIBuilder()
    oldOnly.tag(14, rsdpBytes(revision: 0, rsdt: 0x1000))
    memory.place(oldOnly.finish(), at: 0x1_0000)
    let old = try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    #expect(old.rsdpAddress == 0x1_0000 + 8 + 8)
  }

  @Test func emptyInformation() throws {
    var builder = MBIBuilder()
    var memory = FakeMemory()
    memory.place(builder.finish(), at: 0x1_0000)
    let info = try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    #expect(info.commandLine.isEmpty && info.modules.isEmpty && info.rsdpAddress == nil)
    #expect(info.memoryMap.regions.isEmpty)
  }

  @Test func largerMemoryMapEntriesAreSteppedBySize() throws {
    var builder = MBIBuilder()
    builder.tag(6, mmapTag(entrySize: 32, [(0, 0x8_0000, 1), (0x10_0000, 0x10_0000, 1)]))
    var memory = FakeMemory()
    memory.place(builder.finish(), at: 0x1_0000)
    let info = try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    #expect(info.memoryMap.regions == [
      MemoryRegion(base: 0, length: 0x8_0000, kind: .ram),
      MemoryRegion(base: 0x10_0000, length: 0x10_0000, kind: .ram),
    ])
  }

  @Test func badMagicAndUnreadable() {
    let memory = FakeMemory()
    #expect(throws: BootInfoError.badMagic(0x2BAD_B002)) {
      try BootInfo.parseMultiboot2(magic: 0x2BAD_B002, info: 0x1_0000, memory: memory)
    }
    #expect(throws: BootInfoError.unreadable(address: 0x1_0000)) {
      try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    }
  }

  @Test func aTagRunningPastTotalSizeIsTruncated() {
    var builder = MBIBuilder()
    builder.tag(1, cString("hv"), size: 4000)
    var memory = FakeMemory()
    memory.place(builder.finish(), at: 0x1_0000)
    #expect(throws: BootInfoError.truncated) {
      try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    }
  }

  @Test(arguments: MalformedMBI.allCases)
  func malformedInformationThrows(_ malformed: MalformedMBI) {
    var memory = FakeMemory()
    memory.place(malformed.bytes, at: 0x1_0000)
    #expect(throws: malformed.error) {
      try BootInfo.parseMultiboot2(magic: mb2Magic, info: 0x1_0000, memory: memory)
    }
  }
}

enum MalformedMBI: CaseIterable, Sendable {
  case noEndTag, tagSizeBelowHeader, tagHeaderPastEnd, totalSizeTooSmall, totalSizeHuge, totalSizeBeyondMemory
  case moduleTooShort, moduleEndBeforeStart, mmapEntrySizeTooSmall, mmapTooShort, tooManyMmapEntries
  case rsdpTagTooShort

  var bytes: [UInt8] {
    var builder = MBIBuilder()
    switch self {
    case .noEndTag:
      builder.tag(1, cString("hv"))
      return builder.finish(endTag: false)
    case .tagSizeBelowHeader:
      builder.tag(1, [], size: 4)
    case .tagHeaderPastEnd:
      builder.tag(1, cString("hv"))
      var bytes = builder.finish(endTag: false)
      bytes += [0, 0, 0, 0]  // half a tag header
      bytes.replaceSubrange(0..<4, with: [UInt8(bytes.count), 0, 0, 0])
      return bytes
    case .totalSizeTooSmall:
      return [8, 0, 0, 0, 0, 0, 0, 0]
    case .totalSizeHuge:
      var bytes = builder.finish()
      bytes.replaceSubrange(0..<4, with: [0, 0, 0, 0x10])
      return bytes
    case .totalSizeBeyondMemory:
      var bytes = builder.finish()
      bytes.replaceSubrange(0..<4, with: [0, 0x10, 0, 0])
      return bytes
    case .moduleTooShort:
      builder.tag(3, [0, 0, 0x30, 0])
    case .moduleEndBeforeStart:
      builder.tag(3, moduleTag(0x40_0000, 0x30_0000, "x"))
    case .mmapEntrySizeTooSmall:
      builder.tag(6, [16, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 32))
    case .mmapTooShort:
      builder.tag(6, [24, 0, 0, 0])
    case .tooManyMmapEntries:
      builder.tag(6, mmapTag(Array(repeating: (0, 0x1000, 1), count: 1025)))
    case .rsdpTagTooShort:
      builder.tag(15, rsdpBytes(revision: 0, rsdt: 0x1000))
    }
    return builder.finish()
  }

  var error: BootInfoError {
    switch self {
    case .totalSizeBeyondMemory: .unreadable(address: 0x1_0000)
    case .tooManyMmapEntries: .tooManyEntries(1025)
    default: .truncated
    }
  }
}
