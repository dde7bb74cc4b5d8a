import Foundation
import Testing
import VisorKit

extension Serialized {
  /// Event channels and timers as a PVH guest sees them: the callback vector, VIRQ_TIMER and the
  /// VCPUOP timers (guest-timer), an interdomain channel between two domains (guest-pingpong),
  /// IPIs between the vcpus of one domain (guest-ipi), and a full port table with every wrong
  /// argument (guest-flood). Each guest prints one `<guest>: <check> ok …` or
  /// `<guest>: <check> FAIL (…)` line per check and `<guest>: done` last.
  @Suite("Event channels and timers in guests") struct EventGuests {
    /// Every `ok` line, no `FAIL` anywhere.
    func expectChecksPass(
      _ result: RunResult, domain: Int, guest: String, _ checks: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) {
      expectLines(result, checks.map { "(d\(domain)) \(guest): \($0) ok" } + ["(d\(domain)) \(guest): done"],
                  sourceLocation: sourceLocation)
      let failures = result.lines(containing: "FAIL")
      #expect(failures.isEmpty, "failed checks: \(failures)\n\(context(result))", sourceLocation: sourceLocation)
    }

    /// No hypervisor crash report, every frame back, no leak.
    func expectCleanHypervisor(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(
        CrashReport.first(in: result.lines.map(\.text)) == nil, "unexpected crash report\n\(context(result))",
        sourceLocation: sourceLocation)
      let memory = result.lines(containing: "memory: all ")
      #expect(
        memory.count == 1 && memory[0].contains(" frames returned"),
        "want one `memory: all N frames returned` line, got \(memory)\n\(context(result))", sourceLocation: sourceLocation)
      #expect(!result.contains("LEAK"), "a leak was reported\n\(context(result))", sourceLocation: sourceLocation)
    }

    @Test("guest-timer: singleshot, periodic and set_timer_op timers arrive on VIRQ_TIMER, never early; runstate")
    func timer() throws {
      let config = try SystemGuests.config(name: "timer", guest: "guest-timer", cmdline: "timers=20")
      let result = try SystemImage.boot(configs: [config], smp: 3)
      expectChecksPass(result, domain: 1, guest: "guest-timer", [
        "past-deadline", "lateness", "stop-singleshot", "periodic", "set-timer-op", "runstate",
      ])
      expectLines(result, [
        "(d1) guest-timer: VIRQ_TIMER on port ",
        "(d1) guest-timer: lateness ok 20 timers, late by min ",
        "domain 1 (timer): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("guest-pingpong: two domains bounce an event 1000 times over an interdomain channel", arguments: [3, 1])
    func pingPong(smp: Int) throws {
      // Domain ids follow the order of the configs: ping is 1, pong is 2.
      let configs = [
        try SystemGuests.config(name: "ping", guest: "guest-pingpong", cmdline: "role=ping peer=2 rounds=1000"),
        try SystemGuests.config(name: "pong", guest: "guest-pingpong", cmdline: "role=pong peer=1"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: smp)
      expectLines(result, [
        "(d2) guest-pingpong: pong allocated ports ",
        "(d1) guest-pingpong: ping bound local port ",
        "(d1) guest-pingpong: rounds 1000 mean-rtt-ns ",
        "(d2) guest-pingpong: pong answered 1000 events",
        "(d1) guest-pingpong: done",
        "(d2) guest-pingpong: done",
        "domain 1 (ping): shutdown: poweroff",
        "domain 2 (pong): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      #expect(!result.contains("FAIL"), "a guest reported a failure\n\(context(result))")
      let rounds = result.lines(containing: "(d1) guest-pingpong: rounds 1000 mean-rtt-ns ")
      if let line = rounds.first {
        let nanoseconds = number(before: " mean-rtt-cycles", in: line)
        let cycles = line.split(separator: " ").last.flatMap { Int($0) }
        #expect((nanoseconds ?? 0) > 0 && (cycles ?? 0) > 0, "want positive round-trip times: \(line)")
      }
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("guest-ipi: IPIs between two vcpus, self-IPIs, and bind_vcpu moving a port to vcpu 1 and back")
    func ipi() throws {
      let config = try SystemGuests.config(name: "ipi", guest: "guest-ipi", vcpus: 2, cmdline: "rounds=100")
      let result = try SystemImage.boot(configs: [config], smp: 3)
      expectChecksPass(result, domain: 1, guest: "guest-ipi", ["self-ipi-vcpu1", "rounds", "self-ipi-vcpu0", "bind-vcpu"])
      expectLines(result, [
        "(d1) guest-ipi: rounds ok 100 rounds, mean-rtt-ns ",
        "domain 1 (ipi): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("guest-fifo: the FIFO ABI's commands, delivery by priority then arrival, masking, a loopback channel, reset to 2-level")
    func fifo() throws {
      let config = try SystemGuests.config(name: "fifo", guest: "guest-fifo", vcpus: 1)
      let result = try SystemImage.boot(configs: [config], smp: 2)
      expectChecksPass(result, domain: 1, guest: "guest-fifo", ["init-control", "expand-array", "priority-order", "masked", "loopback", "reset"])
      expectLines(result, [
        "(d1) guest-fifo: init-control ok (link_bits 17)",
        "priorities 0 3 3 7 9)",
        "domain 1 (fifo): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("guest-flood: a full port table, floods of sends and wrong arguments get answers, not a crash; a bystander runs")
    func flood() throws {
      let configs = [
        try SystemGuests.config(name: "flood", guest: "guest-flood"),
        try SystemGuests.config(name: "hello", guest: "guest-hello"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 300)
      expectChecksPass(result, domain: 1, guest: "guest-flood", [
        "fill", "send-unbound", "close-all", "loopback-pairs", "masked-sends", "coalesced-sends", "unmasked-sends",
        "close-pairs", "virq-twice", "invalid-ports", "bad-vcpus", "bad-pointers", "bad-commands", "clean-table",
      ])
      expectLines(result, [
        "(d1) guest-flood: alloc_unbound gave ",
        "(d2) guest-hello: done",
        "domain 1 (flood): shutdown: poweroff",
        "domain 2 (hello): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      let fill = result.lines(containing: "(d1) guest-flood: alloc_unbound gave ")
      #expect(fill.count == 1 && fill[0].hasSuffix(" ports, then -28"), "\(fill)\n\(context(result))")
      expectCleanHypervisor(result)
      expectExit(result, .clean)
    }
  }
}
