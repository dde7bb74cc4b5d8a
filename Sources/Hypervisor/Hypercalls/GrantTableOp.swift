import XenABI
import XenPublic

/// HYPERVISOR_grant_table_op(cmd, uop, count), version 1, as Xen offers it to an HVM or PVH
/// guest (hvm_grant_table_op): query_size, setup_table, set_version and get_version. A table's
/// frames reach the guest through XENMEM_add_to_physmap(XENMAPSPACE_grant_table) (MemoryOp).
/// map_grant_ref, unmap_grant_ref, copy and swap_grant_ref answer -ENOSYS until mappings of
/// another domain's frames exist; the other commands are -ENOSYS for such a guest, as in Xen.
enum GrantTableOp {
  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, count: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.GrantTableOp(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    switch op {
    case .querySize:
      guard count == 1 else { throw .EINVAL }
      var query = try env.copyIn(gnttab_query_size.self, from: argument)
      if let refused = refusal(query.dom, env) {
        query.status = refused.rawValue
      } else {
        // Xen makes the first frame when it makes the table.
        if let errno = env.growGrantTable(to: 1) { throw errno }
        query.nr_frames = UInt32(env.domain.grantFrames.count)
        query.max_nr_frames = UInt32(env.domain.maxGrantFrames)
        query.status = XenABI.GrantStatus.okay.rawValue
      }
      try env.copyOut(query, to: argument)

    case .setupTable:
      guard count == 1 else { throw .EINVAL }
      var setup = try env.copyIn(gnttab_setup_table.self, from: argument)
      setup.status = try setupTable(setup, env).rawValue
      try env.copyOut(setup, to: argument)

    case .setVersion:
      var request = try env.copyIn(gnttab_set_version.self, from: argument)
      // Only version 1 exists here: version 2's sub-page and transitive grants and its status
      // frames are not offered, which Xen also does with gnttab_max_version=1 (-ENOSYS for 2).
      let asked = request.version
      request.version = 1
      try env.copyOut(request, to: argument)
      guard asked == 1 || asked == 2 else { throw .EINVAL }
      if asked == 2 { throw .ENOSYS }

    case .getVersion:
      var request = try env.copyIn(gnttab_get_version.self, from: argument)
      if let refused = refusal(request.dom, env) { throw refused == .badDomain ? .ESRCH : .EPERM }
      request.version = 1
      try env.copyOut(request, to: argument)

    default:
      throw .ENOSYS
    }
    return .result(0)
  }

  /// GNTTABOP_setup_table: grows the table to `nr_frames` and lists where each frame is placed
  /// (the guest frame, or ~0 for one not placed), as Xen answers a translated guest.
  private static func setupTable<E: HypercallEnvironment>(_ setup: gnttab_setup_table, _ env: E) throws(XenABI.Errno) -> XenABI.GrantStatus {
    if let refused = refusal(setup.dom, env) { return refused }
    guard setup.nr_frames <= UInt32(env.domain.maxGrantFrames) else { return .generalError }
    if env.growGrantTable(to: max(1, Int(setup.nr_frames))) != nil { return .generalError }
    for i in 0..<UInt64(setup.nr_frames) {
      let placed = env.domain.grantFrameGFNs[Int(i)] ?? UInt64.max
      do throws(XenABI.Errno) {
        try env.copyOut(placed, to: try Hypercalls.elementAddress(setup.frame_list, index: i, size: 8))
      } catch {
        return .badVirtualAddress
      }
    }
    return .okay
  }

  /// Why the caller may not act on domain `domid`'s table: only its own (Xen lets a control
  /// domain or a device model act on others; there are neither here).
  private static func refusal<E: HypercallEnvironment>(_ domid: UInt16, _ env: E) -> XenABI.GrantStatus? {
    if Hypercalls.isSelf(domid, env.domain) { return nil }
    return domid < XenABI.DomainID.firstReserved ? .permissionDenied : .badDomain
  }
}
