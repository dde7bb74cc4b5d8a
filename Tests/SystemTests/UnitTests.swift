import Foundation
import Testing
import Hypervisor
@testable import VisorKit

/// Pure tests: no QEMU, no image.
@Suite("QEMU status → VisorExit") struct ExitMappingTests {
  @Test func debugExitStatuses() {
    #expect(VisorExit.qemuStatus(forDebugExitValue: 0x10) == 33)
    #expect(VisorExit.qemuStatus(forDebugExitValue: 0x11) == 35)
    #expect(VisorExit.qemuStatus(forDebugExitValue: 0x12) == 37)
    #expect(VisorExit.classify(qemuStatus: 33) == .clean)
    #expect(VisorExit.classify(qemuStatus: 35) == .crash)
    #expect(VisorExit.classify(qemuStatus: 37) == .panic)
  }

  @Test func aQuitFromTheConsoleHasItsOwnStatus() {
    #expect(VisorExit.classify(qemuStatus: 41) == .quit)
    #expect(VisorExit.qemuStatus(forDebugExitValue: VisorExit.DebugExitValue.quit) == 41)
    #expect(VisorExit.quit.rawValue == 12)
  }

  @Test func statusZeroIsATripleFault() {
    #expect(VisorExit.classify(qemuStatus: 0) == .noExitCode)
    #expect(VisorExit.noExitCode.description == "QEMU stopped without a hypervisor exit code (triple fault?)")
  }

  @Test func timeout() {
    // QEMU exits 0 on SIGTERM, or dies from SIGKILL: both are the timeout.
    #expect(VisorExit.classify(qemuStatus: 0, timedOut: true) == .timeout)
    #expect(VisorExit.classify(qemuStatus: 9, signaled: true, timedOut: true) == .timeout)
    // The image's own verdict wins if it arrived just as the limit passed.
    #expect(VisorExit.classify(qemuStatus: 33, timedOut: true) == .clean)
  }

  @Test func otherStatusesAreQEMUFailures() {
    #expect(VisorExit.classify(qemuStatus: 1) == .qemuFailed)
    #expect(VisorExit.classify(qemuStatus: 255) == .qemuFailed)
    #expect(VisorExit.classify(qemuStatus: 33, signaled: true) == .qemuFailed)
  }

  @Test func visorExitStatuses() {
    #expect(VisorExit.clean.rawValue == 0)
    #expect(VisorExit.crash.rawValue == 3)
    #expect(VisorExit.panic.rawValue == 4)
    #expect(VisorExit.timeout.rawValue == 5)
    #expect(VisorExit.toolMissing.rawValue == 6)
    #expect(VisorExit.buildFailed.rawValue == 7)
    #expect(VisorExit.noExitCode.rawValue == 8)
    #expect(VisorExit.usage.rawValue == 64)
    #expect(Set(VisorExit.allCases.map(\.rawValue)).count == VisorExit.allCases.count)
  }

  @Test func missingQEMUSaysHowToInstallIt() throws {
    let error = #expect(throws: VisorError.self) { try QEMURunner.locate(searchPath: "/nonexistent") }
    #expect(error?.exit == .toolMissing)
    #expect(error?.message.contains("install it: apt-get install qemu-system-x86 (or run scripts/setup)") == true)
  }
}

@Suite("QEMU arguments") struct QEMUArgumentTests {
  let isaDebugExit = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]

  func contains(_ args: [String], _ sequence: [String]) -> Bool {
    guard args.count >= sequence.count else { return false }
    return (0...(args.count - sequence.count)).contains { Array(args[$0..<$0 + sequence.count]) == sequence }
  }

  @Test func defaultKernelBoot() {
    let args = QEMURunner.arguments(for: RunConfiguration(kernel: "/img"))
    #expect(args == [
      "-accel", "tcg", "-cpu", "qemu64,+svm,+npt", "-machine", "q35", "-smp", "3", "-m", "512M",
      "-kernel", "/img",
      "-nodefaults", "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
    ] + isaDebugExit)
  }

  @Test func everyOption() {
    var config = RunConfiguration(kernel: "/img")
    config.smp = 4
    config.memoryMiB = 1024
    config.cmdline = "smp=1 crash=ud2"
    config.initrd = "/bundle"
    config.icount = true
    config.gdb = true
    config.machine = .pc
    config.extraQEMUArguments = ["-d", "int"]
    let args = QEMURunner.arguments(for: config)
    #expect(contains(args, ["-smp", "4"]))
    #expect(contains(args, ["-m", "1024M"]))
    #expect(contains(args, ["-machine", "pc"]))
    // -icount adds cpu0guests=yes (one QEMU thread: pcpu 0 may run guests, docs/known-issues.md).
    #expect(contains(args, ["-kernel", "/img", "-append", "smp=1 crash=ud2 cpu0guests=yes", "-initrd", "/bundle"]))
    #expect(contains(args, ["-icount", "shift=0,sleep=off", "-rtc", "clock=vm"]))
    #expect(contains(args, ["-s", "-S"]))
    #expect(contains(args, isaDebugExit))
    #expect(contains(args, ["-no-reboot"]))
    #expect(Array(args.suffix(2)) == ["-d", "int"])
  }

  @Test func interactiveConsolePassesControlC() {
    var configuration = RunConfiguration(kernel: "/img")
    configuration.interactiveConsole = true
    let args = QEMURunner.arguments(for: configuration)
    #expect(contains(args, ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]))
    #expect(!contains(args, ["-serial", "stdio"]))
  }

  @Test func noAppendForAnEmptyCommandLine() {
    #expect(!QEMURunner.arguments(for: RunConfiguration(kernel: "/img")).contains("-append"))
  }

  /// One QEMU thread under -icount: pcpu 0 may run guests there, unless told otherwise.
  @Test func icountLetsPCPU0RunGuests() {
    var configuration = RunConfiguration(kernel: "/img")
    configuration.icount = true
    #expect(contains(QEMURunner.arguments(for: configuration), ["-append", "cpu0guests=yes"]))
    configuration.cmdline = "vmrunfloor=10"
    #expect(contains(QEMURunner.arguments(for: configuration), ["-append", "vmrunfloor=10 cpu0guests=yes"]))
    configuration.cmdline = "cpu0guests=no"
    #expect(contains(QEMURunner.arguments(for: configuration), ["-append", "cpu0guests=no"]))
    configuration.icount = false
    configuration.cmdline = ""
    #expect(!QEMURunner.arguments(for: configuration).contains("-append"))
  }

  @Test func cdromBoot() {
    let args = QEMURunner.arguments(for: RunConfiguration(boot: .cdrom(path: "/x.iso")))
    #expect(contains(args, ["-cdrom", "/x.iso", "-boot", "d"]))
    #expect(!args.contains("-kernel"))
    #expect(contains(args, isaDebugExit))
  }

  @Test func validation() {
    var config = RunConfiguration(kernel: "/img")
    #expect(throws: Never.self) { try config.validate() }
    config.smp = 0
    #expect(throws: VisorError.self) { try config.validate() }
    config.smp = 2
    config.timeout = 0
    #expect(throws: VisorError.self) { try config.validate() }
    config.timeout = nil
    #expect(throws: Never.self) { try config.validate() }
    var iso = RunConfiguration(boot: .cdrom(path: "/x.iso"))
    iso.cmdline = "smp=1"
    #expect(throws: VisorError.self) { try iso.validate() }
  }

  @Test func gdbInstructions() {
    #expect(QEMURunner.gdbInstructions(image: "/img").contains("gdb /img -ex 'target remote :1234'"))
  }
}

@Suite("Image build arguments") struct ImageBuilderTests {
  let root = URL(fileURLWithPath: "/pkg")

  @Test func release() {
    let builder = ImageBuilder(packageRoot: root)
    #expect(builder.arguments == [
      "build", "--build-system", "native", "--package-path", "/pkg", "--scratch-path", "/pkg/.build",
      "--triple", "x86_64-unknown-none-elf",
      "--toolset", "/pkg/Toolsets/x86_64-hv.json", "--toolset", "/pkg/Toolsets/osize.json",
      "-c", "release", "--product", "swiftvisor",
    ])
    #expect(builder.imagePath.path == "/pkg/.build/x86_64-unknown-none-elf/release/swiftvisor")
  }

  @Test func debugUsesOnlyTheBaseToolset() {
    let builder = ImageBuilder(packageRoot: root, scratchPath: URL(fileURLWithPath: "/tmp/s"), configuration: .debug)
    #expect(builder.arguments.filter { $0 == "--toolset" }.count == 1)
    #expect(!builder.arguments.contains { $0.hasSuffix("osize.json") })
    #expect(builder.arguments.suffix(4) == ["-c", "debug", "--product", "swiftvisor"])
    #expect(builder.imagePath.path == "/tmp/s/x86_64-unknown-none-elf/debug/swiftvisor")
  }

  @Test func notAPackageRoot() {
    let error = #expect(throws: VisorError.self) {
      try ImageBuilder(packageRoot: URL(fileURLWithPath: "/nonexistent")).build()
    }
    #expect(error?.exit == .usage)
  }
}

@Suite("GRUB configuration") struct GRUBConfigTests {
  @Test func bootsAtOnceOnTheSerialPort() {
    let cfg = ISOBuilder.grubConfig(cmdline: "smp=1  crash=ud2")
    #expect(cfg.contains("set timeout=0\n"))
    #expect(cfg.contains("serial --unit=0 --speed=115200\n"))
    #expect(cfg.contains("terminal_output serial\n"))
    #expect(cfg.contains("  multiboot2 /boot/swiftvisor smp=1 crash=ud2\n"))
    #expect(cfg.contains("  boot\n"))
  }

  @Test func emptyCommandLine() {
    #expect(ISOBuilder.grubConfig(cmdline: "").contains("  multiboot2 /boot/swiftvisor\n"))
  }

  @Test func quoting() {
    #expect(ISOBuilder.grubQuote("console=com1") == "console=com1")
    #expect(ISOBuilder.grubQuote("a;b") == "'a;b'")
    #expect(ISOBuilder.grubQuote("$x") == "'$x'")
    #expect(ISOBuilder.grubQuote("it's") == "'it'\\''s'")
  }
}

@Suite("ELF image files") struct ImageFileTests {
  /// A minimal ELF64 with two PT_LOAD headers and a PT_NOTE holding Xen's PVH entry note.
  static func sampleELF() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 0x200)
    func put(_ value: UInt64, at offset: Int, size: Int) {
      for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    bytes[0...3] = [0x7f, 0x45, 0x4c, 0x46]
    bytes[4] = 2; bytes[5] = 1; bytes[6] = 1
    put(2, at: 16, size: 2); put(62, at: 18, size: 2); put(1, at: 20, size: 4)
    put(0x100040, at: 24, size: 8)     // e_entry
    put(64, at: 32, size: 8)           // e_phoff
    put(64, at: 52, size: 2); put(56, at: 54, size: 2); put(3, at: 56, size: 2)
    func phdr(_ index: Int, type: UInt32, offset: UInt64, filesz: UInt64, memsz: UInt64) {
      let base = 64 + index * 56
      put(UInt64(type), at: base, size: 4); put(5, at: base + 4, size: 4)
      put(offset, at: base + 8, size: 8); put(0x100000 + offset, at: base + 16, size: 8)
      put(0x100000 + offset, at: base + 24, size: 8)
      put(filesz, at: base + 32, size: 8); put(memsz, at: base + 40, size: 8)
    }
    phdr(0, type: 1, offset: 0x100, filesz: 0x80, memsz: 0x80)
    phdr(1, type: 1, offset: 0x180, filesz: 0x20, memsz: 0x3000)
    phdr(2, type: 4, offset: 0x1a0, filesz: 20, memsz: 20)
    // Note: namesz 4, descsz 4, type 18, "Xen\0", entry 0x100123.
    put(4, at: 0x1a0, size: 4); put(4, at: 0x1a4, size: 4); put(18, at: 0x1a8, size: 4)
    bytes[0x1ac...0x1af] = [0x58, 0x65, 0x6e, 0]
    put(0x100123, at: 0x1b0, size: 4)
    return bytes
  }

  @Test func sizesAndPVHNote() throws {
    let image = try ImageFile(bytes: Self.sampleELF())
    #expect(image.elf.is64Bit)
    #expect(image.elf.machine == 62)
    #expect(image.elf.entry == 0x100040)
    #expect(image.fileSize == 0x200)
    #expect(image.elf.segments.count == 2)
    #expect(image.loadedMemorySize == 0x3080)
    #expect(image.loadedFileSize == 0xa0)
    #expect(image.elf.pvhEntry == 0x100123)
  }

  @Test func rejectsGarbage() {
    #expect(throws: VisorError.self) { try ImageFile(bytes: Array("#!/bin/sh\necho hi\n".utf8) + [UInt8](repeating: 0, count: 64)) }
    var truncated = Self.sampleELF()
    truncated.removeLast(0x100)
    #expect(throws: VisorError.self) { try ImageFile(bytes: truncated) }
  }
}

@Suite("Crash report parsing") struct CrashReportTests {
  @Test func cutsOutTheReport() throws {
    let lines = [
      "[0] boot: loader pvh",
      "[1] *** SWIFTVISOR CRASH on pcpu 1: #PF page fault (vector 14)",
      "    error=0x2  RIP=0xffff  RSP=0x1000  RFLAGS=0x2",
      "    backtrace:",
      "      #0 0x100000",
      "*** end of crash report",
    ]
    let report = try #require(CrashReport.first(in: lines))
    #expect(report.pcpu == 1)
    #expect(report.complete)
    #expect(report.body.count == 3)
    #expect(report.indentation == "    ")
    #expect(report.foreignLines.isEmpty)
  }

  @Test func backtraceFrames() throws {
    let lines = [
      "*** SWIFTVISOR CRASH on pcpu 0: Swift runtime trap (vector 6)",
      "    RIP=0x1",
      "    backtrace:",
      "      #0 0x0000000000116f13",
      "      #1 0x114b6f",
      "*** end of crash report",
    ]
    let report = try #require(CrashReport.first(in: lines))
    #expect(report.backtrace.map(\.index) == [0, 1])
    #expect(report.backtrace.map(\.address) == [0x116f13, 0x114b6f])
  }

  @Test func findsInterleavedLines() throws {
    let lines = [
      "*** SWIFTVISOR CRASH on pcpu 0: #UD invalid opcode (vector 6)",
      "    RIP=0x1",
      "[1] timer: pcpu 1 ok",
      "    backtrace:",
    ]
    let report = try #require(CrashReport.first(in: lines))
    #expect(!report.complete)
    #expect(report.foreignLines == ["[1] timer: pcpu 1 ok"])
  }
}

@Suite("Boot benchmark report") struct BootBenchmarkTests {
  @Test func median() {
    #expect(BootBenchmark.median([]) == nil)
    #expect(BootBenchmark.median([3, 1, 2]) == 2)
    #expect(BootBenchmark.median([4, 1, 3, 2]) == 2.5)
  }

  @Test func reportShowsTargets() throws {
    let elf = try ImageFile(bytes: ImageFileTests.sampleELF())
    let rows = [
      BootBenchmark.Row(smp: 1, online: [0.1, 0.2, 0.3], exit: [0.2, 0.3, 0.4]),
      BootBenchmark.Row(smp: 4, online: [0.6, 0.7, 0.8], exit: [0.9, 1.0, 1.1]),
    ]
    let report = BootBenchmark.report(rows: rows, image: elf, runs: 3, icount: false)
    #expect(report.contains("0.200"))
    #expect(report.contains("target < 0.5 s to all pcpus online: MISSED"))
    #expect(report.contains("image file:   512 bytes (0.5 KiB)   target < 512 KiB: ok"))
    #expect(report.contains("image loaded: 12416 bytes (12.1 KiB) = sum of PT_LOAD memsz   target < 512 KiB: ok"))
    #expect(report.contains("of which 160 bytes"))
  }
}

@Suite("Benchmark arithmetic and parsing") struct BenchmarkParsingTests {
  /// `visor bench pv`: each transfer's time from web's uptime, and the exits and hypercalls of
  /// every domain between the `stats` snapshots around it, per MiB; a missing line is no figure.
  @Test func pvBenchmarkFigures() throws {
    func stats(_ exits: [Int], _ hypercalls: [Int]) -> [String] {
      ["drv", "web", "web2"].enumerated().map { index, name in
        "(sv) console: stats: domain \(index + 1) (\(name)): exits: \(exits[index]) in 100 ms (10 per s): interrupt 1, hypercall \(hypercalls[index]), other 2"
      }
    }
    var lines = stats([100, 100, 100], [10, 10, 10])
    for index in 0..<4 {
      lines.append("(d2) pv-time \(index) 10.00 \(10 + (index + 1) * 2).00")
      lines += stats([100 + 64 * (index + 1), 100 + 64 * (index + 1), 100], [10 + 64 * (index + 1), 10, 10])
    }
    let rows = try #require(PVBenchmark.rows(from: lines))
    #expect(rows.map(\.megabytesPerSecond) == [32, 16, 64.0 / 6, 8])
    #expect(rows.map(\.exitsPerMiB) == [2, 2, 2, 2])
    #expect(rows.map(\.hypercallsPerMiB) == [1, 1, 1, 1])
    #expect(PVBenchmark.report(rows).contains("| disk read, xen-blkfront → xen-blkback (dd, O_DIRECT, 1 MiB blocks) | 32.0 | 2 | 1 |"))
    #expect(PVBenchmark.rows(from: Array(lines.dropLast(3))) == nil, "the last snapshot missing")
    #expect(PVBenchmark.rows(from: lines.filter { !$0.contains("pv-time 2") }) == nil, "a transfer's time missing")
    // The script moves the input one stop at a time and ends with q on the hypervisor.
    let script = PVBenchmark.input()
    #expect(script.first?.after == "(d2) swiftvisor:linux /" && script.last?.bytes == Array("q".utf8))
    #expect(script.filter { $0.bytes == Array("stats\r".utf8) }.count == 5)
  }

  @Test func idealSharesAreWaterFilled() {
    let shares = SchedulerBenchmark.idealShares(SchedulerBenchmark.domains, pcpus: 2)
    #expect(shares == [50, 100, 50])
    // A single vcpu cannot use more than one pcpu: the heavy domain is cut to 100 and the
    // others share the rest by weight.
    let heavy = SchedulerBenchmark.idealShares(
      [.init(name: "a", weight: 256), .init(name: "b", weight: 4096), .init(name: "c", weight: 256)], pcpus: 2)
    #expect(heavy == [50, 100, 50])
    let capped = SchedulerBenchmark.idealShares([.init(name: "a", weight: 256, cap: 25), .init(name: "b", weight: 256)], pcpus: 1)
    #expect(capped == [25, 75])
    // Two pinned to pcpu 1 share it whatever their weights elsewhere; the free one gets pcpu 2.
    let pinned = SchedulerBenchmark.idealShares(
      [.init(name: "a", weight: 256, cpus: [1]), .init(name: "b", weight: 768, cpus: [1]), .init(name: "c", weight: 256)], pcpus: 2)
    #expect(pinned == [25, 75, 100])
    // One pinned to pcpu 1 with two free: max-min fair, 200/3 each.
    let one = SchedulerBenchmark.idealShares(
      [.init(name: "a", weight: 256, cpus: [1]), .init(name: "b", weight: 256), .init(name: "c", weight: 256)], pcpus: 2)
    #expect(one.allSatisfy { abs($0 - 200.0 / 3) < 1e-6 })
  }

  @Test func everyArrangementFillsBothPCPUs() {
    let expected: [String: [Double]] = [
      "weights": [50, 100, 50], "equal8": [Double](repeating: 25, count: 8), "mixed3": [100.0 / 3, 200.0 / 3, 100],
      "mixed4": [100.0 / 7, 200.0 / 7, 400.0 / 7, 100], "mixed5": [20, 20, 40, 40, 80],
      "pinned": [50, 100, 50], "capped": [30, 70, 100],
    ]
    for arrangement in SchedulerBenchmark.arrangements {
      let ideal = SchedulerBenchmark.idealShares(arrangement.domains, guestPCPUs: SchedulerBenchmark.guestPCPUs)
      let want = try! #require(expected[arrangement.name], "no expectation for \(arrangement.name)")
      #expect(zip(ideal, want).allSatisfy { abs($0 - $1) < 1e-4 }, "\(arrangement.name): \(ideal)")
    }
  }

  @Test func grantSampleReadsEveryMedianAndTheReportJudgesEachAgainstTwoNullHypercalls() throws {
    let lines = [
      "(d1) guest-grant: samples 5000, domain 1",
      "(d1) guest-grant: null hypercall median 382 cycles",
      "(d1) guest-grant: map+unmap median 5442 cycles",
      "(d1) guest-grant: map median 2845 cycles",
      "(d1) guest-grant: unmap median 700 cycles",
      "(d1) guest-grant: copy 4096 median 2495 cycles",
    ]
    let sample = try #require(GrantBenchmark.sample(from: lines))
    #expect(sample.null == 382 && sample.map == 2845 && sample.unmap == 700 && sample.roundTrip == 5442 && sample.copy == 2495)
    #expect(GrantBenchmark.sample(from: Array(lines.dropLast())) == nil)
    let report = GrantBenchmark.report([sample], icount: true)
    #expect(report.contains("| GNTTABOP_map_grant_ref (one, own grant) | 2845 | 7.45x | <= 2x: MISSED by 3.7x |"))
    #expect(report.contains("| GNTTABOP_unmap_grant_ref (one, with its TLB flush) | 700 | 1.83x | <= 2x: met |"))
  }

  @Test func schedulerSampleReadsRoundsAndRunTimeByName() throws {
    let lines = [
      "(sv) domain 1 (w256a): built: 16 MiB, 1 vcpu(s), entry 0x100038, 4099 frames, in 66171 us",
      "(sv) domain 2 (w512): built: 16 MiB, 1 vcpu(s), entry 0x100038, 4099 frames, in 54202 us",
      "(sv) domain 3 (w256b): built: 16 MiB, 1 vcpu(s), entry 0x100038, 4099 frames, in 66375 us",
      "(d2) guest-spin: window 2000-8000 ms: rounds 50904448, ran 6000000 us of 6000000 us (checksum 0x1)",
      "(d1) guest-spin: window 2000-8000 ms: rounds 26867968, ran 3000000 us of 6000000 us (checksum 0x2)",
      "(d3) guest-spin: window 2000-8000 ms: rounds 26726336, ran 3003000 us of 6006000 us (checksum 0x3)",
      "(sv:1) domain 2 (w512): destroyed, 4104 frames returned, 0 hypercall continuations, ran 3730 ms",
    ]
    let sample = try #require(SchedulerBenchmark.sample(from: lines))
    #expect(sample.rounds["w512"] == 50904448)
    #expect(sample.rounds["w256a"] == 26867968)
    #expect(sample.ranMicroseconds["w512"] == 6000000)
    #expect(sample.spanMicroseconds["w256b"] == 6006000)
    #expect(sample.timeShares(SchedulerBenchmark.domains) == [50, 100, 50])
    #expect(SchedulerBenchmark.sample(from: Array(lines.prefix(5))) == nil)     // a hog is missing
    let report = SchedulerBenchmark.report(SchedulerBenchmark.arrangements[0], [sample], window: 6000)
    #expect(report.contains("| w512 | 512 | - | all | 100.0 | 97.4 / 100.0 | 97.4 | 100.0 | yes | no |"))
  }

  @Test func eventFiguresNeedEveryLine() {
    let scenario = EventBenchmark.scenarios(pingpong: "p", ipi: "i", timer: "t", bench: "b", rounds: 10)[0]
    var figures = EventBenchmark.Figures()
    let lines = [
      "(d1) guest-pingpong: rounds 10 mean-rtt-ns 441000 mean-rtt-cycles 1086106",
      "(d1) guest-pingpong: send mean-cycles 347882 null-hypercall mean-cycles 158564",
    ]
    #expect(EventBenchmark.read(scenario, lines: lines, into: &figures))
    #expect(figures.values["pingpong-2pcpus.send-cycles"] == 347882)
    #expect(figures.values["pingpong-2pcpus.null-cycles"] == 158564)
    #expect(!EventBenchmark.read(scenario, lines: Array(lines.prefix(1)), into: &figures))
  }

  @Test func linuxExitsLineParses() throws {
    let lines = [
      "(sv) domain 2 (other): exits: 5 in 10 ms (500 per s): cpuid 5",
      "(sv:1) domain 1 (linux): exits: 2437 in 3072 ms (793 per s): interrupt 900, window 60, cpuid 654, msr 188, io 128, hlt 1, hypercall 506",
    ]
    let exits = try #require(LinuxBenchmark.exits(in: lines))
    #expect(exits.total == 2437)
    #expect(exits.milliseconds == 3072)
    #expect(exits.byClass.map(\.name) == ["interrupt", "window", "cpuid", "msr", "io", "hlt", "hypercall"])
    #expect(exits.byClass.map(\.count).reduce(0, +) == 2437)
    #expect(abs(exits.perSecond - 793.3) < 0.1)
    #expect(LinuxBenchmark.exits(in: lines, domain: 2)?.total == 5)
    #expect(LinuxBenchmark.exits(in: ["(sv) domain 1 (linux): exits: many in 3 ms"]) == nil)
    #expect(LinuxBenchmark.exits(in: ["(sv) domain 1 (linux): exits: 0 in 3 ms (0 per s)"])?.byClass.isEmpty == true)
  }

  @Test func budgetTableSaysMetOrMissedPerExit() {
    let table = HypercallBenchmark.budgetTable([("null hypercall", 500, 500), ("CPUID", 301, 300)])
    #expect(table.contains("| null hypercall | 500 | <= 500 | met |"))
    #expect(table.contains("| CPUID | 301 | <= 300 | MISSED |"))
  }

  @Test func linuxVirtualTimeFiguresParse() {
    let lines = [
      "(sv) domain 1 (linux): built: 256 MiB, 1 vcpu(s), entry 0x1000000, 65539 frames, in 52000 us, at 159123 us",
      "(d1) swiftvisor-initramfs: cpus: 1",
      "(d1) swiftvisor-initramfs: uptime 1.49",
    ]
    #expect(LinuxBenchmark.builtAt(in: lines, name: "linux") == 0.159123)
    #expect(LinuxBenchmark.builtAt(in: lines, name: "other") == nil)
    #expect(LinuxBenchmark.uptime(in: lines) == 1.49)
    #expect(LinuxBenchmark.uptime(in: ["swiftvisor-initramfs: cpus: 1"]) == nil)
    var row = LinuxBenchmark.Row(vcpus: 1)
    row.floor = [6.0]
    row.hypervisor = [6.5]
    row.virtualFloor = [1.56]
    row.virtualHypervisor = [1.65]
    row.virtualDomainStart = [0.16]
    let report = LinuxBenchmark.report(rows: [row], runs: 1)
    #expect(report.contains("In virtual time"))
    #expect(report.contains("1.06   ok"))
  }

  @Test func linuxReportComparesWithTheFloor() {
    var row = LinuxBenchmark.Row(vcpus: 1)
    row.floor = [3.0, 3.2, 3.1]
    row.hypervisor = [4.0, 4.8, 4.2]
    row.domainStart = [1.0, 1.1, 1.2]
    row.exits = [LinuxBenchmark.Exits(total: 100, milliseconds: 1000, byClass: [("io", 60), ("cpuid", 40)])]
    var failed = LinuxBenchmark.Row(vcpus: 2)
    failed.failures = ["Swiftvisor run 1: triple fault"]
    let report = LinuxBenchmark.report(rows: [row, failed], runs: 3)
    #expect(report.contains("3.10"))
    #expect(report.contains("4.20"))
    #expect(report.contains("1.35   ok"))        // 4.2 / 3.1
    #expect(report.contains("no data"))
    #expect(report.contains("60.0 %"))
    #expect(report.contains("1 run(s) failed and are not in the medians"))
  }
}

@Suite("Machine memory from the boot bundle") struct MachineMemoryTests {
  func bundle(_ domains: [(memory: Int, maxmem: Int?, vcpus: Int)], kernelBytes: Int = 4096) -> [UInt8] {
    BootBundle.build(domains: domains.enumerated().map { index, domain in
      var config = DomainConfig(name: Array("d\(index)".utf8), memoryMiB: domain.memory, vcpus: domain.vcpus, kernelPath: Array("k".utf8))
      config.maxMemoryMiB = domain.maxmem
      return (config: config, kernel: [UInt8](repeating: 0x90, count: kernelBytes), ramdisk: nil)
    })
  }

  @Test func theDemosDomainsAndTheirShares() throws {
    // The demo's three domains: 256 MiB with 2 vcpus, 256 with 1, 16 with 1.
    let need = try MachineMemory.need(bundle: bundle([(256, nil, 2), (256, nil, 1), (16, nil, 1)]))
    #expect(need.domainCount == 3)
    #expect(need.domainsMiB == 528)
    // Per domain: 1 MiB per vcpu, 4 KiB per MiB (rounded up), 1 MiB of special pages.
    #expect(need.perDomainMiB == (2 + 1 + 1) + (1 + 1 + 1) + (1 + 1 + 1))
    #expect(need.bundleMiB == 1)
    #expect(need.minimumMiB == MachineMemory.hypervisorMiB + 1 + 528 + 10)
    #expect(need.recommendedMiB % MachineMemory.granuleMiB == 0)
    #expect(need.recommendedMiB >= need.minimumMiB + need.minimumMiB / 8)
  }

  @Test func maxmemCountsAndDomainsWithProblemsDoNot() throws {
    let grows = try MachineMemory.need(bundle: bundle([(32, 128, 1)]))
    #expect(grows.domainsMiB == 128)
    // A domain the hypervisor would refuse (0 vcpus) is not counted.
    let refused = try MachineMemory.need(bundle: bundle([(64, nil, 1), (64, nil, 0)]))
    #expect(refused.domainCount == 1 && refused.domainsMiB == 64)
  }

  @Test func sizingARunAndRefusingTooLittle() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-memory-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("bundle.bin").path
    try Data(bundle([(256, nil, 2), (256, nil, 1)], kernelBytes: 3 << 20)).write(to: URL(fileURLWithPath: path))
    let need = try #require(try MachineMemory.need(bundleAt: path))

    var sized = RunConfiguration(kernel: "/img")
    sized.initrd = path
    try sized.sizeMemory()
    #expect(sized.memoryMiB == need.recommendedMiB)
    #expect(QEMURunner.arguments(for: sized).contains("\(need.recommendedMiB)M"))

    var tooSmall = sized
    tooSmall.memoryMiB = 512
    let error = #expect(throws: VisorError.self) { try tooSmall.sizeMemory() }
    #expect(error?.exit == .usage)
    #expect(error?.message.contains("--memory 512 MiB is too small for the boot bundle: it needs at least \(need.minimumMiB) MiB") == true)

    var enough = sized
    enough.memoryMiB = need.minimumMiB
    try enough.sizeMemory()
    #expect(enough.memoryMiB == need.minimumMiB)

    // No bundle, or a module that is not one: the default.
    var alone = RunConfiguration(kernel: "/img")
    try alone.sizeMemory()
    #expect(alone.memoryMiB == MachineMemory.withoutDomainsMiB)
    let other = folder.appendingPathComponent("other.bin").path
    try Data("not a bundle".utf8).write(to: URL(fileURLWithPath: other))
    var module = RunConfiguration(kernel: "/img")
    module.initrd = other
    try module.sizeMemory()
    #expect(module.memoryMiB == MachineMemory.withoutDomainsMiB)
  }
}

/// Pure tests of what is read from QEMU's monitor at a time limit (`QEMUMonitor`).
@Suite("QEMU monitor transcripts") struct QEMUMonitorTranscriptTests {
  /// As QEMU 7.2's monitor sends it over a socket: a greeting and prompt, the line editor's
  /// echo (the whole line again after each character, with escapes), the answer, a prompt.
  static let transcript = "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) "
    + "i\u{1B}[K\u{1B}[Din\u{1B}[K\u{1B}[D\u{1B}[Dinfo registers -a\r\n"
    + "\r\nCPU#0\r\nRAX=0000000000000000 RBX=000000000b600000\r\n"
    + "RIP=000000000017d746 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n"
    + "DR0=0000000000000000 DR1=0000000000000000\r\nFCW=037f FSW=0000\r\nXMM00=0 0\r\n"
    + "\r\nCPU#1\r\nRIP=ffffffff81039a99 RFL=00000287 [--S--PC] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
    + "EFER=0000000000001d01\r\n(qemu) "

  @Test("The answer is what follows the last echo, without escapes, carriage returns or x87/SSE lines")
  func answerIsCleaned() {
    let answer = QEMUMonitor.answer(in: Self.transcript, to: "info registers -a")
    #expect(answer == """
      CPU#0
      RAX=0000000000000000 RBX=000000000b600000
      RIP=000000000017d746 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0

      CPU#1
      RIP=ffffffff81039a99 RFL=00000287 [--S--PC] CPL=0 II=0 A20=1 SMM=0 HLT=1
      EFER=0000000000001d01
      """)
    #expect(QEMUMonitor.instructionPointers(in: answer) == [0x17d746, 0xffff_ffff_8103_9a99])
  }

  @Test("Nothing listening is nil, at once")
  func noMonitor() {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("visor-monitor-none-\(getpid()).sock").path
    #expect(QEMUMonitor.ask("info registers -a", socket: path) == nil)
  }
}
