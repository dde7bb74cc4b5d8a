import ArgumentParser
import Foundation
import VisorKit

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure the hypervisor under QEMU.",
    subcommands: [BootBench.self, HypercallBench.self, SchedBench.self, EventsBench.self, XenstoreBench.self, LinuxBench.self, GrantsBench.self, PVBench.self])
}

struct BootBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "boot",
    abstract: "Boot time to all pcpus online and image size, against their targets.",
    discussion: """
      Boots the image --runs times at each -smp and prints the medians of the time from QEMU's \
      start to the "pcpus online: N" line and to QEMU's exit, then the image size (the ELF file \
      and the sum of its PT_LOAD memsz). Targets: image < 512 KiB, all pcpus online < 0.5 s at -smp 4.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots per -smp value.")
  var runs = 3

  @Option(help: "An -smp value to measure; repeat for several (default: 1, 2 and 4).")
  var smp: [Int] = [1, 2, 4]

  @Option(help: ArgumentHelp("Memory of the emulated machine.", valueName: "MiB"))
  var memory = 512

  @Option(help: ArgumentHelp("Kill a boot after this many seconds.", valueName: "seconds"))
  var timeout: Double = 120

  @Flag(help: "Deterministic time (-icount shift=0,sleep=off -rtc clock=vm).")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard !smp.isEmpty, smp.allSatisfy({ (1...255).contains($0) }) else {
      throw ValidationError("--smp values must be between 1 and 255")
    }
    guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    guard memory >= 32 else { throw ValidationError("--memory must be at least 32 (MiB)") }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let elf = try ImageFile(path: path)
      var rows: [BootBenchmark.Row] = []
      for count in smp {
        var row = BootBenchmark.Row(smp: count)
        let online = BootBenchmark.onlineLine(smp: count)
        for index in 1...runs {
          var configuration = RunConfiguration(kernel: path)
          configuration.smp = count
          configuration.memoryMiB = memory
          configuration.timeout = timeout
          configuration.icount = icount
          let result = try runner.run(configuration)
          guard result.exit == .clean else {
            FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
            throw VisorError(result.exit, "-smp \(count) run \(index) of \(runs) failed: \(result.summary)")
          }
          guard let onlineTime = result.timeOfFirstMatch(online) else {
            FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
            throw VisorError(.checkFailed, "-smp \(count) run \(index) of \(runs): no \"\(online)\" line on the console (its tail is above)")
          }
          row.online.append(onlineTime)
          row.exit.append(result.elapsed)
          note(String(format: "-smp %d run %d/%d: online %.3f s, exit %.3f s", count, index, runs, onlineTime, result.elapsed))
        }
        rows.append(row)
      }
      print(BootBenchmark.report(rows: rows, image: elf, runs: runs, icount: icount), terminator: "")
    }
  }
}

struct HypercallBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hypercall",
    abstract: "Null hypercall and CPUID exit costs beside the bare VMRUN floor; 64 MiB domain build time.",
    discussion: """
      Builds guest-bench, boots it as a 64 MiB domain at -smp 1 --runs times, and prints the medians. \
      Target: a null hypercall at most 1.2x the floor. With --icount the figures are instruction counts.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots to measure.")
  var runs = 3

  @Option(help: "Samples per measurement inside each boot.")
  var samples = 100_000

  @Flag(help: "Deterministic counts (-icount shift=0,sleep=off -rtc clock=vm).")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard (1000...131_072).contains(samples) else { throw ValidationError("--samples must be between 1000 and 131072") }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let root = try image.build.builder().packageRoot
      let guestBuilder = ImageBuilder.forGuest("guest-bench", packageRoot: root)
      note("building guest-bench: swift \(shellQuoted(guestBuilder.arguments))")
      let guest = try guestBuilder.build()
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-bench-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }
      let bundle = try BundleMaker.make(
        configs: [("bench", HypercallBenchmark.config(guest: guest.path, samples: samples))], in: folder, bundleName: "bundle.bin")
      let switchBundle = try BundleMaker.make(
        configs: HypercallBenchmark.switchConfigs(guest: guest.path, samples: samples), in: folder, bundleName: "switch.bin")
      var results: [HypercallBenchmark.Sample] = []
      for index in 1...runs {
        let configuration = HypercallBenchmark.runConfiguration(image: path, bundle: bundle.path, samples: samples, icount: icount)
        let result = try runner.run(configuration)
        let lines = result.lines.map(\.text)
        guard result.exit == .clean, var sample = HypercallBenchmark.sample(from: lines) else {
          FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
          throw VisorError(result.exit == .clean ? .checkFailed : result.exit, "run \(index) of \(runs) failed: \(result.summary)")
        }
        let switchRun = try runner.run(
          HypercallBenchmark.switchRunConfiguration(image: path, bundle: switchBundle.path, icount: icount))
        guard switchRun.exit == .clean, let vcpuSwitch = HypercallBenchmark.vcpuSwitch(from: switchRun.lines.map(\.text)) else {
          FileHandle.standardError.write(Data((switchRun.tail() + "\n").utf8))
          throw VisorError(switchRun.exit == .clean ? .checkFailed : switchRun.exit,
                           "run \(index) of \(runs), the switch measurement, failed: \(switchRun.summary)")
        }
        sample.vcpuSwitch = vcpuSwitch
        note(String(format: "run %d/%d: floor %.0f, hypercall %.0f, cpuid %.0f, send %.0f, lone yield %.0f, switch %.0f, build %.1f ms",
                    index, runs, sample.floor, sample.hypercall, sample.cpuid, sample.send, sample.loneYield, vcpuSwitch,
                    sample.buildMicroseconds / 1000))
        results.append(sample)
      }
      print(HypercallBenchmark.report(results, icount: icount), terminator: "")
    }
  }
}

struct GrantsBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grants",
    abstract: "Grant map, unmap, map+unmap and a 4 KiB copy beside a null hypercall.",
    discussion: """
      Builds guest-grant, boots it (role=bench: it grants a page to itself) at -smp 1 --runs times, \
      and prints the medians. Target: each grant operation at most 2 null hypercalls. With --icount \
      the figures are instruction counts.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots to measure.")
  var runs = 3

  @Option(help: "Samples per measurement inside each boot.")
  var samples = 20_000

  @Flag(help: "Deterministic counts (-icount shift=0,sleep=off -rtc clock=vm).")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard (1000...131_072).contains(samples) else { throw ValidationError("--samples must be between 1000 and 131072") }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let results = try measureGuest(
        image, guest: "guest-grant", domain: "grantbench", runs: runs, icount: icount,
        config: { GrantBenchmark.config(guest: $0, samples: samples) }, sample: GrantBenchmark.sample(from:),
        describe: { String(format: "null %.0f, map %.0f, unmap %.0f, map+unmap %.0f, copy 4 KiB %.0f",
                           $0.null, $0.map, $0.unmap, $0.roundTrip, $0.copy) })
      print(GrantBenchmark.report(results, icount: icount), terminator: "")
    }
  }
}

struct SchedBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sched",
    abstract: "The credit scheduler's weights measured: CPU-bound domains of chosen weights on 2 pcpus (default 256/512/256).",
    discussion: """
      Builds guest-spin and boots hog domains (one vcpu each) at -smp 3 (pcpu 0 runs no guests \
      under TCG) --runs times per arrangement. Each hog counts the work it completes in the same \
      window of system time; the table compares every run's shares with the ideal ones (weights, \
      caps and pinning water-filled; target: within 2 points in every run). Arrangements: \
      \(SchedulerBenchmark.arrangements.map { "\($0.name) (\($0.summary))" }.joined(separator: ", ")).
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots to measure, per arrangement.")
  var runs = 1

  @Option(help: ArgumentHelp("Length of the measured window.", valueName: "ms"))
  var window = 4000

  @Option(help: ArgumentHelp("When the window starts (system time; after every domain is built).", valueName: "ms"))
  var start = 2000

  @Option(help: ArgumentHelp("An arrangement to measure, or all; repeat for several (default: weights).", valueName: "name"))
  var arrangement: [String] = ["weights"]

  @Flag(help: "Deterministic runs (-icount shift=0,sleep=off -rtc clock=vm): system time counts guest instructions.")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard (500...60_000).contains(window) else { throw ValidationError("--window must be between 500 and 60000 ms") }
    guard (500...60_000).contains(start) else { throw ValidationError("--start must be between 500 and 60000 ms") }
    for name in arrangement where name != "all" && SchedulerBenchmark.arrangement(named: name) == nil {
      throw ValidationError("unknown arrangement \(name); known: all, \(SchedulerBenchmark.arrangements.map(\.name).joined(separator: ", "))")
    }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let chosen = arrangement.contains("all")
        ? SchedulerBenchmark.arrangements : arrangement.compactMap { SchedulerBenchmark.arrangement(named: $0) }
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let root = try image.build.builder().packageRoot
      let guestBuilder = ImageBuilder.forGuest("guest-spin", packageRoot: root)
      note("building guest-spin: swift \(shellQuoted(guestBuilder.arguments))")
      let guest = try guestBuilder.build()
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-bench-sched-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }
      var reports: [String] = []
      for setup in chosen {
        let configs = setup.domains.map {
          (name: $0.name, text: SchedulerBenchmark.config($0, guest: guest.path, from: start, until: start + window))
        }
        let bundle = try BundleMaker.make(configs: configs, in: folder, bundleName: "\(setup.name).bin")
        var samples: [SchedulerBenchmark.Sample] = []
        for index in 1...runs {
          let configuration = SchedulerBenchmark.runConfiguration(
            image: path, bundle: bundle.path, start: start, window: window, icount: icount)
          let result = try runner.run(configuration)
          let lines = result.lines.map(\.text)
          guard result.exit == .clean, let sample = SchedulerBenchmark.sample(from: lines, domains: setup.domains) else {
            FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
            throw VisorError(result.exit == .clean ? .checkFailed : result.exit, "\(setup.name), run \(index) of \(runs) failed: \(result.summary)")
          }
          let ideal = SchedulerBenchmark.idealShares(setup.domains, guestPCPUs: SchedulerBenchmark.guestPCPUs)
          let work = sample.workShares(setup.domains, ideal: ideal)
          let ran = sample.timeShares(setup.domains)
          let parts = setup.domains.indices.map { String(format: "%@ %.1f / %.1f", setup.domains[$0].name, work[$0], ran[$0]) }
          note(String(format: "%@, run %d/%d (%.1f s), work / ran: ", setup.name, index, runs, result.elapsed) + parts.joined(separator: ", "))
          samples.append(sample)
        }
        reports.append(SchedulerBenchmark.report(setup, samples, window: window, icount: icount))
      }
      print(reports.joined(separator: "\n") + "\n" + SchedulerBenchmark.legend, terminator: "")
    }
  }
}

struct EventsBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "events",
    abstract: "Event-channel ping-pong, IPI round trip, timer lateness and vcpu switch cost, beside a null hypercall.",
    discussion: """
      Builds guest-pingpong, guest-ipi, guest-timer and guest-bench and boots one scenario at a \
      time at -smp 2 (pinned with cpus= where it matters). Target: an interdomain notification \
      costs at most 3 null hypercalls.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots per scenario.")
  var runs = 1

  @Option(help: "Rounds of each round-trip measurement.")
  var rounds = 1000

  @Flag(help: "Deterministic counts (-icount shift=0,sleep=off -rtc clock=vm): cycles become instructions.")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard (10...100_000).contains(rounds) else { throw ValidationError("--rounds must be between 10 and 100000") }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let root = try image.build.builder().packageRoot
      var guests: [String: String] = [:]
      for product in ["guest-pingpong", "guest-ipi", "guest-timer", "guest-bench"] {
        let builder = ImageBuilder.forGuest(product, packageRoot: root)
        note("building \(product): swift \(shellQuoted(builder.arguments))")
        guests[product] = try builder.build().path
      }
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-bench-events-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }
      let scenarios = EventBenchmark.scenarios(
        pingpong: guests["guest-pingpong"]!, ipi: guests["guest-ipi"]!, timer: guests["guest-timer"]!,
        bench: guests["guest-bench"]!, rounds: rounds)
      // One bundle per scenario, made once for all the runs.
      var bundles: [String: URL] = [:]
      for scenario in scenarios {
        let configs = scenario.configs.enumerated().map { (name: "\(scenario.name)-\($0.offset)", text: $0.element) }
        bundles[scenario.name] = try BundleMaker.make(configs: configs, in: folder, bundleName: "\(scenario.name).bin")
      }
      var runsFigures: [EventBenchmark.Figures] = []
      for index in 1...runs {
        var figures = EventBenchmark.Figures()
        for scenario in scenarios {
          let bundle = bundles[scenario.name]!
          var configuration = RunConfiguration(kernel: path)
          configuration.smp = scenario.smp
          configuration.initrd = bundle.path
          configuration.icount = icount
          configuration.timeout = 600
          let result = try runner.run(configuration)
          let lines = result.lines.map(\.text)
          guard result.exit == .clean, EventBenchmark.read(scenario, lines: lines, into: &figures) else {
            FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
            throw VisorError(result.exit == .clean ? .checkFailed : result.exit, "\(scenario.name), run \(index) of \(runs) failed: \(result.summary)")
          }
          note("run \(index)/\(runs): \(scenario.name) done (\(String(format: "%.1f", result.elapsed)) s)")
        }
        runsFigures.append(figures)
      }
      print(EventBenchmark.report(runsFigures, rounds: rounds, icount: icount), terminator: "")
    }
  }
}

struct XenstoreBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "xenstore",
    abstract: "xenstore read and write round trips from a domain, beside a null hypercall.",
    discussion: """
      Builds guest-xenstore and boots it (mode=bench) at -smp 1 --runs times; the guest times a \
      null hypercall, an XS_READ and an XS_WRITE through its ring. Target: a read costs at most \
      5 null hypercalls. With --icount the figures are instruction counts.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots to measure.")
  var runs = 1

  @Option(help: "Samples per measurement inside each boot.")
  var samples = 1000

  @Flag(help: "Deterministic counts (-icount shift=0,sleep=off -rtc clock=vm).")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard (100...131_072).contains(samples) else { throw ValidationError("--samples must be between 100 and 131072") }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let results = try measureGuest(
        image, guest: "guest-xenstore", domain: "xenstore-bench", runs: runs, icount: icount,
        config: { XenstoreBenchmark.config(guest: $0, samples: samples) }, sample: XenstoreBenchmark.sample(from:),
        describe: { String(format: "null hypercall %.0f, read %.0f (send %.0f), write %.0f (send %.0f)",
                           $0.hypercall, $0.read, $0.readSend, $0.write, $0.writeSend) })
      print(XenstoreBenchmark.report(results, samplesPerRun: samples, icount: icount), terminator: "")
    }
  }
}

struct LinuxBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "linux",
    abstract: "Linux boot to its shell under the hypervisor, beside QEMU's own PVH loader (the floor); exits by kind.",
    discussion: """
      Fetches the kernel and builds the initramfs (scripts/fetch-linux) if needed, then boots the \
      kernel --runs times per vcpu count: once by QEMU's PVH loader with no hypervisor (the ELF \
      inside the bzImage, console ttyS0), once as a PVH domain under the hypervisor on 2 pcpus for guests (QEMU -smp 3: pcpu 0 runs no guests under TCG). \
      Both are timed from QEMU's start to the initramfs's banner, which comes just before the \
      shell. Target: at most 1.5x the floor. With --icount both also run under QEMU's -icount, \
      and the kernel's uptime at the banner (plus, under the hypervisor, the virtual time before \
      the domain started) is compared in virtual time: target at most 1.15x the floor, and at \
      most 0.3 s before the domain starts. A failed run is reported and left out.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: "Boots per vcpu count and kind (the medians need at least 5 for wall-clock figures).")
  var runs = 5

  @Option(help: "A vcpu count to measure; repeat for several (default: 1 and 2).")
  var vcpus: [Int] = [1, 2]

  @Option(help: ArgumentHelp("Kill a boot after this many seconds.", valueName: "seconds"))
  var timeout: Double = 300

  @Flag(help: "Also in virtual time: both boots under QEMU's -icount (one instruction, one nanosecond), the kernel's uptime at the banner, and the hypervisor's time before the domain starts.")
  var icount = false

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    guard !vcpus.isEmpty, vcpus.allSatisfy({ (1...LinuxBenchmark.pcpus).contains($0) }) else {
      throw ValidationError("--vcpus values must be between 1 and \(LinuxBenchmark.pcpus)")
    }
  }

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let root = try image.build.builder().packageRoot
      let linux = try DemoCommand().fetchLinux(in: root)
      let (kernel, initramfs) = (linux.kernel, linux.initramfs)
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-bench-linux-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }

      // The floor boots the ELF inside the bzImage: QEMU's PVH loader takes an ELF with the
      // PVH note, not a bzImage.
      let vmlinux = folder.appendingPathComponent("vmlinux")
      try LinuxBenchmark.writeELF(fromBzImage: kernel, to: vmlinux.path)

      var rows: [LinuxBenchmark.Row] = []
      for count in vcpus {
        var row = LinuxBenchmark.Row(vcpus: count)
        let banner = LinuxBenchmark.bannerLine(vcpus: count)
        let bundle = try BundleMaker.make(
          configs: [("linux-\(count)", LinuxBenchmark.config(kernel: kernel, initramfs: initramfs, vcpus: count))],
          in: folder, bundleName: "bundle-\(count).bin")
        for index in 1...runs {
          var floor = RunConfiguration(kernel: vmlinux.path)
          floor.smp = count
          floor.memoryMiB = LinuxBenchmark.guestMemoryMiB
          floor.initrd = initramfs
          floor.cmdline = LinuxBenchmark.cmdline(console: "ttyS0")
          floor.timeout = timeout
          floor.icount = icount
          let floorResult = try runner.run(floor)
          if let time = floorResult.timeOfFirstMatch(banner) {
            row.floor.append(time)
            note(String(format: "%d vcpu(s) run %d/%d: floor %.2f s", count, index, runs, time))
            if icount, let uptime = LinuxBenchmark.uptime(in: floorResult.lines.map(\.text)) {
              row.virtualFloor.append(uptime)
              note(String(format: "%d vcpu(s) run %d/%d: floor %.2f s of virtual time", count, index, runs, uptime))
            }
          } else {
            row.failures.append("floor run \(index): no \"\(banner)\" line (\(floorResult.summary))")
            note("\(count) vcpu(s) run \(index)/\(runs): floor FAILED: \(floorResult.summary)")
          }

          var hosted = RunConfiguration(kernel: path)
          hosted.smp = LinuxBenchmark.qemuCPUs
          hosted.initrd = bundle.path
          hosted.timeout = timeout
          hosted.icount = icount
          let result = try runner.run(hosted)
          let lines = result.lines.map(\.text)
          guard result.exit == .clean, let time = result.timeOfFirstMatch("(d1) " + banner),
                let started = result.timeOfFirstMatch("domain 1 (linux): built"),
                let exits = LinuxBenchmark.exits(in: lines) else {
            row.failures.append("Swiftvisor run \(index): \(result.summary)")
            note("\(count) vcpu(s) run \(index)/\(runs): Swiftvisor FAILED: \(result.summary)")
            continue
          }
          row.hypervisor.append(time)
          row.domainStart.append(started)
          row.exits.append(exits)
          if icount, let before = LinuxBenchmark.builtAt(in: lines, name: "linux"),
             let uptime = LinuxBenchmark.uptime(in: lines) {
            row.virtualDomainStart.append(before)
            row.virtualHypervisor.append(before + uptime)
            note(String(format: "%d vcpu(s) run %d/%d: Swiftvisor %.2f s of virtual time (%.3f s before the domain)",
                        count, index, runs, before + uptime, before))
          }
          note(String(format: "%d vcpu(s) run %d/%d: Swiftvisor %.2f s (domain started at %.2f s), %llu exits",
                      count, index, runs, time, started, exits.total))
        }
        rows.append(row)
      }
      print(LinuxBenchmark.report(rows: rows, runs: runs), terminator: "")
    }
  }
}

/// One test guest's benchmark, as `visor bench grants` and `visor bench xenstore` run it: builds
/// `guest`, packs the one domain `config` makes of it (given the guest's path) into a bundle,
/// boots that alone on one pcpu `runs` times, and reads each run's figures with `sample`,
/// noting them with `describe`. A run that fails, or lacks a figure, ends it with the tail of
/// its console.
func measureGuest<Sample>(
  _ image: ImageOptions, guest: String, domain: String, runs: Int, icount: Bool,
  config: (String) -> String, sample: ([String]) -> Sample?, describe: (Sample) -> String
) throws(VisorError) -> [Sample] {
  let runner = try QEMURunner.locate()
  let path = try image.resolveImage().path
  let root = try image.build.builder().packageRoot
  let guestBuilder = ImageBuilder.forGuest(guest, packageRoot: root)
  note("building \(guest): swift \(shellQuoted(guestBuilder.arguments))")
  let built = try guestBuilder.build()
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-bench-\(domain)-\(getpid())")
  try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: folder) }
  let bundle = try BundleMaker.make(configs: [(domain, config(built.path))], in: folder, bundleName: "bundle.bin")
  var results: [Sample] = []
  for index in 1...runs {
    let result = try runner.run(.benchmark(image: path, bundle: bundle.path, icount: icount))
    guard result.exit == .clean, let figures = sample(result.lines.map(\.text)) else {
      FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
      throw VisorError(result.exit == .clean ? .checkFailed : result.exit, "run \(index) of \(runs) failed: \(result.summary)")
    }
    note("run \(index)/\(runs): " + describe(figures))
    results.append(figures)
  }
  return results
}

struct PVBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pv",
    abstract: "PV disk and network through a Linux driver domain: MB/s, exits and hypercalls per MiB.",
    discussion: """
      Fetches the kernel and builds both initramfs images (scripts/fetch-linux) if needed, then \
      boots a driver domain, a frontend with a \(PVBenchmark.megabytes) MiB raw disk and a vif, and a \
      second frontend with a vif (QEMU -smp \(PVBenchmark.pcpus): pcpu 0 runs no guests under TCG). \
      From the first frontend's shell: a sequential read and write of the disk through \
      xen-blkfront (busybox dd, O_DIRECT), a TCP transfer to the second frontend through netback \
      and the bridge (dd into busybox nc) and the same transfer inside the frontend (loopback), \
      each beside the exits and hypercalls of every domain it took (the hypervisor console's \
      `stats` around it) per MiB moved. Wall-clock rates under TCG are noisy.
      """)

  @OptionGroup var image: ImageOptions

  @Option(help: ArgumentHelp("Kill the run after this many seconds.", valueName: "seconds"))
  var timeout: Double = 600

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let root = try image.build.builder().packageRoot
      let linux = try DemoCommand().fetchLinux(in: root)
      let runner = try QEMURunner.locate()
      let path = try image.resolveImage().path
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-bench-pv-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }
      // A raw disk of zeros: dd reads and writes blocks, no file system is needed.
      let disk = folder.appendingPathComponent("disk.img")
      guard FileManager.default.createFile(atPath: disk.path, contents: Data(count: PVBenchmark.megabytes << 20)) else {
        throw VisorError(.checkFailed, "cannot write \(disk.path)")
      }
      let bundle = try BundleMaker.make(
        configs: PVBenchmark.configs(kernel: linux.kernel, initramfs: linux.initramfs, driverInitramfs: linux.driverInitramfs, disk: disk.path),
        in: folder, bundleName: "bundle.bin")
      var configuration = RunConfiguration(kernel: path)
      configuration.smp = PVBenchmark.pcpus
      configuration.initrd = bundle.path
      configuration.timeout = timeout
      configuration.input = PVBenchmark.input()
      note("booting the driver domain and two frontends; the transfers run from web's shell")
      let result = try runner.run(configuration)
      guard let rows = PVBenchmark.rows(from: result.lines.map(\.text)) else {
        FileHandle.standardError.write(Data((result.tail() + "\n").utf8))
        throw VisorError(result.exit == .quit ? .checkFailed : result.exit, "the run did not give every figure: \(result.summary)")
      }
      print(PVBenchmark.report(rows), terminator: "")
    }
  }
}
