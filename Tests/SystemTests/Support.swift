import Foundation
import Testing
import VisorKit

/// Every test that starts a process lives under this suite: `.serialized` applies to all nested
/// suites, so only one QEMU runs at a time (TCG is heavy on a 2-core machine).
@Suite("Tests that start processes, one at a time", .serialized) struct Serialized {}

/// The image under test, built by scripts/test and named by `SWIFTVISOR_IMAGE`.
enum SystemImage {
  static let variable = "SWIFTVISOR_IMAGE"

  struct Missing: Error, CustomStringConvertible {
    var description: String
  }

  /// The image's path, or a failure that says how to provide it (never a silent skip).
  static func path() throws -> String {
    let hint = "build it and export its path: `swift run visor build` prints it, and scripts/test does both"
    guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else {
      throw Missing(description: "\(variable) is not set; \(hint)")
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw Missing(description: "\(variable)=\(path) does not exist; \(hint)")
    }
    guard !isDirectory.boolValue else {
      throw Missing(description: "\(variable)=\(path) is a folder, not the image file; \(hint)")
    }
    return path
  }

  /// Boots the image under QEMU and returns how it ended.
  static func boot(smp: Int, cmdline: String = "", timeout: Double = 120) throws -> RunResult {
    var configuration = RunConfiguration(kernel: try path())
    configuration.smp = smp
    configuration.cmdline = cmdline
    configuration.timeout = timeout
    return try run(configuration)
  }
}

/// What a failed expectation shows: the QEMU command, its outcome and the console's end.
func context(_ result: RunResult) -> Comment {
  """
  \(result.summary)
  command: \(result.command.joined(separator: " "))
  console (last lines):
  \(result.tail())
  \(result.qemuErrors.isEmpty ? "" : "QEMU stderr:\n" + result.qemuErrors)
  \(result.stateAtLimit.isEmpty ? "" : "QEMU's CPUs at the time limit (info registers -a):\n" + result.stateAtLimit)
  """
}

func expectLines(
  _ result: RunResult, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation
) {
  let missing = expected.filter { !result.contains($0) }
  #expect(missing.isEmpty, "missing console lines: \(missing)\n\(context(result))", sourceLocation: sourceLocation)
}

func expectExit(_ result: RunResult, _ exit: VisorExit, sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(result.exit == exit, "expected \(exit), got \(result.exit)\n\(context(result))", sourceLocation: sourceLocation)
}

/// The PVH test guests (docs/test-guests.md), built by scripts/test into the folder named by
/// `SWIFTVISOR_GUESTS`.
enum SystemGuests {
  static let variable = "SWIFTVISOR_GUESTS"

  /// The absolute path of one guest ELF (`"guest-hello"`), or a failure that says how to
  /// provide it (never a silent skip).
  static func path(_ product: String) throws -> String {
    let hint = "build them with `scripts/build-guests DIR` and export DIR (absolute); scripts/test does both"
    guard let folder = ProcessInfo.processInfo.environment[variable], !folder.isEmpty else {
      throw SystemImage.Missing(description: "\(variable) is not set; \(hint)")
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw SystemImage.Missing(description: "\(variable)=\(folder) is not a folder; \(hint)")
    }
    let path = URL(fileURLWithPath: folder).appendingPathComponent(product).path
    guard FileManager.default.isReadableFile(atPath: path) else {
      throw SystemImage.Missing(description: "\(path) does not exist (\(variable)=\(folder)); \(hint)")
    }
    return path
  }

  /// The text of an xl.cfg for one PVH domain running `guest`.
  static func config(
    name: String, guest: String, memory: Int = 32, maxmem: Int? = nil, vcpus: Int = 1, cmdline: String? = nil,
    extra: String = ""
  ) throws -> String {
    var text = """
      name = "\(name)"
      type = "pvh"
      memory = \(memory)
      vcpus = \(vcpus)
      kernel = "\(try path(guest))"

      """
    if let maxmem { text += "maxmem = \(maxmem)\n" }
    if let cmdline { text += "cmdline = \"\(cmdline)\"\n" }
    return text + extra
  }
}

/// A fresh folder under the temporary directory, removed by `remove()`.
struct TemporaryFolder {
  let url: URL

  init(_ label: String = "swiftvisor-test") throws {
    url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  /// Writes `text` to `name` in the folder and returns the file's path.
  @discardableResult
  func write(_ name: String, _ text: String) throws -> String {
    let file = url.appendingPathComponent(name)
    try text.write(to: file, atomically: true, encoding: .utf8)
    return file.path
  }

  func remove() {
    try? FileManager.default.removeItem(at: url)
  }
}

extension SystemImage {
  /// Writes each configuration text to an xl.cfg in a temporary folder, packs them into a boot
  /// bundle with `BundleMaker.make` (as `visor run` does), boots the image with the bundle as
  /// its initrd and returns how it ended. `input` is typed on the serial line as its lines appear.
  ///
  /// `smp` is QEMU's CPU count. Under QEMU's TCG with more than one pcpu, pcpu 0 runs no guests
  /// (`cpu0guests=auto`, docs/known-issues.md): tests that want two pcpus for their guests ask
  /// for three.
  static func boot(
    configs: [String], smp: Int, cmdline: String = "", timeout: Double = 120, input: [SerialInput] = [],
    memoryMiB: Int? = nil
  ) throws -> RunResult {
    let folder = try TemporaryFolder("swiftvisor-domains")
    defer { folder.remove() }
    var paths: [String] = []
    for (index, text) in configs.enumerated() {
      paths.append(try folder.write("domain\(index).cfg", text))
    }
    let bundle = folder.url.appendingPathComponent("boot-bundle.bin")
    _ = try BundleMaker.make(configPaths: paths, output: bundle)
    return try boot(initrd: bundle.path, smp: smp, cmdline: cmdline, timeout: timeout, input: input, memoryMiB: memoryMiB)
  }

  /// Boots the image with a boot bundle already built (`BootBundle.build`), as its initrd.
  static func boot(bundle bytes: [UInt8], smp: Int, cmdline: String = "", timeout: Double = 120) throws -> RunResult {
    let folder = try TemporaryFolder("swiftvisor-bundle")
    defer { folder.remove() }
    let bundle = folder.url.appendingPathComponent("boot-bundle.bin")
    try Data(bytes).write(to: bundle)
    return try boot(initrd: bundle.path, smp: smp, cmdline: cmdline, timeout: timeout)
  }

  /// Boots the image with `initrd` as its module (`memoryMiB`: the machine's memory, if not
  /// `RunConfiguration`'s default).
  static func boot(
    initrd: String, smp: Int, cmdline: String = "", timeout: Double = 120, input: [SerialInput] = [],
    memoryMiB: Int? = nil
  ) throws -> RunResult {
    var configuration = RunConfiguration(kernel: try path())
    if let memoryMiB { configuration.memoryMiB = memoryMiB }
    configuration.smp = smp
    configuration.cmdline = cmdline
    configuration.timeout = timeout
    configuration.initrd = initrd
    configuration.input = input
    return try run(configuration)
  }

  /// Every system test runs with the isolation check on (docs/memory.md): a frame whose owner
  /// or count disagrees with the p2ms stops the run.
  static func run(_ configuration: RunConfiguration) throws -> RunResult {
    var configuration = configuration
    if !configuration.cmdline.contains("isolationcheck") {
      configuration.cmdline = configuration.cmdline.isEmpty ? "isolationcheck" : configuration.cmdline + " isolationcheck"
    }
    return try QEMURunner.locate().run(configuration)
  }
}

extension RunResult {
  /// The console lines containing `text`, in order.
  func lines(containing text: String) -> [String] {
    lines.map(\.text).filter { $0.contains(text) }
  }

  /// The index in `lines` of the first line containing `text`, or nil.
  func firstIndex(of text: String) -> Int? {
    lines.firstIndex { $0.text.contains(text) }
  }
}

/// The decimal number just before `suffix` in `line` ("…, 12 hypercall continuations" → 12).
func number(before suffix: String, in line: String) -> Int? {
  guard let end = line.range(of: suffix)?.lowerBound else { return nil }
  let digits = line[..<end].reversed().prefix { $0.isNumber }
  return digits.isEmpty ? nil : Int(String(digits.reversed()))
}

/// Every chunk of `input` was typed (each waits for its line, so a missing one names what did
/// not appear).
func expectAllInputSent(_ result: RunResult, _ input: [SerialInput], sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(
    result.inputTimes.count == input.count,
    "only \(result.inputTimes.count) of \(input.count) input chunks were sent (the next waited for \(input.dropFirst(result.inputTimes.count).first?.after ?? "nothing"))\n\(context(result))",
    sourceLocation: sourceLocation)
}
