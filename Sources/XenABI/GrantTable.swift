// HYPERVISOR_grant_table_op, from xen/include/public/grant_table.h.
//
// A domain shares a page by writing a grant entry (which frame, for which domain, read-only or
// not) into its grant table, pages the hypervisor provides and the guest places in its physical
// space with XENMEM_add_to_physmap(XENMAPSPACE_grant_table). The domain named in the entry may
// then map the frame or copy to and from it, by reference number.

extension XenABI {
  /// `GNTTABOP_*`: grant_table_op's first argument. The third is the number of operations.
  public enum GrantTableOp: UInt32, Sendable, CaseIterable {
    case mapGrantRef = 0
    case unmapGrantRef = 1
    case setupTable = 2
    case dumpTable = 3
    case transfer = 4
    case copy = 5
    case querySize = 6
    case unmapAndReplace = 7
    case setVersion = 8
    case getStatusFrames = 9
    case getVersion = 10
    case swapGrantRef = 11
    case cacheFlush = 12
  }

  /// `GNTST_*`: the per-operation status grant operations write back.
  public enum GrantStatus: Int16, Sendable, CaseIterable {
    case okay = 0
    case generalError = -1
    case badDomain = -2
    case badGrantRef = -3
    case badHandle = -4
    case badVirtualAddress = -5
    case badDeviceAddress = -6
    case noDeviceSpace = -7
    case permissionDenied = -8
    case badPage = -9
    case badCopyArgument = -10
    case addressTooBig = -11
    case eagain = -12
    case noSpace = -13
  }

  public enum GrantLayout {
    /// GTF_* in `grant_entry_v1.flags`: bits 0-1 are the entry's type.
    public static let typeMask: UInt16 = 3
    /// GTF_invalid / GTF_permit_access / GTF_accept_transfer.
    public static let typeInvalid: UInt16 = 0
    public static let typePermitAccess: UInt16 = 1
    public static let typeAcceptTransfer: UInt16 = 2
    /// GTF_readonly: the grantee may only read.
    public static let readOnly: UInt16 = 1 << 2
    /// GTF_reading / GTF_writing: set by the hypervisor while the grant is mapped or copied;
    /// the granter may not end access while they are set.
    public static let reading: UInt16 = 1 << 3
    public static let writing: UInt16 = 1 << 4

    /// GNTMAP_* in `gnttab_map_grant_ref.flags`.
    public static let mapDevice: UInt32 = 1 << 0
    public static let mapHost: UInt32 = 1 << 1
    public static let mapReadOnly: UInt32 = 1 << 2
    public static let mapApplication: UInt32 = 1 << 3
    public static let mapContainsPTE: UInt32 = 1 << 4

    /// GNTCOPY_* in `gnttab_copy.flags`: which side names a grant reference.
    public static let copySourceGrantRef: UInt16 = 1 << 0
    public static let copyDestinationGrantRef: UInt16 = 1 << 1

    /// GNTTAB_NR_RESERVED_ENTRIES: the refs the toolstack keeps (0 the console, 1 xenstore).
    public static let reservedEntries: UInt32 = 8
    /// Entries of a version 1 table per 4 KiB frame (8 bytes each).
    public static let entriesPerFrameV1: UInt32 = 512

    /// Xen's defaults for a domain without `max_grant_frames` / `max_maptrack_frames` in its
    /// configuration (xen/common/grant_table.c: opt_max_grant_frames, opt_max_maptrack_frames).
    public static let defaultMaxGrantFrames = 64
    public static let defaultMaxMaptrackFrames = 1024
  }
}
