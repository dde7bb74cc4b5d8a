import XenABI

/// HYPERVISOR_console_io: a guest's emergency console (Linux's `earlyprintk=xen`, hvc0 before
/// the console ring exists). Output is printed as `(dN) text`, one whole line at a time.
enum ConsoleIO {
  /// Bytes copied per step, and per exit before the call continues itself (so a huge count
  /// cannot hold a pcpu).
  static let chunk = 1024
  static let perExit = 16 * 1024

  static func handle<E: HypercallEnvironment>(_ frame: HypercallFrame, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    let (command, rawCount, buffer, _, _) = frame.arguments
    let count = rawCount & 0xFFFF_FFFF        // `unsigned int count` in Xen's interface
    guard command <= UInt64(UInt32.max), let op = XenABI.ConsoleIOCommand(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    switch op {
    case .read:
      throw .ENOSYS
    case .write:
      var done: UInt64 = 0
      while done < count {
        if done >= UInt64(perExit) {
          return .continuation(HypercallFrame(number: frame.number, command, count - done, buffer &+ done))
        }
        let length = Int(min(count - done, UInt64(chunk)))
        let bytes = try env.copyIn(bytes: length, from: buffer &+ done)
        ConsoleOutput.write(bytes, for: env.domain)
        done += UInt64(length)
      }
      return .result(0)
    }
  }
}
