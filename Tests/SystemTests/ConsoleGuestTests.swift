import Foundation
import Testing
import VisorKit

extension Serialized {
  /// The console ring (hvc0's page and port, docs/console.md) in both directions, driven by
  /// guest-console: output written to out[] comes back as `(dN)` lines, input typed on the serial
  /// line (QEMU's stdin, `RunConfiguration.input`) reaches the domain with the focus through in[],
  /// and Ctrl-A three times moves the focus.
  @Suite("The console ring in guests: output, input, focus") struct ConsoleGuests {
    static let switchFocus = "\u{1}\u{1}\u{1}"

    /// The text guest-console writes as its long line (`longLine` in GuestConsole.swift).
    static func longLine(total: Int) -> String {
      var line = "guest-console: long line of \(total) bytes: "
      let tail = "|end"
      var i = 0
      while line.utf8.count < total - tail.utf8.count {
        line.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: "a") + UInt8(i % 26)))
        i += 1
      }
      return line + tail
    }

    /// The pieces of domain `domain`'s long line (the hypervisor cuts a line that long into
    /// several), joined again: the `(dN)` lines from the one that starts it, until the length is
    /// reached. Nil if it does not start.
    func reassembledLongLine(_ result: RunResult, domain: Int, total: Int) -> (text: String, pieces: Int)? {
      let prefix = "(d\(domain)) "
      let lines = result.lines.map(\.text)
      guard let first = lines.firstIndex(where: { $0.hasPrefix(prefix + "guest-console: long line of ") }) else { return nil }
      var text = "", pieces = 0
      for line in lines[first...] where line.hasPrefix(prefix) && text.utf8.count < total {
        text += line.dropFirst(prefix.count)
        pieces += 1
      }
      return (text, pieces)
    }

    func expectNoFailure(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
      let failures = result.lines(containing: "FAIL")
      #expect(failures.isEmpty, "a guest reported a failure: \(failures)\n\(context(result))", sourceLocation: sourceLocation)
    }

    @Test(
      "guest-console: lines through out[] (one longer than the ring), and two typed lines read from in[]",
      arguments: ["halt", "block", "poll", "spin"])
    func bothDirections(wait: String) throws {
      let config = try SystemGuests.config(name: "console", guest: "guest-console", cmdline: "echo=2 wait=\(wait)")
      let input: [SerialInput] = [
        .after("(d1) guest-console: waiting for input (line 1 of 2)", send: "hello\n"),
        .after("(d1) guest-console: got hello", send: "second line\n"),
      ]
      let result = try SystemImage.boot(configs: [config], smp: 3, input: input)
      expectLines(result, [
        "console input: domain 1 (console) (Ctrl-A three times to switch)",
        "(d1) guest-console: start",
        "(d1) guest-console: ring at gfn 0xfefff (address 0xfefff000), port ",
        ", waiting with \(wait)",
        "(d1) guest-console: hello through the ring",
        "(d1) guest-console: output ok (",
        "(d1) guest-console: waiting for input (line 1 of 2)",
        "(d1) guest-console: waiting for input (line 2 of 2)",
        "(d1) guest-console: done",
        "domain 1 (console): shutdown: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectNoFailure(result)
      expectAllInputSent(result, input)
      // Written through the ring and through console_io: shown once (docs/console.md).
      #expect(result.lines(containing: "guest-console: one line, two channels").count == 1, "\(context(result))")

      // 3000 bytes through a 2048-byte ring: the guest had to wait for room at least once.
      let output = result.lines(containing: "(d1) guest-console: output ok (")
      if let line = output.first {
        #expect((number(before: " waits for room", in: line) ?? 0) >= 1, "\(line)\n\(context(result))")
        #expect((number(before: " events from the backend", in: line) ?? 0) >= 1, "\(line)\n\(context(result))")
      }
      let long = reassembledLongLine(result, domain: 1, total: 3000)
      #expect(long?.text == Self.longLine(total: 3000), "the long line did not come back whole\n\(context(result))")
      #expect((long?.pieces ?? 0) > 1, "a 3000-byte line should be printed in pieces\n\(context(result))")

      // Each typed line exactly once, in order, and nothing else.
      #expect(
        result.lines(containing: "guest-console: got ") == ["(d1) guest-console: got hello", "(d1) guest-console: got second line"],
        "\(context(result))")
      EventGuests().expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("Two guest-console domains: input goes to the focused one, Ctrl-A three times switches, the focus moves on when its domain ends")
    func focusSwitching() throws {
      // Domain 1 reads two lines, so it is still alive when the focus leaves it (were it
      // already gone, its end would have moved the focus to domain 2, and Ctrl-A three times on
      // to the hypervisor).
      let configs = [
        try SystemGuests.config(name: "first", guest: "guest-console", cmdline: "echo=2"),
        try SystemGuests.config(name: "second", guest: "guest-console", cmdline: "echo=1"),
      ]
      let input: [SerialInput] = [
        .after("(d1) guest-console: waiting for input (line 1 of 2)", send: "one\n"),
        .after("(d1) guest-console: got one", send: Self.switchFocus),
        .after("console input: domain 2 (second)", send: "two\n"),
        // Domain 2 ends after one line; the focus goes back to domain 1, still waiting. (The
        // pcpu that destroys a domain announces it: "(sv)" or "(sv:N)".)
        .after("console input: domain 1 (first)", send: "three\n"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, input: input)
      expectLines(result, [
        "console input: domain 1 (first) (Ctrl-A three times to switch)",
        "console input: domain 2 (second) (Ctrl-A three times to switch)",
        "(d1) guest-console: output ok (",
        "(d2) guest-console: output ok (",
        "(d2) guest-console: waiting for input (line 1 of 1)",
        "(d1) guest-console: done",
        "(d2) guest-console: done",
        "domain 1 (first): shutdown: poweroff",
        "domain 2 (second): shutdown: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not",
        "poweroff: clean",
      ])
      expectNoFailure(result)
      expectAllInputSent(result, input)
      #expect(
        result.lines(containing: "(d1) guest-console: got ") == ["(d1) guest-console: got one", "(d1) guest-console: got three"],
        "domain 1 must get what was typed while it had the focus, and only that\n\(context(result))")
      #expect(
        result.lines(containing: "(d2) guest-console: got ") == ["(d2) guest-console: got two"],
        "domain 2 must get what was typed while it had the focus, and only that\n\(context(result))")
      // The switch came after domain 1 had its line, and domain 2's line after the switch.
      if let one = result.firstIndex(of: "(d1) guest-console: got one"),
         let switched = result.firstIndex(of: "console input: domain 2 (second)"),
         let two = result.firstIndex(of: "(d2) guest-console: got two") {
        #expect(one < switched && switched < two, "\(context(result))")
      }
      for domain in [1, 2] {
        #expect(
          reassembledLongLine(result, domain: domain, total: 3000)?.text == Self.longLine(total: 3000),
          "domain \(domain)'s long line did not come back whole\n\(context(result))")
      }
      EventGuests().expectCleanHypervisor(result)
      expectExit(result, .clean)
    }

    @Test("With the input on the hypervisor, q powers off at once; a line it does not know gets a hint")
    func hypervisorKeyQuits() throws {
      // guest-spin runs for a long time; its console has the input first, Ctrl-A three times
      // moves it to the hypervisor (the only other stop), which takes the line x (a hint) and q.
      let configs = [try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=2000000000")]
      let input: [SerialInput] = [
        .after("(d1) guest-spin: iterations", send: Self.switchFocus),
        .after("console input: the hypervisor", send: "x\r"),
        .after("console: the hypervisor has the input", send: "q"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 1, input: input)
      expectLines(result, [
        "console input: the hypervisor (Ctrl-A three times to switch)",
        "console: the hypervisor has the input: q powers off at once",
        "console: q: powering off now, with 1 domain(s) still running",
      ])
      expectAllInputSent(result, input)
      #expect(!result.contains("guest-spin: done"), "the guest should not have finished\n\(context(result))")
      expectLines(result, ["poweroff: quit from the console"])
      expectExit(result, .quit)
    }

    /// A domain built while the user has switched the input to the hypervisor (a restart) does
    /// not take it away (`GuestConsoles.hypervisorChosen`): `q` typed after the restart still
    /// reaches the hypervisor. guest-spin has the input first; guest-hello reboots at 5 s of
    /// system time, after the input went past it to the hypervisor, and comes back as domain 3.
    @Test("A domain restarted while the input is on the hypervisor leaves it there")
    func restartLeavesTheHypervisorFocus() throws {
      let configs = [
        try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=2000000000"),
        try SystemGuests.config(name: "hello", guest: "guest-hello",
                                cmdline: "shutdown=reboot shutdown-below-domid=3 shutdown-at-ms=5000"),
      ]
      let input: [SerialInput] = [
        .after("(d1) guest-spin: iterations", send: Self.switchFocus),
        .after("console input: domain 2 (hello)", send: Self.switchFocus),
        .after("domain 2 (hello): restarted as domain 3", send: "q"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 1, input: input)
      expectLines(result, [
        "console input: the hypervisor (Ctrl-A three times to switch)",
        "domain 2 (hello): restarted as domain 3",
        "console: q: powering off now",
      ])
      expectAllInputSent(result, input)
      #expect(!result.contains("console input: domain 3"), "the restarted domain took the input\n\(context(result))")
      expectExit(result, .quit)
    }

    /// A run that reaches its time limit asks the hypervisor for `vcpus` before QEMU is killed
    /// (`QEMURunner.askForDump`): the input moves to the hypervisor by Ctrl-A three times as
    /// often as it takes, and the dump says where each vcpu is and what its domain has pending.
    /// guest-console waits for a line that never comes (blocked, its port unmasked); guest-spin
    /// runs on. Then QEMU's monitor says where each emulated CPU was (`QEMUMonitor`), which is
    /// what is left when the hypervisor no longer answers.
    @Test("At its time limit a run leaves the hypervisor's vcpus dump (each pcpu, each vcpu's state and timers, each domain's events) and QEMU's registers of every CPU")
    func timeLimitDumpsVCPUs() throws {
      let configs = [
        try SystemGuests.config(name: "console", guest: "guest-console", cmdline: "echo=1"),
        try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=2000000000"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 20)
      expectLines(result, [
        "(d1) guest-console: waiting for input (line 1 of 1)",
        "console input: the hypervisor (Ctrl-A three times to switch)",
        "console: vcpus: pcpu 1: ",
        "console: vcpus: domain 1 (console): running, 1 vcpu(s)",
        "console: vcpus: d1v0: blocked for ",
        "console: vcpus: d1 events: 2-level, ",
        "console: vcpus: domain 2 (spin): running, 1 vcpu(s)",
        "console: vcpus: d2v0: ",
        // What the guest's code was working on, and how it got there.
        "console: vcpus: d1v0 registers: RSP 0x",
        "console: vcpus: d2v0 stack at RSP: 0x",
        "console: vcpus: done",
      ])
      #expect(result.timedOut, "\(context(result))")
      #expect(!result.contains("guest-console: done"), "\(context(result))")
      let state = result.stateAtLimit
      for cpu in 0..<3 { #expect(state.contains("CPU#\(cpu)\nRAX="), "\(state)") }
      #expect(QEMUMonitor.instructionPointers(in: state).count == 3, "\(state)")
      #expect(!state.contains("XMM") && !state.contains("(qemu)"), "\(state)")
      // Each RIP is named: a function of the image, or "not in the image" (a guest's).
      #expect(state.split(separator: "\n").filter { $0.hasPrefix("CPU#") && $0.contains(" RIP 0x") }.count == 3, "\(state)")
    }

    /// Two domains flood their consoles beside a third that prints its usual output, with a
    /// console budget of 4096 bytes a second and 8192 at once (docs/console.md, "Limits"). The
    /// one flooding through console_io loses what is beyond its budget, and the hypervisor says
    /// how much in `[domain 1: N bytes of console output dropped]` lines; the one flooding
    /// through its ring loses nothing but is held back (its ring is read no faster than its
    /// budget). The bystander's output comes whole and it finishes.
    @Test("A domain flooding its console is limited to its budget; a bystander's output and progress are intact")
    func floodIsLimited() throws {
      let rate = 4096, burst = 8192
      let configs = [
        try SystemGuests.config(name: "io-flood", guest: "guest-console", cmdline: "flood=3000 flood-channel=io"),
        try SystemGuests.config(name: "ring-flood", guest: "guest-console", cmdline: "flood=3000"),
        try SystemGuests.config(name: "bystander", guest: "guest-console"),
      ]
      let result = try SystemImage.boot(
        configs: configs, smp: 3, cmdline: "guest_console_rate=\(rate) guest_console_burst=\(burst)", timeout: 180)
      expectLines(result, [
        "(d3) guest-console: output ok (",
        "(d3) guest-console: done",
        "domain 3 (bystander): shutdown: poweroff",
        "all domains have ended: 3 built, 3 ended cleanly, 0 did not",
      ])
      #expect(reassembledLongLine(result, domain: 3, total: 3000)?.text == Self.longLine(total: 3000),
              "the bystander's long line did not come back whole\n\(context(result))")
      expectNoFailure(result)

      /// A domain's text, its lines joined: a domain with the input focus (the first one, and
      /// each next one when the one before it ends) shows its unfinished line as it comes, and
      /// another line may cut it in pieces (docs/console.md), each with its own `(dN) ` prefix.
      func joinedText(_ domain: Int) -> String {
        let prefix = "(d\(domain)) "
        return result.lines.map(\.text).filter { $0.hasPrefix(prefix) }.map { $0.dropFirst(prefix.count) }.joined()
      }
      /// What a domain's guest says it wrote in its flood: lines and bytes.
      func flood(_ domain: Int) -> (lines: Int, bytes: Int)? {
        let text = joinedText(domain)
        guard let start = text.range(of: "guest-console: flood through the ") else { return nil }
        let words = text[start.upperBound...].split(separator: " ", maxSplits: 5)
        guard words.count >= 5, let lines = Int(words[1]), let bytes = Int(words[3]) else { return nil }
        return (lines, bytes)
      }
      /// The numbers of a domain's flood lines that were shown, in order.
      func shownFloodLines(_ domain: Int) -> [Int] {
        var text = Substring(joinedText(domain))
        var numbers: [Int] = []
        while let range = text.range(of: "guest-console: flood ") {
          text = text[range.upperBound...]
          if let number = Int(text.prefix { $0.isNumber }) { numbers.append(number) }
        }
        return numbers
      }
      /// Every byte of a domain's lines as printed (the text after `(dN) ` and the newline).
      func shownBytes(_ domain: Int) -> Int {
        result.lines.map(\.text).filter { $0.hasPrefix("(d\(domain)) ") }.reduce(0) { $0 + $1.utf8.count - "(d\(domain)) ".utf8.count + 1 }
      }
      // At most the burst and the rate over the whole run (the domain lived less than that),
      // and a ring's worth (taken before the budget says no more) plus a line of slack.
      let bound = burst + Int(Double(rate) * result.elapsed) + 2048 + 256

      // Through console_io: dropped beyond the budget, and every dropped byte counted.
      let io = try #require(flood(1), "no flood summary from domain 1\n\(context(result))")
      let ioShown = shownFloodLines(1)
      let dropLines = result.lines(containing: "[domain 1: ")
      let dropped = dropLines.compactMap { line -> Int? in
        guard let range = line.range(of: "[domain 1: ") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
      }.reduce(0, +)
      #expect(!dropLines.isEmpty && dropLines.allSatisfy { $0.hasSuffix("bytes of console output dropped]") },
              "no drop report for domain 1\n\(context(result))")
      #expect(ioShown.count < io.lines, "domain 1 wrote \(io.lines) flood lines and all \(ioShown.count) were shown\n\(context(result))")
      #expect(ioShown.count * 100 + dropped == io.bytes,
              "domain 1 wrote \(io.bytes) bytes: \(ioShown.count) lines shown and \(dropped) bytes reported dropped")
      #expect(shownBytes(1) <= bound, "domain 1 printed \(shownBytes(1)) bytes in \(result.elapsed) s (bound \(bound))")

      // Through the ring: nothing lost, nothing dropped, but no faster than the budget.
      let ring = try #require(flood(2), "no flood summary from domain 2\n\(context(result))")
      #expect(shownFloodLines(2) == Array(0..<ring.lines), "domain 2's flood lines are not all there in order\n\(context(result))")
      #expect(result.lines(containing: "[domain 2: ").isEmpty, "domain 2's ring output was dropped\n\(context(result))")
      #expect(shownBytes(2) <= bound, "domain 2 printed \(shownBytes(2)) bytes in \(result.elapsed) s (bound \(bound))")
      // Held back: in 3 s a flood through the ring makes far more than the budget without it.
      #expect(ring.bytes <= bound, "domain 2 wrote \(ring.bytes) bytes (bound \(bound))")
      expectExit(result, .clean)
    }
  }
}
