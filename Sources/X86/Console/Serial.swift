#if os(none)
import Support

/// The 16550 UART on COM1: the hypervisor's console.
///
/// Output goes through a transmit buffer, as in Xen's serial driver (drivers/char/serial.c): a
/// byte is queued, and the UART gets as many as it takes without waiting, which is at most its
/// 16-byte FIFO each time it reports the FIFO empty. No console path spins on the line with
/// interrupts off any more (at 115200 baud a 256-byte line took 22 ms): what the UART did not
/// take waits in the buffer for the next write or the next tick. When the buffer is full, bytes
/// are dropped, and counted, until it is half empty again (Xen's tx_quench); a note with the
/// count goes out first when output resumes. A crash report and the last words before power-off
/// wait for the line instead (`synchronous`, `flush`).
public enum Serial {
  static let base: UInt16 = 0x3F8
  static let lineStatus: UInt16 = base + 5
  static let transmitterEmpty: UInt8 = 0x20
  /// Bytes the UART takes at once when it says its transmitter is empty (the 16550's FIFO).
  static let fifoBytes = 16
  static let bufferSize = 16 * 1024

  /// The transmit buffer: free-running indices, `queued - sent` bytes waiting. Touched only under
  /// `Log.lock` (every sink call and `drain` are made with it held), or by the crash reporter,
  /// which has taken the console for good. Each use is marked `unsafe` for that reason.
  nonisolated(unsafe) static var buffer = InlineArray<16384, UInt8>(repeating: 0)
  nonisolated(unsafe) static var queued: UInt64 = 0
  nonisolated(unsafe) static var sent: UInt64 = 0
  /// Bytes dropped since output last resumed; dropping goes on until the buffer is half empty.
  nonisolated(unsafe) static var dropped: UInt64 = 0
  /// Dropped bytes over the whole run (for a test or a debugger).
  nonisolated(unsafe) public private(set) static var droppedTotal: UInt64 = 0
  /// Every byte waits for the line (a crash report: nothing may stay behind in the buffer).
  nonisolated(unsafe) public static var synchronous = false

  /// 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on, interrupts off (we poll).
  public static func initialize() {
    hv_outb(base + 1, 0x00)        // no interrupts
    hv_outb(base + 3, 0x80)        // DLAB on: next two writes set the divisor
    hv_outb(base + 0, 0x01)        // divisor 1 = 115200 baud
    hv_outb(base + 1, 0x00)
    hv_outb(base + 3, 0x03)        // DLAB off, 8N1
    hv_outb(base + 2, 0xC7)        // FIFO on, cleared, 14-byte threshold
    hv_outb(base + 4, 0x03)        // DTR, RTS
  }

  static let dataReady: UInt8 = 0x01

  /// A byte that arrived on the line, if any (polled: the UART's interrupts stay off).
  public static func receive() -> UInt8? {
    guard hv_inb(lineStatus) & dataReady != 0 else { return nil }
    return hv_inb(base)
  }

  /// Queues `byte` and sends what the UART takes now.
  public static func put(_ byte: UInt8) {
    if unsafe synchronous {
      flush()
      waitAndSend(byte)
      return
    }
    if unsafe dropped > 0 {
      // Dropping until half the buffer is free, then a note, then the byte.
      guard unsafe queued &- sent <= UInt64(bufferSize / 2) else { unsafe dropped &+= 1; unsafe droppedTotal &+= 1; return }
      let count = unsafe dropped
      unsafe dropped = 0
      for b in "\n[serial: ".utf8 { enqueue(b) }
      for b in decimal(count) { enqueue(b) }
      for b in " bytes dropped: the line was full]\n".utf8 { enqueue(b) }
    }
    if unsafe queued &- sent >= UInt64(bufferSize) {
      drain()
      if unsafe queued &- sent >= UInt64(bufferSize) { unsafe dropped = 1; unsafe droppedTotal &+= 1; return }
    }
    enqueue(byte)
    drain()
  }

  /// Sends queued bytes while the UART says its transmitter is empty, a FIFO's worth each time:
  /// never waits. Under QEMU the line is always ready and everything goes at once.
  public static func drain() {
    while unsafe queued != sent && hv_inb(lineStatus) & transmitterEmpty != 0 {
      var n = 0
      while unsafe n < fifoBytes && queued != sent {
        unsafe hv_outb(base, buffer[Int(sent % UInt64(bufferSize))])
        unsafe sent &+= 1
        n += 1
      }
    }
  }

  /// Sends everything queued, waiting for the line: before power-off and in a crash report,
  /// when nothing else will run again. Bounded by the buffer's size.
  public static func flush() {
    while unsafe queued != sent {
      while hv_inb(lineStatus) & transmitterEmpty == 0 { hv_pause() }
      drain()
    }
  }

  private static func enqueue(_ byte: UInt8) {
    unsafe buffer[Int(queued % UInt64(bufferSize))] = byte
    unsafe queued &+= 1
  }

  private static func waitAndSend(_ byte: UInt8) {
    while hv_inb(lineStatus) & transmitterEmpty == 0 { hv_pause() }
    hv_outb(base, byte)
  }

  private static func decimal(_ value: UInt64) -> [UInt8] {
    var digits: [UInt8] = []
    var rest = value
    repeat { digits.append(UInt8(ascii: "0") + UInt8(rest % 10)); rest /= 10 } while rest > 0
    return digits.reversed()
  }
}
#endif
