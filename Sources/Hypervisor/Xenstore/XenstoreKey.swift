// The store's table is keyed by node names, and every request looks names up in it, often
// several times (the node, its parent, a watch's node). The standard library hashes an array
// with SipHash, byte by byte: about a thousand instructions of each xenstore round trip went to
// that alone (docs/xenstore.md, "Speed").

/// A node's absolute name as the key of the store's table: hashed with FNV-1a over its bytes,
/// once, when the key is made (or as the name is built: `XenstorePath.canonical`), and finished
/// with the table's seed and a 64-bit mix each time the table asks.
///
/// Not a keyed hash: a domain could choose names whose FNV values collide, whatever the seed.
/// What that costs is bounded as in xenstored (whose table hash has no key at all): a domain
/// owns at most `nodesPerDomain` nodes, so a lookup compares against at most the store's size.
///
/// The bytes are a slice so that a lookup can be keyed by part of a buffer the caller keeps
/// (the fast read's name, `XenstoreConnection.nameBuffer`) without copying it out. A key in the
/// table is always a whole array of its own (`init(_:)`).
struct XenstoreKey: Hashable, Sendable {
  let bytes: ArraySlice<UInt8>
  /// FNV-1a of `bytes`, from `fnvBasis`.
  let fnv: UInt64

  init(_ bytes: [UInt8]) { self.init(bytes[...], fnv: Self.fnv(bytes[...])) }

  /// A lookup key over part of a buffer, whose FNV-1a the caller has computed while it checked
  /// it. Never stored in the table: it would keep the whole buffer alive, and the buffer's next
  /// change would copy it.
  init(_ bytes: ArraySlice<UInt8>, fnv: UInt64) {
    self.bytes = bytes
    self.fnv = fnv
  }

  static func == (a: XenstoreKey, b: XenstoreKey) -> Bool { a.fnv == b.fnv && ByteComparison.equal(a.bytes, b.bytes) }

  func hash(into hasher: inout Hasher) { hasher.combine(fnv) }

  /// What `Dictionary` asks for: this hash directly, without a `Hasher` around it.
  func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: Self.mix(fnv ^ UInt64(bitPattern: Int64(seed)))) }

  static let fnvBasis: UInt64 = 0xCBF2_9CE4_8422_2325

  /// One byte more of an FNV-1a hash.
  @inline(__always) static func fnv(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
    (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
  }

  static func fnv(_ bytes: ArraySlice<UInt8>, from start: UInt64 = fnvBasis) -> UInt64 {
    var h = start
    for byte in bytes { h = fnv(h, byte) }
    return h
  }

  /// MurmurHash3's finalizer: FNV's low bits, which pick the bucket, depend on every byte.
  static func mix(_ value: UInt64) -> UInt64 {
    var h = value
    h ^= h >> 33
    h &*= 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h &*= 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
  }
}
