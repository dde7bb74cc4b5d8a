import XenABI
import XenPublic

/// HYPERVISOR_grant_table_op(cmd, uop, count), version 1, as Xen offers it to an HVM or PVH
/// guest (hvm_grant_table_op): query_size, setup_table, set_version and get_version; and
/// map_grant_ref, unmap_grant_ref and copy, batches of `count` elements that `GrantTables`
/// carries out one by one. A table's frames reach the guest through
/// XENMEM_add_to_physmap(XENMAPSPACE_grant_table) (MemoryOp). swap_grant_ref answers -ENOSYS
/// (nothing here uses it; Linux only with version 2's sub-page grants); the other commands are
/// -ENOSYS for such a guest, as in Xen.
enum GrantTableOp {
  /// A batch stops at a preemption point after this many elements (or sooner when asked), and
  /// continues itself: as Xen's hypercall_create_continuation for grant_table_op, the argument
  /// moves past the elements done and the count shrinks by them.
  static let elementsPerStep: UInt64 = 128

  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, count: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.GrantTableOp(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    switch op {
    case .mapGrantRef:
      return try batch(op, argument: argument, count: count, size: env.guestSize(of: gnttab_map_grant_ref.self), env) { address throws(XenABI.Errno) in
        var request = try env.copyIn(gnttab_map_grant_ref.self, from: address)
        let (status, handle) = GrantTables.map(request, by: env.vcpu, lookup: { env.grantingDomain($0) })
        request.status = status.rawValue
        request.handle = handle
        request.dev_bus_addr = 0                   // no device mappings for a translated guest
        try env.copyOut(request, to: address)
      }

    case .unmapGrantRef:
      return try batch(op, argument: argument, count: count, size: env.guestSize(of: gnttab_unmap_grant_ref.self), env) { address throws(XenABI.Errno) in
        var request = try env.copyIn(gnttab_unmap_grant_ref.self, from: address)
        request.status = GrantTables.unmap(handle: request.handle, hostAddress: request.host_addr, by: env.vcpu).rawValue
        try env.copyOut(request, to: address)
      }

    case .copy:
      return try batch(op, argument: argument, count: count, size: env.guestSize(of: gnttab_copy.self), env) { address throws(XenABI.Errno) in
        var request = try env.copyIn(gnttab_copy.self, from: address)
        request.status = GrantTables.copy(request, by: env.vcpu, lookup: { env.grantingDomain($0) }).rawValue
        try env.copyOut(request, to: address)
      }

    case .querySize:
      guard count == 1 else { throw .EINVAL }
      var query = try env.copyIn(gnttab_query_size.self, from: argument)
      if let refused = refusal(query.dom, env) {
        query.status = refused.rawValue
      } else {
        // Xen makes the first frame when it makes the table.
        if let errno = env.growGrantTable(to: 1) { throw errno }
        // Under the p2m lock, which every growth of the table holds (`P2M.growGrantTable`):
        // another vcpu of the domain may be growing it now, and an array read while another
        // pcpu appends to it may read a buffer being freed.
        query.nr_frames = UInt32(env.domain.p2mLock.withLock { env.domain.grantFrames.count })
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
    // A copy taken under the p2m lock (see query_size); the table only grows while the domain
    // lives, so it has at least `nr_frames` entries.
    let placedGFNs = env.domain.p2mLock.withLock { env.domain.grantFrameGFNs }
    for i in 0..<UInt64(setup.nr_frames) {
      guard i < UInt64(placedGFNs.count) else { return .generalError }
      let placed = placedGFNs[Int(i)] ?? UInt64.max
      do throws(XenABI.Errno) {
        try env.copyOut(GuestULong(placed), element: i, of: setup.frame_list)      // xen_pfn_t
      } catch {
        return .badVirtualAddress
      }
    }
    return .okay
  }

  /// `count` elements of `size` bytes from `argument`, each handed to `perform` by address,
  /// with a continuation every `elementsPerStep` elements or when a preemption is asked for.
  /// A count above 2^31 - 1 is -EINVAL (Xen takes it as an int); an element that cannot be
  /// read or written is -EFAULT for the whole call, as in Xen.
  private static func batch<E: HypercallEnvironment>(_ op: XenABI.GrantTableOp, argument: UInt64, count: UInt64, size: Int, _ env: E,
                                                     _ perform: (UInt64) throws(XenABI.Errno) -> Void) throws(XenABI.Errno) -> HypercallOutcome {
    guard count <= UInt64(Int32.max) else { throw .EINVAL }
    var done: UInt64 = 0
    while done < count {
      let address = try Hypercalls.elementAddress(argument, index: done, size: size)
      if done >= elementsPerStep || (done > 0 && env.preemptionRequested()) {
        env.domain.continuations += 1
        return .continuation(HypercallFrame(number: XenABI.Hypercall.grantTableOp.rawValue, UInt64(op.rawValue), address, count - done))
      }
      try perform(address)
      done += 1
    }
    return .result(0)
  }

  /// Why the caller may not act on domain `domid`'s table: only its own (Xen lets a control
  /// domain or a device model act on others; there are neither here). A domain that does not
  /// exist is GNTST_bad_domain, as Xen answers (rcu_lock_domain_by_any_id fails first).
  private static func refusal<E: HypercallEnvironment>(_ domid: UInt16, _ env: E) -> XenABI.GrantStatus? {
    if Hypercalls.isSelf(domid, env.domain) { return nil }
    return env.grantingDomain(domid) == nil ? .badDomain : .permissionDenied
  }
}
