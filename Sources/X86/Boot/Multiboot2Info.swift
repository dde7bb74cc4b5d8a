// Parsing the multiboot2 boot information (MBI) that GRUB passes.
//
// The loader enters us with %eax = 0x36d76289 and %ebx = physical address of the MBI:
//
//   u32 total_size, u32 reserved, then tags, each 8-byte aligned:
//   u32 type, u32 size (of the tag including this header, excluding the alignment padding),
//   payload..., and finally a tag of type 0 (size 8).
//
// The whole MBI is read once, then every tag is bounds-checked against total_size.

import Hypervisor

/// Multiboot2 constants (the Multiboot2 specification, version 2.0).
public enum Multiboot2 {
  /// The value in %eax when a multiboot2 loader enters the kernel.
  public static let bootloaderMagic: UInt32 = 0x36d7_6289

  /// Tag types in the boot information.
  public enum TagType {
    public static let end: UInt32 = 0
    public static let commandLine: UInt32 = 1
    public static let bootLoaderName: UInt32 = 2
    public static let module: UInt32 = 3
    public static let basicMemoryInfo: UInt32 = 4
    public static let biosBootDevice: UInt32 = 5
    public static let memoryMap: UInt32 = 6
    public static let acpiOldRSDP: UInt32 = 14
    public static let acpiNewRSDP: UInt32 = 15
  }

  /// The largest MBI accepted. GRUB's is a few KiB; anything near this size is garbage.
  public static let maxInfoSize = 1 << 20

  /// Size of an RSDP version 1 (tag 14 holds at least this) and version 2 (tag 15).
  static let rsdpV1Size = 20
  static let rsdpV2Size = 36
}

extension BootInfo {
  /// Parse the multiboot2 boot information at physical `address` (%ebx at entry), given the
  /// entry `magic` (%eax), which must be 0x36d76289.
  ///
  /// Reads the command line (tag 1), boot loader name (tag 2), modules (tag 3), memory map
  /// (tag 6) and ACPI RSDP (tags 14/15; the tag holds a copy of the RSDP, so `rsdpAddress` is
  /// the address of that copy, `tag address + 8`; a tag 15 is preferred over a tag 14).
  /// Other tags are skipped.
  ///
  /// - Throws: `.badMagic` for a wrong %eax, `.unreadable` when the MBI cannot be read,
  ///   `.truncated` when a tag or entry runs past `total_size`, a tag is too small for its type,
  ///   or the end tag is missing; `.tooManyEntries` for more than `BootInfo.maxEntries` memory
  ///   map entries or modules.
  public static func parseMultiboot2<Memory: PhysicalMemoryReader>(
    magic: UInt32, info address: UInt64, memory: Memory
  ) throws(BootInfoError) -> BootInfo {
    guard magic == Multiboot2.bootloaderMagic else { throw .badMagic(magic) }

    let header = try readBytes(address, count: 8, memory: memory)
    let totalSize = Int(header.littleEndian(UInt32.self, at: 0) ?? 0)
    guard totalSize >= 8 + 8, totalSize <= Multiboot2.maxInfoSize else { throw .truncated }
    let mbi = try readBytes(address, count: totalSize, memory: memory)

    func u32(_ offset: Int) -> UInt32 { mbi.littleEndian(UInt32.self, at: offset) ?? 0 }

    var info = BootInfo(loader: .multiboot2)
    var sawNewRSDP = false
    var offset = 8
    while true {
      // Every tag, even the end tag, has an 8-byte header inside total_size.
      guard offset <= totalSize - 8 else { throw .truncated }
      let type = u32(offset)
      let size = Int(u32(offset + 4))
      guard size >= 8, size <= totalSize - offset else { throw .truncated }
      let payload = offset + 8
      let tagEnd = offset + size

      switch type {
      case Multiboot2.TagType.end:
        return info

      case Multiboot2.TagType.commandLine:
        info.commandLine = string(in: mbi, from: payload, to: tagEnd)

      case Multiboot2.TagType.bootLoaderName:
        info.loaderName = string(in: mbi, from: payload, to: tagEnd)

      case Multiboot2.TagType.module:
        // u32 mod_start, u32 mod_end (exclusive), then the module's string.
        guard size >= 16 else { throw .truncated }
        let start = u32(payload)
        let end = u32(payload + 4)
        guard end >= start else { throw .truncated }
        guard info.modules.count < maxEntries else { throw .tooManyEntries(info.modules.count + 1) }
        info.modules.append(BootModule(
          start: UInt64(start), size: UInt64(end - start),
          commandLine: string(in: mbi, from: payload + 8, to: tagEnd)))

      case Multiboot2.TagType.memoryMap:
        try addMultiboot2MemoryMap(mbi, payload: payload, tagEnd: tagEnd, to: &info.memoryMap)

      case Multiboot2.TagType.acpiOldRSDP, Multiboot2.TagType.acpiNewRSDP:
        let isNew = type == Multiboot2.TagType.acpiNewRSDP
        guard size - 8 >= (isNew ? Multiboot2.rsdpV2Size : Multiboot2.rsdpV1Size) else {
          throw .truncated
        }
        // Keep the ACPI 2.0+ copy when the loader passes both (it has the XSDT address).
        if isNew || !sawNewRSDP {
          guard let copyAddress = BootInfo.address(address, plus: UInt64(payload)) else {
            throw .unreadable(address: address)
          }
          info.rsdpAddress = copyAddress
        }
        if isNew { sawNewRSDP = true }

      default:
        break
      }

      // The next tag starts at the next 8-byte boundary (size <= totalSize, so no overflow).
      offset = (tagEnd + 7) & ~7
    }
  }

  /// The entries of a multiboot2 memory map tag (type 6):
  /// u32 entry_size, u32 entry_version, then entries {u64 base, u64 length, u32 type, u32 reserved}.
  /// entry_size may grow in later versions, so entries are stepped by it, not by 24.
  private static func addMultiboot2MemoryMap(
    _ mbi: [UInt8], payload: Int, tagEnd: Int, to map: inout MemoryMap
  ) throws(BootInfoError) {
    let entryLayoutSize = 24
    guard tagEnd - payload >= 8 else { throw .truncated }
    let entrySize = Int(mbi.littleEndian(UInt32.self, at: payload) ?? 0)
    guard entrySize >= entryLayoutSize else { throw .truncated }
    let firstEntry = payload + 8
    let count = (tagEnd - firstEntry) / entrySize
    guard count <= maxEntries else { throw .tooManyEntries(count) }

    for index in 0..<count {
      let entry = firstEntry + index * entrySize
      let base = mbi.littleEndian(UInt64.self, at: entry) ?? 0
      let length = mbi.littleEndian(UInt64.self, at: entry + 8) ?? 0
      let type = mbi.littleEndian(UInt32.self, at: entry + 16) ?? 0
      if let region = region(base: base, length: length, type: type) { map.add(region) }
    }
  }
}
