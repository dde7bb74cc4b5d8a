import XenABI

// Reading a guest kernel's ELF file: what to load where, and where a PVH guest starts.
//
// A PVH kernel is loaded by physical address (p_paddr, not p_vaddr: Linux's per-CPU segment has
// vaddr 0) and entered at the address in its XEN_ELFNOTE_PHYS32_ENTRY note, in 32-bit protected
// mode. Both 64-bit kernels and 32-bit ones (i386, or x86-64 code in an ELF32 container, as small
// test guests are) are accepted. The file is untrusted: every offset, size and address is
// checked, and a malformed file is an `ELFError`, never a trap.

/// The loadable parts of an ELF kernel and its PVH entry point.
public struct ELFImage: Equatable, Sendable {
  /// One PT_LOAD program header: copy `fileSize` bytes from `fileOffset` to
  /// `physicalAddress`, then zero up to `memorySize`.
  public struct LoadSegment: Equatable, Sendable {
    public var physicalAddress: UInt64
    public var fileOffset: Int
    public var fileSize: Int
    public var memorySize: UInt64

    public init(physicalAddress: UInt64, fileOffset: Int, fileSize: Int, memorySize: UInt64) {
      self.physicalAddress = physicalAddress
      self.fileOffset = fileOffset
      self.fileSize = fileSize
      self.memorySize = memorySize
    }

    /// The guest-physical bytes the segment occupies once loaded (parse checked the sum).
    public var physicalRange: Range<UInt64> { physicalAddress..<(physicalAddress + memorySize) }
    /// The bytes of the file that are copied.
    public var fileRange: Range<Int> { fileOffset..<(fileOffset + fileSize) }
  }

  /// ELFCLASS64 (true) or ELFCLASS32.
  public var is64Bit: Bool
  /// e_machine: 62 (x86-64) or 3 (i386, ELF32 only).
  public var machine: UInt16
  /// e_entry, the (virtual) ELF entry point. A PVH loader uses `pvhEntry` instead.
  public var entry: UInt64
  /// The PT_LOAD segments with a non-zero memory size, in file order.
  public var segments: [LoadSegment]
  /// The 32-bit physical entry point from XEN_ELFNOTE_PHYS32_ENTRY.
  public var pvhEntry: UInt64
  /// The lowest physical address a segment occupies.
  public var lowestAddress: UInt64
  /// The end (exclusive) of the highest segment.
  public var highestAddress: UInt64

  public static let machineX86_64: UInt16 = 62
  public static let machineI386: UInt16 = 3

  static let ptLoad: UInt32 = 1
  static let ptNote: UInt32 = 4
  static let shtNote: UInt32 = 7
  static let etExec: UInt16 = 2
  static let etDyn: UInt16 = 3
}

// MARK: - Parsing

extension ELFImage {
  /// Parses an ELF file held in any byte collection indexed by Int (an array, or a buffer over
  /// a boot module). File offsets in the result count from its first byte.
  public static func parse<Bytes: RandomAccessCollection>(
    _ bytes: Bytes
  ) throws(ELFError) -> ELFImage where Bytes.Element == UInt8, Bytes.Index == Int {
    let file = BoundedByteReader(bytes: bytes, limit: bytes.count)
    let size = bytes.count
    guard size >= 16, file.u8(0) == 0x7F, file.u8(1) == 0x45, file.u8(2) == 0x4C, file.u8(3) == 0x46 else {
      throw .notELF
    }
    let elfClass = file.u8(4)
    guard elfClass == 1 || elfClass == 2 else { throw .unsupportedClass(elfClass) }
    let is64Bit = elfClass == 2
    guard file.u8(5) == 1 else { throw .unsupportedEndianness(file.u8(5)) }
    guard file.u8(6) == 1 else { throw .unsupportedVersion(file.u8(6)) }

    let header = is64Bit ? Header.elf64 : Header.elf32
    guard size >= header.size else { throw .truncatedHeader }
    let type = file.u16(16)
    guard type == etExec || type == etDyn else { throw .unsupportedType(type) }
    let machine = file.u16(18)
    let machineOK = machine == machineX86_64 || (!is64Bit && machine == machineI386)
    guard machineOK else { throw .unsupportedMachine(machine, is64Bit: is64Bit) }

    let entry = file.word(header.entry, is64Bit)
    let phoff = file.word(header.phoff, is64Bit)
    let phentsize = Int(file.u16(header.phentsize))
    let phnum = Int(file.u16(header.phnum))
    let programHeader = is64Bit ? ProgramHeader.elf64 : ProgramHeader.elf32
    guard phnum > 0 else { throw .noLoadableSegments }
    guard phentsize >= programHeader.entrySize else { throw .badProgramHeaderSize(phentsize) }
    guard let phdrs = BootBundle.range(phoff, UInt64(phnum * phentsize), within: size) else {
      throw .programHeadersOutsideFile
    }

    // PT_LOAD segments and PT_NOTE ranges.
    var segments: [LoadSegment] = []
    var notes: [(range: Range<Int>, alignment: UInt64)] = []
    let addressLimit: UInt64 = is64Bit ? UInt64.max : 1 << 32
    for index in 0..<phnum {
      let at = phdrs.lowerBound + index * phentsize
      let kind = file.u32(at + programHeader.type)
      let offset = file.word(at + programHeader.offset, is64Bit)
      let fileSize = file.word(at + programHeader.fileSize, is64Bit)
      if kind == ptNote {
        guard let range = BootBundle.range(offset, fileSize, within: size) else {
          throw .segmentOutsideFile(index: index)
        }
        notes.append((range, file.word(at + programHeader.align, is64Bit)))
      }
      guard kind == ptLoad else { continue }
      let physicalAddress = file.word(at + programHeader.paddr, is64Bit)
      let memorySize = file.word(at + programHeader.memorySize, is64Bit)
      guard let range = BootBundle.range(offset, fileSize, within: size) else {
        throw .segmentOutsideFile(index: index)
      }
      guard memorySize >= fileSize else { throw .memorySizeBelowFileSize(index: index) }
      let (end, overflow) = physicalAddress.addingReportingOverflow(memorySize)
      guard !overflow, end <= addressLimit else { throw .addressOverflow(index: index) }
      if memorySize == 0 { continue }
      segments.append(
        LoadSegment(
          physicalAddress: physicalAddress, fileOffset: range.lowerBound, fileSize: range.count,
          memorySize: memorySize))
    }
    guard !segments.isEmpty else { throw .noLoadableSegments }
    try checkNoOverlap(segments)

    // The entry note: in PT_NOTE segments, or, for files without any, in SHT_NOTE sections.
    if notes.isEmpty {
      notes = try noteSections(file, header: header, is64Bit: is64Bit)
    }
    var pvhEntry: UInt64? = nil
    for note in notes {
      if let found = try findPVHEntry(file, in: note.range, alignment: note.alignment) {
        pvhEntry = found
        break
      }
    }
    guard let pvhEntry else { throw .missingPVHEntry }

    let lowest = segments.map { $0.physicalAddress }.min() ?? 0
    let highest = segments.map { $0.physicalRange.upperBound }.max() ?? 0
    guard segments.contains(where: { $0.physicalRange.contains(pvhEntry) }) else {
      throw .entryOutsideSegments(pvhEntry)
    }
    return ELFImage(
      is64Bit: is64Bit, machine: machine, entry: entry, segments: segments, pvhEntry: pvhEntry,
      lowestAddress: lowest, highestAddress: highest)
  }

  /// Loading overlapping segments would make the result depend on the order: refuse them.
  private static func checkNoOverlap(_ segments: [LoadSegment]) throws(ELFError) {
    let order = segments.indices.sorted { segments[$0].physicalAddress < segments[$1].physicalAddress }
    for (left, right) in zip(order, order.dropFirst())
    where segments[left].physicalRange.overlaps(segments[right].physicalRange) {
      throw .segmentsOverlap(min(left, right), max(left, right))
    }
  }

  /// The SHT_NOTE sections' file ranges; empty when there is no section table.
  private static func noteSections<Bytes>(
    _ file: BoundedByteReader<Bytes>, header: Header, is64Bit: Bool
  ) throws(ELFError) -> [(range: Range<Int>, alignment: UInt64)] {
    let shoff = file.word(header.shoff, is64Bit)
    let shentsize = Int(file.u16(header.shentsize))
    let shnum = Int(file.u16(header.shnum))
    guard shoff != 0, shnum > 0 else { return [] }
    let sectionHeader = is64Bit ? SectionHeader.elf64 : SectionHeader.elf32
    guard shentsize >= sectionHeader.entrySize,
      let table = BootBundle.range(shoff, UInt64(shnum * shentsize), within: file.limit)
    else { throw .sectionHeadersOutsideFile }

    var notes: [(range: Range<Int>, alignment: UInt64)] = []
    for index in 0..<shnum {
      let at = table.lowerBound + index * shentsize
      guard file.u32(at + sectionHeader.type) == shtNote else { continue }
      let offset = file.word(at + sectionHeader.offset, is64Bit)
      let size = file.word(at + sectionHeader.size, is64Bit)
      guard let range = BootBundle.range(offset, size, within: file.limit) else {
        throw .sectionOutsideFile(index: index)
      }
      notes.append((range, file.word(at + sectionHeader.align, is64Bit)))
    }
    return notes
  }

  /// Walks the notes in `range` and returns the PHYS32_ENTRY value, if one is there.
  ///
  /// Each note is namesz u32, descsz u32, type u32, then the name and the descriptor, each padded
  /// to 4 bytes (8 in an 8-aligned note segment).
  private static func findPVHEntry<Bytes>(
    _ file: BoundedByteReader<Bytes>, in range: Range<Int>, alignment: UInt64
  ) throws(ELFError) -> UInt64? {
    let padding = alignment == 8 ? 8 : 4
    var position = range.lowerBound
    while range.upperBound - position >= 12 {
      let nameSize = Int(file.u32(position))
      let descriptorSize = Int(file.u32(position + 4))
      let type = file.u32(position + 8)
      let nameStart = position + 12
      guard let descriptorStart = padded(nameStart, nameSize, padding, limit: range.upperBound),
        let next = padded(descriptorStart, descriptorSize, padding, limit: range.upperBound)
      else { throw .malformedNote }

      // The name is "Xen" with its NUL (some producers omit the NUL).
      let isXen =
        (nameSize == 4 || nameSize == 3) && file.u8(nameStart) == 0x58 && file.u8(nameStart + 1) == 0x65
        && file.u8(nameStart + 2) == 0x6E && (nameSize == 3 || file.u8(nameStart + 3) == 0)
      if isXen && type == XenABI.ElfNote.phys32Entry.rawValue {
        switch descriptorSize {
        case 4: return UInt64(file.u32(descriptorStart))
        case 8: return file.u64(descriptorStart)
        default: throw .badPVHNoteSize(descriptorSize)
        }
      }
      position = next
    }
    return nil
  }

  /// `start + size` rounded up to `padding`, if it stays within `limit`.
  private static func padded(_ start: Int, _ size: Int, _ padding: Int, limit: Int) -> Int? {
    guard size <= limit - start else { return nil }
    let end = start + size
    let rounded = (end + padding - 1) / padding * padding
    // A final field may end the range without its padding.
    return min(rounded, limit)
  }
}

// MARK: - Placement

extension ELFImage {
  /// Checks that every segment lies inside the guest's memory `[0, guestMemoryBytes)` and
  /// clear of the `reserved` ranges (low memory the builder keeps, start info, special pages).
  public func checkFits(guestMemoryBytes: UInt64, reserved: [Range<UInt64>]) throws(ELFError) {
    for (index, segment) in segments.enumerated() {
      let range = segment.physicalRange
      guard range.upperBound <= guestMemoryBytes else {
        throw .segmentOutsideGuestMemory(index: index, end: range.upperBound, memory: guestMemoryBytes)
      }
      for hole in reserved where hole.overlaps(range) {
        throw .segmentOverlapsReserved(index: index, reserved: hole)
      }
    }
  }
}

// MARK: - Layouts

extension ELFImage {
  /// Field offsets of the ELF header that differ between the classes.
  struct Header {
    var size: Int
    var entry: Int
    var phoff: Int
    var shoff: Int
    var phentsize: Int
    var phnum: Int
    var shentsize: Int
    var shnum: Int

    static let elf64 = Header(size: 64, entry: 24, phoff: 32, shoff: 40, phentsize: 54, phnum: 56, shentsize: 58, shnum: 60)
    static let elf32 = Header(size: 52, entry: 24, phoff: 28, shoff: 32, phentsize: 42, phnum: 44, shentsize: 46, shnum: 48)
  }

  /// Field offsets of a program header.
  struct ProgramHeader {
    var entrySize: Int
    var type: Int
    var offset: Int
    var paddr: Int
    var fileSize: Int
    var memorySize: Int
    var align: Int

    static let elf64 = ProgramHeader(entrySize: 56, type: 0, offset: 8, paddr: 24, fileSize: 32, memorySize: 40, align: 48)
    static let elf32 = ProgramHeader(entrySize: 32, type: 0, offset: 4, paddr: 12, fileSize: 16, memorySize: 20, align: 28)
  }

  /// Field offsets of a section header.
  struct SectionHeader {
    var entrySize: Int
    var type: Int
    var offset: Int
    var size: Int
    var align: Int

    static let elf64 = SectionHeader(entrySize: 64, type: 4, offset: 24, size: 32, align: 48)
    static let elf32 = SectionHeader(entrySize: 40, type: 4, offset: 16, size: 20, align: 32)
  }
}

extension BoundedByteReader {
  func u16(_ offset: Int) -> UInt16 {
    UInt16(u8(offset)) | UInt16(u8(offset + 1)) << 8
  }

  /// A 64-bit field in ELF64, a 32-bit one in ELF32.
  func word(_ offset: Int, _ is64Bit: Bool) -> UInt64 {
    is64Bit ? u64(offset) : UInt64(u32(offset))
  }
}

// MARK: - Errors

/// Why an ELF file cannot be loaded as a PVH guest.
public enum ELFError: Error, Equatable, Sendable {
  case notELF
  case unsupportedClass(UInt8)
  case unsupportedEndianness(UInt8)
  case unsupportedVersion(UInt8)
  /// e_type is not ET_EXEC or ET_DYN.
  case unsupportedType(UInt16)
  case unsupportedMachine(UInt16, is64Bit: Bool)
  case truncatedHeader
  case badProgramHeaderSize(Int)
  case programHeadersOutsideFile
  case sectionHeadersOutsideFile
  case segmentOutsideFile(index: Int)
  case sectionOutsideFile(index: Int)
  case memorySizeBelowFileSize(index: Int)
  case addressOverflow(index: Int)
  case segmentsOverlap(Int, Int)
  case noLoadableSegments
  case malformedNote
  case badPVHNoteSize(Int)
  case missingPVHEntry
  case entryOutsideSegments(UInt64)
  case segmentOutsideGuestMemory(index: Int, end: UInt64, memory: UInt64)
  case segmentOverlapsReserved(index: Int, reserved: Range<UInt64>)

  /// "missing XEN_ELFNOTE_PHYS32_ENTRY: this kernel cannot boot as PVH".
  public func message() -> [UInt8] {
    var text = MessageText()
    switch self {
    case .notELF: text.add("not an ELF file")
    case .unsupportedClass(let value):
      text.add("unsupported ELF class ")
      text.add(UInt(value))
    case .unsupportedEndianness(let value):
      text.add("unsupported ELF data encoding ")
      text.add(UInt(value))
      text.add(" (only little-endian is supported)")
    case .unsupportedVersion(let value):
      text.add("unsupported ELF version ")
      text.add(UInt(value))
    case .unsupportedType(let value):
      text.add("ELF type ")
      text.add(UInt(value))
      text.add(" is not an executable")
    case .unsupportedMachine(let machine, let is64Bit):
      text.add("ELF machine ")
      text.add(UInt(machine))
      text.add(is64Bit ? " is not x86-64" : " is not i386 or x86-64")
    case .truncatedHeader: text.add("ELF header is truncated")
    case .badProgramHeaderSize(let size):
      text.add("program header entry size ")
      text.add(size)
      text.add(" is too small")
    case .programHeadersOutsideFile: text.add("program headers lie outside the file")
    case .sectionHeadersOutsideFile: text.add("section headers lie outside the file")
    case .segmentOutsideFile(let index):
      text.add("segment ")
      text.add(index)
      text.add(" lies outside the file")
    case .sectionOutsideFile(let index):
      text.add("section ")
      text.add(index)
      text.add(" lies outside the file")
    case .memorySizeBelowFileSize(let index):
      text.add("segment ")
      text.add(index)
      text.add(": memory size is smaller than file size")
    case .addressOverflow(let index):
      text.add("segment ")
      text.add(index)
      text.add(": address plus size overflows")
    case .segmentsOverlap(let first, let second):
      text.add("loadable segments ")
      text.add(first)
      text.add(" and ")
      text.add(second)
      text.add(" overlap")
    case .noLoadableSegments: text.add("no loadable segments")
    case .malformedNote: text.add("malformed ELF note")
    case .badPVHNoteSize(let size):
      text.add("XEN_ELFNOTE_PHYS32_ENTRY has a ")
      text.add(size)
      text.add("-byte value (expected 4 or 8)")
    case .missingPVHEntry: text.add("missing XEN_ELFNOTE_PHYS32_ENTRY: this kernel cannot boot as PVH")
    case .entryOutsideSegments(let entry):
      text.add("PVH entry point ")
      text.addHex(entry)
      text.add(" is not inside a loadable segment")
    case .segmentOutsideGuestMemory(let index, let end, let memory):
      text.add("segment ")
      text.add(index)
      text.add(" ends at ")
      text.addHex(end)
      text.add(", beyond the guest's ")
      text.addHex(memory)
      text.add(" bytes of memory")
    case .segmentOverlapsReserved(let index, let reserved):
      text.add("segment ")
      text.add(index)
      text.add(" overlaps the reserved range ")
      text.addHex(reserved.lowerBound)
      text.add("-")
      text.addHex(reserved.upperBound)
    }
    return text.bytes
  }
}
