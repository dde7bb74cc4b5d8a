import Foundation

/// Boot timing over repeated runs, and the report `visor bench boot` prints.
public struct BootBenchmark: Sendable {
  /// The image must stay under this size.
  public static let imageSizeTarget = 512 * 1024
  /// Time from QEMU's start to "pcpus online: N" at `targetSMP`.
  public static let bootTimeTarget = 0.5
  public static let targetSMP = 4

  public struct Row: Sendable, Equatable {
    public var smp: Int
    /// Seconds from QEMU's start to the `pcpus online: N` line, per run.
    public var online: [Double]
    /// Seconds from QEMU's start to its exit, per run.
    public var exit: [Double]

    public init(smp: Int, online: [Double] = [], exit: [Double] = []) {
      self.smp = smp
      self.online = online
      self.exit = exit
    }
  }

  /// The console line that marks "all pcpus are up" at `smp`.
  public static func onlineLine(smp: Int) -> String { "pcpus online: \(smp)" }

  /// The median (mean of the middle two for an even count); nil when empty.
  public static func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }

  /// The report: one row per smp, then the image size, each against its target.
  public static func report(rows: [Row], image: ImageFile, runs: Int, icount: Bool) -> String {
    func seconds(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "-" }
    func kib(_ n: some BinaryInteger) -> String { String(format: "%.1f KiB", Double(n) / 1024) }
    func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }

    var out = "Swiftvisor boot benchmark: QEMU TCG\(icount ? " with -icount" : ""), median of \(runs) run\(runs == 1 ? "" : "s")\n"
    out += "  smp   pcpus online (s)   exit (s)\n"
    for row in rows {
      let online = median(row.online)
      var line = "  " + pad(String(row.smp), 3) + "   " + pad(seconds(online), 16) + "   " + pad(seconds(median(row.exit)), 8)
      if row.smp == targetSMP {
        let verdict = online.map { $0 < bootTimeTarget ? "ok" : "MISSED" } ?? "no data"
        line += "   target < \(bootTimeTarget) s to all pcpus online: \(verdict)"
      }
      out += line + "\n"
    }
    func verdict(_ n: some BinaryInteger) -> String { Int(n) < imageSizeTarget ? "ok" : "MISSED" }
    let target = "target < \(imageSizeTarget / 1024) KiB"
    out += "image file:   \(image.fileSize) bytes (\(kib(image.fileSize)))   \(target): \(verdict(image.fileSize))\n"
    out += "image loaded: \(image.loadedMemorySize) bytes (\(kib(image.loadedMemorySize))) = sum of PT_LOAD memsz   "
    out += "\(target): \(verdict(image.loadedMemorySize))\n"
    out += "              of which \(image.loadedFileSize) bytes (\(kib(image.loadedFileSize))) come from the file"
    out += " (code and data); the rest is .bss\n"
    let unloaded = max(0, image.fileSize - Int(image.loadedFileSize))
    out += "              the file's other \(unloaded) bytes (\(kib(unloaded))) are headers, symbols and debug info, never loaded\n"
    return out
  }
}
