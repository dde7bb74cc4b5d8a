import Foundation

/// `visor bench hypercall`: what one exit costs. The hypervisor measures the floor itself (a
/// bare VMRUN/#VMEXIT round trip with no exit handling, `vmrunfloor=` on its command line);
/// guest-bench measures a null hypercall (`xen_version(0)`) and a CPUID exit from inside a
/// domain, and the builder reports how long a 64 MiB domain took to build. All in TSC cycles,
/// which QEMU's TCG runs at the host's rate, or, with --icount, in executed instructions.
public enum HypercallBenchmark {
  public struct Sample: Sendable {
    public var floor: Double
    public var hypercall: Double
    public var cpuid: Double
    public var buildMicroseconds: Double
  }

  /// The target: a null hypercall at most this many times the floor.
  public static let targetRatio = 1.2
  /// Budgets in guest-visible instructions per round trip under `-icount`, VMRUN/#VMEXIT
  /// included (docs/exit-budget.md).
  public static let hypercallBudget = 500.0
  public static let cpuidBudget = 300.0
  /// What the exit path costs today, with a margin: a system test fails above it, so a change
  /// that makes every exit dearer (as a 128-bit division in `Clock.now()` once did, unnoticed)
  /// fails CI. Lowered as the exit path gets cheaper, down to the budgets.
  public static let hypercallGuard = 1_300.0
  public static let cpuidGuard = 1_000.0

  /// The configuration of the benchmark domain.
  public static func config(guest: String, samples: Int) -> String {
    """
    name = "bench"
    type = "pvh"
    memory = 64
    vcpus = 1
    kernel = "\(guest)"
    cmdline = "samples=\(samples)"
    """
  }

  /// One boot of the benchmark: the image with `bundle` (the domain of `config`) on one pcpu,
  /// the floor measured `samples` times first.
  public static func runConfiguration(image: String, bundle: String, samples: Int, icount: Bool) -> RunConfiguration {
    var configuration = RunConfiguration(kernel: image)
    configuration.smp = 1
    configuration.cmdline = "vmrunfloor=\(samples)"
    configuration.initrd = bundle
    configuration.icount = icount
    configuration.timeout = 600
    return configuration
  }

  /// Reads one run's figures from the console, or nil if a line is missing.
  public static func sample(from lines: [String]) -> Sample? {
    func number(after marker: String) -> Double? { ConsoleFigures.number(after: marker, in: lines) }
    guard let floor = number(after: "bare VMRUN/#VMEXIT round trip median "),
          let hypercall = number(after: "bench: hypercall median "),
          let cpuid = number(after: "bench: cpuid median ") else { return nil }
    // The build line reads "... frames, in 1234 us": take the number after "in ".
    guard let buildLine = lines.first(where: { $0.contains("(bench): built:") }),
          let range = buildLine.range(of: ", in "),
          let micros = Double(buildLine[range.upperBound...].prefix { $0.isNumber }) else { return nil }
    return Sample(floor: floor, hypercall: hypercall, cpuid: cpuid, buildMicroseconds: micros)
  }

  static func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
  }

  public static func report(_ samples: [Sample], icount: Bool) -> String {
    let unit = icount ? "instructions (-icount)" : "TSC cycles"
    let floor = median(samples.map(\.floor))
    let hypercall = median(samples.map(\.hypercall))
    let cpuid = median(samples.map(\.cpuid))
    let build = median(samples.map(\.buildMicroseconds))
    func ratio(_ value: Double) -> String { floor > 0 ? String(format: "%.2fx", value / floor) : "-" }
    var text = "Exit costs, median of \(samples.count) run(s) (each a median of its samples), in \(unit)\n\n"
    text += "| measurement | median | vs floor | target |\n|---|---|---|---|\n"
    text += String(format: "| bare VMRUN/#VMEXIT (floor) | %.0f | 1.00x | |\n", floor)
    let verdict = floor > 0 && hypercall / floor <= targetRatio ? "met" : "MISSED"
    text += String(format: "| null hypercall (xen_version 0) | %.0f | %@ | <= %.1fx: %@ |\n", hypercall, ratio(hypercall), targetRatio, verdict)
    text += String(format: "| CPUID exit (leaf 0) | %.0f | %@ | |\n", cpuid, ratio(cpuid))
    if icount {
      func budget(_ value: Double, _ limit: Double) -> String { value <= limit ? "met" : "MISSED" }
      text += "\nBudgets, instructions per round trip (docs/exit-budget.md)\n\n| exit | instructions | budget | |\n|---|---|---|---|\n"
      text += String(format: "| null hypercall | %.0f | <= %.0f | %@ |\n", hypercall, hypercallBudget, budget(hypercall, hypercallBudget))
      text += String(format: "| CPUID | %.0f | <= %.0f | %@ |\n", cpuid, cpuidBudget, budget(cpuid, cpuidBudget))
    }
    text += String(format: "\nBuilding a 64 MiB PVH domain: %.1f ms (median)\n", build / 1000)
    if icount {
      text += "\nUnder -icount the floor counts only the instructions around VMRUN, so the ratio says how much\n"
      text += "work the exit path does, not how long it takes; the wall-clock ratio (without --icount) is the target's.\n"
    }
    return text
  }
}
