import ArgumentParser
import Foundation
import VisorKit

struct Fuzz: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run guest-fuzz beside a bystander domain pair, with the isolation check on.",
    discussion: """
      Boots the image at -smp \(FuzzRun.pcpus) with `\(FuzzRun.cmdline)` and three domains: a \
      guest-pingpong pair (the bystander, \(FuzzRun.roundsPerSecond) rounds per second of \
      fuzzing) and guest-fuzz with two vcpus, which calls every hypercall with generated \
      arguments for --seconds from --seed (a random one when none is given; it is printed \
      first, with the command that replays the run). Prints how many calls the fuzzer \
      survived. Fails, with one line saying why, on a hypervisor crash or panic, a hang (QEMU \
      killed at its time limit), an isolation check report, a bystander that did not finish, \
      or a fuzzer domain that did not survive (docs/security.md, "The fuzzer").
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: ArgumentHelp("How long guest-fuzz calls (system time).", valueName: "seconds"))
  var seconds = 60

  @Option(help: ArgumentHelp("The fuzzer's seed (default: a random one, printed).", valueName: "n"))
  var seed: UInt64?

  @Option(help: ArgumentHelp("A folder of test guests built by scripts/build-guests (default: build guest-fuzz and guest-pingpong).", valueName: "path"))
  var guests: String?

  @Flag(help: "guest-fuzz prints every call before making it (to find the last one before a crash; slow).")
  var trace = false

  @Flag(help: "Show the whole console (default: the fuzzer's progress and the end of the run).")
  var verbose = false

  func validate() throws {
    guard (1...3600).contains(seconds) else { throw ValidationError("--seconds must be between 1 and 3600") }
    if let seed, seed >= 1_000_000_000_000_000_000 { throw ValidationError("--seed must have at most 18 digits") }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let seed = self.seed ?? FuzzRun.randomSeed()
      note("seed \(seed): replay with \(FuzzRun.replayCommand(seed: seed, seconds: seconds))")
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let fuzzer = try guestPath("guest-fuzz")
      let pingpong = try guestPath("guest-pingpong")

      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-fuzz-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }
      let bundle = try BundleMaker.make(
        configs: FuzzRun.configs(fuzzer: fuzzer, pingpong: pingpong, seed: seed, seconds: seconds, trace: trace),
        in: folder, bundleName: "bundle.bin")
      var configuration = RunConfiguration(kernel: path)
      configuration.smp = FuzzRun.pcpus
      configuration.cmdline = FuzzRun.cmdline
      configuration.initrd = bundle.path
      configuration.timeout = FuzzRun.timeout(seconds: seconds)
      try configuration.sizeMemory()
      note(shellQuoted([runner.qemuPath] + QEMURunner.arguments(for: configuration)))

      let quiet = !verbose && !trace
      let result = try runner.run(configuration, echo: !quiet) { line in
        if quiet && line.text.contains("guest-fuzz: ") && line.text.contains(" calls after ") {
          FileHandle.standardOutput.write(Data((line.text + "\n").utf8))
        }
      }
      let verdict = FuzzRun.verdict(result, seconds: seconds)
      if let failure = verdict.failure {
        if quiet { FileHandle.standardError.write(Data((result.tail() + "\n").utf8)) }
        if failure.exit == .crash, let report = CrashReport.first(in: result.lines.map(\.text)),
           let frames = Symbolizer.describe(report, image: path, relativeTo: try? image.build.builder().packageRoot.path) {
          note("the crash report's backtrace, symbolized:\n" + frames)
        }
        var reason = failure.reason
        if let calls = verdict.calls { reason += " (the fuzzer had survived \(calls) calls)" }
        throw VisorError(failure.exit, "seed \(seed): \(reason); replay with \(FuzzRun.replayCommand(seed: seed, seconds: seconds)) --trace")
      }
      if let line = verdict.survivedLine, quiet { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
      let time = String(format: "%.1f s", Double(verdict.milliseconds ?? seconds * 1000) / 1000)
      note("seed \(seed): the fuzzer survived \(verdict.calls ?? 0) calls in \(time); the bystander finished; isolation check clean")
    }
  }

  /// A guest ELF: from --guests, or built as `visor bench` builds its guests.
  func guestPath(_ product: String) throws(VisorError) -> String {
    if let guests {
      let path = URL(fileURLWithPath: guests).appendingPathComponent(product).standardizedFileURL.path
      guard FileManager.default.isReadableFile(atPath: path) else {
        throw VisorError(.usage, "--guests \(guests): no \(product) there (build them with scripts/build-guests \(guests))")
      }
      return path
    }
    let builder = ImageBuilder.forGuest(product, packageRoot: try image.build.builder().packageRoot)
    note("building \(product): swift \(shellQuoted(builder.arguments))")
    return try builder.build().path
  }
}
