import Foundation
import Testing

@testable import Hypervisor

/// A block holding `data` as one literal run: the simplest valid LZ4 block.
func lz4LiteralBlock(_ data: [UInt8]) -> [UInt8] {
  var block: [UInt8] = []
  if data.count < 15 {
    block.append(UInt8(data.count) << 4)
  } else {
    block.append(0xF0)
    var rest = data.count - 15
    while rest >= 255 {
      block.append(255)
      rest -= 255
    }
    block.append(UInt8(rest))
  }
  return block + data
}

/// A legacy stream (`lz4 -l` format) of the given blocks.
func lz4LegacyStream(_ blocks: [[UInt8]]) -> [UInt8] {
  var stream: [UInt8] = [0x02, 0x21, 0x4C, 0x18]
  for block in blocks {
    let length = UInt32(block.count)
    stream += (0..<4).map { UInt8(truncatingIfNeeded: length >> UInt32(8 * $0)) }
    stream += block
  }
  return stream
}

/// The lz4 command-line tool, if installed.
func lz4Tool() -> String? {
  let environment = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
  for directory in environment.split(separator: ":") {
    let path = "\(directory)/lz4"
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  return nil
}

/// `data` compressed by `lz4 -l -9` (the legacy format Linux uses).
func lz4Compress(_ data: [UInt8]) throws -> [UInt8] {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lz4test-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: directory) }
  let input = directory.appendingPathComponent("in")
  let output = directory.appendingPathComponent("out.lz4")
  try Data(data).write(to: input)
  let process = Process()
  process.executableURL = URL(fileURLWithPath: try #require(lz4Tool()))
  process.arguments = ["-q", "-l", "-9", "-f", input.path, output.path]
  try process.run()
  process.waitUntilExit()
  #expect(process.terminationStatus == 0)
  return [UInt8](try Data(contentsOf: output))
}

private func block(_ input: [UInt8], limit: Int = 1 << 20) throws(LZ4Error) -> [UInt8] {
  var output: [UInt8] = []
  try LZ4.decompressBlock(input, 0..<input.count, into: &output, maximumOutput: limit)
  return output
}

private func blockError(_ input: [UInt8], limit: Int = 1 << 20) -> LZ4Error? {
  do {
    _ = try block(input, limit: limit)
    return nil
  } catch {
    return error
  }
}

@Suite struct LZ4Tests {
  @Test func literalsOnly() throws {
    #expect(try block([0x50] + Array("hello".utf8)) == Array("hello".utf8))
    #expect(try block([0x00]) == [])
    let long = (0..<600).map { UInt8(truncatingIfNeeded: $0 * 31) }
    #expect(try block(lz4LiteralBlock(long)) == long)
    // Exactly 15 literals need one extension byte of 0.
    let fifteen = [UInt8](repeating: 9, count: 15)
    #expect(lz4LiteralBlock(fifteen).prefix(2) == [0xF0, 0x00])
    #expect(try block(lz4LiteralBlock(fifteen)) == fifteen)
  }

  @Test func matches() throws {
    // "abc", then a 9-byte match 3 back, then the final literal "x".
    let input: [UInt8] = [0x35] + Array("abc".utf8) + [0x03, 0x00, 0x10, UInt8(ascii: "x")]
    #expect(try block(input) == Array("abcabcabcabcx".utf8))
  }

  @Test func overlappingRunWithOffsetOne() throws {
    // "a", then a 20-byte match at offset 1 (15 + extension 1 + 4), then no final literals.
    let input: [UInt8] = [0x1F, UInt8(ascii: "a"), 0x01, 0x00, 0x01, 0x00]
    #expect(try block(input) == [UInt8](repeating: UInt8(ascii: "a"), count: 21))
  }

  @Test func extensionBytes() throws {
    // 280 literals (15 + 255 + 10) and a match of 4 + 15 + 255 + 255 + 3 = 532 bytes at offset 2.
    let literals = (0..<280).map { UInt8(truncatingIfNeeded: $0) }
    let input: [UInt8] = [0xFF, 0xFF, 0x0A] + literals + [0x02, 0x00, 0xFF, 0xFF, 0x03] + [0x00]
    let output = try block(input)
    #expect(output.count == 280 + 532)
    #expect(Array(output[0..<280]) == literals)
    for i in 280..<output.count { #expect(output[i] == output[i - 2]) }
  }

  @Test func malformedBlocks() {
    #expect(blockError([]) == .truncated)
    #expect(blockError([0x10, 0x41, 0x00, 0x00, 0x00]) == .zeroOffset)
    #expect(blockError([0x10, 0x41, 0x02, 0x00, 0x00]) == .offsetBeyondOutput(offset: 2, available: 1))
    #expect(blockError([0x50, 0x41, 0x42]) == .truncated)  // 5 literals promised, 2 present
    #expect(blockError([0x10, 0x41, 0x01]) == .truncated)  // half an offset
    #expect(blockError([0xF0, 0xFF]) == .truncated)  // extension runs off the end
    #expect(blockError([0x1F, 0x41, 0x01, 0x00]) == .truncated)  // match extension missing
    #expect(blockError([0x10, 0x41, 0x01, 0x00]) == .truncated)  // ends after a match
    // Output limits, for literals and for matches.
    #expect(blockError([0x50] + Array("hello".utf8), limit: 4) == .outputLimitExceeded)
    #expect(blockError([0x1F, 0x41, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x00], limit: 100) == .outputLimitExceeded)
  }

  @Test func matchesStayInsideTheBlock() {
    // Earlier output (a previous block) is not a dictionary: legacy blocks are independent.
    var output: [UInt8] = Array("previous".utf8)
    let input: [UInt8] = [0x00, 0x04, 0x00, 0x00]
    #expect(throws: LZ4Error.offsetBeyondOutput(offset: 4, available: 0)) {
      try LZ4.decompressBlock(input, 0..<input.count, into: &output, maximumOutput: 100)
    }
  }

  @Test func legacyStream() throws {
    let first = Array("first block ".utf8)
    let second = [UInt8](repeating: 7, count: 40)
    var stream = lz4LegacyStream([lz4LiteralBlock(first), lz4LiteralBlock(second)])
    #expect(try LZ4.decompressLegacy(stream, 0..<stream.count, limit: 1000) == first + second)

    // A magic in place of a length starts a new stream.
    stream += lz4LegacyStream([lz4LiteralBlock([1, 2, 3])])
    #expect(try LZ4.decompressLegacy(stream, 0..<stream.count, limit: 1000) == first + second + [1, 2, 3])

    // A subrange of a larger buffer.
    let padded = [0xAA, 0xBB] + stream + [0xCC]
    #expect(try LZ4.decompressLegacy(padded, 2..<(2 + stream.count), limit: 1000) == first + second + [1, 2, 3])
    #expect(throws: LZ4Error.outputLimitExceeded) { try LZ4.decompressLegacy(stream, 0..<stream.count, limit: 20) }
  }

  @Test func malformedLegacyStreams() {
    func legacyError(_ stream: [UInt8]) -> LZ4Error? {
      do {
        _ = try LZ4.decompressLegacy(stream, 0..<stream.count, limit: 1 << 20)
        return nil
      } catch {
        return error
      }
    }
    #expect(legacyError([]) == .badMagic)
    #expect(legacyError([0x04, 0x22, 0x4D, 0x18]) == .badMagic)  // the modern frame magic
    #expect(legacyError([0x02, 0x21, 0x4C, 0x18]) == nil)  // empty stream
    #expect(legacyError([0x02, 0x21, 0x4C, 0x18, 0x05, 0x00]) == .truncated)
    #expect(legacyError([0x02, 0x21, 0x4C, 0x18, 0x00, 0x00, 0x00, 0x00]) == .badBlockLength(0))
    #expect(legacyError([0x02, 0x21, 0x4C, 0x18, 0xFF, 0xFF, 0xFF, 0x7F]) == .badBlockLength(0x7FFF_FFFF))
    #expect(legacyError([0x02, 0x21, 0x4C, 0x18, 0x09, 0x00, 0x00, 0x00, 0x10, 0x41]) == .truncated)
    #expect(LZ4Error.zeroOffset.message() == Array("LZ4: match offset 0".utf8))
  }

  @Test func randomBlocksNeverTrap() {
    var random = SplitMix64(seed: 0x1234)
    for _ in 0..<5000 {
      let count = Int(random.next() % 64)
      var input = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      if random.next() % 2 == 0, !input.isEmpty {
        input[0] = UInt8(truncatingIfNeeded: random.next() & 0x1F)  // short literals: more matches
      }
      var output: [UInt8] = []
      try? LZ4.decompressBlock(input, 0..<input.count, into: &output, maximumOutput: 4096)
      #expect(output.count <= 4096)
    }
  }

  @Test(.enabled(if: lz4Tool() != nil, "the lz4 tool is not installed (apt-get install lz4): cross-check skipped"))
  func matchesTheLZ4Tool() throws {
    // Text-like data with repeats (long matches) and noise (literals), over 8 MiB so that the
    // stream has two blocks.
    var random = SplitMix64(seed: 42)
    var data: [UInt8] = []
    let words = ["xen", "swiftvisor", "domain", "vcpu", "event channel", "grant", "\n"].map { Array($0.utf8) }
    while data.count < (8 << 20) + 300_000 {
      if random.next() % 8 == 0 {
        data += (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      } else {
        data += words[Int(random.next() % UInt64(words.count))] + [UInt8(ascii: " ")]
      }
    }
    let compressed = try lz4Compress(data)
    #expect(compressed.count < data.count / 2)
    let output = try LZ4.decompressLegacy(compressed, 0..<compressed.count, limit: data.count)
    #expect(output == data)
  }
}
