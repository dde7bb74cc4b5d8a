import Foundation

/// `visor bench grants`: what a grant operation costs beside a null hypercall. guest-grant
/// (`role=bench`) grants a page to itself and measures, in one domain at -smp 1, the median of
/// its samples of a null hypercall (xen_version 0), GNTTABOP_map_grant_ref, unmap_grant_ref, a
/// map+unmap round trip, and a 4 KiB GNTTABOP_copy out of the grant. In TSC cycles, or with
/// --icount in executed instructions.
public enum GrantBenchmark {
  public struct Sample: Sendable {
    public var null: Double
    public var map: Double
    public var unmap: Double
    public var roundTrip: Double
    public var copy: Double
  }

  /// The target: each grant operation at most this many null hypercalls.
  public static let targetRatio = 2.0

  public static func config(guest: String, samples: Int) -> String {
    """
    name = "grantbench"
    type = "pvh"
    memory = 32
    vcpus = 1
    kernel = "\(guest)"
    cmdline = "role=bench samples=\(samples)"
    """
  }

  /// One run's figures from the console, or nil if a line is missing.
  public static func sample(from lines: [String]) -> Sample? {
    func number(_ marker: String) -> Double? { ConsoleFigures.number(after: "guest-grant: " + marker, in: lines) }
    guard let null = number("null hypercall median "), let map = number("map median "),
          let unmap = number("unmap median "), let roundTrip = number("map+unmap median "),
          let copy = number("copy 4096 median ") else { return nil }
    return Sample(null: null, map: map, unmap: unmap, roundTrip: roundTrip, copy: copy)
  }

  public static func report(_ samples: [Sample], icount: Bool) -> String {
    let unit = icount ? "instructions (-icount)" : "TSC cycles"
    let null = HypercallBenchmark.median(samples.map(\.null))
    var text = "Grant operations, median of \(samples.count) run(s) (each a median of its samples), in \(unit)\n\n"
    text += "| measurement | median | vs null hypercall | target |\n|---|---|---|---|\n"
    text += String(format: "| null hypercall (xen_version 0) | %.0f | 1.00x | |\n", null)
    func row(_ name: String, _ value: Double, operations: Double) {
      let ratio = null > 0 ? value / null : 0
      let limit = targetRatio * operations
      let verdict = null > 0 && ratio <= limit ? "met" : String(format: "MISSED by %.1fx", ratio / limit)
      text += String(format: "| %@ | %.0f | %.2fx | <= %.0fx: %@ |\n", name, value, ratio, limit, verdict)
    }
    row("GNTTABOP_map_grant_ref (one, own grant)", HypercallBenchmark.median(samples.map(\.map)), operations: 1)
    row("GNTTABOP_unmap_grant_ref (one, with its TLB flush)", HypercallBenchmark.median(samples.map(\.unmap)), operations: 1)
    row("map + unmap round trip", HypercallBenchmark.median(samples.map(\.roundTrip)), operations: 2)
    row("GNTTABOP_copy, 4 KiB out of a grant", HypercallBenchmark.median(samples.map(\.copy)), operations: 1)
    text += "\nThe target allows each grant operation twice a null hypercall (a round trip is two operations).\n"
    return text
  }
}
