import Foundation

/// `visor bench sched`: the credit scheduler's weights measured on the real hypervisor. Three
/// CPU-bound guest-spin domains with weights 256 / 512 / 256 share 2 pcpus; each counts the
/// rounds of arithmetic it completes in the same window of system time, and the hypervisor
/// reports how long each domain ran. The ideal shares are 50 / 100 / 50 % of one pcpu.
public enum SchedulerBenchmark {
  public struct Domain: Sendable {
    public var name: String
    public var weight: Int
    public var cap: Int
    public init(name: String, weight: Int, cap: Int = 0) { self.name = name; self.weight = weight; self.cap = cap }
  }

  public struct Sample: Sendable {
    /// Rounds completed in the window, by domain name.
    public var rounds: [String: Double]
    /// Milliseconds the hypervisor charged as running, by domain name.
    public var ranMilliseconds: [String: Double]
  }

  public static let domains = [Domain(name: "w256a", weight: 256), Domain(name: "w512", weight: 512), Domain(name: "w256b", weight: 256)]
  public static let pcpus = 2
  /// QEMU's CPUs: the pcpus for guests and pcpu 0, which runs none under TCG (docs/known-issues.md).
  public static let qemuCPUs = pcpus + 1

  /// The config of one hog: it measures between `from` and `until` ms of system time.
  public static func config(_ domain: Domain, guest: String, from: Int, until: Int) -> String {
    """
    name = "\(domain.name)"
    type = "pvh"
    memory = 16
    vcpus = 1
    weight = \(domain.weight)
    cap = \(domain.cap)
    kernel = "\(guest)"
    cmdline = "from_ms=\(from) until_ms=\(until)"
    """
  }

  /// The ideal share of one pcpu, in percent, for each domain (one vcpu each): weights decide,
  /// but a single vcpu can never use more than one pcpu, and caps bound it (water-filling).
  public static func idealShares(_ domains: [Domain], pcpus: Int) -> [Double] {
    var share = [Double](repeating: 0, count: domains.count)
    var open = Set(domains.indices)
    var capacity = Double(pcpus) * 100
    while !open.isEmpty {
      let total = open.reduce(0.0) { $0 + Double(domains[$1].weight) }
      var limited: [Int] = []
      for i in open {
        let fair = capacity * Double(domains[i].weight) / total
        let limit = domains[i].cap > 0 ? min(100, Double(domains[i].cap)) : 100
        if fair > limit { limited.append(i); share[i] = limit }
      }
      if limited.isEmpty {
        for i in open { share[i] = capacity * Double(domains[i].weight) / total }
        break
      }
      for i in limited { open.remove(i); capacity -= share[i] }
    }
    return share
  }

  /// Reads one run: each hog's window line ("(dN) guest-spin: window …: rounds R") and each
  /// domain's "destroyed, …, ran X ms" line, matched to names through the "built" lines.
  public static func sample(from lines: [String]) -> Sample? {
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
    for line in lines {
      if let r = line.range(of: ": rounds "), line.hasPrefix("(d"), let close = line.firstIndex(of: ")") {
        let id = String(line[line.index(after: line.startIndex)..<close])
        if let name = nameOfDomain[id], let value = Double(line[r.upperBound...].prefix { $0.isNumber }) { rounds[name] = value }
      }
      if let r = line.range(of: ", ran "), let open = line.range(of: "domain "), let paren = line.range(of: " (", range: open.upperBound..<line.endIndex) {
        let id = "d" + line[open.upperBound..<paren.lowerBound]
        if let name = nameOfDomain[id], let value = Double(line[r.upperBound...].prefix { $0.isNumber }) { ran[name] = value }
      }
    }
    guard domains.allSatisfy({ rounds[$0.name] != nil }) else { return nil }
    return Sample(rounds: rounds, ranMilliseconds: ran)
  }

  public static func report(_ samples: [Sample], window: Int) -> String {
    let ideal = idealShares(domains, pcpus: pcpus)
    var text = "CPU shares of 3 CPU-bound domains on \(pcpus) pcpus (credit scheduler), \(samples.count) run(s), window \(window) ms\n\n"
    text += "| domain | weight | ideal % of a pcpu | measured (work done) | measured (run time) | within ±2 points |\n|---|---|---|---|---|---|\n"
    for (i, domain) in domains.enumerated() {
      // Work share: this hog's rounds against all hogs' rounds, scaled to the pcpus' capacity.
      let work = samples.map { s -> Double in
        let total = domains.reduce(0.0) { $0 + (s.rounds[$1.name] ?? 0) }
        return total > 0 ? (s.rounds[domain.name] ?? 0) / total * Double(pcpus) * 100 : 0
      }
      let time = samples.compactMap { s -> Double? in
        let total = domains.reduce(0.0) { $0 + (s.ranMilliseconds[$1.name] ?? 0) }
        guard total > 0, let mine = s.ranMilliseconds[domain.name] else { return nil }
        return mine / total * Double(pcpus) * 100
      }
      let meanWork = work.reduce(0, +) / Double(max(work.count, 1))
      let meanTime = time.isEmpty ? Double.nan : time.reduce(0, +) / Double(time.count)
      let verdict = abs(meanWork - ideal[i]) <= 2 ? "yes" : "no"
      text += String(format: "| %@ | %d | %.1f | %.1f | %.1f | %@ |\n", domain.name, domain.weight, ideal[i], meanWork, meanTime, verdict)
    }
    text += "\nWork done: rounds completed inside the common window, as a share of all hogs' rounds times \(pcpus) pcpus.\n"
    text += "Run time: what the hypervisor charged each domain over its whole life (start-up and the end\n"
    text += "included, when fewer hogs compete), so it drifts from the window figure by the build gaps.\n"
    return text
  }
}
