// What a domain is made of, as the user describes it (an xl.cfg file on the host) and as the
// hypervisor receives it (a record in the boot bundle). Both sides validate with the same rules,
// so a configuration `visor` accepts is one the hypervisor accepts.

/// The kind of guest. Only PVH can be built today; the others are recognised so that a
/// configuration naming them gets a clear refusal rather than "unknown type".
public enum DomainType: UInt32, Equatable, Sendable {
  case pvh = 1
  case hvm = 2
  case pv = 3
}

/// What the hypervisor does when a domain shuts down for a given reason (xl's `on_poweroff`,
/// `on_reboot`, `on_crash`).
public enum ShutdownAction: UInt8, Equatable, Sendable {
  /// Destroy the domain.
  case destroy = 0
  /// Destroy it and build it again from the same configuration.
  case restart = 1
  /// Keep the domain's memory and state for inspection; it never runs again.
  case preserve = 2
}

/// One domain's configuration.
///
/// Paths are host-side: `visor` reads the files they name and puts their contents into the boot
/// bundle, so in the hypervisor `kernelPath` and `ramdiskPath` are only informative.
public struct DomainConfig: Equatable, Sendable {
  public var name: [UInt8]
  public var type: DomainType
  public var memoryMiB: Int
  /// xl's `maxmem`: the most memory the domain may grow to (populate_physmap); nil means
  /// `memoryMiB`.
  public var maxMemoryMiB: Int?
  public var vcpus: Int
  /// Upper limit on vcpus brought up at run time; nil means the same as `vcpus`.
  public var maxVCPUs: Int?
  public var kernelPath: [UInt8]
  public var ramdiskPath: [UInt8]?
  /// The guest's kernel command line.
  public var cmdline: [UInt8]
  public var onPoweroff: ShutdownAction
  public var onReboot: ShutdownAction
  public var onCrash: ShutdownAction
  /// xl's `cpus`: the pcpus the domain's vcpus may run on, as written (e.g. "0-3,^1"). Stored
  /// for the scheduler, which interprets it.
  public var cpus: [UInt8]?
  /// Credit scheduler weight (xl default 256).
  public var weight: Int?
  /// Credit scheduler cap in percent of one pcpu; 0 means no cap.
  public var cap: Int?
  /// xl's `max_grant_frames`: the most frames its grant table may grow to (Xen's default 64).
  public var maxGrantFrames: Int?
  /// xl's `max_maptrack_frames`: the most frames of grant mappings it may make, 256 mappings
  /// each (Xen's default 1024).
  public var maxMaptrackFrames: Int?
  /// xl's `max_event_channels`: the highest event channel port it may allocate (libxl's default
  /// 1023, `Events.defaultMaximumPort`).
  public var maxEventChannels: Int?
  /// xl's `disk`: the PV disks, in list order.
  public var disks: [DiskConfig]
  /// xl's `vif`: the PV NICs, in list order (each one's devid is its index).
  public var nics: [NICConfig]
  /// xl's `driver_domain`: the domain serves other domains' PV devices. The toolstack writes
  /// backend nodes into its home, and a device that names no `backend` is served by it when it
  /// is the only such domain (`DeviceBackends`).
  public var isDriverDomain: Bool

  /// The defaults xl uses for everything but the name, memory and kernel.
  public init(
    name: [UInt8], type: DomainType = .pvh, memoryMiB: Int, vcpus: Int = 1, maxVCPUs: Int? = nil,
    kernelPath: [UInt8], ramdiskPath: [UInt8]? = nil, cmdline: [UInt8] = [],
    onPoweroff: ShutdownAction = .destroy, onReboot: ShutdownAction = .restart,
    onCrash: ShutdownAction = .destroy, cpus: [UInt8]? = nil, weight: Int? = nil, cap: Int? = nil
  ) {
    self.name = name
    self.type = type
    self.memoryMiB = memoryMiB
    self.maxMemoryMiB = nil
    self.vcpus = vcpus
    self.maxVCPUs = maxVCPUs
    self.kernelPath = kernelPath
    self.ramdiskPath = ramdiskPath
    self.cmdline = cmdline
    self.onPoweroff = onPoweroff
    self.onReboot = onReboot
    self.onCrash = onCrash
    self.cpus = cpus
    self.weight = weight
    self.cap = cap
    self.maxGrantFrames = nil
    self.maxMaptrackFrames = nil
    self.maxEventChannels = nil
    self.disks = []
    self.nics = []
    self.isDriverDomain = false
  }

  /// The action configured for a shutdown with `reason`, as xl maps them: poweroff →
  /// `on_poweroff`, reboot → `on_reboot`, crash → `on_crash`. The others have no key here and are
  /// destroyed: a watchdog end (xl's `on_watchdog`, default destroy), a suspend (nobody is there
  /// to save the domain) and a soft reset (not supported).
  public func action(after reason: Domain.ShutdownReason) -> ShutdownAction {
    switch reason {
    case .poweroff: onPoweroff
    case .reboot: onReboot
    case .crash: onCrash
    case .watchdog, .suspend, .softReset: .destroy
    }
  }

  // MARK: - Limits

  public static let maxNameLength = 64
  public static let memoryMiBRange = 16...65536
  public static let vcpuRange = 1...64
  public static let weightRange = 1...65535
  /// 100 per vcpu at most: a cap above all of the domain's vcpus running flat out means nothing.
  public static let capRange = 0...6400
  /// At least the one frame every table has (Xen's INITIAL_NR_GRANT_FRAMES); at most 4096
  /// frames, 2 million grant entries in version 1 (16 MiB of table).
  public static let maxGrantFramesRange = 1...4096
  /// 0 (a domain that maps no grant) up to 4096 frames: a million mappings, 16 MiB of the
  /// hypervisor's frames.
  public static let maxMaptrackFramesRange = 0...4096
  /// At least port 1; at most the FIFO ABI's 131,072 ports (its last one is 131,071, so the top
  /// value means "all FIFO can name"): 131,072 channels of 8 bytes are 1 MiB of the hypervisor's
  /// heap, plus FIFO's 128 event array pages of the guest's own.
  public static let maxEventChannelsRange = 1...131_072
  /// Longest command line passed to a guest (Linux's COMMAND_LINE_SIZE on x86 is 2048).
  public static let maxCmdlineLength = 2048
  /// Longest `cpus` string kept.
  public static let maxCPUsLength = 256

  // MARK: - Validation

  /// Checks the rules every domain must meet and throws the first one broken.
  ///
  /// `requireKernelPath` is false in the hypervisor, where the kernel arrives as bytes and the
  /// path is meaningless.
  public func validate(requireKernelPath: Bool = true) throws(DomainConfigProblem) {
    if name.isEmpty { throw .missingName }
    if name.count > Self.maxNameLength { throw .nameTooLong(length: name.count) }
    for byte in name where !Self.isNameByte(byte) { throw .nameHasInvalidByte(byte) }
    if type != .pvh { throw .unsupportedType(type) }
    if !Self.memoryMiBRange.contains(memoryMiB) { throw .memoryOutOfRange(memoryMiB) }
    if let maxMemoryMiB, maxMemoryMiB < memoryMiB || !Self.memoryMiBRange.contains(maxMemoryMiB) {
      throw .maxMemoryOutOfRange(maxMemoryMiB, memory: memoryMiB)
    }
    if !Self.vcpuRange.contains(vcpus) { throw .vcpusOutOfRange(vcpus) }
    if let maxVCPUs, maxVCPUs < vcpus || maxVCPUs > Self.vcpuRange.upperBound {
      throw .maxVCPUsOutOfRange(maxVCPUs, vcpus: vcpus)
    }
    if requireKernelPath && kernelPath.isEmpty { throw .missingKernel }
    if cmdline.count > Self.maxCmdlineLength { throw .cmdlineTooLong(length: cmdline.count) }
    if cmdline.contains(0) { throw .cmdlineHasNUL }
    if let cpus, cpus.count > Self.maxCPUsLength { throw .cpusTooLong(length: cpus.count) }
    if let weight, !Self.weightRange.contains(weight) { throw .weightOutOfRange(weight) }
    if let cap, !Self.capRange.contains(cap) { throw .capOutOfRange(cap) }
    if let maxGrantFrames, !Self.maxGrantFramesRange.contains(maxGrantFrames) { throw .maxGrantFramesOutOfRange(maxGrantFrames) }
    if let maxMaptrackFrames, !Self.maxMaptrackFramesRange.contains(maxMaptrackFrames) { throw .maxMaptrackFramesOutOfRange(maxMaptrackFrames) }
    if let maxEventChannels, !Self.maxEventChannelsRange.contains(maxEventChannels) { throw .maxEventChannelsOutOfRange(maxEventChannels) }
    try validateDevices()
  }

  /// Each disk and vif meets its rules, there are not too many, and no two are the same device
  /// (two vdevs with one number, such as "xvda" and "51712", would share their xenstore nodes).
  public func validateDevices() throws(DomainConfigProblem) {
    if disks.count > DiskConfig.maxCount { throw .tooManyDisks(disks.count) }
    for (index, disk) in disks.enumerated() {
      do {
        try disk.validate()
      } catch {
        throw .disk(index: index, error)
      }
      if let first = disks[..<index].firstIndex(where: { $0.devid == disk.devid }) {
        throw .disk(index: index, .sameDeviceAs(entry: first))
      }
    }
    if nics.count > NICConfig.maxCount { throw .tooManyVIFs(nics.count) }
    for (index, nic) in nics.enumerated() {
      do {
        try nic.validate()
      } catch {
        throw .vif(index: index, error)
      }
      if let first = nics[..<index].firstIndex(where: { $0.devid == nic.devid }) {
        throw .vif(index: index, .sameDeviceAs(entry: first))
      }
    }
  }

  /// A domain name is `[A-Za-z0-9_.-]`: it appears in console prefixes and log lines, so it
  /// must not carry spaces or control bytes.
  public static func isNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
      return true
    default:
      return false
    }
  }
}

/// A rule of `DomainConfig.validate` that a configuration breaks.
public enum DomainConfigProblem: Error, Equatable, Sendable {
  case maxMemoryOutOfRange(Int, memory: Int)
  case missingName
  case nameTooLong(length: Int)
  case nameHasInvalidByte(UInt8)
  case unsupportedType(DomainType)
  case memoryOutOfRange(Int)
  case vcpusOutOfRange(Int)
  case maxVCPUsOutOfRange(Int, vcpus: Int)
  case missingKernel
  case cmdlineTooLong(length: Int)
  case cmdlineHasNUL
  case cpusTooLong(length: Int)
  case weightOutOfRange(Int)
  case capOutOfRange(Int)
  case maxGrantFramesOutOfRange(Int)
  case maxMaptrackFramesOutOfRange(Int)
  case maxEventChannelsOutOfRange(Int)
  case tooManyDisks(Int)
  case tooManyVIFs(Int)
  /// The `index`th (0-based) entry of `disk`.
  case disk(index: Int, DeviceProblem)
  /// The `index`th (0-based) entry of `vif`.
  case vif(index: Int, DeviceProblem)

  /// The xl.cfg key the problem is about.
  public var key: [UInt8] {
    switch self {
    case .missingName, .nameTooLong, .nameHasInvalidByte: return Array("name".utf8)
    case .unsupportedType: return Array("type".utf8)
    case .memoryOutOfRange: return Array("memory".utf8)
    case .maxMemoryOutOfRange: return Array("maxmem".utf8)
    case .vcpusOutOfRange: return Array("vcpus".utf8)
    case .maxVCPUsOutOfRange: return Array("maxvcpus".utf8)
    case .missingKernel: return Array("kernel".utf8)
    case .cmdlineTooLong, .cmdlineHasNUL: return Array("cmdline".utf8)
    case .cpusTooLong: return Array("cpus".utf8)
    case .weightOutOfRange: return Array("weight".utf8)
    case .capOutOfRange: return Array("cap".utf8)
    case .maxGrantFramesOutOfRange: return Array("max_grant_frames".utf8)
    case .maxMaptrackFramesOutOfRange: return Array("max_maptrack_frames".utf8)
    case .maxEventChannelsOutOfRange: return Array("max_event_channels".utf8)
    case .tooManyDisks, .disk: return Array("disk".utf8)
    case .tooManyVIFs, .vif: return Array("vif".utf8)
    }
  }

  /// What is wrong, in words, without the key: "must be between 16 and 65536 (got 8)".
  public func message() -> [UInt8] {
    var text = MessageText()
    switch self {
    case .missingName:
      text.add("is required and must not be empty")
    case .nameTooLong(let length):
      text.add("is ")
      text.add(length)
      text.add(" bytes long; at most ")
      text.add(DomainConfig.maxNameLength)
      text.add(" are allowed")
    case .nameHasInvalidByte(let byte):
      text.add("may contain only A-Z a-z 0-9 _ . - (found byte ")
      text.addHex(UInt64(byte))
      text.add(")")
    case .unsupportedType(let type):
      text.add("\"")
      text.add(type.name)
      text.add("\" guests are not supported yet; only \"pvh\" is")
    case .memoryOutOfRange(let value):
      text.addRange(DomainConfig.memoryMiBRange, unit: " MiB", got: value)
    case .maxMemoryOutOfRange(let value, let memory):
      text.add("must be at least memory (")
      text.add(memory)
      text.add(" MiB) and at most ")
      text.add(DomainConfig.memoryMiBRange.upperBound)
      text.add(" MiB (got ")
      text.add(value)
      text.add(")")
    case .vcpusOutOfRange(let value):
      text.addRange(DomainConfig.vcpuRange, unit: "", got: value)
    case .maxVCPUsOutOfRange(let value, let vcpus):
      text.add("must be at least vcpus (")
      text.add(vcpus)
      text.add(") and at most ")
      text.add(DomainConfig.vcpuRange.upperBound)
      text.add(" (got ")
      text.add(value)
      text.add(")")
    case .missingKernel:
      text.add("is required")
    case .cmdlineTooLong(let length):
      text.add("is ")
      text.add(length)
      text.add(" bytes long; at most ")
      text.add(DomainConfig.maxCmdlineLength)
      text.add(" are allowed")
    case .cmdlineHasNUL:
      text.add("must not contain a NUL byte")
    case .cpusTooLong(let length):
      text.add("is ")
      text.add(length)
      text.add(" bytes long; at most ")
      text.add(DomainConfig.maxCPUsLength)
      text.add(" are allowed")
    case .weightOutOfRange(let value):
      text.addRange(DomainConfig.weightRange, unit: "", got: value)
    case .capOutOfRange(let value):
      text.addRange(DomainConfig.capRange, unit: " percent", got: value)
    case .maxGrantFramesOutOfRange(let value):
      text.addRange(DomainConfig.maxGrantFramesRange, unit: " frames", got: value)
    case .maxMaptrackFramesOutOfRange(let value):
      text.addRange(DomainConfig.maxMaptrackFramesRange, unit: " frames", got: value)
    case .maxEventChannelsOutOfRange(let value):
      text.addRange(DomainConfig.maxEventChannelsRange, unit: "", got: value)
    case .tooManyDisks(let count):
      text.addTooMany(count, "disks", atMost: DiskConfig.maxCount)
    case .tooManyVIFs(let count):
      text.addTooMany(count, "vifs", atMost: NICConfig.maxCount)
    case .disk(let index, let problem), .vif(let index, let problem):
      // 1-based, as a reader counts the list's entries.
      text.add("entry ")
      text.add(index + 1)
      text.add(": ")
      text.add(problem.message())
    }
    return text.bytes
  }
}

extension DomainType {
  /// The name xl.cfg uses for the type.
  public var name: [UInt8] {
    switch self {
    case .pvh: return Array("pvh".utf8)
    case .hvm: return Array("hvm".utf8)
    case .pv: return Array("pv".utf8)
    }
  }

  /// The type xl.cfg calls `name`, or nil.
  public init?(name: [UInt8]) {
    if name.elementsEqual("pvh".utf8) {
      self = .pvh
    } else if name.elementsEqual("hvm".utf8) {
      self = .hvm
    } else if name.elementsEqual("pv".utf8) {
      self = .pv
    } else {
      return nil
    }
  }
}

extension ShutdownAction {
  /// The name xl.cfg uses for the action.
  public var name: [UInt8] {
    switch self {
    case .destroy: return Array("destroy".utf8)
    case .restart: return Array("restart".utf8)
    case .preserve: return Array("preserve".utf8)
    }
  }

  /// Every action name xl knows (libxl's action_on_shutdown). The ones without a
  /// `ShutdownAction` are recognised so they can be refused as unsupported rather than unknown.
  public static let xlActionNames: [[UInt8]] = [
    Array("destroy".utf8), Array("restart".utf8), Array("rename-restart".utf8),
    Array("preserve".utf8), Array("coredump-destroy".utf8), Array("coredump-restart".utf8),
    Array("soft-reset".utf8),
  ]

  /// The action xl.cfg calls `name`, or nil (also for xl actions not supported here).
  public init?(name: [UInt8]) {
    if name.elementsEqual("destroy".utf8) {
      self = .destroy
    } else if name.elementsEqual("restart".utf8) {
      self = .restart
    } else if name.elementsEqual("preserve".utf8) {
      self = .preserve
    } else {
      return nil
    }
  }
}

// MARK: - Message text

/// Builds the byte strings of error messages without `String` formatting, which Embedded Swift
/// keeps out of the image.
struct MessageText {
  var bytes: [UInt8] = []

  mutating func add(_ text: String) {
    bytes.append(contentsOf: text.utf8)
  }

  mutating func add(_ raw: [UInt8]) {
    bytes.append(contentsOf: raw)
  }

  /// A signed decimal number.
  mutating func add(_ value: Int) {
    if value < 0 {
      bytes.append(UInt8(ascii: "-"))
      add(value.magnitude)
    } else {
      add(UInt(value))
    }
  }

  /// An unsigned decimal number.
  mutating func add(_ value: UInt) {
    var digits: [UInt8] = []
    var rest = value
    repeat {
      digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
      rest /= 10
    } while rest > 0
    bytes.append(contentsOf: digits.reversed())
  }

  /// `0x` and the hexadecimal digits of `value`, without leading zeros.
  mutating func addHex(_ value: UInt64) {
    bytes.append(contentsOf: "0x".utf8)
    var digits: [UInt8] = []
    var rest = value
    repeat {
      let nibble = UInt8(rest & 0xF)
      digits.append(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
      rest >>= 4
    } while rest > 0
    bytes.append(contentsOf: digits.reversed())
  }

  /// "40 disks; at most 32 are allowed".
  mutating func addTooMany(_ count: Int, _ what: String, atMost limit: Int) {
    add(count)
    add(" ")
    add(what)
    add("; at most ")
    add(limit)
    add(" are allowed")
  }

  /// "must be between LOW and HIGHunit (got VALUE)".
  mutating func addRange(_ range: ClosedRange<Int>, unit: String, got value: Int) {
    add("must be between ")
    add(range.lowerBound)
    add(" and ")
    add(range.upperBound)
    add(unit)
    add(" (got ")
    add(value)
    add(")")
  }
}
