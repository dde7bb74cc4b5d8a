import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// QEMU's human monitor on a Unix socket, for a run with a time limit: at the limit the runner
/// asks it `info registers -a` before killing QEMU, so a stalled run says where every emulated
/// CPU was (in hypervisor code, in a guest, or halted: `HLT=1`) even when the hypervisor no
/// longer answers its own console (the `vcpus` dump needs a working pcpu 0).
public enum QEMUMonitor {
  /// A socket path of the run's own in the temporary folder, or nil when that folder's path is
  /// too long for one (a Unix socket's path has at most 107 bytes, and QEMU would not start).
  static func makeSocketPath() -> String? {
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("visor-monitor-\(getpid())-\(UUID().uuidString.prefix(8)).sock").path
    return path.utf8.count < 100 ? path : nil
  }

  /// QEMU's `-monitor` argument for `path`: listening, and never waiting for a client.
  static func argument(socket path: String) -> String { "unix:\(path),server=on,wait=off" }

  /// Sends `command` to the monitor at `path` and returns what it printed before its next
  /// prompt (or within `seconds`), terminal escapes and echo removed; nil if nothing listens.
  public static func ask(_ command: String, socket path: String, seconds: Double = 3) -> String? {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard connected == 0 else { return nil }
    let end = Date().addingTimeInterval(seconds)
    // The greeting ends with the first prompt; the answer with the second.
    var received = Data()
    func readUntil(prompts: Int) -> Bool {
      var buffer = [UInt8](repeating: 0, count: 4096)
      while Self.count(of: "(qemu) ", in: received) < prompts {
        let left = end.timeIntervalSinceNow
        guard left > 0 else { return false }
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(left * 1000) + 1) > 0 else { return false }
        let count = read(descriptor, &buffer, buffer.count)
        guard count > 0 else { return false }
        received.append(contentsOf: buffer[0..<count])
      }
      return true
    }
    guard readUntil(prompts: 1) else { return nil }
    let line = Array((command + "\n").utf8)
    guard write(descriptor, line, line.count) == line.count else { return nil }
    _ = readUntil(prompts: 2)
    return answer(in: String(decoding: received, as: UTF8.self), to: command)
  }

  /// What follows the echo of `command` in a monitor transcript, up to the next prompt, with
  /// carriage returns, the line editor's escape sequences and the x87/SSE and debug register
  /// lines removed. The editor echoes the line again after each character typed, so the answer
  /// starts after the last echo.
  static func answer(in transcript: String, to command: String) -> String {
    var text = transcript.replacingOccurrences(of: "\r", with: "")
    text = text.replacingOccurrences(of: "\u{1B}\\[[0-9;]*[A-Za-z]", with: "", options: .regularExpression)
    guard let first = text.range(of: "(qemu) ") else { return text }
    var rest = text[first.upperBound...]
    if let prompt = rest.range(of: "(qemu) ") { rest = rest[..<prompt.lowerBound] }
    if let echo = rest.range(of: command, options: .backwards) { rest = rest[echo.upperBound...] }
    let noise = ["FPR", "XMM", "FCW", "DR0", "DR6", "YMM", "ZMM", "Opmask"]
    return rest.split(separator: "\n", omittingEmptySubsequences: false)
      .filter { line in !noise.contains { line.hasPrefix($0) } }
      .joined(separator: "\n").trimmingCharacters(in: .newlines)
  }

  static func count(of needle: String, in data: Data) -> Int {
    String(decoding: data, as: UTF8.self).components(separatedBy: needle).count - 1
  }

  /// The RIP of each CPU in an `info registers -a` answer, in CPU order.
  public static func instructionPointers(in registers: String) -> [UInt64] {
    registers.split(separator: "\n").compactMap { line in
      guard let range = line.range(of: "RIP=") else { return nil }
      return UInt64(line[range.upperBound...].prefix(16), radix: 16)
    }
  }
}
