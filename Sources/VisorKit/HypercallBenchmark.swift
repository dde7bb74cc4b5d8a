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
    /// EVTCHNOP_send to a port bound to the sending vcpu, raising an upcall each time.
    public var send: Double
    /// SCHEDOP_yield with nothing else runnable on the pcpu.
    public var loneYield: Double
    public var buildMicroseconds: Double
    /// One switch between two domains' vcpus on one pcpu (half of a yield round trip), from
    /// the second boot (`switchConfigs`); nil when it was not run.
    public var vcpuSwitch: Double?
  }

  /// The target: a null hypercall at most this many times the floor.
  public static let targetRatio = 1.2
  /// Budgets in guest-visible instructions per round trip under `-icount`, VMRUN/#VMEXIT
  /// included (docs/exit-budget.md).
  public static let hypercallBudget = 500.0
  public static let cpuidBudget = 300.0
  public static let sendBudget = 1_000.0
  public static let loneYieldBudget = 3_000.0
  public static let switchBudget = 5_000.0
  /// An EVTCHNOP_send to another domain's vcpu blocked on another pcpu (`visor bench events`,
  /// guest-pingpong): the send, and the wake of that vcpu (1,895 when it was set).
  public static let notificationBudget = 2_500.0
  // A system test (ExitBudgetTests) asserts every budget, so a change that makes every exit
  // dearer (as a 128-bit division in `Clock.now()` once did, unnoticed) fails CI.

  /// The exits' instruction counts under `-icount` beside their budgets, a table for a report
  /// (`visor bench hypercall` and `visor bench events`): each row is (exit, figure, budget).
  public static func budgetTable(_ rows: [(String, Double, Double)]) -> String {
    var text = "\nBudgets, instructions per round trip (docs/exit-budget.md)\n\n| exit | instructions | budget | |\n|---|---|---|---|\n"
    for (name, value, limit) in rows {
      text += String(format: "| %@ | %.0f | <= %.0f | %@ |\n", name, value, limit, value <= limit ? "met" : "MISSED")
    }
    return text
  }

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

  /// The second boot's domains: two guest-bench domains on the one pcpu yielding to each other
  /// from the same moment, so every SCHEDOP_yield switches to the other domain's vcpu. Each
  /// sample is a round trip: two yields and two switches.
  public static func switchConfigs(guest: String, samples: Int) -> [(name: String, text: String)] {
    ["yield-a", "yield-b"].map { name in
      (name, """
        name = "\(name)"
        type = "pvh"
        memory = 32
        vcpus = 1
        kernel = "\(guest)"
        cmdline = "yield_at_ms=200 samples=\(samples)"
        """)
    }
  }

  /// The switch measurement's figure: half the larger of the two domains' round-trip medians.
  public static func vcpuSwitch(from lines: [String]) -> Double? {
    let medians = lines.filter { $0.contains("bench: yield median ") }
      .compactMap { ConsoleFigures.number(after: "bench: yield median ", in: [$0]) }
    guard medians.count == 2, let slower = medians.max() else { return nil }
    return slower / 2
  }

  /// One boot of the benchmark: the image with `bundle` (the domain of `config`) on one pcpu,
  /// the floor measured `samples` times first.
  public static func runConfiguration(image: String, bundle: String, samples: Int, icount: Bool) -> RunConfiguration {
    var configuration = switchRunConfiguration(image: image, bundle: bundle, icount: icount)
    configuration.cmdline = "vmrunfloor=\(samples)"
    return configuration
  }

  /// The switch measurement's boot: the two domains of `switchConfigs` on one pcpu (the
  /// benchmark's own boot is this one with the floor measured first).
  public static func switchRunConfiguration(image: String, bundle: String, icount: Bool) -> RunConfiguration {
    .benchmark(image: image, bundle: bundle, icount: icount)
  }

  /// Reads one run's figures from the console, or nil if a line is missing.
  public static func sample(from lines: [String]) -> Sample? {
    func number(after marker: String) -> Double? { ConsoleFigures.number(after: marker, in: lines) }
    guard let floor = number(after: "bare VMRUN/#VMEXIT round trip median "),
          let hypercall = number(after: "bench: hypercall median "),
          let cpuid = number(after: "bench: cpuid median "),
          let send = number(after: "bench: send median "),
          let loneYield = number(after: "bench: lone yield median ") else { return nil }
    // The build line reads "... frames, in 1234 us": take the number after "in ".
    guard let buildLine = lines.first(where: { $0.contains("(bench): built:") }),
          let range = buildLine.range(of: ", in "),
          let micros = Double(buildLine[range.upperBound...].prefix { $0.isNumber }) else { return nil }
    return Sample(floor: floor, hypercall: hypercall, cpuid: cpuid, send: send, loneYield: loneYield,
                  buildMicroseconds: micros)
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
    let send = median(samples.map(\.send))
    let loneYield = median(samples.map(\.loneYield))
    let switches = samples.compactMap(\.vcpuSwitch)
    let vcpuSwitch = switches.isEmpty ? nil : median(switches)
    let build = median(samples.map(\.buildMicroseconds))
    func ratio(_ value: Double) -> String { floor > 0 ? String(format: "%.2fx", value / floor) : "-" }
    var text = "Exit costs, median of \(samples.count) run(s) (each a median of its samples), in \(unit)\n\n"
    text += "| measurement | median | vs floor | target |\n|---|---|---|---|\n"
    text += String(format: "| bare VMRUN/#VMEXIT (floor) | %.0f | 1.00x | |\n", floor)
    let verdict = floor > 0 && hypercall / floor <= targetRatio ? "met" : "MISSED"
    text += String(format: "| null hypercall (xen_version 0) | %.0f | %@ | <= %.1fx: %@ |\n", hypercall, ratio(hypercall), targetRatio, verdict)
    text += String(format: "| CPUID exit (leaf 0) | %.0f | %@ | |\n", cpuid, ratio(cpuid))
    text += String(format: "| EVTCHNOP_send to a port of the sending vcpu | %.0f | %@ | |\n", send, ratio(send))
    text += String(format: "| SCHEDOP_yield, nothing else runnable | %.0f | %@ | |\n", loneYield, ratio(loneYield))
    if let vcpuSwitch {
      text += String(format: "| switch between two domains' vcpus, one pcpu | %.0f | %@ | |\n", vcpuSwitch, ratio(vcpuSwitch))
    }
    if icount {
      var rows = [("null hypercall", hypercall, hypercallBudget), ("CPUID", cpuid, cpuidBudget),
                  ("EVTCHNOP_send, own port", send, sendBudget), ("SCHEDOP_yield, alone", loneYield, loneYieldBudget)]
      if let vcpuSwitch { rows.append(("vcpu switch, one pcpu", vcpuSwitch, switchBudget)) }
      text += budgetTable(rows)
    }
    text += String(format: "\nBuilding a 64 MiB PVH domain: %.1f ms (median)\n", build / 1000)
    if icount {
      text += "\nUnder -icount the floor counts only the instructions around VMRUN, so the ratio says how much\n"
      text += "work the exit path does, not how long it takes; the wall-clock ratio (without --icount) is the target's.\n"
    }
    return text
  }
}
