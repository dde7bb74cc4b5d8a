// The store's table is keyed by node names, and every request looks names up in it, often
// several times (the node, its parent, a watch's node). The standard library hashes an array
// with SipHash, byte by byte: about a thousand instructions of each xenstore round trip went to
// that alone (docs/xenstore.md, "Speed").

/// A node's absolute name as the key of the store's table: hashed with FNV-1a over its bytes,
/// started from the table's seed and finished with a 64-bit mix, a few instructions per byte.
///
/// Not a keyed hash: a domain that knows the seed could choose names that share buckets. What
/// that costs is bounded as in xenstored (whose table hash has no key at all): a domain owns at
/// most `nodesPerDomain` nodes, so a lookup compares against at most the store's size.
struct XenstoreKey: Hashable, Sendable {
  var bytes: [UInt8]

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  static func == (a: XenstoreKey, b: XenstoreKey) -> Bool { a.bytes == b.bytes }

  func hash(into hasher: inout Hasher) { hasher.combine(Self.hash(bytes, seed: 0)) }

  /// What `Dictionary` asks for: this hash directly, without a `Hasher` around it.
  func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: Self.hash(bytes, seed: UInt64(bitPattern: Int64(seed)))) }

  static func hash(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
    for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    // MurmurHash3's finalizer: FNV's low bits, which pick the bucket, depend on every byte.
    h ^= h >> 33
    h &*= 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h &*= 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
  }
}
