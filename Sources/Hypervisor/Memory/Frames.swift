/// The machine's physical frame allocator: one BuddyAllocator behind a lock, shared by all pcpus.
///
/// Every frame the hypervisor or a domain uses comes from here, and goes back here.
public enum Frames {
  private static let buddy = Locked(BuddyAllocator(span: 0..<0))

  /// Installs the allocator over `span` with `free` ranges (already cleared of the image, boot
  /// modules and firmware areas by the caller).
  public static func setUp(span: Range<UInt64>, free: [Range<UInt64>]) {
    buddy.withLock { buddy in
      buddy = BuddyAllocator(span: span)
      for range in free { buddy.addFree(range) }
    }
  }

  /// A naturally aligned block of 2^order frames, or nil when memory is exhausted.
  /// Each of its frames is the hypervisor's in the frame table, with one reference.
  public static func allocate(order: Int = 0) -> UInt64? {
    guard let block = buddy.withLock({ $0.allocate(order: order) }) else { return nil }
    for i in 0..<(UInt64(1) << UInt64(order)) { FrameTable.allocated(block + i * 4096) }
    return block
  }

  /// A naturally aligned block of 2^order frames that are freed one by one: a domain's RAM,
  /// whose pages the guest may give back singly.
  public static func allocateFrames(order: Int) -> UInt64? {
    buddy.withLock { buddy -> UInt64? in
      guard let block = buddy.allocate(order: order) else { return nil }
      // Cannot fail: the block was handed out just now.
      try? buddy.split(block)
      return block
    }.map { block in
      for i in 0..<(UInt64(1) << UInt64(order)) { FrameTable.allocated(block + i * 4096) }
      return block
    }
  }

  public static func free(_ address: UInt64) throws(FreeError) {
    // A frame something still references is not freed: that would be a use after free.
    if let record = FrameTable.record(address), record.use != .hypervisor, record.refs != 0 {
      throw .stillReferenced
    }
    try buddy.withLock { buddy throws(FreeError) in
      let order: Int
      do throws(BuddyAllocator.FreeError) {
        order = buddy.allocatedOrder(of: address) ?? 0
        try buddy.free(address)
      } catch {
        throw .allocator(error)
      }
      for i in 0..<(UInt64(1) << UInt64(order)) { FrameTable.freed(address + i * 4096) }
    }
  }

  public enum FreeError: Error {
    case allocator(BuddyAllocator.FreeError)
    case stillReferenced
  }

  /// Frees a block the hypervisor allocated, and says so on the console if it cannot: that is a
  /// double free or a stray address, a hypervisor bug, which the end-of-run frame count would
  /// otherwise only show as a number. True if the block was freed.
  @discardableResult
  public static func release(_ address: UInt64) -> Bool {
    do throws(FreeError) {
      try free(address)
      return true
    } catch {
      let why: StaticString = switch error {
      case .allocator(.outOfRange): "outside the allocator's memory"
      case .allocator(.misaligned): "not at a frame boundary"
      case .allocator(.notAllocated): "not allocated (a double free?)"
      case .stillReferenced: "still referenced (frame table)"
      }
      Log.error("frames: cannot free \(hex(address)): \(why)")
      return false
    }
  }

  public static var freeFrames: Int { buddy.withLock { $0.freeFrames } }

  /// The order that holds `bytes` (at least one frame).
  public static func order(forBytes bytes: UInt64) -> Int {
    var order = 0
    while (BuddyAllocator.frameSize << UInt64(order)) < bytes { order += 1 }
    return order
  }
}
