// Parsing the PVH boot protocol's hvm_start_info (layout in XenABI/StartInfo.swift).
//
// A PVH loader enters us with %ebx = physical address of the start info. Version 0 carries the
// command line, modules and RSDP; version 1 adds a memory map. (Without one, the memory map has
// to come from elsewhere, e.g. the e820 the firmware exposes; that is the caller's business.)

import Hypervisor
import XenABI

extension BootInfo {
  /// Parse the hvm_start_info at physical `address` (%ebx at the PVH entry point).
  ///
  /// Checks the magic. Version 0 has no memory map, so `memoryMap` is empty then; version 1 and
  /// later read `memmap_paddr`/`memmap_entries`. Address fields that are 0 mean "not present".
  /// Memory map types other than 1 to 5 become `.reserved`.
  ///
  /// - Throws: `.badMagic` for a wrong magic, `.unreadable` when memory cannot be read,
  ///   `.tooManyEntries` when a count exceeds `BootInfo.maxEntries`, `.truncated` for a string
  ///   with no NUL within `BootInfo.maxStringLength` bytes.
  public static func parsePVH<Memory: PhysicalMemoryReader>(
    startInfo address: UInt64, memory: Memory
  ) throws(BootInfoError) -> BootInfo {
    typealias Layout = XenABI.HVMStartInfo

    // The magic and version decide how much of the structure exists.
    let head = try readBytes(address, count: 8, memory: memory)
    let magic = head.littleEndian(UInt32.self, at: Layout.Offset.magic) ?? 0
    guard magic == Layout.magicValue else { throw .badMagic(magic) }
    let version = head.littleEndian(UInt32.self, at: Layout.Offset.version) ?? 0
    let size = version == 0 ? Layout.sizeVersion0 : Layout.size
    let startInfo = try readBytes(address, count: size, memory: memory)

    func u32(_ offset: Int) -> UInt32 { startInfo.littleEndian(UInt32.self, at: offset) ?? 0 }
    func u64(_ offset: Int) -> UInt64 { startInfo.littleEndian(UInt64.self, at: offset) ?? 0 }

    var info = BootInfo(loader: .pvh)

    let commandLineAddress = u64(Layout.Offset.cmdlinePaddr)
    if commandLineAddress != 0 {
      info.commandLine = try cString(at: commandLineAddress, memory: memory)
    }

    let rsdpAddress = u64(Layout.Offset.rsdpPaddr)
    info.rsdpAddress = rsdpAddress == 0 ? nil : rsdpAddress

    let moduleCount = Int(u32(Layout.Offset.moduleCount))
    let modlistAddress = u64(Layout.Offset.modlistPaddr)
    if moduleCount > 0 && modlistAddress != 0 {
      info.modules = try pvhModules(at: modlistAddress, count: moduleCount, memory: memory)
    }

    if version >= 1 {
      let memmapEntries = Int(u32(Layout.Offset.memmapEntries))
      let memmapAddress = u64(Layout.Offset.memmapPaddr)
      if memmapEntries > 0 && memmapAddress != 0 {
        info.memoryMap = try pvhMemoryMap(at: memmapAddress, count: memmapEntries, memory: memory)
      }
    }
    return info
  }

  /// The `count` hvm_modlist_entry records at `address`, with their command lines.
  private static func pvhModules<Memory: PhysicalMemoryReader>(
    at address: UInt64, count: Int, memory: Memory
  ) throws(BootInfoError) -> [BootModule] {
    typealias Entry = XenABI.HVMModlistEntry
    guard count <= maxEntries else { throw .tooManyEntries(count) }
    let table = try readBytes(address, count: count * Entry.size, memory: memory)

    var modules: [BootModule] = []
    for index in 0..<count {
      let base = index * Entry.size
      let start = table.littleEndian(UInt64.self, at: base + Entry.Offset.paddr) ?? 0
      let size = table.littleEndian(UInt64.self, at: base + Entry.Offset.size) ?? 0
      let commandLineAddress = table.littleEndian(UInt64.self, at: base + Entry.Offset.cmdlinePaddr) ?? 0
      var commandLine: [UInt8] = []
      if commandLineAddress != 0 { commandLine = try cString(at: commandLineAddress, memory: memory) }
      modules.append(BootModule(start: start, size: size, commandLine: commandLine))
    }
    return modules
  }

  /// The `count` hvm_memmap_table_entry records at `address` as a MemoryMap.
  private static func pvhMemoryMap<Memory: PhysicalMemoryReader>(
    at address: UInt64, count: Int, memory: Memory
  ) throws(BootInfoError) -> MemoryMap {
    typealias Entry = XenABI.HVMMemmapEntry
    guard count <= maxEntries else { throw .tooManyEntries(count) }
    let table = try readBytes(address, count: count * Entry.size, memory: memory)

    var map = MemoryMap()
    for index in 0..<count {
      let base = index * Entry.size
      let start = table.littleEndian(UInt64.self, at: base + Entry.Offset.addr) ?? 0
      let length = table.littleEndian(UInt64.self, at: base + Entry.Offset.size) ?? 0
      let type = table.littleEndian(UInt32.self, at: base + Entry.Offset.type) ?? 0
      if let region = region(base: start, length: length, type: type) { map.add(region) }
    }
    return map
  }
}
