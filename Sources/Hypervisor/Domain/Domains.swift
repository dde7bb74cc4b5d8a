import Synchronization

/// Every domain the hypervisor knows, by id. Domain 0 is never used (Xen reserves it for the
/// control domain; Swiftvisor has none yet), so boot-time domains are numbered from 1.
public enum Domains {
  nonisolated(unsafe) private static var table: [Domain] = []
  private static let lock = SpinLock()
  nonisolated(unsafe) private static var nextID: UInt16 = 1
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

  public static func create(name: [UInt8], memoryBytes: UInt64) -> Domain {
    lock.withLock {
      let domain = Domain(id: nextID, name: name, memoryBytes: memoryBytes)
      nextID += 1
      table.append(domain)
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
    lock.withLock {
      table.removeAll { $0 === domain }
    }
    if !domain.preserved { countEnd(cleanly: cleanly) }
  }

  /// Domains that ended and were kept (`on_* = "preserve"`), still holding their memory.
  public static var preservedDomains: [Domain] { lock.withLock { table.filter { $0.preserved } } }

  public static var all: [Domain] { lock.withLock { table } }

  /// The live (not yet destroyed) domain with this id.
  public static func find(id: UInt16) -> Domain? {
    lock.withLock { table.first { $0.id == id } }
  }
}
