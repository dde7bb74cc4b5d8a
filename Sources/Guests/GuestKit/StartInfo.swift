#if os(none)
import GuestSupport

/// One entry of the PVH memory map (struct hvm_memmap_table_entry).
public struct MemoryRegion {
  public var address: UInt64
  public var size: UInt64
  public var type: UInt32   // 1 = RAM (E820 numbering)
  public var end: UInt64 { address &+ size }
}

/// What the loader handed over in %ebx: struct hvm_start_info (hvm/start_info.h).
public enum StartInfo {
  public static let magic: UInt32 = 0x336e_c578

  /// The structure, if %ebx pointed at one with the right magic.
  public static var raw: gs_hvm_start_info? {
    let address = gs_start_info_address()
    guard address != 0, let p = UnsafePointer<gs_hvm_start_info>(bitPattern: UInt(address)) else { return nil }
    let info = p.pointee
    return info.magic == magic ? info : nil
  }

  /// The NUL-terminated command line (at most 4 KiB), empty if there is none.
  public static var commandLine: [UInt8] {
    guard let info = raw, info.cmdline_paddr != 0,
          let p = UnsafePointer<UInt8>(bitPattern: UInt(info.cmdline_paddr)) else { return [] }
    var bytes = [UInt8]()
    var i = 0
    while i < 4096 && p[i] != 0 {
      bytes.append(p[i])
      i += 1
    }
    return bytes
  }

  public static var options: CommandLineOptions { CommandLineOptions(commandLine) }

  /// The memory map (start info version 1 and later), empty if there is none.
  public static var memoryMap: [MemoryRegion] {
    guard let info = raw, info.version >= 1, info.memmap_paddr != 0, info.memmap_entries > 0,
          let p = UnsafePointer<gs_hvm_memmap_entry>(bitPattern: UInt(info.memmap_paddr)) else { return [] }
    var regions = [MemoryRegion]()
    for i in 0..<Int(min(info.memmap_entries, 128)) {
      regions.append(MemoryRegion(address: p[i].addr, size: p[i].size, type: p[i].type))
    }
    return regions
  }

  /// The end of the highest RAM region (type 1), or nil without a memory map.
  public static var ramEnd: UInt64? {
    var end: UInt64? = nil
    for r in memoryMap where r.type == 1 && r.size > 0 {
      end = max(end ?? 0, r.end)
    }
    return end
  }
}
#endif
