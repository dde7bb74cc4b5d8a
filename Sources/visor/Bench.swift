import ArgumentParser
import Foundation
import VisorKit

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure the hypervisor under QEMU.",
    subcommands: [BootBench.self])
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
      let elf = try ELFImage(path: path)
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
