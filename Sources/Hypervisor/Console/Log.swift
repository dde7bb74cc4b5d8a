import Synchronization

/// The hypervisor's console log: whole lines, one pcpu at a time.
///
/// Each message is formatted into a String first, then written under the console lock, so lines
/// from different pcpus never interleave mid-line. The architecture layer plugs in the byte sink
/// (the serial port) and the "which pcpu am I" query at boot; until then messages are dropped.
///
/// Output format: `(sv) message` from pcpu 0, `(sv:N) message` from pcpu N, so a reader can tell
/// who spoke without every line being cluttered.
public enum Log {
  public typealias ByteSink = @convention(c) (UInt8) -> Void
  public typealias CPUQuery = @convention(c) () -> UInt32

  // The sink, its drain, the pcpu query and the level are set at boot, before any other pcpu
  // starts, and only read afterwards: each read is marked `unsafe` for that reason.
  nonisolated(unsafe) public static var sink: ByteSink?
  public typealias SinkDrain = @convention(c) () -> Void
  /// Sends on what the sink holds buffered, as far as the line takes it without waiting (the
  /// serial port's transmit buffer: `Serial` in the arch layer).
  nonisolated(unsafe) public static var sinkDrain: SinkDrain?
  nonisolated(unsafe) public static var currentCPU: CPUQuery?
  nonisolated(unsafe) public static var level: LogLevel = .info
  public static let lock = SpinLock()
  /// The domain whose unfinished line is on the console now (`domainPartial`), 0 for none:
  /// whatever else is printed starts a new line first. Read and written with `lock` held; an
  /// atomic so that a global needs no unsafe access (a relaxed load or store is a plain move).
  private static let openLine = Atomic<UInt16>(0)

  public static func error(_ message: String) { write(.error, message) }
  public static func warning(_ message: String) { write(.warning, message) }
  public static func info(_ message: String) { write(.info, message) }
  public static func debug(_ message: String) { write(.debug, message) }

  public static func write(_ messageLevel: LogLevel, _ message: String) {
    guard unsafe messageLevel <= level, messageLevel != .none, let sink = unsafe sink else { return }
    let cpu = unsafe currentCPU?() ?? 0
    lock.lock()
    closeOpenLine(sink)
    emit(prefix: cpu, sink)
    for byte in message.utf8 { emitByte(byte, sink) }
    sink(UInt8(ascii: "\n"))
    lock.unlock()
  }

  /// A line of a domain's console output, printed as `(dN) text`. With `continuing`, `line` is
  /// the rest of a line whose start `domainPartial` showed: if nothing came between, it goes on
  /// that line.
  public static func domain(_ id: UInt16, _ line: [UInt8], continuing: Bool = false) {
    guard let sink = unsafe sink else { return }
    lock.lock()
    if !(continuing && openLine.load(ordering: .relaxed) == id) {
      closeOpenLine(sink)
      emitDomainPrefix(id, sink)
    }
    openLine.store(0, ordering: .relaxed)
    for byte in line { emitByte(byte, sink) }
    sink(UInt8(ascii: "\n"))
    lock.unlock()
  }

  /// The start (or more) of a domain's unfinished line, shown as it comes: a person is typing
  /// on that console. Backspace and escape pass, as on a serial line: line editing shows, and
  /// a shell's cursor-position query (busybox's `ESC [6n`) reaches the person's terminal, whose
  /// answer comes back as input.
  public static func domainPartial(_ id: UInt16, _ bytes: [UInt8]) {
    guard let sink = unsafe sink else { return }
    lock.lock()
    if openLine.load(ordering: .relaxed) != id {
      closeOpenLine(sink)
      emitDomainPrefix(id, sink)
      openLine.store(id, ordering: .relaxed)
    }
    for byte in bytes { byte == 0x08 || byte == 0x1b ? sink(byte) : emitByte(byte, sink) }
    lock.unlock()
  }

  private static func emitDomainPrefix(_ id: UInt16, _ sink: ByteSink) {
    for byte in "(d".utf8 { sink(byte) }
    emitDecimal(UInt64(id), sink)
    sink(UInt8(ascii: ")")); sink(UInt8(ascii: " "))
  }

  /// Ends a domain's unfinished line on the console, so the next output starts on a line of its own.
  private static func closeOpenLine(_ sink: ByteSink) {
    guard openLine.load(ordering: .relaxed) != 0 else { return }
    sink(UInt8(ascii: "\n"))
    openLine.store(0, ordering: .relaxed)
  }

  /// At every tick: what the sink holds goes on. Skipped while another pcpu holds the console,
  /// which drains as it writes.
  public static func drainSink() {
    guard let sinkDrain = unsafe sinkDrain, lock.tryLock() else { return }
    sinkDrain()
    lock.unlock()
  }

  /// Writes raw text with no prefix and no lock: for the crash reporter, which holds the lock itself.
  public static func writeUnlocked(_ text: StaticString) {
    guard let sink = unsafe sink else { return }
    text.withUTF8Buffer { for unsafe byte in unsafe $0 { sink(byte) } }   // unsafe: the string's own bytes, read inside the call
  }

  /// Writes `value` as 0x-prefixed, zero-padded hexadecimal with no allocation (crash reporter).
  public static func writeHexUnlocked(_ value: UInt64, digits: Int = 16) {
    guard let sink = unsafe sink else { return }
    sink(UInt8(ascii: "0")); sink(UInt8(ascii: "x"))
    var shift = (digits - 1) * 4
    while shift >= 0 {
      sink(hexDigit(UInt8((value >> UInt64(shift)) & 0xf)))
      shift -= 4
    }
  }

  /// Writes `value` in decimal with no allocation (crash reporter).
  public static func writeDecimalUnlocked(_ value: UInt64) {
    guard let sink = unsafe sink else { return }
    emitDecimal(value, sink)
  }

  /// `value` in decimal, most significant digit first, with no allocation.
  private static func emitDecimal(_ value: UInt64, _ sink: ByteSink) {
    var divisor: UInt64 = 1
    while value / divisor >= 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
      sink(UInt8(ascii: "0") + UInt8(rest / divisor))
      rest %= divisor
      divisor /= 10
    }
  }

  private static func emit(prefix cpu: UInt32, _ sink: ByteSink) {
    for byte in "(sv".utf8 { sink(byte) }
    if cpu != 0 {
      sink(UInt8(ascii: ":"))
      emitDecimal(UInt64(cpu), sink)
    }
    sink(UInt8(ascii: ")")); sink(UInt8(ascii: " "))
  }

  /// Control characters other than tab are shown as '?', so a log line is always one line.
  @inline(__always)
  private static func emitByte(_ byte: UInt8, _ sink: ByteSink) {
    sink(byte == 9 || (byte >= 0x20 && byte != 0x7f) ? byte : UInt8(ascii: "?"))
  }

  static func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
  }
}

/// `hex(0x1f)` is "0x1f"; `hex(0x1f, digits: 4)` is "0x001f". For log messages.
public func hex(_ value: UInt64, digits: Int = 0) -> String {
  var bytes: [UInt8] = []
  var n = value
  repeat { bytes.append(Log.hexDigit(UInt8(n & 0xf))); n >>= 4 } while n > 0
  while bytes.count < digits { bytes.append(UInt8(ascii: "0")) }
  bytes.append(UInt8(ascii: "x")); bytes.append(UInt8(ascii: "0"))
  return String(decoding: bytes.reversed(), as: UTF8.self)
}

public func hex<T: BinaryInteger>(_ value: T, digits: Int = 0) -> String {
  hex(UInt64(truncatingIfNeeded: value), digits: digits)
}
