// The xl.cfg subset Swiftvisor understands: the file format Xen users already write.
//
// Syntax (as libxlu parses it):
//   # a comment, to the end of the line
//   name = "web"              strings in double or single quotes, with \\ \" \' \n \t \r escapes
//   memory = 512              numbers: decimal or 0x hexadecimal (a quoted number works too)
//   disk = [ "a", 'b', ]      lists, which may span lines; a trailing comma is allowed
//   vcpus = 2; maxvcpus = 4   `;` separates settings on one line
//
// Keys used: name, type (or the older builder), memory, vcpus, maxvcpus, kernel, ramdisk,
// cmdline, root, extra, on_poweroff, on_reboot, on_crash, cpus, weight, cap, maxmem, max_grant_frames,
// max_maptrack_frames, max_event_channels, disk, vif, driver_domain. Known xl keys Swiftvisor does not implement yet
// (vfb, pci, ...) and unknown keys are warnings, as in xl; everything else that is wrong is an
// error naming the file, the line and the key. A bad `disk` or `vif` entry is reported at the
// line the entry starts on (DeviceConfig.swift has their syntax).

/// Parses xl.cfg files into `DomainConfig`s.
public enum XLConfig {
  /// Parses and validates a configuration; warnings are dropped.
  public static func parse(_ text: [UInt8], fileName: [UInt8]) throws(XLConfigError) -> DomainConfig {
    try parseWithWarnings(text, fileName: fileName).config
  }

  /// Parses and validates a configuration, also returning what was ignored.
  public static func parseWithWarnings(
    _ text: [UInt8], fileName: [UInt8]
  ) throws(XLConfigError) -> (config: DomainConfig, warnings: [XLConfigWarning]) {
    var settings: [XLSetting] = []
    do throws(XLConfigError.Located) {
      var lexer = XLLexer(text)
      while let setting = try lexer.nextSetting() {
        if let first = settings.first(where: { $0.key == setting.key }) {
          throw XLConfigError.Located(line: setting.line, key: setting.key, kind: .duplicateKey(firstLine: first.line))
        }
        settings.append(setting)
      }
    } catch {
      throw XLConfigError(fileName: fileName, line: error.line, key: error.key, kind: error.kind)
    }
    var builder = XLConfigBuilder(fileName: fileName, settings: settings)
    return try builder.build()
  }
}

extension XLConfig {
  /// The line each entry of list `key` starts on, for problems found after parsing (a device's
  /// backend, which depends on the other domains); empty when the file does not parse or has no
  /// such list.
  public static func listEntryLines(_ text: [UInt8], key: String) -> [Int] {
    var lexer = XLLexer(text)
    while let setting = try? lexer.nextSetting() {
      if setting.key.elementsEqual(key.utf8) { return setting.elementLines }
    }
    return []
  }
}

/// Something in an xl.cfg file that was not used.
public struct XLConfigWarning: Equatable, Sendable {
  public enum Kind: Equatable, Sendable {
    /// A key xl does not know either (probably a typo).
    case unknownKey
    /// An xl key Swiftvisor does not implement yet; the setting has no effect.
    case notSupported
    /// `root` or `extra` next to `cmdline`: xl uses `cmdline` alone.
    case ignoredInFavourOfCmdline
    /// No `type`: xl would build a PV guest, Swiftvisor builds PVH.
    case typeDefaultedToPVH
  }

  public var line: Int
  public var key: [UInt8]
  public var kind: Kind

  public init(line: Int, key: [UInt8], kind: Kind) {
    self.line = line
    self.key = key
    self.kind = kind
  }

  /// "file.cfg:7: vif: not supported yet, ignored".
  public func message(fileName: [UInt8]) -> [UInt8] {
    var text = MessageText()
    text.add(fileName)
    if line > 0 {
      text.add(":")
      text.add(line)
    }
    text.add(": ")
    text.add(key)
    text.add(": ")
    switch kind {
    case .unknownKey: text.add("unknown key, ignored")
    case .notSupported: text.add("not supported yet, ignored")
    case .ignoredInFavourOfCmdline: text.add("ignored in favour of cmdline")
    case .typeDefaultedToPVH: text.add("not set; building a PVH guest (xl would build PV)")
    }
    return text.bytes
  }
}

/// Why an xl.cfg file was refused: where, which key, and what is wrong.
public struct XLConfigError: Error, Equatable, Sendable {
  public enum Kind: Error, Equatable, Sendable {
    /// A line does not start with a key (letters, digits, `_`, `.`).
    case expectedKey
    /// A key is not followed by `=`.
    case expectedEquals
    /// `=` is not followed by a value.
    case expectedValue
    /// An unquoted value that is not a number.
    case expectedQuotedString
    case unterminatedString
    /// A backslash escape other than \\ \" \' \n \t \r.
    case badEscape(UInt8)
    case unterminatedList
    /// Something other than `,` or `]` after a list element.
    case expectedCommaOrBracket
    /// Text after a complete value on the same line.
    case unexpectedText
    /// The same key set twice.
    case duplicateKey(firstLine: Int)
    /// A key every configuration must set is absent.
    case missingKey
    /// A list where the key takes a single value.
    case expectedString
    /// A single value where the key takes a list (`disk`, `vif`).
    case expectedList
    /// Something other than 0 or 1 where the key is a yes/no setting.
    case expectedBoolean
    case expectedInteger
    case integerTooLarge
    /// `type` (or `builder`) names no xl guest type.
    case unknownType([UInt8])
    /// An `on_*` value that is not an xl action.
    case unknownShutdownAction([UInt8])
    /// An xl action Swiftvisor does not implement (rename-restart, coredump-*, soft-reset).
    case unsupportedShutdownAction([UInt8])
    /// The values parse but break a rule of `DomainConfig.validate`.
    case invalid(DomainConfigProblem)
  }

  public var fileName: [UInt8]
  /// 1-based line of the problem, or nil when it concerns the file as a whole (a missing key).
  public var line: Int?
  /// The key concerned, when there is one.
  public var key: [UInt8]?
  public var kind: Kind

  public init(fileName: [UInt8], line: Int?, key: [UInt8]?, kind: Kind) {
    self.fileName = fileName
    self.line = line
    self.key = key
    self.kind = kind
  }

  /// A problem found while reading, before the file name is attached.
  struct Located: Error {
    var line: Int
    var key: [UInt8]?
    var kind: Kind
  }

  /// "file.cfg:3: memory: expected an integer".
  public func message() -> [UInt8] {
    var text = MessageText()
    text.add(fileName)
    if let line {
      text.add(":")
      text.add(line)
    }
    text.add(": ")
    if let key {
      text.add(key)
      text.add(": ")
    }
    switch kind {
    case .expectedKey: text.add("expected a setting (key = value)")
    case .expectedEquals: text.add("expected \"=\" after the key")
    case .expectedValue: text.add("expected a value after \"=\"")
    case .expectedQuotedString: text.add("expected a quoted string or a number")
    case .unterminatedString: text.add("string is not closed before the end of the line")
    case .badEscape(let byte):
      text.add("unknown escape \"\\")
      text.add([byte])
      text.add("\" in string")
    case .unterminatedList: text.add("list is not closed with \"]\"")
    case .expectedCommaOrBracket: text.add("expected \",\" or \"]\" in list")
    case .unexpectedText: text.add("unexpected text after the value")
    case .duplicateKey(let firstLine):
      text.add("set twice (first on line ")
      text.add(firstLine)
      text.add(")")
    case .missingKey: text.add("is required")
    case .expectedString: text.add("expected a single value, not a list")
    case .expectedList: text.add("expected a list ([ '...', ... ])")
    case .expectedBoolean: text.add("expected 0 or 1")
    case .expectedInteger: text.add("expected an integer")
    case .integerTooLarge: text.add("integer is too large")
    case .unknownType(let name):
      text.add("unknown guest type \"")
      text.add(name)
      text.add("\" (xl knows pvh, hvm and pv)")
    case .unknownShutdownAction(let name):
      text.add("unknown action \"")
      text.add(name)
      text.add("\" (use destroy, restart or preserve)")
    case .unsupportedShutdownAction(let name):
      text.add("action \"")
      text.add(name)
      text.add("\" is not supported yet (use destroy, restart or preserve)")
    case .invalid(let problem):
      text.add(problem.message())
    }
    return text.bytes
  }
}

// MARK: - Reading

/// One value as written: a string or number ("atom"), or a list of atoms.
enum XLValue: Equatable {
  case atom([UInt8], quoted: Bool)
  case list([[UInt8]])
}

/// One `key = value` setting and the line its key is on.
struct XLSetting {
  var key: [UInt8]
  var line: Int
  var value: XLValue
  /// For a list, the line each element starts on (a list may span lines).
  var elementLines: [Int] = []
}

/// Splits the file into settings.
struct XLLexer {
  private let text: [UInt8]
  private var position = 0
  private var line = 1
  /// The lines of the elements of the list read last.
  private var listLines: [Int] = []

  init(_ text: [UInt8]) {
    self.text = text
  }

  private var current: UInt8? { position < text.count ? text[position] : nil }

  private static func isKeyStart(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
      || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_")
  }

  private static func isKeyByte(_ byte: UInt8) -> Bool {
    isKeyStart(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".")
  }

  /// Skips spaces, tabs and carriage returns (not newlines).
  private mutating func skipBlanks() {
    while let byte = current, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
      position += 1
    }
  }

  /// Skips blanks, newlines, comments and `;` between settings.
  private mutating func skipSeparators() {
    while let byte = current {
      if byte == UInt8(ascii: "\n") {
        line += 1
        position += 1
      } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
        || byte == UInt8(ascii: ";")
      {
        position += 1
      } else if byte == UInt8(ascii: "#") {
        skipComment()
      } else {
        return
      }
    }
  }

  private mutating func skipComment() {
    while let byte = current, byte != UInt8(ascii: "\n") {
      position += 1
    }
  }

  /// The next setting, or nil at the end of the file.
  mutating func nextSetting() throws(XLConfigError.Located) -> XLSetting? {
    skipSeparators()
    guard let first = current else { return nil }
    guard Self.isKeyStart(first) else { throw .init(line: line, key: nil, kind: .expectedKey) }
    let keyLine = line
    let keyStart = position
    while let byte = current, Self.isKeyByte(byte) {
      position += 1
    }
    let key = Array(text[keyStart..<position])

    skipBlanks()
    guard current == UInt8(ascii: "=") else { throw .init(line: keyLine, key: key, kind: .expectedEquals) }
    position += 1
    skipBlanks()

    let value: XLValue
    listLines = []
    do {
      value = try readValue()
    } catch {
      throw .init(line: line, key: key, kind: error)
    }

    // The value must end the setting: only blanks, then a comment, `;`, a newline or the end.
    skipBlanks()
    if let byte = current, byte != UInt8(ascii: "\n"), byte != UInt8(ascii: ";"), byte != UInt8(ascii: "#") {
      throw .init(line: line, key: key, kind: .unexpectedText)
    }
    return XLSetting(key: key, line: keyLine, value: value, elementLines: listLines)
  }

  private mutating func readValue() throws(XLConfigError.Kind) -> XLValue {
    guard let byte = current, byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "#"), byte != UInt8(ascii: ";") else {
      throw .expectedValue
    }
    if byte == UInt8(ascii: "[") {
      position += 1
      return .list(try readListElements())
    }
    let (atom, quoted) = try readAtom()
    return .atom(atom, quoted: quoted)
  }

  /// The elements of a list whose `[` has been read; the list may span lines.
  private mutating func readListElements() throws(XLConfigError.Kind) -> [[UInt8]] {
    var elements: [[UInt8]] = []
    while true {
      skipListSpace()
      guard let byte = current else { throw .unterminatedList }
      if byte == UInt8(ascii: "]") {
        position += 1
        return elements
      }
      listLines.append(line)
      elements.append(try readAtom().bytes)
      skipListSpace()
      guard let next = current else { throw .unterminatedList }
      if next == UInt8(ascii: ",") {
        position += 1
      } else if next != UInt8(ascii: "]") {
        throw .expectedCommaOrBracket
      }
    }
  }

  /// Inside a list, newlines and comments are white space.
  private mutating func skipListSpace() {
    while let byte = current {
      if byte == UInt8(ascii: "\n") {
        line += 1
        position += 1
      } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
        position += 1
      } else if byte == UInt8(ascii: "#") {
        skipComment()
      } else {
        return
      }
    }
  }

  /// A quoted string (unescaped) or an unquoted number.
  private mutating func readAtom() throws(XLConfigError.Kind) -> (bytes: [UInt8], quoted: Bool) {
    guard let open = current else { throw .expectedValue }
    if open == UInt8(ascii: "\"") || open == UInt8(ascii: "'") {
      position += 1
      var bytes: [UInt8] = []
      while true {
        guard let byte = current, byte != UInt8(ascii: "\n") else { throw .unterminatedString }
        position += 1
        if byte == open { return (bytes, true) }
        if byte == UInt8(ascii: "\\") {
          guard let escaped = current, escaped != UInt8(ascii: "\n") else { throw .unterminatedString }
          position += 1
          switch escaped {
          case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): bytes.append(escaped)
          case UInt8(ascii: "n"): bytes.append(UInt8(ascii: "\n"))
          case UInt8(ascii: "t"): bytes.append(UInt8(ascii: "\t"))
          case UInt8(ascii: "r"): bytes.append(UInt8(ascii: "\r"))
          default: throw .badEscape(escaped)
          }
        } else {
          bytes.append(byte)
        }
      }
    }
    // xl has no bare words: an unquoted value is a number.
    let start = position
    while let byte = current, Self.isKeyByte(byte) {
      position += 1
    }
    let bytes = Array(text[start..<position])
    guard XLConfigBuilder.isIntegerSyntax(bytes) else { throw .expectedQuotedString }
    return (bytes, false)
  }
}

// MARK: - Interpreting

/// Turns settings into a validated `DomainConfig`.
struct XLConfigBuilder {
  let fileName: [UInt8]
  let settings: [XLSetting]
  var warnings: [XLConfigWarning] = []

  init(fileName: [UInt8], settings: [XLSetting]) {
    self.fileName = fileName
    self.settings = settings
  }

  /// Keys xl knows that have no effect here yet.
  static let unsupportedKeys: [String] = [
    "vfb", "vkb", "vtpm", "p9", "channel", "pci", "usb", "usbctrl", "usbdev",
    "serial", "uuid", "maxmem", "on_watchdog", "on_soft_reset", "localtime", "rtc_timeoffset",
    "boot", "bootloader", "bootloader_args", "device_model_version", "device_model_override",
    "vnc", "sdl", "acpi", "apic", "pae", "hap", "nestedhvm", "viridian", "shadow_memory",
    "cpus_soft", "cpupool", "seclabel", "vnuma",
    "e820_host", "tsc_mode", "iomem", "ioports",
    "irqs", "gfx_passthru", "dtdev", "vga", "videoram", "soundhw", "xen_platform_pci",
  ]

  static let usedKeys: [String] = [
    "name", "type", "builder", "memory", "maxmem", "vcpus", "maxvcpus", "kernel", "ramdisk", "cmdline",
    "root", "extra", "on_poweroff", "on_reboot", "on_crash", "cpus", "weight", "cap", "max_grant_frames",
    "max_maptrack_frames", "max_event_channels", "disk", "vif", "driver_domain",
  ]

  mutating func build() throws(XLConfigError) -> (config: DomainConfig, warnings: [XLConfigWarning]) {
    for setting in settings {
      if Self.usedKeys.contains(where: { setting.key.elementsEqual($0.utf8) }) { continue }
      let known = Self.unsupportedKeys.contains(where: { setting.key.elementsEqual($0.utf8) })
      warnings.append(XLConfigWarning(line: setting.line, key: setting.key, kind: known ? .notSupported : .unknownKey))
    }

    let name = try string("name") ?? []
    let type = try domainType()
    let memory = try integer("memory")
    let maxMemory = try integer("maxmem")
    let vcpus = try integer("vcpus") ?? 1
    let maxVCPUs = try integer("maxvcpus")
    let kernel = try string("kernel") ?? []
    let ramdisk = try string("ramdisk")
    let cmdline = try commandLine()
    let onPoweroff = try action("on_poweroff") ?? .destroy
    let onReboot = try action("on_reboot") ?? .restart
    let onCrash = try action("on_crash") ?? .destroy
    let cpus = try string("cpus")
    let weight = try integer("weight")
    let cap = try integer("cap")
    let maxGrantFrames = try integer("max_grant_frames")
    let maxMaptrackFrames = try integer("max_maptrack_frames")
    let maxEventChannels = try integer("max_event_channels")

    var config = DomainConfig(
      name: name, type: type, memoryMiB: memory ?? 0, vcpus: vcpus, maxVCPUs: maxVCPUs,
      kernelPath: kernel, ramdiskPath: ramdisk, cmdline: cmdline, onPoweroff: onPoweroff,
      onReboot: onReboot, onCrash: onCrash, cpus: cpus, weight: weight, cap: cap)
    config.maxMemoryMiB = maxMemory
    config.maxGrantFrames = maxGrantFrames
    config.maxMaptrackFrames = maxMaptrackFrames
    config.maxEventChannels = maxEventChannels
    config.disks = try disks()
    config.nics = try nics(domainName: name)
    config.isDriverDomain = try boolean("driver_domain") ?? false

    do {
      try config.validate()
    } catch {
      // An absent memory setting is validated as 0; say what is really wrong.
      if memory == nil, case .memoryOutOfRange = error {
        throw XLConfigError(fileName: fileName, line: nil, key: error.key, kind: .missingKey)
      }
      let key = error.key
      var line = setting(key)?.line
      switch error {
      case .disk(let index, _), .vif(let index, _): line = setting(key).flatMap { $0.elementLines.dropFirst(index).first } ?? line
      default: break
      }
      throw XLConfigError(fileName: fileName, line: line, key: key, kind: .invalid(error))
    }
    return (config, warnings)
  }

  private func setting(_ key: [UInt8]) -> XLSetting? {
    settings.first { $0.key == key }
  }

  private func setting(_ key: String) -> XLSetting? {
    settings.first { $0.key.elementsEqual(key.utf8) }
  }

  private func fail(_ setting: XLSetting, _ kind: XLConfigError.Kind) -> XLConfigError {
    XLConfigError(fileName: fileName, line: setting.line, key: setting.key, kind: kind)
  }

  /// The single value of `key`, quoted or not; nil when the key is absent.
  private func string(_ key: String) throws(XLConfigError) -> [UInt8]? {
    guard let setting = setting(key) else { return nil }
    guard case .atom(let bytes, _) = setting.value else { throw fail(setting, .expectedString) }
    return bytes
  }

  /// The integer value of `key` (written bare or quoted); nil when the key is absent.
  private func integer(_ key: String) throws(XLConfigError) -> Int? {
    guard let setting = setting(key) else { return nil }
    guard case .atom(let bytes, _) = setting.value else { throw fail(setting, .expectedInteger) }
    guard Self.isIntegerSyntax(bytes) else { throw fail(setting, .expectedInteger) }
    guard let value = Self.integer(bytes) else { throw fail(setting, .integerTooLarge) }
    return value
  }

  /// A yes/no setting, written 0 or 1; nil when the key is absent.
  private func boolean(_ key: String) throws(XLConfigError) -> Bool? {
    guard let setting = setting(key) else { return nil }
    guard case .atom(let bytes, _) = setting.value, Self.isIntegerSyntax(bytes) else { throw fail(setting, .expectedBoolean) }
    switch Self.integer(bytes) {
    case 0: return false
    case 1: return true
    default: throw fail(setting, .expectedBoolean)
    }
  }

  /// The elements of list `key` with the line each starts on; nil when the key is absent.
  private func list(_ key: String) throws(XLConfigError) -> (setting: XLSetting, elements: [(bytes: [UInt8], line: Int)])? {
    guard let setting = setting(key) else { return nil }
    guard case .list(let elements) = setting.value else { throw fail(setting, .expectedList) }
    var result: [(bytes: [UInt8], line: Int)] = []
    for (index, element) in elements.enumerated() {
      result.append((element, setting.elementLines.dropFirst(index).first ?? setting.line))
    }
    return (setting, result)
  }

  /// `disk = [...]`: each entry parsed; a bad one is reported at its own line. The rules
  /// between entries (count, the same device twice) are `DomainConfig.validate`'s.
  private func disks() throws(XLConfigError) -> [DiskConfig] {
    guard let (setting, elements) = try list("disk") else { return [] }
    var disks: [DiskConfig] = []
    for (index, element) in elements.enumerated() {
      do {
        disks.append(try DiskConfig.parse(element.bytes))
      } catch {
        throw XLConfigError(fileName: fileName, line: element.line, key: setting.key, kind: .invalid(.disk(index: index, error)))
      }
    }
    return disks
  }

  /// `vif = [...]`, as `disks()`.
  private func nics(domainName: [UInt8]) throws(XLConfigError) -> [NICConfig] {
    guard let (setting, elements) = try list("vif") else { return [] }
    var nics: [NICConfig] = []
    for (index, element) in elements.enumerated() {
      do {
        nics.append(try NICConfig.parse(element.bytes, index: index, domainName: domainName))
      } catch {
        throw XLConfigError(fileName: fileName, line: element.line, key: setting.key, kind: .invalid(.vif(index: index, error)))
      }
    }
    return nics
  }

  private mutating func domainType() throws(XLConfigError) -> DomainType {
    if let setting = setting("type") {
      guard case .atom(let name, _) = setting.value else { throw fail(setting, .expectedString) }
      guard let type = DomainType(name: name) else { throw fail(setting, .unknownType(name)) }
      return type
    }
    // Before `type` existed, xl chose between PV and HVM with `builder`.
    if let setting = setting("builder") {
      guard case .atom(let name, _) = setting.value else { throw fail(setting, .expectedString) }
      if name.elementsEqual("hvm".utf8) { return .hvm }
      if name.elementsEqual("generic".utf8) { return .pv }
      throw fail(setting, .unknownType(name))
    }
    warnings.append(XLConfigWarning(line: 0, key: Array("type".utf8), kind: .typeDefaultedToPVH))
    return .pvh
  }

  private func action(_ key: String) throws(XLConfigError) -> ShutdownAction? {
    guard let setting = setting(key) else { return nil }
    guard case .atom(let name, _) = setting.value else { throw fail(setting, .expectedString) }
    if let action = ShutdownAction(name: name) { return action }
    if ShutdownAction.xlActionNames.contains(name) { throw fail(setting, .unsupportedShutdownAction(name)) }
    throw fail(setting, .unknownShutdownAction(name))
  }

  /// xl's rule (parse_cmdline in xl_parse.c): `cmdline` wins and `root`/`extra` are then
  /// ignored with a warning; otherwise the line is "root=ROOT EXTRA", "root=ROOT" or "EXTRA".
  private mutating func commandLine() throws(XLConfigError) -> [UInt8] {
    let cmdline = try string("cmdline")
    let root = try string("root")
    let extra = try string("extra")
    if let cmdline {
      for key in ["root", "extra"] {
        if let ignored = setting(key) {
          warnings.append(XLConfigWarning(line: ignored.line, key: ignored.key, kind: .ignoredInFavourOfCmdline))
        }
      }
      return cmdline
    }
    var line: [UInt8] = []
    if let root {
      line.append(contentsOf: "root=".utf8)
      line.append(contentsOf: root)
      if let extra {
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: extra)
      }
    } else if let extra {
      line = extra
    }
    return line
  }

  // MARK: - Numbers

  /// True when `bytes` is written as a number: decimal digits, or 0x and hex digits.
  static func isIntegerSyntax(_ bytes: [UInt8]) -> Bool {
    let (digits, radix) = split(bytes)
    guard !digits.isEmpty else { return false }
    return digits.allSatisfy { digitValue($0, radix: radix) != nil }
  }

  /// The value of a decimal or 0x-hexadecimal number; nil if it is not one or overflows Int.
  static func integer(_ bytes: [UInt8]) -> Int? {
    let (digits, radix) = split(bytes)
    guard !digits.isEmpty else { return nil }
    var value = 0
    for byte in digits {
      guard let digit = digitValue(byte, radix: radix) else { return nil }
      let (times, overflow1) = value.multipliedReportingOverflow(by: radix)
      let (sum, overflow2) = times.addingReportingOverflow(digit)
      guard !overflow1 && !overflow2 else { return nil }
      value = sum
    }
    return value
  }

  private static func split(_ bytes: [UInt8]) -> (digits: ArraySlice<UInt8>, radix: Int) {
    if bytes.count > 2 && bytes[0] == UInt8(ascii: "0") && (bytes[1] == UInt8(ascii: "x") || bytes[1] == UInt8(ascii: "X")) {
      return (bytes[2...], 16)
    }
    return (bytes[...], 10)
  }

  private static func digitValue(_ byte: UInt8, radix: Int) -> Int? {
    let value: Int
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
    default: return nil
    }
    return value < radix ? value : nil
  }
}
