import Foundation

/// `visor bench sched`: the credit scheduler's weights measured on the real hypervisor.
/// CPU-bound guest-spin domains (one vcpu each) share the 2 pcpus that run guests; each counts
/// the rounds of arithmetic it completes in the same window of system time, and the hypervisor
/// reports how long each domain ran. An arrangement says which hogs, with which weights, caps
/// and pinning; the default is three hogs of weights 256 / 512 / 256, whose ideal shares are
/// 50 / 100 / 50 % of one pcpu.
public enum SchedulerBenchmark {
  public struct Domain: Sendable, Equatable {
    public var name: String
    public var weight: Int
    public var cap: Int
    /// Hard affinity (xl's `cpus`), as pcpu numbers of the machine; nil: every pcpu.
    public var cpus: [Int]?
    public init(name: String, weight: Int, cap: Int = 0, cpus: [Int]? = nil) {
      self.name = name
      self.weight = weight
      self.cap = cap
      self.cpus = cpus
    }
  }

  /// A set of hogs measured together.
  public struct Arrangement: Sendable {
    public var name: String
    public var summary: String
    public var domains: [Domain]
  }

  /// The arrangements `visor bench sched --arrangement` knows. pcpus 1 and 2 run guests under
  /// QEMU's TCG (pcpu 0 runs none), so pinning names them.
  public static let arrangements: [Arrangement] = [
    Arrangement(name: "weights", summary: "weights 256/512/256",
                domains: [.init(name: "w256a", weight: 256), .init(name: "w512", weight: 512), .init(name: "w256b", weight: 256)]),
    Arrangement(name: "equal8", summary: "8 hogs of equal weight",
                domains: (0..<8).map { Domain(name: "eq\($0)", weight: 256) }),
    Arrangement(name: "mixed3", summary: "weights 128/256/768",
                domains: [.init(name: "w128", weight: 128), .init(name: "w256", weight: 256), .init(name: "w768", weight: 768)]),
    Arrangement(name: "mixed4", summary: "weights 128/256/512/1024",
                domains: [.init(name: "w128", weight: 128), .init(name: "w256", weight: 256),
                          .init(name: "w512", weight: 512), .init(name: "w1024", weight: 1024)]),
    Arrangement(name: "mixed5", summary: "weights 256/256/512/512/1024",
                domains: [.init(name: "w256a", weight: 256), .init(name: "w256b", weight: 256), .init(name: "w512a", weight: 512),
                          .init(name: "w512b", weight: 512), .init(name: "w1024", weight: 1024)]),
    Arrangement(name: "pinned", summary: "weights 256/512/256, the first pinned to pcpu 1",
                domains: [.init(name: "pin256", weight: 256, cpus: [1]), .init(name: "w512", weight: 512), .init(name: "w256", weight: 256)]),
    Arrangement(name: "capped", summary: "weights 256/256/512, the first capped at 30 %",
                domains: [.init(name: "cap30", weight: 256, cap: 30), .init(name: "w256", weight: 256), .init(name: "w512", weight: 512)]),
  ]

  public static func arrangement(named name: String) -> Arrangement? { arrangements.first { $0.name == name } }

  /// The default arrangement's hogs.
  public static let domains = arrangements[0].domains
  public static let pcpus = 2
  /// QEMU's CPUs: the pcpus for guests and pcpu 0, which runs none under TCG (docs/known-issues.md).
  public static let qemuCPUs = pcpus + 1
  /// The pcpus that run guests on that machine.
  public static let guestPCPUs = Array(1...pcpus)

  /// The config of one hog: it measures between `from` and `until` ms of system time.
  public static func config(_ domain: Domain, guest: String, from: Int, until: Int) -> String {
    var text = """
      name = "\(domain.name)"
      type = "pvh"
      memory = 16
      vcpus = 1
      weight = \(domain.weight)
      cap = \(domain.cap)
      kernel = "\(guest)"
      cmdline = "from_ms=\(from) until_ms=\(until)"
      """
    if let cpus = domain.cpus { text += "\ncpus = \"\(cpus.map(String.init).joined(separator: ","))\"" }
    return text
  }

  /// The QEMU run of one arrangement's bundle: 3 CPUs, of which pcpu 0 runs no guests (QEMU's
  /// FXRSTOR race, docs/known-issues.md). Under `-icount` QEMU runs every CPU on one thread, so
  /// that race cannot happen and pcpu 0 runs guests: 2 CPUs (with 3, QEMU's round robin gave
  /// the third CPU under 2 % of the instructions the second got). There guest instructions
  /// make the clock, and the run is deterministic (`QEMURunner.effectiveCommandLine` passes
  /// `cpu0guests=yes` there).
  public static func runConfiguration(image: String, bundle: String, start: Int, window: Int, icount: Bool) -> RunConfiguration {
    var configuration = RunConfiguration(kernel: image)
    configuration.smp = icount ? pcpus : qemuCPUs
    configuration.initrd = bundle
    configuration.icount = icount
    configuration.timeout = Double(start + window) / 1000 * (icount ? 20 : 10) + 120
    return configuration
  }

  /// The ideal share of one pcpu, in percent, for each domain (one vcpu each) on pcpus 1…`pcpus`.
  public static func idealShares(_ domains: [Domain], pcpus: Int) -> [Double] {
    idealShares(domains, guestPCPUs: Array(1...max(pcpus, 1)))
  }

  /// The ideal share of one pcpu, in percent, for each domain (one vcpu each): weighted max-min
  /// fairness. Every vcpu's share grows in proportion to its weight until it reaches its bound
  /// (one pcpu, or its cap) or the pcpus it may use are full; for a set S of pcpus, the vcpus
  /// pinned inside S can use no more than S has. What those hold back goes to the others.
  public static func idealShares(_ domains: [Domain], guestPCPUs: [Int]) -> [Double] {
    let pcpus = guestPCPUs
    let masks = domains.map { domain -> Int in
      var mask = 0
      for (bit, pcpu) in pcpus.enumerated() where domain.cpus?.contains(pcpu) ?? true { mask |= 1 << bit }
      return mask == 0 ? (1 << pcpus.count) - 1 : mask
    }
    let limits = domains.map { $0.cap > 0 ? min(100, Double($0.cap)) : 100 }
    var share = [Double](repeating: 0, count: domains.count)
    var open = Set(domains.indices)
    let sets = Array(1..<(1 << pcpus.count))
    func inside(_ set: Int) -> [Int] { domains.indices.filter { masks[$0] & ~set == 0 } }
    func room(_ set: Int) -> Double { Double(set.nonzeroBitCount) * 100 - inside(set).reduce(0) { $0 + share[$1] } }
    let epsilon = 1e-9
    while !open.isEmpty {
      var step = Double.infinity
      for i in open { step = min(step, (limits[i] - share[i]) / Double(domains[i].weight)) }
      for set in sets {
        let rate = inside(set).filter(open.contains).reduce(0.0) { $0 + Double(domains[$1].weight) }
        if rate > 0 { step = min(step, room(set) / rate) }
      }
      for i in open { share[i] += step * Double(domains[i].weight) }
      for i in open where share[i] >= limits[i] - epsilon { open.remove(i) }
      for set in sets where room(set) <= epsilon { for i in inside(set) { open.remove(i) } }
    }
    return share.map { ($0 * 1e6).rounded() / 1e6 }
  }

  public struct Sample: Sendable {
    /// Rounds completed in the window, by domain name.
    public var rounds: [String: Double]
    /// Microseconds the hypervisor had each domain's vcpu running inside the window (its
    /// runstate area), by domain name.
    public var ranMicroseconds: [String: Double]
    /// The window's length in microseconds, as each domain reported it.
    public var spanMicroseconds: [String: Double]

    /// Each domain's share of one pcpu from the work it did, in percent: its rounds against all
    /// hogs' rounds, scaled to what the hogs can use together (the sum of the ideal shares).
    public func workShares(_ domains: [Domain], ideal: [Double]) -> [Double] {
      shares(rounds, domains, ideal: ideal)
    }

    /// The share of one pcpu each domain was given in the window, in percent: the time the
    /// hypervisor had it running over the time it measured. The scheduler's decision alone,
    /// whatever a pcpu's speed.
    public func timeShares(_ domains: [Domain]) -> [Double] {
      domains.map { domain in
        guard let ran = ranMicroseconds[domain.name], let span = spanMicroseconds[domain.name], span > 0 else { return 0 }
        return ran / span * 100
      }
    }

    private func shares(_ values: [String: Double], _ domains: [Domain], ideal: [Double]) -> [Double] {
      let total = domains.reduce(0.0) { $0 + (values[$1.name] ?? 0) }
      let capacity = ideal.reduce(0, +)
      return domains.map { total > 0 ? (values[$0.name] ?? 0) / total * capacity : 0 }
    }
  }

  /// Reads one run: each hog's window line ("(dN) guest-spin: window …: rounds R, ran N us of
  /// M us"),
  /// matched to names through the "built" lines; nil if a hog's line is missing.
  public static func sample(from lines: [String], domains: [Domain] = domains) -> Sample? {
    var nameOfDomain: [String: String] = [:]     // "d3" → "w512"
    for line in lines {
      // "(sv) domain 3 (w512): built: …"
      guard let built = line.range(of: "): built:"), let open = line.range(of: "domain ") else { continue }
      let inner = line[open.upperBound..<built.lowerBound]
      let parts = inner.split(separator: " (", maxSplits: 1)
      if parts.count == 2 { nameOfDomain["d" + parts[0]] = String(parts[1]) }
    }
    var rounds: [String: Double] = [:]
    var ran: [String: Double] = [:]
    var span: [String: Double] = [:]
    for line in lines {
      guard line.hasPrefix("(d"), let close = line.firstIndex(of: ")"), let r = line.range(of: ": rounds "),
            let name = nameOfDomain[String(line[line.index(after: line.startIndex)..<close])] else { continue }
      if let value = Double(line[r.upperBound...].prefix { $0.isNumber }) { rounds[name] = value }
      if let t = line.range(of: ", ran "), let value = Double(line[t.upperBound...].prefix { $0.isNumber }) { ran[name] = value }
      if let t = line.range(of: " us of "), let value = Double(line[t.upperBound...].prefix { $0.isNumber }) { span[name] = value }
    }
    guard domains.allSatisfy({ rounds[$0.name] != nil && ran[$0.name] != nil && span[$0.name] != nil }) else { return nil }
    return Sample(rounds: rounds, ranMicroseconds: ran, spanMicroseconds: span)
  }

  /// The target: every domain within this many points of its ideal share, in every run.
  public static let tolerance = 2.0

  public static func report(_ arrangement: Arrangement, _ samples: [Sample], window: Int, icount: Bool = false) -> String {
    let domains = arrangement.domains
    let ideal = idealShares(domains, guestPCPUs: guestPCPUs)
    let work = samples.map { $0.workShares(domains, ideal: ideal) }
    let time = samples.map { $0.timeShares(domains) }
    var text = "\(arrangement.name): \(arrangement.summary), \(domains.count) CPU-bound domains on \(pcpus) pcpus "
      + "(credit scheduler)\(icount ? ", -icount" : ""), \(samples.count) run(s), window \(window) ms\n\n"
    let runs = samples.indices.map { "run \($0 + 1) work / ran" }
    text += "| domain | weight | cap | cpus | ideal % of a pcpu | " + runs.joined(separator: " | ")
      + " | worst work | worst ran | ran within ±\(Int(tolerance)) in every run | work within ±\(Int(tolerance)) in every run |\n"
    text += "|---|---|---|---|---|" + String(repeating: "---|", count: samples.count) + "---|---|---|---|\n"
    func worst(_ values: [Double], _ target: Double) -> Double {
      values.max { abs($0 - target) < abs($1 - target) } ?? .nan
    }
    for (i, domain) in domains.enumerated() {
      let mine = (work.map { $0[i] }, time.map { $0[i] })
      let within = { (values: [Double]) in values.allSatisfy { abs($0 - ideal[i]) <= tolerance } ? "yes" : "no" }
      // Under -icount the work a pcpu does in a stretch of time is QEMU's doing (one thread
      // shared by every CPU), so only the run time judges the scheduler there.
      let verdict = within(mine.1) + " | " + (icount ? "-" : within(mine.0))
      let cpus = domain.cpus.map { $0.map(String.init).joined(separator: ",") } ?? "all"
      let cells = zip(mine.0, mine.1).map { String(format: "%.1f / %.1f", $0, $1) }
      text += "| \(domain.name) | \(domain.weight) | \(domain.cap == 0 ? "-" : "\(domain.cap)") | \(cpus) | "
        + String(format: "%.1f", ideal[i]) + " | " + cells.joined(separator: " | ")
        + String(format: " | %.1f | %.1f | ", worst(mine.0, ideal[i]), worst(mine.1, ideal[i])) + verdict + " |\n"
    }
    return text
  }

  /// What the report's columns mean, printed once after the tables.
  public static let legend = """
    Work: the rounds a hog completed inside the common window as a share of all hogs' rounds,
    times what the hogs can use together (the sum of the ideal shares). Ran: the time the
    hypervisor had each hog running inside the window (its runstate area) over the window's
    length, as measured by the hog: what the scheduler decided. Work also depends on how fast QEMU
    runs each CPU (one host thread each, on however many host cores are free); under -icount it is
    not judged at all: QEMU runs every CPU on one thread, and how many instructions each gets in a
    stretch of system time is not the scheduler's doing.

    """
}
