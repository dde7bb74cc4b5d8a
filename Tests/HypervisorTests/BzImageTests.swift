import Testing

@testable import Hypervisor

/// A synthetic bzImage: boot sector and setup sectors with a setup header, then the payload
/// (an LZ4 legacy stream and the uncompressed size) at `payloadOffset` into the protected-mode part.
private func bzImage(
  stream: [UInt8], uncompressedSize: Int, setupSectors: UInt8 = 2, version: UInt16 = 0x020F,
  payloadOffset: Int = 0x3C0
) -> [UInt8] {
  let sectors = setupSectors == 0 ? 4 : Int(setupSectors)
  let payload = stream + (0..<4).map { UInt8(truncatingIfNeeded: uncompressedSize >> (8 * $0)) }
  var image = [UInt8](repeating: 0, count: (sectors + 1) * 512 + payloadOffset)
  image[0x1F1] = setupSectors
  image[0x1FE] = 0x55
  image[0x1FF] = 0xAA
  image.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
  image[0x206] = UInt8(truncatingIfNeeded: version)
  image[0x207] = UInt8(truncatingIfNeeded: version >> 8)
  for i in 0..<4 {
    image[0x248 + i] = UInt8(truncatingIfNeeded: payloadOffset >> (8 * i))
    image[0x24C + i] = UInt8(truncatingIfNeeded: payload.count >> (8 * i))
  }
  return image + payload + [UInt8](repeating: 0x90, count: 100)  // code after the payload
}

/// A bzImage around `elf`, stored as literal blocks.
private func bzImage(elf: [UInt8], setupSectors: UInt8 = 2) -> [UInt8] {
  let blocks = stride(from: 0, to: elf.count, by: 1000).map { lz4LiteralBlock(Array(elf[$0..<min($0 + 1000, elf.count)])) }
  return bzImage(stream: lz4LegacyStream(blocks), uncompressedSize: elf.count, setupSectors: setupSectors)
}

private func bzError(_ bytes: [UInt8]) -> BzImageError? {
  do {
    _ = try BzImage.extractELF(bytes)
    return nil
  } catch {
    return error
  }
}

@Suite struct BzImageTests {
  let elf = ELFFixture.kernel().bytes()

  @Test func recognisesTheSetupHeader() {
    #expect(BzImage.isBzImage(bzImage(elf: elf)))
    #expect(!BzImage.isBzImage(elf))
    #expect(!BzImage.isBzImage([UInt8](repeating: 0, count: 0x300)))
    #expect(!BzImage.isBzImage([UInt8]()))
  }

  @Test(arguments: [UInt8(0), 1, 2, 27])
  func extractsTheELF(setupSectors: UInt8) throws {
    let image = bzImage(elf: elf, setupSectors: setupSectors)
    let extracted = try BzImage.extractELF(image)
    #expect(extracted == elf)
    #expect(try ELFImage.parse(extracted).pvhEntry == 0x10_0010)
    let sectors = setupSectors == 0 ? 4 : Int(setupSectors)
    #expect(try BzImage.payload(image).lowerBound == (sectors + 1) * 512 + 0x3C0)
  }

  @Test func errors() {
    let good = bzImage(elf: elf)
    #expect(bzError(elf) == .notBzImage)
    #expect(bzError(Array(good[0..<0x24F])) == .truncatedHeader)

    var data = good
    data[0x206] = 0x07
    data[0x207] = 0x02
    #expect(bzError(data) == .protocolTooOld(0x0207))
    #expect(BzImageError.protocolTooOld(0x0207).message() == Array("bzImage: boot protocol 0x207 is older than 2.08".utf8))

    data = good
    data[0x24F] = 0x10  // payload_length far past the end
    #expect(bzError(data) == .payloadOutsideFile)
    data = good
    data[0x24B] = 0xFF  // payload_offset past the end
    #expect(bzError(data) == .payloadOutsideFile)
    data = good
    data.replaceSubrange(0x24C..<0x250, with: [4, 0, 0, 0])
    #expect(bzError(data) == .payloadTooShort)

    let gzip = bzImage(stream: [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0], uncompressedSize: 100)
    #expect(bzError(gzip) == .unsupportedCompression(Array("gzip".utf8)))
    let zstd = bzImage(stream: [0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0], uncompressedSize: 100)
    #expect(bzError(zstd) == .unsupportedCompression(Array("zstd".utf8)))
    #expect(bzError(bzImage(stream: [1, 2, 3, 4, 5], uncompressedSize: 1)) == .unsupportedCompression(Array("unknown".utf8)))

    let stream = lz4LegacyStream([lz4LiteralBlock(elf)])
    #expect(bzError(bzImage(stream: stream, uncompressedSize: elf.count + 1)) == .sizeMismatch(expected: elf.count + 1, actual: elf.count))
    #expect(bzError(bzImage(stream: stream, uncompressedSize: elf.count - 1)) == .decompression(.outputLimitExceeded))
    #expect(bzError(bzImage(stream: stream, uncompressedSize: Int(UInt32.max))) == .kernelTooLarge(Int(UInt32.max)))
    let text = Array("not an ELF file".utf8)
    #expect(bzError(bzImage(stream: lz4LegacyStream([lz4LiteralBlock(text)]), uncompressedSize: text.count)) == .payloadNotELF)
    let broken = Array(stream.dropLast(10))  // the block is shorter than its length says
    #expect(bzError(bzImage(stream: broken, uncompressedSize: elf.count)) == .decompression(.truncated))
  }

  @Test func mutationFuzzNeverTraps() {
    var random = SplitMix64(seed: 0xB2)
    let good = bzImage(elf: Array(elf.prefix(600)) + [UInt8](repeating: 0, count: 10))
    let payload = (try? BzImage.payload(good)) ?? 0..<0
    for _ in 0..<3000 {
      var data = good
      for _ in 0..<(1 + Int(random.next() % 3)) {
        // The setup header fields and the start of the payload.
        let index =
          random.next() % 2 == 0
          ? 0x1F0 + Int(random.next() % 0x60)
          : payload.lowerBound + Int(random.next() % UInt64(max(1, payload.count)))
        data[index] = UInt8(truncatingIfNeeded: random.next())
      }
      _ = try? BzImage.extractELF(data)
    }
  }

  @Test(.enabled(if: lz4Tool() != nil, "the lz4 tool is not installed (apt-get install lz4): cross-check skipped"))
  func extractsAToolCompressedKernel() throws {
    // A kernel-sized ELF: the fixture plus a large compressible segment.
    var fixture = ELFFixture.kernel()
    fixture.segments[1].data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: ($0 / 64) % 251) }
    fixture.segments[1].memorySize = 4_000_000
    let elf = fixture.bytes()
    let image = bzImage(stream: try lz4Compress(elf), uncompressedSize: elf.count)
    #expect(try BzImage.extractELF(image) == elf)
  }
}
