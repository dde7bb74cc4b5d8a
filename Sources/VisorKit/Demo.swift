import Foundation

/// `visor demo`: the hypervisor with two Linux domains and a test guest, on an interactive
/// serial console. The domains' configs are generated here from where the kernel, the
/// initramfs and the guest are.
public enum Demo {
  public struct Domain: Sendable, Equatable {
    public var name: String
    public var config: String
  }

  /// Physical CPUs and memory of the emulated machine: two 256 MiB Linux domains, a small
  /// guest and the hypervisor. Three pcpus: under QEMU's TCG pcpu 0 runs no guests
  /// (docs/known-issues.md), so the domains share pcpus 1 and 2.
  public static let pcpus = 3
  public static let memoryMiB = 1024

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
    ends that domain alone; the run ends when every domain has. To end everything at once,
    switch the input to the hypervisor and press q.
    """
}
