import Foundation
import Testing
import VisorKit

#if canImport(Glibc)
import Glibc
#endif

extension Serialized {
  /// `visor demo` as a person runs it: in a terminal (a pseudo-terminal here, whose master side
  /// plays the person), and from a pipe. The demo boots two Linux domains and guest-spin.
  @Suite("visor demo in a terminal") struct DemoTests {
    static let switchFocus = "\u{1}\u{1}\u{1}"

    /// `visor demo --image <the image under test>`, run from the package root.
    static func demoCommand() throws -> (visor: String, arguments: [String]) {
      let image = try SystemImage.path()
      _ = try Serialized.Linux.folder()   // the demo fetches into cache/linux; the tests' copy proves it is there
      let visor = try SystemVisor.path()
      let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
      return (visor, ["demo", "--package-path", root, "--image", image])
    }

    @Test("Both shells, a command in each (Ctrl-A x3 between them), linux-a's PV disk read and linux-b pinged, poweroff -f in all three Linux domains, q on the hypervisor: status 0, the terminal as it was")
    func demoInATerminal() throws {
      let (visor, arguments) = try Self.demoCommand()
      let terminal = try PseudoTerminal()
      let before = terminal.settings()
      let demo = try terminal.spawn(visor, arguments)
      defer { demo.end() }

      try terminal.waitFor("(d1) swiftvisor-initramfs: shell on hvc0", timeout: 400)
      try terminal.waitFor("(d2) swiftvisor-initramfs: shell on hvc0", timeout: 200)
      // The terminal is raw while the demo runs: the keys are bytes for the guests.
      let during = terminal.settings()
      #expect(during.c_lflag & tcflag_t(ECHO | ICANON | ISIG) == 0, "the terminal is not in raw mode during the demo")
      let qemu = demo.childNamed("qemu-system-x86")
      #expect(qemu != nil, "no QEMU under visor\n\(terminal.tail())")

      // linux-a has the input first (the first domain built).
      try terminal.waitFor("(d1) swiftvisor:linux /", timeout: 60)
      terminal.type("echo demo-a-$((6*7))\r")
      try terminal.waitFor("(d1) demo-a-42", timeout: 60)
      // The PV disk and network the driver domain (drv, domain 4) serves; it may still be booting.
      terminal.type("until [ -b /dev/xvda ]; do sleep 1; done; mount /dev/xvda /mnt && cat /mnt/hello.txt; umount /mnt\r")
      try terminal.waitFor("(d1) This file is on xvda, linux-a's PV disk", timeout: 300)
      terminal.type("until ping -c 1 -W 2 10.0.0.3 >/dev/null; do sleep 1; done; echo ping-b-$((6*7))\r")
      try terminal.waitFor("(d1) ping-b-42", timeout: 120)
      terminal.type(Self.switchFocus)
      try terminal.waitFor("console input: domain 2 (linux-b)", timeout: 30)
      terminal.type("echo demo-b-$((6*7))\r")
      try terminal.waitFor("(d2) demo-b-42", timeout: 60)

      terminal.type("poweroff -f\r")
      try terminal.waitFor("domain 2 (linux-b): destroyed", timeout: 60)
      // The input moves on to the next live domain: the driver domain, whose end leaves linux-a running.
      try terminal.waitFor("console input: domain 4 (drv)", timeout: 30)
      terminal.type("poweroff -f\r")
      try terminal.waitFor("domain 4 (drv): destroyed", timeout: 60)
      try terminal.waitFor("console input: domain 1 (linux-a)", timeout: 30)
      terminal.type("echo still-a-$((6*7))\r")
      try terminal.waitFor("(d1) still-a-42", timeout: 60)
      terminal.type("poweroff -f\r")
      try terminal.waitFor("domain 1 (linux-a): destroyed", timeout: 60)
      // Every domain has ended (guest-spin long before); the hypervisor stays up with the input.
      try terminal.waitFor("ondone=stay: the hypervisor stays up", timeout: 60)
      terminal.type(Self.switchFocus)
      try terminal.waitFor("console input: the hypervisor", timeout: 30)
      terminal.type("q")
      try terminal.waitFor("visor: the demo ended: every domain had ended cleanly", timeout: 60)

      let end = demo.wait(timeout: 30)
      #expect(end?.status == 0 && end?.signaled == false, "visor demo ended with \(String(describing: end))\n\(terminal.tail())")
      #expect(!terminal.output.contains("SWIFTVISOR CRASH"), "\(terminal.tail())")
      #expect(terminal.output.contains("memory: all "), "\(terminal.tail())")
      let after = terminal.settings()
      #expect(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag,
              "the terminal's settings were not restored")
      if let qemu { #expect(!processExists(qemu), "QEMU \(qemu) still runs after visor ended") }
    }

    /// How visor may be ended from outside, and what each must leave: the terminal's settings
    /// as they were (when the terminal is still there) and no QEMU.
    enum Ending: String, CaseIterable, CustomStringConvertible {
      case sigterm, sighup, sigkill
      var description: String { rawValue }
    }

    @Test("visor demo ended from outside restores the terminal and leaves no QEMU", arguments: Ending.allCases)
    func endedFromOutside(_ ending: Ending) throws {
      let (visor, arguments) = try Self.demoCommand()
      let terminal = try PseudoTerminal()
      let before = terminal.settings()
      let demo = try terminal.spawn(visor, arguments)
      defer { demo.end() }
      try terminal.waitFor("console input: domain 1 (linux-a)", timeout: 400)
      let qemu = try #require(demo.childNamed("qemu-system-x86"), "no QEMU under visor\n\(terminal.tail())")

      switch ending {
      case .sigterm: kill(demo.pid, SIGTERM)
      case .sighup: kill(demo.pid, SIGHUP)   // what the kernel sends when the terminal goes away
      case .sigkill: kill(demo.pid, SIGKILL)
      }
      let end = demo.wait(timeout: 30)
      let expected: Int32 = switch ending {
      case .sigterm: SIGTERM
      case .sighup: SIGHUP
      case .sigkill: SIGKILL
      }
      #expect(end?.signaled == true && end?.status == expected, "visor ended with \(String(describing: end))")
      // The parent-death signal (SIGKILL) or visor's SIGTERM ends QEMU within moments.
      let deadline = Date().addingTimeInterval(10)
      while processExists(qemu) && Date() < deadline { usleep(100_000) }
      #expect(!processExists(qemu), "QEMU \(qemu) still runs after visor was ended by \(ending)")
      if ending != .sigkill {   // nothing runs in a program killed with SIGKILL
        let after = terminal.settings()
        #expect(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag,
                "the terminal's settings were not restored after \(ending)")
      }
    }

    @Test("From a pipe: the console relays, and q on the hypervisor while domains run ends the demo with status 0")
    func demoFromAPipe() throws {
      let (visor, arguments) = try Self.demoCommand()
      let terminal = try PseudoTerminal(pipe: true)
      let demo = try terminal.spawn(visor, arguments)
      defer { demo.end() }
      try terminal.waitFor("console input: domain 1 (linux-a)", timeout: 400)
      // Ctrl-A three times moves the input along the live domains, then to the hypervisor.
      var moves = 0
      while !terminal.output.contains("console input: the hypervisor") && moves < 5 {
        let mark = terminal.byteCount
        terminal.type(Self.switchFocus)
        // The whole line: the pipe may deliver "console input: " and the focus's name in two
        // reads, and the loop's test would then type one switch too many.
        try terminal.waitFor("(Ctrl-A three times to switch)", after: mark, timeout: 30)
        moves += 1
      }
      try terminal.waitFor("console input: the hypervisor", timeout: 1)
      terminal.type("q")
      try terminal.waitFor("poweroff: quit from the console", timeout: 60)
      try terminal.waitFor("visor: the demo ended: quit from the hypervisor's console", timeout: 60)
      let end = demo.wait(timeout: 30)
      #expect(end?.status == 0 && end?.signaled == false, "visor demo ended with \(String(describing: end))\n\(terminal.tail())")
    }
  }
}

/// The host tool under test, built by scripts/test and named by `SWIFTVISOR_VISOR`.
enum SystemVisor {
  static let variable = "SWIFTVISOR_VISOR"

  static func path() throws -> String {
    let hint = "build it (`swift build --product visor`) and export its path; scripts/test does both"
    guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else {
      throw SystemImage.Missing(description: "\(variable) is not set; \(hint)")
    }
    guard FileManager.default.isExecutableFile(atPath: path) else {
      throw SystemImage.Missing(description: "\(variable)=\(path) is not an executable; \(hint)")
    }
    return path
  }
}

func processExists(_ pid: pid_t) -> Bool {
  // A zombie is gone for this purpose: it runs nothing and holds no terminal.
  guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
  guard let close = stat.lastIndex(of: ")") else { return false }
  return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}

/// A pseudo-terminal whose master side this test holds: a program spawned on it has it as its
/// controlling terminal (a session of its own), as in a terminal window. With `pipe: true` the
/// program gets pipes instead, and nothing is a terminal.
final class PseudoTerminal: @unchecked Sendable {
  /// What the test writes (the master, or the program's stdin pipe).
  private let writeEnd: Int32
  /// What the test reads (the master, or the program's stdout+stderr pipe).
  private let readEnd: Int32
  private let slavePath: String?
  private var childInput: Int32 = -1
  private var childOutput: Int32 = -1
  private let condition = NSCondition()
  private var bytes: [UInt8] = []

  init(pipe: Bool = false) throws {
    if pipe {
      var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1]
      guard Glibc.pipe(&input) == 0, Glibc.pipe(&output) == 0 else { throw SystemImage.Missing(description: "pipe failed") }
      writeEnd = input[1]
      readEnd = output[0]
      childInput = input[0]
      childOutput = output[1]
      slavePath = nil
    } else {
      // posix_openpt, unlockpt and ptsname, as glibc does them on Linux (the Glibc module
      // leaves those three out): /dev/ptmx, TIOCSPTLCK 0, TIOCGPTN.
      let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
      var unlock: Int32 = 0, number: UInt32 = 0
      let TIOCSPTLCK: UInt = 0x4004_5431, TIOCGPTN: UInt = 0x8004_5430
      guard master >= 0, ioctl(master, TIOCSPTLCK, &unlock) == 0, ioctl(master, TIOCGPTN, &number) == 0 else {
        throw SystemImage.Missing(description: "no pseudo-terminal: \(String(cString: strerror(errno)))")
      }
      writeEnd = master
      readEnd = master
      slavePath = "/dev/pts/\(number)"
      var size = winsize(ws_row: 50, ws_col: 160, ws_xpixel: 0, ws_ypixel: 0)
      _ = ioctl(master, UInt(TIOCSWINSZ), &size)
    }
    let thread = Thread { [self] in readLoop() }
    thread.start()
  }

  private func readLoop() {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress!, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { break }   // EIO once no process holds the terminal
      condition.lock()
      bytes += buffer[0..<n]
      condition.broadcast()
      condition.unlock()
    }
  }

  /// Everything the program wrote so far.
  var output: String {
    condition.lock()
    defer { condition.unlock() }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// How many bytes the program wrote so far: a mark for `waitFor(_:after:timeout:)`.
  var byteCount: Int {
    condition.lock()
    defer { condition.unlock() }
    return bytes.count
  }

  func tail(_ count: Int = 4000) -> String { String(output.suffix(count)) }

  /// Waits until the output from byte `after` (a `byteCount`) on contains `text`.
  func waitFor(_ text: String, after: Int = 0, timeout: Double) throws {
    let deadline = Date().addingTimeInterval(timeout)
    let wanted = Array(text.utf8)
    condition.lock()
    defer { condition.unlock() }
    while true {
      let start = min(after, bytes.count)
      if bytes.count - start >= wanted.count,
         (start...(bytes.count - wanted.count)).contains(where: { bytes[$0..<($0 + wanted.count)].elementsEqual(wanted) }) {
        return
      }
      guard condition.wait(until: deadline) else {
        let tail = String(decoding: bytes.suffix(4000), as: UTF8.self)
        throw SystemImage.Missing(description: "waited \(Int(timeout)) s for \"\(text)\"; the terminal shows:\n\(tail)")
      }
    }
  }

  /// Types `text` (as a person at the keyboard: it goes in whole, at once).
  func type(_ text: String) {
    let data = Array(text.utf8)
    _ = data.withUnsafeBytes { write(writeEnd, $0.baseAddress!, $0.count) }
  }

  /// The terminal's settings (the slave's: on Linux the master reports them).
  func settings() -> termios {
    var settings = termios()
    _ = tcgetattr(readEnd, &settings)
    return settings
  }

  /// Starts `executable` with this terminal as its stdin, stdout, stderr and controlling
  /// terminal, in a session of its own (or with the pipes).
  func spawn(_ executable: String, _ arguments: [String]) throws -> SpawnedProgram {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let slavePath {
      posix_spawn_file_actions_addopen(&actions, 0, slavePath, O_RDWR, 0)
      posix_spawn_file_actions_adddup2(&actions, 0, 1)
      posix_spawn_file_actions_adddup2(&actions, 0, 2)
    } else {
      posix_spawn_file_actions_adddup2(&actions, childInput, 0)
      posix_spawn_file_actions_adddup2(&actions, childOutput, 1)
      posix_spawn_file_actions_adddup2(&actions, childOutput, 2)
    }
    for fd in [writeEnd, readEnd, childInput, childOutput] where fd > 2 {
      posix_spawn_file_actions_addclose(&actions, fd)
    }
    // A new session, so opening the slave makes it the controlling terminal, as a terminal
    // emulator's shell has it. The demo runs its own scripts and builds: it gets this
    // environment (PATH, HOME).
    let (pid, result) = CleanSpawn.start(executable, arguments, actions: &actions, extraFlags: CleanSpawn.newSessionFlag)
    if childInput >= 0 { close(childInput); close(childOutput) }
    guard result == 0 else { throw SystemImage.Missing(description: "cannot start \(executable): \(String(cString: strerror(result)))") }
    return SpawnedProgram(pid: pid)
  }
}

/// A program the test started; `end()` makes sure it and its QEMU are gone.
final class SpawnedProgram: @unchecked Sendable {
  let pid: pid_t
  private var ended: (status: Int32, signaled: Bool)?

  init(pid: pid_t) { self.pid = pid }

  /// Waits up to `timeout` seconds for the program to exit; nil if it did not.
  func wait(timeout: Double) -> (status: Int32, signaled: Bool)? {
    if let ended { return ended }
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
      var status: Int32 = 0
      let result = waitpid(pid, &status, WNOHANG)
      if result == pid {
        let signal = status & 0x7f
        ended = signal != 0 ? (signal, true) : ((status >> 8) & 0xff, false)
        return ended
      }
      if result < 0 { return nil }
      usleep(50_000)
    } while Date() < deadline
    return nil
  }

  /// The pid of a child process whose name starts with `name`, or nil.
  func childNamed(_ name: String) -> pid_t? {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
      guard let child = pid_t(entry),
            let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
      let comm = stat[stat.index(after: open)..<close]
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      if fields.count > 1, pid_t(fields[1]) == pid, comm.hasPrefix(name) { return child }
    }
    return nil
  }

  /// Ends the program if the test left it running (a failed expectation): its QEMU goes with it.
  func end() {
    guard wait(timeout: 0) == nil else { return }
    kill(pid, SIGTERM)
    if wait(timeout: 10) == nil {
      kill(pid, SIGKILL)
      _ = wait(timeout: 10)
    }
  }
}
