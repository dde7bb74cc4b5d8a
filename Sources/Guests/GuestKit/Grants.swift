#if os(none)
import GuestSupport

/// Grant tables as a PVH guest uses them (grant_table.h): the table's first frame placed with
/// XENMEM_add_to_physmap(XENMAPSPACE_grant_table), entries written in it, and
/// HYPERVISOR_grant_table_op's map, unmap and copy, one element at a time. The guest's
/// identity map covers the first 4 GiB, so a guest-physical address is also a pointer.
public enum Grants {
  public static let grantTableOp = 20

  /// GNTST_* statuses.
  public static let okay: Int16 = 0
  public static let generalError: Int16 = -1
  public static let badDomain: Int16 = -2
  public static let badGrantRef: Int16 = -3
  public static let badHandle: Int16 = -4
  public static let permissionDenied: Int16 = -8
  public static let badCopyArgument: Int16 = -10
  public static let noSpace: Int16 = -13

  /// Places frame 0 of this domain's grant table at `gfn` (0 on success).
  public static func placeTable(at gfn: UInt64) -> Int64 {
    var xatp = gs_xen_add_to_physmap(domid: Xen.domidSelf, size: 0, space: UInt32(GS_XENMAPSPACE_grant_table), idx: 0,
      gpfn: XenPFN(truncatingIfNeeded: gfn))
    return Xen.withArgument(&xatp) { Xen.memoryOp(UInt64(GS_XENMEM_add_to_physmap), $0) }
  }

  /// Entry `ref` of a table whose frame 0 is at `tableGFN` (refs below 512).
  public static func entry(_ tableGFN: UInt64, _ ref: UInt32) -> UnsafeMutablePointer<gs_grant_entry_v1> {
    UnsafeMutablePointer(bitPattern: UInt(tableGFN << 12) + UInt(ref) * 8)!
  }

  /// Grants frame `gfn` to `domid` as entry `ref`: frame and domid first, then the flags, as
  /// Linux's gnttab_grant_foreign_access does (the hypervisor reads flags and domid together).
  public static func grant(_ tableGFN: UInt64, ref: UInt32, gfn: UInt64, to domid: UInt16, readOnly: Bool = false) {
    let e = entry(tableGFN, ref)
    e.pointee.frame = UInt32(truncatingIfNeeded: gfn)
    e.pointee.domid = domid
    gs_compiler_barrier()
    flagsWord(e).pointee = UInt16(GS_GTF_permit_access) | (readOnly ? UInt16(GS_GTF_readonly) : 0)
  }

  /// The entry's flags, read now (the hypervisor changes GTF_reading / GTF_writing).
  public static func flags(_ tableGFN: UInt64, _ ref: UInt32) -> UInt16 {
    gs_read_volatile16(UInt64(UInt(bitPattern: flagsWord(entry(tableGFN, ref)))))
  }

  /// Ends access to `ref` as gnttab_end_foreign_access_ref does: flags to 0 only if neither
  /// GTF_reading nor GTF_writing is set, with a compare-and-exchange. True if ended.
  public static func endAccess(_ tableGFN: UInt64, _ ref: UInt32) -> Bool {
    let word = UInt64(UInt(bitPattern: flagsWord(entry(tableGFN, ref))))
    let now = gs_read_volatile16(word)
    if now & UInt16(GS_GTF_reading | GS_GTF_writing) != 0 { return false }
    return gs_cmpxchg16(word, now, 0) == now
  }

  private static func flagsWord(_ e: UnsafeMutablePointer<gs_grant_entry_v1>) -> UnsafeMutablePointer<UInt16> {
    UnsafeMutableRawPointer(e).assumingMemoryBound(to: UInt16.self)
  }

  /// GNTTABOP_map_grant_ref of one element: (result, status, handle).
  public static func map(_ ref: UInt32, of domid: UInt16, at gfn: UInt64, readOnly: Bool = false, flags: UInt32? = nil) -> (result: Int64, status: Int16, handle: UInt32) {
    var op = gs_gnttab_map_grant_ref()
    op.host_addr = gfn << 12
    op.flags = flags ?? (UInt32(GS_GNTMAP_host_map) | (readOnly ? UInt32(GS_GNTMAP_readonly) : 0))
    op.ref = ref
    op.dom = domid
    op.status = 0x5555
    let r = Xen.withArgument(&op) { Xen.hypercall(grantTableOp, UInt64(GS_GNTTABOP_map_grant_ref), $0, 1) }
    return (r, op.status, op.handle)
  }

  /// GNTTABOP_unmap_grant_ref of one element: (result, status).
  public static func unmap(_ handle: UInt32, at gfn: UInt64) -> (result: Int64, status: Int16) {
    var op = gs_gnttab_unmap_grant_ref()
    op.host_addr = gfn << 12
    op.handle = handle
    op.status = 0x5555
    let r = Xen.withArgument(&op) { Xen.hypercall(grantTableOp, UInt64(GS_GNTTABOP_unmap_grant_ref), $0, 1) }
    return (r, op.status)
  }

  /// One side of a copy: a grant ref of `domid`, or (`domid` DOMID_SELF, `isGrant` false) a
  /// frame of this domain.
  public struct Side {
    public var refOrGFN: UInt64
    public var domid: UInt16
    public var offset: UInt16
    public var isGrant: Bool
    public init(ref: UInt32, of domid: UInt16, offset: UInt16 = 0) {
      refOrGFN = UInt64(ref)
      self.domid = domid
      self.offset = offset
      isGrant = true
    }
    public init(ownGFN gfn: UInt64, offset: UInt16 = 0) {
      refOrGFN = gfn
      domid = Xen.domidSelf
      self.offset = offset
      isGrant = false
    }
  }

  /// GNTTABOP_copy of one element: (result, status).
  public static func copy(from source: Side, to destination: Side, length: UInt16) -> (result: Int64, status: Int16) {
    var op = gs_gnttab_copy()
    op.source = gs_gnttab_copy_ptr(ref_or_gmfn: UInt(truncatingIfNeeded: source.refOrGFN), domid: source.domid, offset: source.offset)
    op.dest = gs_gnttab_copy_ptr(ref_or_gmfn: UInt(truncatingIfNeeded: destination.refOrGFN), domid: destination.domid, offset: destination.offset)
    op.len = length
    op.flags = (source.isGrant ? UInt16(GS_GNTCOPY_source_gref) : 0) | (destination.isGrant ? UInt16(GS_GNTCOPY_dest_gref) : 0)
    op.status = 0x5555
    let r = Xen.withArgument(&op) { Xen.hypercall(grantTableOp, UInt64(GS_GNTTABOP_copy), $0, 1) }
    return (r, op.status)
  }
}
#endif
