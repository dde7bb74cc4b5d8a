// The boot bundle: every domain to start, with its kernel and ramdisk, in one boot module.
//
// `visor` builds it on the host; the hypervisor parses it at boot. The hypervisor trusts nothing
// in it: every offset and length is checked against the bundle's size with overflow-safe
// arithmetic, reserved bytes must be zero, and blobs may neither overlap each other nor the
// metadata. A problem with the bundle as a whole (magic, version, sizes, tables) is an error; a
// problem with one domain is reported with that domain's index and name, and the other domains
// still start.
//
// Format, version 2 (all integers little-endian):
//
//   offset 0, 64 bytes: header
//     0  magic "SVBUNDL\0"        8 bytes
//     8  version                  u32 = 2
//     12 header size              u32 = 64
//     16 total size               u64, bytes of the bundle (a boot loader may pad after it)
//     24 domain count             u32
//     28 blob count               u32
//     32 table offset             u64, 8-aligned: domain records, then blob records
//     40 strings offset           u64
//     48 strings size             u64
//     56 reserved                 u64 = 0
//   domain records, 128 bytes each (see `Layout.Domain`)
//   blob records, 16 bytes each: offset u64 (4 KiB-aligned), length u64 (> 0)
//   strings: names, command lines, cpus strings and device tables, referenced by (offset, length)
//   blobs: each starts on a 4 KiB boundary
//
// A domain's PV devices (xl's `disk` and `vif`) are a device table in the strings area, named by
// the record's devices offset and length (length 0: none). A bundle without devices has zeros
// there, as the reserved bytes they once were, so the format stays version 2; a hypervisor from
// before device tables refuses a domain that has one (its reserved bytes are not zero) rather
// than building it without its devices. A domain's `max_event_channels` likewise sits in once
// reserved bytes (`Layout.Domain.maxEventChannels`; 0 there means unset: the range starts at 1,
// and every flag bit is taken). The table (integers little-endian, every string a u16
// length and its bytes):
//
//   u8 disk count, u8 vif count (each at most 32), u16 reserved = 0
//   per disk: u8 DiskFlag bits, then the strings vdev, target and, with hasBackend, backend
//   per vif:  u8 VIFFlag bits, 6 bytes of MAC, then the strings bridge, backend, ip and script,
//             each only with its flag; a vif's devid is its position
//
// and nothing after the last device. Every count and length is checked against the table before
// it is used; values then meet `DomainConfig.validate`, as everything else in the record does.
//
// A blob may be used by any number of domain fields, so a kernel or ramdisk that several
// domains use is stored once. (Version 1, which the hypervisor no longer accepts, allowed one
// user per blob.) The bundle stays the hypervisor's, read-only, for as long as it runs: every
// domain gets its own copy of its kernel segments and ramdisk, so a shared blob is never seen
// by a guest and a restarted domain is built again from intact bytes.

/// The parsed boot bundle.
public struct BootBundle: Sendable {
  /// One domain that passed every check.
  public struct BundledDomain: Equatable, Sendable {
    /// Its position in the bundle (0-based), as problems and logs name it.
    public var index: Int
    /// The configuration. `kernelPath` is empty and `ramdiskPath` nil: the files are the blobs.
    public var config: DomainConfig
    /// The kernel's bytes, as offsets from the start of the bundle.
    public var kernel: Range<Int>
    /// The ramdisk's bytes, as offsets from the start of the bundle.
    public var ramdisk: Range<Int>?

    public init(index: Int, config: DomainConfig, kernel: Range<Int>, ramdisk: Range<Int>?) {
      self.index = index
      self.config = config
      self.kernel = kernel
      self.ramdisk = ramdisk
    }
  }

  /// The domains that can be built, in bundle order.
  public var domains: [BundledDomain]
  /// The domains that cannot, and why.
  public var problems: [BundleProblem]
  /// How many blobs the bundle declares (kernels and ramdisks, each stored once).
  public var blobCount: Int

  /// Where each field lives.
  public enum Layout {
    /// "SVBUNDL\0".
    public static let magic: [UInt8] = [0x53, 0x56, 0x42, 0x55, 0x4E, 0x44, 0x4C, 0x00]
    public static let version: UInt32 = 2
    public static let headerSize = 64
    /// Blobs start on this boundary.
    public static let blobAlignment = 4096
    /// More domains than this is refused outright, so a corrupt count cannot make the parser
    /// allocate without bound.
    public static let maxDomains = 1024
    /// At most a kernel and a ramdisk per domain, even with nothing shared.
    public static let maxBlobs = 2 * maxDomains
    /// The `ramdisk blob` value for "no ramdisk".
    public static let noBlob: UInt32 = 0xFFFF_FFFF

    public enum Header {
      public static let magic = 0
      public static let version = 8
      public static let headerSize = 12
      public static let totalSize = 16
      public static let domainCount = 24
      public static let blobCount = 28
      public static let tableOffset = 32
      public static let stringsOffset = 40
      public static let stringsSize = 48
      public static let reserved = 56
    }

    public enum Domain {
      public static let size = 128
      public static let nameOffset = 0      // u32, into the strings area
      public static let nameLength = 4      // u32
      public static let type = 8            // u32, DomainType raw value
      public static let memoryMiB = 12      // u32
      public static let vcpus = 16          // u32
      public static let maxVCPUs = 20       // u32, meaningful with Flag.hasMaxVCPUs
      public static let kernelBlob = 24     // u32, blob index
      public static let ramdiskBlob = 28    // u32, blob index or noBlob
      public static let cmdlineOffset = 32  // u32
      public static let cmdlineLength = 36  // u32
      public static let cpusOffset = 40     // u32, meaningful with Flag.hasCPUs
      public static let cpusLength = 44     // u32
      public static let onPoweroff = 48     // u8, ShutdownAction raw value
      public static let onReboot = 49       // u8
      public static let onCrash = 50        // u8
      public static let flags = 51          // u8, Flag bits
      public static let weight = 52         // u32, meaningful with Flag.hasWeight
      public static let cap = 56            // u32, meaningful with Flag.hasCap
      public static let maxMemoryMiB = 60   // u32, meaningful with Flag.hasMaxMemory
      public static let maxGrantFrames = 64 // u32, meaningful with Flag.hasMaxGrantFrames
      public static let maxMaptrackFrames = 68 // u32, meaningful with Flag.hasMaxMaptrackFrames
      public static let devicesOffset = 72  // u32, the device table in the strings area
      public static let devicesLength = 76  // u32, 0: no devices
      public static let maxEventChannels = 80 // u32, 0: not set (the hypervisor's default)
      public static let reserved = 84       // up to the end of the record, zero
    }

    /// Bits of a domain record's `flags`: which optional fields are set.
    public enum Flag {
      public static let hasWeight: UInt8 = 1 << 0
      public static let hasCap: UInt8 = 1 << 1
      public static let hasCPUs: UInt8 = 1 << 2
      public static let hasMaxVCPUs: UInt8 = 1 << 3
      public static let hasMaxMemory: UInt8 = 1 << 4
      public static let hasMaxGrantFrames: UInt8 = 1 << 5
      public static let hasMaxMaptrackFrames: UInt8 = 1 << 6
      /// xl's `driver_domain = 1`. The last bit of this byte: a next flag needs a second byte
      /// (from the reserved ones).
      public static let isDriverDomain: UInt8 = 1 << 7
      public static let all: UInt8 = hasWeight | hasCap | hasCPUs | hasMaxVCPUs | hasMaxMemory | hasMaxGrantFrames | hasMaxMaptrackFrames
        | isDriverDomain
    }

    /// The device table's header.
    public enum Devices {
      public static let headerSize = 4
      public static let diskCount = 0   // u8
      public static let vifCount = 1    // u8
      public static let reserved = 2    // u16, zero
      /// The bytes of a vif's MAC, after its flags.
      public static let macSize = 6
    }

    /// Bits of a disk's flags byte in the device table.
    public enum DiskFlag {
      public static let readOnly: UInt8 = 1 << 0
      public static let isCDROM: UInt8 = 1 << 1
      /// `discard`/`no-discard` was given; `discard` then says which.
      public static let hasDiscard: UInt8 = 1 << 2
      public static let discard: UInt8 = 1 << 3
      public static let untrusted: UInt8 = 1 << 4
      public static let hasBackend: UInt8 = 1 << 5
      public static let all: UInt8 = readOnly | isCDROM | hasDiscard | discard | untrusted | hasBackend
    }

    /// Bits of a vif's flags byte in the device table.
    public enum VIFFlag {
      public static let untrusted: UInt8 = 1 << 0
      public static let hasBridge: UInt8 = 1 << 1
      public static let hasBackend: UInt8 = 1 << 2
      public static let hasIP: UInt8 = 1 << 3
      public static let hasScript: UInt8 = 1 << 4
      public static let all: UInt8 = untrusted | hasBridge | hasBackend | hasIP | hasScript
    }

    public enum Blob {
      public static let size = 16
      public static let offset = 0  // u64
      public static let length = 8  // u64
    }
  }
}

// MARK: - Building (host side)

extension BootBundle {
  /// Packs domains and their files into a bundle, each file in a blob of its own (with
  /// `build(domains:blobs:)` domains can share blobs). An empty ramdisk is treated as none.
  public static func build(domains: [(config: DomainConfig, kernel: [UInt8], ramdisk: [UInt8]?)]) -> [UInt8] {
    var blobs: [[UInt8]] = []
    var entries: [(config: DomainConfig, kernel: Int, ramdisk: Int?)] = []
    for domain in domains {
      let kernel = blobs.count
      blobs.append(domain.kernel)
      var ramdisk: Int? = nil
      if let bytes = domain.ramdisk, !bytes.isEmpty {
        ramdisk = blobs.count
        blobs.append(bytes)
      }
      entries.append((domain.config, kernel, ramdisk))
    }
    return build(domains: entries, blobs: blobs)
  }

  /// Packs domains whose kernel and ramdisk are indices into `blobs`; any number of domain
  /// fields may name the same blob.
  ///
  /// It writes what it is given: a configuration that breaks a rule, or an index that names no
  /// blob (clamped to 32 bits), is packed as it is and reported by `parse`, so check
  /// configurations with `DomainConfig.validate` first.
  public static func build(domains: [(config: DomainConfig, kernel: Int, ramdisk: Int?)], blobs: [[UInt8]]) -> [UInt8] {
    // Strings first, to know the size of the metadata.
    var strings: [UInt8] = []
    func addString(_ bytes: [UInt8]) -> (offset: UInt32, length: UInt32) {
      let offset = UInt32(clamping: strings.count)
      strings.append(contentsOf: bytes)
      return (offset, UInt32(clamping: bytes.count))
    }

    var records: [[UInt8]] = []
    for domain in domains {
      let config = domain.config
      var record = [UInt8](repeating: 0, count: Layout.Domain.size)
      let name = addString(config.name)
      let cmdline = addString(config.cmdline)
      record.storeLE(name.offset, at: Layout.Domain.nameOffset)
      record.storeLE(name.length, at: Layout.Domain.nameLength)
      record.storeLE(config.type.rawValue, at: Layout.Domain.type)
      record.storeLE(UInt32(clamping: config.memoryMiB), at: Layout.Domain.memoryMiB)
      record.storeLE(UInt32(clamping: config.vcpus), at: Layout.Domain.vcpus)
      record.storeLE(cmdline.offset, at: Layout.Domain.cmdlineOffset)
      record.storeLE(cmdline.length, at: Layout.Domain.cmdlineLength)
      record[Layout.Domain.onPoweroff] = config.onPoweroff.rawValue
      record[Layout.Domain.onReboot] = config.onReboot.rawValue
      record[Layout.Domain.onCrash] = config.onCrash.rawValue

      var flags: UInt8 = 0
      // An optional number: its u32 at `offset`, and `flag` saying it is there.
      func optional(_ value: Int?, _ flag: UInt8, at offset: Int) {
        guard let value else { return }
        flags |= flag
        record.storeLE(UInt32(clamping: value), at: offset)
      }
      optional(config.maxVCPUs, Layout.Flag.hasMaxVCPUs, at: Layout.Domain.maxVCPUs)
      if let cpus = config.cpus {
        flags |= Layout.Flag.hasCPUs
        let range = addString(cpus)
        record.storeLE(range.offset, at: Layout.Domain.cpusOffset)
        record.storeLE(range.length, at: Layout.Domain.cpusLength)
      }
      optional(config.weight, Layout.Flag.hasWeight, at: Layout.Domain.weight)
      optional(config.cap, Layout.Flag.hasCap, at: Layout.Domain.cap)
      optional(config.maxMemoryMiB, Layout.Flag.hasMaxMemory, at: Layout.Domain.maxMemoryMiB)
      optional(config.maxGrantFrames, Layout.Flag.hasMaxGrantFrames, at: Layout.Domain.maxGrantFrames)
      optional(config.maxMaptrackFrames, Layout.Flag.hasMaxMaptrackFrames, at: Layout.Domain.maxMaptrackFrames)
      if config.isDriverDomain { flags |= Layout.Flag.isDriverDomain }
      if let maxEventChannels = config.maxEventChannels {
        record.storeLE(UInt32(clamping: maxEventChannels), at: Layout.Domain.maxEventChannels)
      }
      record[Layout.Domain.flags] = flags
      if !config.disks.isEmpty || !config.nics.isEmpty {
        let range = addString(deviceTable(config))
        record.storeLE(range.offset, at: Layout.Domain.devicesOffset)
        record.storeLE(range.length, at: Layout.Domain.devicesLength)
      }

      record.storeLE(UInt32(clamping: domain.kernel), at: Layout.Domain.kernelBlob)
      record.storeLE(domain.ramdisk.map { UInt32(clamping: $0) } ?? Layout.noBlob, at: Layout.Domain.ramdiskBlob)
      records.append(record)
    }

    let tableOffset = Layout.headerSize
    let stringsOffset = tableOffset + records.count * Layout.Domain.size + blobs.count * Layout.Blob.size
    var blobOffsets: [Int] = []
    var end = stringsOffset + strings.count
    for blob in blobs {
      let offset = alignUp(end, to: Layout.blobAlignment)
      blobOffsets.append(offset)
      end = offset + blob.count
    }

    var bundle = [UInt8](repeating: 0, count: end)
    bundle.replaceSubrange(0..<Layout.magic.count, with: Layout.magic)
    bundle.storeLE(Layout.version, at: Layout.Header.version)
    bundle.storeLE(UInt32(Layout.headerSize), at: Layout.Header.headerSize)
    bundle.storeLE(UInt64(end), at: Layout.Header.totalSize)
    bundle.storeLE(UInt32(clamping: records.count), at: Layout.Header.domainCount)
    bundle.storeLE(UInt32(clamping: blobs.count), at: Layout.Header.blobCount)
    bundle.storeLE(UInt64(tableOffset), at: Layout.Header.tableOffset)
    bundle.storeLE(UInt64(stringsOffset), at: Layout.Header.stringsOffset)
    bundle.storeLE(UInt64(strings.count), at: Layout.Header.stringsSize)

    var position = tableOffset
    for record in records {
      bundle.replaceSubrange(position..<position + record.count, with: record)
      position += record.count
    }
    for (blob, offset) in zip(blobs, blobOffsets) {
      bundle.storeLE(UInt64(offset), at: position + Layout.Blob.offset)
      bundle.storeLE(UInt64(blob.count), at: position + Layout.Blob.length)
      position += Layout.Blob.size
    }
    bundle.replaceSubrange(stringsOffset..<stringsOffset + strings.count, with: strings)
    for (blob, offset) in zip(blobs, blobOffsets) {
      bundle.replaceSubrange(offset..<offset + blob.count, with: blob)
    }
    return bundle
  }

  /// The device table of `config` (see the format above). Counts and lengths are clamped to
  /// their fields, so a configuration that breaks the limits packs into a table `parse` refuses.
  static func deviceTable(_ config: DomainConfig) -> [UInt8] {
    var table: [UInt8] = [UInt8(clamping: config.disks.count), UInt8(clamping: config.nics.count), 0, 0]
    func add(_ string: [UInt8]) {
      let length = UInt16(clamping: string.count)
      table += littleEndianBytes(length)
      table += string.prefix(Int(length))
    }
    for disk in config.disks.prefix(255) {
      var flags: UInt8 = 0
      if disk.readOnly { flags |= Layout.DiskFlag.readOnly }
      if disk.isCDROM { flags |= Layout.DiskFlag.isCDROM }
      if let discard = disk.discard { flags |= Layout.DiskFlag.hasDiscard | (discard ? Layout.DiskFlag.discard : 0) }
      if !disk.trusted { flags |= Layout.DiskFlag.untrusted }
      if disk.backend != nil { flags |= Layout.DiskFlag.hasBackend }
      table.append(flags)
      add(disk.vdev)
      add(disk.target)
      if let backend = disk.backend { add(backend) }
    }
    for nic in config.nics.prefix(255) {
      var flags: UInt8 = 0
      if !nic.trusted { flags |= Layout.VIFFlag.untrusted }
      if nic.bridge != nil { flags |= Layout.VIFFlag.hasBridge }
      if nic.backend != nil { flags |= Layout.VIFFlag.hasBackend }
      if nic.ip != nil { flags |= Layout.VIFFlag.hasIP }
      if nic.script != nil { flags |= Layout.VIFFlag.hasScript }
      table.append(flags)
      table += (nic.mac + [UInt8](repeating: 0, count: Layout.Devices.macSize)).prefix(Layout.Devices.macSize)
      for string in [nic.bridge, nic.backend, nic.ip, nic.script] {
        if let string { add(string) }
      }
    }
    return table
  }

  private static func alignUp(_ value: Int, to alignment: Int) -> Int {
    (value + alignment - 1) / alignment * alignment
  }
}

extension Array where Element == UInt8 {
  /// Writes `value` little-endian at `offset`, which must be in range (bundle building only).
  fileprivate mutating func storeLE<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at offset: Int) {
    for i in 0..<MemoryLayout<T>.size {
      self[offset + i] = UInt8(truncatingIfNeeded: value >> T(8 * i))
    }
  }
}

// MARK: - Parsing (hypervisor side)

extension BootBundle {
  /// Parses a bundle held in any byte collection indexed by Int: an array on the host, a buffer
  /// over the boot module in the hypervisor. Ranges in the result are offsets from the first byte.
  ///
  /// Throws when the bundle as a whole is unusable. A domain with a problem is left out of
  /// `domains` and described in `problems`.
  public static func parse<Bytes: RandomAccessCollection>(
    _ bytes: Bytes
  ) throws(BundleError) -> BootBundle where Bytes.Element == UInt8, Bytes.Index == Int {
    let available = bytes.count
    guard available >= Layout.headerSize else { throw .truncatedHeader(available: available) }
    var reader = BoundedByteReader(bytes: bytes, limit: Layout.headerSize)

    for i in 0..<Layout.magic.count where reader.u8(i) != Layout.magic[i] { throw .badMagic }
    let version = reader.u32(Layout.Header.version)
    guard version == Layout.version else { throw .unsupportedVersion(version) }
    let headerSize = reader.u32(Layout.Header.headerSize)
    guard headerSize == UInt32(Layout.headerSize) else { throw .badHeaderSize(headerSize) }
    guard reader.u64(Layout.Header.reserved) == 0 else { throw .reservedNotZero(offset: Layout.Header.reserved) }

    // From here on every read is bounded by the declared total size, which must be present.
    let totalSize = reader.u64(Layout.Header.totalSize)
    guard totalSize >= UInt64(Layout.headerSize) else { throw .totalSizeTooSmall(totalSize) }
    guard totalSize <= UInt64(available) else { throw .truncated(totalSize: totalSize, available: available) }
    let size = Int(totalSize)
    reader.limit = size

    let domainCount = Int(reader.u32(Layout.Header.domainCount))
    let blobCount = Int(reader.u32(Layout.Header.blobCount))
    guard domainCount <= Layout.maxDomains else { throw .tooManyDomains(domainCount) }
    guard blobCount <= Layout.maxBlobs else { throw .tooManyBlobs(blobCount) }

    // The record table: counts are bounded above, so the products cannot overflow.
    let tableOffset = reader.u64(Layout.Header.tableOffset)
    let tableSize = UInt64(domainCount * Layout.Domain.size + blobCount * Layout.Blob.size)
    guard tableOffset >= UInt64(Layout.headerSize), tableOffset % 8 == 0,
      let table = Self.range(tableOffset, tableSize, within: size)
    else { throw .tableOutOfRange(offset: tableOffset, size: tableSize) }

    let stringsOffset = reader.u64(Layout.Header.stringsOffset)
    let stringsSize = reader.u64(Layout.Header.stringsSize)
    guard stringsOffset >= UInt64(Layout.headerSize), stringsSize <= UInt64(UInt32.max),
      let strings = Self.range(stringsOffset, stringsSize, within: size)
    else { throw .stringsOutOfRange(offset: stringsOffset, size: stringsSize) }
    guard !table.overlaps(strings) else { throw .stringsOverlapTable }

    let metadata = [0..<Layout.headerSize, table, strings]
    let blobTable = table.lowerBound + domainCount * Layout.Domain.size
    let blobs = Self.readBlobs(reader, count: blobCount, at: blobTable, size: size, metadata: metadata)

    var parser = DomainRecordParser(reader: reader, strings: strings, blobs: blobs)
    for index in 0..<domainCount {
      parser.parse(index: index, at: table.lowerBound + index * Layout.Domain.size)
    }
    return BootBundle(domains: parser.domains, problems: parser.problems, blobCount: blobCount)
  }

  /// `offset..<offset+length` if it lies inside `0..<size`, computed without overflow.
  static func range(_ offset: UInt64, _ length: UInt64, within size: Int) -> Range<Int>? {
    let (end, overflow) = offset.addingReportingOverflow(length)
    guard !overflow, end <= UInt64(size) else { return nil }
    return Int(offset)..<Int(end)
  }

  /// Reads the blob records and finds the defective ones.
  private static func readBlobs<Bytes>(
    _ reader: BoundedByteReader<Bytes>, count: Int, at tableStart: Int, size: Int, metadata: [Range<Int>]
  ) -> [BlobRecord] {
    var blobs: [BlobRecord] = []
    for index in 0..<count {
      let record = tableStart + index * Layout.Blob.size
      let offset = reader.u64(record + Layout.Blob.offset)
      let length = reader.u64(record + Layout.Blob.length)
      var blob = BlobRecord(range: 0..<0, defect: nil)
      if let range = Self.range(offset, length, within: size) {
        blob.range = range
        if length == 0 {
          blob.defect = .empty
        } else if offset % UInt64(Layout.blobAlignment) != 0 {
          blob.defect = .misaligned(offset: offset)
        } else if metadata.contains(where: { $0.overlaps(range) }) {
          blob.defect = .overlapsMetadata
        }
      } else {
        blob.defect = .outOfRange(offset: offset, length: length)
      }
      blobs.append(blob)
    }

    // Sharing is by index; two blob records over the same bytes are a corrupt table, and both
    // are refused. In offset order, a blob overlaps an earlier one exactly when it starts before
    // the furthest end so far (comparing neighbours only would miss a blob inside a long one).
    let placed = blobs.indices.filter { blobs[$0].defect == nil }.sorted {
      blobs[$0].range.lowerBound < blobs[$1].range.lowerBound
    }
    var furthest: Int? = nil
    for index in placed {
      if let earlier = furthest, blobs[index].range.lowerBound < blobs[earlier].range.upperBound {
        blobs[index].defect = .overlapsBlob(earlier)
        if blobs[earlier].defect == nil { blobs[earlier].defect = .overlapsBlob(index) }
      }
      if furthest.map({ blobs[index].range.upperBound > blobs[$0].range.upperBound }) ?? true { furthest = index }
    }
    return blobs
  }
}

/// A blob record and what is wrong with it, if anything.
struct BlobRecord {
  var range: Range<Int>
  var defect: BundleProblem.BlobDefect?
}

/// Little-endian reads below `limit`, for the boot-time parsers (bundle, ELF). Callers check
/// ranges first; a read past the limit yields zero bytes instead of trapping, so a missed check
/// turns into a format error, never a crash.
struct BoundedByteReader<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
  let bytes: Bytes
  var limit: Int

  func u8(_ offset: Int) -> UInt8 {
    guard offset >= 0, offset < limit, offset < bytes.count else { return 0 }
    return bytes[bytes.startIndex + offset]
  }

  func u32(_ offset: Int) -> UInt32 {
    var value: UInt32 = 0
    for i in 0..<4 { value |= UInt32(u8(offset + i)) << UInt32(8 * i) }
    return value
  }

  func u64(_ offset: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<8 { value |= UInt64(u8(offset + i)) << UInt64(8 * i) }
    return value
  }

  func bytes(_ range: Range<Int>) -> [UInt8] {
    var result: [UInt8] = []
    result.reserveCapacity(range.count)
    for offset in range { result.append(u8(offset)) }
    return result
  }
}

/// Decodes domain records one by one, collecting the good ones and the problems.
struct DomainRecordParser<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
  typealias Layout = BootBundle.Layout

  let reader: BoundedByteReader<Bytes>
  let strings: Range<Int>
  let blobs: [BlobRecord]
  var domains: [BootBundle.BundledDomain] = []
  var problems: [BundleProblem] = []

  init(reader: BoundedByteReader<Bytes>, strings: Range<Int>, blobs: [BlobRecord]) {
    self.reader = reader
    self.strings = strings
    self.blobs = blobs
  }

  mutating func parse(index: Int, at record: Int) {
    // The name first, so every later problem can carry it.
    let name = string(at: record + Layout.Domain.nameOffset)
    do throws(BundleProblem.Kind) {
      let domain = try decode(index: index, at: record, name: name)
      if let twin = domains.first(where: { $0.config.name == domain.config.name }) {
        throw BundleProblem.Kind.duplicateName(firstIndex: twin.index)
      }
      domains.append(domain)
    } catch {
      problems.append(BundleProblem(domainIndex: index, name: name, kind: error))
    }
  }

  private func decode(
    index: Int, at record: Int, name: [UInt8]?
  ) throws(BundleProblem.Kind) -> BootBundle.BundledDomain {
    for offset in Layout.Domain.reserved..<Layout.Domain.size where reader.u8(record + offset) != 0 {
      throw .reservedNotZero(offset: offset)
    }
    let flags = reader.u8(record + Layout.Domain.flags)
    guard flags & ~Layout.Flag.all == 0 else { throw .unknownFlags(flags) }
    guard let name else { throw .stringOutOfRange(field: .name) }

    let rawType = reader.u32(record + Layout.Domain.type)
    guard let type = DomainType(rawValue: rawType) else { throw .unknownType(rawType) }
    let onPoweroff = try action(at: record + Layout.Domain.onPoweroff)
    let onReboot = try action(at: record + Layout.Domain.onReboot)
    let onCrash = try action(at: record + Layout.Domain.onCrash)
    guard let cmdline = string(at: record + Layout.Domain.cmdlineOffset) else {
      throw .stringOutOfRange(field: .cmdline)
    }
    var cpus: [UInt8]? = nil
    if flags & Layout.Flag.hasCPUs != 0 {
      guard let value = string(at: record + Layout.Domain.cpusOffset) else { throw .stringOutOfRange(field: .cpus) }
      cpus = value
    }

    var config = DomainConfig(
      name: name, type: type, memoryMiB: Int(reader.u32(record + Layout.Domain.memoryMiB)),
      vcpus: Int(reader.u32(record + Layout.Domain.vcpus)), kernelPath: [], cmdline: cmdline,
      onPoweroff: onPoweroff, onReboot: onReboot, onCrash: onCrash, cpus: cpus)
    if flags & Layout.Flag.hasMaxVCPUs != 0 { config.maxVCPUs = Int(reader.u32(record + Layout.Domain.maxVCPUs)) }
    if flags & Layout.Flag.hasWeight != 0 { config.weight = Int(reader.u32(record + Layout.Domain.weight)) }
    if flags & Layout.Flag.hasCap != 0 { config.cap = Int(reader.u32(record + Layout.Domain.cap)) }
    if flags & Layout.Flag.hasMaxMemory != 0 { config.maxMemoryMiB = Int(reader.u32(record + Layout.Domain.maxMemoryMiB)) }
    if flags & Layout.Flag.hasMaxGrantFrames != 0 { config.maxGrantFrames = Int(reader.u32(record + Layout.Domain.maxGrantFrames)) }
    if flags & Layout.Flag.hasMaxMaptrackFrames != 0 { config.maxMaptrackFrames = Int(reader.u32(record + Layout.Domain.maxMaptrackFrames)) }
    config.isDriverDomain = flags & Layout.Flag.isDriverDomain != 0
    let maxEventChannels = reader.u32(record + Layout.Domain.maxEventChannels)
    if maxEventChannels != 0 { config.maxEventChannels = Int(maxEventChannels) }
    if reader.u32(record + Layout.Domain.devicesLength) != 0 {
      guard let range = stringRange(at: record + Layout.Domain.devicesOffset) else { throw .stringOutOfRange(field: .devices) }
      var table = DeviceTableReader(reader: reader, position: range.lowerBound, end: range.upperBound)
      do throws(BundleProblem.DeviceTableDefect) {
        (config.disks, config.nics) = try table.devices()
      } catch {
        throw .badDeviceTable(error)
      }
    }
    do {
      try config.validate(requireKernelPath: false)
    } catch {
      throw .invalid(error)
    }

    let kernel = try blob(reader.u32(record + Layout.Domain.kernelBlob))
    var ramdisk: Range<Int>? = nil
    let ramdiskIndex = reader.u32(record + Layout.Domain.ramdiskBlob)
    if ramdiskIndex != Layout.noBlob {
      ramdisk = try blob(ramdiskIndex)
    }
    return BootBundle.BundledDomain(index: index, config: config, kernel: kernel, ramdisk: ramdisk)
  }

  /// The string an (offset u32, length u32) pair names in the strings area, or nil.
  private func string(at field: Int) -> [UInt8]? {
    stringRange(at: field).map { reader.bytes($0) }
  }

  /// The bundle offsets an (offset u32, length u32) pair names in the strings area, or nil.
  private func stringRange(at field: Int) -> Range<Int>? {
    let offset = UInt64(reader.u32(field))
    let length = UInt64(reader.u32(field + 4))
    guard let range = BootBundle.range(offset, length, within: strings.count) else { return nil }
    return (strings.lowerBound + range.lowerBound)..<(strings.lowerBound + range.upperBound)
  }

  private func action(at field: Int) throws(BundleProblem.Kind) -> ShutdownAction {
    let raw = reader.u8(field)
    guard let action = ShutdownAction(rawValue: raw) else { throw .unknownShutdownAction(raw) }
    return action
  }

  /// The bytes of blob `rawIndex`, which other fields and domains may use too.
  private func blob(_ rawIndex: UInt32) throws(BundleProblem.Kind) -> Range<Int> {
    guard let index = Int(exactly: rawIndex), index < blobs.count else {
      throw .blobIndexOutOfRange(rawIndex, count: blobs.count)
    }
    if let defect = blobs[index].defect { throw .badBlob(index: index, defect) }
    return blobs[index].range
  }
}

/// Reads a device table that lies inside the strings area (`position..<end`); every read is
/// checked against `end` first.
struct DeviceTableReader<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
  typealias Layout = BootBundle.Layout

  let reader: BoundedByteReader<Bytes>
  var position: Int
  let end: Int

  mutating func devices() throws(BundleProblem.DeviceTableDefect) -> (disks: [DiskConfig], nics: [NICConfig]) {
    let header = try take(Layout.Devices.headerSize)
    let diskCount = Int(reader.u8(header + Layout.Devices.diskCount))
    let vifCount = Int(reader.u8(header + Layout.Devices.vifCount))
    guard reader.u8(header + Layout.Devices.reserved) == 0, reader.u8(header + Layout.Devices.reserved + 1) == 0 else {
      throw .reservedNotZero
    }
    // The limits are validation's; a count above them is refused before anything is read.
    guard diskCount <= DiskConfig.maxCount else { throw .tooManyDisks(diskCount) }
    guard vifCount <= NICConfig.maxCount else { throw .tooManyVIFs(vifCount) }

    var disks: [DiskConfig] = []
    for _ in 0..<diskCount {
      let flags = try reader.u8(take(1))
      guard flags & ~Layout.DiskFlag.all == 0 else { throw .unknownDiskFlags(flags) }
      let vdev = try string()
      let target = try string()
      var backend: [UInt8]? = nil
      if flags & Layout.DiskFlag.hasBackend != 0 { backend = try string() }
      disks.append(DiskConfig(
        target: target, vdev: vdev, readOnly: flags & Layout.DiskFlag.readOnly != 0,
        isCDROM: flags & Layout.DiskFlag.isCDROM != 0,
        discard: flags & Layout.DiskFlag.hasDiscard != 0 ? flags & Layout.DiskFlag.discard != 0 : nil,
        trusted: flags & Layout.DiskFlag.untrusted == 0, backend: backend))
    }
    var nics: [NICConfig] = []
    for index in 0..<vifCount {
      let flags = try reader.u8(take(1))
      guard flags & ~Layout.VIFFlag.all == 0 else { throw .unknownVIFFlags(flags) }
      let mac = try take(Layout.Devices.macSize)
      var nic = NICConfig(devid: index, mac: reader.bytes(mac..<mac + Layout.Devices.macSize),
                          trusted: flags & Layout.VIFFlag.untrusted == 0)
      if flags & Layout.VIFFlag.hasBridge != 0 { nic.bridge = try string() }
      if flags & Layout.VIFFlag.hasBackend != 0 { nic.backend = try string() }
      if flags & Layout.VIFFlag.hasIP != 0 { nic.ip = try string() }
      if flags & Layout.VIFFlag.hasScript != 0 { nic.script = try string() }
      nics.append(nic)
    }
    guard position == end else { throw .trailingBytes(end - position) }
    return (disks, nics)
  }

  /// The offset of the next `count` bytes, which must lie before `end`.
  private mutating func take(_ count: Int) throws(BundleProblem.DeviceTableDefect) -> Int {
    guard count <= end - position else { throw .truncated }
    defer { position += count }
    return position
  }

  /// A u16 length and that many bytes.
  private mutating func string() throws(BundleProblem.DeviceTableDefect) -> [UInt8] {
    let field = try take(2)
    let length = Int(reader.u8(field)) | Int(reader.u8(field + 1)) << 8
    let start = try take(length)
    return reader.bytes(start..<start + length)
  }
}

// MARK: - Errors

/// Why a bundle cannot be used at all.
public enum BundleError: Error, Equatable, Sendable {
  /// Fewer bytes than a header.
  case truncatedHeader(available: Int)
  case badMagic
  case unsupportedVersion(UInt32)
  case badHeaderSize(UInt32)
  case reservedNotZero(offset: Int)
  case totalSizeTooSmall(UInt64)
  /// The header claims more bytes than the module holds.
  case truncated(totalSize: UInt64, available: Int)
  case tooManyDomains(Int)
  case tooManyBlobs(Int)
  case tableOutOfRange(offset: UInt64, size: UInt64)
  case stringsOutOfRange(offset: UInt64, size: UInt64)
  case stringsOverlapTable

  /// "boot bundle: version 7 is not supported (expected 2)".
  public func message() -> [UInt8] {
    var text = MessageText()
    text.add("boot bundle: ")
    switch self {
    case .truncatedHeader(let available):
      text.add("only ")
      text.add(available)
      text.add(" bytes, shorter than the 64-byte header")
    case .badMagic:
      text.add("bad magic (not a Swiftvisor boot bundle)")
    case .unsupportedVersion(let version):
      text.add("version ")
      text.add(UInt(version))
      text.add(" is not supported (expected ")
      text.add(UInt(BootBundle.Layout.version))
      text.add(")")
    case .badHeaderSize(let size):
      text.add("header size ")
      text.add(UInt(size))
      text.add(" is not 64")
    case .reservedNotZero(let offset):
      text.add("reserved header bytes at offset ")
      text.add(offset)
      text.add(" are not zero")
    case .totalSizeTooSmall(let size):
      text.add("total size ")
      text.add(UInt(size))
      text.add(" is smaller than the header")
    case .truncated(let totalSize, let available):
      text.add("header says ")
      text.add(UInt(totalSize))
      text.add(" bytes but only ")
      text.add(available)
      text.add(" are present")
    case .tooManyDomains(let count):
      text.add(count)
      text.add(" domains; at most ")
      text.add(BootBundle.Layout.maxDomains)
      text.add(" are allowed")
    case .tooManyBlobs(let count):
      text.add(count)
      text.add(" blobs; at most ")
      text.add(BootBundle.Layout.maxBlobs)
      text.add(" are allowed")
    case .tableOutOfRange(let offset, let size):
      text.add("record table (offset ")
      text.addHex(offset)
      text.add(", ")
      text.add(UInt(size))
      text.add(" bytes) is outside the bundle or misaligned")
    case .stringsOutOfRange(let offset, let size):
      text.add("strings area (offset ")
      text.addHex(offset)
      text.add(", ")
      text.add(UInt(size))
      text.add(" bytes) is outside the bundle")
    case .stringsOverlapTable:
      text.add("strings area overlaps the record table")
    }
    return text.bytes
  }
}

/// Why one domain of a bundle cannot be built.
public struct BundleProblem: Equatable, Sendable {
  /// The string fields of a domain record.
  public enum StringField: Equatable, Sendable {
    case name
    case cmdline
    case cpus
    /// The device table.
    case devices
  }

  /// What is wrong with a domain's device table (before its values are validated).
  public enum DeviceTableDefect: Error, Equatable, Sendable {
    /// A count, flags byte or string runs past the table's end.
    case truncated
    case reservedNotZero
    case tooManyDisks(Int)
    case tooManyVIFs(Int)
    case unknownDiskFlags(UInt8)
    case unknownVIFFlags(UInt8)
    /// Bytes after the last device.
    case trailingBytes(Int)
  }

  /// What is wrong with a blob record.
  public enum BlobDefect: Equatable, Sendable {
    case empty
    case outOfRange(offset: UInt64, length: UInt64)
    case misaligned(offset: UInt64)
    case overlapsMetadata
    case overlapsBlob(Int)
  }

  public enum Kind: Error, Equatable, Sendable {
    case reservedNotZero(offset: Int)
    case unknownFlags(UInt8)
    case stringOutOfRange(field: StringField)
    case unknownType(UInt32)
    case unknownShutdownAction(UInt8)
    case blobIndexOutOfRange(UInt32, count: Int)
    case badBlob(index: Int, BlobDefect)
    case duplicateName(firstIndex: Int)
    case badDeviceTable(DeviceTableDefect)
    case invalid(DomainConfigProblem)
  }

  /// The domain's position in the bundle (0-based).
  public var domainIndex: Int
  /// Its name, when the name itself could be read.
  public var name: [UInt8]?
  public var kind: Kind

  public init(domainIndex: Int, name: [UInt8]?, kind: Kind) {
    self.domainIndex = domainIndex
    self.name = name
    self.kind = kind
  }

  /// "domain 2 (web): memory: must be between 16 and 65536 MiB (got 8)".
  public var message: [UInt8] {
    var text = MessageText()
    text.add("domain ")
    text.add(domainIndex)
    if let name {
      text.add(" (")
      text.add(name)
      text.add(")")
    }
    text.add(": ")
    switch kind {
    case .reservedNotZero(let offset):
      text.add("reserved record bytes at offset ")
      text.add(offset)
      text.add(" are not zero")
    case .unknownFlags(let flags):
      text.add("unknown flags ")
      text.addHex(UInt64(flags))
    case .stringOutOfRange(let field):
      switch field {
      case .name: text.add("name")
      case .cmdline: text.add("cmdline")
      case .cpus: text.add("cpus")
      case .devices: text.add("device table")
      }
      text.add(": string is outside the strings area")
    case .unknownType(let raw):
      text.add("type: unknown value ")
      text.add(UInt(raw))
    case .unknownShutdownAction(let raw):
      text.add("shutdown action: unknown value ")
      text.add(UInt(raw))
    case .blobIndexOutOfRange(let raw, let count):
      text.add("blob index ")
      text.add(UInt(raw))
      text.add(" is out of range (")
      text.add(count)
      text.add(" blobs)")
    case .badBlob(let index, let defect):
      text.add("blob ")
      text.add(index)
      switch defect {
      case .empty: text.add(" is empty")
      case .outOfRange(let offset, let length):
        text.add(" (offset ")
        text.addHex(offset)
        text.add(", ")
        text.add(UInt(length))
        text.add(" bytes) is outside the bundle")
      case .misaligned(let offset):
        text.add(" at offset ")
        text.addHex(offset)
        text.add(" is not 4 KiB-aligned")
      case .overlapsMetadata: text.add(" overlaps the bundle's header or tables")
      case .overlapsBlob(let other):
        text.add(" overlaps blob ")
        text.add(other)
      }
    case .duplicateName(let first):
      text.add("name is already used by domain ")
      text.add(first)
    case .badDeviceTable(let defect):
      text.add("device table: ")
      switch defect {
      case .truncated: text.add("ends inside a device")
      case .reservedNotZero: text.add("reserved bytes are not zero")
      case .tooManyDisks(let count):
        text.addTooMany(count, "disks", atMost: DiskConfig.maxCount)
      case .tooManyVIFs(let count):
        text.addTooMany(count, "vifs", atMost: NICConfig.maxCount)
      case .unknownDiskFlags(let flags):
        text.add("unknown disk flags ")
        text.addHex(UInt64(flags))
      case .unknownVIFFlags(let flags):
        text.add("unknown vif flags ")
        text.addHex(UInt64(flags))
      case .trailingBytes(let count):
        text.add(count)
        text.add(" bytes after the last device")
      }
    case .invalid(let problem):
      text.add(problem.key)
      text.add(": ")
      text.add(problem.message())
    }
    return text.bytes
  }
}
