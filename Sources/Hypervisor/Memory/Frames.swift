/// The machine's physical frame allocator: one BuddyAllocator behind a lock, shared by all pcpus.
///
/// Every frame the hypervisor or a domain uses comes from here, and goes back here.
public enum Frames {
  nonisolated(unsafe) private static var buddy = BuddyAllocator(span: 0..<0)
  private static let lock = SpinLock()

  /// Installs the allocator over `span` with `free` ranges (already cleared of the image, boot
  /// modules and firmware areas by the caller).
  public static func setUp(span: Range<UInt64>, free: [Range<UInt64>]) {
    lock.withLock {
      buddy = BuddyAllocator(span: span)
      for range in free { buddy.addFree(range) }
    }
  }

  /// A naturally aligned block of 2^order frames, or nil when memory is exhausted.
  public static func allocate(order: Int = 0) -> UInt64? {
    lock.withLock { buddy.allocate(order: order) }
  }

  public static func free(_ address: UInt64) throws(BuddyAllocator.FreeError) {
    lock.lock()
    defer { lock.unlock() }
    try buddy.free(address)
  }

  /// Frees a block the hypervisor allocated, and says so on the console if it cannot: that is a
  /// double free or a stray address, a hypervisor bug, which the end-of-run frame count would
  /// otherwise only show as a number. True if the block was freed.
  @discardableResult
  public static func release(_ address: UInt64) -> Bool {
    do throws(BuddyAllocator.FreeError) {
      try free(address)
      return true
    } catch {
      let why: StaticString = switch error {
      case .outOfRange: "outside the allocator's memory"
      case .misaligned: "not at a frame boundary"
      case .notAllocated: "not allocated (a double free?)"
      }
      Log.error("frames: cannot free \(hex(address)): \(why)")
      return false
    }
  }

  public static var freeFrames: Int { lock.withLock { buddy.freeFrames } }

  /// The order that holds `bytes` (at least one frame).
  public static func order(forBytes bytes: UInt64) -> Int {
    var order = 0
    while (BuddyAllocator.frameSize << UInt64(order)) < bytes { order += 1 }
    return order
  }
}
