/// The physical frame allocator: a binary buddy system over 4 KiB frames.
///
/// A block of order `k` is 2^k frames and starts at a physical address that is a multiple of its
/// own size ("naturally aligned"), so order 9 is a 2 MiB block usable as a large page and order 18
/// a 1 GiB one. Two blocks of order `k` that together form an aligned block of order `k + 1` are
/// buddies; when both are free they are merged, so free memory is always held in the largest
/// blocks possible.
///
/// Bookkeeping lives in ordinary arrays, outside the memory being managed:
/// - one free bitmap per order: bit `i` of order `k` is set when block `i` of that order is free
///   and is not part of a larger free block. A small summary level makes "find the lowest free
///   block" skip empty stretches 4096 blocks at a time.
/// - one byte per frame: the order of the allocated block starting at that frame, or
///   `notAllocated`. `free` uses it to learn the block's size and to reject addresses it never
///   handed out.
///
/// The metadata costs about 1.3 bytes per frame of `span` (about 330 KiB per GiB), allocated on
/// the Swift heap when the allocator is created.
///
/// Not thread safe: callers hold a lock around every call.
public struct BuddyAllocator: Sendable {
  public static let frameSize: UInt64 = 4096
  public static let maxOrder = 18

  public enum FreeError: Error, Equatable, Sendable {
    /// The address is outside the managed span.
    case outOfRange
    /// The address is not at a 4 KiB frame boundary.
    case misaligned
    /// No allocated block starts at this address (double free or a foreign address).
    case notAllocated
  }

  /// The managed physical addresses (the `span` passed to `init`, shrunk inward to frames).
  public let span: Range<UInt64>

  /// Number of frames currently free.
  public private(set) var freeFrames: Int = 0

  /// First managed frame number (physical address / frameSize) and one past the last.
  private let firstFrame: UInt64
  private let endFrame: UInt64
  /// `freeBlockMaps[k]`: which blocks of order k are free (indexed by `blockIndex`).
  private var freeBlockMaps: [BlockBitmap]
  /// Per frame: order of the allocated block that starts there, or `notAllocated`.
  private var allocatedOrders: [UInt8]
  /// Number of blocks handed out and not yet freed.
  private var liveBlocks = 0

  private static let notAllocated: UInt8 = 0xFF

  /// Manages the physical addresses in `span`, which should be 4 KiB aligned (a ragged edge is
  /// shrunk inward). Initially nothing is free: memory becomes available through `addFree`.
  public init(span: Range<UInt64>) {
    let size = Self.frameSize
    let first = span.lowerBound / size + (span.lowerBound % size == 0 ? 0 : 1)
    let end = max(first, span.upperBound / size)
    self.firstFrame = first
    self.endFrame = end
    self.span = (first * size)..<(end * size)
    self.allocatedOrders = [UInt8](repeating: Self.notAllocated, count: Int(end - first))

    var maps: [BlockBitmap] = []
    maps.reserveCapacity(Self.maxOrder + 1)
    for order in 0...Self.maxOrder {
      let blocks = end == first ? 0 : Int(((end - 1) >> UInt64(order)) - (first >> UInt64(order)) + 1)
      maps.append(BlockBitmap(bitCount: blocks))
    }
    self.freeBlockMaps = maps
  }

  // MARK: - Public operations

  /// Makes the frames wholly inside `range` (and inside the span) free, as maximal naturally
  /// aligned blocks. Frames that are already free or currently allocated are left as they are:
  /// adding the same memory twice is harmless and never creates duplicate blocks.
  public mutating func addFree(_ range: Range<UInt64>) {
    guard let frames = framesInside(range) else { return }
    var frame = frames.lowerBound
    while frame < frames.upperBound {
      let order = Self.largestOrder(at: frame, limit: frames.upperBound - frame)
      addFreeBlockIfUntracked(frame, order: order)
      frame += Self.frames(inOrder: order)
    }
  }

  /// Allocates a naturally aligned block of 2^order frames and returns its physical address.
  /// Takes the lowest free block of the smallest order that fits, splitting larger blocks as
  /// needed. Returns nil when no block is large enough or `order` is not in 0...maxOrder.
  public mutating func allocate(order: Int) -> UInt64? {
    guard order >= 0 && order <= Self.maxOrder else { return nil }
    var found = order
    while found <= Self.maxOrder && freeBlockMaps[found].count == 0 {
      found += 1
    }
    guard found <= Self.maxOrder, let index = freeBlockMaps[found].lowestSet() else { return nil }

    freeBlockMaps[found].remove(index)
    let frame = self.frame(ofBlock: index, order: found)
    // Split down to the requested size, keeping the low half and freeing each high half.
    while found > order {
      found -= 1
      freeBlockMaps[found].insert(blockIndex(frame + Self.frames(inOrder: found), order: found))
    }
    allocatedOrders[slot(frame)] = UInt8(order)
    liveBlocks += 1
    freeFrames -= Int(Self.frames(inOrder: order))
    return frame * Self.frameSize
  }

  /// Frees a block returned by `allocate`; its size is remembered. The block merges with its free
  /// buddies. Freeing an address that is not the start of a live block throws and changes nothing.
  public mutating func free(_ address: UInt64) throws(FreeError) {
    let (frame, order) = try liveBlock(at: address)
    allocatedOrders[slot(frame)] = Self.notAllocated
    liveBlocks -= 1
    freeFrames += Int(Self.frames(inOrder: order))
    insertFreeBlock(frame, order: order)
  }

  /// Turns the live block at `address` into 2^order live blocks of one frame each, so each can
  /// be freed on its own (a domain's 2 MiB block of RAM whose pages it gives back one by one).
  /// The frames merge again as they are freed. Throws, changing nothing, if no block starts there.
  public mutating func split(_ address: UInt64) throws(FreeError) {
    let (frame, order) = try liveBlock(at: address)
    let count = Self.frames(inOrder: order)
    for i in 0..<count { allocatedOrders[slot(frame + i)] = 0 }
    liveBlocks += Int(count) - 1
  }

  /// The frame number and order of the live block starting at `address`, or why there is none.
  private func liveBlock(at address: UInt64) throws(FreeError) -> (frame: UInt64, order: Int) {
    guard span.contains(address) else { throw .outOfRange }
    guard address % Self.frameSize == 0 else { throw .misaligned }
    let frame = address / Self.frameSize
    let order = allocatedOrders[slot(frame)]
    guard order != Self.notAllocated else { throw .notAllocated }
    return (frame, Int(order))
  }

  /// Withdraws every free frame that touches `range` from the free pool (the range is widened to
  /// whole frames: a frame that is partly reserved cannot be handed out). Used for boot modules
  /// and reserved ranges found after `addFree`. Allocated blocks are not affected. Returns the
  /// number of frames withdrawn.
  public mutating func reserve(_ range: Range<UInt64>) -> Int {
    guard let frames = framesTouching(range) else { return 0 }
    var withdrawn = 0
    // Largest orders first, so each free block overlapping the range is found exactly once; the
    // pieces put back lie outside the range and are not found again at lower orders.
    for order in stride(from: Self.maxOrder, through: 0, by: -1) {
      let last = blockIndex(frames.upperBound - 1, order: order)
      var next = blockIndex(frames.lowerBound, order: order)
      while let index = freeBlockMaps[order].nextSet(atOrAfter: next), index <= last {
        freeBlockMaps[order].remove(index)
        let blockStart = frame(ofBlock: index, order: order)
        let blockEnd = blockStart + Self.frames(inOrder: order)
        freeFrames -= Int(Self.frames(inOrder: order))

        let cutStart = max(blockStart, frames.lowerBound)
        let cutEnd = min(blockEnd, frames.upperBound)
        withdrawn += Int(cutEnd - cutStart)
        insertFreeFrames(blockStart..<cutStart)
        insertFreeFrames(cutEnd..<blockEnd)
        next = index + 1
      }
    }
    return withdrawn
  }

  /// Number of free blocks of exactly this order (not counting larger blocks it could be split from).
  public func freeBlocks(order: Int) -> Int {
    guard order >= 0 && order <= Self.maxOrder else { return 0 }
    return freeBlockMaps[order].count
  }

  /// The order of the live block starting at `address`, or nil if no allocated block starts there.
  public func allocatedOrder(of address: UInt64) -> Int? {
    guard span.contains(address), address % Self.frameSize == 0 else { return nil }
    let order = allocatedOrders[slot(address / Self.frameSize)]
    return order == Self.notAllocated ? nil : Int(order)
  }

  // MARK: - Free blocks

  /// Marks one aligned block free, merging it with its buddy for as long as the buddy is free.
  /// The block must not overlap any free or allocated block. Does not touch `freeFrames`.
  private mutating func insertFreeBlock(_ frame: UInt64, order: Int) {
    var frame = frame
    var order = order
    while order < Self.maxOrder {
      let buddy = frame ^ Self.frames(inOrder: order)
      guard let buddyIndex = existingBlockIndex(buddy, order: order),
        freeBlockMaps[order].contains(buddyIndex)
      else { break }
      freeBlockMaps[order].remove(buddyIndex)
      frame = min(frame, buddy)
      order += 1
    }
    freeBlockMaps[order].insert(blockIndex(frame, order: order))
  }

  /// Frees a run of frames known to be untracked, as maximal aligned blocks, and counts them.
  private mutating func insertFreeFrames(_ frames: Range<UInt64>) {
    var frame = frames.lowerBound
    while frame < frames.upperBound {
      let order = Self.largestOrder(at: frame, limit: frames.upperBound - frame)
      insertFreeBlock(frame, order: order)
      freeFrames += Int(Self.frames(inOrder: order))
      frame += Self.frames(inOrder: order)
    }
  }

  /// `addFree` for one aligned block: frees the parts of it that are neither free nor allocated.
  /// When the block is partly in use it is split in halves and each half is handled on its own;
  /// the recursion is at most `maxOrder` deep.
  private mutating func addFreeBlockIfUntracked(_ frame: UInt64, order: Int) {
    if isInsideFreeBlock(frame, order: order) || isInsideAllocatedBlock(frame, order: order) {
      return
    }
    if order > 0 && (hasFreeBlockInside(frame, order: order) || hasAllocatedBlockInside(frame, order: order)) {
      let half = order - 1
      addFreeBlockIfUntracked(frame, order: half)
      addFreeBlockIfUntracked(frame + Self.frames(inOrder: half), order: half)
      return
    }
    insertFreeBlock(frame, order: order)
    freeFrames += Int(Self.frames(inOrder: order))
  }

  /// Whether the block, or a block of a higher order containing it, is free.
  private func isInsideFreeBlock(_ frame: UInt64, order: Int) -> Bool {
    for candidate in order...Self.maxOrder {
      let start = Self.alignDown(frame, order: candidate)
      if let index = existingBlockIndex(start, order: candidate), freeBlockMaps[candidate].contains(index) {
        return true
      }
    }
    return false
  }

  /// Whether the block lies inside (or is) a live allocated block.
  private func isInsideAllocatedBlock(_ frame: UInt64, order: Int) -> Bool {
    guard liveBlocks > 0 else { return false }
    for candidate in order...Self.maxOrder {
      let start = Self.alignDown(frame, order: candidate)
      if start >= firstFrame && allocatedOrders[slot(start)] == UInt8(candidate) {
        return true
      }
    }
    return false
  }

  /// Whether any smaller free block lies inside the block.
  private func hasFreeBlockInside(_ frame: UInt64, order: Int) -> Bool {
    for smaller in 0..<order {
      let first = blockIndex(frame, order: smaller)
      let count = 1 << (order - smaller)
      if freeBlockMaps[smaller].hasSetBit(in: first..<(first + count)) {
        return true
      }
    }
    return false
  }

  /// Whether any live allocated block starts inside the block.
  private func hasAllocatedBlockInside(_ frame: UInt64, order: Int) -> Bool {
    guard liveBlocks > 0 else { return false }
    let first = slot(frame)
    for i in first..<(first + Int(Self.frames(inOrder: order))) where allocatedOrders[i] != Self.notAllocated {
      return true
    }
    return false
  }

  // MARK: - Frame and block arithmetic

  private static func frames(inOrder order: Int) -> UInt64 {
    1 << UInt64(order)
  }

  private static func alignDown(_ frame: UInt64, order: Int) -> UInt64 {
    frame & ~(frames(inOrder: order) - 1)
  }

  /// The largest order of an aligned block that starts at `frame` and has at most `limit` frames.
  private static func largestOrder(at frame: UInt64, limit: UInt64) -> Int {
    let alignment = frame == 0 ? maxOrder : min(maxOrder, frame.trailingZeroBitCount)
    let fits = (UInt64.bitWidth - 1) - limit.leadingZeroBitCount  // floor(log2(limit))
    return min(alignment, fits)
  }

  /// Index of `frame` in `allocatedOrders`.
  private func slot(_ frame: UInt64) -> Int {
    Int(frame - firstFrame)
  }

  /// Index in the order's bitmap of the aligned block starting at `frame` (which is in the span).
  private func blockIndex(_ frame: UInt64, order: Int) -> Int {
    Int((frame >> UInt64(order)) - (firstFrame >> UInt64(order)))
  }

  /// Like `blockIndex`, but nil when the block is not wholly inside the span (such a block can
  /// never be free, since only frames inside the span are ever added).
  private func existingBlockIndex(_ frame: UInt64, order: Int) -> Int? {
    guard frame >= firstFrame, frame < endFrame, endFrame - frame >= Self.frames(inOrder: order) else { return nil }
    return blockIndex(frame, order: order)
  }

  private func frame(ofBlock index: Int, order: Int) -> UInt64 {
    ((firstFrame >> UInt64(order)) + UInt64(index)) << UInt64(order)
  }

  /// Frame numbers of the whole frames inside `range`, clipped to the span; nil if none.
  private func framesInside(_ range: Range<UInt64>) -> Range<UInt64>? {
    let size = Self.frameSize
    let low = max(range.lowerBound / size + (range.lowerBound % size == 0 ? 0 : 1), firstFrame)
    let high = min(range.upperBound / size, endFrame)
    return low < high ? low..<high : nil
  }

  /// Frame numbers of every frame that `range` touches, clipped to the span; nil if none.
  private func framesTouching(_ range: Range<UInt64>) -> Range<UInt64>? {
    guard !range.isEmpty else { return nil }
    let size = Self.frameSize
    let low = max(range.lowerBound / size, firstFrame)
    let high = min((range.upperBound - 1) / size + 1, endFrame)
    return low < high ? low..<high : nil
  }
}

/// A set of small integers as a bitmap, with a summary level (one bit per non-zero word) so that
/// finding the next set bit skips 4096 clear bits per summary word read.
private struct BlockBitmap: Sendable {
  private var words: [UInt64]
  private var summary: [UInt64]
  /// Every summary word below this index is zero. Lets `lowestSet` resume where it last found
  /// something instead of rescanning an exhausted low region.
  private var searchHint = 0
  let bitCount: Int
  /// Number of set bits.
  private(set) var count = 0

  init(bitCount: Int) {
    self.bitCount = bitCount
    let wordCount = (bitCount + 63) / 64
    words = [UInt64](repeating: 0, count: wordCount)
    summary = [UInt64](repeating: 0, count: (wordCount + 63) / 64)
  }

  func contains(_ bit: Int) -> Bool {
    words[bit >> 6] & (1 << UInt64(bit & 63)) != 0
  }

  mutating func insert(_ bit: Int) {
    let word = bit >> 6
    let mask: UInt64 = 1 << UInt64(bit & 63)
    precondition(words[word] & mask == 0, "BlockBitmap: bit already set")
    words[word] |= mask
    summary[word >> 6] |= 1 << UInt64(word & 63)
    searchHint = min(searchHint, word >> 6)
    count += 1
  }

  mutating func remove(_ bit: Int) {
    let word = bit >> 6
    let mask: UInt64 = 1 << UInt64(bit & 63)
    precondition(words[word] & mask != 0, "BlockBitmap: bit not set")
    words[word] &= ~mask
    if words[word] == 0 {
      summary[word >> 6] &= ~(1 << UInt64(word & 63))
    }
    count -= 1
  }

  /// The lowest set bit, or nil when empty.
  mutating func lowestSet() -> Int? {
    guard count > 0 else { return nil }
    while searchHint < summary.count && summary[searchHint] == 0 {
      searchHint += 1
    }
    return nextSet(atOrAfter: searchHint << 12)
  }

  /// The lowest set bit at or after `start`, or nil.
  func nextSet(atOrAfter start: Int) -> Int? {
    guard start < bitCount else { return nil }
    var word = start >> 6
    let bits = words[word] & (~0 << UInt64(start & 63))
    if bits != 0 { return (word << 6) + bits.trailingZeroBitCount }

    // Find the next non-zero word through the summary.
    word += 1
    guard word < words.count else { return nil }
    var group = word >> 6
    var groupBits = summary[group] & (~0 << UInt64(word & 63))
    while groupBits == 0 {
      group += 1
      guard group < summary.count else { return nil }
      groupBits = summary[group]
    }
    word = (group << 6) + groupBits.trailingZeroBitCount
    return (word << 6) + words[word].trailingZeroBitCount
  }

  /// Whether any bit in `range` is set.
  func hasSetBit(in range: Range<Int>) -> Bool {
    guard let next = nextSet(atOrAfter: range.lowerBound) else { return false }
    return next < range.upperBound
  }
}
