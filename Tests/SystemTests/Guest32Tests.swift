import Foundation
import Testing
import VisorKit

/// A 32-bit test guest's paging mode (`paging=` on its command line, docs/test-guests.md) and
/// the line guest-hello prints for it.
enum Guest32Paging: String, CaseIterable, CustomStringConvertible {
  case off, pae, legacy4MiB = "4m", legacy4KiB = "4k"

  var description: String { "paging=\(rawValue)" }

  /// guest-hello's `guest-hello: 32-bit, paging …` line: the mode and CR0/CR4 as the CPU has them.
  var helloLine: String {
    switch self {
    case .off: "guest-hello: 32-bit, paging off (cr0 0x13, cr4 0x600)"
    case .pae: "guest-hello: 32-bit, paging pae (cr0 0x80010013, cr4 0x620)"
    case .legacy4MiB: "guest-hello: 32-bit, paging legacy 4 MiB pages (cr0 0x80010013, cr4 0x610)"
    case .legacy4KiB: "guest-hello: 32-bit, paging legacy 4 KiB pages (cr0 0x80010013, cr4 0x600)"
    }
  }
}

extension Serialized {
  /// The 32-bit (i686) builds of the test guests (`i686/guest-*` in the guests' folder), in each
  /// paging mode: the same hypercalls and the same expected results as the 64-bit guests' tests,
  /// made with Xen's 32-bit register convention and the compat layouts of its structures.
  @Suite("32-bit PVH test guests") struct Guests32 {
    /// No hypervisor crash report, the isolation check passed, every frame back, no FAIL.
    func expectCleanHypervisor(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(CrashReport.first(in: result.lines.map(\.text)) == nil, "unexpected crash report\n\(context(result))",
              sourceLocation: sourceLocation)
      #expect(result.lines(containing: "isolation check failed").isEmpty, "\(context(result))", sourceLocation: sourceLocation)
      let memory = result.lines(containing: "memory: all ")
      #expect(memory.count == 1 && memory[0].contains(" frames returned"),
              "want one `memory: all N frames returned` line, got \(memory)\n\(context(result))", sourceLocation: sourceLocation)
      #expect(!result.contains("LEAK"), "a leak was reported\n\(context(result))", sourceLocation: sourceLocation)
      #expect(!result.contains("FAIL"), "a guest reported a failure\n\(context(result))", sourceLocation: sourceLocation)
      #expect(result.lines(containing: "guest: exception").isEmpty, "a guest took an exception\n\(context(result))",
              sourceLocation: sourceLocation)
    }

    /// As DomainTests' helloAlone: console writes (a byte buffer the hypervisor reads through the
    /// guest's own page tables, or physical addresses with paging off), xen_version with its
    /// extraversion buffer and the feature structure, and shared_info placed with
    /// XENMEM_add_to_physmap (its 16-byte compat layout) with the pvclock and wallclock read
    /// from it at the 32-bit offsets.
    @Test("32-bit guest-hello: greets, reads the version, maps shared_info, reads its pvclock, powers off",
          arguments: Guest32Paging.allCases)
    func hello(paging: Guest32Paging) throws {
      let hello = try SystemGuests.config(name: "hello32", guest: "i686/guest-hello", cmdline: "paging=\(paging.rawValue)")
      let result = try SystemImage.boot(configs: [hello], smp: 1)
      expectLines(result, [
        "domain 1 (hello32): built: 32 MiB, 1 vcpu(s), entry 0x",
        "(d1) hello from guest-hello",
        "(d1) \(paging.helloLine)",
        "(d1) xen version 4.17",
        "(d1) xen features[0]: 0x",
        "(d1) amd msrs: syscfg 0x40000 top_mem1 0x0 top_mem2 0x0",
        "(d1) cmdline: paging=\(paging.rawValue)",
        "(d1) guest-hello: done",
        "domain 1 (hello32): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      let extraversion = result.lines(containing: "(d1) xen extraversion: ")
      #expect(extraversion.count == 1 && !extraversion[0].contains("error"), "\(extraversion)\n\(context(result))")
      let pvclock = result.lines(containing: "(d1) pvclock: ")
      #expect(pvclock.count == 1 && pvclock[0].hasSuffix(": ok"), "\(pvclock)\n\(context(result))")
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As DomainTests' memop domain: one XENMEM_populate_physmap of 32,768 single pages (a
    /// 32-bit xen_memory_reservation, an array of 32-bit xen_pfn_t), done with continuations,
    /// then the first and last new page written and read back through the guest's mapping.
    @Test("32-bit guest-memop: populate_physmap of 32768 pages with continuations", arguments: Guest32Paging.allCases)
    func memop(paging: Guest32Paging) throws {
      let config = try SystemGuests.config(
        name: "memop32", guest: "i686/guest-memop", memory: 32, maxmem: 160, cmdline: "extents=32768 paging=\(paging.rawValue)")
      let result = try SystemImage.boot(configs: [config], smp: 1)
      expectLines(result, [
        "(d1) guest-memop: RAM ends at 0x2000000; populating 32768 pages at 0x2000000",
        "(d1) guest-memop: populate_physmap returned 32768 (",
        "(d1) guest-memop: first and last new page usable",
        "(d1) guest-memop: done",
        "domain 1 (memop32): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As EventGuestTests' timer: the callback vector, VIRQ_TIMER, the VCPUOP timers (a 12-byte
    /// vcpu_set_singleshot_timer) and the runstate area (its 44-byte compat layout), with the
    /// 32-bit event words of shared_info.
    @Test("32-bit guest-timer: singleshot, periodic and set_timer_op timers on VIRQ_TIMER; runstate",
          arguments: Guest32Paging.allCases)
    func timer(paging: Guest32Paging) throws {
      let config = try SystemGuests.config(name: "timer32", guest: "i686/guest-timer", cmdline: "timers=20 paging=\(paging.rawValue)")
      let result = try SystemImage.boot(configs: [config], smp: 3)
      EventGuests().expectChecksPass(result, domain: 1, guest: "guest-timer", [
        "past-deadline", "lateness", "stop-singleshot", "periodic", "set-timer-op", "runstate",
      ])
      expectLines(result, [
        "(d1) guest-timer: VIRQ_TIMER on port ",
        "(d1) guest-timer: lateness ok 20 timers, late by min ",
        "domain 1 (timer32): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As EventGuestTests' pingPong, with a 32-bit ping and a 64-bit pong: each side's events
    /// arrive in its own shared_info layout.
    @Test("32-bit guest-pingpong against a 64-bit peer: 1000 events each way over an interdomain channel",
          arguments: Guest32Paging.allCases)
    func pingPong(paging: Guest32Paging) throws {
      let configs = [
        try SystemGuests.config(name: "ping32", guest: "i686/guest-pingpong", cmdline: "role=ping peer=2 rounds=1000 paging=\(paging.rawValue)"),
        try SystemGuests.config(name: "pong", guest: "guest-pingpong", cmdline: "role=pong peer=1"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      expectLines(result, [
        "(d2) guest-pingpong: pong allocated ports ",
        "(d1) guest-pingpong: ping bound local port ",
        "(d1) guest-pingpong: rounds 1000 mean-rtt-ns ",
        "(d2) guest-pingpong: pong answered 1000 events",
        "(d1) guest-pingpong: done",
        "(d2) guest-pingpong: done",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As EventGuestTests' ipi: vcpu 1 started with a VCPU_HVM_MODE_32B context (flat segments,
    /// a busy TSS, the boot vcpu's paging), IPIs both ways, self-IPIs and bind_vcpu.
    @Test("32-bit guest-ipi: vcpu 1 started in 32-bit mode; IPIs between the vcpus, self-IPIs, bind_vcpu",
          arguments: Guest32Paging.allCases)
    func ipi(paging: Guest32Paging) throws {
      let config = try SystemGuests.config(name: "ipi32", guest: "i686/guest-ipi", vcpus: 2, cmdline: "rounds=100 paging=\(paging.rawValue)")
      let result = try SystemImage.boot(configs: [config], smp: 3)
      EventGuests().expectChecksPass(result, domain: 1, guest: "guest-ipi", ["self-ipi-vcpu1", "rounds", "self-ipi-vcpu0", "bind-vcpu"])
      expectLines(result, [
        "(d1) guest-ipi: rounds ok 100 rounds, mean-rtt-ns ",
        "domain 1 (ipi32): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As ConsoleGuestTests' bothDirections (waiting with `spin`, which needs no event delivery,
    /// and with `halt`, which does): output through the console ring, one line longer than the
    /// ring, and two typed lines read back from it.
    @Test("32-bit guest-console: lines through out[], two typed lines from in[]",
          arguments: Guest32Paging.allCases, ["spin", "halt"])
    func console(paging: Guest32Paging, wait: String) throws {
      let config = try SystemGuests.config(name: "console32", guest: "i686/guest-console",
                                           cmdline: "echo=2 wait=\(wait) paging=\(paging.rawValue)")
      let input: [SerialInput] = [
        .after("(d1) guest-console: waiting for input (line 1 of 2)", send: "hello\n"),
        .after("(d1) guest-console: got hello", send: "second line\n"),
      ]
      let result = try SystemImage.boot(configs: [config], smp: 3, input: input)
      expectLines(result, [
        "(d1) guest-console: start",
        "(d1) guest-console: ring at gfn 0xfefff (address 0xfefff000), port ",
        "(d1) guest-console: hello through the ring",
        "(d1) guest-console: output ok (",
        "(d1) guest-console: done",
        "domain 1 (console32): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      let long = ConsoleGuests().reassembledLongLine(result, domain: 1, total: 3000)
      #expect(long?.text == ConsoleGuests.longLine(total: 3000), "the long line did not come back whole\n\(context(result))")
      #expect(
        result.lines(containing: "guest-console: got ") == ["(d1) guest-console: got hello", "(d1) guest-console: got second line"],
        "\(context(result))")
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As XenstoreGuestTests' twoDomains, with domain 1 a 32-bit guest-xenstore and domain 2 a
    /// 64-bit one, each the other's peer.
    @Test("32-bit guest-xenstore beside a 64-bit one: every check passes in each", arguments: Guest32Paging.allCases)
    func xenstore(paging: Guest32Paging) throws {
      let configs = [
        try SystemGuests.config(name: "xs-a", guest: "i686/guest-xenstore", cmdline: "peer=2 paging=\(paging.rawValue)"),
        try SystemGuests.config(name: "xs-b", guest: "guest-xenstore", cmdline: "peer=1"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      for domain in [1, 2] {
        EventGuests().expectChecksPass(result, domain: domain, guest: "guest-xenstore", [])
        expectLines(result, XenstoreGuests.checks.map { "(d\(domain)) guest-xenstore: \($0) ok" })
      }
      expectLines(result, [
        "(d1) guest-xenstore: read-name ok 'xs-a'",
        "(d1) guest-xenstore: get-domain-path ok '/local/domain/1'",
        "(d1) guest-xenstore: domain 1, ring at gfn 0xfeffe, port ",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    /// As GrantGuestTests' mapAndCopy, both ways round: a 32-bit mapper of a 64-bit granter's
    /// pages (gnttab_copy's 24-byte compat layout, map and unmap), and a 32-bit granter.
    @Test("32-bit guest-grant: maps and copies a 64-bit domain's grants, and grants its own",
          arguments: Guest32Paging.allCases)
    func grants(paging: Guest32Paging) throws {
      for mapper32 in [true, false] {
        let configs = [
          try SystemGuests.config(name: "granter", guest: mapper32 ? "guest-grant" : "i686/guest-grant",
                                  cmdline: "role=granter peer=2 paging=\(paging.rawValue)"),
          try SystemGuests.config(name: "mapper", guest: mapper32 ? "i686/guest-grant" : "guest-grant",
                                  cmdline: "role=mapper peer=1 paging=\(paging.rawValue)"),
        ]
        let result = try SystemImage.boot(configs: configs, smp: 3)
        expectLines(result, ["(d1) guest-grant: granted ok refs 8, 9 (read-only), 10 to domain 2"]
          + GrantGuests.mapperChecks.map { "(d2) guest-grant: \($0) ok" }
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
    }
  }
}
