/// The hypervisor's general-purpose heap: it backs `posix_memalign` and `free` in the image, so
/// every Swift class instance and array buffer comes from here.
///
/// Part of the **unsafe layer**: it carves raw memory it is given and trusts the caller to give
/// it memory nobody else uses. All of its pointer arithmetic stays in this file. Because it *is*
/// the allocator, it never allocates Swift heap memory itself (no arrays, classes or strings):
/// all of its bookkeeping lives inside the managed memory.
///
/// Design: an explicit free list with boundary tags (Knuth, as in dlmalloc).
///
///     block:  [ header: size|flags , tag ][ payload ............................ ]
///     free:   [ header: size|flags , tag ][ next free | previous free | ... | size ]
///
/// - Every block starts with a 16-byte header, so payloads are 16-byte aligned like the blocks.
///   The size is a multiple of 16 and includes the header; its low bits hold two flags: this block
///   is in use, and the block before it is in use.
/// - The tag is a magic number mixed with the header's address. `free` checks it, which catches
///   most foreign pointers, double frees and header overwrites.
/// - A free block keeps its free-list links in its payload and a copy of its size in its last
///   8 bytes (the footer), so the block after it can find its start and merge with it. Free
///   blocks are never adjacent: `free` merges a block with both neighbours at once.
/// - Each region ends with a 16-byte in-use "end" header of size 0, so no block ever merges past
///   the end of its region; the first block of a region claims its predecessor is in use.
/// - Allocation is first fit over the free list. An alignment above 16 is met by splitting off a
///   free fragment in front of the block.
///
/// Not thread safe: callers hold a lock around every call.
public struct Heap {
  /// Bytes in allocated blocks, counting their headers and rounding.
  public private(set) var bytesInUse: Int = 0
  /// Bytes in free blocks, counting their headers. The largest single allocation possible is at
  /// most `largestAllocation`, which may be far less when memory is fragmented.
  public private(set) var bytesFree: Int = 0
  /// Bytes given to `addRegion` and accepted (after trimming to 16-byte alignment).
  public private(set) var bytesManaged: Int = 0

  /// Address of the first free block's header, or 0 when no block is free.
  private var freeListHead: UInt = 0

  public init() {}

  /// The smallest region `addRegion` accepts: an end header plus one minimal block (after the
  /// region's edges are trimmed to 16-byte alignment). Smaller regions are ignored.
  public static let minimumRegionSize = Layout.minimumBlockSize + Layout.headerSize

  /// Adds memory to the heap. May be called any number of times with disjoint regions; the
  /// memory must stay reserved for the heap for good.
  public mutating func addRegion(start: UnsafeMutableRawPointer, size: Int) {
    guard size > 0 else { return }
    let rawStart = UInt(bitPattern: start)
    let (rawEnd, overflow) = rawStart.addingReportingOverflow(UInt(size))
    guard !overflow, let first = Layout.alignUp(rawStart, Layout.granule) else { return }
    let end = Layout.alignDown(rawEnd, Layout.granule)
    guard end > first, Int(end - first) >= Self.minimumRegionSize else { return }

    let blockSize = Int(end - first) - Layout.headerSize
    let block = BlockHeader(address: first)
    block.setFree(size: blockSize, previousInUse: true)
    let endMarker = BlockHeader(address: first + UInt(blockSize))
    endMarker.setEndMarker()

    pushFree(block)
    bytesFree += blockSize
    bytesManaged += Int(end - first)
  }

  /// Allocates `size` bytes aligned to `alignment` (a power of two; values below 16 mean 16).
  /// Returns nil when no free block fits or the arguments are invalid. `size` 0 returns a unique
  /// minimal block.
  public mutating func allocate(size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
    guard size >= 0, size <= Int.max / 2, alignment > 0, alignment & (alignment - 1) == 0 else { return nil }
    let alignment = UInt(max(alignment, Layout.granule))
    let needed = max(Layout.minimumBlockSize, Layout.roundUp(size + Layout.headerSize))

    var candidate = freeListHead
    while candidate != 0 {
      let block = BlockHeader(address: candidate)
      if let payload = placement(in: block, needed: needed, alignment: alignment) {
        return unsafe UnsafeMutableRawPointer(bitPattern: carve(block, payload: payload, needed: needed))
      }
      candidate = block.nextFree
    }
    return nil
  }

  /// Returns memory obtained from `allocate`. Traps when the pointer is not the start of a live
  /// allocation and that is detectable (bad header tag or flags: a foreign pointer, a double
  /// free, or a header overwritten by a buffer overrun).
  public mutating func free(_ pointer: UnsafeMutableRawPointer) {
    let payload = UInt(bitPattern: pointer)
    precondition(
      payload % UInt(Layout.granule) == 0 && payload >= UInt(Layout.headerSize), "Heap.free: pointer was not allocated here")
    var block = BlockHeader(address: payload - UInt(Layout.headerSize))
    precondition(block.isLiveAllocation, "Heap.free: pointer is not a live allocation")

    var size = block.size
    let previousInUse = block.isPreviousInUse
    bytesInUse -= size

    // Merge with the block after, then with the block before.
    let following = BlockHeader(address: block.address + UInt(size))
    if !following.isInUse {
      precondition(following.isFreeBlock, "Heap.free: heap corrupted after the block")
      unlinkFree(following)
      bytesFree -= following.size
      size += following.size
      following.clearTag()
    }
    var mergedPreviousInUse = previousInUse
    if !previousInUse {
      let preceding = BlockHeader(address: block.address - UInt(block.sizeOfPrecedingFreeBlock))
      precondition(preceding.isFreeBlock, "Heap.free: heap corrupted before the block")
      unlinkFree(preceding)
      bytesFree -= preceding.size
      size += preceding.size
      mergedPreviousInUse = preceding.isPreviousInUse
      block.clearTag()
      block = preceding
    }

    block.setFree(size: size, previousInUse: mergedPreviousInUse)
    BlockHeader(address: block.address + UInt(size)).isPreviousInUse = false
    pushFree(block)
    bytesFree += size
  }

  /// The largest `size` that `allocate(size:alignment: 16)` would currently satisfy (0 if none).
  /// Walks the whole free list: for diagnostics and tests, not for hot paths.
  public var largestAllocation: Int {
    var largest = 0
    var candidate = freeListHead
    while candidate != 0 {
      let block = BlockHeader(address: candidate)
      largest = max(largest, block.size - Layout.headerSize)
      candidate = block.nextFree
    }
    return largest
  }

  // MARK: - Placement

  /// Where the payload of a `needed`-byte block aligned to `alignment` would go inside the free
  /// `block`, or nil if it does not fit. A gap in front of the payload's header must be large
  /// enough to stand alone as a free block.
  private func placement(in block: BlockHeader, needed: Int, alignment: UInt) -> UInt? {
    let header = UInt(Layout.headerSize)
    guard var payload = Layout.alignUp(block.address + header, alignment) else { return nil }
    while payload - header != block.address && Int(payload - header - block.address) < Layout.minimumBlockSize {
      let (next, overflow) = payload.addingReportingOverflow(alignment)
      if overflow { return nil }
      payload = next
    }
    let lead = payload - header - block.address
    guard lead <= UInt(block.size), UInt(block.size) - lead >= UInt(needed) else { return nil }
    return payload
  }

  /// Turns the part of the free `block` at `payload` into an allocated block of at least
  /// `needed` bytes. The free space in front of it and a large enough remainder behind it stay
  /// free. Returns the payload address.
  private mutating func carve(_ block: BlockHeader, payload: UInt, needed: Int) -> UInt {
    let used = BlockHeader(address: payload - UInt(Layout.headerSize))
    let lead = Int(used.address - block.address)
    var available = block.size
    let usedPreviousInUse: Bool
    if lead > 0 {
      // The front fragment keeps the block's place in the free list.
      available -= lead
      block.setFree(size: lead, previousInUse: block.isPreviousInUse)
      usedPreviousInUse = false
    } else {
      unlinkFree(block)
      usedPreviousInUse = block.isPreviousInUse
    }
    bytesFree -= available

    var usedSize = available
    if available - needed >= Layout.minimumBlockSize {
      let tail = BlockHeader(address: used.address + UInt(needed))
      tail.setFree(size: available - needed, previousInUse: true)
      pushFree(tail)
      bytesFree += tail.size
      usedSize = needed
    } else {
      BlockHeader(address: used.address + UInt(available)).isPreviousInUse = true
    }

    used.setAllocated(size: usedSize, previousInUse: usedPreviousInUse)
    bytesInUse += usedSize
    return payload
  }

  // MARK: - Free list (doubly linked, LIFO)

  private mutating func pushFree(_ block: BlockHeader) {
    block.previousFree = 0
    block.nextFree = freeListHead
    if freeListHead != 0 {
      BlockHeader(address: freeListHead).previousFree = block.address
    }
    freeListHead = block.address
  }

  private mutating func unlinkFree(_ block: BlockHeader) {
    let next = block.nextFree
    let previous = block.previousFree
    if previous == 0 {
      freeListHead = next
    } else {
      BlockHeader(address: previous).nextFree = next
    }
    if next != 0 {
      BlockHeader(address: next).previousFree = previous
    }
  }
}

/// Sizes and rounding for the heap's block layout.
private enum Layout {
  /// Alignment of blocks and payloads, and the unit of block sizes.
  static let granule = 16
  static let headerSize = 16
  /// Header, two free-list links and the footer, rounded to the granule.
  static let minimumBlockSize = 48

  static func roundUp(_ size: Int) -> Int {
    (size + granule - 1) & ~(granule - 1)
  }

  static func alignUp(_ address: UInt, _ alignment: UInt) -> UInt? {
    let (sum, overflow) = address.addingReportingOverflow(alignment - 1)
    return overflow ? nil : sum & ~(alignment - 1)
  }

  static func alignDown(_ address: UInt, _ alignment: Int) -> UInt {
    address & ~(UInt(alignment) - 1)
  }

  static func alignUp(_ address: UInt, _ alignment: Int) -> UInt? {
    alignUp(address, UInt(alignment))
  }
}

/// A view of one block's header (and, for a free block, its links and footer) in heap memory.
/// Every load and store the heap does goes through here.
private struct BlockHeader {
  let address: UInt

  private static let inUseFlag = 1
  private static let previousInUseFlag = 2
  private static let flagMask = 15

  private static let allocatedMagic: UInt64 = 0x5357_5648_4845_4150  // "SWVHHEAP"
  private static let freeMagic: UInt64 = 0x5357_5648_4652_4545  // "SWVHFREE"
  private static let endMagic: UInt64 = 0x5357_5648_454E_4421  // "SWVHEND!"

  // Offsets from the header.
  private static let sizeOffset = 0
  private static let tagOffset = 8
  private static let nextFreeOffset = 16
  private static let previousFreeOffset = 24

  private func load<T>(_ offset: Int, as type: T.Type) -> T {
    unsafe UnsafeRawPointer(bitPattern: address)!.load(fromByteOffset: offset, as: T.self)
  }

  private func store<T>(_ value: T, at offset: Int) {
    unsafe UnsafeMutableRawPointer(bitPattern: address)!.storeBytes(of: value, toByteOffset: offset, as: T.self)
  }

  private var sizeAndFlags: Int {
    get { load(Self.sizeOffset, as: Int.self) }
    nonmutating set { store(newValue, at: Self.sizeOffset) }
  }

  private var tag: UInt64 {
    get { load(Self.tagOffset, as: UInt64.self) }
    nonmutating set { store(newValue, at: Self.tagOffset) }
  }

  /// The magic mixed with the address, so a header copied elsewhere does not validate.
  private func expectedTag(_ magic: UInt64) -> UInt64 {
    magic ^ UInt64(address)
  }

  var size: Int { sizeAndFlags & ~Self.flagMask }
  var isInUse: Bool { sizeAndFlags & Self.inUseFlag != 0 }

  var isPreviousInUse: Bool {
    get { sizeAndFlags & Self.previousInUseFlag != 0 }
    nonmutating set {
      sizeAndFlags = newValue ? sizeAndFlags | Self.previousInUseFlag : sizeAndFlags & ~Self.previousInUseFlag
    }
  }

  var isLiveAllocation: Bool { isInUse && tag == expectedTag(Self.allocatedMagic) && size >= Layout.minimumBlockSize }
  var isFreeBlock: Bool { !isInUse && tag == expectedTag(Self.freeMagic) && size >= Layout.minimumBlockSize }

  /// The size stored in the footer of the free block that ends right before this header. Only
  /// meaningful when `isPreviousInUse` is false.
  var sizeOfPrecedingFreeBlock: Int {
    load(-8, as: Int.self)
  }

  var nextFree: UInt {
    get { load(Self.nextFreeOffset, as: UInt.self) }
    nonmutating set { store(newValue, at: Self.nextFreeOffset) }
  }

  var previousFree: UInt {
    get { load(Self.previousFreeOffset, as: UInt.self) }
    nonmutating set { store(newValue, at: Self.previousFreeOffset) }
  }

  func setFree(size: Int, previousInUse: Bool) {
    sizeAndFlags = size | (previousInUse ? Self.previousInUseFlag : 0)
    tag = expectedTag(Self.freeMagic)
    store(size, at: size - 8)  // footer
  }

  func setAllocated(size: Int, previousInUse: Bool) {
    sizeAndFlags = size | Self.inUseFlag | (previousInUse ? Self.previousInUseFlag : 0)
    tag = expectedTag(Self.allocatedMagic)
  }

  /// Marks the end of a region: a zero-sized block that is always in use.
  func setEndMarker() {
    sizeAndFlags = Self.inUseFlag
    tag = expectedTag(Self.endMagic)
  }

  /// Forgets a header that has been merged into a neighbour, so a stale pointer to it fails the
  /// tag check.
  func clearTag() {
    tag = 0
  }
}
