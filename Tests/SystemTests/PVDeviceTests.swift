import Foundation
import Testing
import VisorKit

extension Serialized {
  /// PV disks and NICs through a Linux driver domain (docs/pv-devices.md): the stock cloud kernel
  /// with the driver initramfs serves xen-blkback and xen-netback; stock frontends load
  /// xen-blkfront and xen-netfront at boot, and their disk and vif come up with no command typed.
  @Suite("PV devices") struct PVDevices {
    /// A disk image that could not be made (not a missing tool: a failure).
    struct ImageError: Error, CustomStringConvertible {
      var description: String
    }

    /// mkfs.ext4, or a skip if e2fsprogs is not installed.
    static func mkfs() throws -> String {
      for candidate in ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"] where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
      }
      if let found = HostTools.find("mkfs.ext4") { return found }
      throw SystemImage.Missing(description: "mkfs.ext4 is not installed (e2fsprogs): the PV device tests need it for their disk images")
    }

    /// A 16 MiB ext4 image `name`.img in `folder` holding hello.txt with `text`.
    static func ext4Image(_ name: String, in folder: TemporaryFolder, text: String) throws -> String {
      let mkfs = try mkfs()
      let root = folder.url.appendingPathComponent("\(name)-root")
      try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
      try Data((text + "\n").utf8).write(to: root.appendingPathComponent("hello.txt"))
      let image = folder.url.appendingPathComponent("\(name).img").path
      guard FileManager.default.createFile(atPath: image, contents: nil) else { throw ImageError(description: "cannot create \(image)") }
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
      try handle.truncate(atOffset: 16 << 20)
      try handle.close()
      let (status, output) = try HostTools.run(mkfs, ["-F", "-q", "-d", root.path, image])
      guard status == 0 else { throw ImageError(description: "mkfs.ext4 failed on \(image): \(output)") }
      return image
    }

    /// The driver domain of examples/driver-domain.cfg (`PVDomains.driver`).
    static func driverConfig() throws -> String {
      let folder = try Linux.folder()
      return PVDomains.driver(kernel: "\(folder)/vmlinuz", initramfs: "\(folder)/driver-initrd.cpio")
    }

    /// A frontend with a vif on xenbr0 at `address` and, if `disk` is given, xvda from it.
    static func frontendConfig(name: String, address: String, disk: String?, memory: Int = 256) throws -> String {
      let folder = try Linux.folder()
      return PVDomains.frontend(name: name, kernel: "\(folder)/vmlinuz", initramfs: "\(folder)/initrd.cpio",
                                address: address, disk: disk, memory: memory)
    }

    /// The happy path: web mounts the ext4 file system on its xvda, reads the file on it, writes
    /// one, mounts it again and reads that back; it pings web2 and the driver domain across the
    /// bridge, and web2 pings web and the driver domain; when web is shut down the driver domain's hotplug daemon undoes its devices.
    @Test("A driver domain serves a PV disk and a PV network: ext4 on xvda read and written, pings across the bridge")
    func diskAndNetworkThroughADriverDomain() throws {
      let folder = try TemporaryFolder("swiftvisor-pv")
      defer { folder.remove() }
      let image = try Self.ext4Image("disk", in: folder, text: "hello from xvda")
      let configs = [
        try Self.driverConfig(),
        try Self.frontendConfig(name: "web", address: "10.0.0.2", disk: image),
        try Self.frontendConfig(name: "web2", address: "10.0.0.3", disk: nil),
      ]
      let switchFocus = "\u{1}\u{1}\u{1}"
      let input = [
        SerialInput.after("(d2) swiftvisor:linux /", send: switchFocus),
        // The driver domain may still be booting: xvda appears when its backend connects.
        SerialInput.after("console input: domain 2 (web)",
                          send: "until [ -b /dev/xvda ]; do sleep 1; done; mkdir -p /mnt; mount -t ext4 /dev/xvda /mnt && cat /mnt/hello.txt && echo round-trip-$((6*7)) > /mnt/new.txt && umount /mnt && mount -t ext4 /dev/xvda /mnt && cat /mnt/new.txt; umount /mnt\n"),
        // web2 may still be booting: the first ping waits for it.
        SerialInput.after("(d2) round-trip-42",
                          send: "until ping -c 1 -W 2 10.0.0.3 >/dev/null; do sleep 1; done; ping -c 3 10.0.0.3; ping -c 3 10.0.0.1; echo pings-$((1+1))\n"),
        SerialInput.after("(d2) pings-2", send: switchFocus),
        // And back from web2: to web and to the driver domain.
        SerialInput.after("console input: domain 3 (web2)", send: "ping -c 3 10.0.0.2; ping -c 3 10.0.0.1; echo pings-$((1+2))\n"),
        SerialInput.after("(d3) pings-3", send: switchFocus),
        SerialInput.after("console input: the hypervisor", send: "shutdown web\r"),
        SerialInput.after("xen-hotplug: vbd 2/51712: gone", send: "q"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 600, input: input)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectAllInputSent(result, input)
      expectLines(result, [
        // Without "(d1) ": the first may share its line with the driver domain's prompt.
        "xen-hotplug: vbd 2/51712: /images/web-xvda.img on /dev/loop0 (read-write), physical-device 7:0, hotplug-status connected",
        "xen-hotplug: vif 2/0: vif2.0 joined xenbr0 and is up, hotplug-status connected",
        "xen-hotplug: vif 3/0: vif3.0 joined xenbr0 and is up, hotplug-status connected",
        "(d2) swiftvisor-initramfs: modules loaded: xen-blkfront xen-netfront",
        "(d2) swiftvisor-initramfs: eth0 10.0.0.2/24",
        "(d2) hello from xvda",
        "(d2) round-trip-42",
        "(d2) pings-2",
        "console: shutdown: asked domain 2 (web) to poweroff (control/shutdown)",
        "domain 2 (web): every vcpu is down: poweroff",
        "xen-hotplug: vbd 2/51712: gone, /dev/loop0 detached",
      ])
      // Both of web's pings (web2, the driver domain) and both of web2's (web, the driver domain).
      for domain in ["(d2)", "(d3)"] {
        let allAnswered = result.lines.filter { $0.text == "\(domain) 3 packets transmitted, 3 packets received, 0% packet loss" }
        #expect(allAnswered.count == 2, "\(domain)\n\(context(result))")
      }
      #expect(result.lines.contains { $0.text.hasPrefix("(d2) 64 bytes from 10.0.0.3") }, "\(context(result))")
      #expect(result.lines.contains { $0.text.hasPrefix("(d2) 64 bytes from 10.0.0.1") }, "\(context(result))")
      #expect(!result.lines.contains { $0.text.hasPrefix("(d2)") && $0.text.contains("EXT4-fs error") }, "\(context(result))")
      expectExit(result, .quit)
    }
  }
}
