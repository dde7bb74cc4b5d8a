import Foundation
import Testing
import VisorKit

extension Serialized {
  /// Grant tables between two domains (guest-grant, docs/test-guests.md): maps, copies and
  /// every refusal; and a granter that powers off while its page is mapped.
  @Suite("Grant tables in guests") struct GrantGuests {
    static let mapperChecks = [
      "map", "map-read-only", "read-only-contents", "refuse-writable-map-of-read-only", "refuse-bad-ref",
      "refuse-bad-domain", "refuse-map-over-ram", "refuse-device-map", "refuse-bad-handle", "refuse-wrong-address",
      "copy-from-grant", "copy-from-grant-contents", "copy-to-grant", "refuse-copy-to-read-only", "refuse-copy-past-page",
      "refuse-copy-of-frame-by-domid", "unmap", "refuse-double-unmap", "unmap-read-only", "copy-done-marker",
    ]

    /// No hypervisor crash report, the isolation check passed, every frame back.
    func expectCleanHypervisor(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(CrashReport.first(in: result.lines.map(\.text)) == nil, "unexpected crash report\n\(context(result))",
              sourceLocation: sourceLocation)
      #expect(result.lines(containing: "isolation check failed").isEmpty, "\(context(result))", sourceLocation: sourceLocation)
      let memory = result.lines(containing: "memory: all ")
      #expect(memory.count == 1 && memory[0].contains(" frames returned"),
              "want one `memory: all N frames returned` line, got \(memory)\n\(context(result))", sourceLocation: sourceLocation)
      #expect(!result.contains("LEAK"), "a leak was reported\n\(context(result))", sourceLocation: sourceLocation)
      #expect(!result.contains("FAIL"), "a guest reported a failure\n\(context(result))", sourceLocation: sourceLocation)
    }

    @Test("guest-grant: one domain maps and copies another's granted pages; every wrong argument is refused")
    func mapAndCopy() throws {
      // Domain ids follow the order of the configs: the granter is 1, the mapper 2.
      let configs = [
        try SystemGuests.config(name: "granter", guest: "guest-grant", cmdline: "role=granter peer=2"),
        try SystemGuests.config(name: "mapper", guest: "guest-grant", cmdline: "role=mapper peer=1"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      expectLines(result, ["(d1) guest-grant: granted ok refs 8, 9 (read-only), 10 to domain 2"]
        + Self.mapperChecks.map { "(d2) guest-grant: \($0) ok" }
        + ["(d2) guest-grant: done"])
      expectLines(result, [
        "(d1) guest-grant: written-through-mapping ok",
        "(d1) guest-grant: copied-into-grant ok",
        "(d1) guest-grant: flags-clear ok",
        "(d1) guest-grant: end-access ok",
        "(d1) guest-grant: done",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("guest-grant: two domains map, unmap and copy each other's pages at once, 2000 rounds each")
    func crossMaps() throws {
      let configs = [
        try SystemGuests.config(name: "both1", guest: "guest-grant", cmdline: "role=both peer=2 rounds=2000"),
        try SystemGuests.config(name: "both2", guest: "guest-grant", cmdline: "role=both peer=1 rounds=2000"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      expectLines(result, ["cross-maps ok 2000 rounds", "told-peer ok", "heard-peer ok", "flags-clear ok", "done"].flatMap {
        ["(d1) guest-grant: \($0)", "(d2) guest-grant: \($0)"]
      } + ["all domains have ended: 2 built, 2 ended cleanly, 0 did not", "poweroff: clean"])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("guest-grant: the granter powers off while its page is mapped; the page lives until the mapper unmaps it")
    func granterEndsWhileMapped() throws {
      let configs = [
        try SystemGuests.config(name: "granter", guest: "guest-grant", cmdline: "role=granter peer=2 die=1"),
        try SystemGuests.config(name: "mapper", guest: "guest-grant", cmdline: "role=mapper peer=1 keep=1"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      expectLines(result, [
        "(d2) guest-grant: map ok",
        "(d1) guest-grant: mapped-by-peer ok",
        "domain 1 (granter): shutdown: poweroff",
        "domain 1: the frames other domains map stay until they unmap them (1 mappings and copies)",
        "domain 1 (granter): destroyed",
        "(d2) guest-grant: granter-gone ok",
        "(d2) guest-grant: page-outlives-granter ok",
        "(d2) guest-grant: still-writable ok",
        "domain 1: its last mapped grant is unmapped: every frame returned",
        "(d2) guest-grant: unmap-after-granter ok",
        "(d2) guest-grant: done",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }
  }
}
