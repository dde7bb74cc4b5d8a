// The store's table is keyed by node names, and every request looks names up in it, often
// several times (the node, its parent, a watch's node). The standard library hashes an array
// with SipHash, byte by byte: about a thousand instructions of each xenstore round trip went to
// that alone (docs/xenstore.md, "Speed").

/// A node's absolute name as the key of the store's table: hashed eight bytes at a time
/// (`hash`), once, when the key is made (or as the name is checked: `XenstorePath.check`),
/// and finished with the table's seed and a 64-bit mix each time the table asks.
///
/// Not a keyed hash: a domain could choose names whose hashes collide, whatever the seed.
/// What that costs is bounded as in xenstored (whose table hash has no key at all): a domain
/// owns at most `nodesPerDomain` nodes, so a lookup compares against at most the store's size.
///
/// The bytes are a slice so that a lookup can be keyed by part of a buffer the caller keeps
/// (the fast read's name, `XenstoreConnection.nameBuffer`) without copying it out. A key in the
/// table is always a whole array of its own (`init(_:)`).
struct XenstoreKey: Hashable, Sendable {
  let bytes: ArraySlice<UInt8>
  /// `hash(bytes)`.
  let nameHash: UInt64

  init(_ bytes: [UInt8]) { self.init(bytes[...], nameHash: Self.hash(bytes[...])) }

  /// A lookup key over part of a buffer, whose hash (`hash`) the caller has computed already
  /// (`XenstorePath.check` returns it). Never stored in the table: it would keep the whole buffer alive, and the buffer's next
  /// change would copy it.
  init(_ bytes: ArraySlice<UInt8>, nameHash: UInt64) {
    self.bytes = bytes
    self.nameHash = nameHash
  }

  static func == (a: XenstoreKey, b: XenstoreKey) -> Bool {
    a.nameHash == b.nameHash && ByteComparison.equal(a.bytes, b.bytes)
  }

  func hash(into hasher: inout Hasher) { hasher.combine(nameHash) }

  /// What `Dictionary` asks for: this hash directly, without a `Hasher` around it.
  func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: Self.mix(nameHash ^ UInt64(bitPattern: Int64(seed)))) }

  /// A name's hash: its length, then each eight bytes multiplied in and folded (the high half
  /// of a product into its low half, so a byte's change reaches every bit before the next
  /// word). A name of eight bytes or more ends with its last eight, which may overlap the word
  /// before: with the length hashed first, the same bytes always give the same words.
  @inline(__always) static func hash(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    let count = bytes.count
    var h = 0x9E37_79B9_7F4A_7C15 ^ UInt64(count)
    guard count >= 8 else { return step(h, ByteWords.loadShort(bytes, fill: 0)) }
    // One view of the bytes for the whole loop: a view per word cost about ten instructions.
    return unsafe bytes.withUnsafeBytes { view in   // unsafe: each load is of eight bytes ending at or before `count`, the view's length
      var offset = 0
      while offset <= count &- 8 {
        h = step(h, unsafe view.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        offset &+= 8
      }
      if offset < count { h = step(h, unsafe view.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)) }
      return h
    }
  }

  @inline(__always) static func step(_ h: UInt64, _ word: UInt64) -> UInt64 {
    let product = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
    return product ^ (product >> 32)
  }

  /// MurmurHash3's finalizer: the bucket is picked by the low bits, which then depend on every bit.
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
