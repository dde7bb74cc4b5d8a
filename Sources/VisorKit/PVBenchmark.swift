import Foundation

/// `visor bench pv`: what PV devices through a Linux driver domain deliver and cost. One boot
/// of three domains: `drv` (the driver domain of examples/driver-domain.cfg), `web` with a raw
/// disk and a vif at 10.0.0.2, and `web2` with a vif at 10.0.0.3. From web's shell, in order:
/// a sequential read of the whole disk through xen-blkfront and a sequential write of it (busybox
/// dd with O_DIRECT, so the page cache is out of it), a TCP transfer to web2 through netback and
/// the bridge (busybox dd into nc), and the same transfer to web itself (loopback: the floor a
/// transfer inside one domain sets). Around each transfer the hypervisor console's `stats` line
/// of each domain is read, so each transfer's exits and hypercalls (all domains together) are
/// counted and divided by the megabytes moved. Wall-clock rates under TCG are noisy, and busybox
/// dd's own: they compare transfers within one run, not with hardware.
public enum PVBenchmark {
  /// The disk's size and each transfer's, in MiB.
  public static let megabytes = 64
  public static let pcpus = 3
  /// The shells' prompts and the console's focus messages the script waits for.
  static let switchFocus = "\u{1}\u{1}\u{1}"

  public enum Transfer: Int, CaseIterable, Sendable {
    case diskRead, diskWrite, network, loopback

    public var title: String {
      switch self {
      case .diskRead: "disk read, xen-blkfront → xen-blkback (dd, O_DIRECT, 1 MiB blocks)"
      case .diskWrite: "disk write, xen-blkfront → xen-blkback (dd, O_DIRECT, 1 MiB blocks)"
      case .network: "TCP web → web2 through netback and the bridge (dd into nc, 64 KiB blocks)"
      case .loopback: "TCP inside web, to itself (loopback: no device, the floor)"
      }
    }

    /// What web types for it: the transfer between two readings of /proc/uptime (busybox dd
    /// prints no rate), then a line "pv-time N START END" and a marker whose arithmetic the
    /// echo of the command line does not show (`marker`).
    var command: String {
      let count = PVBenchmark.megabytes
      let transfer = switch self {
      case .diskRead: "dd if=/dev/xvda of=/dev/null bs=1M count=\(count) iflag=direct"
      case .diskWrite: "dd if=/dev/zero of=/dev/xvda bs=1M count=\(count) oflag=direct conv=fsync"
      case .network: "dd if=/dev/zero bs=64k count=\(count * 16) | nc 10.0.0.3 5000"
      case .loopback: "dd if=/dev/zero bs=64k count=\(count * 16) | nc 127.0.0.1 5001"
      }
      return "s=$(cut -d' ' -f1 /proc/uptime); \(transfer); e=$(cut -d' ' -f1 /proc/uptime); echo pv-time \(rawValue) $s $e; echo pv-$((\(rawValue)+100))-done\n"
    }

    var marker: String { "(d2) pv-\(rawValue + 100)-done" }
  }

  /// The three domains' configurations; `disk` is the raw image web's xvda is made from.
  public static func configs(kernel: String, initramfs: String, driverInitramfs: String, disk: String) -> [(name: String, text: String)] {
    [
      ("drv", PVDomains.driver(kernel: kernel, initramfs: driverInitramfs, memory: 384)),
      ("web", PVDomains.frontend(name: "web", kernel: kernel, initramfs: initramfs, address: "10.0.0.2", disk: disk)),
      ("web2", PVDomains.frontend(name: "web2", kernel: kernel, initramfs: initramfs, address: "10.0.0.3", disk: nil)),
    ]
  }

  /// The console script. The input starts on domain 1 (drv) and Ctrl-A three times moves it
  /// along drv, web, web2 and the hypervisor; each move is one chunk, released by the line that
  /// says where the previous one went.
  public static func input() -> [SerialInput] {
    var chunks: [SerialInput] = []
    let stops = ["console input: domain 1 (drv)", "console input: domain 2 (web)", "console input: domain 3 (web2)", "console input: the hypervisor"]
    var focus = 0
    var waitFor = "(d2) swiftvisor:linux /"
    func move(to target: Int) {
      while focus != target {
        chunks.append(.after(waitFor, send: switchFocus))
        focus = (focus + 1) % stops.count
        waitFor = stops[focus]
      }
    }
    func send(_ text: String, then line: String) {
      chunks.append(.after(waitFor, send: text))
      waitFor = line
    }
    func stats() {
      move(to: 3)
      send("stats\r", then: "console: stats: domain 3 (web2)")
    }
    move(to: 1)
    send("until [ -b /dev/xvda ]; do sleep 1; done; until ping -c 1 -W 2 10.0.0.3 >/dev/null; do sleep 1; done; nc -l -p 5001 >/dev/null & echo pv-$((2+2))-ready\n",
         then: "(d2) pv-4-ready")
    move(to: 2)
    send("nc -l -p 5000 >/dev/null & sleep 1; echo pv-$((3+3))-listening\n", then: "(d3) pv-6-listening")
    stats()
    for transfer in Transfer.allCases {
      move(to: 1)
      send(transfer.command, then: transfer.marker)
      stats()
    }
    chunks.append(.after(waitFor, send: "q"))
    return chunks
  }

  /// A domain's counts from one `stats` line.
  public struct Counts: Equatable, Sendable {
    public var exits: Double
    public var hypercalls: Double
  }

  public struct Row: Sendable {
    public var transfer: Transfer
    public var megabytesPerSecond: Double
    public var exitsPerMiB: Double
    public var hypercallsPerMiB: Double
  }

  /// Each transfer's rate (from its "pv-time N START END" line: MiB over the seconds of web's
  /// uptime it took) and, from the `stats` snapshots around it (every domain's counts summed),
  /// its exits and hypercalls per MiB; nil if a line is missing.
  public static func rows(from lines: [String]) -> [Row]? {
    var rates: [Double] = []
    for line in lines where line.hasPrefix("(d2) pv-time ") {
      let fields = line.dropFirst("(d2) pv-time ".count).split(separator: " ").compactMap { Double($0) }
      guard fields.count == 3, Int(fields[0]) == rates.count, fields[2] > fields[1] else { return nil }
      rates.append(Double(megabytes) / (fields[2] - fields[1]))
    }
    // Snapshots: groups of stats lines, one per `stats` (ended by web2's, the last domain's).
    var snapshots: [Counts] = []
    var current = Counts(exits: 0, hypercalls: 0)
    for line in lines where line.contains("console: stats: domain ") {
      current.exits += ConsoleFigures.number(after: "exits: ", in: [line]) ?? 0
      current.hypercalls += ConsoleFigures.number(after: "hypercall ", in: [line]) ?? 0
      if line.contains("console: stats: domain 3 (web2)") {
        snapshots.append(current)
        current = Counts(exits: 0, hypercalls: 0)
      }
    }
    let transfers = Transfer.allCases
    guard rates.count == transfers.count, snapshots.count == transfers.count + 1 else { return nil }
    let size = Double(megabytes)
    return transfers.enumerated().map { index, transfer in
      Row(transfer: transfer, megabytesPerSecond: rates[index],
          exitsPerMiB: (snapshots[index + 1].exits - snapshots[index].exits) / size,
          hypercallsPerMiB: (snapshots[index + 1].hypercalls - snapshots[index].hypercalls) / size)
    }
  }

  public static func report(_ rows: [Row]) -> String {
    var text = "PV devices through the driver domain, one run (\(megabytes) MiB each; wall clock under TCG)\n\n"
    text += "| transfer | MiB/s | exits per MiB | hypercalls per MiB |\n|---|---|---|---|\n"
    for row in rows {
      text += String(format: "| %@ | %.1f | %.0f | %.0f |\n", row.transfer.title, row.megabytesPerSecond, row.exitsPerMiB, row.hypercallsPerMiB)
    }
    if let network = rows.first(where: { $0.transfer == .network }), let loopback = rows.first(where: { $0.transfer == .loopback }),
       loopback.megabytesPerSecond > 0 {
      text += String(format: "\nBetween two domains through netback: %.0f%% of the rate inside one domain.\n",
                     network.megabytesPerSecond / loopback.megabytesPerSecond * 100)
    }
    text += "Exits and hypercalls are every domain's, counted by the hypervisor around each transfer (`stats`).\n"
    return text
  }
}
