import Testing

@testable import Hypervisor

/// Builds small ELF files for the tests: a header, program headers, the segments' bytes, and
/// optionally note sections with a section header table.
struct ELFFixture {
  struct Segment {
    var type: UInt32 = 1  // PT_LOAD
    var paddr: UInt64
    var data: [UInt8]
    var memorySize: UInt64? = nil
    var align: UInt64 = 4
  }

  var is64Bit = true
  var machine: UInt16 = 62
  var type: UInt16 = 2
  var segments: [Segment] = []
  /// Notes placed in SHT_NOTE sections instead of PT_NOTE segments.
  var noteSections: [[UInt8]] = []

  static func note(name: [UInt8], type: UInt32, descriptor: [UInt8], padding: Int = 4) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.append32(UInt32(name.count))
    bytes.append32(UInt32(descriptor.count))
    bytes.append32(type)
    bytes += name
    while bytes.count % padding != 0 { bytes.append(0) }
    bytes += descriptor
    while bytes.count % padding != 0 { bytes.append(0) }
    return bytes
  }

  /// XEN_ELFNOTE_PHYS32_ENTRY with an 8- or 4-byte value.
  static func pvhNote(_ entry: UInt64, size: Int = 8, padding: Int = 4) -> [UInt8] {
    let value = (0..<size).map { UInt8(truncatingIfNeeded: entry >> UInt64(8 * $0)) }
    return note(name: Array("Xen\0".utf8), type: 18, descriptor: value, padding: padding)
  }

  /// A typical kernel: text at 1 MiB holding the entry, data with .bss after it, and the note.
  static func kernel(is64Bit: Bool = true, machine: UInt16 = 62, entry: UInt64 = 0x10_0010, noteSize: Int = 8) -> ELFFixture {
    var elf = ELFFixture(is64Bit: is64Bit, machine: machine)
    elf.segments = [
      Segment(paddr: 0x10_0000, data: (0..<300).map { UInt8(truncatingIfNeeded: $0) }),
      Segment(paddr: 0x20_0000, data: [1, 2, 3, 4, 5], memorySize: 0x3000),
      Segment(type: 4, paddr: 0, data: pvhNote(entry, size: noteSize)),
    ]
    return elf
  }

  var headerSize: Int { is64Bit ? 64 : 52 }
  var programHeaderSize: Int { is64Bit ? 56 : 32 }
  var sectionHeaderSize: Int { is64Bit ? 64 : 40 }

  func bytes() -> [UInt8] {
    var file = [UInt8](repeating: 0, count: headerSize + segments.count * programHeaderSize)
    var offsets: [Int] = []
    for segment in segments {
      while file.count % 8 != 0 { file.append(0) }
      offsets.append(file.count)
      file += segment.data
    }
    var sectionOffsets: [Int] = []
    for section in noteSections {
      while file.count % 8 != 0 { file.append(0) }
      sectionOffsets.append(file.count)
      file += section
    }
    while file.count % 8 != 0 { file.append(0) }
    let sectionTable = noteSections.isEmpty ? 0 : file.count
    if !noteSections.isEmpty {
      file += [UInt8](repeating: 0, count: (noteSections.count + 1) * sectionHeaderSize)
    }

    file.replaceSubrange(0..<4, with: [0x7F, 0x45, 0x4C, 0x46])
    file[4] = is64Bit ? 2 : 1
    file[5] = 1
    file[6] = 1
    file.put16(type, at: 16)
    file.put16(machine, at: 18)
    file.put32(1, at: 20)
    if is64Bit {
      file.put64(0xFFFF_FFFF_8100_0000, at: 24)
      file.put64(UInt64(headerSize), at: 32)
      file.put64(UInt64(sectionTable), at: 40)
      file.put16(64, at: 52)
      file.put16(UInt16(programHeaderSize), at: 54)
      file.put16(UInt16(segments.count), at: 56)
      file.put16(UInt16(sectionHeaderSize), at: 58)
      file.put16(UInt16(noteSections.isEmpty ? 0 : noteSections.count + 1), at: 60)
    } else {
      file.put32(0xC100_0000, at: 24)
      file.put32(UInt32(headerSize), at: 28)
      file.put32(UInt32(sectionTable), at: 32)
      file.put16(52, at: 40)
      file.put16(UInt16(programHeaderSize), at: 42)
      file.put16(UInt16(segments.count), at: 44)
      file.put16(UInt16(sectionHeaderSize), at: 46)
      file.put16(UInt16(noteSections.isEmpty ? 0 : noteSections.count + 1), at: 48)
    }

    for (index, segment) in segments.enumerated() {
      let at = headerSize + index * programHeaderSize
      let memorySize = segment.memorySize ?? UInt64(segment.data.count)
      if is64Bit {
        file.put32(segment.type, at: at)
        file.put32(5, at: at + 4)
        file.put64(UInt64(offsets[index]), at: at + 8)
        file.put64(segment.paddr &+ 0xFFFF_FFFF_8000_0000, at: at + 16)
        file.put64(segment.paddr, at: at + 24)
        file.put64(UInt64(segment.data.count), at: at + 32)
        file.put64(memorySize, at: at + 40)
        file.put64(segment.align, at: at + 48)
      } else {
        file.put32(segment.type, at: at)
        file.put32(UInt32(offsets[index]), at: at + 4)
        file.put32(UInt32(truncatingIfNeeded: segment.paddr), at: at + 8)
        file.put32(UInt32(truncatingIfNeeded: segment.paddr), at: at + 12)
        file.put32(UInt32(segment.data.count), at: at + 16)
        file.put32(UInt32(truncatingIfNeeded: memorySize), at: at + 20)
        file.put32(5, at: at + 24)
        file.put32(UInt32(segment.align), at: at + 28)
      }
    }

    for (index, section) in noteSections.enumerated() {
      let at = sectionTable + (index + 1) * sectionHeaderSize
      if is64Bit {
        file.put32(7, at: at + 4)
        file.put64(UInt64(sectionOffsets[index]), at: at + 24)
        file.put64(UInt64(section.count), at: at + 32)
        file.put64(4, at: at + 48)
      } else {
        file.put32(7, at: at + 4)
        file.put32(UInt32(sectionOffsets[index]), at: at + 16)
        file.put32(UInt32(section.count), at: at + 20)
        file.put32(4, at: at + 32)
      }
    }
    return file
  }
}

extension Array where Element == UInt8 {
  fileprivate mutating func append32(_ value: UInt32) {
    for i in 0..<4 { append(UInt8(truncatingIfNeeded: value >> UInt32(8 * i))) }
  }
  fileprivate mutating func put16(_ value: UInt16, at offset: Int) {
    self[offset] = UInt8(truncatingIfNeeded: value)
    self[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
  }
  fileprivate mutating func put32(_ value: UInt32, at offset: Int) {
    for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
  }
  fileprivate mutating func put64(_ value: UInt64, at offset: Int) {
    for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
  }
}

private func elfError(_ bytes: [UInt8]) -> ELFError? {
  do {
    _ = try ELFImage.parse(bytes)
    return nil
  } catch {
    return error
  }
}

@Suite struct ELFImageTests {
  @Test func elf64Kernel() throws {
    let file = ELFFixture.kernel().bytes()
    let image = try ELFImage.parse(file)
    #expect(image.is64Bit)
    #expect(image.machine == 62)
    #expect(image.entry == 0xFFFF_FFFF_8100_0000)
    #expect(image.pvhEntry == 0x10_0010)
    #expect(image.segments.count == 2)
    #expect(image.segments[0].physicalAddress == 0x10_0000)
    #expect(image.segments[0].fileSize == 300)
    #expect(image.segments[0].memorySize == 300)
    #expect(Array(file[image.segments[0].fileRange]) == (0..<300).map { UInt8(truncatingIfNeeded: $0) })
    #expect(image.segments[1].physicalAddress == 0x20_0000)
    #expect(image.segments[1].fileSize == 5)
    #expect(image.segments[1].memorySize == 0x3000)
    #expect(Array(file[image.segments[1].fileRange]) == [1, 2, 3, 4, 5])
    #expect(image.lowestAddress == 0x10_0000)
    #expect(image.highestAddress == 0x20_3000)
  }

  @Test(arguments: [UInt16(3), UInt16(62)])
  func elf32Kernel(machine: UInt16) throws {
    let image = try ELFImage.parse(ELFFixture.kernel(is64Bit: false, machine: machine, noteSize: 4).bytes())
    #expect(!image.is64Bit)
    #expect(image.machine == machine)
    #expect(image.entry == 0xC100_0000)
    #expect(image.pvhEntry == 0x10_0010)
    #expect(image.segments.map { $0.physicalAddress } == [0x10_0000, 0x20_0000])
    #expect(image.highestAddress == 0x20_3000)
    // An 8-byte value is accepted in ELF32 too.
    #expect(try ELFImage.parse(ELFFixture.kernel(is64Bit: false, machine: machine, noteSize: 8).bytes()).pvhEntry == 0x10_0010)
  }

  @Test func notesAmongOthers() throws {
    var elf = ELFFixture.kernel()
    let gnu = ELFFixture.note(name: Array("GNU\0".utf8), type: 3, descriptor: [1, 2, 3, 4, 5, 6, 7])
    let otherXen = ELFFixture.note(name: Array("Xen\0".utf8), type: 6, descriptor: Array("linux\0".utf8))
    let linux18 = ELFFixture.note(name: Array("Linux\0".utf8), type: 18, descriptor: [0, 0, 0, 0])
    elf.segments[2].data = gnu + otherXen + linux18 + ELFFixture.pvhNote(0x10_0020)
    #expect(try ELFImage.parse(elf.bytes()).pvhEntry == 0x10_0020)

    // A second note segment, 8-aligned, after one without the entry.
    elf.segments[2].data = gnu
    elf.segments.append(.init(type: 4, paddr: 0, data: ELFFixture.pvhNote(0x10_0030, padding: 8), align: 8))
    #expect(try ELFImage.parse(elf.bytes()).pvhEntry == 0x10_0030)
  }

  @Test func notesInSectionsWhenNoNoteSegment() throws {
    for is64Bit in [true, false] {
      var elf = ELFFixture.kernel(is64Bit: is64Bit)
      elf.segments.removeLast()
      elf.noteSections = [ELFFixture.note(name: Array("GNU\0".utf8), type: 1, descriptor: [9]), ELFFixture.pvhNote(0x10_0040)]
      #expect(try ELFImage.parse(elf.bytes()).pvhEntry == 0x10_0040)
    }
  }

  @Test func emptySegmentsAreSkipped() throws {
    var elf = ELFFixture.kernel()
    elf.segments.append(.init(paddr: 0, data: [], memorySize: 0))
    #expect(try ELFImage.parse(elf.bytes()).segments.count == 2)
  }

  @Test func headerErrors() {
    let good = ELFFixture.kernel().bytes()
    #expect(elfError([]) == .notELF)
    #expect(elfError(Array(good[0..<15])) == .notELF)
    var data = good
    data[1] = UInt8(ascii: "X")
    #expect(elfError(data) == .notELF)
    data = good
    data[4] = 3
    #expect(elfError(data) == .unsupportedClass(3))
    data = good
    data[5] = 2
    #expect(elfError(data) == .unsupportedEndianness(2))
    data = good
    data[6] = 0
    #expect(elfError(data) == .unsupportedVersion(0))
    #expect(elfError(Array(good[0..<40])) == .truncatedHeader)
    data = good
    data.put16(1, at: 16)  // ET_REL
    #expect(elfError(data) == .unsupportedType(1))
    data = good
    data.put16(3, at: 18)  // i386 machine in an ELF64
    #expect(elfError(data) == .unsupportedMachine(3, is64Bit: true))
    var elf32 = ELFFixture.kernel(is64Bit: false, machine: 40).bytes()  // ARM
    #expect(elfError(elf32) == .unsupportedMachine(40, is64Bit: false))
    elf32 = ELFFixture.kernel(is64Bit: false).bytes()
    #expect(elfError(Array(elf32[0..<51])) == .truncatedHeader)
  }

  @Test func programHeaderErrors() {
    let good = ELFFixture.kernel().bytes()
    var data = good
    data.put16(0, at: 56)  // e_phnum
    #expect(elfError(data) == .noLoadableSegments)
    data = good
    data.put16(40, at: 54)  // e_phentsize
    #expect(elfError(data) == .badProgramHeaderSize(40))
    data = good
    data.put64(UInt64(good.count - 10), at: 32)  // e_phoff
    #expect(elfError(data) == .programHeadersOutsideFile)
    data = good
    data.put64(UInt64.max - 20, at: 32)
    #expect(elfError(data) == .programHeadersOutsideFile)

    // Segment 0's fields (program header at 64).
    data = good
    data.put64(UInt64(good.count), at: 64 + 8)  // p_offset
    #expect(elfError(data) == .segmentOutsideFile(index: 0))
    data = good
    data.put64(UInt64.max, at: 64 + 32)  // p_filesz
    #expect(elfError(data) == .segmentOutsideFile(index: 0))
    data = good
    data.put64(100, at: 64 + 40)  // p_memsz < p_filesz
    #expect(elfError(data) == .memorySizeBelowFileSize(index: 0))
    data = good
    data.put64(UInt64.max - 100, at: 64 + 24)  // p_paddr
    #expect(elfError(data) == .addressOverflow(index: 0))
    // The note segment's range (program header 2).
    data = good
    data.put64(UInt64(good.count), at: 64 + 2 * 56 + 32)
    #expect(elfError(data) == .segmentOutsideFile(index: 2))

    // ELF32: an address past 4 GiB.
    var elf = ELFFixture.kernel(is64Bit: false)
    elf.segments[1].paddr = 0xFFFF_F000
    #expect(elfError(elf.bytes()) == .addressOverflow(index: 1))

    // Overlapping segments.
    elf = ELFFixture.kernel()
    elf.segments[1].paddr = 0x10_0100
    #expect(elfError(elf.bytes()) == .segmentsOverlap(0, 1))

    // Only a note segment.
    elf = ELFFixture.kernel()
    elf.segments.removeFirst(2)
    #expect(elfError(elf.bytes()) == .noLoadableSegments)
  }

  @Test func noteErrors() {
    var elf = ELFFixture.kernel()
    elf.segments.removeLast()
    #expect(elfError(elf.bytes()) == .missingPVHEntry)
    #expect(ELFError.missingPVHEntry.message() == Array("missing XEN_ELFNOTE_PHYS32_ENTRY: this kernel cannot boot as PVH".utf8))

    elf = ELFFixture.kernel()
    elf.segments[2].data = ELFFixture.note(name: Array("Xen\0".utf8), type: 17, descriptor: [0, 0, 0, 0])
    #expect(elfError(elf.bytes()) == .missingPVHEntry)

    elf.segments[2].data = ELFFixture.note(name: Array("Xen\0".utf8), type: 18, descriptor: [0x10, 0, 0x10, 0, 0, 0])
    #expect(elfError(elf.bytes()) == .badPVHNoteSize(6))

    // A name size running past the segment.
    var note = ELFFixture.pvhNote(0x10_0010)
    note.put32(1000, at: 0)
    elf.segments[2].data = note
    #expect(elfError(elf.bytes()) == .malformedNote)
    note = ELFFixture.pvhNote(0x10_0010)
    note.put32(UInt32.max, at: 4)
    elf.segments[2].data = note
    #expect(elfError(elf.bytes()) == .malformedNote)

    // The entry must be inside a loaded segment.
    #expect(elfError(ELFFixture.kernel(entry: 0x50_0000).bytes()) == .entryOutsideSegments(0x50_0000))

    // Section table problems matter only when the sections are needed.
    elf = ELFFixture.kernel()
    elf.segments.removeLast()
    elf.noteSections = [ELFFixture.pvhNote(0x10_0010)]
    var data = elf.bytes()
    data.put64(UInt64(data.count - 8), at: 40)  // e_shoff
    #expect(elfError(data) == .sectionHeadersOutsideFile)
    data = elf.bytes()
    let shoff = Int(data[40]) | Int(data[41]) << 8 | Int(data[42]) << 16
    data.put64(UInt64(data.count), at: shoff + 64 + 24)  // section 1's sh_offset
    #expect(elfError(data) == .sectionOutsideFile(index: 1))
  }

  @Test func checkFits() throws {
    let image = try ELFImage.parse(ELFFixture.kernel().bytes())
    try image.checkFits(guestMemoryBytes: 16 << 20, reserved: [0..<0x10_0000, 0xFEFF_8000..<0xFF00_0000])
    try image.checkFits(guestMemoryBytes: 0x20_3000, reserved: [])
    #expect(throws: ELFError.segmentOutsideGuestMemory(index: 1, end: 0x20_3000, memory: 0x20_2FFF)) {
      try image.checkFits(guestMemoryBytes: 0x20_2FFF, reserved: [])
    }
    #expect(throws: ELFError.segmentOverlapsReserved(index: 0, reserved: 0x10_0000..<0x10_1000)) {
      try image.checkFits(guestMemoryBytes: 1 << 30, reserved: [0x10_0000..<0x10_1000])
    }
    #expect(throws: ELFError.segmentOverlapsReserved(index: 1, reserved: 0x20_2FFF..<0x20_4000)) {
      try image.checkFits(guestMemoryBytes: 1 << 30, reserved: [0x20_2FFF..<0x20_4000])
    }
    // Touching a reserved range is fine.
    try image.checkFits(guestMemoryBytes: 1 << 30, reserved: [0x20_3000..<0x20_4000, 0x0F_F000..<0x10_0000])
  }

  @Test func mutationFuzzNeverTraps() {
    var random = SplitMix64(seed: 0xE1F)
    for base in [ELFFixture.kernel().bytes(), ELFFixture.kernel(is64Bit: false, noteSize: 4).bytes()] {
      var parsed = 0
      for _ in 0..<4000 {
        var data = base
        for _ in 0..<(1 + Int(random.next() % 4)) {
          // Mostly the headers, where the offsets and sizes live.
          let limit = random.next() % 3 == 0 ? data.count : min(data.count, 240)
          let index = Int(random.next() % UInt64(limit))
          switch random.next() % 3 {
          case 0: data[index] = UInt8(truncatingIfNeeded: random.next())
          case 1: data[index] ^= UInt8(1) << UInt8(random.next() % 8)
          default: data[index] = [0x00, 0xFF, 0x7F, 0x80][Int(random.next() % 4)]
          }
        }
        if random.next() % 16 == 0 { data.removeLast(Int(random.next() % UInt64(data.count))) }
        if let image = try? ELFImage.parse(data) {
          parsed += 1
          for segment in image.segments {
            #expect(segment.fileRange.upperBound <= data.count)
            #expect(UInt64(segment.fileSize) <= segment.memorySize)
          }
          #expect(image.segments.contains { $0.physicalRange.contains(image.pvhEntry) })
        }
      }
      #expect(parsed > 0)
    }
  }
}
