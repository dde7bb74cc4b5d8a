/// A value and the spinlock that guards it, for state shared by every pcpu (a global table, an
/// allocator): the value is reached only through `withLock`, so no access can forget the lock.
///
/// A class, so that it can be a `static let` and mutated in place. For state the hot paths do
/// not touch: each use goes through the object, and its first use creates it.
///
/// `@unchecked Sendable`: the value is only read or written inside `withLock`, with the lock held.
public final class Locked<Value>: @unchecked Sendable {
  private let lock = SpinLock()
  private var value: Value

  public init(_ value: Value) { self.value = value }

  /// Runs `body` on the value with the lock held; the lock is released however `body` ends.
  @inline(__always)
  public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }
}
