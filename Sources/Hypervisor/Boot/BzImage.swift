// Unwrapping a Linux bzImage to the ELF vmlinux inside it, as Xen's bzimage loaders do.
//
// A bzImage is real-mode setup code followed by a compressed kernel. The setup header
// (Documentation/arch/x86/boot.rst) says where the compressed payload is:
//   0x1F1  u8   setup_sects: 512-byte setup sectors after the boot sector (0 means 4)
//   0x202  u32  header magic "HdrS"
//   0x206  u16  boot protocol version; payload_offset/length exist from 2.08
//   0x248  u32  payload_offset, from the start of the protected-mode code
//   0x24C  u32  payload_length, which includes the trailing size
// The protected-mode code starts at (setup_sects + 1) * 512. The payload ends with the
// uncompressed size as a little-endian u32 (Linux's size_append), which is checked against the
// result. Debian's kernels use LZ4 (the legacy format); other compressions are named and refused.

/// bzImage unwrapping.
public enum BzImage {
  /// The largest kernel accepted after decompression.
  public static let maxKernelSize = 512 << 20

  enum Offset {
    static let setupSectors = 0x1F1
    static let magic = 0x202
    static let version = 0x206
    static let payloadOffset = 0x248
    static let payloadLength = 0x24C
  }

  /// Boot protocol 2.08, the first with payload_offset and payload_length.
  public static let minimumVersion: UInt16 = 0x0208

  /// True when `bytes` has a Linux setup header ("HdrS" at 0x202).
  public static func isBzImage<Bytes: RandomAccessCollection>(
    _ bytes: Bytes
  ) -> Bool where Bytes.Element == UInt8, Bytes.Index == Int {
    let file = BoundedByteReader(bytes: bytes, limit: bytes.count)
    return bytes.count >= Offset.magic + 4 && file.u32(Offset.magic) == 0x5372_6448  // "HdrS"
  }

  /// The byte range of the compressed payload, trailing size included.
  public static func payload<Bytes: RandomAccessCollection>(
    _ bytes: Bytes
  ) throws(BzImageError) -> Range<Int> where Bytes.Element == UInt8, Bytes.Index == Int {
    guard isBzImage(bytes) else { throw .notBzImage }
    guard bytes.count >= Offset.payloadLength + 4 else { throw .truncatedHeader }
    let file = BoundedByteReader(bytes: bytes, limit: bytes.count)
    let version = file.u16(Offset.version)
    guard version >= minimumVersion else { throw .protocolTooOld(version) }
    var setupSectors = Int(file.u8(Offset.setupSectors))
    if setupSectors == 0 { setupSectors = 4 }
    let start = UInt64((setupSectors + 1) * 512) + UInt64(file.u32(Offset.payloadOffset))
    let length = UInt64(file.u32(Offset.payloadLength))
    guard let range = BootBundle.range(start, length, within: bytes.count) else { throw .payloadOutsideFile }
    return range
  }

  /// Decompresses the kernel inside a bzImage and returns the ELF file.
  public static func extractELF<Bytes: RandomAccessCollection>(
    _ bytes: Bytes
  ) throws(BzImageError) -> [UInt8] where Bytes.Element == UInt8, Bytes.Index == Int {
    let payload = try payload(bytes)
    guard payload.count >= 8 else { throw .payloadTooShort }
    let file = BoundedByteReader(bytes: bytes, limit: bytes.count)
    let compression = Compression(magic: file, at: payload.lowerBound)
    guard compression == .lz4 else { throw .unsupportedCompression(compression.name) }

    // The last 4 bytes are the uncompressed size, not part of the stream.
    let stream = payload.lowerBound..<(payload.upperBound - 4)
    let expected = Int(file.u32(stream.upperBound))
    guard expected <= maxKernelSize else { throw .kernelTooLarge(expected) }
    let elf: [UInt8]
    do {
      elf = try LZ4.decompressLegacy(bytes, stream, limit: expected, expectedSize: expected)
    } catch {
      throw .decompression(error)
    }
    guard elf.count == expected else { throw .sizeMismatch(expected: expected, actual: elf.count) }
    guard elf.count >= 4, elf[0] == 0x7F, elf[1] == 0x45, elf[2] == 0x4C, elf[3] == 0x46 else {
      throw .payloadNotELF
    }
    return elf
  }

  /// The compressions Linux can build a bzImage with, told apart by their magic.
  public enum Compression: Equatable, Sendable {
    case lz4
    case gzip
    case bzip2
    case lzma
    case xz
    case lzo
    case zstd
    case unknown

    init<Bytes>(magic file: BoundedByteReader<Bytes>, at offset: Int) {
      func starts(with magic: [UInt8]) -> Bool {
        magic.indices.allSatisfy { file.u8(offset + $0) == magic[$0] }
      }
      if starts(with: [0x02, 0x21, 0x4C, 0x18]) {
        self = .lz4
      } else if starts(with: [0x1F, 0x8B]) {
        self = .gzip
      } else if starts(with: [0x42, 0x5A, 0x68]) {
        self = .bzip2
      } else if starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
        self = .xz
      } else if starts(with: [0x89, 0x4C, 0x5A, 0x4F]) {
        self = .lzo
      } else if starts(with: [0x28, 0xB5, 0x2F, 0xFD]) {
        self = .zstd
      } else if starts(with: [0x5D, 0x00, 0x00]) {
        self = .lzma
      } else {
        self = .unknown
      }
    }

    public var name: [UInt8] {
      switch self {
      case .lz4: return Array("lz4".utf8)
      case .gzip: return Array("gzip".utf8)
      case .bzip2: return Array("bzip2".utf8)
      case .lzma: return Array("lzma".utf8)
      case .xz: return Array("xz".utf8)
      case .lzo: return Array("lzo".utf8)
      case .zstd: return Array("zstd".utf8)
      case .unknown: return Array("unknown".utf8)
      }
    }
  }
}

/// Why a bzImage could not be unwrapped.
public enum BzImageError: Error, Equatable, Sendable {
  /// No "HdrS" setup header.
  case notBzImage
  case truncatedHeader
  /// Boot protocol before 2.08: no payload fields.
  case protocolTooOld(UInt16)
  case payloadOutsideFile
  case payloadTooShort
  /// The payload is compressed with something other than LZ4 (its name).
  case unsupportedCompression([UInt8])
  case kernelTooLarge(Int)
  case decompression(LZ4Error)
  /// The result's size differs from the size the bzImage records.
  case sizeMismatch(expected: Int, actual: Int)
  case payloadNotELF

  public func message() -> [UInt8] {
    var text = MessageText()
    text.add("bzImage: ")
    switch self {
    case .notBzImage: text.add("no Linux setup header (\"HdrS\" at 0x202)")
    case .truncatedHeader: text.add("setup header is truncated")
    case .protocolTooOld(let version):
      text.add("boot protocol ")
      text.addHex(UInt64(version))
      text.add(" is older than 2.08")
    case .payloadOutsideFile: text.add("payload lies outside the file")
    case .payloadTooShort: text.add("payload is too short")
    case .unsupportedCompression(let name):
      text.add("kernel is compressed with ")
      text.add(name)
      text.add("; only lz4 is supported (or pass the uncompressed vmlinux)")
    case .kernelTooLarge(let size):
      text.add("kernel of ")
      text.add(size)
      text.add(" bytes is too large")
    case .decompression(let error):
      text.add(error.message())
    case .sizeMismatch(let expected, let actual):
      text.add("decompressed to ")
      text.add(actual)
      text.add(" bytes, expected ")
      text.add(expected)
    case .payloadNotELF: text.add("decompressed kernel is not an ELF file")
    }
    return text.bytes
  }
}
