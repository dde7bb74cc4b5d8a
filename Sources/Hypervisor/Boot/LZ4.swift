// LZ4 decompression, for the LZ4-compressed kernels Debian ships.
//
// A block is a series of sequences. Each sequence is:
//   token          high 4 bits: literal length, low 4 bits: match length - 4
//   [length bytes] when a 4-bit length is 15, bytes follow and are added to it; a byte of 255
//                  means another byte follows
//   literals       copied as they are
//   offset         u16 little-endian: how far back in the output the match starts (1 or more)
//   [length bytes] the match length's extension, as above
// The last sequence of a block has literals only. A match may overlap its own output (offset 1
// repeats one byte), so it is copied byte by byte.
//
// The legacy stream (`lz4 -l`, what Linux's bzImage uses) is the magic 0x184C2102 followed by
// blocks, each `[u32 compressed length][block]`, each decompressing to at most 8 MiB and
// independent of the others. A length equal to the magic starts a new stream.
//
// The input is untrusted: every length, offset and copy is checked, and the output is capped.

/// LZ4 block and legacy-stream decompression.
public enum LZ4 {
  /// The legacy stream's magic (little-endian).
  public static let legacyMagic: UInt32 = 0x184C_2102
  /// Largest output of one legacy block.
  public static let legacyBlockSize = 8 << 20
  /// Largest compressed legacy block: LZ4_compressBound(8 MiB).
  public static let legacyMaxCompressedBlock = legacyBlockSize + legacyBlockSize / 255 + 16

  /// Decompresses the block `input[range]` and appends the result to `output`, appending at
  /// most `maximumOutput` bytes. Matches reach back only into this block's output.
  public static func decompressBlock<Bytes: RandomAccessCollection>(
    _ input: Bytes, _ range: Range<Int>, into output: inout [UInt8], maximumOutput: Int
  ) throws(LZ4Error) where Bytes.Element == UInt8, Bytes.Index == Int {
    guard range.lowerBound >= input.startIndex, range.upperBound <= input.endIndex else { throw .truncated }
    let end = range.upperBound
    let blockStart = output.count
    let outputLimit = output.count + max(0, maximumOutput)
    var position = range.lowerBound

    while true {
      guard position < end else { throw .truncated }
      let token = input[position]
      position += 1

      var literalLength = Int(token >> 4)
      if literalLength == 15 {
        literalLength += try lengthExtension(input, &position, end: end)
      }
      guard literalLength <= end - position else { throw .truncated }
      guard literalLength <= outputLimit - output.count else { throw .outputLimitExceeded }
      output.append(contentsOf: input[position..<(position + literalLength)])
      position += literalLength
      if position == end { return }

      guard end - position >= 2 else { throw .truncated }
      let offset = Int(input[position]) | Int(input[position + 1]) << 8
      position += 2
      guard offset != 0 else { throw .zeroOffset }
      guard offset <= output.count - blockStart else {
        throw .offsetBeyondOutput(offset: offset, available: output.count - blockStart)
      }

      var matchLength = Int(token & 0x0F)
      if matchLength == 15 {
        matchLength += try lengthExtension(input, &position, end: end)
      }
      matchLength += 4
      guard matchLength <= outputLimit - output.count else { throw .outputLimitExceeded }
      var from = output.count - offset
      for _ in 0..<matchLength {
        output.append(output[from])
        from += 1
      }
    }
  }

  /// The bytes added to a length of 15: each byte is added, and 255 means another follows.
  private static func lengthExtension<Bytes: RandomAccessCollection>(
    _ input: Bytes, _ position: inout Int, end: Int
  ) throws(LZ4Error) -> Int where Bytes.Element == UInt8, Bytes.Index == Int {
    var total = 0
    while true {
      guard position < end else { throw .truncated }
      let byte = input[position]
      position += 1
      total += Int(byte)
      // Every extension byte needs an input byte, so this bounds total far below overflow;
      // the output limit then refuses what is too long.
      guard total <= Int(Int32.max) else { throw .outputLimitExceeded }
      if byte != 255 { return total }
    }
  }

  /// Decompresses a legacy stream held in `input[range]`, producing at most `limit` bytes.
  /// `expectedSize`, when known, is reserved up front so a large kernel is not copied as the
  /// output grows.
  public static func decompressLegacy<Bytes: RandomAccessCollection>(
    _ input: Bytes, _ range: Range<Int>, limit: Int, expectedSize: Int = 0
  ) throws(LZ4Error) -> [UInt8] where Bytes.Element == UInt8, Bytes.Index == Int {
    guard range.lowerBound >= input.startIndex, range.upperBound <= input.endIndex else { throw .truncated }
    let end = range.upperBound
    var position = range.lowerBound
    guard end - position >= 4, readLE32(input, position) == legacyMagic else { throw .badMagic }
    position += 4

    var output: [UInt8] = []
    output.reserveCapacity(max(0, min(expectedSize, limit)))
    while position < end {
      guard end - position >= 4 else { throw .truncated }
      let length = readLE32(input, position)
      position += 4
      if length == legacyMagic { continue }
      guard length > 0, Int(length) <= legacyMaxCompressedBlock else { throw .badBlockLength(length) }
      let blockLength = Int(length)
      guard blockLength <= end - position else { throw .truncated }
      let allowed = min(legacyBlockSize, limit - output.count)
      try decompressBlock(input, position..<(position + blockLength), into: &output, maximumOutput: allowed)
      position += blockLength
    }
    return output
  }

  static func readLE32<Bytes: RandomAccessCollection>(
    _ input: Bytes, _ position: Int
  ) -> UInt32 where Bytes.Element == UInt8, Bytes.Index == Int {
    UInt32(input[position]) | UInt32(input[position + 1]) << 8 | UInt32(input[position + 2]) << 16
      | UInt32(input[position + 3]) << 24
  }
}

/// Why LZ4 data could not be decompressed.
public enum LZ4Error: Error, Equatable, Sendable {
  /// The stream does not start with the legacy magic.
  case badMagic
  /// The input ends inside a token, length, literal run, offset or block.
  case truncated
  /// A match offset of 0 (never valid).
  case zeroOffset
  /// A match reaching before the start of the block's output.
  case offsetBeyondOutput(offset: Int, available: Int)
  /// The output would exceed the block size or the caller's limit.
  case outputLimitExceeded
  /// A legacy block length of 0 or larger than a compressed 8 MiB block can be.
  case badBlockLength(UInt32)

  public func message() -> [UInt8] {
    var text = MessageText()
    text.add("LZ4: ")
    switch self {
    case .badMagic: text.add("not a legacy LZ4 stream (bad magic)")
    case .truncated: text.add("compressed data is truncated")
    case .zeroOffset: text.add("match offset 0")
    case .offsetBeyondOutput(let offset, let available):
      text.add("match offset ")
      text.add(offset)
      text.add(" reaches before the block start (")
      text.add(available)
      text.add(" bytes decoded)")
    case .outputLimitExceeded: text.add("output exceeds its size limit")
    case .badBlockLength(let length):
      text.add("invalid block length ")
      text.add(UInt(length))
    }
    return text.bytes
  }
}
