// What the boot loader told us, in one shape for both boot protocols.
//
// Swiftvisor is entered either through the PVH ELF note (QEMU -kernel, Xen-style loaders) or
// through multiboot2 (GRUB). Each protocol hands over a structure in physical memory; the parsers
// in PVHStartInfo.swift and Multiboot2Info.swift turn it into a BootInfo so that the rest of boot
// does not care which loader ran. The parsers only read through a PhysicalMemoryReader, check
// every length and address, and never trap on bad input.

import Hypervisor

/// A file the boot loader placed in memory for us (the boot bundle, an initrd, ...).
public struct BootModule: Equatable, Sendable {
  /// Physical address of the first byte.
  public var start: UInt64
  /// Length in bytes.
  public var size: UInt64
  /// The module's own command line (multiboot2: its "string"), without the trailing NUL.
  public var commandLine: [UInt8]

  public init(start: UInt64, size: UInt64, commandLine: [UInt8] = []) {
    self.start = start
    self.size = size
    self.commandLine = commandLine
  }
}

/// Which boot protocol brought us up.
public enum BootLoader: Equatable, Sendable {
  case pvh
  case multiboot2
}

/// The boot loader's information, independent of the protocol.
public struct BootInfo: Sendable {
  public var loader: BootLoader
  /// The hypervisor's command line, without the trailing NUL.
  public var commandLine: [UInt8]
  /// The firmware memory map as the loader passed it (empty if it passed none).
  public var memoryMap: MemoryMap
  /// Modules in the order the loader listed them.
  public var modules: [BootModule]
  /// Physical address of an ACPI RSDP, or nil when the loader did not give one (then scan for it).
  /// For multiboot2 this is the address of the loader's copy inside the boot information.
  public var rsdpAddress: UInt64?
  /// The boot loader's name (multiboot2 tag 2); empty for PVH.
  public var loaderName: [UInt8]

  public init(loader: BootLoader, commandLine: [UInt8] = [], memoryMap: MemoryMap = MemoryMap(),
              modules: [BootModule] = [], rsdpAddress: UInt64? = nil, loaderName: [UInt8] = []) {
    self.loader = loader
    self.commandLine = commandLine
    self.memoryMap = memoryMap
    self.modules = modules
    self.rsdpAddress = rsdpAddress
    self.loaderName = loaderName
  }

  /// The most memory map entries or modules a parser accepts. Real firmware maps have a few dozen
  /// entries; a count beyond this means the structure is garbage.
  public static let maxEntries = 1024

  /// The longest NUL-terminated string (command line) a parser reads.
  public static let maxStringLength = 4096
}

/// Why the boot information could not be parsed.
public enum BootInfoError: Error, Equatable, Sendable {
  /// The entry magic (PVH start info magic or multiboot2 %eax) was not the expected value.
  case badMagic(UInt32)
  /// A read from physical memory failed at this address.
  case unreadable(address: UInt64)
  /// A length or size runs past the end of its container, is too small, or a string has no NUL.
  case truncated
  /// A count (memory map entries, modules) exceeds BootInfo.maxEntries.
  case tooManyEntries(Int)
}

// MARK: - Helpers shared by the two parsers

extension MemoryRegion.Kind {
  /// The kind for an e820-style type (multiboot2 and PVH use the same numbers for 1 to 5).
  /// Anything unknown, such as PVH's "disabled" (6) or "persistent memory" (7), is treated as
  /// reserved: memory we do not understand is memory we must not use.
  init(firmwareType type: UInt32) {
    self = MemoryRegion.Kind(rawValue: type) ?? .reserved
  }
}

extension BootInfo {
  /// `base + offset`, or nil when it wraps around the address space.
  static func address(_ base: UInt64, plus offset: UInt64) -> UInt64? {
    let (sum, overflow) = base.addingReportingOverflow(offset)
    return overflow ? nil : sum
  }

  /// A region for the memory map, or nil for an empty one. A region that would wrap past the
  /// top of the address space is cut at the top, so MemoryMap never sees base + length overflow.
  static func region(base: UInt64, length: UInt64, type: UInt32) -> MemoryRegion? {
    guard length > 0 else { return nil }
    let clamped = min(length, UInt64.max - base)
    guard clamped > 0 else { return nil }
    return MemoryRegion(base: base, length: clamped, kind: MemoryRegion.Kind(firmwareType: type))
  }

  /// The bytes of `bytes` from `start` up to (not including) the first NUL or `end`.
  static func string(in bytes: [UInt8], from start: Int, to end: Int) -> [UInt8] {
    guard start < end, start >= 0, end <= bytes.count else { return [] }
    var stop = start
    while stop < end && bytes[stop] != 0 { stop += 1 }
    return Array(bytes[start..<stop])
  }

  /// The NUL-terminated string at physical `address`, without the NUL.
  ///
  /// The length is unknown in advance, so the string is read in chunks that end on 64-byte
  /// boundaries (so a chunk never crosses a page boundary the string itself does not cross).
  /// If a chunk cannot be read in one piece, it is retried a byte at a time: the string may end
  /// just before memory the reader cannot reach.
  static func cString<Memory: PhysicalMemoryReader>(
    at address: UInt64, memory: Memory
  ) throws(BootInfoError) -> [UInt8] {
    let chunkAlignment: UInt64 = 64
    var result: [UInt8] = []
    var cursor = address
    while result.count < maxStringLength {
      let toBoundary = Int(chunkAlignment - cursor % chunkAlignment)
      let count = min(toBoundary, maxStringLength - result.count)
      if let chunk = memory.read(cursor, count: count), chunk.count == count {
        for byte in chunk {
          if byte == 0 { return result }
          result.append(byte)
        }
      } else {
        for i in 0..<UInt64(count) {
          guard let byteAddress = BootInfo.address(cursor, plus: i),
            let byte = memory.read(byteAddress, count: 1), byte.count == 1
          else { throw .unreadable(address: BootInfo.address(cursor, plus: i) ?? cursor) }
          if byte[0] == 0 { return result }
          result.append(byte[0])
        }
      }
      guard let next = BootInfo.address(cursor, plus: UInt64(count)) else {
        throw .unreadable(address: cursor)
      }
      cursor = next
    }
    // No NUL within maxStringLength bytes: most likely a bad pointer, not a long string.
    throw .truncated
  }

  /// Exactly `count` bytes at `address`, or `.unreadable`.
  static func readBytes<Memory: PhysicalMemoryReader>(
    _ address: UInt64, count: Int, memory: Memory
  ) throws(BootInfoError) -> [UInt8] {
    guard let bytes = memory.read(address, count: count), bytes.count == count else {
      throw .unreadable(address: address)
    }
    return bytes
  }
}
