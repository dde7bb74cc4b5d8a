import Foundation

/// `visor demo`: the hypervisor with two Linux domains, a Linux driver domain serving them a
/// PV disk and network, and a test guest, on an interactive serial console. The domains'
/// configs are generated here from where the kernel, the initramfs images, the disk image and
/// the guest are.
public enum Demo {
  public struct Domain: Sendable, Equatable {
    public var name: String
    public var config: String
  }

  /// Physical CPUs of the emulated machine. Three: under QEMU's TCG pcpu 0 runs no guests
  /// (docs/known-issues.md), so the domains share pcpus 1 and 2. Its memory is what the
  /// domains need (`MachineMemory`).
  public static let pcpus = 3
  /// The hypervisor's command line: once every domain has ended it stays up, with the console
  /// input on it, until `q`, so the demo ends when the person at the terminal says so.
  public static let cmdline = "ondone=stay"

  /// What the demo's domains are made of (scripts/fetch-linux and the guest build).
  public struct Files: Sendable {
    public var kernel: String
    public var initramfs: String
    public var driverInitramfs: String
    public var disk: String
    public var guest: String

    public init(kernel: String, initramfs: String, driverInitramfs: String, disk: String, guest: String) {
      self.kernel = kernel
      self.initramfs = initramfs
      self.driverInitramfs = driverInitramfs
      self.disk = disk
      self.guest = guest
    }
  }

  /// linux-a (2 vcpus, a PV disk xvda and a vif at 10.0.0.2) and linux-b (1 vcpu, a vif at
  /// 10.0.0.3) with a busybox shell on hvc0; guest-spin, a CPU-bound guest that runs beside them
  /// for a while and powers off; and drv, the driver domain serving the disk and the vifs
  /// (bridge xenbr0, 10.0.0.1). drv comes last so the domains keep the ids they had before it:
  /// a frontend built first gets its device nodes when its driver domain is built.
  public static func domains(_ files: Files) -> [Domain] {
    func linux(_ name: String, vcpus: Int, address: String, disk: Bool) -> Domain {
      Domain(name: name, config: PVDomains.frontend(
        name: name, kernel: files.kernel, initramfs: files.initramfs, address: address,
        disk: disk ? files.disk : nil, vcpus: vcpus, cmdline: "console=hvc0 quiet"))
    }
    return [
      linux("linux-a", vcpus: 2, address: "10.0.0.2", disk: true),
      linux("linux-b", vcpus: 1, address: "10.0.0.3", disk: false),
      Domain(name: "spin", config: """
        name = "spin"
        type = "pvh"
        memory = 16
        vcpus = 1
        kernel = "\(files.guest)"
        cmdline = "iterations=2000000"
        """),
      Domain(name: "drv", config: PVDomains.driver(kernel: files.kernel, initramfs: files.driverInitramfs, cmdline: "console=hvc0 quiet")),
    ]
  }

  public static let banner = """
    Swiftvisor demo: two Linux domains (linux-a with 2 vcpus, linux-b with 1), guest-spin, and
    drv, a Linux driver domain that serves linux-a a PV disk and both a PV network (bridge
    xenbr0: drv 10.0.0.1, linux-a 10.0.0.2, linux-b 10.0.0.3).
    Console input goes to one domain at a time: press Ctrl-A three times to switch (the
    hypervisor says which). In linux-a, try `mount /dev/xvda /mnt; cat /mnt/hello.txt` and
    `ping -c 3 10.0.0.3`. In a Linux shell, Ctrl-C interrupts the command and `poweroff -f`
    ends that domain alone. With the input on the hypervisor, type `shutdown linux-b`,
    `reboot linux-a` or `mem-set linux-a 128` and Enter to ask a domain through xenstore, as xl
    does. To end the demo, switch the input to the hypervisor and press q (once every domain has
    ended, the input is there already).
    """

  /// What visor says when the demo ends, and whether that is a success. A `q` is the demo's
  /// normal way out, whether domains still ran (`.quit`) or not (`.clean`).
  public static func ending(_ exit: VisorExit) -> (success: Bool, message: String) {
    switch exit {
    case .clean: (true, "the demo ended: every domain had ended cleanly")
    case .quit: (true, "the demo ended: quit from the hypervisor's console")
    default: (false, "the demo ended: \(exit.description)")
    }
  }
}
