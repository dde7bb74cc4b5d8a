import Foundation

/// `visor fuzz` and the fuzz system test: guest-fuzz (docs/security.md, "The fuzzer") beside a
/// bystander, with the isolation check on, and the verdict on how the run went.
///
/// The bystander is a guest-pingpong pair, domains 1 and 2, bouncing an event over an
/// interdomain channel; the fuzzer is domain 3 and aims many of its calls at domains 1 and 2
/// (its domain ids include them). The pair must finish all its rounds: a fuzzer that reaches
/// into another domain's channels, memory or vcpus would stop it or make it fail. Its rounds
/// scale with the fuzzing time so that it works for about as long as the fuzzer does.
public enum FuzzRun {
  /// QEMU's CPU count: pcpu 0 runs no guests under TCG, so the four vcpus share pcpus 1 and 2.
  public static let pcpus = 3
  public static let cmdline = "isolationcheck"
  /// Ping-pong rounds per second of fuzzing. Under QEMU's TCG a round trip beside the fuzzer
  /// takes 1.2 to 2.7 ms (more on a loaded machine), so the pair is busy for about as long as the
  /// fuzzer runs and finishes well inside the time limit. At 2,000 a second (0.5 ms a round, as
  /// first assumed) a 20 s run gave the pair 50 to 110 s of work, and a loaded machine hit the
  /// 120 s limit with the pair still going: that looked like a stalled bystander, and was not.
  public static let roundsPerSecond = 400
  public static let fuzzerDomain = 3

  /// The domains' configurations, in build order (ping must come first: domain ids follow it).
  public static func configs(
    fuzzer: String, pingpong: String, seed: UInt64, seconds: Int, trace: Bool = false
  ) -> [(name: String, text: String)] {
    let rounds = max(1_000, seconds * roundsPerSecond)
    return [
      ("ping", domain(name: "ping", kernel: pingpong, memory: 32, vcpus: 1, cmdline: "role=ping peer=2 rounds=\(rounds)")),
      ("pong", domain(name: "pong", kernel: pingpong, memory: 32, vcpus: 1, cmdline: "role=pong peer=1")),
      ("fuzz", domain(name: "fuzz", kernel: fuzzer, memory: 64, vcpus: 2,
                      cmdline: "seed=\(seed) seconds=\(seconds)" + (trace ? " trace" : ""))),
    ]
  }

  static func domain(name: String, kernel: String, memory: Int, vcpus: Int, cmdline: String) -> String {
    """
    name = "\(name)"
    type = "pvh"
    memory = \(memory)
    vcpus = \(vcpus)
    kernel = "\(kernel)"
    cmdline = "\(cmdline)"

    """
  }

  /// QEMU's time limit: the fuzzing, the bystander's tail, domain builds and the fuzzer's own
  /// 30 s patience for its second vcpu, with room for a loaded host. Past it the run is a hang.
  public static func timeout(seconds: Int) -> Double {
    Double(seconds) * 1.5 + 90
  }

  /// A seed for a run that was given none: small enough to type back.
  public static func randomSeed() -> UInt64 {
    UInt64.random(in: 1...0xFFFF_FFFF)
  }

  /// The command that replays a run.
  public static func replayCommand(seed: UInt64, seconds: Int) -> String {
    "visor fuzz --seed \(seed) --seconds \(seconds)"
  }

  /// What the run's console says about it.
  public struct Verdict: Sendable, Equatable {
    /// Calls the fuzzer survived (both vcpus), from its `survived` line; nil without one.
    public var calls: Int?
    /// Its run time in ms, from the same line.
    public var milliseconds: Int?
    /// The `survived` line itself.
    public var survivedLine: String?
    /// Why the run failed, with the status `visor fuzz` exits with; nil for a clean run.
    public var failure: (exit: VisorExit, reason: String)?

    public static func == (a: Verdict, b: Verdict) -> Bool {
      a.calls == b.calls && a.milliseconds == b.milliseconds && a.survivedLine == b.survivedLine
        && a.failure?.exit == b.failure?.exit && a.failure?.reason == b.failure?.reason
    }
  }

  /// The bystander's lines that must all appear (`rounds` as in `configs`).
  public static func bystanderLines(seconds: Int) -> [String] {
    let rounds = max(1_000, seconds * roundsPerSecond)
    return [
      "(d1) guest-pingpong: rounds \(rounds) mean-rtt-ns ",
      "(d2) guest-pingpong: pong answered \(rounds) events",
      "(d1) guest-pingpong: done",
      "(d2) guest-pingpong: done",
      "domain 1 (ping): shutdown: poweroff",
      "domain 2 (pong): shutdown: poweroff",
    ]
  }

  /// What the fuzzer's domain must print (its own console writes may come first on the
  /// `survived` line).
  public static let fuzzerLines = [
    "guest-fuzz: survived ",
    "(d3) guest-fuzz: done",
    "domain 3 (fuzz): shutdown: poweroff",
  ]

  /// Judges a run, the first failure that applies winning: a hypervisor crash, an isolation
  /// check report, a panic, a hang (QEMU killed at the time limit), another QEMU ending, the
  /// bystander not finishing, the fuzzer's domain not surviving, frames not returned.
  public static func verdict(_ result: RunResult, seconds: Int) -> Verdict {
    let text = result.lines.map(\.text)
    var verdict = Verdict()
    if let line = text.first(where: { $0.hasPrefix("(d3) ") && $0.contains("guest-fuzz: survived ") }) {
      verdict.survivedLine = line
      verdict.calls = number(after: "guest-fuzz: survived ", in: line)
      verdict.milliseconds = number(after: " calls in ", in: line)
    }
    // The hypervisor's own lines: the fuzzer writes random bytes to the console too.
    let hypervisor = text.filter { $0.hasPrefix("(sv") }
    let missingBystander = bystanderLines(seconds: seconds).filter { !result.contains($0) }
    let missingFuzzer = fuzzerLines.filter { !result.contains($0) }
    func fail(_ exit: VisorExit, _ reason: String) -> Verdict {
      var failed = verdict
      failed.failure = (exit, reason)
      return failed
    }

    if result.exit == .crash || CrashReport.first(in: text) != nil {
      let header = CrashReport.first(in: text)?.header ?? "no crash report on the console"
      return fail(.crash, "hypervisor crash: \(header.trimmingCharacters(in: .whitespaces))")
    }
    if let problem = hypervisor.first(where: { $0.contains("isolation check: ") && !$0.contains(" agree with the frame table") })
        ?? hypervisor.first(where: { $0.contains("isolation check failed") }) {
      return fail(.panic, "isolation check report: \(problem)")
    }
    if result.exit == .panic {
      let line = text.first { $0.contains("SWIFTVISOR PANIC") } ?? hypervisor.first { $0.contains("panic") || $0.contains("error") } ?? "no panic message on the console"
      return fail(.panic, "hypervisor panic: \(line)")
    }
    if result.exit == .timeout {
      var who: [String] = []
      if !missingBystander.isEmpty { who.append("the bystander had not finished") }
      if !missingFuzzer.isEmpty { who.append("the fuzzer had not finished") }
      let seconds = String(format: "%.0f", result.elapsed)
      return fail(.timeout, "hang: QEMU killed after \(seconds) s" + (who.isEmpty ? "" : " (\(who.joined(separator: ", ")))"))
    }
    if result.exit != .clean && result.exit != .domainFailed {
      return fail(result.exit, result.summary)
    }
    if !missingBystander.isEmpty {
      return fail(.domainFailed, "the bystander did not finish: no \(missingBystander.map { "\"\($0)\"" }.joined(separator: ", "))")
    }
    if !missingFuzzer.isEmpty {
      let end = hypervisor.first { $0.contains("domain 3 (fuzz): shutdown: ") || $0.contains("domain 3 (fuzz) vcpu") }
      return fail(.domainFailed, "the fuzzer's domain did not survive: "
        + (end ?? "no \(missingFuzzer.map { "\"\($0)\"" }.joined(separator: ", "))"))
    }
    if result.exit != .clean {
      return fail(result.exit, result.summary)
    }
    if let leak = hypervisor.first(where: { $0.contains("LEAK") }) {
      return fail(.checkFailed, "frames not returned: \(leak)")
    }
    if !hypervisor.contains(where: { $0.contains("memory: all ") && $0.contains(" frames returned") }) {
      return fail(.checkFailed, "frames not returned: no \"memory: all N frames returned\" line")
    }
    return verdict
  }

  /// The decimal number right after `prefix` in `line`.
  static func number(after prefix: String, in line: String) -> Int? {
    guard let start = line.range(of: prefix)?.upperBound else { return nil }
    let digits = line[start...].prefix { $0.isNumber }
    return Int(digits)
  }
}
