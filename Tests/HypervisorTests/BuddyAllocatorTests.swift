import Testing

@testable import Hypervisor

private let frame = BuddyAllocator.frameSize
private let MiB: UInt64 = 1 << 20
private let GiB: UInt64 = 1 << 30

private func blockBytes(_ order: Int) -> UInt64 {
  frame << UInt64(order)
}

/// Frames of every free block, from the per-order counts: must always equal `freeFrames`.
private func framesInFreeBlocks(_ allocator: BuddyAllocator) -> Int {
  (0...BuddyAllocator.maxOrder).reduce(0) { $0 + allocator.freeBlocks(order: $1) << $1 }
}

/// Whether `[start, start + size)` lies wholly inside one of `ranges`.
private func isInside(_ start: UInt64, _ size: UInt64, _ ranges: [Range<UInt64>]) -> Bool {
  ranges.contains { $0.lowerBound <= start && start + size <= $0.upperBound }
}

@Suite struct BuddyAllocatorTests {
  @Test func startsEmpty() {
    var allocator = BuddyAllocator(span: 0..<(64 * MiB))
    #expect(allocator.freeFrames == 0)
    #expect(allocator.allocate(order: 0) == nil)
    #expect(allocator.span == 0..<(64 * MiB))
  }

  @Test func emptyAndRaggedSpans() {
    var empty = BuddyAllocator(span: 0x1000..<0x1000)
    empty.addFree(0..<MiB)
    #expect(empty.freeFrames == 0)
    #expect(empty.allocate(order: 0) == nil)

    let ragged = BuddyAllocator(span: 0x1800..<0x5800)
    #expect(ragged.span == 0x2000..<0x5000)
  }

  @Test func addFreeSplitsIntoMaximalAlignedBlocks() {
    var allocator = BuddyAllocator(span: 0..<(4 * GiB))
    // 1 MiB + 4 KiB .. 1 GiB + 2 MiB: every order from 0 up to 18 appears.
    allocator.addFree((MiB + frame)..<(GiB + 2 * MiB))
    #expect(allocator.freeFrames == Int((GiB + MiB - frame) / frame))
    #expect(allocator.freeBlocks(order: 18) == 0)  // no aligned GiB fits
    #expect(allocator.freeBlocks(order: 17) == 1)  // 512 MiB..1 GiB
    #expect(allocator.freeBlocks(order: 9) == 1 + 1)  // 2..4 MiB and 1 GiB..+2 MiB
    #expect(framesInFreeBlocks(allocator) == allocator.freeFrames)

    var whole = BuddyAllocator(span: 0..<(4 * GiB))
    whole.addFree(GiB..<(3 * GiB))
    #expect(whole.freeBlocks(order: 18) == 2)
    #expect(whole.freeFrames == Int(2 * GiB / frame))
  }

  @Test func addFreeShrinksInwardAndClipsToSpan() {
    var allocator = BuddyAllocator(span: (16 * MiB)..<(32 * MiB))
    allocator.addFree((16 * MiB - 100)..<(16 * MiB + 3 * frame + 5))
    #expect(allocator.freeFrames == 3)
    allocator.addFree((32 * MiB - frame + 1)..<(40 * MiB))
    #expect(allocator.freeFrames == 3)  // the last frame of the span is only partly inside
    allocator.addFree((32 * MiB - 2 * frame)..<(40 * MiB))
    #expect(allocator.freeFrames == 5)
    allocator.addFree(0..<(8 * MiB))
    #expect(allocator.freeFrames == 5)
  }

  @Test func allocatesEveryFrameOnceThenExhausts() {
    let ranges: [Range<UInt64>] = [(MiB)..<(MiB + 300 * frame), (8 * MiB + frame)..<(8 * MiB + 77 * frame)]
    var allocator = BuddyAllocator(span: 0..<(16 * MiB))
    for range in ranges { allocator.addFree(range) }
    let expected = 300 + 76
    #expect(allocator.freeFrames == expected)

    var seen = Set<UInt64>()
    while let address = allocator.allocate(order: 0) {
      #expect(address % frame == 0)
      #expect(isInside(address, frame, ranges))
      #expect(seen.insert(address).inserted, "frame handed out twice")
    }
    #expect(seen.count == expected)
    #expect(allocator.freeFrames == 0)
    #expect(allocator.allocate(order: 0) == nil)
    #expect(allocator.allocate(order: 5) == nil)
  }

  @Test func mixedOrdersNeverOverlap() {
    var allocator = BuddyAllocator(span: 0..<(64 * MiB))
    let ranges: [Range<UInt64>] = [(3 * frame)..<(20 * MiB + 5 * frame), (33 * MiB)..<(63 * MiB)]
    for range in ranges { allocator.addFree(range) }
    var blocks: [(start: UInt64, end: UInt64)] = []
    var order = 0
    var failures = 0
    // Cycle through orders until even order 0 fails.
    while failures < 12 {
      if let address = allocator.allocate(order: order) {
        blocks.append((address, address + blockBytes(order)))
        #expect(allocator.allocatedOrder(of: address) == order)
        failures = 0
      } else {
        failures += 1
      }
      order = (order + 5) % 12
    }
    #expect(allocator.allocate(order: 0) == nil)
    blocks.sort { $0.start < $1.start }
    for (a, b) in zip(blocks, blocks.dropFirst()) {
      #expect(a.end <= b.start, "blocks overlap")
    }
    for block in blocks {
      #expect(isInside(block.start, block.end - block.start, ranges))
    }
  }

  @Test func freeCoalescesBackToOneMaximalBlock() throws {
    var allocator = BuddyAllocator(span: GiB..<(2 * GiB))
    allocator.addFree(GiB..<(2 * GiB))
    #expect(allocator.freeBlocks(order: 18) == 1)
    let total = allocator.freeFrames

    var blocks: [UInt64] = []
    while let address = allocator.allocate(order: 9) {
      blocks.append(address)
    }
    #expect(blocks.count == 512)
    #expect(allocator.freeFrames == 0)
    // Free in an interleaved order so merges happen late.
    for start in 0..<7 {
      for index in stride(from: start, to: blocks.count, by: 7) {
        try allocator.free(blocks[index])
      }
    }
    #expect(allocator.freeFrames == total)
    #expect(allocator.freeBlocks(order: 18) == 1)
    for order in 0..<BuddyAllocator.maxOrder {
      #expect(allocator.freeBlocks(order: order) == 0)
    }
    #expect(allocator.allocate(order: 18) == GiB)
  }

  @Test func aSplitBlockIsFreedFrameByFrameAndMergesAgain() throws {
    var allocator = BuddyAllocator(span: 0..<(4 * MiB))
    allocator.addFree(0..<(4 * MiB))
    let total = allocator.freeFrames
    let allocated = allocator.allocate(order: 9)
    let block = try #require(allocated)
    try allocator.split(block)
    #expect(allocator.allocatedOrder(of: block) == 0)
    #expect(allocator.allocatedOrder(of: block + 511 * frame) == 0)
    #expect(allocator.freeFrames == total - 512)
    // Every frame but the first, from the top down: none of them may merge past the block.
    for i in stride(from: 511, through: 1, by: -1) { try allocator.free(block + UInt64(i) * frame) }
    #expect(allocator.freeFrames == total - 1)
    #expect(allocator.allocate(order: 9) != block)
    try allocator.free(block)
    #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.free(block + frame) }
    #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.split(block) }
  }

  @Test func fragmentation() throws {
    var allocator = BuddyAllocator(span: 0..<(8 * MiB))
    allocator.addFree((2 * MiB)..<(4 * MiB))  // one order-9 block
    var frames: [UInt64] = []
    while let address = allocator.allocate(order: 0) {
      frames.append(address)
    }
    #expect(frames.count == 512)
    for (i, address) in frames.enumerated() where i % 2 == 0 {
      try allocator.free(address)
    }
    #expect(allocator.freeFrames == 256)
    #expect(allocator.freeBlocks(order: 0) == 256)
    #expect(allocator.allocate(order: 1) == nil, "no two adjacent free frames")
    for (i, address) in frames.enumerated() where i % 2 == 1 {
      try allocator.free(address)
    }
    #expect(allocator.freeBlocks(order: 9) == 1)
    #expect(allocator.allocate(order: 9) == 2 * MiB)
  }

  @Test func everyOrderIsNaturallyAligned() {
    var allocator = BuddyAllocator(span: 0..<(8 * GiB))
    // Deliberately unaligned start: the allocator must still return aligned blocks.
    allocator.addFree((frame * 3)..<(6 * GiB + frame))
    for order in 0...BuddyAllocator.maxOrder {
      let address = allocator.allocate(order: order)
      #expect(address != nil)
      if let address {
        #expect(address % blockBytes(order) == 0, "order \(order) misaligned")
        #expect(allocator.allocatedOrder(of: address) == order)
      }
    }
    #expect(allocator.allocate(order: -1) == nil)
    #expect(allocator.allocate(order: BuddyAllocator.maxOrder + 1) == nil)
  }

  @Test func rejectsBadFreesWithoutChangingState() throws {
    var allocator = BuddyAllocator(span: (16 * MiB)..<(32 * MiB))
    allocator.addFree((16 * MiB)..<(20 * MiB))
    let block = try unwrap(allocator.allocate(order: 2))
    let before = allocator.freeFrames

    #expect(throws: BuddyAllocator.FreeError.outOfRange) { try allocator.free(0x1000) }
    #expect(throws: BuddyAllocator.FreeError.outOfRange) { try allocator.free(32 * MiB) }
    #expect(throws: BuddyAllocator.FreeError.misaligned) { try allocator.free(block + 8) }
    #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.free(block + frame) }  // inside the block
    #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.free(19 * MiB) }  // free memory
    #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.free(24 * MiB) }  // never added
    #expect(allocator.freeFrames == before)
    #expect(allocator.allocatedOrder(of: block) == 2)

    try allocator.free(block)
    #expect(allocator.freeFrames == before + 4)
    #expect(allocator.allocatedOrder(of: block) == nil)
    #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.free(block) }  // double free
    #expect(allocator.freeFrames == before + 4)
    #expect(framesInFreeBlocks(allocator) == allocator.freeFrames)
  }

  @Test func addingFreeMemoryTwiceCreatesNoDuplicates() throws {
    var allocator = BuddyAllocator(span: 0..<(64 * MiB))
    allocator.addFree((4 * MiB)..<(12 * MiB))
    let once = allocator.freeFrames
    allocator.addFree((4 * MiB)..<(12 * MiB))
    #expect(allocator.freeFrames == once)
    // Overlapping on both sides: only the new parts count.
    allocator.addFree((3 * MiB + frame)..<(13 * MiB - frame))
    #expect(allocator.freeFrames == once + 2 * 255)
    #expect(framesInFreeBlocks(allocator) == allocator.freeFrames)

    // Re-adding allocated memory leaves the allocations alone.
    let big = try unwrap(allocator.allocate(order: 10))
    let small = try unwrap(allocator.allocate(order: 0))
    let free = allocator.freeFrames
    allocator.addFree(0..<(64 * MiB))
    #expect(allocator.freeFrames == Int(64 * MiB / frame) - 1024 - 1)
    #expect(allocator.freeFrames > free)
    #expect(allocator.allocatedOrder(of: big) == 10)
    #expect(allocator.allocatedOrder(of: small) == 0)
    #expect(framesInFreeBlocks(allocator) == allocator.freeFrames)

    var handedOut = Set<UInt64>()
    while let address = allocator.allocate(order: 0) {
      #expect(!(big..<(big + blockBytes(10))).contains(address))
      #expect(address != small)
      #expect(handedOut.insert(address).inserted)
    }
    try allocator.free(big)
    try allocator.free(small)
    #expect(allocator.freeFrames == 1025)
  }

  @Test func reserveWithdrawsFreeFrames() throws {
    var allocator = BuddyAllocator(span: 0..<(64 * MiB))
    allocator.addFree((16 * MiB)..<(17 * MiB))
    #expect(allocator.freeFrames == 256)
    // Touches frames 16 MiB + 5 ... 16 MiB + 9 (partial frames at both ends count).
    let reserved = (16 * MiB + 5 * frame + 100)..<(16 * MiB + 9 * frame + 1)
    #expect(allocator.reserve(reserved) == 5)
    #expect(allocator.freeFrames == 251)
    #expect(framesInFreeBlocks(allocator) == 251)
    #expect(allocator.reserve(reserved) == 0)  // already withdrawn

    var handedOut: [UInt64] = []
    while let address = allocator.allocate(order: 0) {
      #expect(!(address >= 16 * MiB + 5 * frame && address < 16 * MiB + 10 * frame))
      handedOut.append(address)
    }
    #expect(handedOut.count == 251)
    // Reserving allocated frames withdraws nothing and leaves them allocated.
    #expect(allocator.reserve((16 * MiB)..<(17 * MiB)) == 0)
    for address in handedOut { try allocator.free(address) }
    #expect(allocator.freeFrames == 251)
    // Reserving everything and outside the span.
    #expect(allocator.reserve(0..<UInt64.max) == 251)
    #expect(allocator.freeFrames == 0)
    #expect(allocator.reserve(0..<0) == 0)
    // Withdrawn memory can be added back.
    allocator.addFree((16 * MiB)..<(17 * MiB))
    #expect(allocator.freeFrames == 256)
    #expect(allocator.freeBlocks(order: 8) == 1)
  }

  @Test func reserveInsideLargeBlockKeepsTheRestUsable() {
    var allocator = BuddyAllocator(span: 0..<(2 * GiB))
    allocator.addFree(GiB..<(2 * GiB))
    #expect(allocator.reserve((GiB + 3 * MiB)..<(GiB + 3 * MiB + frame)) == 1)
    #expect(allocator.freeFrames == Int(GiB / frame) - 1)
    #expect(framesInFreeBlocks(allocator) == allocator.freeFrames)
    #expect(allocator.allocate(order: 18) == nil)
    #expect(allocator.allocate(order: 17) == GiB + GiB / 2)
  }

  /// Thousands of random operations checked against a simple model after every step.
  @Test(arguments: [1, 2, 3] as [UInt64])
  func randomizedAgainstModel(seed: UInt64) throws {
    var random = SplitMix64(seed: seed)
    let span = 0..<(256 * MiB)
    var allocator = BuddyAllocator(span: span)
    // Free ranges with ragged edges and gaps, some adjacent to each other.
    let ranges: [Range<UInt64>] = [
      (frame)..<(3 * MiB + 7 * frame),
      (3 * MiB + 7 * frame)..<(9 * MiB),
      (17 * MiB + 3 * frame)..<(80 * MiB),
      (128 * MiB)..<(192 * MiB + 5 * frame),
    ]
    for range in ranges { allocator.addFree(range) }
    // The first two ranges touch, so blocks may straddle their border.
    let allowed = [ranges[0].lowerBound..<ranges[1].upperBound, ranges[2], ranges[3]]
    let added = ranges.reduce(0) { $0 + Int($1.count) / Int(frame) }
    #expect(allocator.freeFrames == added)
    var initialBlocks: [Int] = []
    for order in 0...BuddyAllocator.maxOrder {
      initialBlocks.append(allocator.freeBlocks(order: order))
    }

    // Live blocks, sorted by start address.
    var live: [(start: UInt64, order: Int)] = []
    var liveFrames = 0
    func insertionPoint(_ start: UInt64) -> Int {
      var low = 0
      var high = live.count
      while low < high {
        let mid = (low + high) / 2
        if live[mid].start < start { low = mid + 1 } else { high = mid }
      }
      return low
    }

    for step in 0..<4000 {
      let allocateNow = live.isEmpty || random.next() % 100 < 55
      if allocateNow {
        // Mostly small orders, sometimes large ones.
        let roll = random.next() % 100
        let order = roll < 50 ? Int(random.next() % 3) : roll < 90 ? Int(random.next() % 10) : Int(random.next() % 19)
        let freeBefore = allocator.freeFrames
        guard let address = allocator.allocate(order: order) else {
          #expect(allocator.freeFrames == freeBefore)
          continue
        }
        let size = blockBytes(order)
        #expect(address % size == 0, "step \(step): misaligned")
        #expect(isInside(address, size, allowed), "step \(step): outside the added memory")
        let index = insertionPoint(address)
        if index > 0 {
          let previous = live[index - 1]
          #expect(previous.start + blockBytes(previous.order) <= address, "step \(step): overlap")
        }
        if index < live.count {
          #expect(address + size <= live[index].start, "step \(step): overlap")
        }
        live.insert((address, order), at: index)
        liveFrames += 1 << order
      } else {
        let index = Int(random.next() % UInt64(live.count))
        let block = live.remove(at: index)
        try allocator.free(block.start)
        liveFrames -= 1 << block.order
        if random.next() % 16 == 0 {
          #expect(throws: BuddyAllocator.FreeError.notAllocated) { try allocator.free(block.start) }
        }
      }
      #expect(allocator.freeFrames == added - liveFrames, "step \(step)")
      if step % 97 == 0 {
        #expect(framesInFreeBlocks(allocator) == allocator.freeFrames)
      }
    }

    for block in live {
      try allocator.free(block.start)
    }
    #expect(allocator.freeFrames == added)
    for order in 0...BuddyAllocator.maxOrder {
      #expect(allocator.freeBlocks(order: order) == initialBlocks[order], "order \(order) not coalesced")
    }
    #expect(allocator.allocate(order: 14) == 128 * MiB)
  }
}
