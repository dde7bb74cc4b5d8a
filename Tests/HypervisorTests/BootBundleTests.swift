import Testing

@testable import Hypervisor

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func config(_ name: String, memory: Int = 64, vcpus: Int = 1) -> DomainConfig {
  DomainConfig(name: bytes(name), memoryMiB: memory, vcpus: vcpus, kernelPath: bytes("k"))
}

private func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
  (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
}

/// Disks and vifs with every optional part, and plain ones.
private let sampleDisks = [
  DiskConfig(target: bytes("/srv/web.img"), vdev: bytes("xvda")),
  DiskConfig(target: bytes("/srv/cd.iso"), vdev: bytes("xvdq"), readOnly: true, isCDROM: true, discard: false,
             trusted: false, backend: bytes("storage")),
  DiskConfig(target: bytes("/dev/ram0"), vdev: bytes("hdb3"), discard: true),
]
private let sampleNICs = [
  NICConfig(devid: 0, mac: [0x00, 0x16, 0x3E, 0x01, 0x02, 0x03]),
  NICConfig(devid: 1, mac: [0x02, 0, 0, 0, 0, 9], bridge: bytes("br1"), backend: bytes("net"), ip: bytes("10.0.0.2 10.0.0.3"),
            script: bytes("vif-route"), trusted: false),
]

/// Two domains: "web" with a kernel and ramdisk and every optional field, "db" with a kernel only.
private func sampleBundle() -> [UInt8] {
  var web = config("web", memory: 256, vcpus: 2)
  web.maxVCPUs = 4
  web.cmdline = bytes("console=hvc0 root=/dev/xvda")
  web.onPoweroff = .preserve
  web.onReboot = .destroy
  web.onCrash = .restart
  web.cpus = bytes("0-3")
  web.weight = 512
  web.cap = 150
  web.maxMemoryMiB = 1024
  web.maxGrantFrames = 32
  web.maxMaptrackFrames = 0
  web.maxEventChannels = 131_072
  web.disks = sampleDisks
  web.nics = sampleNICs
  web.isDriverDomain = true
  let db = config("db")
  return BootBundle.build(domains: [
    (config: web, kernel: pattern(5000, seed: 1), ramdisk: pattern(70, seed: 2)),
    (config: db, kernel: pattern(4096, seed: 3), ramdisk: nil),
  ])
}

private typealias L = BootBundle.Layout

extension Array where Element == UInt8 {
  fileprivate mutating func put32(_ value: UInt32, at offset: Int) {
    for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
  }
  fileprivate mutating func put64(_ value: UInt64, at offset: Int) {
    for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
  }
  fileprivate func get32(_ offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << UInt32(8 * $1) }
  }
  fileprivate func get64(_ offset: Int) -> UInt64 {
    (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << UInt64(8 * $1) }
  }
}

/// Offset of domain record `index` in a bundle built by `build`.
private func record(_ index: Int) -> Int { L.headerSize + index * L.Domain.size }
/// Offset of blob record `index` in `sampleBundle()` (two domain records).
private func blobRecord(_ index: Int) -> Int { L.headerSize + 2 * L.Domain.size + index * L.Blob.size }

private func parseError(_ bytes: [UInt8]) -> BundleError? {
  do {
    _ = try BootBundle.parse(bytes)
    return nil
  } catch {
    return error
  }
}

@Suite struct BootBundleTests {
  @Test func roundTrip() throws {
    let data = sampleBundle()
    let bundle = try BootBundle.parse(data)
    #expect(bundle.problems.isEmpty)
    #expect(bundle.domains.count == 2)

    let web = bundle.domains[0]
    #expect(web.index == 0)
    #expect(web.config.name == bytes("web"))
    #expect(web.config.type == .pvh)
    #expect(web.config.memoryMiB == 256)
    #expect(web.config.vcpus == 2)
    #expect(web.config.maxVCPUs == 4)
    #expect(web.config.cmdline == bytes("console=hvc0 root=/dev/xvda"))
    #expect(web.config.onPoweroff == .preserve)
    #expect(web.config.onReboot == .destroy)
    #expect(web.config.onCrash == .restart)
    #expect(web.config.cpus == bytes("0-3"))
    #expect(web.config.weight == 512)
    #expect(web.config.cap == 150)
    #expect(web.config.maxMemoryMiB == 1024)
    #expect(web.config.maxGrantFrames == 32)
    #expect(web.config.maxMaptrackFrames == 0)
    #expect(web.config.maxEventChannels == 131_072)
    #expect(web.config.disks == sampleDisks)
    #expect(web.config.disks.map(\.devid) == [51712, (1 << 28) | (16 << 8), (3 << 8) | (1 << 6) | 3])
    #expect(web.config.nics == sampleNICs)
    #expect(web.config.isDriverDomain)
    #expect(web.config.kernelPath.isEmpty)
    #expect(Array(data[web.kernel]) == pattern(5000, seed: 1))
    #expect(Array(data[try #require(web.ramdisk)]) == pattern(70, seed: 2))

    let db = bundle.domains[1]
    #expect(db.config.name == bytes("db"))
    #expect(db.config.maxVCPUs == nil)
    #expect(db.config.cpus == nil)
    #expect(db.config.weight == nil)
    #expect(db.config.cap == nil)
    #expect(db.config.maxMemoryMiB == nil)
    #expect(db.config.maxGrantFrames == nil)
    #expect(db.config.maxMaptrackFrames == nil)
    #expect(db.config.maxEventChannels == nil, "0 in the record: not set")
    #expect(db.config.disks.isEmpty && db.config.nics.isEmpty && !db.config.isDriverDomain)
    #expect(db.ramdisk == nil)
    #expect(Array(data[db.kernel]) == pattern(4096, seed: 3))
    #expect(bundle.blobCount == 3)

    // Blobs start on 4 KiB boundaries.
    for range in [web.kernel, try #require(web.ramdisk), db.kernel] {
      #expect(range.lowerBound % 4096 == 0)
    }
  }

  @Test func emptyBundleAndTrailingPadding() throws {
    let empty = BootBundle.build(domains: [])
    #expect(empty.count == 64)
    let parsed = try BootBundle.parse(empty)
    #expect(parsed.domains.isEmpty && parsed.problems.isEmpty)
    // A boot loader may round the module up: bytes after the total size are ignored.
    let padded = sampleBundle() + [UInt8](repeating: 0xEE, count: 4096)
    #expect(try BootBundle.parse(padded).domains.count == 2)
    // An ArraySlice (not starting at index 0) parses the same, with offsets from its start.
    let shifted = ([UInt8](repeating: 0, count: 100) + sampleBundle())[100...]
    let bundle = try BootBundle.parse(shifted)
    #expect(bundle.domains.count == 2)
    #expect(Array(sampleBundle()[bundle.domains[1].kernel]) == pattern(4096, seed: 3))
  }

  @Test func wholeBundleErrors() {
    let good = sampleBundle()

    #expect(parseError(Array(good[0..<63])) == .truncatedHeader(available: 63))
    #expect(parseError([]) == .truncatedHeader(available: 0))

    var data = good
    data[0] = UInt8(ascii: "X")
    #expect(parseError(data) == .badMagic)

    // Version 1 (a blob for one domain field only) is refused like any other version.
    #expect(good.get32(L.Header.version) == 2)
    for version: UInt32 in [0, 1, 3, UInt32.max] {
      data = good
      data.put32(version, at: L.Header.version)
      #expect(parseError(data) == .unsupportedVersion(version))
    }
    data = good
    data.put32(1, at: L.Header.version)
    #expect(parseError(data)?.message() == bytes("boot bundle: version 1 is not supported (expected 2)"))

    data = good
    data.put32(72, at: L.Header.headerSize)
    #expect(parseError(data) == .badHeaderSize(72))

    data = good
    data[L.Header.reserved + 3] = 1
    #expect(parseError(data) == .reservedNotZero(offset: L.Header.reserved))

    data = good
    data.put64(UInt64(good.count + 1), at: L.Header.totalSize)
    #expect(parseError(data) == .truncated(totalSize: UInt64(good.count + 1), available: good.count))
    #expect(parseError(Array(good.dropLast())) == .truncated(totalSize: UInt64(good.count), available: good.count - 1))

    data = good
    data.put64(UInt64.max, at: L.Header.totalSize)
    #expect(parseError(data) == .truncated(totalSize: UInt64.max, available: good.count))

    data = good
    data.put64(10, at: L.Header.totalSize)
    #expect(parseError(data) == .totalSizeTooSmall(10))

    data = good
    data.put32(UInt32(L.maxDomains + 1), at: L.Header.domainCount)
    #expect(parseError(data) == .tooManyDomains(L.maxDomains + 1))

    data = good
    data.put32(UInt32.max, at: L.Header.blobCount)
    #expect(parseError(data) == .tooManyBlobs(Int(UInt32.max)))

    // A table that runs past the end, starts inside the header, is misaligned or overflows.
    for offset: UInt64 in [UInt64(good.count), 8, 65, UInt64.max - 8] {
      data = good
      data.put64(offset, at: L.Header.tableOffset)
      #expect(parseError(data) == .tableOutOfRange(offset: offset, size: UInt64(2 * L.Domain.size + 3 * L.Blob.size)), "\(offset)")
    }
    data = good
    data.put32(1000, at: L.Header.domainCount)
    #expect(parseError(data) == .tableOutOfRange(offset: 64, size: UInt64(1000 * L.Domain.size + 3 * L.Blob.size)))

    // Strings past the end, overflowing, or over the table.
    let stringsOffset = good.get64(L.Header.stringsOffset)
    data = good
    data.put64(UInt64.max, at: L.Header.stringsSize)
    #expect(parseError(data) == .stringsOutOfRange(offset: stringsOffset, size: UInt64.max))
    data = good
    data.put64(UInt64.max - 2, at: L.Header.stringsOffset)
    #expect(parseError(data) == .stringsOutOfRange(offset: UInt64.max - 2, size: good.get64(L.Header.stringsSize)))
    data = good
    data.put64(64, at: L.Header.stringsOffset)
    #expect(parseError(data) == .stringsOverlapTable)
  }

  /// Parses `data` (which must parse as a whole) and returns the problems.
  private func problems(_ data: [UInt8]) throws -> [BundleProblem] {
    try BootBundle.parse(data).problems
  }

  @Test func perDomainProblemsLeaveTheOthers() throws {
    var data = sampleBundle()
    data.put32(0, at: record(1) + L.Domain.vcpus)
    let bundle = try BootBundle.parse(data)
    #expect(bundle.domains.map { $0.config.name } == [bytes("web")])
    #expect(bundle.problems == [BundleProblem(domainIndex: 1, name: bytes("db"), kind: .invalid(.vcpusOutOfRange(0)))])
    #expect(bundle.problems[0].message == bytes("domain 1 (db): vcpus: must be between 1 and 64 (got 0)"))
  }

  @Test func recordCorruptions() throws {
    let good = sampleBundle()
    func problem(_ mutate: (inout [UInt8]) -> Void) throws -> BundleProblem? {
      var data = good
      mutate(&data)
      let found = try problems(data)
      return found.first
    }

    #expect(try problem { $0[record(0) + 100] = 1 }?.kind == .reservedNotZero(offset: 100))
    // Every bit of the flags byte has a meaning now (the last is isDriverDomain).
    #expect(L.Flag.all == 0xFF)
    #expect(try problem { $0.put32(0x7FFF_FFFF, at: record(0) + L.Domain.nameOffset) } == BundleProblem(domainIndex: 0, name: nil, kind: .stringOutOfRange(field: .name)))
    #expect(try problem { $0.put32(UInt32.max, at: record(0) + L.Domain.nameLength) }?.kind == .stringOutOfRange(field: .name))
    #expect(try problem { $0.put32(UInt32.max, at: record(0) + L.Domain.cmdlineLength) }?.kind == .stringOutOfRange(field: .cmdline))
    #expect(try problem { $0.put32(1_000_000, at: record(0) + L.Domain.cpusOffset) }?.kind == .stringOutOfRange(field: .cpus))
    #expect(try problem { $0.put32(9, at: record(0) + L.Domain.type) }?.kind == .unknownType(9))
    #expect(try problem { $0.put32(DomainType.hvm.rawValue, at: record(0) + L.Domain.type) }?.kind == .invalid(.unsupportedType(.hvm)))
    #expect(try problem { $0[record(0) + L.Domain.onCrash] = 7 }?.kind == .unknownShutdownAction(7))
    #expect(try problem { $0.put32(8, at: record(0) + L.Domain.memoryMiB) }?.kind == .invalid(.memoryOutOfRange(8)))
    #expect(try problem { $0.put32(UInt32.max, at: record(0) + L.Domain.memoryMiB) }?.kind == .invalid(.memoryOutOfRange(Int(UInt32.max))))
    #expect(try problem { $0.put32(1, at: record(0) + L.Domain.maxVCPUs) }?.kind == .invalid(.maxVCPUsOutOfRange(1, vcpus: 2)))
    #expect(try problem { $0.put32(0, at: record(0) + L.Domain.weight) }?.kind == .invalid(.weightOutOfRange(0)))
    #expect(try problem { $0.put32(9999, at: record(0) + L.Domain.cap) }?.kind == .invalid(.capOutOfRange(9999)))
    #expect(try problem { $0.put32(UInt32.max, at: record(0) + L.Domain.maxEventChannels) }?.kind == .invalid(.maxEventChannelsOutOfRange(Int(UInt32.max))))
    #expect(try problem { $0.put32(7, at: record(0) + L.Domain.kernelBlob) }?.kind == .blobIndexOutOfRange(7, count: 3))
    #expect(try problem { $0.put32(3, at: record(1) + L.Domain.ramdiskBlob) }?.kind == .blobIndexOutOfRange(3, count: 3))
    #expect(try problem { $0.put32(L.noBlob, at: record(1) + L.Domain.kernelBlob) }?.kind == .blobIndexOutOfRange(L.noBlob, count: 3))
    #expect(try problem { $0.put32(7, at: record(0) + L.Domain.kernelBlob) }?.message
      == bytes("domain 0 (web): blob index 7 is out of range (3 blobs)"))
  }

  /// The device table of domain 0 of `sampleBundle()`: its bundle offset and length.
  private func deviceTable(_ data: [UInt8]) -> (offset: Int, length: Int) {
    let strings = Int(data.get64(L.Header.stringsOffset))
    return (strings + Int(data.get32(record(0) + L.Domain.devicesOffset)), Int(data.get32(record(0) + L.Domain.devicesLength)))
  }

  @Test func deviceTableCorruptions() throws {
    let good = sampleBundle()
    let (table, length) = deviceTable(good)
    #expect(length > 0)
    #expect(good.get32(record(1) + L.Domain.devicesLength) == 0, "no devices, no table")
    // The table's layout: counts, then the first disk's flags and its vdev.
    #expect(Array(good[table..<table + 4]) == [3, 2, 0, 0])
    #expect(Array(good[table + 4..<table + 11]) == [0, 4, 0] + bytes("xvda"))

    func problem(_ mutate: (inout [UInt8]) -> Void) throws -> BundleProblem.Kind? {
      var data = good
      mutate(&data)
      return try BootBundle.parse(data).problems.first?.kind
    }
    #expect(try problem { $0.put32(UInt32.max, at: record(0) + L.Domain.devicesLength) } == .stringOutOfRange(field: .devices))
    #expect(try problem { $0.put32(UInt32.max, at: record(0) + L.Domain.devicesOffset) } == .stringOutOfRange(field: .devices))
    #expect(try problem { $0.put32(3, at: record(0) + L.Domain.devicesLength) } == .badDeviceTable(.truncated))
    #expect(try problem { $0.put32(UInt32(length - 1), at: record(0) + L.Domain.devicesLength) } == .badDeviceTable(.truncated))
    #expect(try problem { $0[table] = 33 } == .badDeviceTable(.tooManyDisks(33)))
    #expect(try problem { $0[table + 1] = 255 } == .badDeviceTable(.tooManyVIFs(255)))
    #expect(try problem { $0[table + 3] = 1 } == .badDeviceTable(.reservedNotZero))
    #expect(try problem { $0[table + 4] = 0x40 } == .badDeviceTable(.unknownDiskFlags(0x40)))
    // One vif fewer: the last vif's bytes are left over.
    #expect(try problem { $0[table + 1] = 1 }.map { if case .badDeviceTable(.trailingBytes) = $0 { true } else { false } } == true)
    // A string length far past the table's end.
    #expect(try problem { $0[table + 5] = 0xFF; $0[table + 6] = 0xFF } == .badDeviceTable(.truncated))
    // Well-formed bytes with a bad value: validation's problem, as for the other fields.
    #expect(try problem { $0[table + 10] = UInt8(ascii: "A") } == .invalid(.disk(index: 0, .badVdev(bytes("xvdA")))))
    #expect(try problem { $0[table + 7] = 0x0A } == .invalid(.disk(index: 0, .badByte(parameter: bytes("vdev"), byte: 0x0A))))
    let firstVIFMAC = table + 4 + (1 + 2 + 4 + 2 + 12) + (1 + 2 + 4 + 2 + 11 + 2 + 7) + (1 + 2 + 4 + 2 + 9) + 1
    #expect(try problem { $0[firstVIFMAC] = 0x01 } == .invalid(.vif(index: 0, .badMAC(bytes("01:16:3e:01:02:03")))))
    #expect(try problem { $0[record(0) + L.Domain.devicesLength] = 0 }.map { _ in true } == nil, "no table is no devices")
    var data = good
    data[record(0) + L.Domain.devicesLength] = 0
    data[record(0) + L.Domain.devicesLength + 1] = 0
    #expect(try BootBundle.parse(data).problems.isEmpty)
    #expect(try BootBundle.parse(data).domains[0].config.disks.isEmpty)
    #expect(try problem { $0[table + 4] = 0x40 }.map { BundleProblem(domainIndex: 0, name: bytes("web"), kind: $0).message }
      == bytes("domain 0 (web): device table: unknown disk flags 0x40"))
  }

  @Test func aTooLongDeviceStringIsClampedAndRefused() throws {
    // build() writes what it is given, clamped to the u16 length: parse refuses it by validation.
    var web = config("web")
    web.disks = [DiskConfig(target: [UInt8](repeating: UInt8(ascii: "t"), count: 70_000), vdev: bytes("xvda"))]
    let bundle = try BootBundle.parse(BootBundle.build(domains: [(config: web, kernel: pattern(10, seed: 1), ramdisk: nil)]))
    #expect(bundle.problems.first?.kind
      == .invalid(.disk(index: 0, .tooLong(parameter: bytes("target"), length: 65535, maximum: DiskConfig.maxTargetLength))))
  }

  /// Three domains over two blobs: all three share the kernel, "a" and "c" the ramdisk.
  private func sharedBundle() -> [UInt8] {
    BootBundle.build(
      domains: [
        (config: config("a"), kernel: 0, ramdisk: 1),
        (config: config("b"), kernel: 0, ramdisk: nil),
        (config: config("c"), kernel: 0, ramdisk: 1),
      ],
      blobs: [pattern(9000, seed: 4), pattern(4096, seed: 5)])
  }

  @Test func blobsSharedByDomainsAndFields() throws {
    let data = sharedBundle()
    let bundle = try BootBundle.parse(data)
    #expect(bundle.problems.isEmpty)
    #expect(bundle.blobCount == 2)
    #expect(bundle.domains.map { $0.config.name } == [bytes("a"), bytes("b"), bytes("c")])
    let kernel = bundle.domains[0].kernel
    let ramdisk = try #require(bundle.domains[0].ramdisk)
    #expect(bundle.domains.map { $0.kernel } == [kernel, kernel, kernel])
    #expect(bundle.domains.map { $0.ramdisk } == [ramdisk, nil, ramdisk])
    #expect(Array(data[kernel]) == pattern(9000, seed: 4))
    #expect(Array(data[ramdisk]) == pattern(4096, seed: 5))
    // Stored once: the header, three records, two blob records and the names fit in the first
    // page, then the two blobs.
    #expect(data.count == 4096 + 12288 + 4096)

    // One domain may name the same blob as its kernel and its ramdisk.
    var same = data
    same.put32(0, at: record(1) + L.Domain.ramdiskBlob)
    #expect(try BootBundle.parse(same).domains[1].ramdisk == kernel)
  }

  @Test func sharedBlobsStayHostileInputSafe() throws {
    let good = sharedBundle()
    let blobTable = L.headerSize + 3 * L.Domain.size
    func parsed(_ mutate: (inout [UInt8]) -> Void) throws -> BootBundle {
      var data = good
      mutate(&data)
      return try BootBundle.parse(data)
    }

    // A defective shared blob: every domain that uses it is refused with the same problem.
    let empty = try parsed { $0.put64(0, at: blobTable + L.Blob.length) }
    #expect(empty.domains.isEmpty)
    #expect(empty.problems.map { $0.kind } == Array(repeating: .badBlob(index: 0, .empty), count: 3))
    // A defective ramdisk blob leaves the domain that uses only the kernel.
    let ramdiskOffset = good.get64(blobTable + L.Blob.size + L.Blob.offset)
    let misaligned = try parsed { $0.put64(ramdiskOffset + 1, at: blobTable + L.Blob.size + L.Blob.offset) }
    #expect(misaligned.domains.map { $0.config.name } == [bytes("b")])
    #expect(misaligned.problems.map { $0.domainIndex } == [0, 2])
    // Indices past the table, one above the last and the largest.
    let outOfRange = try parsed {
      $0.put32(2, at: record(0) + L.Domain.kernelBlob)
      $0.put32(UInt32.max - 1, at: record(2) + L.Domain.ramdiskBlob)
    }
    #expect(outOfRange.domains.map { $0.config.name } == [bytes("b")])
    #expect(outOfRange.problems.map { $0.kind } == [
      .blobIndexOutOfRange(2, count: 2), .blobIndexOutOfRange(UInt32.max - 1, count: 2),
    ])
    // Sharing is by index: two blob records over the same bytes are refused, both of them
    // (domain "b" takes blob 1 as its kernel, to show it).
    let kernelOffset = good.get64(blobTable + L.Blob.offset)
    let aliased = try parsed {
      $0.put64(kernelOffset, at: blobTable + L.Blob.size + L.Blob.offset)
      $0.put32(1, at: record(1) + L.Domain.kernelBlob)
    }
    #expect(aliased.domains.isEmpty)
    #expect(aliased.problems.map { $0.kind } == [
      .badBlob(index: 0, .overlapsBlob(1)), .badBlob(index: 1, .overlapsBlob(0)), .badBlob(index: 0, .overlapsBlob(1)),
    ])
  }

  @Test func aBlobInsideALongOneIsFoundEvenIfNotItsNeighbour() throws {
    // Blob 0 spans three pages; blobs 1 and 2 follow it in the file. Point blob 2 into blob 0's
    // last page: in offset order blob 1 (second page) lies between them.
    var data = BootBundle.build(domains: [
      (config: config("long"), kernel: pattern(3 * 4096, seed: 6), ramdisk: nil),
      (config: config("one"), kernel: [1], ramdisk: nil), (config: config("two"), kernel: [2], ramdisk: nil),
    ])
    let blobTable = L.headerSize + 3 * L.Domain.size
    let long = data.get64(blobTable + L.Blob.offset)
    data.put64(long + 4096, at: blobTable + L.Blob.size + L.Blob.offset)
    data.put64(long + 2 * 4096, at: blobTable + 2 * L.Blob.size + L.Blob.offset)
    let bundle = try BootBundle.parse(data)
    #expect(bundle.domains.isEmpty)
    #expect(bundle.problems.map { $0.kind } == [
      .badBlob(index: 0, .overlapsBlob(1)), .badBlob(index: 1, .overlapsBlob(0)), .badBlob(index: 2, .overlapsBlob(0)),
    ])
  }

  @Test func nameProblems() throws {
    // A name longer than 64 bytes, and one with a forbidden byte, built through the host API.
    let long = config(String(repeating: "n", count: 65))
    let spaced = config("a b")
    let data = BootBundle.build(domains: [
      (config: long, kernel: [1], ramdisk: nil), (config: spaced, kernel: [2], ramdisk: nil),
      (config: config("ok"), kernel: [3], ramdisk: nil), (config: config("ok"), kernel: [4], ramdisk: nil),
    ])
    let bundle = try BootBundle.parse(data)
    #expect(bundle.domains.map { $0.index } == [2])
    #expect(bundle.problems.map { $0.kind } == [
      .invalid(.nameTooLong(length: 65)), .invalid(.nameHasInvalidByte(UInt8(ascii: " "))), .duplicateName(firstIndex: 2),
    ])
    #expect(bundle.problems[2].message == bytes("domain 3 (ok): name is already used by domain 2"))
    // An empty name.
    let unnamed = try BootBundle.parse(BootBundle.build(domains: [(config: config(""), kernel: [1], ramdisk: nil)]))
    #expect(unnamed.problems.map { $0.kind } == [.invalid(.missingName)])
  }

  @Test func blobCorruptions() throws {
    let good = sampleBundle()
    func blobProblems(_ mutate: (inout [UInt8]) -> Void) throws -> [BundleProblem.Kind] {
      var data = good
      mutate(&data)
      return try problems(data).map { $0.kind }
    }
    let kernel0 = good.get64(blobRecord(0) + L.Blob.offset)
    let kernel1 = good.get64(blobRecord(2) + L.Blob.offset)

    // Past the end, and overflowing.
    #expect(try blobProblems { $0.put64(UInt64(good.count), at: blobRecord(2) + L.Blob.length) }
      == [.badBlob(index: 2, .outOfRange(offset: kernel1, length: UInt64(good.count)))])
    #expect(try blobProblems { $0.put64(UInt64.max - 100, at: blobRecord(2) + L.Blob.offset) }
      == [.badBlob(index: 2, .outOfRange(offset: UInt64.max - 100, length: 4096))])
    // Empty, misaligned, over the metadata.
    #expect(try blobProblems { $0.put64(0, at: blobRecord(1) + L.Blob.length) } == [.badBlob(index: 1, .empty)])
    #expect(try blobProblems { $0.put64(kernel0 + 8, at: blobRecord(0) + L.Blob.offset) }
      == [.badBlob(index: 0, .misaligned(offset: kernel0 + 8))])
    #expect(try blobProblems { $0.put64(0, at: blobRecord(0) + L.Blob.offset) } == [.badBlob(index: 0, .overlapsMetadata)])
    // Two blobs sharing bytes: both domains lose the blob.
    #expect(try blobProblems { $0.put64(kernel0, at: blobRecord(2) + L.Blob.offset) }
      == [.badBlob(index: 0, .overlapsBlob(2)), .badBlob(index: 2, .overlapsBlob(0))])
    // A message names the blob and the domain.
    var data = good
    data.put64(kernel0 + 8, at: blobRecord(0) + L.Blob.offset)
    #expect(try problems(data).first?.message == bytes("domain 0 (web): blob 0 at offset 0x\(String(kernel0 + 8, radix: 16)) is not 4 KiB-aligned"))
  }

  @Test(arguments: [0, 1]) func mutationFuzzNeverTraps(shared: Int) {
    var random = SplitMix64(seed: 0xB0_0710 + UInt64(shared))
    let good = shared == 1 ? sharedBundle() : sampleBundle()
    // Most interesting bytes are in the metadata; aim most flips there.
    let metadataEnd = Int(good.get64(L.Header.stringsOffset) + good.get64(L.Header.stringsSize))
    var parsed = 0
    for _ in 0..<5000 {
      var data = good
      for _ in 0..<(1 + Int(random.next() % 6)) {
        let limit = random.next() % 4 == 0 ? data.count : metadataEnd
        let index = Int(random.next() % UInt64(limit))
        switch random.next() % 3 {
        case 0: data[index] = UInt8(truncatingIfNeeded: random.next())
        case 1: data[index] ^= UInt8(1) << UInt8(random.next() % 8)
        default: data[index] = [0x00, 0xFF, 0x7F, 0x80][Int(random.next() % 4)]
        }
      }
      if random.next() % 16 == 0 {
        data.removeLast(Int(random.next() % UInt64(data.count)))
      }
      if let bundle = try? BootBundle.parse(data) {
        parsed += 1
        // Whatever parses must be internally consistent.
        for domain in bundle.domains {
          #expect(domain.kernel.upperBound <= data.count)
          #expect((try? domain.config.validate(requireKernelPath: false)) != nil)
        }
        let declared = (0..<4).reduce(0) { $0 | Int(data[L.Header.domainCount + $1]) << (8 * $1) }
        #expect(bundle.domains.count + bundle.problems.count == declared)
      }
    }
    #expect(parsed > 0)
  }
}
