#if os(none)
import Support

/// The 16550 UART on COM1: the hypervisor's console.
public enum Serial {
  static let base: UInt16 = 0x3F8
  static let lineStatus: UInt16 = base + 5
  static let transmitterEmpty: UInt8 = 0x20

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

  @inline(__always)
  public static func put(_ byte: UInt8) {
    while hv_inb(lineStatus) & transmitterEmpty == 0 {}
    hv_outb(base, byte)
  }
}
#endif
