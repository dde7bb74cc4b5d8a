/// Exit status of `visor`, and the classification of one QEMU run of the image.
///
/// The image reports how it ended by writing a value to QEMU's `isa-debug-exit` device
/// (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`); QEMU then exits with `(value << 1) | 1`.
///
/// | image writes | QEMU status | `VisorExit`   | visor exit |
/// |--------------|-------------|---------------|------------|
/// | `0x10`       | 33          | `.clean`      | 0          |
/// | `0x11`       | 35          | `.crash`      | 3          |
/// | `0x12`       | 37          | `.panic`      | 4          |
/// | `0x13`       | 39          | `.domainFailed` | 10       |
/// | `0x14`       | 41          | `.quit`       | 12         |
/// | nothing      | 0           | `.noExitCode` | 8          |
///
/// A triple fault resets the machine, and with `-no-reboot` QEMU then exits with status 0, so a
/// successful run must always be a distinct, explicit code.
public enum VisorExit: Int32, Sendable, CaseIterable, CustomStringConvertible {
  /// The hypervisor powered off cleanly (debug-exit value 0x10, QEMU status 33).
  case clean = 0
  /// The run finished but a check on its console failed (e.g. `visor bench` did not see an expected line).
  case checkFailed = 1
  /// The hypervisor crashed: a CPU exception or a Swift runtime trap. A crash report was printed
  /// (debug-exit value 0x11, QEMU status 35).
  case crash = 3
  /// The hypervisor panicked or a self-test failed. An error was printed
  /// (debug-exit value 0x12, QEMU status 37).
  case panic = 4
  /// QEMU did not exit within the time limit and visor killed it.
  case timeout = 5
  /// A required host tool is missing (`qemu-system-x86_64`, `swift`, `grub-mkrescue`, `xorriso`).
  case toolMissing = 6
  /// Building the image (or the ISO) failed; the compiler's output was printed.
  case buildFailed = 7
  /// QEMU exited with status 0 without a debug-exit write: a triple fault (reset with
  /// `-no-reboot`), or an ACPI poweroff on a machine without `isa-debug-exit`.
  case noExitCode = 8
  /// QEMU itself failed (bad arguments, unreadable image, killed by a signal, unknown status).
  case qemuFailed = 9
  /// Every domain ended and the hypervisor powered off, but not every domain with a clean
  /// poweroff (one crashed, or could not be built; a reboot counts as a clean end).
  case domainFailed = 10
  /// A domain configuration, kernel or ramdisk is unusable (the message names the file).
  case badConfig = 11
  /// Someone pressed `q` on the hypervisor's console while domains still ran, and none had
  /// failed (debug-exit value 0x14, QEMU status 41). `visor demo` takes it as a clean end.
  case quit = 12
  /// Bad command-line arguments (ArgumentParser's validation error status).
  case usage = 64

  /// Values the image writes to the `isa-debug-exit` port.
  public enum DebugExitValue {
    public static let clean: UInt32 = 0x10
    public static let crash: UInt32 = 0x11
    public static let panic: UInt32 = 0x12
    public static let domainFailed: UInt32 = 0x13
    public static let quit: UInt32 = 0x14
  }

  /// The I/O port of the `isa-debug-exit` device.
  public static let debugExitPort: UInt16 = 0xf4

  /// QEMU's exit status when the image writes `value` to `isa-debug-exit`.
  public static func qemuStatus(forDebugExitValue value: UInt32) -> Int32 {
    Int32(truncatingIfNeeded: (value << 1) | 1)
  }

  /// Classifies how one QEMU run ended.
  /// - Parameters:
  ///   - qemuStatus: QEMU's exit status, or the signal number if `signaled`.
  ///   - signaled: QEMU was terminated by a signal.
  ///   - timedOut: visor killed QEMU because the time limit passed.
  /// A debug-exit status wins over `timedOut` (the image finished just as the limit passed).
  public static func classify(qemuStatus: Int32, signaled: Bool = false, timedOut: Bool = false) -> VisorExit {
    if !signaled {
      switch qemuStatus {
      case Self.qemuStatus(forDebugExitValue: DebugExitValue.clean): return .clean
      case Self.qemuStatus(forDebugExitValue: DebugExitValue.crash): return .crash
      case Self.qemuStatus(forDebugExitValue: DebugExitValue.panic): return .panic
      case Self.qemuStatus(forDebugExitValue: DebugExitValue.domainFailed): return .domainFailed
      case Self.qemuStatus(forDebugExitValue: DebugExitValue.quit): return .quit
      default: break
      }
    }
    if timedOut { return .timeout }
    if signaled { return .qemuFailed }
    return qemuStatus == 0 ? .noExitCode : .qemuFailed
  }

  /// A one-line human explanation.
  public var description: String {
    switch self {
    case .clean: "clean poweroff"
    case .checkFailed: "the console lacked an expected line"
    case .crash: "hypervisor crash (see the crash report above)"
    case .panic: "hypervisor panic or self-test failure (see the error above)"
    case .timeout: "timed out: QEMU was killed"
    case .toolMissing: "a required host tool is missing"
    case .buildFailed: "the image build failed"
    case .noExitCode: "QEMU stopped without a hypervisor exit code (triple fault?)"
    case .qemuFailed: "QEMU failed (see its error above)"
    case .domainFailed: "not every domain ended cleanly (see the domain messages above)"
    case .badConfig: "a domain configuration is unusable"
    case .quit: "quit from the hypervisor's console (q) while domains still ran"
    case .usage: "bad arguments"
    }
  }
}

/// An error from VisorKit: what went wrong, what to do about it, and the exit status visor uses.
public struct VisorError: Error, CustomStringConvertible, Sendable {
  public var exit: VisorExit
  /// One line, actionable.
  public var message: String
  /// Long supporting output (compiler or tool output), printed after the message.
  public var detail: String?

  public init(_ exit: VisorExit, _ message: String, detail: String? = nil) {
    self.exit = exit
    self.message = message
    self.detail = detail
  }

  public var description: String {
    guard let detail, !detail.isEmpty else { return message }
    return message + "\n" + detail
  }

  /// The one-line instruction for a missing QEMU.
  public static let qemuInstallHint = "install it: apt-get install qemu-system-x86 (or run scripts/setup)"

  public static func qemuMissing() -> VisorError {
    VisorError(.toolMissing, "\(QEMURunner.executableName) not found on PATH; \(qemuInstallHint)")
  }
}
