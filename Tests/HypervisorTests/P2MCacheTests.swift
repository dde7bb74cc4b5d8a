import Testing

@testable import Hypervisor

@Suite struct P2MCacheTests {
  @Test func answersOnlyForTheSamePageAndGeneration() {
    var cache = P2MCache()
    #expect(cache.lookup(0x1234, write: false, generation: 0) == nil)
    cache.fill(0x1234, machine: 0xABC_D234, writable: true, generation: 5)
    #expect(cache.lookup(0x1FF8, write: false, generation: 5) == 0xABC_DFF8)
    #expect(cache.lookup(0x1000, write: true, generation: 5) == 0xABC_D000)
    // Any change to a p2m since: the entry is stale.
    #expect(cache.lookup(0x1234, write: false, generation: 6) == nil)
    // Another page that shares the slot is not mistaken for it.
    #expect(cache.lookup(0x1234 + UInt64(P2MCache.slots) * 4096, write: false, generation: 5) == nil)
    // Guest frame 0 is a page like any other (the tag is the frame plus one).
    cache.fill(0x10, machine: 0x7000, writable: true, generation: 5)
    #expect(cache.lookup(0x20, write: false, generation: 5) == 0x7020)
  }

  @Test func aReadOnlyPageIsNotGivenForAWrite() {
    var cache = P2MCache()
    cache.fill(0x5000, machine: 0x9000, writable: false, generation: 1)
    #expect(cache.lookup(0x5008, write: false, generation: 1) == 0x9008)
    #expect(cache.lookup(0x5008, write: true, generation: 1) == nil)
  }

  @Test func theLastFillOfASlotWins() {
    var cache = P2MCache()
    let other = UInt64(P2MCache.slots) * 4096
    cache.fill(0x3000, machine: 0x10_0000, writable: true, generation: 2)
    cache.fill(0x3000 + other, machine: 0x20_0000, writable: true, generation: 2)
    #expect(cache.lookup(0x3000, write: false, generation: 2) == nil)
    #expect(cache.lookup(0x3000 + other, write: false, generation: 2) == 0x20_0000)
    // The highest guest frame (gpa below 2^48, so the tag cannot wrap) is cached as well.
    let top: UInt64 = (1 << 48) - 4096
    cache.fill(top, machine: 0x30_0000, writable: true, generation: 2)
    #expect(cache.lookup(top + 8, write: false, generation: 2) == 0x30_0008)
  }

  /// A grant unmap's change: only the page that went is forgotten; the others still answer.
  @Test func forgettingAPageKeepsTheOthers() {
    var cache = P2MCache()
    cache.fill(0x3000, machine: 0x10_0000, writable: true, generation: 2)
    cache.fill(0x4000, machine: 0x20_0000, writable: true, generation: 2)
    cache.forget(0x3)
    #expect(cache.lookup(0x3000, write: false, generation: 2) == nil)
    #expect(cache.lookup(0x4000, write: false, generation: 2) == 0x20_0000)
    // A page sharing the forgotten one's slot is not forgotten in its place.
    let other = UInt64(P2MCache.slots)
    cache.fill(0x3000 + other * 4096, machine: 0x30_0000, writable: true, generation: 2)
    cache.forget(0x3)
    #expect(cache.lookup(0x3000 + other * 4096, write: false, generation: 2) == 0x30_0000)
  }
}
