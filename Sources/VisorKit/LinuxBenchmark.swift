import Foundation
import Hypervisor

/// `visor bench linux`: how long Debian's kernel takes to boot to its busybox shell as a PVH
/// domain, beside the same kernel and initramfs booted by QEMU's own PVH loader with no
/// hypervisor (the floor), and what the hypervisor did meanwhile (exits by kind).
///
/// Both runs are timed the same way: seconds from QEMU's start to the initramfs's
/// `swiftvisor-initramfs: cpus: N` line, printed just before the shell would start (with
/// `swiftvisor.auto` the /init powers off there instead). The hypervisor's figure so includes
/// its own boot and the domain build; the row also shows when the domain's kernel started.
public enum LinuxBenchmark {
  /// The target: the boot under the hypervisor at most this many times the floor.
  public static let target = 1.5
  /// The domain's memory, and the floor machine's.
  public static let guestMemoryMiB = 256
  /// Pcpus for the domain under the hypervisor (it has 1 or 2 vcpus on them), and QEMU's CPUs:
  /// those and pcpu 0, which runs no guests under TCG (docs/known-issues.md).
  public static let pcpus = 2
  public static let qemuCPUs = pcpus + 1

  /// The initramfs's line that marks "the shell is next".
  public static func bannerLine(vcpus: Int) -> String { "swiftvisor-initramfs: cpus: \(vcpus)" }

  /// Under `-icount` (`visor bench linux --icount`): the virtual-time targets. The boot to the
  /// banner at most this many times the floor, and the hypervisor's own boot with the domain
  /// build (before the domain's first instruction) at most this many seconds.
  public static let virtualTarget = 1.15
  public static let virtualBeforeDomainTarget = 0.3

  /// The kernel's uptime at the banner, in seconds: the initramfs prints
  /// `swiftvisor-initramfs: uptime 1.23` (from /proc/uptime) right after it. Under `-icount`
  /// that is virtual time from the kernel's clock start to the banner, in either run.
  public static func uptime(in lines: [String]) -> Double? {
    let marker = "swiftvisor-initramfs: uptime "
    guard let line = lines.first(where: { $0.contains(marker) }), let range = line.range(of: marker) else { return nil }
    return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
  }

  /// When domain `name` was built, in the hypervisor's system time (seconds since it started):
  /// its build line ends `..., at 123456 us`. Under `-icount`, virtual time.
  public static func builtAt(in lines: [String], name: String) -> Double? {
    guard let line = lines.first(where: { $0.contains("(\(name)): built:") }), let range = line.range(of: ", at ") else {
      return nil
    }
    return Double(line[range.upperBound...].prefix { $0.isNumber }).map { $0 / 1_000_000 }
  }

  /// The kernel command line: the same in both runs but for the console.
  public static func cmdline(console: String) -> String { "console=\(console) loglevel=4 swiftvisor.auto" }

  /// The domain's configuration under the hypervisor.
  public static func config(kernel: String, initramfs: String, vcpus: Int) -> String {
    """
    name = "linux"
    type = "pvh"
    memory = \(guestMemoryMiB)
    vcpus = \(vcpus)
    kernel = "\(kernel)"
    ramdisk = "\(initramfs)"
    cmdline = "\(cmdline(console: "hvc0"))"

    """
  }

  /// Writes the ELF kernel inside the bzImage at `bzImage` to `output`: QEMU's PVH loader takes
  /// an ELF with the PVH note, not a bzImage.
  public static func writeELF(fromBzImage bzImage: String, to output: String) throws(VisorError) {
    guard let bytes = FileManager.default.contents(atPath: bzImage) else {
      throw VisorError(.badConfig, "\(bzImage): cannot read the kernel")
    }
    let elf: [UInt8]
    do throws(BzImageError) {
      elf = try BzImage.extractELF(Array(bytes))
    } catch {
      throw VisorError(.badConfig, "\(bzImage): " + String(decoding: error.message(), as: UTF8.self))
    }
    guard FileManager.default.createFile(atPath: output, contents: Data(elf)) else {
      throw VisorError(.checkFailed, "cannot write \(output)")
    }
  }

  /// A domain's exits as the hypervisor reports them when it destroys the domain
  /// (`domain 1 (linux): exits: 812345 in 4200 ms (193415 per s): interrupt 1000, io 3000, …`).
  public struct Exits: Sendable {
    public var total: UInt64
    public var milliseconds: UInt64
    public var byClass: [(name: String, count: UInt64)]

    public init(total: UInt64, milliseconds: UInt64, byClass: [(name: String, count: UInt64)]) {
      self.total = total
      self.milliseconds = milliseconds
      self.byClass = byClass
    }

    public var perSecond: Double { milliseconds > 0 ? Double(total) * 1000 / Double(milliseconds) : 0 }
  }

  /// The exits line of domain `domain` among the console lines, parsed; nil if there is none
  /// or it does not parse.
  public static func exits(in lines: [String], domain: Int = 1) -> Exits? {
    let marker = "domain \(domain) ("
    guard let line = lines.first(where: { $0.contains(marker) && $0.contains("): exits: ") }),
          let start = line.range(of: "): exits: ") else { return nil }
    let text = line[start.upperBound...]
    // "<total> in <ms> ms (<rate> per s)[: name count, name count …]"
    let words = text.split(separator: " ")
    guard words.count >= 4, let total = UInt64(words[0]), words[1] == "in", let ms = UInt64(words[2]) else { return nil }
    var byClass: [(name: String, count: UInt64)] = []
    if let colon = text.range(of: "per s): ") {
      for part in text[colon.upperBound...].split(separator: ",") {
        let pair = part.split(separator: " ")
        guard pair.count == 2, let count = UInt64(pair[1]) else { return nil }
        byClass.append((String(pair[0]), count))
      }
    }
    return Exits(total: total, milliseconds: ms, byClass: byClass)
  }

  public struct Row: Sendable {
    public var vcpus: Int
    /// Seconds from QEMU's start to the banner, QEMU's PVH loader, no hypervisor.
    public var floor: [Double] = []
    /// The same under the hypervisor.
    public var hypervisor: [Double] = []
    /// Under the hypervisor: seconds from QEMU's start to the domain's start (hypervisor boot
    /// and domain build).
    public var domainStart: [Double] = []
    /// Under the hypervisor: the domain's exits, per run.
    public var exits: [Exits] = []
    /// Runs that failed (either kind), with why.
    public var failures: [String] = []
    /// With `--icount`, in virtual seconds: the floor kernel's uptime at the banner; the
    /// domain's start plus its kernel's uptime at the banner; the domain's start.
    public var virtualFloor: [Double] = []
    public var virtualHypervisor: [Double] = []
    public var virtualDomainStart: [Double] = []
    public var hasVirtualFigures: Bool { !virtualFloor.isEmpty || !virtualHypervisor.isEmpty }

    public init(vcpus: Int) { self.vcpus = vcpus }
  }

  public static func report(rows: [Row], runs: Int) -> String {
    func seconds(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "-" }
    func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
    let median = BootBenchmark.median

    var out = "Linux boot benchmark: QEMU TCG, median of \(runs) run\(runs == 1 ? "" : "s"); seconds from QEMU's start to the initramfs banner\n"
    out += "  vcpus   floor (QEMU PVH loader)   Swiftvisor   of which before the domain starts   ratio   target <= \(target)x\n"
    for row in rows {
      let floor = median(row.floor), hv = median(row.hypervisor)
      let ratio = (floor != nil && hv != nil && floor! > 0) ? hv! / floor! : nil
      let verdict = ratio.map { $0 <= target ? "ok" : "MISSED" } ?? "no data"
      out += "  " + pad(String(row.vcpus), 5) + "   " + pad(seconds(floor), 23) + "   " + pad(seconds(hv), 10)
        + "   " + pad(seconds(median(row.domainStart)), 33) + "   " + pad(ratio.map { String(format: "%.2f", $0) } ?? "-", 5)
        + "   " + verdict + "\n"
    }
    out += "\nThe hypervisor's share: the domain's exits from its start to its poweroff (medians)\n"
    for row in rows where !row.exits.isEmpty {
      let total = median(row.exits.map { Double($0.total) }) ?? 0
      let rate = median(row.exits.map(\.perSecond)) ?? 0
      out += "  \(row.vcpus) vcpu\(row.vcpus == 1 ? "" : "s"): \(Int(total)) exits, \(Int(rate)) per second\n"
      var names: [String] = []
      for exits in row.exits { for (name, _) in exits.byClass where !names.contains(name) { names.append(name) } }
      var kinds: [(String, Double)] = []
      for name in names {
        let counts = row.exits.map { exits in Double(exits.byClass.first { $0.name == name }?.count ?? 0) }
        kinds.append((name, median(counts) ?? 0))
      }
      for (name, count) in kinds.sorted(by: { $0.1 > $1.1 }) {
        let share = total > 0 ? count / total * 100 : 0
        let perSecond = total > 0 ? rate * count / total : 0
        out += "    " + pad(name, 10) + "  " + pad(String(Int(count)), 9) + "  " + pad(String(format: "%.1f %%", share), 7)
          + "  " + pad(String(Int(perSecond)), 7) + " per s\n"
      }
    }
    if rows.contains(where: \.hasVirtualFigures) {
      out += "\nIn virtual time (-icount: one instruction, one nanosecond): the kernel's clock start to the banner, "
        + "plus, under Swiftvisor, the hypervisor's boot and the domain build before it (firmware left out of both)\n"
      out += "  vcpus   floor   Swiftvisor   before the domain   target <= \(virtualBeforeDomainTarget) s   ratio   target <= \(virtualTarget)x\n"
      for row in rows where row.hasVirtualFigures {
        let floor = median(row.virtualFloor), hv = median(row.virtualHypervisor), before = median(row.virtualDomainStart)
        let ratio = (floor != nil && hv != nil && floor! > 0) ? hv! / floor! : nil
        func verdict(_ met: Bool?) -> String { met.map { $0 ? "ok" : "MISSED" } ?? "no data" }
        out += "  " + pad(String(row.vcpus), 5) + "   " + pad(seconds(floor), 5) + "   " + pad(seconds(hv), 10)
          + "   " + pad(seconds(before), 17) + "   " + pad(verdict(before.map { $0 <= virtualBeforeDomainTarget }), 17)
          + "   " + pad(ratio.map { String(format: "%.2f", $0) } ?? "-", 5) + "   " + verdict(ratio.map { $0 <= virtualTarget }) + "\n"
      }
    }
    for row in rows where !row.failures.isEmpty {
      out += "\n  \(row.vcpus) vcpu\(row.vcpus == 1 ? "" : "s"): \(row.failures.count) run(s) failed and are not in the medians:\n"
      for failure in row.failures { out += "    \(failure)\n" }
    }
    return out
  }
}
