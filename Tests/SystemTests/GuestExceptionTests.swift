import Foundation
import Testing
import VisorKit

extension Serialized {
  /// What the hypervisor does to a guest that executes something it refuses: the exception
  /// arrives through the guest's own IDT (guest-hello reports it and ends itself), and nothing
  /// outside that domain notices.
  @Suite("Exceptions injected into guests") struct GuestExceptions {
    @Test("A refused instruction raises its exception in that guest only (#GP for an unknown MSR, #UD for VMRUN)", arguments: [
      ("msr", "guest: exception 13 at RIP"),
      ("vmrun", "guest: exception 6 at RIP"),
    ])
    func injected(mode: String, report: String) throws {
      let configs = [
        try SystemGuests.config(name: "victim", guest: "guest-hello", cmdline: "crash=\(mode)"),
        try SystemGuests.config(name: "bystander", guest: "guest-hello"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 1)
      expectLines(result, [
        "(d1) \(report)",
        "domain 1 (victim): shutdown: crash",
        "(d2) guest-hello: done",
        "domain 2 (bystander): shutdown: poweroff",
        "all domains have ended: 2 built, 1 powered off cleanly, 1 did not",
      ])
      #expect(!result.contains("(d1) guest-hello: done"), "the guest went on after the exception\n\(context(result))")
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectExit(result, .domainFailed)
    }
  }

  /// Debian's cloud kernel (scripts/fetch-linux) as a PVH domain: it prints its early log through
  /// earlyprintk=xen (console_io), finds the ACPI tables and the x2APIC, switches to hvc0 (the
  /// console ring), takes its clock and timer from Xen, runs the initramfs's /init (busybox),
  /// which prints a banner and powers off: every cpu ends in `cli; hlt`, so the domain ends
  /// cleanly.
  @Suite("Linux") struct Linux {
    static let variable = "SWIFTVISOR_LINUX"

    @Test("Debian's kernel boots as a PVH domain to its /init and powers off", arguments: [1, 2])
    func debianKernelBoots(vcpus: Int) throws {
      guard let folder = ProcessInfo.processInfo.environment[Self.variable], !folder.isEmpty else {
        throw SystemImage.Missing(description: "\(Self.variable) is not set: run scripts/fetch-linux and export its folder (scripts/test does both)")
      }
      let config = """
        name = "linux"
        type = "pvh"
        memory = 256
        vcpus = \(vcpus)
        kernel = "\(folder)/vmlinuz"
        ramdisk = "\(folder)/initrd.cpio"
        cmdline = "earlyprintk=xen console=hvc0 loglevel=8"
        """
      let result = try SystemImage.boot(configs: [config], smp: vcpus, timeout: 300)
      expectLines(result, [
        "(d1) [    0.000000] Linux version 6.1",
        "(d1) [    0.000000] Command line: earlyprintk=xen console=hvc0 loglevel=8",
        "(d1) [    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable",
        "(d1) [    0.000000] Hypervisor detected: Xen HVM",
        "(d1) [    0.000000] Xen version 4.17.",
        "RAMDISK: [mem ",
      ])
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectLines(result, [
        "printk: console [hvc0] enabled",
        "Xen: using vcpuop timer interface",
        "Run /init as init process",
        "(d1) swiftvisor-initramfs: hello from busybox on 6.1",
        "(d1) swiftvisor-initramfs: cpus: \(vcpus)",
        "domain 1 (linux): every vcpu is down: poweroff",
        "all domains have ended: 1 built, 1 powered off cleanly, 0 did not",
        "memory: all ",
      ])
      expectExit(result, .clean)
    }
  }
}
