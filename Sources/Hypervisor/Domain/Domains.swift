import Synchronization

/// Every domain the hypervisor knows, by id. Domain 0 is never used (Xen reserves it for the
/// control domain; Swiftvisor has none yet), so boot-time domains are numbered from 1.
public enum Domains {
  /// The domains, the id given last and the held ids, under one lock.
  private static let registry = Locked(Registry())

  private struct Registry {
    var table: [Domain] = []
    /// The id given last (0: none yet).
    var lastID: UInt16 = 0
    /// Ids of destroyed domains whose frames other domains still map (`GrantTables`): not given
    /// to a new domain until the last of those mappings goes, so an id names one domain at a time.
    var heldIDs: [UInt16] = []
  }
  /// Domains created and not yet destroyed.
  public static let live = Atomic<Int>(0)
  /// Domains whose end was anything but a clean poweroff.
  public static let failed = Atomic<Int>(0)
  /// Bundle entries that could not be built at all.
  public static let unbuilt = Atomic<Int>(0)
  /// Domains that were started (built and their vcpu 0 made runnable), restarts included.
  public static let created = Atomic<Int>(0)
  /// Domains built again after they ended (`on_* = "restart"`).
  public static let restarted = Atomic<Int>(0)
  /// Set once the boot-time domains have all been started: from then on, no live domain left
  /// means the work is done.
  public static let bootComplete = Atomic<Bool>(false)

  /// Ids a domain may have: 1 up to Xen's first reserved id (DOMID_FIRST_RESERVED, 0x7FF0);
  /// 0 is the control domain's in Xen, and 0x7FF0 and up (DOMID_SELF, DOMID_IO, DOMID_XEN, ...)
  /// name no domain.
  public static let ids: ClosedRange<UInt16> = 1...0x7FEF

  /// The id after `previous` in `ids` that `inUse` does not hold, going round; nil when every
  /// id is taken. Ids rotate rather than being reused at once, as in Xen, so a guest that
  /// reboots in a loop walks through them instead of overflowing a counter.
  public static func nextFreeID(after previous: UInt16, inUse: (UInt16) -> Bool) -> UInt16? {
    var candidate = previous
    for _ in 0..<ids.count {
      candidate = candidate >= ids.upperBound || candidate < ids.lowerBound ? ids.lowerBound : candidate &+ 1
      if !inUse(candidate) { return candidate }
    }
    return nil
  }

  /// A new domain with the next free id, or nil when every id is taken by a domain that has
  /// not been destroyed yet.
  public static func create(name: [UInt8], memoryBytes: UInt64) -> Domain? {
    registry.withLock { registry in
      guard let id = nextFreeID(after: registry.lastID, inUse: { id in registry.table.contains { $0.id == id } || registry.heldIDs.contains(id) }) else { return nil }
      registry.lastID = id
      let domain = Domain(id: id, name: name, memoryBytes: memoryBytes)
      registry.table.append(domain)
      live.wrappingAdd(1, ordering: .relaxed)
      return domain
    }
  }

  /// Counts the end of a domain: it no longer keeps the hypervisor running, and an unclean end
  /// is a failure. Once per domain: when it is destroyed, or when it is preserved.
  public static func countEnd(cleanly: Bool) {
    if !cleanly { failed.wrappingAdd(1, ordering: .relaxed) }
    live.wrappingSubtract(1, ordering: .releasing)
  }

  /// Forgets a destroyed domain, and counts its end unless that was done when it was preserved.
  public static func remove(_ domain: Domain, cleanly: Bool) {
    registry.withLock { registry in
      registry.table.removeAll { $0 === domain }
    }
    if !domain.preserved { countEnd(cleanly: cleanly) }
  }

  /// Keeps a destroyed domain's id from new domains while other domains still map its frames.
  public static func holdID(_ id: UInt16) { registry.withLock { $0.heldIDs.append(id) } }
  public static func releaseID(_ id: UInt16) { registry.withLock { $0.heldIDs.removeAll { $0 == id } } }
  public static func isHeld(_ id: UInt16) -> Bool { registry.withLock { $0.heldIDs.contains(id) } }

  /// Domains that ended and were kept (`on_* = "preserve"`), still holding their memory.
  public static var preservedDomains: [Domain] { registry.withLock { $0.table.filter { $0.preserved } } }

  public static var all: [Domain] { registry.withLock { $0.table } }

  /// The live (not yet destroyed) domain with this id.
  public static func find(id: UInt16) -> Domain? {
    registry.withLock { $0.table.first { $0.id == id } }
  }
}
