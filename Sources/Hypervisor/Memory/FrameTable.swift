import Synchronization
import XenABI

/// What a machine frame is used as. Guest-visible pages keep the use they were made for for as
/// long as the frame lives, wherever (and whether) the guest maps them.
public enum FrameUse: UInt8, Sendable, CaseIterable {
  case free = 0
  /// The hypervisor's own: VMCBs, stacks, tables, the heap's pages.
  case hypervisor
  /// A domain's RAM.
  case guestRAM
  /// A page of a domain's nested page table (its p2m). Its count is the number of present
  /// entries in it: a table with none left is taken out of the tree and freed.
  case p2mTable
  /// The pages the hypervisor makes for a domain and the guest places in its physical space.
  case sharedInfo
  case consoleRing
  /// For grant tables and xenstore, when they come.
  case grantTable
  case xenstoreRing
}

/// One frame's record: who owns it, what it is, and how many references keep it alive.
public struct FrameRecord: Equatable, Sendable {
  /// A domain id, `XenABI.DomainID.xen` for the hypervisor, meaningless when free.
  public var owner: UInt16
  public var use: FrameUse
  /// References: one for each p2m entry that maps it and one for each place the hypervisor
  /// keeps its machine address (shared_info, a vcpu_info, the console ring). The frame goes
  /// back to the allocator when the count falls to zero (`FrameTable.put`).
  public var refs: UInt32
  /// Scratch for the isolation check (`IsolationCheck`), zero otherwise.
  var mark: UInt8

  init(word: UInt64) {
    refs = UInt32(truncatingIfNeeded: word)
    owner = UInt16(truncatingIfNeeded: word >> 32)
    use = FrameUse(rawValue: UInt8(truncatingIfNeeded: word >> 48)) ?? .free
    mark = UInt8(truncatingIfNeeded: word >> 56)
  }

  public init(owner: UInt16, use: FrameUse, refs: UInt32) {
    self.owner = owner
    self.use = use
    self.refs = refs
    mark = 0
  }

  var word: UInt64 {
    UInt64(refs) | UInt64(owner) << 32 | UInt64(use.rawValue) << 48 | UInt64(mark) << 56
  }
}

/// The frame table (Xen's `frame_table` of `page_info`): one 8-byte record per machine frame of
/// the allocator's span, in memory taken at boot (8 bytes per 4 KiB: 2 MiB per GiB). Every
/// operation is one atomic read-modify-write of a record, so records can change on several
/// pcpus at once; the rules about *when* they may change (the p2m lock, the flush before a
/// put) are the callers' (docs/memory.md, "The life of a frame").
public enum FrameTable {
  // Where the table is: set once by `setUp` on the boot pcpu, before any other pcpu starts, and
  // only read afterwards; each read is marked `unsafe` for that reason.
  nonisolated(unsafe) private static var firstFrame: UInt64 = 0
  nonisolated(unsafe) private static var frameCount: UInt64 = 0
  nonisolated(unsafe) private static var storage: UInt64 = 0

  public static let hypervisorOwner = XenABI.DomainID.xen

  /// Bytes of table for a span.
  public static func bytes(for span: Range<UInt64>) -> UInt64 {
    (span.upperBound / 4096 - span.lowerBound / 4096) * 8
  }

  /// Installs the table over `span` at `storage` (`bytes(for:)` long). Every frame starts free;
  /// `Frames` marks what it hands out.
  public static func setUp(span: Range<UInt64>, storage: UInt64) {
    unsafe firstFrame = span.lowerBound / 4096
    unsafe frameCount = span.upperBound / 4096 - firstFrame
    unsafe Self.storage = storage
    unsafe FrameMemory.zero(storage, count: Int(frameCount * 8))
  }

  public static var isSetUp: Bool { unsafe storage != 0 }
  public static var span: Range<UInt64> { unsafe (firstFrame * 4096)..<((firstFrame + frameCount) * 4096) }

  @inline(__always)
  private static func slot(_ address: UInt64) -> UInt64? {
    let frame = address / 4096
    let (storage, firstFrame, frameCount) = unsafe (Self.storage, Self.firstFrame, Self.frameCount)
    guard storage != 0, frame >= firstFrame, frame - firstFrame < frameCount else { return nil }
    return storage + (frame - firstFrame) * 8
  }

  public static func record(_ address: UInt64) -> FrameRecord? {
    guard let slot = slot(address) else { return nil }
    return FrameRecord(word: unsafe FrameMemory.atomicWord(slot).pointee.load(ordering: .acquiring))
  }

  /// Applies `change` to the record atomically; nil from `change` leaves it and fails.
  @discardableResult
  private static func update(_ address: UInt64, _ change: (FrameRecord) -> FrameRecord?) -> FrameRecord? {
    guard let slot = slot(address) else { return nil }
    let word = unsafe FrameMemory.atomicWord(slot)
    var old = unsafe word.pointee.load(ordering: .relaxed)
    while true {
      guard let new = change(FrameRecord(word: old)) else { return nil }
      let (exchanged, current) = unsafe word.pointee.compareExchange(
        expected: old, desired: new.word, ordering: .acquiringAndReleasing)
      if exchanged { return new }
      old = current
    }
  }

  // MARK: - The allocator's transitions

  /// A free frame handed out by `Frames`: the hypervisor's, one reference.
  static func allocated(_ address: UInt64) {
    update(address) { _ in FrameRecord(owner: hypervisorOwner, use: .hypervisor, refs: 1) }
  }

  /// A frame going back to `Frames`.
  static func freed(_ address: UInt64) {
    update(address) { _ in FrameRecord(owner: 0, use: .free, refs: 0) }
  }

  // MARK: - Ownership and references

  /// Gives a frame the hypervisor just allocated to `owner` as `use`, with no reference yet:
  /// the first p2m entry or hypervisor holder takes one. Fails unless the frame is the
  /// hypervisor's with its allocation's single reference.
  public static func assign(_ address: UInt64, to owner: UInt16, as use: FrameUse) -> Bool {
    update(address) { record in
      guard record.use == .hypervisor, record.owner == hypervisorOwner, record.refs == 1 else { return nil }
      return FrameRecord(owner: owner, use: use, refs: 0)
    } != nil
  }

  /// One more reference on a frame `owner` owns. Fails (and changes nothing) if the frame is
  /// free, someone else's, or its count is at its limit.
  /// Optimized for speed, not size as the rest of the image, as `put` and `adjustTableEntries`:
  /// every grant map and unmap comes here.
  @_optimize(speed)
  public static func get(_ address: UInt64, owner: UInt16) -> Bool {
    update(address) { record in
      guard record.use != .free, record.owner == owner, record.refs < UInt32.max else { return nil }
      var next = record
      next.refs += 1
      return next
    } != nil
  }

  public enum PutResult: Equatable, Sendable {
    /// Others still hold it.
    case stillReferenced
    /// That was the last reference: the caller frees the frame (after any flush it owes).
    case lastReference(FrameRecord)
    /// It had no reference to drop, or no record: a hypervisor bug, which the caller reports.
    case notReferenced
  }

  /// Drops one reference.
  /// Optimized for speed (see `get`).
  @_optimize(speed)
  public static func put(_ address: UInt64) -> PutResult {
    var last: FrameRecord?
    guard let after = update(address, { record in
      guard record.use != .free, record.refs > 0 else { return nil }
      var next = record
      next.refs -= 1
      if next.refs == 0 { last = record }
      return next
    }) else { return .notReferenced }
    if after.refs == 0, let last { return .lastReference(last) }
    return .stillReferenced
  }

  /// Adds `delta` to the count of a p2m table page (an entry made or cleared); the new count.
  /// Optimized for speed (see `get`).
  @_optimize(speed)
  static func adjustTableEntries(_ address: UInt64, by delta: Int32) -> UInt32 {
    update(address) { record in
      var next = record
      next.refs = UInt32(truncatingIfNeeded: Int64(record.refs) + Int64(delta))
      return next
    }?.refs ?? 0
  }

  /// Sets the count of a p2m table page (the number of entries in it), as the p2m changes it.
  static func setTableEntries(_ address: UInt64, _ count: UInt32) {
    update(address) { record in
      var next = record
      next.refs = count
      return next
    }
  }

  // MARK: - For the isolation check

  static func setMark(_ address: UInt64, _ mark: UInt8) {
    update(address) { record in
      var next = record
      next.mark = mark
      return next
    }
  }

  /// Calls `body` with the address and record of every frame that is not free.
  static func forEachInUse(_ body: (UInt64, FrameRecord) -> Void) {
    guard unsafe storage != 0 else { return }
    for i in unsafe 0..<frameCount {
      let word = unsafe FrameMemory.atomicWord(storage + i * 8).pointee.load(ordering: .acquiring)
      if word == 0 { continue }
      unsafe body((firstFrame + i) * 4096, FrameRecord(word: word))
    }
  }
}
