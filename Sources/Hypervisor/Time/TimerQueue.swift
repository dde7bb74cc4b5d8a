/// Names one timer in a `TimerQueue`, for cancelling it. An id is never reused by the queue that
/// issued it (until a slot has been reused 2^32 times), so cancelling a timer that already fired
/// is harmless.
public struct TimerID: Hashable, Sendable {
  /// Slot in the queue's position table (low 32 bits) and that slot's generation (high 32 bits).
  public let raw: UInt64

  /// An id kept as a plain number (by a vcpu, for the arch layer).
  public init(raw: UInt64) { self.raw = raw }

  init(slot: Int, generation: UInt32) {
    raw = UInt64(generation) << 32 | UInt64(UInt32(slot))
  }

  var slot: Int { Int(raw & 0xFFFF_FFFF) }
  var generation: UInt32 { UInt32(truncatingIfNeeded: raw >> 32) }
}

/// The timers of one physical CPU, ordered by deadline: a binary min-heap in an array. Timers
/// with equal deadlines fire in the order they were inserted.
///
/// Cancelling is eager and O(log n): every timer owns a slot in a small table that records where
/// it currently sits in the heap, so `count` and `nextDeadline` always describe live timers only.
/// Slots are recycled, and each carries a generation number so a stale `TimerID` never matches.
///
/// Deadlines are in whatever unit the caller uses (the image uses nanoseconds of system time).
/// Not thread safe: each queue belongs to one pcpu, or callers lock.
public struct TimerQueue<Payload> {
  fileprivate struct Entry {
    var deadline: UInt64
    /// Insertion number: breaks deadline ties first-in, first-out.
    var sequence: UInt64
    var slot: Int
    var payload: Payload
  }

  private var heap: [Entry] = []
  /// Per slot: index in `heap` of the live timer using it, or -1 when the slot is free.
  private var heapIndexOfSlot: [Int] = []
  /// Per slot: bumped each time the slot is released, to tell old ids from new ones.
  private var generationOfSlot: [UInt32] = []
  private var freeSlots: [Int] = []
  private var nextSequence: UInt64 = 0

  public init() {}

  /// Number of live (pending, not cancelled) timers.
  public var count: Int { heap.count }

  /// The earliest pending deadline, or nil when no timer is pending.
  public var nextDeadline: UInt64? { heap.first?.deadline }

  /// Adds a timer that expires at `deadline` and returns its id.
  @discardableResult
  public mutating func insert(deadline: UInt64, payload: Payload) -> TimerID {
    let slot: Int
    if let reused = freeSlots.popLast() {
      slot = reused
    } else {
      slot = heapIndexOfSlot.count
      heapIndexOfSlot.append(-1)
      generationOfSlot.append(0)
    }
    heap.append(Entry(deadline: deadline, sequence: nextSequence, slot: slot, payload: payload))
    nextSequence += 1
    heapIndexOfSlot[slot] = heap.count - 1
    siftUp(heap.count - 1)
    return TimerID(slot: slot, generation: generationOfSlot[slot])
  }

  /// Removes a pending timer. Returns false when `id` is not pending (it already fired, was
  /// cancelled, or came from another queue).
  @discardableResult
  public mutating func cancel(_ id: TimerID) -> Bool {
    let slot = id.slot
    guard slot < heapIndexOfSlot.count, generationOfSlot[slot] == id.generation else { return false }
    let index = heapIndexOfSlot[slot]
    guard index >= 0 else { return false }
    _ = remove(at: index)
    return true
  }

  /// Removes and returns the earliest timer whose deadline is at or before `now`, or nil if none
  /// has expired. Call it in a loop to run every expired timer.
  public mutating func popExpired(now: UInt64) -> (id: TimerID, deadline: UInt64, payload: Payload)? {
    guard let first = heap.first, first.deadline <= now else { return nil }
    let id = TimerID(slot: first.slot, generation: generationOfSlot[first.slot])
    let entry = remove(at: 0)
    return (id, entry.deadline, entry.payload)
  }

  // MARK: - Heap maintenance

  private static func isEarlier(_ a: Entry, _ b: Entry) -> Bool {
    a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
  }

  /// Removes the entry at `index`, keeping the heap ordered, and releases its slot.
  private mutating func remove(at index: Int) -> Entry {
    let last = heap.count - 1
    if index != last {
      swapEntries(index, last)
    }
    let removed = heap.removeLast()
    releaseSlot(removed.slot)
    if index < heap.count {
      // The entry moved into `index` may belong either above or below it.
      siftDown(siftUp(index))
    }
    return removed
  }

  private mutating func releaseSlot(_ slot: Int) {
    heapIndexOfSlot[slot] = -1
    generationOfSlot[slot] &+= 1
    freeSlots.append(slot)
  }

  private mutating func swapEntries(_ i: Int, _ j: Int) {
    heap.swapAt(i, j)
    heapIndexOfSlot[heap[i].slot] = i
    heapIndexOfSlot[heap[j].slot] = j
  }

  /// Moves the entry at `index` up while it is earlier than its parent; returns where it ended.
  @discardableResult
  private mutating func siftUp(_ index: Int) -> Int {
    var child = index
    while child > 0 {
      let parent = (child - 1) / 2
      guard Self.isEarlier(heap[child], heap[parent]) else { break }
      swapEntries(child, parent)
      child = parent
    }
    return child
  }

  /// Moves the entry at `index` down while a child is earlier than it.
  private mutating func siftDown(_ index: Int) {
    var parent = index
    while true {
      let left = 2 * parent + 1
      guard left < heap.count else { return }
      let right = left + 1
      var earliest = left
      if right < heap.count && Self.isEarlier(heap[right], heap[left]) {
        earliest = right
      }
      guard Self.isEarlier(heap[earliest], heap[parent]) else { return }
      swapEntries(parent, earliest)
      parent = earliest
    }
  }
}

extension TimerQueue: Sendable where Payload: Sendable {}
extension TimerQueue.Entry: Sendable where Payload: Sendable {}
