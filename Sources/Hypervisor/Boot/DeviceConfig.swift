// PV devices as xl.cfg describes them: the entries of `disk = [...]` (xl-disk-configuration(5))
// and of `vif = [...]` (xl-network-configuration(5)). `visor` reads them from the file, the boot
// bundle carries them, and the hypervisor's toolstack writes their xenstore nodes
// (XenstoreDevices.swift); all three use the parsers and rules here.
//
// Disk entries follow libxlu's disk scanner (tools/libs/util/libxlu_disk_l.l): comma-separated
// parameters, `key=value` or positional (target, format, vdev, access in that order), white space
// before a parameter ignored, and `target=` last, taking the rest of the entry (commas included).
// Vif entries follow xl's parse_nic_config: `key=value` pairs separated by commas.
// Unlike xl, a parameter given twice is refused rather than the last one winning.

/// One `disk =` entry.
public struct DiskConfig: Equatable, Sendable {
  /// `target=`: what the backend serves, as written (the backend's `params` node). Only the
  /// string is carried; the backend domain finds the bytes.
  public var target: [UInt8]
  /// `vdev=`: the guest's name for the disk, e.g. "xvda" (the backend's `dev` node).
  public var vdev: [UInt8]
  /// The device number libxl derives from `vdev` (`deviceNumber(vdev:)`): the frontend's
  /// `virtual-device` and the device's id in both paths.
  public var devid: Int
  /// `access=r`/`ro` (the backend's `mode` is "r"); writable by default.
  public var readOnly: Bool
  /// `devtype=cdrom` (or a `:cdrom` vdev suffix, or a bare `cdrom`).
  public var isCDROM: Bool
  /// `discard` / `no-discard`; nil is libxl's default, on for a writable disk.
  public var discard: Bool?
  /// `trusted` / `untrusted`: the frontend's `trusted` node (libxl's default is trusted).
  public var trusted: Bool
  /// `backend=`: the name (or id) of the domain that serves the disk, as written; nil means
  /// the boot bundle's one driver domain (`DeviceBackends`).
  public var backend: [UInt8]?

  public init(target: [UInt8], vdev: [UInt8], readOnly: Bool = false, isCDROM: Bool = false,
              discard: Bool? = nil, trusted: Bool = true, backend: [UInt8]? = nil) {
    self.target = target
    self.vdev = vdev
    self.devid = Self.deviceNumber(vdev: vdev) ?? -1
    self.readOnly = readOnly
    self.isCDROM = isCDROM
    self.discard = discard
    self.trusted = trusted
    self.backend = backend
  }

  /// libxl's `discard-enable`: as set, else on for a writable disk.
  public var discardEnabled: Bool { discard ?? !readOnly }
}

/// One `vif =` entry.
public struct NICConfig: Equatable, Sendable {
  /// The vif's position in the list: libxl gives each new vif the next free device id, which
  /// for a domain's boot vifs is their index (the `handle` node).
  public var devid: Int
  /// `mac=`, six bytes; made up when absent (`generatedMAC`).
  public var mac: [UInt8]
  /// `bridge=`; nil is libxl's default, "xenbr0".
  public var bridge: [UInt8]?
  /// `backend=`: as for a disk.
  public var backend: [UInt8]?
  /// `ip=`, as written (for the backend's hotplug script).
  public var ip: [UInt8]?
  /// `script=`, as written; nil is libxl's default, vif-bridge.
  public var script: [UInt8]?
  /// `trusted` / `untrusted`.
  public var trusted: Bool

  public init(devid: Int, mac: [UInt8], bridge: [UInt8]? = nil, backend: [UInt8]? = nil,
              ip: [UInt8]? = nil, script: [UInt8]? = nil, trusted: Bool = true) {
    self.devid = devid
    self.mac = mac
    self.bridge = bridge
    self.backend = backend
    self.ip = ip
    self.script = script
    self.trusted = trusted
  }

  /// A MAC for a vif that names none. xl makes a random one in Xen's OUI (00:16:3e, with the
  /// fourth byte's top bit clear: libxl__device_nic_setdefault); here the three random bytes
  /// come from a hash of the domain's name and the vif's index instead, so the same
  /// configuration gets the same MAC on every boot and a restarted domain keeps its address.
  public static func generatedMAC(domainName: [UInt8], index: Int) -> [UInt8] {
    // FNV-1a, 64 bits: enough spread for three bytes, and no tables.
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in domainName + [0] + littleEndianBytes(UInt64(truncatingIfNeeded: index)) {
      hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    return [0x00, 0x16, 0x3E, UInt8(truncatingIfNeeded: hash >> 16) & 0x7F,
            UInt8(truncatingIfNeeded: hash >> 8), UInt8(truncatingIfNeeded: hash)]
  }
}

/// What is wrong with one device entry. Messages say it without the key and entry number.
public enum DeviceProblem: Error, Equatable, Sendable {
  /// A `key=` (or bare word) the entry's syntax does not have.
  case unknownParameter([UInt8])
  /// A parameter set twice (positionally or by name).
  case repeated([UInt8])
  /// A value Swiftvisor does not take for the parameter (format=qcow2, type=ioemu, ...).
  case unsupportedValue(parameter: [UInt8], value: [UInt8])
  /// A deprecated `prefix:` before the target that is unknown or needs a script (nbd:, iscsi:).
  case unsupportedPrefix([UInt8])
  /// A fifth positional parameter.
  case tooManyPositional([UInt8])
  /// A parameter every entry needs (target, vdev).
  case missing([UInt8])
  /// A vdev libxl cannot turn into a device number.
  case badVdev([UInt8])
  /// A MAC that is not six hex bytes separated by colons, or that no NIC may have (zero or
  /// multicast: Linux's netfront refuses it).
  case badMAC([UInt8])
  case tooLong(parameter: [UInt8], length: Int, maximum: Int)
  /// A control byte or a byte a domain name may not have.
  case badByte(parameter: [UInt8], byte: UInt8)
  /// The same device number (or vif handle) as an earlier entry (0-based index).
  case sameDeviceAs(entry: Int)

  /// "format \"qcow2\" is not supported (only raw)".
  public func message() -> [UInt8] {
    var text = MessageText()
    switch self {
    case .unknownParameter(let name):
      text.add("unknown parameter \"")
      text.add(name)
      text.add("\"")
    case .repeated(let name):
      text.add(name)
      text.add(" is given twice")
    case .unsupportedValue(let parameter, let value):
      text.add(parameter)
      text.add(" \"")
      text.add(value)
      text.add("\" is not supported (")
      text.add(Self.supportedValues(of: parameter))
      text.add(")")
    case .unsupportedPrefix(let prefix):
      text.add("target prefix \"")
      text.add(prefix)
      text.add(":\" is not supported")
    case .tooManyPositional(let value):
      text.add("too many positional parameters at \"")
      text.add(value)
      text.add("\" (the order is target,format,vdev,access)")
    case .missing(let name):
      text.add("no ")
      text.add(name)
      text.add(" given")
    case .badVdev(let value):
      text.add("vdev \"")
      text.add(value)
      text.add("\" is not a virtual disk name (xvdX, hdX, sdX, dNpM or a number)")
    case .badMAC(let value):
      text.add("mac \"")
      text.add(value)
      text.add("\" is not a unicast MAC address (six hex bytes separated by \":\")")
    case .tooLong(let parameter, let length, let maximum):
      text.add(parameter)
      text.add(" is ")
      text.add(length)
      text.add(" bytes long; at most ")
      text.add(maximum)
      text.add(" are allowed")
    case .badByte(let parameter, let byte):
      text.add(parameter)
      text.add(" may not contain byte ")
      text.addHex(UInt64(byte))
    case .sameDeviceAs(let entry):
      text.add("is the same device as entry ")
      text.add(entry + 1)
    }
    return text.bytes
  }

  private static func supportedValues(of parameter: [UInt8]) -> String {
    if parameter.elementsEqual("format".utf8) { return "only raw" }
    if parameter.elementsEqual("access".utf8) || parameter.elementsEqual("mode".utf8) { return "use r, ro, w or rw" }
    if parameter.elementsEqual("devtype".utf8) { return "use disk or cdrom" }
    if parameter.elementsEqual("backendtype".utf8) { return "only phy" }
    if parameter.elementsEqual("type".utf8) { return "only vif" }
    return "see the documentation"
  }
}

// MARK: - Limits and rules

extension DiskConfig {
  /// At most this many disks per domain (Linux's xvd names reach 26 with one letter).
  public static let maxCount = 32
  public static let maxTargetLength = 1024
  public static let maxVdevLength = 32

  /// The rules every disk meets, as parsed or as read from a bundle.
  public func validate() throws(DeviceProblem) {
    try checkValue(target, "target", maximum: Self.maxTargetLength)
    if target.isEmpty { throw .missing(Array("target".utf8)) }
    if vdev.isEmpty { throw .missing(Array("vdev".utf8)) }
    try checkValue(vdev, "vdev", maximum: Self.maxVdevLength)
    guard let number = Self.deviceNumber(vdev: vdev), number == devid else { throw .badVdev(vdev) }
    if let backend { try checkBackend(backend) }
  }

  /// libxl__device_disk_dev_number: the Linux device number a vdev stands for.
  ///   xvdX[N] (X: a..z, aa.., base 26 as Linux names disks; N a partition up to 255):
  ///           202<<8 | disk<<4 | N for disks a..p and partitions up to 15, else the extended
  ///           form 1<<28 | disk<<8 | N; disks up to 2^20-1.
  ///   dKpN:   the same numbers written out (decimal here).
  ///   hdX[N]: IDE, disks a..d, partitions up to 63: major 3 (disks 0-1) or 22 (2-3).
  ///   sdX[N]: SCSI, disks a..p, partitions up to 15: major 8.
  ///   a number: itself (decimal or 0x hex; libxl's strtoul would read a leading 0 as octal,
  ///           so a leading 0 is refused instead).
  public static func deviceNumber(vdev: [UInt8]) -> Int? {
    guard !vdev.isEmpty, vdev.count <= maxVdevLength else { return nil }
    if let (disk, partition) = letteredDisk(vdev, prefix: "xvd", maxDisk: (1 << 20) - 1, maxPartition: 255)
      ?? numberedDisk(vdev)
    {
      if disk <= 15 && partition <= 15 { return (202 << 8) | (disk << 4) | partition }
      return (1 << 28) | (disk << 8) | partition
    }
    if let first = vdev.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") {
      let isHex = vdev.count > 2 && (vdev[1] == UInt8(ascii: "x") || vdev[1] == UInt8(ascii: "X"))
      if first == UInt8(ascii: "0") && vdev.count > 1 && !isHex { return nil }
      guard let value = XLConfigBuilder.integer(vdev), value <= Int(Int32.max) else { return nil }
      return value
    }
    if let (disk, partition) = letteredDisk(vdev, prefix: "hd", maxDisk: 3, maxPartition: 63) {
      return ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | partition
    }
    if let (disk, partition) = letteredDisk(vdev, prefix: "sd", maxDisk: 15, maxPartition: 15) {
      return (8 << 8) | (disk << 4) | partition
    }
    return nil
  }

  /// libxl's device_virtdisk_matches: `prefix`, disk letters (a = 0, z = 25, aa = 26, ...),
  /// then an optional partition (1 up to `maxPartition`, no leading zero). Unlike libxl, no letters at all is
  /// refused (libxl would compute with disk -1).
  private static func letteredDisk(
    _ vdev: [UInt8], prefix: String, maxDisk: Int, maxPartition: Int
  ) -> (disk: Int, partition: Int)? {
    let prefixBytes = Array(prefix.utf8)
    guard vdev.count > prefixBytes.count, vdev.starts(with: prefixBytes) else { return nil }
    var position = prefixBytes.count
    var disk = -1
    while position < vdev.count, vdev[position] >= UInt8(ascii: "a"), vdev[position] <= UInt8(ascii: "z") {
      disk = (disk + 1) * 26 + Int(vdev[position] - UInt8(ascii: "a"))
      guard disk <= maxDisk else { return nil }
      position += 1
    }
    // libxl refuses a partition with a leading zero, "0" itself included.
    guard disk >= 0, position == vdev.count || vdev[position] != UInt8(ascii: "0") else { return nil }
    guard let partition = decimal(vdev[position...], maximum: maxPartition) else { return nil }
    return (disk, partition)
  }

  /// "dKpN": disk K (below 2^20), partition N (below 256), both decimal.
  private static func numberedDisk(_ vdev: [UInt8]) -> (disk: Int, partition: Int)? {
    guard vdev.first == UInt8(ascii: "d"), let p = vdev.firstIndex(of: UInt8(ascii: "p")), p > 1 else { return nil }
    guard let disk = decimal(vdev[1..<p], maximum: (1 << 20) - 1), p + 1 < vdev.count,
      let partition = decimal(vdev[(p + 1)...], maximum: 255)
    else { return nil }
    return (disk, partition)
  }

  /// A partition number: empty is 0; otherwise decimal digits without a leading zero.
  private static func decimal(_ digits: ArraySlice<UInt8>, maximum: Int) -> Int? {
    guard let first = digits.first else { return 0 }
    if first == UInt8(ascii: "0") { return digits.count == 1 ? 0 : nil }
    var value = 0
    for byte in digits {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
      guard value <= maximum else { return nil }
    }
    return value
  }
}

extension NICConfig {
  /// At most this many vifs per domain.
  public static let maxCount = 32
  /// IFNAMSIZ less the NUL.
  public static let maxBridgeLength = 15
  public static let maxIPLength = 256
  public static let maxScriptLength = 256

  /// The rules every vif meets, as parsed or as read from a bundle.
  public func validate() throws(DeviceProblem) {
    guard mac.count == 6, mac[0] & 1 == 0, mac.contains(where: { $0 != 0 }) else { throw .badMAC(Self.macText(mac)) }
    if let bridge { try checkValue(bridge, "bridge", maximum: Self.maxBridgeLength) }
    if let ip { try checkValue(ip, "ip", maximum: Self.maxIPLength) }
    if let script { try checkValue(script, "script", maximum: Self.maxScriptLength) }
    if let backend { try checkBackend(backend) }
  }

  /// "00:16:3e:0a:0b:0c": the form of the `mac` nodes (LIBXL_MAC_FMT).
  public static func macText(_ mac: [UInt8]) -> [UInt8] {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for (i, byte) in mac.enumerated() {
      if i > 0 { text.append(UInt8(ascii: ":")) }
      text.append(digits[Int(byte >> 4)])
      text.append(digits[Int(byte & 0xF)])
    }
    return text
  }

  /// Six bytes from "xx:xx:xx:xx:xx:xx" (one or two hex digits each), or nil.
  static func parseMAC(_ text: [UInt8]) -> [UInt8]? {
    let groups = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
    guard groups.count == 6 else { return nil }
    var mac: [UInt8] = []
    for group in groups {
      guard (1...2).contains(group.count), let value = XLConfigBuilder.integer(Array("0x".utf8) + group) else { return nil }
      mac.append(UInt8(value))
    }
    return mac
  }
}

/// A value that goes into a xenstore node and a hotplug script's environment: bounded, and no
/// control bytes.
private func checkValue(_ value: [UInt8], _ parameter: String, maximum: Int) throws(DeviceProblem) {
  if value.count > maximum { throw .tooLong(parameter: Array(parameter.utf8), length: value.count, maximum: maximum) }
  for byte in value where byte < 0x20 || byte == 0x7F { throw .badByte(parameter: Array(parameter.utf8), byte: byte) }
}

/// `backend=` names a domain: a domain name's bytes and length (a domain id is digits, which
/// names allow).
private func checkBackend(_ backend: [UInt8]) throws(DeviceProblem) {
  let parameter = Array("backend".utf8)
  if backend.isEmpty { throw .missing(parameter) }
  if backend.count > DomainConfig.maxNameLength {
    throw .tooLong(parameter: parameter, length: backend.count, maximum: DomainConfig.maxNameLength)
  }
  for byte in backend where !DomainConfig.isNameByte(byte) { throw .badByte(parameter: parameter, byte: byte) }
}

// MARK: - Parsing

extension DiskConfig {
  /// Reads one `disk =` entry. The result still needs `validate()` (lengths, bytes).
  public static func parse(_ entry: [UInt8]) throws(DeviceProblem) -> DiskConfig {
    var target: [UInt8]? = nil
    var vdev: [UInt8]? = nil
    var formatGiven = false
    var accessGiven = false
    var deviceTypeGiven = false
    var backendTypeGiven = false
    var hadPrefix = false
    var disk = DiskConfig(target: [], vdev: [])

    func set(_ field: inout [UInt8]?, _ value: [UInt8], _ name: String) throws(DeviceProblem) {
      guard field == nil else { throw .repeated(Array(name.utf8)) }
      field = value
    }
    func once(_ given: inout Bool, _ name: String) throws(DeviceProblem) {
      guard !given else { throw .repeated(Array(name.utf8)) }
      given = true
    }
    func format(_ value: [UInt8]) throws(DeviceProblem) {
      try once(&formatGiven, "format")
      // libxlu takes an empty format as raw.
      guard value.isEmpty || value.elementsEqual("raw".utf8) else {
        throw .unsupportedValue(parameter: Array("format".utf8), value: value)
      }
    }
    func access(_ value: [UInt8], _ name: [UInt8]) throws(DeviceProblem) {
      try once(&accessGiven, "access")
      if value.elementsEqual("r".utf8) || value.elementsEqual("ro".utf8) {
        disk.readOnly = true
      } else if value.isEmpty || value.elementsEqual("w".utf8) || value.elementsEqual("rw".utf8) {
        disk.readOnly = false
      } else {
        throw .unsupportedValue(parameter: name, value: value)
      }
    }
    func deviceType(_ value: [UInt8]) throws(DeviceProblem) {
      try once(&deviceTypeGiven, "devtype")
      if value.elementsEqual("cdrom".utf8) {
        disk.isCDROM = true
      } else if value.elementsEqual("disk".utf8) {
        disk.isCDROM = false
      } else {
        throw .unsupportedValue(parameter: Array("devtype".utf8), value: value)
      }
    }
    // A positional vdev may end in ":cdrom" or ":disk" (libxlu's vdev_and_devtype).
    func positionalVdev(_ value: [UInt8]) throws(DeviceProblem) {
      guard let colon = value.firstIndex(of: UInt8(ascii: ":")) else { return try set(&vdev, value, "vdev") }
      try deviceType(Array(value[(colon + 1)...]))
      try set(&vdev, Array(value[..<colon]), "vdev")
    }

    var position = 0
    while position < entry.count {
      let byte = entry[position]
      if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") {
        position += 1
        continue
      }
      let rest = entry[position...]
      // target= takes the rest of the entry, less one trailing comma.
      if rest.starts(with: "target=".utf8) {
        var value = Array(rest.dropFirst(7))
        if value.last == UInt8(ascii: ",") { value.removeLast() }
        try set(&target, value, "target")
        break
      }
      let end = rest.firstIndex(of: UInt8(ascii: ",")) ?? entry.count
      var token = Array(entry[position..<end])
      position = end + 1

      if let equals = token.firstIndex(of: UInt8(ascii: "=")) {
        let key = Array(token[..<equals])
        let value = Array(token[(equals + 1)...])
        if key.elementsEqual("format".utf8) {
          try format(value)
        } else if key.elementsEqual("vdev".utf8) {
          try set(&vdev, value, "vdev")
        } else if key.elementsEqual("access".utf8) || key.elementsEqual("mode".utf8) {
          try access(value, key)
        } else if key.elementsEqual("devtype".utf8) {
          try deviceType(value)
        } else if key.elementsEqual("backend".utf8) {
          try set(&disk.backend, value, "backend")
        } else if key.elementsEqual("backendtype".utf8) {
          try once(&backendTypeGiven, "backendtype")
          guard value.elementsEqual("phy".utf8) else { throw .unsupportedValue(parameter: key, value: value) }
        } else {
          throw .unknownParameter(key)
        }
        continue
      }
      if token.elementsEqual("cdrom".utf8) {
        try deviceType(token)
        continue
      }
      if token.elementsEqual("discard".utf8) || token.elementsEqual("no-discard".utf8) {
        guard disk.discard == nil else { throw .repeated(Array("discard".utf8)) }
        disk.discard = token.elementsEqual("discard".utf8)
        continue
      }
      if token.elementsEqual("trusted".utf8) || token.elementsEqual("untrusted".utf8) {
        disk.trusted = token.elementsEqual("trusted".utf8)
        continue
      }

      // Deprecated prefixes before the target ("phy:/dev/vg/a", "tap:aio:/img", "raw:/img").
      while let prefix = Self.deprecatedPrefix(token) {
        if prefix.elementsEqual("raw".utf8) {
          try format(prefix)
        } else if prefix.elementsEqual("qcow".utf8) || prefix.elementsEqual("qcow2".utf8) || prefix.elementsEqual("vhd".utf8) {
          throw .unsupportedValue(parameter: Array("format".utf8), value: prefix)
        } else if !Self.ignoredPrefixes.contains(where: { prefix.elementsEqual($0.utf8) }) {
          throw .unsupportedPrefix(prefix)
        }
        hadPrefix = true
        token.removeFirst(prefix.count + 1)
      }

      // Positional: target, then format (not after a deprecated prefix), vdev, access.
      if target == nil {
        target = token
      } else if !hadPrefix && !formatGiven {
        try format(token)
      } else if vdev == nil {
        try positionalVdev(token)
      } else if !accessGiven {
        try access(token, Array("access".utf8))
      } else {
        throw .tooManyPositional(token)
      }
    }

    guard let target, !target.isEmpty else { throw .missing(Array("target".utf8)) }
    guard let vdev, !vdev.isEmpty else { throw .missing(Array("vdev".utf8)) }
    guard Self.deviceNumber(vdev: vdev) != nil else { throw .badVdev(vdev) }
    return DiskConfig(target: target, vdev: vdev, readOnly: disk.readOnly, isCDROM: disk.isCDROM,
                      discard: disk.discard, trusted: disk.trusted, backend: disk.backend)
  }

  /// Prefixes libxlu accepts and ignores (the backend type they once chose is libxl's now).
  static let ignoredPrefixes = ["phy", "file", "tap", "tap2", "aio", "ioemu", "tapdisk"]

  /// A `word:` at the start of `token` that libxlu reads as a deprecated prefix: lowercase
  /// letters and digits, starting with a letter, and not followed by a letter or digit
  /// (so "a:b" is a positional value, "nbd:/x" a prefix).
  private static func deprecatedPrefix(_ token: [UInt8]) -> [UInt8]? {
    func isLower(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    guard let first = token.first, isLower(first), let colon = token.firstIndex(of: UInt8(ascii: ":")) else { return nil }
    guard token[..<colon].allSatisfy({ isLower($0) || isDigit($0) }) else { return nil }
    let prefix = Array(token[..<colon])
    // The known ones take anything after the colon ("tap:aio:..."); an unknown word only counts
    // when what follows is not a letter or digit.
    let known = ["raw", "qcow", "qcow2", "vhd", "iscsi", "nbd", "enbd", "drbd"] + ignoredPrefixes
    if known.contains(where: { prefix.elementsEqual($0.utf8) }) { return prefix }
    if colon + 1 < token.count, isLower(token[colon + 1]) || isDigit(token[colon + 1]) { return nil }
    return prefix
  }
}

extension NICConfig {
  /// Reads one `vif =` entry, the `index`th of domain `domainName` (which makes up the MAC when
  /// the entry has none). The result still needs `validate()`.
  public static func parse(_ entry: [UInt8], index: Int, domainName: [UInt8]) throws(DeviceProblem) -> NICConfig {
    var nic = NICConfig(devid: index, mac: [])
    var mac: [UInt8]? = nil
    var typeGiven = false
    var trustGiven = false
    func set(_ field: inout [UInt8]?, _ value: [UInt8], _ name: [UInt8]) throws(DeviceProblem) {
      guard field == nil else { throw .repeated(name) }
      field = value
    }
    // xl splits with strtok: empty pieces vanish, and leading spaces are dropped.
    for piece in entry.split(separator: UInt8(ascii: ",")) {
      let token = Array(piece.drop { $0 == UInt8(ascii: " ") })
      if token.isEmpty { continue }
      if token.elementsEqual("trusted".utf8) || token.elementsEqual("untrusted".utf8) {
        guard !trustGiven else { throw .repeated(Array("trusted".utf8)) }
        trustGiven = true
        nic.trusted = token.elementsEqual("trusted".utf8)
        continue
      }
      guard let equals = token.firstIndex(of: UInt8(ascii: "=")) else { throw .unknownParameter(token) }
      let key = Array(token[..<equals])
      let value = Array(token[(equals + 1)...])
      if key.elementsEqual("mac".utf8) {
        guard mac == nil else { throw .repeated(key) }
        guard let bytes = parseMAC(value) else { throw .badMAC(value) }
        mac = bytes
      } else if key.elementsEqual("bridge".utf8) {
        try set(&nic.bridge, value, key)
      } else if key.elementsEqual("backend".utf8) {
        try set(&nic.backend, value, key)
      } else if key.elementsEqual("ip".utf8) {
        try set(&nic.ip, value, key)
      } else if key.elementsEqual("script".utf8) {
        try set(&nic.script, value, key)
      } else if key.elementsEqual("type".utf8) {
        guard !typeGiven else { throw .repeated(key) }
        typeGiven = true
        // ioemu is an emulated NIC, which a PVH domain cannot have (libxl refuses it too).
        guard value.elementsEqual("vif".utf8) else { throw .unsupportedValue(parameter: key, value: value) }
      } else {
        throw .unknownParameter(key)
      }
    }
    nic.mac = mac ?? generatedMAC(domainName: domainName, index: index)
    return nic
  }
}
