/// Byte strings compared eight bytes at a time. The store's table compares the name of every
/// lookup with the names in its bucket (`XenstoreKey`), and the standard library's element loop
/// over two slices costs about eleven instructions a byte at -Osize.
public enum ByteComparison {
  /// Whether `a` and `b` hold the same bytes.
  public static func equal(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
    let count = a.count
    guard count == b.count else { return false }
    return unsafe a.withUnsafeBytes { x in   // unsafe: both views are `count` bytes long; every load below ends inside them
      unsafe b.withUnsafeBytes { y in
        var offset = 0
        while offset + 8 <= count {
          guard unsafe x.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            == y.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
          offset += 8
        }
        // A tail of a string of eight bytes or more: its last eight, which overlap bytes
        // already compared, in one compare instead of a byte loop.
        if offset < count, count >= 8 {
          return unsafe x.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            == y.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        }
        while offset < count {
          guard unsafe x[offset] == y[offset] else { return false }
          offset += 1
        }
        return true
      }
    }
  }
}

/// Byte strings read as little-endian words: the store hashes every name a request carries
/// eight bytes at a time (`XenstoreKey.hash`), where a loop a byte at a time spent four
/// instructions a byte and a loop-carried multiply; a name shorter than a word is one word.
public enum ByteWords {
  /// The slice's bytes (its first seven at most) in a word whose other bytes are `fill`: a name
  /// shorter than a word is hashed as one word.
  @inline(__always) public static func loadShort(_ bytes: ArraySlice<UInt8>, fill: UInt8) -> UInt64 {
    var word = UInt64(fill) &* 0x0101_0101_0101_0101
    var shift: UInt64 = 0
    for byte in bytes.prefix(7) {
      word = (word & ~(0xFF << shift)) | UInt64(byte) << shift
      shift += 8
    }
    return word
  }
}
