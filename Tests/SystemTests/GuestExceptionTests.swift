import Foundation
import Testing
import VisorKit

extension Serialized {
  /// What the hypervisor does to a guest that executes something it refuses: the exception
  /// arrives through the guest's own IDT (guest-hello reports it and ends itself), and nothing
  /// outside that domain notices.
  @Suite("Exceptions injected into guests") struct GuestExceptions {
    @Test("A refused instruction raises its exception in that guest only (#GP for an unknown MSR and RDPMC, #UD for VMRUN and INVLPGA)", arguments: [
      ("msr", "guest: exception 13 at RIP"),
      ("vmrun", "guest: exception 6 at RIP"),
      ("rdpmc", "guest: exception 13 at RIP"),
      ("invlpga", "guest: exception 6 at RIP"),
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
        "all domains have ended: 2 built, 1 ended cleanly, 1 did not",
      ])
      #expect(!result.contains("(d1) guest-hello: done"), "the guest went on after the exception\n\(context(result))")
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectExit(result, .domainFailed)
    }
  }
}
