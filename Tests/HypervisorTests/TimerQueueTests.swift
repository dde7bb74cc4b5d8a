import Testing

@testable import Hypervisor

/// Pops every timer expired at `now`, returning the payloads in firing order.
private func drain(_ queue: inout TimerQueue<Int>, now: UInt64) -> [Int] {
  var fired: [Int] = []
  while let timer = queue.popExpired(now: now) {
    fired.append(timer.payload)
  }
  return fired
}

/// `queue.cancel(id)` as a free function: `#expect` cannot call a mutating method directly.
private func cancelTimer(_ queue: inout TimerQueue<Int>, _ id: TimerID) -> Bool {
  queue.cancel(id)
}

@Suite struct TimerQueueTests {
  @Test func emptyQueue() {
    var queue = TimerQueue<Int>()
    #expect(queue.count == 0)
    #expect(queue.nextDeadline == nil)
    #expect(queue.popExpired(now: .max) == nil)
  }

  @Test func firesInDeadlineOrder() {
    var queue = TimerQueue<Int>()
    for deadline in [50, 10, 40, 30, 20] as [UInt64] {
      queue.insert(deadline: deadline, payload: Int(deadline))
    }
    #expect(queue.count == 5)
    #expect(queue.nextDeadline == 10)
    #expect(queue.popExpired(now: 9) == nil)
    #expect(drain(&queue, now: 30) == [10, 20, 30])
    #expect(queue.nextDeadline == 40)
    #expect(queue.count == 2)
    #expect(drain(&queue, now: .max) == [40, 50])
    #expect(queue.count == 0)
  }

  @Test func popReportsIdAndDeadline() throws {
    var queue = TimerQueue<Int>()
    let id = queue.insert(deadline: 7, payload: 70)
    let timer = try unwrap(queue.popExpired(now: 7))
    #expect(timer.id == id)
    #expect(timer.deadline == 7)
    #expect(timer.payload == 70)
  }

  @Test func equalDeadlinesFireFirstInFirstOut() {
    var queue = TimerQueue<Int>()
    for i in 0..<20 {
      queue.insert(deadline: UInt64(100 + i % 2), payload: i)
    }
    let evens = Array(stride(from: 0, to: 20, by: 2))
    let odds = Array(stride(from: 1, to: 20, by: 2))
    #expect(drain(&queue, now: 200) == evens + odds)
  }

  @Test func cancel() {
    var queue = TimerQueue<Int>()
    let a = queue.insert(deadline: 10, payload: 1)
    let b = queue.insert(deadline: 20, payload: 2)
    let c = queue.insert(deadline: 30, payload: 3)
    #expect(cancelTimer(&queue, a))
    #expect(queue.count == 2)
    #expect(queue.nextDeadline == 20)
    #expect(!cancelTimer(&queue, a), "already cancelled")
    #expect(cancelTimer(&queue, c))
    #expect(drain(&queue, now: 100) == [2])
    #expect(!cancelTimer(&queue, b), "already fired")
    #expect(queue.nextDeadline == nil)
  }

  @Test func staleIdDoesNotCancelReusedSlot() {
    var queue = TimerQueue<Int>()
    let old = queue.insert(deadline: 10, payload: 1)
    #expect(cancelTimer(&queue, old))
    let new = queue.insert(deadline: 10, payload: 2)
    #expect(old != new)
    #expect(!cancelTimer(&queue, old))
    #expect(queue.count == 1)
    #expect(cancelTimer(&queue, new))
  }

  @Test func idsAreUnique() {
    var queue = TimerQueue<Int>()
    var ids = Set<TimerID>()
    for round in 0..<50 {
      for i in 0..<10 {
        #expect(ids.insert(queue.insert(deadline: UInt64(i), payload: round)).inserted)
      }
      _ = drain(&queue, now: .max)
    }
  }

  /// Random inserts, cancels and pops checked against a plain sorted array.
  @Test(arguments: [11, 12, 13] as [UInt64])
  func randomizedAgainstSortedModel(seed: UInt64) {
    var random = SplitMix64(seed: seed)
    var queue = TimerQueue<Int>()
    // Model entries sorted by (deadline, insertion number).
    var model: [(deadline: UInt64, order: Int, id: TimerID, payload: Int)] = []
    var gone: [TimerID] = []
    var now: UInt64 = 0
    var inserted = 0

    for step in 0..<5000 {
      switch random.next() % 10 {
      case 0..<5:
        let deadline = now + random.next() % 64  // small range: many ties
        let id = queue.insert(deadline: deadline, payload: inserted)
        model.append((deadline, inserted, id, inserted))
        model.sort { ($0.deadline, $0.order) < ($1.deadline, $1.order) }
        inserted += 1
      case 5..<7:
        if !model.isEmpty && random.next() % 4 != 0 {
          let victim = model.remove(at: Int(random.next() % UInt64(model.count)))
          #expect(cancelTimer(&queue, victim.id), "step \(step)")
          gone.append(victim.id)
        } else if !gone.isEmpty {
          let stale = gone[Int(random.next() % UInt64(gone.count))]
          #expect(!cancelTimer(&queue, stale), "step \(step)")
        }
      default:
        now += random.next() % 16
        while let timer = queue.popExpired(now: now) {
          let expected = model.removeFirst()
          #expect(timer.id == expected.id, "step \(step)")
          #expect(timer.deadline == expected.deadline)
          #expect(timer.payload == expected.payload)
          #expect(timer.deadline <= now)
          gone.append(timer.id)
        }
        #expect(model.first.map { $0.deadline > now } ?? true, "step \(step): expired timer left behind")
      }
      #expect(queue.count == model.count, "step \(step)")
      #expect(queue.nextDeadline == model.first?.deadline, "step \(step)")
    }
  }
}
