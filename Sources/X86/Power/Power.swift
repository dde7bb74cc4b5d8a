#if os(none)
import Support
import Hypervisor

/// Turning the machine off, with a status a test harness can read.
///
/// Under QEMU the isa-debug-exit device (port 0xF4) ends QEMU with status (code << 1) | 1, so each
/// outcome gets its own exit status, distinct from a triple fault (which QEMU reports as 0 under
/// -no-reboot). On a machine without that device the write does nothing and ACPI S5 follows.
public enum Power {
  public enum ExitCode: UInt32 {
    case clean = 0x10     // QEMU status 33
    case crash = 0x11     // QEMU status 35
    case panic = 0x12     // QEMU status 37
    case domainFailed = 0x13   // QEMU status 39: every domain ended, not all with a clean poweroff
    case quit = 0x14      // QEMU status 41: `q` on the hypervisor's console while domains still ran, none had failed
  }

  static let debugExitPort: UInt16 = 0xF4
  /// PM1a control block and S5 sleep type from the FADT/DSDT, if ACPI provided them. Set once
  /// at boot, before any other pcpu starts.
  nonisolated(unsafe) public static var acpiPM1aControl: UInt16 = 0
  nonisolated(unsafe) public static var acpiSleepTypeS5: UInt16 = 0

  public static func exit(_ code: ExitCode) -> Never {
    // The last lines may still wait in the serial transmit buffer.
    Serial.flush()
    hv_outl(debugExitPort, code.rawValue)
    if unsafe code == .clean && acpiPM1aControl != 0 {
      unsafe hv_outw(acpiPM1aControl, (acpiSleepTypeS5 << 10) | (1 << 13))   // SLP_TYP | SLP_EN
    }
    while true { hv_halt_forever() }
  }
}
#endif
