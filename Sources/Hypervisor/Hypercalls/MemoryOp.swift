import XenABI
import XenPublic

/// HYPERVISOR_memory_op: a guest asking about, growing, shrinking and rearranging its memory.
///
/// The batch operations (populate_physmap, increase/decrease_reservation) are the hypervisor's
/// long-running hypercalls: they stop at a preemption point every `extentsPerStep` extents and
/// continue themselves (Xen's convention: the extents already done go in the command's upper
/// bits, `cmd | (done << 6)`), so a guest asking for a million pages cannot hold a pcpu.
enum MemoryOp {
  static let extentsPerStep: UInt64 = 512

  static func handle<E: HypercallEnvironment>(_ frame: HypercallFrame, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    let (command, argument, _, _, _) = frame.arguments
    let opNumber = command & XenABI.MemoryOp.commandMask
    let startExtent = command >> UInt64(XenABI.MemoryOp.extentShift)
    guard let op = XenABI.MemoryOp(rawValue: UInt32(opNumber)) else { throw .ENOSYS }
    let domain = env.domain
    switch op {
    case .maximumRAMPage:
      let top = env.memoryMap.filter { $0.type == 1 }.map { $0.address + $0.size }.max() ?? 0
      return .result(Int64(top / 4096) - 1)
    case .currentReservation, .maximumReservation:
      let domid = try env.copyIn(UInt16.self, from: argument)          // domid_t
      guard Hypercalls.isSelf(domid, domain) else { throw .EPERM }
      return .result(Int64(op == .currentReservation ? domain.ramPages : domain.maximumPages))
    case .memoryMap:
      return try memoryMap(argument, env)
    case .addToPhysmap:
      return try addToPhysmap(argument, env)
    case .populatePhysmap, .increaseReservation, .decreaseReservation:
      return try batch(op, frame: frame, startExtent: startExtent, env)
    default:
      throw .ENOSYS
    }
  }

  /// XENMEM_memory_map: the guest's e820, up to the number of entries it has room for.
  static func memoryMap<E: HypercallEnvironment>(_ argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    var map = try env.copyIn(xen_memory_map.self, from: argument)
    // As Xen: as many entries as the buffer holds, and nr_entries says how many that was.
    let entries = env.memoryMap.prefix(Int(map.nr_entries))
    var entryBytes: [UInt8] = []
    for entry in entries {
      entryBytes += e820entry(addr: entry.address, size: entry.size, type: entry.type).bytes
    }
    try env.copyOut(bytes: entryBytes, to: map.buffer)
    map.nr_entries = UInt32(entries.count)
    try env.copyOut(map, to: argument)
    return .result(0)
  }

  /// XENMEM_add_to_physmap: put a hypervisor-provided page into the guest's physical space: the
  /// shared_info page, or a frame of the grant table. Other spaces (moving its own frames,
  /// another domain's) answer -ENOSYS.
  static func addToPhysmap<E: HypercallEnvironment>(_ argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    let request = try env.copyIn(xen_add_to_physmap.self, from: argument)
    guard Hypercalls.isSelf(request.domid, env.domain) else { throw .EPERM }
    guard let mapSpace = XenABI.MapSpace(rawValue: request.space) else { throw .EINVAL }
    switch mapSpace {
    case .sharedInfo:
      guard request.idx == 0 else { throw .EINVAL }
      guard request.gpfn < (1 << 40) else { throw .EINVAL }
      // The page it lands on stops being RAM (its frame is given back), as in Xen.
      if let errno = env.placeSharedInfo(gfn: request.gpfn) { throw errno }
      return .result(0)
    case .grantTable:
      // Version 1 has no status frames (XENMAPIDX_grant_table_status is for version 2).
      guard request.idx & XenABI.MemoryOpLayout.grantTableStatusIndexFlag == 0 else { throw .EINVAL }
      guard request.idx < UInt64(env.domain.maxGrantFrames) else { throw .EINVAL }
      guard request.gpfn < (1 << 40) else { throw .EINVAL }
      if let errno = env.placeGrantFrame(Int(request.idx), gfn: request.gpfn) { throw errno }
      return .result(0)
    default:
      throw .ENOSYS
    }
  }

  /// populate_physmap / increase_reservation (add RAM) and decrease_reservation (give it back),
  /// extent by extent, with a continuation every `extentsPerStep` extents. The result is the
  /// number of extents done; a failure part-way stops there, as in Xen.
  static func batch<E: HypercallEnvironment>(_ op: XenABI.MemoryOp, frame: HypercallFrame, startExtent: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    let (command, argument, _, _, _) = frame.arguments
    let reservation = try env.copyIn(xen_memory_reservation.self, from: argument)
    let count = reservation.nr_extents
    let domain = env.domain
    guard Hypercalls.isSelf(reservation.domid, domain) else { throw .EPERM }
    guard reservation.extent_order <= 9 else { throw .EINVAL }      // at most 2 MiB per extent
    guard startExtent <= count else { throw .EINVAL }
    let order = Int(reservation.extent_order)
    let pagesPerExtent = 1 << order
    var done = startExtent
    while done < count {
      if done - startExtent >= extentsPerStep || (done > startExtent && env.preemptionRequested()) {
        domain.continuations += 1
        let resumed = (command & XenABI.MemoryOp.commandMask) | (done << UInt64(XenABI.MemoryOp.extentShift))
        return .continuation(HypercallFrame(number: frame.number, resumed, argument))
      }
      // increase_reservation returns frames in the array and takes no input gfn: a PVH/HVM
      // guest (translated memory) uses populate_physmap instead, so only that one is offered.
      if op == .increaseReservation {
        if done == startExtent { throw .ENOSYS }
        return .result(Int64(done))
      }
      let gfn: UInt64
      do throws(XenABI.Errno) {
        gfn = try env.copyIn(GuestULong.self, element: done, of: reservation.extent_start).value   // xen_pfn_t
      } catch {
        if done == 0 { throw error }
        return .result(Int64(done))
      }
      guard gfn & UInt64(pagesPerExtent - 1) == 0, gfn < (1 << 40) else { break }
      if op == .decreaseReservation {
        guard env.release(gfn: gfn, order: order) else { break }
      } else {
        guard env.populate(gfn: gfn, order: order) else { break }
      }
      done += 1
    }
    return .result(Int64(done))
  }
}
