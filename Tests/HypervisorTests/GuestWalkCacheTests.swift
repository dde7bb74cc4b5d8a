import Synchronization
import Testing

@testable import Hypervisor

/// Page-table entries by machine address, as the walk cache reads them again on a hit.
private enum FakeTables: EntryReader {
  nonisolated(unsafe) static var entries: [UInt64: UInt64] = [:]
  static func readEntry(_ machine: UInt64) -> UInt64? { entries[machine] }
}

// One lock for the tests of this suite: FakeTables is global.
private let tablesLock = Mutex(())

@Suite struct GuestWalkCacheTests {
  /// A recorded 4-level walk of the page at 0x7000_1000 ending on machine page 0x55_5000.
  func recordedWalk(generation: UInt64 = 3, readOnlyLevel: Int? = nil, writable: Bool = true) -> GuestWalkCache {
    var cache = GuestWalkCache()
    cache.begin(0x7000_1234, root: 0x10_0000, generation: generation)
    for level in 0..<4 {
      let address = UInt64(0x20_0000 + level * 0x1000)
      let entry = UInt64(0x30_0000 + level * 0x1000) | 1 | (level == readOnlyLevel ? 0 : 2)
      FakeTables.entries[address] = entry
      cache.record(entry: entry, at: address, allowsWrite: entry & 2 != 0)
    }
    cache.finish(machine: 0x55_5678, writable: writable)
    return cache
  }

  @Test func answersWhileEveryEntryHoldsWhatTheWalkRead() {
    tablesLock.withLock { _ in
      var cache = recordedWalk()
      #expect(cache.lookup(0x7000_1FF8, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == 0x55_5FF8)
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: true, writeProtect: true, generation: 3, FakeTables.self) == 0x55_5000)
      // Another page, another root, another p2m generation: walk again.
      #expect(cache.lookup(0x7000_2000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
      #expect(cache.lookup(0x7000_1000, root: 0x11_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 4, FakeTables.self) == nil)
      // The guest changed one entry (no flush the hypervisor could see): walk again.
      FakeTables.entries[0x20_2000]! ^= 0x1000
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
      FakeTables.entries[0x20_2000]! ^= 0x1000
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == 0x55_5000)
    }
  }

  @Test func writesNeedEveryLevelWritableOrWriteProtectOff() {
    tablesLock.withLock { _ in
      var cache = recordedWalk(readOnlyLevel: 2)
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == 0x55_5000)
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: true, writeProtect: true, generation: 3, FakeTables.self) == nil)
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: true, writeProtect: false, generation: 3, FakeTables.self) == 0x55_5000)
      // A page the p2m let only be read (or not known writable: a read walk filled it).
      var readWalk = recordedWalk(writable: false)
      #expect(readWalk.lookup(0x7000_1000, root: 0x10_0000, write: true, writeProtect: false, generation: 3, FakeTables.self) == nil)
    }
  }

  /// A grant unmap forgets a walk that read an entry in, or ended on, the frame that went,
  /// and keeps any other.
  @Test func forgettingAFrameDropsOnlyAWalkThroughIt() {
    tablesLock.withLock { _ in
      var cache = recordedWalk()
      cache.forget(frame: 0x66_6000)
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == 0x55_5000)
      cache.forget(frame: 0x55_5000)                        // the page it ended on
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
      cache = recordedWalk()
      cache.forget(frame: 0x20_2000)                        // a page table it read
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
    }
  }

  @Test func aWalkThatDidNotFinishIsNotCached() {
    tablesLock.withLock { _ in
      var cache = recordedWalk()
      cache.begin(0x9000_0000, root: 0x10_0000, generation: 3)
      cache.record(entry: 0x40_0003, at: 0x20_0000, allowsWrite: true)
      // No finish (the walk hit a non-present entry): neither the old page nor the new answers.
      #expect(cache.lookup(0x7000_1000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
      #expect(cache.lookup(0x9000_0000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
      // More entries than any walk reads: never cached.
      cache.begin(0x9000_0000, root: 0x10_0000, generation: 3)
      for level in 0...GuestWalkCache.maximumLevels {
        FakeTables.entries[UInt64(level) * 8] = 3
        cache.record(entry: 3, at: UInt64(level) * 8, allowsWrite: true)
      }
      cache.finish(machine: 0x1000, writable: true)
      #expect(cache.lookup(0x9000_0000, root: 0x10_0000, write: false, writeProtect: true, generation: 3, FakeTables.self) == nil)
    }
  }
}
