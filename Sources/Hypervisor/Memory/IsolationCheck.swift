import XenABI

/// Checks that every frame's record in the frame table agrees with who really uses it: the
/// p2ms that map it, the references the hypervisor keeps, the frames waiting for a flush. A
/// boot option (`isolationcheck`, on in every system test) runs it after each domain is
/// destroyed and at the end of the run; a disagreement there is a panic naming the frame.
///
/// It holds every domain's p2m lock while it runs, so it sees no change half made.
public enum IsolationCheck {
  /// Set once at boot from the command line, before any domain exists.
  nonisolated(unsafe) public static var enabled = false

  /// The problems found, at most `limit` (empty: everything agrees), and how many frames of
  /// domains were checked.
  public static func run(_ domains: [Domain], limit: Int = 8) -> (problems: [String], frames: Int) {
    let domains = domains.filter { $0.p2mRoot != 0 || $0.framesInUse != 0 }.sorted { $0.id < $1.id }
    // The grant lock first (the lock order), so no mapping is half made or half gone.
    GrantTables.lock.lock()
    for domain in domains { domain.p2mLock.lock() }
    defer {
      for domain in domains.reversed() { domain.p2mLock.unlock() }
      GrantTables.lock.unlock()
    }
    var problems: [String] = []
    func problem(_ text: String) { if problems.count < limit { problems.append(text) } }
    var marked: [UInt64] = []
    var beyondMark: [UInt64] = []
    func found(_ frame: UInt64, _ record: FrameRecord) -> UInt32 {
      UInt32(record.mark) + (record.mark == UInt8.max ? UInt32(beyondMark.count { $0 == frame }) : 0)
    }
    func mark(_ frame: UInt64) {
      let record = FrameTable.record(frame)
      let count = record?.mark ?? 0
      if count == 0 { marked.append(frame) }
      // A frame can have more users than the mark counts (one grant mapped many times): the
      // rest are counted here.
      if count == UInt8.max { beyondMark.append(frame) }
      FrameTable.setMark(frame, count == UInt8.max ? count : count + 1)
    }

    for domain in domains {
      let table = NestedPageTable(root: domain.p2mRoot)
      table.walk(leaf: { gfn, machine, level, kind in
        for i in 0..<UInt64(level == 0 ? 1 : 512) {
          let frame = machine + i * 4096
          guard let record = FrameTable.record(frame) else {
            problem("frame \(hex(frame)) at gfn \(hex(gfn + i)) of domain \(domain.id) is outside the frame table")
            continue
          }
          if kind == .grant {
            // Another domain's RAM; the reference is its maptrack entry's, counted below.
            if record.use != .guestRAM || record.refs == 0 {
              problem("grant mapping at gfn \(hex(gfn + i)) of domain \(domain.id) maps frame \(hex(frame)) of \(owner(record)) with \(record.refs) references")
            }
            continue
          }
          if record.owner != domain.id || record.use == .free || record.use == .hypervisor {
            problem("frame \(hex(frame)) at gfn \(hex(gfn + i)) of domain \(domain.id) belongs to \(owner(record))")
          } else if (kind == .ram) != (record.use == .guestRAM) {
            problem("frame \(hex(frame)) at gfn \(hex(gfn + i)) of domain \(domain.id) is mapped as \(kind == .ram ? "RAM" : "a special page") but is \(use(record.use))")
          }
          if record.mark != 0 { problem("frame \(hex(frame)) is mapped twice in domain \(domain.id) (again at gfn \(hex(gfn + i)))") }
          mark(frame)
        }
      }, table: { page, _ in
        guard let record = FrameTable.record(page), record.owner == domain.id, record.use == .p2mTable else {
          problem("p2m table \(hex(page)) of domain \(domain.id) is recorded as \(FrameTable.record(page).map { owner($0) } ?? "nothing")")
          return
        }
        var entries: UInt32 = 0
        for i in 0..<UInt64(512) where FrameMemory.read64(page + i * 8) & 1 != 0 { entries += 1 }
        if entries != record.refs {
          problem("p2m table \(hex(page)) of domain \(domain.id) has \(entries) entries, its record counts \(record.refs)")
        }
        mark(page)
      })
      for (_, frame) in domain.p2mRetired { mark(frame) }
      for frame in hypervisorHolds(domain) { mark(frame) }
    }
    // Each mapping holds one reference on the frame it maps (after every p2m is walked, so a
    // frame mapped by its owner and by a grantee is not taken for one mapped twice).
    for domain in domains {
      let table = NestedPageTable(root: domain.p2mRoot)
      for mapping in GrantTables.mappings(of: domain) {
        if !mapping.unmapping, table.lookup(mapping.gfn)?.frame != mapping.frame {
          problem("grant mapping of domain \(domain.id) at gfn \(hex(mapping.gfn)) is not in its p2m")
        }
        mark(mapping.frame)
      }
    }
    // Domains that ended while others map their frames: those frames live on, every reference
    // a mapping's.
    let endedGranters = GrantTables.endedGranterIDs

    var frames = 0
    let ids = domains.map { $0.id }
    FrameTable.forEachInUse { frame, record in
      switch record.use {
      case .free:
        if record.mark != 0 { problem("frame \(hex(frame)) is free but still used") }
      case .hypervisor:
        if record.owner != FrameTable.hypervisorOwner || record.refs != 1 || record.mark != 0 {
          problem("hypervisor frame \(hex(frame)): \(owner(record)), \(record.refs) references, used by a domain \(record.mark) times")
        }
      case .p2mTable:
        frames += 1
        if !ids.contains(record.owner) { problem("p2m table \(hex(frame)) of domain \(record.owner), which no longer exists") }
        else if record.mark != 1 { problem("p2m table \(hex(frame)) of domain \(record.owner) is not in its p2m") }
      default:
        frames += 1
        if endedGranters.contains(record.owner), !ids.contains(record.owner) {
          if found(frame, record) != record.refs || record.refs == 0 {
            problem("frame \(hex(frame)) (\(use(record.use))) of ended domain \(record.owner): \(record.refs) references recorded, \(found(frame, record)) found in mappings")
          }
        } else if !ids.contains(record.owner) {
          problem("frame \(hex(frame)) (\(use(record.use))) of domain \(record.owner), which no longer exists, has \(record.refs) references")
        } else if found(frame, record) != record.refs {
          problem("frame \(hex(frame)) (\(use(record.use))) of domain \(record.owner): \(record.refs) references recorded, \(found(frame, record)) found")
        }
      }
    }
    for frame in marked { FrameTable.setMark(frame, 0) }
    return (problems, frames)
  }

  /// The frames of `domain` whose machine address the hypervisor keeps, each holding a reference.
  static func hypervisorHolds(_ domain: Domain) -> [UInt64] {
    var holds: [UInt64] = []
    if domain.sharedInfoMachine != 0 { holds.append(domain.sharedInfoMachine) }
    if domain.consoleRingFrame != 0 { holds.append(domain.consoleRingFrame) }
    if domain.xenstoreRingFrame != 0 { holds.append(domain.xenstoreRingFrame) }
    for vcpu in domain.vcpus where vcpu.vcpuInfoFrame != 0 { holds.append(vcpu.vcpuInfoFrame) }
    holds.append(contentsOf: domain.grantFrames)
    holds.append(contentsOf: domain.eventFrames)
    return holds
  }

  private static func owner(_ record: FrameRecord) -> String {
    switch record.use {
    case .free: "nobody (free)"
    case .hypervisor: record.owner == FrameTable.hypervisorOwner ? "the hypervisor" : "the hypervisor, owner \(record.owner)"
    default: "domain \(record.owner) as \(use(record.use))"
    }
  }

  private static func use(_ use: FrameUse) -> String {
    switch use {
    case .free: "free"
    case .hypervisor: "the hypervisor's"
    case .guestRAM: "RAM"
    case .p2mTable: "a p2m table"
    case .sharedInfo: "shared_info"
    case .consoleRing: "a console ring"
    case .grantTable: "a grant table"
    case .xenstoreRing: "a xenstore ring"
    }
  }
}
