import ArgumentParser
import Foundation
import VisorKit

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Build the image and boot it under QEMU, showing the hypervisor's console.",
    discussion: """
      The console goes to stdout; visor's own messages to stderr. visor exits with the \
      hypervisor's outcome (see `visor --help`).
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Physical CPUs (QEMU -smp). Under QEMU's TCG pcpu 0 runs no guests when there are others (docs/known-issues.md).")
  var smp = 3

  @Option(help: ArgumentHelp("Memory of the emulated machine (default: what the domains need, or 512 without any).", valueName: "MiB"))
  var memory: Int?

  @Option(help: ArgumentHelp("Kill QEMU after this many seconds; 0 for never (default: 120, never with --gdb).", valueName: "seconds"))
  var timeout: Double?

  @Flag(help: "Start QEMU's gdb stub on :1234 and wait for gdb before the first instruction.")
  var gdb = false

  @Option(help: ArgumentHelp("The hypervisor's command line, e.g. \"smp=1\" or \"crash=ud2\".", valueName: "options"))
  var cmdline = ""

  @Flag(help: "Deterministic time: the TSC counts instructions (-icount shift=0,sleep=off -rtc clock=vm).")
  var icount = false

  @Option(help: ArgumentHelp("The emulated chipset: q35 or pc.", valueName: "machine"))
  var machine = RunConfiguration.Machine.q35.rawValue

  @Option(help: ArgumentHelp("A module to hand the hypervisor (QEMU -initrd).", valueName: "path"))
  var initrd: String?

  @Option(help: ArgumentHelp("Write the domains' boot bundle here and keep it (default: a file of this run's own, removed when the run ends, so that runs side by side never share one).", valueName: "path"))
  var bundle: String?

  @Flag(help: "Boot through GRUB (multiboot2) from an ISO instead of QEMU's direct PVH load.")
  var iso = false

  @Flag(name: [.short, .long], help: "Type into the console: visor relays this terminal in raw mode (Ctrl-A three times moves the input between the domains and the hypervisor; q on the hypervisor quits). It runs until the hypervisor powers off.")
  var interactive = false

  @Argument(help: ArgumentHelp("Domain configurations (xl.cfg syntax): each becomes a domain the hypervisor builds at boot.", valueName: "CONFIG.cfg"))
  var configs: [String] = []

  func validate() throws {
    if !configs.isEmpty && (initrd != nil || iso) {
      throw ValidationError("domain configs cannot be combined with --initrd or --iso (the bundle is the initrd)")
    }
    if bundle != nil && configs.isEmpty { throw ValidationError("--bundle needs domain configs (it is where their bundle goes)") }
    guard (1...255).contains(smp) else { throw ValidationError("--smp must be between 1 and 255") }
    if let memory, memory < 32 { throw ValidationError("--memory must be at least 32 (MiB)") }
    if let timeout, timeout < 0 { throw ValidationError("--timeout must be 0 (never) or positive") }
    guard RunConfiguration.Machine(rawValue: machine) != nil else {
      throw ValidationError("--machine must be one of: \(RunConfiguration.Machine.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    if iso && initrd != nil { throw ValidationError("--initrd cannot be used with --iso") }
    if interactive && (gdb || timeout != nil) { throw ValidationError("--interactive cannot be used with --gdb or --timeout") }
  }

  func run() throws {
    // This run's own bundle folder, if it made one: removed however the run ends.
    var ownFolder: URL?
    defer { if let ownFolder { try? FileManager.default.removeItem(at: ownFolder) } }
    try reportingErrors { () throws(VisorError) in
      let runner = try QEMURunner.locate()  // before a long build
      let elf = try image.resolveImage()
      var configuration: RunConfiguration
      if iso {
        let folder = (try? image.build.builder().scratchPath) ?? FileManager.default.temporaryDirectory
        let output = folder.appendingPathComponent("swiftvisor.iso")
        note("making a GRUB ISO: \(output.path)")
        try ISOBuilder().build(image: elf, cmdline: cmdline, output: output)
        configuration = RunConfiguration(boot: .cdrom(path: output.path))
      } else {
        configuration = RunConfiguration(kernel: elf.path)
        configuration.cmdline = cmdline
        configuration.initrd = initrd
        if !configs.isEmpty {
          let output: URL
          if let bundle {
            output = URL(fileURLWithPath: bundle)
          } else {
            // A folder of this process's own: two runs side by side once booted each other's
            // half-written bundle when they shared one file.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-run-\(getpid())")
            ownFolder = folder
            output = folder.appendingPathComponent("boot-bundle.bin")
          }
          let summary = try BundleMaker.makeBundle(configPaths: configs, output: output)
          for warning in summary.warnings { note("warning: \(warning)") }
          note("boot bundle: \(summary.domains) domain(s) -> \(output.path)")
          configuration.initrd = output.path
        }
      }
      configuration.smp = smp
      configuration.memoryMiB = memory
      if let need = try configuration.sizeMemory(), memory == nil {
        note("machine memory: \(configuration.memoryMiB ?? 0) MiB (\(need))")
      }
      configuration.gdb = gdb
      configuration.icount = icount
      configuration.machine = RunConfiguration.Machine(rawValue: machine) ?? .q35
      switch timeout {
      case .none: configuration.timeout = gdb ? nil : 120
      case .some(let seconds): configuration.timeout = seconds == 0 ? nil : seconds
      }

      if interactive {
        configuration.timeout = nil
        configuration.interactiveConsole = true
        try configuration.validate()
        let command = InteractiveConsole.command(qemu: runner.qemuPath, arguments: QEMURunner.arguments(for: configuration))
        note(shellQuoted(command))
        let end = try InteractiveConsole.run(command)
        let exit = VisorExit.classify(qemuStatus: end.status, signaled: end.signaled)
        guard exit == .clean else { throw VisorError(exit, "the hypervisor's run ended: \(exit)") }
        return
      }
      note(shellQuoted([runner.qemuPath] + QEMURunner.arguments(for: configuration)))
      if gdb { note(QEMURunner.gdbInstructions(image: elf.path)) }
      let result = try runner.run(configuration, echo: true)
      if result.exit == .crash, let report = CrashReport.first(in: result.lines.map(\.text)),
         let frames = Symbolizer.describe(report, image: elf.path, relativeTo: try? image.build.builder().packageRoot.path) {
        note("the crash report's backtrace, symbolized:\n" + frames)
      }
      if !result.stateAtLimit.isEmpty { note("QEMU's CPUs at the time limit (info registers -a):\n" + result.stateAtLimit) }
      guard result.exit == .clean else { throw VisorError(result.exit, result.summary) }
      note(result.summary)
    }
  }
}
