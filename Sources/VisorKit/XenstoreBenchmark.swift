import Foundation

/// `visor bench xenstore`: what a xenstore round trip costs a domain. guest-xenstore
/// (`mode=bench`) times, with RDTSC, a null hypercall (`xen_version(0)`), an XS_READ of one of
/// its nodes and an XS_WRITE of it, each from the request's first byte written to the reply
/// read, median of its samples. The read is timed twice: as a kernel's xenbus makes it (the
/// request written into the ring, the value copied out, no allocation), which the target is
/// about, and through the test library's general client (arrays and strings). The store answers during the EVTCHNOP_send that carries the
/// request (docs/xenstore.md), so a round trip is one hypercall plus the store's work. In TSC
/// cycles, or under --icount in executed instructions.
public enum XenstoreBenchmark {
  public struct Sample: Sendable {
    public var hypercall: Double
    public var read: Double
    public var write: Double
    /// The EVTCHNOP_send that carries each request alone: the hypervisor's share (the store's
    /// work and the hypercall around it); the rest of a round trip is the client's.
    public var readSend: Double
    public var writeSend: Double
    /// The same read through the general client.
    public var readGeneral: Double

    public init(hypercall: Double, read: Double, write: Double, readSend: Double, writeSend: Double, readGeneral: Double) {
      self.hypercall = hypercall
      self.read = read
      self.write = write
      self.readSend = readSend
      self.writeSend = writeSend
      self.readGeneral = readGeneral
    }
  }

  /// The target: a xenstore read at most this many null hypercalls.
  public static let targetRatio = 5.0
  /// A write's ceiling in instructions under -icount, about a fifth above what it costs now
  /// (docs/exit-budget.md, "A xenstore round trip"): it has no target, and this catches a
  /// change that makes the store much dearer. A read is held to the target itself.
  public static let writeCeiling = 27_500.0

  /// The benchmark domain's configuration.
  public static func config(guest: String, samples: Int) -> String {
    """
    name = "xenstore-bench"
    type = "pvh"
    memory = 32
    vcpus = 1
    kernel = "\(guest)"
    cmdline = "mode=bench samples=\(samples)"
    """
  }

  /// One run's figures, or nil if a line is missing or a round trip failed.
  public static func sample(from lines: [String]) -> Sample? {
    func number(after marker: String) -> Double? { ConsoleFigures.number(after: marker, in: lines) }
    guard lines.contains(where: { $0.contains("guest-xenstore: bench-replies ok") }),
          let hypercall = number(after: "guest-xenstore: bench null-hypercall median "),
          let read = number(after: "guest-xenstore: bench read median "),
          let write = number(after: "guest-xenstore: bench write median "),
          let readSend = number(after: "guest-xenstore: bench read-send median "),
          let writeSend = number(after: "guest-xenstore: bench write-send median "),
          let readGeneral = number(after: "guest-xenstore: bench read-general median ") else { return nil }
    return Sample(hypercall: hypercall, read: read, write: write, readSend: readSend, writeSend: writeSend, readGeneral: readGeneral)
  }

  public static func report(_ samples: [Sample], samplesPerRun: Int, icount: Bool) -> String {
    let unit = icount ? "instructions (-icount)" : "TSC cycles"
    let hypercall = HypercallBenchmark.median(samples.map(\.hypercall))
    let read = HypercallBenchmark.median(samples.map(\.read))
    let write = HypercallBenchmark.median(samples.map(\.write))
    let readSend = HypercallBenchmark.median(samples.map(\.readSend))
    let writeSend = HypercallBenchmark.median(samples.map(\.writeSend))
    let readGeneral = HypercallBenchmark.median(samples.map(\.readGeneral))
    func ratio(_ value: Double) -> String { hypercall > 0 ? String(format: "%.1fx", value / hypercall) : "-" }
    let verdict = hypercall > 0 && read / hypercall <= targetRatio ? "met" : "MISSED"
    var text = "xenstore round trips from a domain, median of \(samples.count) run(s) of \(samplesPerRun) samples, in \(unit)\n\n"
    text += "| round trip | median | vs null hypercall | target |\n|---|---|---|---|\n"
    text += String(format: "| null hypercall (xen_version 0) | %.0f | 1.0x | |\n", hypercall)
    text += String(format: "| XS_READ of a node | %.0f | %@ | <= %.0fx: %@ |\n", read, ratio(read), targetRatio, verdict)
    text += String(format: "| the same XS_READ through the general client (arrays, strings) | %.0f | %@ | |\n", readGeneral, ratio(readGeneral))
    text += String(format: "| XS_WRITE of a node | %.0f | %@ | |\n", write, ratio(write))
    text += String(format: "| the read's EVTCHNOP_send alone (the store's share) | %.0f | %@ | |\n", readSend, ratio(readSend))
    text += String(format: "| the write's EVTCHNOP_send alone (the store's share) | %.0f | %@ | |\n", writeSend, ratio(writeSend))
    if hypercall > 0 && read / hypercall > targetRatio {
      text += String(format: "\nA read misses the target by %.1fx (%.0f over %.0f).\n", read / (hypercall * targetRatio), read - hypercall * targetRatio, hypercall * targetRatio)
    }
    return text
  }
}
