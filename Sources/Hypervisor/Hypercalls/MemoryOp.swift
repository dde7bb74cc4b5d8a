import XenABI

/// HYPERVISOR_memory_op: a guest asking about, growing, shrinking and rearranging its memory.
///
/// The batch operations (populate_physmap, increase/decrease_reservation) are the hypervisor's
/// long-running hypercalls: they stop at a preemption point every `extentsPerStep` extents and
/// continue themselves (Xen's convention: the extents already done go in the command's upper
/// bits, `cmd | (done << 6)`), so a guest asking for a million pages cannot hold a pcpu.
enum MemoryOp {
  static let extentsPerStep: UInt64 = 512

  static func handle<E: HypercallEnvironment>(_ frame: HypercallFrame, _ env: E) -> HypercallOutcome {
    let (command, argument, _, _, _) = frame.arguments
    let opNumber = command & XenABI.MemoryOp.commandMask
    let startExtent = command >> UInt64(XenABI.MemoryOp.extentShift)
    guard let op = XenABI.MemoryOp(rawValue: UInt32(opNumber)) else { return .error(.ENOSYS) }
    let domain = env.domain
    switch op {
    case .maximumRAMPage:
      let top = env.memoryMap.filter { $0.type == 1 }.map { $0.address + $0.size }.max() ?? 0
      return .result(Int64(top / 4096) - 1)
    case .currentReservation, .maximumReservation:
      guard let domid = env.readLE(UInt16.self, at: argument) else { return .error(.EFAULT) }
      guard Hypercalls.isSelf(domid, domain) else { return .error(.EPERM) }
      return .result(Int64(op == .currentReservation ? domain.ramPages : domain.maximumPages))
    case .memoryMap:
      return memoryMap(argument, env)
    case .addToPhysmap:
      return addToPhysmap(argument, env)
    case .populatePhysmap, .increaseReservation, .decreaseReservation:
      return batch(op, frame: frame, startExtent: startExtent, env)
    default:
      return .error(.ENOSYS)
    }
  }

  /// XENMEM_memory_map: the guest's e820, up to the number of entries it has room for.
  static func memoryMap<E: HypercallEnvironment>(_ argument: UInt64, _ env: E) -> HypercallOutcome {
    typealias Layout = XenABI.MemoryOpLayout.MemoryMap
    guard let bytes = env.read(argument, count: Layout.size),
          let capacity = bytes.littleEndian(UInt32.self, at: Layout.Offset.entryCount),
          let buffer = bytes.littleEndian(UInt64.self, at: Layout.Offset.buffer) else { return .error(.EFAULT) }
    // As Xen: as many entries as the buffer holds, and nr_entries says how many that was.
    let entries = env.memoryMap.prefix(Int(capacity))
    var entryBytes: [UInt8] = []
    for entry in entries {
      entryBytes += littleEndianBytes(entry.address) + littleEndianBytes(entry.size) + littleEndianBytes(entry.type)
    }
    guard env.write(buffer, entryBytes),
          env.writeLE(UInt32(entries.count), at: argument, offset: Layout.Offset.entryCount) else { return .error(.EFAULT) }
    return .result(0)
  }

  /// XENMEM_add_to_physmap: put a hypervisor-provided page into the guest's physical space.
  /// Only the shared_info page exists yet; grant tables come with their own milestone.
  static func addToPhysmap<E: HypercallEnvironment>(_ argument: UInt64, _ env: E) -> HypercallOutcome {
    typealias Layout = XenABI.MemoryOpLayout.AddToPhysmap
    guard let bytes = env.read(argument, count: Layout.size),
          let domid = bytes.littleEndian(UInt16.self, at: Layout.Offset.domid),
          let space = bytes.littleEndian(UInt32.self, at: Layout.Offset.space),
          let index = bytes.littleEndian(UInt64.self, at: Layout.Offset.idx),
          let gpfn = bytes.littleEndian(UInt64.self, at: Layout.Offset.gpfn) else { return .error(.EFAULT) }
    let domain = env.domain
    guard Hypercalls.isSelf(domid, domain) else { return .error(.EPERM) }
    guard let mapSpace = XenABI.MapSpace(rawValue: space) else { return .error(.EINVAL) }
    switch mapSpace {
    case .sharedInfo:
      guard index == 0 else { return .error(.EINVAL) }
      guard gpfn < (1 << 40) else { return .error(.EINVAL) }
      // The page it lands on stops being RAM (its frame is given back), as in Xen.
      if let errno = env.placeSharedInfo(gfn: gpfn) { return .error(errno) }
      return .result(0)
    default:
      return .error(.ENOSYS)
    }
  }

  /// populate_physmap / increase_reservation (add RAM) and decrease_reservation (give it back),
  /// extent by extent, with a continuation every `extentsPerStep` extents. The result is the
  /// number of extents done; a failure part-way stops there, as in Xen.
  static func batch<E: HypercallEnvironment>(_ op: XenABI.MemoryOp, frame: HypercallFrame, startExtent: UInt64, _ env: E) -> HypercallOutcome {
    typealias Layout = XenABI.MemoryOpLayout.Reservation
    let (command, argument, _, _, _) = frame.arguments
    guard let bytes = env.read(argument, count: Layout.size),
          let extents = bytes.littleEndian(UInt64.self, at: Layout.Offset.extentStart),
          let count = bytes.littleEndian(UInt64.self, at: Layout.Offset.extentCount),
          let order32 = bytes.littleEndian(UInt32.self, at: Layout.Offset.extentOrder),
          let domid = bytes.littleEndian(UInt16.self, at: Layout.Offset.domid) else { return .error(.EFAULT) }
    let domain = env.domain
    guard Hypercalls.isSelf(domid, domain) else { return .error(.EPERM) }
    guard order32 <= 9 else { return .error(.EINVAL) }      // at most 2 MiB per extent
    guard startExtent <= count else { return .error(.EINVAL) }
    let order = Int(order32)
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
      if op == .increaseReservation { return done == startExtent ? .error(.ENOSYS) : .result(Int64(done)) }
      guard let gfn = env.readLE(UInt64.self, at: extents &+ done &* 8) else {
        return done == 0 ? .error(.EFAULT) : .result(Int64(done))
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
