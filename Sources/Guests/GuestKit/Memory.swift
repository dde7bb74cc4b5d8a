#if os(none)
import GuestSupport

/// The guest's physical memory as XENMEM_* (xen/include/public/memory.h) changes it: pages given
/// back and populated again, the reservation counts, and where the shared_info page goes. Every
/// call is for DOMID_SELF; a gfn is a guest frame number (guest-physical address >> 12).
/// xen_pfn_t: a frame number as the XENMEM reservation arrays hold them, as wide as the guest's
/// words (4 bytes in a 32-bit guest).
public typealias XenPFN = gs_xen_pfn_t

public enum Memory {
  /// XENMEM_current_reservation: the pages of RAM the domain has now (or a negative errno).
  public static func currentReservation() -> Int64 {
    var domid = Xen.domidSelf
    return Xen.withArgument(&domid) { Xen.memoryOp(UInt64(GS_XENMEM_current_reservation), $0) }
  }

  /// XENMEM_maximum_reservation: the most pages of RAM the domain may have (maxmem).
  public static func maximumReservation() -> Int64 {
    var domid = Xen.domidSelf
    return Xen.withArgument(&domid) { Xen.memoryOp(UInt64(GS_XENMEM_maximum_reservation), $0) }
  }

  /// XENMEM_populate_physmap of one extent of 2^order pages at `gfn`: 1 if it was populated,
  /// 0 if not (or a negative errno).
  @discardableResult
  public static func populate(_ gfn: UInt64, order: UInt32 = 0) -> Int64 {
    var extent = XenPFN(truncatingIfNeeded: gfn)
    return withUnsafeMutablePointer(to: &extent) { reservation(GS_XENMEM_populate_physmap, $0, count: 1, order: order) }
  }

  /// XENMEM_populate_physmap of `gfns.count` extents in one call: how many were populated.
  @discardableResult
  public static func populate(_ gfns: UnsafeMutableBufferPointer<XenPFN>, order: UInt32 = 0) -> Int64 {
    reservation(GS_XENMEM_populate_physmap, gfns.baseAddress, count: gfns.count, order: order)
  }

  /// XENMEM_decrease_reservation of one extent of 2^order pages at `gfn` (given back to the
  /// hypervisor): 1 if it was, 0 if nothing was mapped there or it was refused.
  @discardableResult
  public static func release(_ gfn: UInt64, order: UInt32 = 0) -> Int64 {
    var extent = XenPFN(truncatingIfNeeded: gfn)
    return withUnsafeMutablePointer(to: &extent) { reservation(GS_XENMEM_decrease_reservation, $0, count: 1, order: order) }
  }

  /// XENMEM_decrease_reservation of `gfns.count` extents in one call: how many were given back.
  @discardableResult
  public static func release(_ gfns: UnsafeMutableBufferPointer<XenPFN>, order: UInt32 = 0) -> Int64 {
    reservation(GS_XENMEM_decrease_reservation, gfns.baseAddress, count: gfns.count, order: order)
  }

  /// XENMEM_add_to_physmap {DOMID_SELF, size 0, XENMAPSPACE_shared_info, idx 0, gfn}: puts the
  /// shared_info page at `gfn` (0 on success). What was there leaves (RAM is given back), and so
  /// does the page's previous place. `SharedInfo.map()` is the usual way in; this is for moving it.
  @discardableResult
  public static func placeSharedInfo(at gfn: UInt64) -> Int64 {
    var xatp = gs_xen_add_to_physmap(
      domid: Xen.domidSelf, size: 0, space: UInt32(GS_XENMAPSPACE_shared_info), idx: 0,
      gpfn: XenPFN(truncatingIfNeeded: gfn))
    return Xen.withArgument(&xatp) { Xen.memoryOp(UInt64(GS_XENMEM_add_to_physmap), $0) }
  }

  static func reservation(_ command: Int32, _ extents: UnsafeMutablePointer<XenPFN>?, count: Int, order: UInt32) -> Int64 {
    var arg = gs_xen_memory_reservation()
    arg.extent_start = Xen.handle(UnsafeRawPointer(extents))
    arg.nr_extents = UInt(count)
    arg.extent_order = order
    arg.mem_flags = 0
    arg.domid = Xen.domidSelf
    return Xen.withArgument(&arg) { Xen.memoryOp(UInt64(command), $0) }
  }
}
#endif
