import Foundation

/// Finding and running host programs.
public enum HostTools {
  /// The full path of `name` on `searchPath` (a `PATH`-style list), or nil.
  /// A name containing `/` is returned as is if it is an executable file.
  public static func find(_ name: String, searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
    let fm = FileManager.default
    if name.contains("/") { return fm.isExecutableFile(atPath: name) ? name : nil }
    for dir in (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where !dir.isEmpty {
      let candidate = String(dir) + "/" + name
      var isDirectory: ObjCBool = false
      if fm.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
         fm.isExecutableFile(atPath: candidate) {
        return candidate
      }
    }
    return nil
  }

  /// Runs `executable` with `arguments` to completion; stdout and stderr are merged into `output`.
  /// With `echo`, the output is also copied to visor's stderr as it arrives.
  public static func run(
    _ executable: String, _ arguments: [String], in directory: URL? = nil, echo: Bool = false
  ) throws(VisorError) -> (status: Int32, output: String) {
    let child = try ChildProcess(executable: executable, arguments: arguments, directory: directory?.path, mergeOutput: true)
    let collector = OutputCollector(echo: echo ? FileHandle.standardError : nil)
    collector.drain(child.stdout)
    _ = child.wait()
    collector.waitForEOF()
    let end = child.termination
    return (end.signaled ? 128 + end.status : end.status, collector.text)
  }
}

/// Collects a child's output stream on a reader thread, timestamping every line, and optionally
/// echoing the bytes as they arrive.
final class OutputCollector: @unchecked Sendable {
  private let lock = NSLock()
  private let done = DispatchSemaphore(value: 0)
  private let echo: FileHandle?
  private let start: UInt64
  private let onLine: (@Sendable (ConsoleLine) -> Void)?
  private var data = Data()
  private var partial = Data()
  private var lineList: [ConsoleLine] = []

  /// - Parameter start: `DispatchTime.now().uptimeNanoseconds` at the moment the child started.
  /// - Parameter onLine: called on the reader thread with each line completed by a newline, in
  ///   order, after it was recorded (not for a last line without one).
  init(
    echo: FileHandle?, start: UInt64 = DispatchTime.now().uptimeNanoseconds,
    onLine: (@Sendable (ConsoleLine) -> Void)? = nil
  ) {
    self.echo = echo
    self.start = start
    self.onLine = onLine
  }

  /// Starts a thread that reads `handle` until EOF.
  func drain(_ handle: FileHandle) {
    let thread = Thread { [self] in
      while true {
        let chunk = handle.availableData
        if chunk.isEmpty { break }
        append(chunk)
      }
      finish()
      done.signal()
    }
    thread.name = "visor output reader"
    thread.start()
  }

  /// Waits until the reader saw EOF (or `timeout` seconds passed; the reader then keeps going).
  func waitForEOF(timeout: Double? = nil) {
    if let timeout {
      if done.wait(timeout: .now() + timeout) == .success { done.signal() }
    } else {
      done.wait()
      done.signal()
    }
  }

  private func append(_ chunk: Data) {
    let now = seconds(since: start)
    echo?.write(chunk)
    lock.lock()
    let firstNew = lineList.count
    data.append(chunk)
    for byte in chunk {
      if byte == UInt8(ascii: "\n") {
        lineList.append(ConsoleLine(partial, time: now))
        partial.removeAll(keepingCapacity: true)
      } else {
        partial.append(byte)
      }
    }
    let completed = onLine == nil ? [] : Array(lineList[firstNew...])
    lock.unlock()
    if let onLine { completed.forEach(onLine) }
  }

  private func finish() {
    let now = seconds(since: start)
    lock.lock()
    defer { lock.unlock() }
    if !partial.isEmpty {
      lineList.append(ConsoleLine(partial, time: now))
      partial.removeAll()
    }
  }

  var text: String {
    lock.lock()
    defer { lock.unlock() }
    return String(decoding: data, as: UTF8.self)
  }

  var lines: [ConsoleLine] {
    lock.lock()
    defer { lock.unlock() }
    return lineList
  }
}

func seconds(since start: UInt64) -> Double {
  Double(DispatchTime.now().uptimeNanoseconds &- start) / 1e9
}
