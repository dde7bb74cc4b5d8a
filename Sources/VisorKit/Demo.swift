import Foundation

/// `visor demo`: the hypervisor with two Linux domains and a test guest, on an interactive
/// serial console. The domains' configs are generated here from where the kernel, the
/// initramfs and the guest are.
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

  /// linux-a (2 vcpus) and linux-b (1 vcpu) with a busybox shell on hvc0, and guest-spin, a
  /// CPU-bound guest that runs beside them for a while and powers off.
  public static func domains(kernel: String, initramfs: String, guest: String) -> [Domain] {
    func linux(_ name: String, vcpus: Int) -> Domain {
      Domain(name: name, config: """
        name = "\(name)"
        type = "pvh"
        memory = 256
        vcpus = \(vcpus)
        kernel = "\(kernel)"
        ramdisk = "\(initramfs)"
        cmdline = "console=hvc0 quiet"
        """)
    }
    return [
      linux("linux-a", vcpus: 2),
      linux("linux-b", vcpus: 1),
      Domain(name: "spin", config: """
        name = "spin"
        type = "pvh"
        memory = 16
        vcpus = 1
        kernel = "\(guest)"
        cmdline = "iterations=2000000"
        """),
    ]
  }

  public static let banner = """
    Swiftvisor demo: two Linux domains (linux-a with 2 vcpus, linux-b with 1) and guest-spin.
    Console input goes to one domain at a time: press Ctrl-A three times to switch (the
    hypervisor says which). In a Linux shell, Ctrl-C interrupts the command and `poweroff -f`
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
