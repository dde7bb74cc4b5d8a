import Foundation

/// One line of the serial console, with the time it arrived.
public struct ConsoleLine: Sendable, Equatable {
  /// The line without its `\n` (and without a trailing `\r`).
  public var text: String
  /// Seconds from QEMU's start to the arrival of the line's end.
  public var time: Double

  public init(text: String, time: Double) {
    self.text = text
    self.time = time
  }

  init(_ bytes: Data, time: Double) {
    var text = String(decoding: bytes, as: UTF8.self)
    if text.hasSuffix("\r") { text.removeLast() }
    self.init(text: text, time: time)
  }
}

/// How one QEMU run ended and what it printed.
public struct RunResult: Sendable {
  public var exit: VisorExit
  /// QEMU's exit status (the signal number if `signaled`).
  public var qemuStatus: Int32
  public var signaled: Bool
  /// visor killed QEMU after the time limit.
  public var timedOut: Bool
  /// Everything the hypervisor wrote to the serial console (QEMU's stdout).
  public var console: String
  public var lines: [ConsoleLine]
  /// QEMU's own diagnostics (its stderr).
  public var qemuErrors: String
  /// Seconds from QEMU's start to its exit.
  public var elapsed: Double
  /// The full QEMU command line.
  public var command: [String]
  /// When each chunk of `RunConfiguration.input` was written to QEMU's stdin, in seconds from
  /// QEMU's start; fewer entries than chunks if a line a chunk waited for never appeared.
  public var inputTimes: [Double]
  /// A run killed at its time limit: where QEMU's CPUs were then (`info registers -a` from its
  /// monitor, each RIP in the image named), or empty (`QEMUMonitor`).
  public var stateAtLimit = ""

  public init(
    exit: VisorExit, qemuStatus: Int32, signaled: Bool = false, timedOut: Bool = false, console: String,
    lines: [ConsoleLine], qemuErrors: String = "", elapsed: Double, command: [String] = [], inputTimes: [Double] = []
  ) {
    self.exit = exit
    self.qemuStatus = qemuStatus
    self.signaled = signaled
    self.timedOut = timedOut
    self.console = console
    self.lines = lines
    self.qemuErrors = qemuErrors
    self.elapsed = elapsed
    self.command = command
    self.inputTimes = inputTimes
  }

  /// Seconds from QEMU's start until the first console line containing `text` was complete, or nil.
  public func timeOfFirstMatch(_ text: String) -> Double? {
    lines.first { $0.text.contains(text) }?.time
  }

  /// Whether some console line contains `text`.
  public func contains(_ text: String) -> Bool {
    lines.contains { $0.text.contains(text) }
  }

  /// The last `count` console lines, for error messages.
  public func tail(_ count: Int = 40) -> String {
    lines.suffix(count).map(\.text).joined(separator: "\n")
  }

  /// One line: how the run ended.
  public var summary: String {
    let time = String(format: "%.2f s", elapsed)
    switch exit {
    case .timeout:
      return "timed out after \(time): QEMU was killed"
    case .qemuFailed:
      return signaled
        ? "QEMU was killed by signal \(qemuStatus) after \(time)"
        : "QEMU failed with status \(qemuStatus) after \(time)"
          + (qemuErrors.isEmpty ? "" : ": " + (qemuErrors.split(separator: "\n").first.map(String.init) ?? ""))
    default:
      return "\(exit) (QEMU status \(qemuStatus), \(time))"
    }
  }
}

/// Runs the hypervisor under QEMU (TCG), streams its console and classifies how it ended.
public struct QEMURunner: Sendable {
  public static let executableName = "qemu-system-x86_64"

  /// Path of the QEMU binary.
  public var qemuPath: String

  public init(qemuPath: String) {
    self.qemuPath = qemuPath
  }

  /// Finds `qemu-system-x86_64` on `searchPath` (default: `PATH`).
  public static func locate(
    searchPath: String? = ProcessInfo.processInfo.environment["PATH"]
  ) throws(VisorError) -> QEMURunner {
    guard let path = HostTools.find(executableName, searchPath: searchPath) else { throw .qemuMissing() }
    return QEMURunner(qemuPath: path)
  }

  /// The hypervisor's command line as QEMU passes it. Under `-icount` QEMU runs every CPU on
  /// one thread, so the race that keeps pcpu 0 free of guests under TCG (docs/known-issues.md)
  /// cannot happen: `cpu0guests=yes` is added unless the command line says otherwise.
  public static func effectiveCommandLine(_ configuration: RunConfiguration) -> String {
    guard configuration.icount, !configuration.cmdline.contains("cpu0guests=") else { return configuration.cmdline }
    return configuration.cmdline.isEmpty ? "cpu0guests=yes" : configuration.cmdline + " cpu0guests=yes"
  }

  /// QEMU's arguments (without the program name) for `configuration`; with `monitorSocket`, its
  /// monitor listens there (`QEMUMonitor`) instead of being off.
  public static func arguments(for configuration: RunConfiguration, monitorSocket: String? = nil) -> [String] {
    var args = [
      "-accel", "tcg",
      "-cpu", configuration.cpu,
      "-machine", configuration.machine.rawValue,
      "-smp", String(configuration.smp),
      "-m", "\(configuration.memoryMiB ?? MachineMemory.withoutDomainsMiB)M",
    ]
    switch configuration.boot {
    case .kernel(let path):
      args += ["-kernel", path]
      let cmdline = effectiveCommandLine(configuration)
      if !cmdline.isEmpty { args += ["-append", cmdline] }
      if let initrd = configuration.initrd { args += ["-initrd", initrd] }
    case .cdrom(let path):
      args += ["-cdrom", path, "-boot", "d"]
    }
    args += [
      "-nodefaults",  // no VGA, NIC or default drives: the hypervisor uses none, and they slow firmware start-up
      "-display", "none",
    ] + (configuration.interactiveConsole
      ? ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
      : ["-serial", "stdio"]) + [
      "-monitor", monitorSocket.map(QEMUMonitor.argument(socket:)) ?? "none",
      "-no-reboot",
      "-device", "isa-debug-exit,iobase=0x\(String(VisorExit.debugExitPort, radix: 16)),iosize=0x04",
    ]
    if configuration.icount {
      args += ["-icount", "shift=0,sleep=off", "-rtc", "clock=vm"]
    }
    if configuration.gdb {
      args += ["-s", "-S"]
    }
    return args + configuration.extraQEMUArguments
  }

  /// How to attach gdb to a run started with `gdb: true`.
  public static func gdbInstructions(image: String) -> String {
    "QEMU waits for gdb on :\(RunConfiguration.gdbPort); attach with: gdb \(image) -ex 'target remote :\(RunConfiguration.gdbPort)'"
  }

  /// At the time limit, before QEMU is killed: moves the console input to the hypervisor
  /// (Ctrl-A three times, as often as it takes: once per live domain at most, bounded at 65) and types
  /// `vcpus`, whose lines say where every pcpu and vcpu was and which events were pending
  /// (docs/events.md, "Looking at a stalled domain"). Waits at most a few seconds for each step:
  /// a machine that no longer answers is killed all the same.
  static func askForDump(_ feeder: SerialInputFeeder, _ console: OutputCollector, _ qemu: ChildProcess) {
    func waitForLine(after count: Int, containing text: String, seconds: Double) -> Bool {
      let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
      repeat {
        if console.lines.dropFirst(count).contains(where: { $0.text.contains(text) }) { return true }
        if qemu.wait(timeout: 0.1) { return false }
      } while DispatchTime.now().uptimeNanoseconds < end
      return false
    }
    // Only the hypervisor's console moves its input ("console input: …" at boot): anything else
    // (a QEMU that never got that far, a stand-in) is killed at once.
    guard console.lines.contains(where: { $0.text.contains("console input: ") }) else { return }
    for _ in 0...64 {
      let lines = console.lines
      let focus = lines.last { $0.text.contains("console input: ") }
      if focus?.text.contains("console input: the hypervisor") == true { break }
      feeder.sendNow([1, 1, 1])
      guard waitForLine(after: lines.count, containing: "console input: ", seconds: 2) else { return }
    }
    let count = console.lines.count
    feeder.sendNow(Array("\nvcpus\n".utf8))
    _ = waitForLine(after: count, containing: "console: vcpus: done", seconds: 5)
  }

  /// Boots `configuration` and waits for QEMU to exit (or kills it at the time limit). With
  /// `configuration.input`, QEMU's stdin is a pipe the chunks are typed into as their lines
  /// appear; otherwise it is a pipe with a time limit (for `askForDump`), /dev/null without.
  /// - Parameter echo: copy the console to stdout and QEMU's diagnostics to stderr as they arrive.
  /// - Parameter watch: called with each console line as it arrives (`visor fuzz` shows its
  ///   progress lines this way).
  public func run(
    _ configuration: RunConfiguration, echo: Bool = false, watch: (@Sendable (ConsoleLine) -> Void)? = nil
  ) throws(VisorError) -> RunResult {
    var configuration = configuration
    try configuration.sizeMemory()
    try configuration.validate()
    let image: String
    switch configuration.boot {
    case .kernel(let path): image = path
    case .cdrom(let path): image = path
    }
    guard FileManager.default.isReadableFile(atPath: image) else {
      throw VisorError(.usage, "cannot read \(image): build the image first (visor build)")
    }
    if let initrd = configuration.initrd, !FileManager.default.isReadableFile(atPath: initrd) {
      throw VisorError(.usage, "cannot read initrd \(initrd)")
    }

    // A run that can reach a time limit keeps QEMU's monitor within reach, to say where the
    // CPUs were if it does.
    let monitorSocket = configuration.timeout != nil && !configuration.interactiveConsole && !configuration.gdb
      ? QEMUMonitor.makeSocketPath() : nil
    defer { if let monitorSocket { unlink(monitorSocket) } }
    let arguments = Self.arguments(for: configuration, monitorSocket: monitorSocket)
    let start = DispatchTime.now().uptimeNanoseconds
    // With a time limit stdin is a pipe even with no input to type: at the limit the run asks
    // the hypervisor's console for its `vcpus` dump through it (`askForDump`).
    let qemu = try ChildProcess(executable: qemuPath, arguments: arguments,
                                input: !configuration.input.isEmpty || configuration.timeout != nil)
    let feeder = qemu.stdinWriteEnd.map { SerialInputFeeder(configuration.input, writingTo: $0, start: start) }
    var onLine: (@Sendable (ConsoleLine) -> Void)? = watch
    if let feeder { onLine = { line in feeder.lineArrived(line); watch?(line) } }
    let console = OutputCollector(echo: echo ? FileHandle.standardOutput : nil, start: start, onLine: onLine)
    let diagnostics = OutputCollector(echo: echo ? FileHandle.standardError : nil, start: start)
    console.drain(qemu.stdout)
    diagnostics.drain(qemu.stderr)

    // At the limit, end only the QEMU this runner started: SIGTERM, then SIGKILL after 3 s.
    var timedOut = false
    var stateAtLimit = ""
    if !qemu.wait(timeout: configuration.timeout) {
      timedOut = true
      if let feeder, !configuration.interactiveConsole { Self.askForDump(feeder, console, qemu) }
      if let monitorSocket, let registers = QEMUMonitor.ask("info registers -a", socket: monitorSocket) {
        stateAtLimit = Self.describe(registers: registers, image: image)
      }
      qemu.send(SIGTERM)
      if !qemu.wait(timeout: 3) {
        qemu.send(SIGKILL)
        _ = qemu.wait()
      }
    }
    // QEMU has exited, so EOF follows at once, unless something QEMU started still holds the pipes.
    console.waitForEOF(timeout: 5)
    diagnostics.waitForEOF(timeout: 5)
    let inputTimes = feeder?.finish() ?? []

    let end = qemu.termination
    var result = RunResult(
      exit: VisorExit.classify(qemuStatus: end.status, signaled: end.signaled, timedOut: timedOut),
      qemuStatus: end.status, signaled: end.signaled, timedOut: timedOut,
      console: console.text, lines: console.lines, qemuErrors: diagnostics.text,
      elapsed: Double(end.exitedAt &- start) / 1e9,
      command: [qemuPath] + arguments, inputTimes: inputTimes)
    result.stateAtLimit = stateAtLimit
    return result
  }

  /// The monitor's `info registers -a`, followed by the function of the image each CPU's RIP is
  /// in (a RIP outside the image is a guest's, or firmware's).
  static func describe(registers: String, image: String) -> String {
    let pointers = QEMUMonitor.instructionPointers(in: registers)
    guard let locations = Symbolizer.symbolize(pointers, image: image) else { return registers }
    let named = locations.enumerated().map { cpu, location in
      "CPU#\(cpu) RIP 0x\(String(location.address, radix: 16)): "
        + (location.function.map { "\($0) in the image" + (location.source.map { " (\($0))" } ?? "") } ?? "not in the image")
    }
    return registers + "\n" + named.joined(separator: "\n")
  }
}
