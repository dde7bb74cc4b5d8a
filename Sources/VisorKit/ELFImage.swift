import Foundation

/// The parts of an ELF file that matter for booting and sizing the image: its class, machine,
/// loadable segments and whether it carries Xen's PVH entry note (which QEMU's `-kernel` needs).
public struct ELFImage: Sendable, Equatable {
  public struct Segment: Sendable, Equatable {
    public var offset: UInt64
    public var virtualAddress: UInt64
    public var physicalAddress: UInt64
    public var fileSize: UInt64
    public var memorySize: UInt64
    public var flags: UInt32
  }

  public static let ptLoad: UInt32 = 1
  public static let ptNote: UInt32 = 4
  /// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit PVH entry point.
  public static let xenElfNotePhys32Entry: UInt32 = 18

  /// Size of the file in bytes.
  public var fileSize: Int
  public var is64Bit: Bool
  /// `e_machine` (62 = x86_64, 3 = i386).
  public var machine: UInt16
  public var entry: UInt64
  public var loadSegments: [Segment]
  /// The PVH entry point from the `Xen` PT_NOTE, if present.
  public var pvhEntry: UInt64?

  /// Bytes occupied in memory once loaded: the sum of `p_memsz` over PT_LOAD (includes .bss).
  public var loadedMemorySize: UInt64 { loadSegments.reduce(0) { $0 + $1.memorySize } }
  /// Bytes of the file that are loaded: the sum of `p_filesz` over PT_LOAD.
  public var loadedFileSize: UInt64 { loadSegments.reduce(0) { $0 + $1.fileSize } }

  public init(path: String) throws(VisorError) {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw VisorError(.usage, "cannot read \(path)")
    }
    do {
      try self.init(bytes: [UInt8](data))
    } catch {
      throw VisorError(.usage, "\(path) is not a usable ELF image: \(error.reason)")
    }
  }

  public struct ParseError: Error, Sendable, Equatable {
    public var reason: String
  }

  public init(bytes: [UInt8]) throws(ParseError) {
    func fail(_ reason: String) -> ParseError { ParseError(reason: reason) }
    guard bytes.count >= 52, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
      throw fail("no ELF magic")
    }
    guard bytes[5] == 1 else { throw fail("not little-endian") }
    let reader = LittleEndianReader(bytes: bytes)
    fileSize = bytes.count
    switch bytes[4] {
    case 2: is64Bit = true
    case 1: is64Bit = false
    default: throw fail("unknown ELF class \(bytes[4])")
    }
    machine = try reader.u16(18)
    let phoff: UInt64, phentsize: Int, phnum: Int
    if is64Bit {
      guard bytes.count >= 64 else { throw fail("truncated ELF header") }
      entry = try reader.u64(24)
      phoff = try reader.u64(32)
      phentsize = Int(try reader.u16(54))
      phnum = Int(try reader.u16(56))
    } else {
      entry = UInt64(try reader.u32(24))
      phoff = UInt64(try reader.u32(28))
      phentsize = Int(try reader.u16(42))
      phnum = Int(try reader.u16(44))
    }
    guard phentsize >= (is64Bit ? 56 : 32) else { throw fail("bad program header size \(phentsize)") }
    guard phoff <= UInt64(bytes.count), UInt64(phnum * phentsize) <= UInt64(bytes.count) - phoff else {
      throw fail("program headers lie outside the file")
    }
    var segments: [Segment] = []
    var pvh: UInt64?
    for index in 0..<phnum {
      let base = Int(phoff) + index * phentsize
      let type = try reader.u32(base)
      let segment: Segment
      if is64Bit {
        segment = Segment(
          offset: try reader.u64(base + 8), virtualAddress: try reader.u64(base + 16),
          physicalAddress: try reader.u64(base + 24), fileSize: try reader.u64(base + 32),
          memorySize: try reader.u64(base + 40), flags: try reader.u32(base + 4))
      } else {
        segment = Segment(
          offset: UInt64(try reader.u32(base + 4)), virtualAddress: UInt64(try reader.u32(base + 8)),
          physicalAddress: UInt64(try reader.u32(base + 12)), fileSize: UInt64(try reader.u32(base + 16)),
          memorySize: UInt64(try reader.u32(base + 20)), flags: try reader.u32(base + 24))
      }
      if type == Self.ptLoad { segments.append(segment) }
      if type == Self.ptNote, pvh == nil {
        pvh = try Self.pvhEntry(in: reader, offset: segment.offset, size: segment.fileSize)
      }
    }
    loadSegments = segments
    pvhEntry = pvh
  }

  /// Walks the notes in one PT_NOTE segment for `Xen`/`XEN_ELFNOTE_PHYS32_ENTRY`.
  private static func pvhEntry(in reader: LittleEndianReader, offset: UInt64, size: UInt64) throws(ParseError) -> UInt64? {
    guard offset <= UInt64(reader.bytes.count), size <= UInt64(reader.bytes.count) - offset else {
      throw ParseError(reason: "note segment lies outside the file")
    }
    var at = Int(offset)
    let end = Int(offset + size)
    func align4(_ n: Int) -> Int { (n + 3) & ~3 }
    while at + 12 <= end {
      let nameSize = Int(try reader.u32(at)), descSize = Int(try reader.u32(at + 4)), type = try reader.u32(at + 8)
      let nameStart = at + 12, descStart = nameStart + align4(nameSize)
      guard descStart + descSize <= end else { break }
      let name = reader.bytes[nameStart..<nameStart + nameSize].prefix { $0 != 0 }
      if Array(name) == Array("Xen".utf8), type == xenElfNotePhys32Entry, descSize >= 4 {
        return descSize >= 8 ? try reader.u64(descStart) : UInt64(try reader.u32(descStart))
      }
      at = descStart + align4(descSize)
    }
    return nil
  }
}

struct LittleEndianReader {
  let bytes: [UInt8]

  func value(_ offset: Int, _ size: Int) throws(ELFImage.ParseError) -> UInt64 {
    guard offset >= 0, offset + size <= bytes.count else {
      throw ELFImage.ParseError(reason: "truncated at offset \(offset)")
    }
    var v: UInt64 = 0
    for i in (0..<size).reversed() { v = v << 8 | UInt64(bytes[offset + i]) }
    return v
  }

  func u16(_ offset: Int) throws(ELFImage.ParseError) -> UInt16 { UInt16(try value(offset, 2)) }
  func u32(_ offset: Int) throws(ELFImage.ParseError) -> UInt32 { UInt32(try value(offset, 4)) }
  func u64(_ offset: Int) throws(ELFImage.ParseError) -> UInt64 { try value(offset, 8) }
}
