// The PVH start-of-day structures, from xen/include/public/arch-x86/hvm/start_info.h.
//
// A PVH kernel is entered in 32-bit protected mode with %ebx holding the physical address of an
// hvm_start_info. Swiftvisor reads one from its own boot loader (QEMU or Xen-style loaders) and
// writes one for every PVH guest it builds, so these numbers are used in both directions.
//
// All fields are little-endian. A value of 0 in any address field means "not present": nothing
// is ever loaded at physical address 0.

import XenPublic

extension XenABI {
  /// `struct hvm_start_info`: 56 bytes in version 1, of which version 0 defines the first 40.
  public enum HVMStartInfo {
    /// XEN_HVM_START_MAGIC_VALUE: "xEn3" with the 0x80 bit of the "E" set.
    public static let magicValue: UInt32 = 0x336e_c578

    /// The version this layout describes. Newer versions only append fields.
    public static let currentVersion: UInt32 = 1

    /// Size of the structure in version 1 and later (with the memory map fields).
    public static let size = Int(XEN_HVM_START_INFO_SIZE)
    /// Size of the structure in version 0 (ends after `rsdp_paddr`).
    public static let sizeVersion0 = 40

    /// Byte offsets of the fields.
    public enum Offset {
      public static let magic = Int(XEN_HVM_START_INFO_MAGIC)          // u32
      public static let version = Int(XEN_HVM_START_INFO_VERSION)        // u32
      public static let flags = Int(XEN_HVM_START_INFO_FLAGS)          // u32, SIF_xxx
      public static let moduleCount = Int(XEN_HVM_START_INFO_NR_MODULES)   // u32 nr_modules
      public static let modlistPaddr = Int(XEN_HVM_START_INFO_MODLIST_PADDR)  // u64, array of HVMModlistEntry
      public static let cmdlinePaddr = Int(XEN_HVM_START_INFO_CMDLINE_PADDR)  // u64, NUL-terminated ASCII
      public static let rsdpPaddr = Int(XEN_HVM_START_INFO_RSDP_PADDR)     // u64, the ACPI RSDP
      // Version 1 and later:
      public static let memmapPaddr = Int(XEN_HVM_START_INFO_MEMMAP_PADDR)   // u64, array of HVMMemmapEntry
      public static let memmapEntries = Int(XEN_HVM_START_INFO_MEMMAP_ENTRIES) // u32
      public static let reserved = Int(XEN_HVM_START_INFO_RESERVED)      // u32, must be zero
    }
  }

  /// `struct hvm_modlist_entry`: one module (for example an initrd). 32 bytes.
  public enum HVMModlistEntry {
    public static let size = Int(XEN_HVM_MODLIST_ENTRY_SIZE)

    public enum Offset {
      public static let paddr = Int(XEN_HVM_MODLIST_ENTRY_PADDR)         // u64, physical address of the module
      public static let size = Int(XEN_HVM_MODLIST_ENTRY_SIZE_FIELD)  // u64, size in bytes
      public static let cmdlinePaddr = Int(XEN_HVM_MODLIST_ENTRY_CMDLINE_PADDR) // u64, NUL-terminated ASCII, 0 if none
      public static let reserved = Int(XEN_HVM_MODLIST_ENTRY_RESERVED)  // u64
    }
  }

  /// `struct hvm_memmap_table_entry`: one range of the physical memory map. 24 bytes.
  public enum HVMMemmapEntry {
    public static let size = Int(XEN_HVM_MEMMAP_ENTRY_SIZE)

    public enum Offset {
      public static let addr = Int(XEN_HVM_MEMMAP_ENTRY_ADDR)      // u64, base address
      public static let size = Int(XEN_HVM_MEMMAP_ENTRY_SIZE_FIELD)  // u64, length in bytes
      public static let type = Int(XEN_HVM_MEMMAP_ENTRY_TYPE)     // u32, HVMMemmapType
      public static let reserved = Int(XEN_HVM_MEMMAP_ENTRY_RESERVED) // u32
    }
  }

  /// XEN_HVM_MEMMAP_TYPE_*: the type of a memory map entry. Types 1 to 5 equal the e820 types.
  public enum HVMMemmapType: UInt32, Sendable {
    case ram = 1
    case reserved = 2
    case acpi = 3
    case nvs = 4
    case unusable = 5
    case disabled = 6
    case pmem = 7
  }
}
