import Foundation
import Hypervisor
import Testing
import VisorKit

extension Serialized {
  /// PVH domains built from a boot bundle and run by the hypervisor under QEMU, with the test
  /// guests of docs/test-guests.md. The hypervisor's own lines are `(sv) …` / `(sv:N) …`, each
  /// domain's console `(dN) …`; the expectations match with `contains`.
  @Suite("Domains") struct Domains {
    /// The lines every run that ends with all domains gone prints, whatever the outcome.
    func expectAllFramesReturned(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
      let memory = result.lines(containing: "memory: all ")
      #expect(
        memory.count == 1 && memory[0].contains(" frames returned"),
        "want one `memory: all N frames returned` line, got \(memory)\n\(context(result))",
        sourceLocation: sourceLocation)
      #expect(!result.contains("LEAK"), "a leak was reported\n\(context(result))", sourceLocation: sourceLocation)
    }

    /// No hypervisor crash report, whatever the guests did.
    func expectNoCrashReport(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(
        CrashReport.first(in: result.lines.map(\.text)) == nil, "unexpected crash report\n\(context(result))",
        sourceLocation: sourceLocation)
    }

    @Test("guest-hello alone on one pcpu: built, greets, powers off, every frame comes back")
    func helloAlone() throws {
      let hello = try SystemGuests.config(name: "hello", guest: "guest-hello", cmdline: "iterations=200000")
      let result = try SystemImage.boot(configs: [hello], smp: 1)
      expectLines(result, [
        "domain 1 (hello): built: 32 MiB, 1 vcpu(s), entry 0x",
        "(d1) hello from guest-hello",
        "(d1) xen version 4.17",
        "(d1) amd msrs: syscfg 0x40000 top_mem1 0x0 top_mem2 0x0",
        "(d1) cmdline: iterations=200000",
        "(d1) pvclock: system time ",
        "(d1) guest-hello: done",
        "domain 1 (hello): shutdown: poweroff",
        "domain 1 (hello): destroyed, ",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      // Time through shared_info (pvclock) is sane and advances; the wallclock is set.
      let pvclock = result.lines(containing: "(d1) pvclock: ")
      #expect(pvclock.count == 1 && pvclock[0].hasSuffix(": ok"), "\(pvclock)\n\(context(result))")
      // The frames given to the domain (its RAM) all come back, with its page tables.
      let built = try #require(result.lines(containing: "domain 1 (hello): built: ").first, "\(context(result))")
      let destroyed = try #require(result.lines(containing: "domain 1 (hello): destroyed, ").first, "\(context(result))")
      let builtFrames = try #require(number(before: " frames", in: built), "no frame count in: \(built)")
      let returned = try #require(number(before: " frames returned", in: destroyed), "no frame count in: \(destroyed)")
      let continuations = number(before: " hypercall continuations", in: destroyed)
      #expect(builtFrames > 0 && returned >= builtFrames, "built \(builtFrames) frames, returned \(returned)\n\(context(result))")
      #expect(continuations == 0, "want 0 hypercall continuations: \(destroyed)")
      // Its exits by kind: guest-hello makes hypercalls (version, console, shutdown) and CPUIDs
      // (the Xen leaves), and the kinds add up to the total.
      let exits = try #require(LinuxBenchmark.exits(in: result.lines.map(\.text)), "no `exits:` line\n\(context(result))")
      let kinds = Dictionary(uniqueKeysWithValues: exits.byClass.map { ($0.name, $0.count) })
      #expect((kinds["hypercall"] ?? 0) >= 4 && (kinds["cpuid"] ?? 0) >= 1, "exits by kind: \(kinds)")
      #expect(exits.byClass.map(\.count).reduce(0, +) == exits.total, "the kinds do not add up: \(exits)")
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    /// Each domain's two vcpus also race XENMEM_add_to_physmap(shared_info) to different gfns:
    /// afterwards the page must be at one gfn only (guest-smp's shared-info-race).
    @Test("Three domains with two vcpus each share two pcpus")
    func threeSMPDomains() throws {
      let configs = try ["smp-a", "smp-b", "smp-c"].map {
        try SystemGuests.config(name: $0, guest: "guest-smp", vcpus: 2)
      }
      let result = try SystemImage.boot(configs: configs, smp: 3)
      var expected: [String] = []
      for (id, name) in zip(1...3, ["smp-a", "smp-b", "smp-c"]) {
        expected += [
          "domain \(id) (\(name)): built: 32 MiB, 2 vcpu(s)",
          "(d\(id)) guest-smp: vcpu 1 is up",
          "(d\(id)) vcpu 0: tick 3",
          "(d\(id)) vcpu 1: tick 3",
          "(d\(id)) guest-smp: shared-info-race ok",
          "(d\(id)) guest-smp: both vcpus ran",
          "domain \(id) (\(name)): shutdown: poweroff",
        ]
      }
      expected += ["all domains have ended: 3 built, 3 ended cleanly, 0 did not", "poweroff: clean"]
      expectLines(result, expected)
      #expect(!result.contains("FAIL"), "a guest reported a failure\n\(context(result))")
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    /// DR0-DR3 are the pcpu's, not the VMCB's: two domains on one pcpu each write their own
    /// addresses there and, across 30,000 yields to each other, must find them every time.
    /// Without the switch in the run loop the first domain finds the second's (seen: 114,412
    /// lost values in 30,000 rounds).
    @Test("Two domains on one pcpu keep their own debug registers")
    func debugRegistersFollowTheirVCPU() throws {
      let configs = try ["dr-a", "dr-b"].map {
        try SystemGuests.config(name: $0, guest: "guest-hello", cmdline: "debug-registers=30000")
      }
      let result = try SystemImage.boot(configs: configs, smp: 2)
      expectLines(result, [
        "(d1) debug registers: 30000 yields, own DR0-DR3 kept: ok",
        "(d2) debug registers: 30000 yields, own DR0-DR3 kept: ok",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
      ])
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    @Test("A triple-faulting domain ends alone; the other one completes")
    func tripleFaultEndsOnlyItsDomain() throws {
      let configs = [
        try SystemGuests.config(name: "triple", guest: "guest-triple"),
        try SystemGuests.config(name: "hello", guest: "guest-hello"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      let crashLine = "domain 1 (triple) vcpu 0 crashed: triple fault"
      expectLines(result, [
        "(d1) guest-triple: about to triple fault",
        crashLine,
        "(d2) hello from guest-hello",
        "(d2) guest-hello: done",
        "domain 2 (hello): shutdown: poweroff",
        "all domains have ended: 2 built, 1 ended cleanly, 1 did not",
        "poweroff: with the failed-domain status",
      ])
      #expect(!result.contains("guest-triple: still alive"), "the triple fault did not happen\n\(context(result))")
      // The register dump follows the crash line.
      if let index = result.firstIndex(of: crashLine) {
        let after = result.lines[(index + 1)...].prefix(20).map(\.text)
        #expect(after.contains { $0.contains("RIP=0x") }, "no `RIP=0x…` line after the crash line\n\(context(result))")
      }
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .domainFailed)
      #expect(result.qemuStatus == 39, "QEMU status \(result.qemuStatus), want 39\n\(context(result))")
    }

    /// guest-bad's checks (Sources/Guests/GuestBad, docs/test-guests.md): each prints
    /// `check <name>: ok` or `check <name>: FAIL (…)`. From event-set-up on, the guest values that
    /// once trapped the hypervisor or hung a pcpu (docs/hypercalls.md, "Guest input never traps
    /// the hypervisor"): extreme timer periods and deadlines, structures across 2^64, and
    /// intercepted instructions that end exactly at 2^64. From single-step to cr4-osxmmexcpt-off-on,
    /// exceptions the hypervisor intercepts and hands back to the guest's own IDT (#DB from a
    /// single step, #GP for RDPMC and for CR4 writes it refuses, #UD for INVLPGA), the cache
    /// instructions it ignores and the CR4 writes it carries out. From
    /// release-page-in-large-block on, what a guest may do to its own p2m:
    /// single pages given back inside 2 MiB blocks and populated again, the reservation held at
    /// maxmem, a sparse populate storm, the console ring and shared_info pages given back (nothing
    /// may be written into the pages populated after), and shared_info moved again and again, onto
    /// RAM and off it.
    static let badChecks = badEveryRunChecks + [
      "periodic-below-1ms", "periodic-2-to-62", "periodic-int64-max", "periodic-uint64-max", "periodic-stime-delta-max",
      "singleshot-uint64-max", "singleshot-2-to-63", "singleshot-2-to-62", "set-timer-op-uint64-max",
      "timer-fires-after-far-deadlines",
      "features-struct-wraps", "features-struct-at-top", "memory-map-struct-wraps", "memory-map-struct-at-top",
      "bind-ipi-struct-wraps", "bind-ipi-struct-at-top",
      "remapped-argument-page", "unmapped-argument-page", "argument-page-mapped-again",
      "cpuid-at-top", "rdmsr-at-top", "wrmsr-at-top", "vmmcall-at-top",
      "single-step", "wbinvd", "invd", "rdpmc-raises-gp", "invlpga-raises-ud",
      "cr4-reserved-bit-raises-gp", "cr4-unoffered-bit-raises-gp", "cr4-high-bit-raises-gp", "cr4-clear-pae-raises-gp",
      "cr4-tsd-on-off", "cr4-osxmmexcpt-off-on",
      "release-page-in-large-block", "repopulate-page-in-large-block",
      "release-head-of-large-block", "repopulate-head-of-large-block",
      "release-block-page-by-page", "repopulate-block-page-by-page",
      "populate-stops-at-maxmem", "sparse-populate-storm", "release-console-ring",
      "shared-info-to-large-block-head", "shared-info-moves-repeatedly", "release-shared-info-page",
    ]

    /// The checks guest-bad runs whatever its `hostile=` mask: the hypercall checks, and the event
    /// set-up the hostile groups need.
    static let badEveryRunChecks = [
      "console-bad-pointer", "console-unmapped-pointer", "console-beyond-ram", "console-straddles-ram-end",
      "console-huge-count", "console-wrapping-count", "console-unknown-cmd", "hypercall-63", "hypercall-1000",
      "xen-version-subop-99", "sched-op-subop-99", "memory-op-subop-99", "xen-version-bad-out-pointer",
      "shutdown-bad-pointer", "vcpu-op-no-such-vcpu",
      "event-set-up", "bind-virq-timer",
    ]

    /// Exactly one `check <name>: ok` line from `domain` for each of `checks` (all of guest-bad's
    /// by default), no other check lines from it, no FAIL anywhere, and `guest-bad: done`.
    func expectBadChecksPass(
      _ result: RunResult, domain: Int, checks expected: [String] = Domains.badChecks,
      sourceLocation: SourceLocation = #_sourceLocation
    ) {
      expectLines(result, expected.map { "(d\(domain)) check \($0): ok" }, sourceLocation: sourceLocation)
      let checks = result.lines(containing: "(d\(domain)) check ")
      let ok = checks.filter { $0.hasSuffix(": ok") }
      #expect(
        checks.count == expected.count && ok.count == expected.count,
        "want \(expected.count) `check …: ok` lines and no others, got \(ok.count) ok of \(checks.count)\n\(context(result))",
        sourceLocation: sourceLocation)
      let failures = result.lines(containing: "FAIL")
      #expect(failures.isEmpty, "failed checks: \(failures)\n\(context(result))", sourceLocation: sourceLocation)
      expectLines(result, ["(d\(domain)) guest-bad: done"], sourceLocation: sourceLocation)
    }

    @Test("Misbehaving hypercalls get error codes, not a crash")
    func badHypercalls() throws {
      let result = try SystemImage.boot(configs: [try SystemGuests.config(name: "bad", guest: "guest-bad")], smp: 1)
      expectBadChecksPass(result, domain: 1)
      expectLines(result, [
        "domain 1 (bad): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    /// The bystander: every hostile check of guest-bad runs while guest-hello runs on the other
    /// pcpu, and both end cleanly, with no crash report.
    @Test("Misbehaving hypercalls leave another domain unaffected")
    func badHypercallsBesideHello() throws {
      let configs = [
        try SystemGuests.config(name: "bad", guest: "guest-bad"),
        try SystemGuests.config(name: "hello", guest: "guest-hello"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      expectBadChecksPass(result, domain: 1)
      expectLines(result, [
        "(d2) hello from guest-hello",
        "(d2) xen version 4.17",
        "(d2) guest-hello: done",
        "domain 1 (bad): shutdown: poweroff",
        "domain 2 (hello): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    /// A sparse populate storm beside a victim that must get its whole allotment: guest-bad's
    /// memory checks alone (`hostile=16`) populate and give back one page in each of 16,384 fresh
    /// 2 MiB regions, while guest-memop populates 32,768 pages up to its maxmem in one
    /// continued hypercall. The storm's table pages come from the bad domain's own pool and go
    /// back with each page, so the victim gets every page it asked for. The two overlap: the
    /// victim's call starts before the storm ends and returns after the check before the storm.
    @Test("A populate storm in one domain does not cost another its allotment")
    func populateStormBesideAVictim() throws {
      let configs = [
        try SystemGuests.config(name: "bad", guest: "guest-bad", cmdline: "hostile=16"),
        try SystemGuests.config(name: "memop", guest: "guest-memop", memory: 32, maxmem: 160, cmdline: "extents=32768"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3)
      let beforeStorm = "(d1) check populate-stops-at-maxmem: ok"
      let stormDone = "(d1) check sparse-populate-storm: ok"
      let victimCalls = "(d2) guest-memop: RAM ends at 0x2000000; populating 32768 pages at 0x2000000"
      let victimGot = "(d2) guest-memop: populate_physmap returned 32768 ("
      expectLines(result, [
        beforeStorm, "(d1) sparse populate storm: 16384 of 16384 regions populated and given back", stormDone,
        victimCalls, victimGot, "(d2) guest-memop: first and last new page usable",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      if let calls = result.firstIndex(of: victimCalls), let got = result.firstIndex(of: victimGot),
         let before = result.firstIndex(of: beforeStorm), let done = result.firstIndex(of: stormDone) {
        #expect(calls < done && got > before, "the victim's populate and the storm did not overlap\n\(interleaving(result))")
      }
      #expect(!result.contains("FAIL"), "\(context(result))")
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    /// The stale TLB attack (guest-smp `mode=stale-tlb`, docs/test-guests.md): vcpu 1 writes a
    /// pattern to gfn 0x90 without ever exiting, while vcpu 0 gives that page back and populates
    /// 64 fresh pages, looking for the pattern in them for 500 ms. The flush before reuse
    /// (docs/memory.md) makes vcpu 1 exit and re-enter with a flushed TLB before the frame is
    /// freed, so each of vcpu 1's next writes is a nested page fault at 0x90000: a gfn with
    /// nothing behind it, where a write is emulated and dropped as Xen drops it
    /// (docs/emulation.md), so no write reaches the frame, vcpu 0 finds none and powers its
    /// domain off. Freeing the frame at once instead lets the writes go on through vcpu 1's TLB
    /// into the frame, which comes back as the first new page (`FAIL stale write landed in a new
    /// page`; under QEMU's TCG in most runs, when no timer interrupt happens to make vcpu 1 exit
    /// first). guest-spin runs beside it on its own pcpu (smp 4: three pcpus for the three
    /// vcpus), from before the attack until after it, and must finish normally.
    @Test("A vcpu writing through a stale translation cannot reach a frame given back; its writes to the unbacked gfn are dropped")
    func staleTLBWriteReachesNoFrame() throws {
      let configs = [
        try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=2000000"),
        // maxmem one MiB above memory: room for the page that prepares the new region and the
        // 64 new pages (the page given back makes room for one).
        try SystemGuests.config(
          name: "stale-tlb", guest: "guest-smp", memory: 32, maxmem: 33, vcpus: 2, cmdline: "mode=stale-tlb"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 4)
      let giveBack = "(d2) guest-smp: stale-tlb: giving back gfn 0x90 while vcpu 1 writes 0x4141414141414141 to it"
      let noneSeen = "(d2) guest-smp: stale-tlb: no stale write seen in 64 new pages"
      expectLines(result, [
        "domain 2 (stale-tlb): built: 32 MiB, 2 vcpu(s)",
        "(d2) guest-smp: vcpu 1 is up",
        giveBack,
        noneSeen,
        "domain 2 (stale-tlb): shutdown: poweroff",
        "(d1) guest-spin: start",
        "(d1) guest-spin: done",
        "domain 1 (spin): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly",
        "isolation check: 0 frames of 0 domain(s) agree with the frame table (the end of the run)",
      ])
      #expect(!result.contains("FAIL stale write"), "a stale write landed in a new page\n\(context(result))")
      #expect(!result.contains("FAIL"), "a guest reported a failure\n\(context(result))")
      #expect(result.lines(containing: " crashed: ").isEmpty, "\(context(result))")
      // vcpu 1's writes after the give-back reached the hypervisor as nested page faults.
      let exits = result.lines(containing: "domain 2 (stale-tlb): exits:")
      #expect(exits.count == 1 && exits[0].contains(" npf "), "want the domain's npf exits counted\n\(context(result))")
      if let given = result.firstIndex(of: giveBack), let seen = result.firstIndex(of: noneSeen) {
        #expect(given < seen, "\(interleaving(result))")
      }
      #expect(!result.contains("isolation check failed"), "\(context(result))")
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    // The reproducer of docs/known-issues.md: two guests that do nothing but exit (an I/O read
    // each time) on 2 pcpus. With pcpu 0 running guests too, QEMU's TCG corrupts pcpu 0's
    // paging mode within seconds and the machine or a guest triple-faults; with pcpu 0 kept
    // free of guests (the default under TCG), both finish.
    @Test("Two guests in an exit storm (I/O reads) on 2 pcpus both finish; pcpu 0 runs no guests under TCG")
    func exitStormOnTwoPCPUs() throws {
      let configs = [
        try SystemGuests.config(name: "ports1", guest: "guest-spin", cmdline: "port_reads=200000"),
        try SystemGuests.config(name: "ports2", guest: "guest-spin", cmdline: "port_reads=200000"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 300)
      expectLines(result, [
        "pcpus for guests: 1-2; pcpu 0 runs none (cpu0guests=auto: QEMU TCG, docs/known-issues.md)",
        "(d1) guest-spin: port reads done, 200000 of 200000 read all ones",
        "(d2) guest-spin: port reads done, 200000 of 200000 read all ones",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
      ])
      expectExit(result, .clean)
    }

    @Test("A long hypercall continues itself and leaves the pcpu to the other domain")
    func continuationsShareThePCPU() throws {
      let configs = [
        try SystemGuests.config(name: "memop", guest: "guest-memop", memory: 32, maxmem: 128, cmdline: "extents=16384"),
        // Every continuation (one per 512 extents: 31 for 16384) hands the pcpu over, and
        // guest-spin gives it back at its next yield, every 1000 iterations: about 32000
        // iterations happen while the memop domain is inside its hypercall. With 50000
        // iterations guest-spin reports progress every 10000, so several reports fall in there
        // (with 200000, the first report would come at 40000: after the hypercall).
        try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=50000"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 1)
      expectLines(result, [
        "(d1) guest-memop: start",
        "(d1) guest-memop: populate_physmap returned 16384 (",
        "(d1) guest-memop: first and last new page usable",
        "(d1) guest-memop: done",
        "(d2) guest-spin: start",
        "(d2) guest-spin: done",
        "domain 1 (memop): shutdown: poweroff",
        "domain 2 (spin): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      #expect(!result.contains("FAIL"), "a guest reported a failure\n\(context(result))")

      // The batch stops every 512 extents, so 16384 extents take continuations.
      let destroyed = result.lines(containing: "domain 1 (memop): destroyed, ")
      #expect(destroyed.count == 1, "want one destroyed line for memop, got \(destroyed)\n\(context(result))")
      if let line = destroyed.first {
        let continuations = number(before: " hypercall continuations", in: line)
        #expect((continuations ?? 0) > 0, "want a continuation count > 0: \(line)\n\(context(result))")
      }

      // While the memop domain is inside its one hypercall (after it announced the call, before
      // the call returned), the spin domain runs on the same and only pcpu and prints.
      let start = result.firstIndex(of: "(d1) guest-memop: RAM ends at ")
      let returned = result.firstIndex(of: "(d1) guest-memop: populate_physmap returned")
      #expect(start != nil && returned != nil, "memop's lines are missing\n\(context(result))")
      if let start, let returned {
        let between = result.lines[start..<returned].map(\.text).filter { $0.contains("(d2) guest-spin: ") }
        #expect(
          !between.isEmpty,
          "no guest-spin line between memop's call (line \(start)) and its result (line \(returned))\n\(interleaving(result))")
      }
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    /// The domain lines and the hypervisor's domain lines, in console order, for a failed
    /// ordering expectation.
    func interleaving(_ result: RunResult) -> String {
      result.lines.enumerated()
        .filter { $0.element.text.contains("(d") || $0.element.text.contains("domain ") }
        .map { "\($0.offset): \($0.element.text)" }
        .joined(separator: "\n")
    }

    @Test("buildloop=5: ten builds and destroys give every frame back, then the domains run")
    func buildDestroyLoop() throws {
      let configs = [
        try SystemGuests.config(name: "hello", guest: "guest-hello"),
        try SystemGuests.config(name: "smp", guest: "guest-smp", vcpus: 2),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, cmdline: "buildloop=5")
      let loop = result.lines(containing: "buildloop: ")
      #expect(loop.count == 1, "want one buildloop line, got \(loop)\n\(context(result))")
      if let line = loop.first {
        #expect(line.contains("buildloop: 10 builds and destroys: free frames "), "\(line)")
        #expect(line.hasSuffix(": ok"), "\(line)\n\(context(result))")
        let before = number(before: " before", in: line)
        let after = number(before: " after", in: line)
        #expect(before != nil && after != nil && before == after, "free frames before \(before.map(String.init) ?? "?"), after \(after.map(String.init) ?? "?"): \(line)")
      }
      // Domain ids are not reused: the loop's builds took 1...10, so the domains that run have
      // the next ones. Find them from the `built:` lines.
      let hello = result.lines(containing: " (hello): built: 32 MiB, 1 vcpu(s)")
      let smp = result.lines(containing: " (smp): built: 32 MiB, 2 vcpu(s)")
      #expect(hello.count == 1 && smp.count == 1, "want one built line per domain\n\(context(result))")
      let helloID = hello.first.flatMap { number(before: " (hello)", in: $0) }
      let smpID = smp.first.flatMap { number(before: " (smp)", in: $0) }
      if let helloID, let smpID {
        expectLines(result, [
          "(d\(helloID)) hello from guest-hello",
          "(d\(helloID)) guest-hello: done",
          "domain \(helloID) (hello): shutdown: poweroff",
          "(d\(smpID)) guest-smp: both vcpus ran",
          "domain \(smpID) (smp): shutdown: poweroff",
        ])
      }
      // Nothing ran before the loop ended.
      if let loopIndex = result.firstIndex(of: "buildloop: "),
         let firstGuestLine = result.lines.firstIndex(where: { $0.text.hasPrefix("(d") }) {
        #expect(loopIndex < firstGuestLine, "a domain ran before the build loop ended\n\(context(result))")
      }
      expectLines(result, [
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .clean)
    }

    @Test("A bundle entry that cannot be built is skipped; the others start")
    func badBundleEntryIsSkipped() throws {
      let hello = try TemporaryFolder("swiftvisor-hello")
      defer { hello.remove() }
      let helloDomain = try BundleMaker.load(
        configPath: try hello.write("hello.cfg", try SystemGuests.config(name: "hello", guest: "guest-hello")))
      let broken = DomainConfig(name: Array("broken".utf8), memoryMiB: 32, kernelPath: Array("broken.elf".utf8))
      let bundle = BootBundle.build(domains: [
        (config: broken, kernel: [UInt8](repeating: 0x90, count: 4096), ramdisk: nil),
        (config: helloDomain.config, kernel: helloDomain.kernel, ramdisk: nil),
      ])
      let result = try SystemImage.boot(bundle: bundle, smp: 3)
      expectLines(result, [
        "domain broken (bundle entry 0): not started: kernel: ",
        "hello from guest-hello",
        "guest-hello: done",
        "(hello): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not; 1 could not be built",
        "poweroff: with the failed-domain status",
      ])
      expectAllFramesReturned(result)
      expectNoCrashReport(result)
      expectExit(result, .domainFailed)
    }
  }
}

/// What `BundleMaker` (behind `visor run CONFIG…`) refuses on the host, before QEMU starts.
@Suite("Bad domain configurations on the host") struct BadDomainConfigTests {
  @Test("A syntax error names the file and the line")
  func syntaxError() throws {
    let folder = try TemporaryFolder("swiftvisor-config")
    defer { folder.remove() }
    let path = try folder.write("broken-syntax.cfg", """
      name = "x"
      memory = = 32
      kernel = "/nonexistent"

      """)
    let error = #expect(throws: VisorError.self) { try BundleMaker.load(configPath: path) }
    #expect(error?.exit == .badConfig)
    #expect(error?.message.contains("broken-syntax.cfg") == true, "\(error?.message ?? "")")
    #expect(error?.message.contains(":2:") == true, "\(error?.message ?? "")")
  }

  @Test("A kernel that does not exist is named")
  func missingKernel() throws {
    let folder = try TemporaryFolder("swiftvisor-config")
    defer { folder.remove() }
    let kernel = folder.url.appendingPathComponent("no-such-kernel").path
    let path = try folder.write("missing.cfg", """
      name = "missing"
      type = "pvh"
      memory = 32
      kernel = "\(kernel)"

      """)
    let error = #expect(throws: VisorError.self) { try BundleMaker.load(configPath: path) }
    #expect(error?.exit == .badConfig)
    #expect(error?.message.contains(kernel) == true, "\(error?.message ?? "")")
  }

  @Test("A kernel that is not an ELF is refused and named")
  func kernelNotELF() throws {
    let folder = try TemporaryFolder("swiftvisor-config")
    defer { folder.remove() }
    let kernel = try folder.write("not-a-kernel.txt", "this is a text file, not a kernel\n")
    let path = try folder.write("text.cfg", """
      name = "text"
      type = "pvh"
      memory = 32
      kernel = "not-a-kernel.txt"

      """)
    let error = #expect(throws: VisorError.self) { try BundleMaker.load(configPath: path) }
    #expect(error?.exit == .badConfig)
    #expect(error?.message.contains(kernel) == true, "\(error?.message ?? "")")
  }

  @Test("Two domains with the same name are refused")
  func duplicateNames() throws {
    let folder = try TemporaryFolder("swiftvisor-config")
    defer { folder.remove() }
    let config = try SystemGuests.config(name: "twin", guest: "guest-hello")
    let paths = [try folder.write("a.cfg", config), try folder.write("b.cfg", config)]
    let output = folder.url.appendingPathComponent("bundle.bin")
    let error = #expect(throws: VisorError.self) { try BundleMaker.make(configPaths: paths, output: output) }
    #expect(error?.exit == .badConfig)
    #expect(error?.message.contains("twin") == true, "\(error?.message ?? "")")
    #expect(!FileManager.default.fileExists(atPath: output.path), "a bundle was written despite the error")
  }
}
