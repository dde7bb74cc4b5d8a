import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`: stdin from /dev/null (or from a pipe the parent
/// writes, with `input`), stdout and stderr into pipes, no signals blocked or ignored, no other
/// file descriptors inherited.
///
/// Foundation's `Process` is not used because its child inherits the signal mask of the spawning
/// thread, and worker threads (Dispatch, Swift concurrency, the test runner's) block nearly every
/// signal: a QEMU started from one ignores the SIGTERM that ends it at the time limit.
final class ChildProcess: @unchecked Sendable {
  let pid: pid_t
  let stdout: FileHandle
  /// Same as `stdout` when the two streams were merged.
  let stderr: FileHandle
  /// The write end of the child's stdin pipe (with `input`; nil when stdin is /dev/null). The
  /// owner writes it with write(2) and closes it; the child holds no other copy.
  let stdinWriteEnd: Int32?

  private let lock = NSLock()
  private var reaped = false
  private var waitStatus: Int32 = 0
  private var exitedAt: UInt64 = 0
  private let exited = DispatchSemaphore(value: 0)

  /// - Parameter mergeOutput: send stderr into the stdout pipe.
  /// - Parameter input: give the child a pipe as stdin, whose write end is `stdinWriteEnd`,
  ///   instead of /dev/null.
  init(
    executable: String, arguments: [String], directory: String? = nil, mergeOutput: Bool = false, input: Bool = false
  ) throws(VisorError) {
    var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1], inPipe: [Int32] = [-1, -1]
    guard GNU.pipe2(&outPipe, O_CLOEXEC) == 0, mergeOutput || GNU.pipe2(&errPipe, O_CLOEXEC) == 0,
          !input || GNU.pipe2(&inPipe, O_CLOEXEC) == 0 else {
      let reason = String(cString: strerror(errno))
      for fd in outPipe + errPipe + inPipe where fd >= 0 { close(fd) }
      throw VisorError(.qemuFailed, "cannot create a pipe: \(reason)")
    }
    if mergeOutput { errPipe = outPipe }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if input {
      // dup2 clears FD_CLOEXEC on the copy; both pipe ends themselves close at exec.
      posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    } else {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    // Nothing else: another thread's pipe must not stay open in this child.
    GNU.addclosefrom(&actions, 3)
    if let directory { GNU.addchdir(&actions, directory) }

    let (pid, result) = CleanSpawn.start(executable, arguments, actions: &actions)
    close(outPipe[1])
    if !mergeOutput { close(errPipe[1]) }
    if input { close(inPipe[0]) }
    guard result == 0 else {
      close(outPipe[0])
      if !mergeOutput { close(errPipe[0]) }
      if input { close(inPipe[1]) }
      throw VisorError(.toolMissing, "cannot start \(executable): \(String(cString: strerror(result)))")
    }
    self.pid = pid
    stdinWriteEnd = input ? inPipe[1] : nil
    stdout = FileHandle(fileDescriptor: outPipe[0], closeOnDealloc: true)
    stderr = mergeOutput ? stdout : FileHandle(fileDescriptor: errPipe[0], closeOnDealloc: true)

    let thread = Thread { [self] in reap() }
    thread.name = "visor child reaper"
    thread.start()
  }

  private func reap() {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    lock.lock()
    reaped = true
    waitStatus = status
    exitedAt = DispatchTime.now().uptimeNanoseconds
    lock.unlock()
    exited.signal()
  }

  /// Waits for the child to exit; false if `timeout` (seconds) passed first.
  func wait(timeout: Double? = nil) -> Bool {
    let done = timeout.map { exited.wait(timeout: .now() + $0) == .success } ?? { exited.wait(); return true }()
    if done { exited.signal() }  // stay signalled for later waits
    return done
  }

  /// Sends `signal` to the child, unless it has already been reaped (its PID may be reused).
  func send(_ signal: Int32) {
    lock.lock()
    defer { lock.unlock() }
    if !reaped { kill(pid, signal) }
  }

  /// After `wait()` returned true: the exit status or the terminating signal.
  var termination: (status: Int32, signaled: Bool, exitedAt: UInt64) {
    lock.lock()
    defer { lock.unlock() }
    // WIFSIGNALED / WTERMSIG / WEXITSTATUS from <sys/wait.h>
    let signal = waitStatus & 0x7f
    if signal != 0 && signal != 0x7f { return (signal, true, exitedAt) }
    return ((waitStatus >> 8) & 0xff, false, exitedAt)
  }
}

/// Writing to a child's pipe from a thread of visor's own.
enum PipeWriting {
  /// Blocks SIGPIPE on the calling thread, so a write to a child that has exited fails with
  /// EPIPE instead of killing visor.
  static func blockSIGPIPE() {
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
  }

  /// Writes all of `bytes` to `descriptor`, retrying after EINTR; false if a write failed (the
  /// reader closed its end or exited).
  static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Bool {
    var offset = 0
    while offset < bytes.count {
      let n = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
      if n < 0 {
        if errno == EINTR { continue }
        return false
      }
      if n == 0 { return false }
      offset += n
    }
    return true
  }
}

/// glibc's GNU extensions, which the Glibc module does not import (it is built without
/// `_GNU_SOURCE`); resolved at run time. All exist since glibc 2.34 (Debian 12 has 2.36).
/// `posix_spawn` with nothing of the spawning thread's signal state: no signal blocked, every
/// one at its default disposition (see `ChildProcess` for why), and this process's
/// environment. Used by `ChildProcess` and by the tests that start visor on a terminal.
public enum CleanSpawn {
  /// glibc's POSIX_SPAWN_SETSID: the child starts a new session.
  public static let newSessionFlag: Int32 = 0x80

  /// Starts `executable` with `actions`; `extraFlags` are added to the spawn flags
  /// (`newSessionFlag`). Returns the child's pid and posix_spawn's result (0 on success).
  public static func start(
    _ executable: String, _ arguments: [String], actions: inout posix_spawn_file_actions_t, extraFlags: Int32 = 0
  ) -> (pid: pid_t, result: Int32) {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extraFlags))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    return (pid, result)
  }
}

enum GNU {
  private static func symbol<F>(_ name: String, as type: F.Type) -> F {
    guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {
      fatalError("glibc lacks \(name): visor needs glibc 2.34 or later")
    }
    return unsafeBitCast(address, to: type)
  }

  private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
  private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
  private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

  private nonisolated(unsafe) static let pipe2Function = symbol("pipe2", as: Pipe2.self)
  private nonisolated(unsafe) static let addCloseFromFunction = symbol("posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)
  private nonisolated(unsafe) static let addChdirFunction = symbol("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)

  /// `pipe2(fds, flags)`.
  static func pipe2(_ fds: inout [Int32], _ flags: Int32) -> Int32 {
    fds.withUnsafeMutableBufferPointer { pipe2Function($0.baseAddress!, flags) }
  }

  /// `posix_spawn_file_actions_addclosefrom_np`: close every descriptor from `from` on in the child.
  @discardableResult
  static func addclosefrom(_ actions: inout posix_spawn_file_actions_t, _ from: Int32) -> Int32 {
    addCloseFromFunction(&actions, from)
  }

  /// `posix_spawn_file_actions_addchdir_np`: change directory in the child.
  @discardableResult
  static func addchdir(_ actions: inout posix_spawn_file_actions_t, _ path: String) -> Int32 {
    addChdirFunction(&actions, path)
  }
}
