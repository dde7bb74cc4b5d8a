import Foundation
import Testing
import VisorKit

extension Serialized {
  /// PV devices when something goes wrong (docs/pv-devices.md): a frontend or the driver domain
  /// dies in the middle of its work, or a frontend sends garbage. The driver domain is the stock
  /// cloud kernel with the driver initramfs (xen-blkback, xen-netback, a bridge and xen-hotplug);
  /// the frontends are the stock kernel with xen-blkfront and xen-netfront loaded at boot, and
  /// guest-hostile-blk. They need SWIFTVISOR_LINUX and mkfs.ext4.
  @Suite("PV device failures") struct PVFailures {
    /// Ctrl-A three times: console input moves to the next domain (then the hypervisor).
    private static let switchFocus = "\u{1}\u{1}\u{1}"

    // xen-hotplug's lines are matched without the "(d1) " prefix: the first line after the
    // driver domain's prompt follows its "# " on the same console line.

    /// drv, web (10.0.0.2) and web2 (10.0.0.3), each frontend with its own disk: domains 1, 2, 3.
    private static func threeDomains(in folder: TemporaryFolder) throws -> [String] {
      let webImage = try PVDevices.ext4Image("web", in: folder, text: "hello from web's disk")
      let web2Image = try PVDevices.ext4Image("web2", in: folder, text: "hello from web2's disk")
      return [
        try PVDevices.driverConfig(),
        try PVDevices.frontendConfig(name: "web", address: "10.0.0.2", disk: webImage, memory: 192),
        try PVDevices.frontendConfig(name: "web2", address: "10.0.0.3", disk: web2Image, memory: 192),
      ]
    }

    /// Typed in a frontend: waits until its disk is there and the driver domain (and `alsoPing`)
    /// answer pings, then prints `<tag>-5-ready` (computed, so that the shell's echo of the
    /// command, which may wrap, cannot contain it).
    private static func waitReady(_ tag: String, alsoPing: String? = nil) -> String {
      let other = alsoPing.map { " && ping -c 1 -W 2 \($0) >/dev/null" } ?? ""
      return "until [ -b /dev/xvda ] && ping -c 1 -W 2 10.0.0.1 >/dev/null\(other); do sleep 1; done; echo \(tag)-$((2+3))-ready\n"
    }

    /// Typed in a frontend: disk I/O in the background until the domain ends, reads of its first
    /// 16 MiB (the page cache dropped each round, so that they reach the backend) and synced
    /// writes of 4 MiB at 4 MiB.
    private static let ioLoop = "(while :; do dd if=/dev/xvda of=/dev/null bs=64k count=256 2>/dev/null; dd if=/dev/zero of=/dev/xvda bs=64k count=64 seek=64 conv=fsync 2>/dev/null; echo 1 > /proc/sys/vm/drop_caches; done) &"

    /// A driver domain's shell line: wait (at most 20 s) until its backends for `domid`'s disk
    /// and NIC are gone from /sys/bus/xen-backend, then power off.
    private static func poweroffOnceBackendsGone(domid: Int) -> String {
      "i=0; while [ $i -lt 20 ] && { [ -e /sys/bus/xen-backend/devices/vbd-\(domid)-51712 ] || [ -e /sys/bus/xen-backend/devices/vif-\(domid)-0 ]; }; do sleep 1; i=$((i+1)); done; poweroff -f\n"
    }

    /// Reads and writes completed, from a /proc/diskstats line ("(d2)  202 0 xvda 5077 0 … 1287 …");
    /// nil for any other line.
    private static func diskCounts(_ line: String) -> (reads: Int, writes: Int)? {
      let fields = line.split(separator: " ").dropFirst()
      guard fields.count > 7, Int(fields[fields.startIndex]) != nil, fields[fields.startIndex + 2] == "xvda",
            let reads = Int(fields[fields.startIndex + 3]), let writes = Int(fields[fields.startIndex + 7]) else { return nil }
      return (reads, writes)
    }

    /// web crashes (sysrq c) while a loop reads and writes its xvda; the driver domain and web2
    /// run on. The hypervisor keeps the frames of web that the backends map until they unmap
    /// them, which they do once the toolstack has removed web's devices; xen-hotplug undoes web's
    /// loop device and vif; web2 then reads its disk and pings the driver domain. At the end,
    /// with every domain gone, every frame is back.
    @Test("A frontend that crashes in the middle of disk I/O ends alone: its devices go, its mapped grants come back, the other frontend keeps working")
    func frontendCrashesMidIO() throws {
      let folder = try TemporaryFolder("swiftvisor-pvfail")
      defer { folder.remove() }
      let configs = try Self.threeDomains(in: folder)
      let input = [
        SerialInput.after("(d2) swiftvisor:linux /", send: Self.switchFocus),
        // web waits for its own disk and network, and for web2's network.
        SerialInput.after("console input: domain 2 (web)", send: Self.waitReady("web", alsoPing: "10.0.0.3")),
        // Disk statistics twice, 2 s apart, while the loop runs: the I/O is under way.
        SerialInput.after("(d2) web-5-ready", send: Self.ioLoop + " sleep 5; grep -w xvda /proc/diskstats; sleep 2; grep -w xvda /proc/diskstats; echo io-$((1+1))-running\n"),
        SerialInput.after("(d2) io-2-running", send: "echo c > /proc/sysrq-trigger\n"),
        // web's end gives the console input to the next domain, web2; once the driver domain has
        // let go of web's disk, web2 reads its own (from the backend: the cache is dropped) and
        // pings the driver domain.
        SerialInput.after("xen-hotplug: vbd 2/51712: gone",
                          send: "echo 3 > /proc/sys/vm/drop_caches; mkdir -p /mnt; mount -t ext4 /dev/xvda /mnt && cat /mnt/hello.txt; umount /mnt; ping -c 3 -W 5 10.0.0.1; echo web2-$((3+4))-done\n"),
        SerialInput.after("(d3) web2-7-done", send: "poweroff -f\n"),
        // web2's end gives the input to the driver domain, which powers off once its backends
        // have let go of web2's devices (and so unmapped its rings): the toolstack removes them
        // when web2 ends, and the backends' xenwatch takes a moment to see it.
        SerialInput.after("console input: domain 1 (drv)", send: Self.poweroffOnceBackendsGone(domid: 3)),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 500, input: input)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      #expect(!result.contains("isolation check failed"), "\(context(result))")
      expectAllInputSent(result, input)
      expectLines(result, [
        "xen-hotplug: vbd 2/51712: /images/web-xvda.img on /dev/loop",
        "xen-hotplug: vbd 3/51712: /images/web2-xvda.img on /dev/loop",
        "xen-hotplug: vif 2/0: vif2.0 joined xenbr0 and is up, hotplug-status connected",
        "xen-hotplug: vif 3/0: vif3.0 joined xenbr0 and is up, hotplug-status connected",
        "(d2) io-2-running",
        "Kernel panic - not syncing: sysrq triggered crash",
        "domain 2 (web): shutdown: crash (SCHEDOP_shutdown",
        "domain 2 (web): destroyed",
        "xen-hotplug: vbd 2/51712: gone, /dev/loop",
        "xen-hotplug: vif 2/0: gone",
        "(d3) hello from web2's disk",
        "(d3) 3 packets transmitted, 3 packets received, 0% packet loss",
        "domain 3 (web2): every vcpu is down: poweroff",
        "domain 1 (drv): every vcpu is down: poweroff",
        "all domains have ended: 3 built, 2 ended cleanly, 1 did not",
        "memory: all ",
      ])
      // The loop was reading and writing when web crashed: both counts grew between the samples.
      let stats = result.lines.map(\.text).filter { $0.hasPrefix("(d2) ") }.compactMap(Self.diskCounts)
      #expect(stats.count == 2 && stats[1].reads > stats[0].reads && stats[1].writes > stats[0].writes,
              "xvda's statistics: \(stats)\n\(context(result))")
      // web ended by its own hypercall (Linux's panic notifier), not by the hypervisor.
      #expect(!result.contains("crashed:"), "\(context(result))")
      #expect(result.lines(containing: "Kernel panic").allSatisfy { $0.hasPrefix("(d2) ") }, "\(context(result))")
      // The backends mapped web's grants when it ended; the hypervisor kept those frames, and the
      // backends' unmaps (not the driver domain's end) gave the last of them back.
      let kept = result.lines(containing: "domain 2: the frames other domains map stay until they unmap them (").first
      let mappings = kept.flatMap { number(before: " mappings and copies)", in: $0) } ?? 0
      #expect(mappings > 0, "web's grants should be mapped by the backends when it ends: \(kept ?? "no such line")\n\(context(result))")
      let returned = result.firstIndex(of: "domain 2: its last mapped grant is unmapped: every frame returned")
      let driverGone = result.firstIndex(of: "domain 1 (drv): destroyed")
      #expect(returned != nil && driverGone != nil && returned! < driverGone!,
              "the backends should unmap web's grants while the driver domain runs\n\(context(result))")
      #expect(result.lines(containing: "domain 1: ").allSatisfy { !$0.contains("grant mappings released") },
              "the driver domain should hold no grant mappings when it ends\n\(context(result))")
      expectExit(result, .domainFailed)
    }

    /// The driver domain crashes (sysrq c) while web reads and writes its xvda. The hypervisor
    /// releases the driver domain's mappings of the frontends' grants and removes the backend
    /// nodes it served, which say Closed (state 6) until their frontends go; the frontends run on,
    /// their vbd and vif go to Closed, and they power off cleanly. The disk requests that were in
    /// flight never complete (the loop's dd waits in state D, and so would a sync: printed, not
    /// asserted), and packets go nowhere.
    @Test("The driver domain crashes while a frontend does disk I/O: its mappings of their grants are released, the frontends run on and power off")
    func driverDomainCrashesMidIO() throws {
      let folder = try TemporaryFolder("swiftvisor-pvfail")
      defer { folder.remove() }
      let configs = try Self.threeDomains(in: folder)
      // The loop counts its rounds in /io-rounds.
      let countingLoop = Self.ioLoop.replacingOccurrences(of: "; done) &", with: "; n=$((n+1)); echo $n > /io-rounds; done) &")
        .replacingOccurrences(of: "(while", with: "(n=0; while")
      let input = [
        SerialInput.after("(d2) swiftvisor:linux /", send: Self.switchFocus),
        SerialInput.after("console input: domain 2 (web)", send: Self.waitReady("web", alsoPing: "10.0.0.3")),
        SerialInput.after("(d2) web-5-ready", send: countingLoop + " sleep 3; echo rounds-$(cat /io-rounds); echo io-$((1+1))-running\n"),
        // To the driver domain: web2, the hypervisor, drv.
        SerialInput.after("(d2) io-2-running", send: Self.switchFocus),
        SerialInput.after("console input: domain 3 (web2)", send: Self.switchFocus),
        SerialInput.after("console input: the hypervisor", send: Self.switchFocus),
        SerialInput.after("console input: domain 1 (drv)", send: "echo c > /proc/sysrq-trigger\n"),
        // drv's end gives the input to web: is it alive, what do its devices say, is the loop
        // still going (rounds 10 s apart), which processes wait on the disk (state D)?
        SerialInput.after("domain 1 (drv): destroyed",
                          send: "echo alive-$((2+3)); cat /sys/bus/xen/devices/vbd-51712/state /sys/bus/xen/devices/vif-0/state; echo rounds-$(cat /io-rounds); sleep 10; echo rounds-$(cat /io-rounds); for p in /proc/[0-9]*; do grep -q '^State:.D' $p/status 2>/dev/null && echo \"state D: $(cat $p/comm)\"; done; echo web-$((6+1))-checked\n"),
        SerialInput.after("(d2) web-7-checked", send: "ping -c 2 -W 2 10.0.0.1; echo net-$((1+2))-checked\n"),
        // -n: no sync first. Writes to xvda cannot complete, and sync would wait for them forever.
        SerialInput.after("(d2) net-3-checked", send: "poweroff -n -f\n"),
        // web's end gives the input to web2.
        SerialInput.after("console input: domain 3 (web2)", send: "echo alive-$((3+3)); cat /sys/bus/xen/devices/vbd-51712/state; poweroff -f\n"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 500, input: input)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      #expect(!result.contains("isolation check failed"), "\(context(result))")
      expectAllInputSent(result, input)
      expectLines(result, [
        "xen-hotplug: vbd 2/51712: /images/web-xvda.img on /dev/loop",
        "xen-hotplug: vif 2/0: vif2.0 joined xenbr0 and is up, hotplug-status connected",
        "xen-hotplug: vif 3/0: vif3.0 joined xenbr0 and is up, hotplug-status connected",
        "(d2) io-2-running",
        "Kernel panic - not syncing: sysrq triggered crash",
        "domain 1 (drv): shutdown: crash (SCHEDOP_shutdown",
        "domain 1 (drv): destroyed",
        "(d2) alive-5",
        "(d2) Closed",
        // Nothing answers on the bridge any more.
        "(d2) 2 packets transmitted, 0 packets received, 100% packet loss",
        "domain 2 (web): every vcpu is down: poweroff",
        "(d3) alive-6",
        "(d3) Closed",
        "domain 3 (web2): every vcpu is down: poweroff",
        "all domains have ended: 3 built, 2 ended cleanly, 1 did not",
        "memory: all ",
      ])
      #expect(!result.contains("crashed:"), "\(context(result))")
      // web's vbd and vif both read Closed: the closed backend directories outlived the driver domain.
      let closed = result.lines.filter { $0.text == "(d2) Closed" }
      #expect(closed.count == 2, "\(context(result))")
      #expect(result.lines(containing: "Kernel panic").allSatisfy { $0.hasPrefix("(d1) ") }, "only the driver domain panics\n\(context(result))")
      // The driver domain mapped the frontends' grants (rings, persistent grants, packets): its
      // end released those mappings, so nothing of web or web2 is mapped when they end.
      let released = result.lines(containing: "domain 1: ").first { $0.contains(" grant mappings released") }
      let count = released.flatMap { number(before: " grant mappings released", in: $0) } ?? 0
      #expect(count > 0, "the driver domain's end should release its mappings: \(released ?? "no such line")\n\(context(result))")
      #expect(!result.contains("the frames other domains map stay"), "\(context(result))")
      expectExit(result, .domainFailed)
    }

    /// guest-hostile-blk plays blkfront for its vbd: it connects to blkback as blkfront does, then
    /// puts requests no sane frontend sends on the ring (bad and ungranted refs, absurd segment
    /// counts, an unknown operation, indirect and discard requests past the disk's end), and last
    /// a producer index 1000 entries ahead of the backend's consumer. blkback answers each request
    /// with an error and stops reading that ring; the driver domain runs on, web (beside it)
    /// reads its disk and pings the driver domain afterwards, and the ring page the backend still
    /// maps when guest-hostile-blk powers off comes back once the backend lets go of it.
    @Test("A hostile blkfront's garbage requests are refused; the driver domain and the other frontend keep working")
    func hostileBlkfront() throws {
      let folder = try TemporaryFolder("swiftvisor-pvfail")
      defer { folder.remove() }
      let webImage = try PVDevices.ext4Image("web", in: folder, text: "hello from web's disk")
      let hostileImage = folder.url.appendingPathComponent("hostile.img").path
      guard FileManager.default.createFile(atPath: hostileImage, contents: Data(count: 1 << 20)) else {
        throw PVDevices.ImageError(description: "cannot create \(hostileImage)")
      }
      let configs = [
        try PVDevices.driverConfig(),
        try PVDevices.frontendConfig(name: "web", address: "10.0.0.2", disk: webImage, memory: 192),
        try SystemGuests.config(name: "hostile", guest: "guest-hostile-blk", cmdline: "vdev=51712",
                                extra: "disk = [ 'vdev=xvda, format=raw, access=rw, backend=drv, target=\(hostileImage)' ]\n"),
      ]
      let input = [
        // Once guest-hostile-blk has ended, to web; a newline brings a fresh prompt (or the
        // first one), whether or not its shell was up yet.
        SerialInput.after("domain 3 (hostile): destroyed", send: Self.switchFocus),
        SerialInput.after("console input: domain 2 (web)", send: "\n"),
        SerialInput.after("(d2) swiftvisor:linux /", send: Self.waitReady("web")),
        SerialInput.after("(d2) web-5-ready",
                          send: "echo 3 > /proc/sys/vm/drop_caches; mkdir -p /mnt; mount -t ext4 /dev/xvda /mnt && cat /mnt/hello.txt; umount /mnt; ping -c 3 -W 5 10.0.0.1; echo web-$((3+4))-done\n"),
        SerialInput.after("(d2) web-7-done", send: "poweroff -f\n"),
        // web's end gives the input to the driver domain: what did blkback log?
        SerialInput.after("console input: domain 1 (drv)",
                          send: "dmesg | grep -e blkback -e bogus -e 'access denied'; echo drv-$((4+4))-checked; poweroff -f\n"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 400, input: input)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      #expect(!result.contains("isolation check failed"), "\(context(result))")
      expectAllInputSent(result, input)
      expectLines(result, [
        "(d3) guest-hostile-blk: handshake-written ok",
        "(d3) guest-hostile-blk: backend-connected ok",
        "(d3) guest-hostile-blk: all-answered ok 11 responses",
        "(d3) guest-hostile-blk: all-refused ok 11 errors",
        "(d3) guest-hostile-blk: runaway-producer-ignored ok",
        "(d3) guest-hostile-blk: done",
        "domain 3 (hostile): shutdown: poweroff",
        "(d2) hello from web's disk",
        "(d2) 3 packets transmitted, 3 packets received, 0% packet loss",
        "(d2) web-7-done",
        "Frontend provided bogus ring requests",
        "(d1) drv-8-checked",
        "domain 2 (web): every vcpu is down: poweroff",
        "domain 1 (drv): every vcpu is down: poweroff",
        "all domains have ended: 3 built, 3 ended cleanly, 0 did not",
        "memory: all ",
      ])
      #expect(!result.contains("guest-hostile-blk: FAIL") && !result.lines.contains { $0.text.hasPrefix("(d3)") && $0.text.contains(" FAIL") },
              "\(context(result))")
      for word in ["Kernel panic", "BUG:", "Oops", "general protection"] {
        #expect(!result.contains(word), "\(word)\n\(context(result))")
      }
      // The backend still mapped the ring page when guest-hostile-blk ended; it let go of it
      // while the driver domain ran.
      let returned = result.firstIndex(of: "domain 3: its last mapped grant is unmapped: every frame returned")
      let driverGone = result.firstIndex(of: "domain 1 (drv): destroyed")
      #expect(result.contains("domain 3: the frames other domains map stay until they unmap them ("), "\(context(result))")
      #expect(returned != nil && driverGone != nil && returned! < driverGone!, "\(context(result))")
      expectExit(result, .clean)
    }
  }
}
