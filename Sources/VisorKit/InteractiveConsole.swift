import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `visor demo`'s console: visor owns the terminal and relays, QEMU only sees pipes.
///
/// QEMU's `-serial stdio` on the terminal itself does not work from a program: a child started
/// in a process group of its own is not the terminal's foreground group, and the kernel stops it
/// (SIGTTIN, SIGTTOU) the moment it reads the terminal or changes its settings. So visor stays the
/// terminal's only user: it puts the terminal in raw mode (Ctrl-C, Ctrl-Z and Ctrl-A are bytes for
/// the guests, as on a serial line), copies what is typed to QEMU's stdin and QEMU's output to
/// its own stdout, and puts the settings back on every way out:
/// - QEMU exits (the hypervisor powered off, or QEMU failed): the normal end;
/// - visor gets SIGTERM, SIGHUP, SIGINT or SIGQUIT: the handler restores the terminal, sends
///   SIGTERM to QEMU and ends visor with the same signal;
/// - visor crashes (SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP): the same handler;
/// - visor is killed with SIGKILL: nothing runs in visor, but QEMU was started under
///   `setpriv --pdeathsig KILL`, so the kernel kills it with its parent. (A SIGKILLed program
///   cannot restore a terminal; `stty sane` can.)
///
/// With standard input not a terminal (a pipe, /dev/null) nothing is changed on it and the
/// relay works the same.
public enum InteractiveConsole {
  /// How the QEMU run ended.
  public struct Ending: Sendable {
    public var status: Int32
    public var signaled: Bool
  }

  /// The signals whose arrival ends visor and QEMU with the terminal restored.
  static let endingSignals: [Int32] = [SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP]

  /// The program and arguments that start `qemu` so that it dies with visor: `setpriv
  /// --pdeathsig KILL` (util-linux) when it is on `PATH`, else QEMU alone. The parent-death
  /// signal is tied to the thread that starts the child, so `run` must be called on a thread
  /// that lives as long as visor (the main thread).
  public static func command(qemu: String, arguments: [String],
                             searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> [String] {
    guard let setpriv = HostTools.find("setpriv", searchPath: searchPath) else { return [qemu] + arguments }
    return [setpriv, "--pdeathsig", "KILL", "--", qemu] + arguments
  }

  /// Starts `command` (from `command(qemu:arguments:)`) with its stdin and stdout relayed to
  /// this process's, its stderr to this process's stderr, and waits for it to exit.
  public static func run(_ command: [String]) throws(VisorError) -> Ending {
    precondition(!command.isEmpty)
    TerminalState.prepare()
    let child = try ChildProcess(executable: command[0], arguments: Array(command.dropFirst()), input: true)
    TerminalState.childPID = child.pid
    TerminalState.installHandlers()
    TerminalState.enterRawMode()
    defer {
      TerminalState.restore()
      TerminalState.childPID = 0
      // Whatever made this return early, no QEMU stays behind.
      child.send(SIGTERM)
      if !child.wait(timeout: 3) { child.send(SIGKILL) }
    }

    let input = child.stdinWriteEnd!
    relay(from: 0, to: input, name: "visor terminal input", closeTarget: true)
    let output = relay(from: child.stdout.fileDescriptor, to: 1, name: "visor console output")
    let diagnostics = relay(from: child.stderr.fileDescriptor, to: 2, name: "visor qemu errors")
    _ = child.wait()
    // QEMU has exited: its output ends at once, unless something it started still holds the pipes.
    _ = output.wait(timeout: .now() + 5)
    _ = diagnostics.wait(timeout: .now() + 5)
    let end = child.termination
    return Ending(status: end.status, signaled: end.signaled)
  }

  /// Copies bytes from `source` to `target` on a thread of its own until `source` ends or
  /// `target` fails; the semaphore is signalled then. The input side (the terminal) is never
  /// waited for: a read of the terminal cannot be cancelled, and visor exits after QEMU anyway.
  @discardableResult
  private static func relay(from source: Int32, to target: Int32, name: String, closeTarget: Bool = false) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
      PipeWriting.blockSIGPIPE()
      var buffer = [UInt8](repeating: 0, count: 4096)
      while true {
        let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0, buffer.withUnsafeBytes({ PipeWriting.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: target) }) else { break }
      }
      if closeTarget { close(target) }
      done.signal()
    }
    thread.name = name
    thread.start()
    return done
  }
}

/// The terminal's saved settings and QEMU's pid, for the signal handler. Plain globals written
/// before the handler is installed, so the handler touches no lazily initialised Swift state and
/// calls only async-signal-safe functions (tcsetattr, kill, signal, raise).
private enum TerminalState {
  nonisolated(unsafe) static var saved = termios()
  nonisolated(unsafe) static var savedValid: Int32 = 0
  nonisolated(unsafe) static var childPID: pid_t = 0

  /// Touches every global so none is first initialised inside the handler.
  static func prepare() {
    savedValid = 0
    childPID = 0
    _ = InteractiveConsole.endingSignals
  }

  static func installHandlers() {
    for number in InteractiveConsole.endingSignals {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { received in
        if TerminalState.savedValid != 0 { tcsetattr(0, TCSANOW, &TerminalState.saved) }
        if TerminalState.childPID > 0 { kill(TerminalState.childPID, SIGTERM) }
        signal(received, SIG_DFL)
        raise(received)
      }
      sigemptyset(&action.sa_mask)
      action.sa_flags = 0
      sigaction(number, &action, nil)
    }
  }

  /// Raw input as a serial line needs it (QEMU's own stdio backend does the same): no echo, no
  /// line editing, no signals from keys, no CR-to-NL or flow control; output post-processing
  /// stays on, so the console's newlines start new lines.
  static func enterRawMode() {
    guard isatty(0) != 0 else { return }
    var settings = termios()
    guard tcgetattr(0, &settings) == 0 else { return }
    saved = settings
    savedValid = 1
    settings.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON)
    settings.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | ISIG | IEXTEN)
    settings.c_cflag = (settings.c_cflag & ~tcflag_t(CSIZE | PARENB)) | tcflag_t(CS8)
    settings.c_oflag |= tcflag_t(OPOST)
    withUnsafeMutableBytes(of: &settings.c_cc) { cc in
      cc[Int(VMIN)] = 1
      cc[Int(VTIME)] = 0
    }
    tcsetattr(0, TCSANOW, &settings)
  }

  static func restore() {
    guard savedValid != 0 else { return }
    tcsetattr(0, TCSANOW, &saved)
    savedValid = 0
  }
}
