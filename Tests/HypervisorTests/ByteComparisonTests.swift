import Testing

@testable import Hypervisor

struct ByteComparisonTests {
  /// Word-at-a-time comparison against the element loop, on slices of every length from 0 to
  /// 40 at every start offset up to 9 (so every alignment), equal and differing in one byte.
  @Test func equalAgreesWithTheElementLoop() {
    var random = SplitMix64(seed: 0xB17E)
    let base = (0..<64).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    for count in 0...40 {
      for aStart in 0..<10 {
        for bStart in 0..<10 {
          var other = base
          let a = base[aStart..<(aStart + count)]
          // b holds a's bytes at another offset, then one of them changed.
          for i in 0..<count { other[bStart + i] = a[aStart + i] }
          #expect(ByteComparison.equal(a, other[bStart..<(bStart + count)]))
          if count > 0 {
            let changed = bStart + Int(random.next() % UInt64(count))
            other[changed] &+= 1
            #expect(!ByteComparison.equal(a, other[bStart..<(bStart + count)]))
          }
          #expect(!ByteComparison.equal(a, base[bStart..<(bStart + count + 1)]))
        }
      }
    }
  }
}
