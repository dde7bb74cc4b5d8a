import Foundation

/// `visor bench events`: what events, timers and vcpu switches cost on the real hypervisor,
/// measured by the test guests inside their domains: an interdomain ping-pong (domains on
/// different pcpus, and on the same one), IPIs between two vcpus of one domain, timer lateness
/// (deadline to handler), and two domains yielding to each other on one pcpu. Each beside the
/// null hypercall measured in the same run.
public enum EventBenchmark {
  /// One scenario: its domains and how to read its figures from the console.
  public struct Scenario: Sendable {
    public var name: String
    public var configs: [String]
    public var smp: Int
  }

  public static func scenarios(pingpong: String, ipi: String, timer: String, bench: String, rounds: Int) -> [Scenario] {
    func config(_ name: String, _ guest: String, vcpus: Int = 1, cpus: String? = nil, _ cmdline: String) -> String {
      var text = "name = \"\(name)\"\ntype = \"pvh\"\nmemory = 32\nvcpus = \(vcpus)\nkernel = \"\(guest)\"\ncmdline = \"\(cmdline)\"\n"
      if let cpus { text += "cpus = \"\(cpus)\"\n" }
      return text
    }
    return [
      Scenario(name: "pingpong-2pcpus", configs: [
        config("ping", pingpong, cpus: "1", "role=ping peer=2 rounds=\(rounds)"),
        config("pong", pingpong, cpus: "2", "role=pong peer=1"),
      ], smp: 3),
      Scenario(name: "pingpong-1pcpu", configs: [
        config("ping", pingpong, cpus: "1", "role=ping peer=2 rounds=\(rounds)"),
        config("pong", pingpong, cpus: "1", "role=pong peer=1"),
      ], smp: 3),
      Scenario(name: "ipi", configs: [config("ipi", ipi, vcpus: 2, "rounds=\(rounds)")], smp: 3),
      Scenario(name: "timer", configs: [config("timer", timer, "timers=50")], smp: 3),
      Scenario(name: "yield", configs: [
        config("yield-a", bench, cpus: "1", "yield_at_ms=1500 samples=\(rounds * 10)"),
        config("yield-b", bench, cpus: "1", "yield_at_ms=1500 samples=\(rounds * 10)"),
      ], smp: 3),
    ]
  }

  /// The figures of all scenarios of one run.
  public struct Figures: Sendable {
    public var values: [String: Double] = [:]
    public init() {}
  }

  /// Reads one scenario's console into `figures`; false if a figure is missing.
  public static func read(_ scenario: Scenario, lines: [String], into figures: inout Figures) -> Bool {
    var wanted: [(String, String)] = []
    switch scenario.name {
    case "pingpong-2pcpus", "pingpong-1pcpu":
      wanted = [("mean-rtt-ns ", "rtt-ns"), ("mean-rtt-cycles ", "rtt-cycles"), ("send mean-cycles ", "send-cycles"),
                ("null-hypercall mean-cycles ", "null-cycles")]
    case "ipi": wanted = [("mean-rtt-ns ", "rtt-ns")]
    case "timer": wanted = [("late by min ", "min-us"), (" mean ", "mean-us"), (" max ", "max-us")]
    case "yield": wanted = [("bench: yield median ", "cycles")]
    default: return false
    }
    for (marker, key) in wanted {
      let source = scenario.name == "timer" ? lines.filter { $0.contains("late by min ") } : lines
      guard let value = ConsoleFigures.number(after: marker, in: source) else { return false }
      figures.values["\(scenario.name).\(key)"] = value
    }
    return true
  }

  /// With `icount`, the figures are instructions, and the exits that have a budget
  /// (docs/exit-budget.md) are shown beside it too.
  public static func report(_ runs: [Figures], rounds: Int, icount: Bool = false) -> String {
    func median(_ key: String) -> Double {
      let values = runs.compactMap { $0.values[key] }.sorted()
      return values.isEmpty ? .nan : values[values.count / 2]
    }
    let null2 = median("pingpong-2pcpus.null-cycles")
    var text = "Events, timers and switches, median of \(runs.count) run(s); \(rounds) rounds each (QEMU TCG: wall times are emulated)\n\n"
    text += "| measurement | figure | vs null hypercall |\n|---|---|---|\n"
    func row(_ name: String, _ value: Double, unit: String, relative: Bool) {
      let ratio = relative && null2 > 0 ? String(format: "%.2fx", value / null2) : ""
      text += String(format: "| %@ | %.0f %@ | %@ |\n", name, value, unit, ratio)
    }
    row("null hypercall (xen_version 0), in the ping domain", null2, unit: "cycles", relative: true)
    row("interdomain notification (EVTCHNOP_send), other pcpu", median("pingpong-2pcpus.send-cycles"), unit: "cycles", relative: true)
    row("interdomain notification (EVTCHNOP_send), same pcpu", median("pingpong-1pcpu.send-cycles"), unit: "cycles", relative: true)
    row("ping-pong round trip, domains on 2 pcpus", median("pingpong-2pcpus.rtt-cycles"), unit: "cycles", relative: true)
    row("ping-pong round trip, domains on 1 pcpu", median("pingpong-1pcpu.rtt-cycles"), unit: "cycles", relative: true)
    row("ping-pong round trip, domains on 2 pcpus", median("pingpong-2pcpus.rtt-ns") / 1000, unit: "us", relative: false)
    row("ping-pong round trip, domains on 1 pcpu", median("pingpong-1pcpu.rtt-ns") / 1000, unit: "us", relative: false)
    row("IPI round trip, 2 vcpus of one domain", median("ipi.rtt-ns") / 1000, unit: "us", relative: false)
    row("vcpu switch round trip (2 domains yielding, 1 pcpu)", median("yield.cycles"), unit: "cycles", relative: true)
    text += String(format: "| timer lateness (deadline to handler), 50 timers | min %.0f / mean %.0f / max %.0f us | |\n",
                   median("timer.min-us"), median("timer.mean-us"), median("timer.max-us"))
    let send = median("pingpong-2pcpus.send-cycles")
    let target = null2 > 0 && send / null2 <= 3 ? "met" : "MISSED"
    text += String(format: "\nTarget: an interdomain notification costs at most 3 null hypercalls: %.2fx, %@.\n", null2 > 0 ? send / null2 : .nan, target)
    if icount {
      // A yield round trip between the two domains is two yields and two switches.
      let vcpuSwitch = median("yield.cycles") / 2
      text += HypercallBenchmark.budgetTable([
        ("null hypercall (in the ping domain)", null2, HypercallBenchmark.hypercallBudget),
        ("interdomain notification to a blocked vcpu, other pcpu", send, HypercallBenchmark.notificationBudget),
        ("vcpu switch, one pcpu (half a yield round trip)", vcpuSwitch, HypercallBenchmark.switchBudget),
      ])
    }
    return text
  }
}
