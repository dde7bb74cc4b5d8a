import Testing

@testable import Hypervisor

/// Host memory for a heap under test; released when the test ends.
private final class Arena {
  let start: UnsafeMutableRawPointer
  let size: Int

  init(size: Int, alignment: Int = 4096) {
    self.size = size
    start = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
  }

  deinit {
    start.deallocate()
  }

  func contains(_ pointer: UnsafeMutableRawPointer, count: Int) -> Bool {
    pointer >= start && pointer + count <= start + size
  }
}

/// A live allocation and the byte pattern written into it.
private struct Allocation {
  var pointer: UnsafeMutableRawPointer
  var size: Int
  var pattern: UInt8

  func fill() {
    pointer.initializeMemory(as: UInt8.self, repeating: pattern, count: size)
  }

  func isIntact() -> Bool {
    let bytes = UnsafeRawBufferPointer(start: pointer, count: size)
    return bytes.allSatisfy { $0 == pattern }
  }
}

private let endMarkerSize = 16
private let headerSize = 16

@Suite struct HeapTests {
  @Test func emptyHeapAllocatesNothing() {
    var heap = Heap()
    #expect(heap.allocate(size: 1, alignment: 16) == nil)
    #expect(heap.bytesInUse == 0)
    #expect(heap.bytesFree == 0)
    #expect(heap.largestAllocation == 0)
  }

  @Test func tooSmallRegionIsIgnored() {
    let arena = Arena(size: 4096)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: Heap.minimumRegionSize - 1)
    #expect(heap.bytesManaged == 0)
    heap.addRegion(start: arena.start + 1, size: Heap.minimumRegionSize)  // too small once aligned
    #expect(heap.bytesManaged == 0)
    heap.addRegion(start: arena.start, size: Heap.minimumRegionSize)
    #expect(heap.bytesManaged == Heap.minimumRegionSize)
    #expect(heap.allocate(size: 1, alignment: 8) != nil)
  }

  @Test func accountingOfOneRegion() throws {
    let arena = Arena(size: 64 * 1024)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: arena.size)
    #expect(heap.bytesManaged == arena.size)
    #expect(heap.bytesFree == arena.size - endMarkerSize)
    #expect(heap.largestAllocation == arena.size - endMarkerSize - headerSize)

    let pointer = try unwrap(heap.allocate(size: 100, alignment: 8))
    #expect(heap.bytesInUse == 128)  // 100 + header, rounded to 16
    #expect(heap.bytesInUse + heap.bytesFree == arena.size - endMarkerSize)
    heap.free(pointer)
    #expect(heap.bytesInUse == 0)
    #expect(heap.bytesFree == arena.size - endMarkerSize)
  }

  @Test func unalignedRegionEdgesAreTrimmed() throws {
    let arena = Arena(size: 8192)
    var heap = Heap()
    heap.addRegion(start: arena.start + 3, size: 8000)
    #expect(heap.bytesManaged == 8000 - 13 - 3)  // start rounded up by 13, end down by 3
    let pointer = try unwrap(heap.allocate(size: 64, alignment: 1))
    #expect(Int(bitPattern: pointer) % 16 == 0)
    #expect(arena.contains(pointer, count: 64))
  }

  @Test(arguments: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096])
  func alignment(_ alignment: Int) throws {
    let arena = Arena(size: 256 * 1024)
    var heap = Heap()
    heap.addRegion(start: arena.start + 48, size: arena.size - 48)
    var allocations: [Allocation] = []
    for (i, size) in [0, 1, 15, 16, 17, 100, 1000, 4096, 5000].enumerated() {
      let pointer = try unwrap(heap.allocate(size: size, alignment: alignment))
      #expect(Int(bitPattern: pointer) % max(alignment, 16) == 0)
      #expect(arena.contains(pointer, count: size))
      let allocation = Allocation(pointer: pointer, size: size, pattern: UInt8(i + 1))
      allocation.fill()
      allocations.append(allocation)
    }
    for allocation in allocations {
      #expect(allocation.isIntact())
      heap.free(allocation.pointer)
    }
    #expect(heap.bytesInUse == 0)
    #expect(heap.largestAllocation == heap.bytesManaged - endMarkerSize - headerSize)
  }

  @Test func rejectsInvalidRequests() {
    let arena = Arena(size: 4096)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: arena.size)
    #expect(heap.allocate(size: -1, alignment: 16) == nil)
    #expect(heap.allocate(size: 16, alignment: 0) == nil)
    #expect(heap.allocate(size: 16, alignment: 24) == nil)
    #expect(heap.allocate(size: Int.max, alignment: 16) == nil)
    #expect(heap.allocate(size: 4096, alignment: 16) == nil)  // bigger than the heap
    #expect(heap.allocate(size: 16, alignment: 1 << 40) == nil)
    #expect(heap.bytesInUse == 0)
  }

  @Test func allocationsDoNotOverlap() {
    let arena = Arena(size: 128 * 1024)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: arena.size)
    var allocations: [Allocation] = []
    var size = 1
    while let pointer = heap.allocate(size: size, alignment: 16) {
      #expect(arena.contains(pointer, count: size))
      let pattern = UInt8(truncatingIfNeeded: allocations.count * 7 + 1)
      let allocation = Allocation(pointer: pointer, size: size, pattern: pattern)
      allocation.fill()
      allocations.append(allocation)
      size = size * 3 % 997 + 1
    }
    #expect(allocations.count > 100)
    for allocation in allocations {
      #expect(allocation.isIntact())
    }
  }

  @Test func freeingEverythingCoalescesIntoOneBlock() throws {
    let arena = Arena(size: 256 * 1024)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: arena.size)
    let largest = heap.largestAllocation
    let free = heap.bytesFree

    var pointers: [UnsafeMutableRawPointer] = []
    var size = 24
    while let pointer = heap.allocate(size: size, alignment: size % 3 == 0 ? 64 : 16) {
      pointers.append(pointer)
      size = size % 300 + 8
    }
    #expect(heap.largestAllocation < 400)
    // Free in a scrambled order so merges go both ways.
    var random = SplitMix64(seed: 42)
    pointers.shuffle(using: &random)
    for pointer in pointers {
      heap.free(pointer)
    }
    #expect(heap.bytesInUse == 0)
    #expect(heap.bytesFree == free)
    #expect(heap.largestAllocation == largest)
    let all = try unwrap(heap.allocate(size: largest, alignment: 16))
    #expect(all == arena.start + headerSize)
    #expect(heap.allocate(size: 1, alignment: 1) == nil)
    heap.free(all)
  }

  @Test func mergesWithBothNeighbours() throws {
    let arena = Arena(size: 4096)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: arena.size)
    let a = try unwrap(heap.allocate(size: 100, alignment: 16))
    let b = try unwrap(heap.allocate(size: 100, alignment: 16))
    let c = try unwrap(heap.allocate(size: 100, alignment: 16))
    let d = try unwrap(heap.allocate(size: 100, alignment: 16))
    heap.free(a)
    heap.free(c)
    heap.free(b)  // merges with a before and c after
    let merged = try unwrap(heap.allocate(size: 3 * 128 - headerSize, alignment: 16))
    #expect(merged == a)
    heap.free(merged)
    heap.free(d)
    #expect(heap.largestAllocation == arena.size - endMarkerSize - headerSize)
  }

  @Test func largeAlignmentLeavesFrontFragmentUsable() throws {
    let arena = Arena(size: 8192)
    var heap = Heap()
    heap.addRegion(start: arena.start, size: arena.size)
    let aligned = try unwrap(heap.allocate(size: 4000, alignment: 4096))
    #expect(aligned == arena.start + 4096)
    // Only the space in front of the aligned block is large enough for this.
    let small = try unwrap(heap.allocate(size: 1000, alignment: 16))
    #expect(small < aligned)
    heap.free(aligned)
    heap.free(small)
    #expect(heap.largestAllocation == arena.size - endMarkerSize - headerSize)
  }

  @Test func severalRegions() throws {
    let first = Arena(size: 8192)
    let second = Arena(size: 16384)
    var heap = Heap()
    heap.addRegion(start: first.start, size: first.size)
    heap.addRegion(start: second.start, size: second.size)
    #expect(heap.bytesManaged == first.size + second.size)
    #expect(heap.largestAllocation == second.size - endMarkerSize - headerSize)
    // Larger than either region alone: regions never merge.
    #expect(heap.allocate(size: 20000, alignment: 16) == nil)

    let big = try unwrap(heap.allocate(size: 12000, alignment: 16))
    #expect(second.contains(big, count: 12000))
    let medium = try unwrap(heap.allocate(size: 6000, alignment: 16))
    #expect(first.contains(medium, count: 6000))
    heap.free(big)
    heap.free(medium)
    #expect(heap.bytesInUse == 0)
    #expect(heap.bytesFree == first.size + second.size - 2 * endMarkerSize)
  }

  @Test(arguments: [7, 8, 9] as [UInt64])
  func randomizedSequences(seed: UInt64) {
    var random = SplitMix64(seed: seed)
    let arenas = [Arena(size: 96 * 1024), Arena(size: 160 * 1024 + 40)]
    var heap = Heap()
    heap.addRegion(start: arenas[0].start + 16, size: arenas[0].size - 16)
    heap.addRegion(start: arenas[1].start, size: arenas[1].size)
    let managedFree = heap.bytesFree
    let largest = heap.largestAllocation

    var live: [Allocation] = []
    var failures = 0
    for step in 0..<5000 {
      if live.isEmpty || random.next() % 100 < 55 {
        let size = random.next() % 8 == 0 ? Int(random.next() % 20000) : Int(random.next() % 300)
        let alignment = 1 << Int(random.next() % 13)
        guard let pointer = heap.allocate(size: size, alignment: alignment) else {
          failures += 1
          continue
        }
        #expect(Int(bitPattern: pointer) % max(alignment, 16) == 0, "step \(step)")
        #expect(arenas.contains { $0.contains(pointer, count: size) }, "step \(step)")
        let allocation = Allocation(pointer: pointer, size: size, pattern: UInt8(truncatingIfNeeded: step | 1))
        allocation.fill()
        live.append(allocation)
      } else {
        let allocation = live.remove(at: Int(random.next() % UInt64(live.count)))
        #expect(allocation.isIntact(), "step \(step): block overwritten")
        heap.free(allocation.pointer)
      }
      #expect(heap.bytesInUse + heap.bytesFree == managedFree, "step \(step)")
    }
    #expect(failures > 0, "the sequence should reach exhaustion sometimes")

    // Everything intact and non-overlapping, then all of it returns.
    live.sort { $0.pointer < $1.pointer }
    for (a, b) in zip(live, live.dropFirst()) {
      #expect(a.pointer + a.size <= b.pointer)
    }
    for allocation in live {
      #expect(allocation.isIntact())
      heap.free(allocation.pointer)
    }
    #expect(heap.bytesInUse == 0)
    #expect(heap.bytesFree == managedFree)
    #expect(heap.largestAllocation == largest)
  }

  @Test func doubleFreeTraps() async {
    await #expect(processExitsWith: .failure) {
      let arena = Arena(size: 4096)
      var heap = Heap()
      heap.addRegion(start: arena.start, size: arena.size)
      let pointer = heap.allocate(size: 32, alignment: 16)!
      heap.free(pointer)
      heap.free(pointer)
    }
  }

  @Test func foreignPointerTraps() async {
    await #expect(processExitsWith: .failure) {
      let arena = Arena(size: 4096)
      arena.start.initializeMemory(as: UInt8.self, repeating: 0xAB, count: arena.size)
      var heap = Heap()
      heap.addRegion(start: arena.start, size: 2048)
      heap.free(arena.start + 3072)
    }
  }
}
