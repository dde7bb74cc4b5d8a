#if os(none)
import GuestSupport

/// Line-oriented console output. Each line goes out in one HYPERVISOR_console_io write (so the
/// hypervisor sees whole lines, even when several vcpus print); without a hypervisor the bytes go
/// to port 0xE9 (QEMU `-debugcon stdio`).
public enum Console {
  public static func write(_ bytes: UnsafeRawBufferPointer) {
    gs_console_write(bytes.baseAddress, bytes.count)
  }

  public static func write(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { write($0) }
  }

  /// Prints `line` and a newline.
  public static func print(_ line: StaticString) {
    var bytes = [UInt8]()
    bytes.reserveCapacity(line.utf8CodeUnitCount + 1)
    line.withUTF8Buffer { bytes.append(contentsOf: $0) }
    bytes.append(0x0a)
    write(bytes)
  }

  /// Prints `line` (typically built by interpolation) and a newline.
  public static func print(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(0x0a)
    write(bytes)
  }

  /// Prints `prefix`, the bytes, and a newline (for bytes read from guest memory).
  public static func print(_ prefix: StaticString, bytes: some Collection<UInt8>) {
    var line = [UInt8]()
    prefix.withUTF8Buffer { line.append(contentsOf: $0) }
    line.append(contentsOf: bytes)
    line.append(0x0a)
    write(line)
  }
}
#endif
