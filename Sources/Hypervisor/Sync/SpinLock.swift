import Synchronization

/// A ticket spinlock: pcpus are served in the order they arrived, so none starves.
///
/// Swiftvisor's rule (docs/architecture.md, "Locks"): a spinlock is held for a short, bounded
/// section with interrupts disabled, never across VMRUN, and locks nest only in the documented order.
///
/// A noncopyable struct, not a class: a lock is a stored property of the object it guards (or a
/// global), used in place. As a class, each use retained and released the lock object, which
/// cost more than taking a free lock.
public struct SpinLock: ~Copyable, Sendable {
  private let nextTicket = Atomic<UInt32>(0)
  private let nowServing = Atomic<UInt32>(0)

  public init() {}

  /// What a waiter does between two looks at the lock: the arch layer's spin-wait hint (x86:
  /// PAUSE), set once at boot; nil on a host. A hint is also how a waiter gives way on a machine
  /// that runs its CPUs one at a time (QEMU's TCG round robin, always under -icount): without
  /// it a waiter spins out its whole turn while the holder cannot run.
  nonisolated(unsafe) public static var relax: (@convention(c) () -> Void)?

  @inline(__always) public func lock() {
    let ticket = nextTicket.wrappingAdd(1, ordering: .relaxed).oldValue
    while nowServing.load(ordering: .acquiring) != ticket { unsafe Self.relax?() }
  }

  /// Takes the lock only if it is free right now.
  public func tryLock() -> Bool {
    let serving = nowServing.load(ordering: .relaxed)
    return nextTicket.compareExchange(
      expected: serving, desired: serving &+ 1, ordering: .acquiring
    ).exchanged
  }

  @inline(__always) public func unlock() {
    nowServing.wrappingAdd(1, ordering: .releasing)
  }

  public var isLocked: Bool {
    nextTicket.load(ordering: .relaxed) != nowServing.load(ordering: .relaxed)
  }

  /// Runs `body` with the lock held; the lock is released however `body` ends (a thrown error
  /// included).
  public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    lock()
    defer { unlock() }
    return try body()
  }
}
