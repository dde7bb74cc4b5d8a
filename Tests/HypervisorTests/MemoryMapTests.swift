import Testing

@testable import Hypervisor

private let KiB: UInt64 = 1024
private let MiB: UInt64 = 1024 * KiB

private func region(_ base: UInt64, _ length: UInt64, _ kind: MemoryRegion.Kind) -> MemoryRegion {
  MemoryRegion(base: base, length: length, kind: kind)
}

@Suite struct MemoryMapTests {
  @Test func regionEndSaturates() {
    #expect(region(0x1000, 0x2000, .ram).end == 0x3000)
    #expect(region(UInt64.max - 10, 100, .ram).end == UInt64.max)
  }

  @Test func emptyMap() {
    let map = MemoryMap()
    #expect(map.regions.isEmpty)
    #expect(map.totalRAM == 0)
    #expect(map.highestRAMAddress == 0)
    #expect(map.usableRanges(excluding: []).isEmpty)
  }

  @Test func sortsUnsortedEntries() {
    var map = MemoryMap()
    map.add(region(16 * MiB, MiB, .ram))
    map.add(region(0, 640 * KiB, .ram))
    map.add(region(0xF0000, 0x10000, .reserved))
    #expect(map.regions == [
      region(0, 640 * KiB, .ram),
      region(0xF0000, 0x10000, .reserved),
      region(16 * MiB, MiB, .ram),
    ])
  }

  @Test func mergesAdjacentSameKind() {
    var map = MemoryMap()
    map.add(region(0, MiB, .ram))
    map.add(region(2 * MiB, MiB, .ram))
    map.add(region(MiB, MiB, .ram))
    #expect(map.regions == [region(0, 3 * MiB, .ram)])
  }

  @Test func doesNotMergeDifferentKindsOrGaps() {
    var map = MemoryMap()
    map.add(region(0, MiB, .ram))
    map.add(region(MiB, MiB, .acpiReclaimable))
    map.add(region(3 * MiB, MiB, .acpiReclaimable))
    #expect(map.regions.count == 3)
  }

  @Test func ignoresZeroLength() {
    var map = MemoryMap()
    map.add(region(0x1000, 0, .reserved))
    #expect(map.regions.isEmpty)
    map.add(region(0, MiB, .ram))
    map.add(region(0x1000, 0, .reserved))
    #expect(map.regions == [region(0, MiB, .ram)])
  }

  @Test func reservedInsideRAMSplitsIt() {
    var map = MemoryMap()
    map.add(region(0, 4 * MiB, .ram))
    map.add(region(MiB, MiB, .reserved))
    #expect(map.regions == [
      region(0, MiB, .ram),
      region(MiB, MiB, .reserved),
      region(2 * MiB, 2 * MiB, .ram),
    ])
  }

  @Test func ramAddedOverReservedDoesNotWin() {
    var map = MemoryMap()
    map.add(region(MiB, MiB, .reserved))
    map.add(region(0, 4 * MiB, .ram))
    #expect(map.regions == [
      region(0, MiB, .ram),
      region(MiB, MiB, .reserved),
      region(2 * MiB, 2 * MiB, .ram),
    ])
  }

  @Test func partialOverlapOnBothSides() {
    var map = MemoryMap()
    map.add(region(0, 2 * MiB, .ram))
    map.add(region(3 * MiB, 2 * MiB, .ram))
    // Covers the end of the first, the gap and the start of the second.
    map.add(region(MiB, 3 * MiB, .acpiNVS))
    #expect(map.regions == [
      region(0, MiB, .ram),
      region(MiB, 3 * MiB, .acpiNVS),
      region(4 * MiB, MiB, .ram),
    ])
  }

  @Test func moreRestrictiveKindWins() {
    // acpiReclaimable < acpiNVS < reserved < unusable, in both insertion orders.
    let order: [MemoryRegion.Kind] = [.ram, .acpiReclaimable, .acpiNVS, .reserved, .unusable]
    for (i, weaker) in order.enumerated() {
      for stronger in order[i...] {
        var first = MemoryMap()
        first.add(region(0, MiB, weaker))
        first.add(region(0, MiB, stronger))
        var second = MemoryMap()
        second.add(region(0, MiB, stronger))
        second.add(region(0, MiB, weaker))
        #expect(first.regions == [region(0, MiB, stronger)])
        #expect(second.regions == [region(0, MiB, stronger)])
      }
    }
  }

  @Test func identicalDuplicateEntries() {
    var map = MemoryMap()
    map.add(region(0, MiB, .ram))
    map.add(region(0, MiB, .ram))
    #expect(map.regions == [region(0, MiB, .ram)])
    #expect(map.totalRAM == MiB)
  }

  @Test func totalsAndHighestRAM() {
    var map = MemoryMap()
    map.add(region(0, 640 * KiB, .ram))
    map.add(region(MiB, 127 * MiB, .ram))
    map.add(region(0xFEC0_0000, 0x1000, .reserved))
    map.add(region(4096 * MiB, 64 * MiB, .ram))
    map.add(region(5000 * MiB, MiB, .reserved))
    #expect(map.totalRAM == 640 * KiB + 127 * MiB + 64 * MiB)
    #expect(map.highestRAMAddress == 4160 * MiB)
  }

  @Test func entryReachingTopOfAddressSpace() {
    var map = MemoryMap()
    map.add(region(UInt64.max - 0xFFFF, 0x20000, .reserved))
    #expect(map.regions == [region(UInt64.max - 0xFFFF, 0xFFFF, .reserved)])
    map.add(region(0, MiB, .ram))
    #expect(map.regions.count == 2)
  }

  @Test func usableRangesAlignsInward() {
    var map = MemoryMap()
    map.add(region(0x500, 0x3000, .ram))  // 0x500..<0x3500 -> 0x1000..<0x3000
    map.add(region(0x10000, 0x800, .ram))  // less than a page once aligned -> dropped
    #expect(map.usableRanges(excluding: []) == [0x1000..<0x3000])
  }

  @Test func usableRangesExcludesRanges() {
    var map = MemoryMap()
    map.add(region(0, 640 * KiB, .ram))
    map.add(region(MiB, 63 * MiB, .ram))
    map.add(region(0xA0000, 0x60000, .reserved))
    let image = (MiB)..<(MiB + 0x12345)  // ends mid-page
    let module = (8 * MiB + 10)..<(9 * MiB)  // starts mid-page
    let ranges = map.usableRanges(excluding: [module, image])
    #expect(ranges == [
      0..<(640 * KiB),
      (MiB + 0x13000)..<(8 * MiB),
      (9 * MiB)..<(64 * MiB),
    ])
  }

  @Test func usableRangesExclusionCoveringEverything() {
    var map = MemoryMap()
    map.add(region(MiB, MiB, .ram))
    #expect(map.usableRanges(excluding: [0..<(4 * MiB)]).isEmpty)
    #expect(map.usableRanges(excluding: [(MiB)..<(MiB)]) == [(MiB)..<(2 * MiB)])
  }

  @Test func usableRangesSplitByManyExclusions() {
    var map = MemoryMap()
    map.add(region(0, 16 * 4096, .ram))
    var excluded: [Range<UInt64>] = []
    var expected: [Range<UInt64>] = []
    for i: UInt64 in 0..<8 {
      expected.append((2 * i * 4096)..<((2 * i + 1) * 4096))
      excluded.append(((2 * i + 1) * 4096)..<((2 * i + 2) * 4096))
    }
    #expect(map.usableRanges(excluding: excluded) == expected)
  }
}
