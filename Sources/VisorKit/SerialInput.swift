import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Bytes a run types on the serial line: written to QEMU's stdin, which `-serial stdio` turns
/// into the input of the machine's COM1 (what the hypervisor reads from its UART and passes to
/// the domain with the console focus).
///
/// Chunks go out in order, each once a console line containing its `after` text is complete, so
/// nothing is typed before someone listens. Only lines that arrive after the previous chunk was
/// released count, so the same prompt can release several chunks; a chunk whose `after` is nil
/// goes right after the previous one (the first: at once). A chunk whose line never appears is
/// never sent, nor is anything after it (`RunResult.inputTimes` tells how far it got).
public struct SerialInput: Sendable, Equatable {
  /// Text a console line must contain for the chunk to be sent; nil: no need to wait.
  public var after: String?
  public var bytes: [UInt8]

  public init(after: String? = nil, bytes: [UInt8]) {
    self.after = after
    self.bytes = bytes
  }

  /// `text` as UTF-8; a newline ends a line for the guest, "\u{1}" is Ctrl-A.
  public init(after: String? = nil, send text: String) {
    self.init(after: after, bytes: Array(text.utf8))
  }

  /// `.after("login:", send: "root\n")`.
  public static func after(_ text: String, send: String) -> SerialInput {
    SerialInput(after: text, send: send)
  }
}

/// Writes a run's `SerialInput` chunks to QEMU's stdin pipe as the console lines that release
/// them arrive. The console reader calls `lineArrived` for each line, in order; the writes happen
/// on a thread of the feeder's own, so a QEMU slow to read its stdin never holds up the reading
/// of its stdout. SIGPIPE is blocked on that thread, so a QEMU that has exited makes a write fail
/// with EPIPE instead of killing the process.
final class SerialInputFeeder: @unchecked Sendable {
  private let condition = NSCondition()
  private let chunks: [SerialInput]
  private let descriptor: Int32
  private let start: UInt64
  private let stopped = DispatchSemaphore(value: 0)
  /// The next chunk waiting for its line.
  private var next = 0
  /// Released chunks not written yet.
  private var queue: [[UInt8]] = []
  private var closing = false
  private var sentAt: [Double] = []

  /// - Parameter descriptor: the write end of the stdin pipe; the feeder closes it in `finish`.
  /// - Parameter start: `DispatchTime.now().uptimeNanoseconds` at QEMU's start.
  init(_ chunks: [SerialInput], writingTo descriptor: Int32, start: UInt64) {
    self.chunks = chunks
    self.descriptor = descriptor
    self.start = start
    condition.lock()
    releaseLocked(waitingFor: nil)
    condition.unlock()
    let thread = Thread { [self] in writeLoop() }
    thread.name = "visor serial input"
    thread.start()
  }

  /// A console line is complete: if it is what the next chunk waits for, release it.
  func lineArrived(_ line: ConsoleLine) {
    condition.lock()
    defer { condition.unlock() }
    releaseLocked(waitingFor: line.text)
  }

  /// Releases the next chunk if `line` contains its text (nil: only chunks with no text),
  /// then every following chunk with no text.
  private func releaseLocked(waitingFor line: String?) {
    guard next < chunks.count else { return }
    if let after = chunks[next].after {
      guard let line, line.contains(after) else { return }
    }
    repeat {
      queue.append(chunks[next].bytes)
      next += 1
    } while next < chunks.count && chunks[next].after == nil
    condition.signal()
  }

  /// Queues `bytes` to go out now, whatever chunk waits for its line (the dump a run asks for
  /// at its time limit). Nothing once `finish` began.
  func sendNow(_ bytes: [UInt8]) {
    condition.lock()
    defer { condition.unlock() }
    guard !closing else { return }
    queue.append(bytes)
    condition.signal()
  }

  private func writeLoop() {
    PipeWriting.blockSIGPIPE()
    while true {
      condition.lock()
      while queue.isEmpty && !closing { condition.wait() }
      if queue.isEmpty {
        condition.unlock()
        break
      }
      let chunk = queue.removeFirst()
      condition.unlock()
      // A failure means QEMU closed its stdin or exited: nothing more can go in.
      guard writeAll(chunk) else { break }
      condition.lock()
      sentAt.append(seconds(since: start))
      condition.unlock()
    }
    close(descriptor)
    stopped.signal()
  }

  private func writeAll(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { PipeWriting.writeAll($0, to: descriptor) }
  }

  /// After QEMU exited: writes nothing more, closes the pipe and returns when each chunk that
  /// was written went out (seconds from QEMU's start).
  func finish() -> [Double] {
    condition.lock()
    closing = true
    queue.removeAll()
    condition.signal()
    condition.unlock()
    // A write stuck on a full pipe ends with EPIPE once QEMU (the only reader) is gone.
    _ = stopped.wait(timeout: .now() + 5)
    condition.lock()
    defer { condition.unlock() }
    return sentAt
  }
}
