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
        while offset < count {
          guard unsafe x[offset] == y[offset] else { return false }
          offset += 1
        }
        return true
      }
    }
  }
}
