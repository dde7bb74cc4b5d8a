import Foundation
import Testing
import VisorKit

extension Serialized {
  /// MMIO emulation (docs/emulation.md): guest-mmio touches guest-physical addresses with no RAM
  /// behind them with every instruction form the emulator knows and with hostile ones, beside a
  /// bystander that must not notice.
  @Suite("MMIO emulation") struct MMIOGuests {
    /// Every check of guest-mmio, in its order (docs/test-guests.md).
    static let checks = [
      "read-hpet", "read-ioapic", "read-unbacked", "read-given-back", "movzx-movsx", "xchg", "moffs", "rip-relative",
      "single-step-after-emulation", "writes-dropped", "rep-movs-to-ram", "rep-stos", "unknown-opcode-raises-ud", "code-in-mmio-raises-ud",
      "straddle-into-unmapped-page", "code-page-unmapped", "sixteen-prefixes-raise-gp", "lock-mov-raises-ud",
    ]

    @Test("Reads of absent devices and unbacked gfns are all ones, writes are dropped, and the hostile instructions raise their exceptions in that guest only")
    func guestMMIO() throws {
      let configs = [
        try SystemGuests.config(name: "mmio", guest: "guest-mmio"),
        try SystemGuests.config(name: "bystander", guest: "guest-hello"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 2)
      for check in Self.checks {
        #expect(result.lines(containing: "(d1) guest-mmio: \(check) ok").count == 1, "\(check)\n\(context(result))")
      }
      expectLines(result, [
        "(d1) guest-mmio: start",
        "(d1) guest-mmio: done",
        "domain 1 (mmio): shutdown: poweroff",
        "(d2) guest-hello: done",
        "domain 2 (bystander): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly",
      ])
      #expect(!result.contains("FAIL"), "\(context(result))")
      #expect(result.lines(containing: " crashed: ").isEmpty, "\(context(result))")
      // The accesses reached the hypervisor as nested page faults.
      let exits = result.lines(containing: "domain 1 (mmio): exits:")
      #expect(exits.count == 1 && exits[0].contains(" npf "), "\(context(result))")
      let memory = result.lines(containing: "memory: all ")
      #expect(memory.count == 1 && memory[0].contains(" frames returned"), "\(context(result))")
      #expect(CrashReport.first(in: result.lines.map(\.text)) == nil, "unexpected crash report\n\(context(result))")
      expectExit(result, .clean)
    }
  }
}
