import Foundation
import Testing
import VisorKit

extension Serialized {
  /// The runner's process handling, with a shell script standing in for QEMU.
  @Suite("QEMU runner with a stand-in QEMU") struct RunnerTests {
    /// Writes an executable script and returns a runner that uses it as QEMU.
    func fakeQEMU(_ body: String) throws -> (QEMURunner, URL) {
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-fake-qemu-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      let script = folder.appendingPathComponent("qemu-system-x86_64")
      try ("#!/bin/sh\n" + body + "\n").write(to: script, atomically: true, encoding: .utf8)
      try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
      // The runner checks that the image is readable; the script itself serves.
      return (QEMURunner(qemuPath: script.path), folder)
    }

    func configuration(_ folder: URL, timeout: Double? = 20) -> RunConfiguration {
      var config = RunConfiguration(kernel: folder.appendingPathComponent("qemu-system-x86_64").path)
      config.timeout = timeout
      return config
    }

    static let statuses: [(Int32, VisorExit)] = [
      (33, .clean), (35, .crash), (37, .panic), (0, .noExitCode), (1, .qemuFailed),
    ]

    @Test("Status and console are captured; lines are timestamped", arguments: statuses)
    func statusAndConsole(status: Int32, exit: VisorExit) throws {
      let (runner, folder) = try fakeQEMU("""
        echo "boot: loader pvh"
        sleep 0.4
        printf 'pcpus online: 1\\r\\n'
        echo "a warning" >&2
        printf 'no newline'
        exit \(status)
        """)
      defer { try? FileManager.default.removeItem(at: folder) }
      let result = try runner.run(configuration(folder))
      #expect(result.exit == exit)
      #expect(result.qemuStatus == status)
      #expect(result.lines.map(\.text) == ["boot: loader pvh", "pcpus online: 1", "no newline"])
      #expect(result.console.hasPrefix("boot: loader pvh\n"))
      #expect(result.qemuErrors == "a warning\n")
      let first = try #require(result.timeOfFirstMatch("loader"))
      let second = try #require(result.timeOfFirstMatch("pcpus online: 1"))
      #expect(second - first >= 0.3)
      #expect(result.elapsed >= second - 0.05)  // the exit and the last read race by a little
      #expect(result.timeOfFirstMatch("never printed") == nil)
    }

    @Test("The arguments reach QEMU unchanged")
    func argumentsArePassed() throws {
      let (runner, folder) = try fakeQEMU("for a in \"$@\"; do echo \"arg:$a\"; done; exit 33")
      defer { try? FileManager.default.removeItem(at: folder) }
      var config = configuration(folder, timeout: nil)
      config.cmdline = "smp=1 crash=ud2"
      let result = try runner.run(config)
      #expect(result.lines.map(\.text) == QEMURunner.arguments(for: config).map { "arg:" + $0 })
      #expect(result.command == [runner.qemuPath] + QEMURunner.arguments(for: config))
      // With a time limit, the monitor listens on a socket of the run's own, gone afterwards.
      let timed = try runner.run(configuration(folder))
      let arguments = Array(timed.command.dropFirst())
      #expect(timed.lines.map(\.text) == arguments.map { "arg:" + $0 })
      let monitor = try #require(arguments.firstIndex(of: "-monitor").map { arguments[$0 + 1] })
      #expect(monitor.hasPrefix("unix:") && monitor.contains("/visor-monitor-") && monitor.hasSuffix(".sock,server=on,wait=off"))
      let socket = monitor.dropFirst("unix:".count).prefix { $0 != "," }
      #expect(arguments == QEMURunner.arguments(for: configuration(folder), monitorSocket: String(socket)))
      #expect(!FileManager.default.fileExists(atPath: String(socket)))
    }

    @Test("A hung QEMU is killed at the time limit")
    func timeoutKillsQEMU() throws {
      let (runner, folder) = try fakeQEMU("echo started; exec sleep 60")
      defer { try? FileManager.default.removeItem(at: folder) }
      let result = try runner.run(configuration(folder, timeout: 1))
      #expect(result.exit == .timeout)
      #expect(result.timedOut)
      // SIGTERM must end it at once (under 3 s, before the SIGKILL fallback): the child must
      // not inherit a mask that blocks it. Its console never said "console input:", so no
      // `vcpus` dump is asked for first (QEMURunner.askForDump).
      #expect(result.elapsed >= 1 && result.elapsed < 3)
      #expect(result.contains("started"))
    }

    @Test("QEMU starts with no signals blocked, whatever thread runs the runner")
    func childSignalMaskIsClear() throws {
      let (runner, folder) = try fakeQEMU("exec grep SigBlk /proc/self/status")
      defer { try? FileManager.default.removeItem(at: folder) }
      let result = try runner.run(configuration(folder))
      // (Read from the exec'd program itself: a waiting shell blocks signals of its own.)
      #expect(result.lines.map(\.text) == ["SigBlk:\t0000000000000000"])
    }

    @Test("A QEMU that ignores SIGTERM is killed with SIGKILL")
    func stubbornQEMUIsKilled() throws {
      let (runner, folder) = try fakeQEMU("trap '' TERM; echo started; while :; do sleep 0.1; done")
      defer { try? FileManager.default.removeItem(at: folder) }
      let result = try runner.run(configuration(folder, timeout: 1))
      #expect(result.exit == .timeout)
      #expect(result.signaled)
      #expect(result.elapsed < 10)
    }

    @Test("Without input or a time limit, QEMU's stdin is /dev/null; with a time limit, a pipe nothing is typed into")
    func noInputMeansDevNull() throws {
      let (runner, folder) = try fakeQEMU("exec readlink /proc/self/fd/0")
      defer { try? FileManager.default.removeItem(at: folder) }
      let result = try runner.run(configuration(folder, timeout: nil))
      #expect(result.lines.map(\.text) == ["/dev/null"])
      #expect(result.inputTimes.isEmpty)
      // The pipe is how the `vcpus` dump is asked for at the limit (QEMURunner.askForDump).
      let timed = try runner.run(configuration(folder))
      #expect(timed.lines.count == 1 && timed.lines[0].text.hasPrefix("pipe:"), "\(timed.lines.map(\.text))")
      #expect(timed.inputTimes.isEmpty)
    }

    @Test("Input reaches QEMU's stdin in order, each chunk once its line has appeared")
    func inputFollowsTheConsole() throws {
      let (runner, folder) = try fakeQEMU("""
        read z; echo "got:$z"
        echo ready; read a; echo "got:$a"
        sleep 0.3
        echo ready; read b; echo "got:$b"
        exit 33
        """)
      defer { try? FileManager.default.removeItem(at: folder) }
      var config = configuration(folder)
      config.input = [
        SerialInput(send: "zero\n"),  // no line to wait for: at once
        .after("ready", send: "alpha\n"),
        // The same text again: only the second "ready", which comes after alpha was sent, counts.
        .after("ready", send: "beta\n"),
      ]
      let result = try runner.run(config)
      #expect(result.exit == .clean)
      #expect(result.lines.map(\.text) == ["got:zero", "ready", "got:alpha", "ready", "got:beta"])
      #expect(result.inputTimes.count == 3)
      if result.inputTimes.count == 3, result.lines.count == 5 {
        #expect(result.inputTimes[1] >= result.lines[1].time)
        #expect(result.inputTimes[2] >= result.lines[3].time)
        #expect(result.lines[3].time - result.lines[2].time >= 0.25)
      }
    }

    @Test("Input whose line never appears is not sent; a QEMU that never reads its input still ends the run")
    func unsentInput() throws {
      let (runner, folder) = try fakeQEMU("echo started; exit 33")
      defer { try? FileManager.default.removeItem(at: folder) }
      var config = configuration(folder)
      config.input = [.after("never printed", send: "x\n")]
      let waiting = try runner.run(config)
      #expect(waiting.exit == .clean)
      #expect(waiting.lines.map(\.text) == ["started"])
      #expect(waiting.inputTimes.isEmpty)

      // More than a pipe holds: the write blocks until QEMU exits, then fails (EPIPE, no SIGPIPE).
      config.input = [SerialInput(bytes: [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20))]
      let unread = try runner.run(config)
      #expect(unread.exit == .clean)
      #expect(unread.inputTimes.isEmpty)
    }

    @Test("A missing image is an error before QEMU starts")
    func missingImage() throws {
      let runner = QEMURunner(qemuPath: "/bin/true")
      let error = #expect(throws: VisorError.self) {
        try runner.run(RunConfiguration(kernel: "/nonexistent/swiftvisor"))
      }
      #expect(error?.message.contains("visor build") == true)
    }
  }
}
