// HYPERVISOR_memory_op, from xen/include/public/memory.h.
//
// memory_op(cmd, arg): reservations, the physmap (where special pages appear in the guest's
// physical address space) and the memory map. The low 6 bits of `cmd` (MEMOP_CMD_MASK) are the
// command; the bits above are a continuation's start extent, so a preempted operation can resume.

extension XenABI {
  /// `XENMEM_*`: the command in the low bits of memory_op's first argument.
  public enum MemoryOp: UInt32, Sendable, CaseIterable {
    /// arg: `xen_memory_reservation`.
    case increaseReservation = 0
    /// arg: `xen_memory_reservation`.
    case decreaseReservation = 1
    /// arg unused; returns the highest machine frame number of RAM.
    case maximumRAMPage = 2
    /// arg: domid_t; returns the domain's current pages.
    case currentReservation = 3
    /// arg: domid_t; returns the domain's maximum pages.
    case maximumReservation = 4
    /// arg: `xen_machphys_mfn_list` (PV).
    case machphysMFNList = 5
    /// arg: `xen_memory_reservation`; populates guest frames with memory.
    case populatePhysmap = 6
    /// arg: `xen_add_to_physmap`; e.g. map the shared info page at a guest frame.
    case addToPhysmap = 7
    // 8 (translate_gpfn_list) was removed.
    /// arg: `xen_memory_map`; the guest's e820-style memory map.
    case memoryMap = 9
    /// arg: `xen_memory_map`; the machine's memory map (privileged).
    case machineMemoryMap = 10
    /// arg: `xen_memory_exchange`.
    case exchange = 11
    /// arg: `xen_machphys_mapping` (PV).
    case machphysMapping = 12
    /// arg: `xen_foreign_memory_map` (toolstack).
    case setMemoryMap = 13
    /// arg: domid_t; returns the highest guest frame in use.
    case maximumGPFN = 14
    /// arg: `xen_remove_from_physmap`.
    case removeFromPhysmap = 15
    case setPodTarget = 16
    case getPodTarget = 17
    case getSharingFreedPages = 18
    case getSharingSharedPages = 19
    case pagingOp = 20
    case accessOp = 21
    case sharingOp = 22
    /// arg: `xen_add_to_physmap_batch`.
    case addToPhysmapBatch = 23
    case claimPages = 24
    case machphysCompatMFNList = 25
    case getVnumaInfo = 26
    case reservedDeviceMemoryMap = 27
    case acquireResource = 28

    /// MEMOP_EXTENT_SHIFT / MEMOP_CMD_MASK: how the first argument splits into command and
    /// continuation start.
    public static let extentShift = 6
    public static let commandMask: UInt64 = (1 << 6) - 1
  }

  /// `XENMAPSPACE_*`: what `xen_add_to_physmap.idx` indexes.
  public enum MapSpace: UInt32, Sendable, CaseIterable {
    /// The shared info page (idx 0).
    case sharedInfo = 0
    /// Grant table frame idx (| `MemoryOpLayout.grantTableStatusIndexFlag` for status frames).
    case grantTable = 1
    /// An existing guest frame, moved to gpfn.
    case gmfn = 2
    /// `size` consecutive guest frames (add_to_physmap only).
    case gmfnRange = 3
    /// A frame of another domain (add_to_physmap_batch only).
    case gmfnForeign = 4
    /// Device MMIO (Arm only).
    case devMMIO = 5
  }

  /// Argument layouts of memory_op (x86_64).
  public enum MemoryOpLayout {
    /// XENMAPIDX_grant_table_status: set in idx to map grant status frames.
    public static let grantTableStatusIndexFlag: UInt64 = 0x8000_0000

    /// XENMEMF_populate_on_demand, in `mem_flags`.
    public static let populateOnDemandFlag: UInt32 = 1 << 16







  }
}
