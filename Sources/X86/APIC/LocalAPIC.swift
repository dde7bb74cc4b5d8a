#if os(none)
import Support

/// The local APIC (xAPIC, memory mapped): interrupts to this pcpu, its timer, and IPIs.
public enum LocalAPIC {
  /// Where the registers are mapped: read from the APIC base MSR once at boot, before any other
  /// pcpu starts; each read is marked `unsafe` for that reason.
  nonisolated(unsafe) public static var base: UInt64 = 0xFEE0_0000

  static let idRegister: UInt64 = 0x20
  static let taskPriority: UInt64 = 0x80
  static let eoiRegister: UInt64 = 0xB0
  static let spuriousVector: UInt64 = 0xF0
  static let errorStatus: UInt64 = 0x280
  static let commandLow: UInt64 = 0x300
  static let commandHigh: UInt64 = 0x310
  static let timerLVT: UInt64 = 0x320
  static let lint0LVT: UInt64 = 0x350
  static let lint1LVT: UInt64 = 0x360
  static let errorLVT: UInt64 = 0x370
  static let timerInitialCount: UInt64 = 0x380
  static let timerCurrentCount: UInt64 = 0x390
  static let timerDivide: UInt64 = 0x3E0

  static let msrAPICBase: UInt32 = 0x1B
  static let msrTSCDeadline: UInt32 = 0x6E0
  static let masked: UInt32 = 1 << 16

  public enum TimerMode: UInt32 { case oneShot = 0, periodic = 1, tscDeadline = 2 }

  @inline(__always) static func read(_ register: UInt64) -> UInt32 { unsafe hv_mmio_read32(base + register) }
  @inline(__always) static func write(_ register: UInt64, _ value: UInt32) { unsafe hv_mmio_write32(base + register, value) }

  public static var id: UInt32 { read(idRegister) >> 24 }

  /// Enables this pcpu's APIC: global enable in the MSR, software enable with the spurious vector,
  /// accept every priority, legacy LINT pins masked.
  public static func enable() {
    let msr = CPU.rdmsr(msrAPICBase)
    unsafe base = msr & 0xF_FFFF_F000
    CPU.wrmsr(msrAPICBase, msr | (1 << 11))
    write(spuriousVector, 0x100 | UInt32(Vector.spurious))
    write(taskPriority, 0)
    write(lint0LVT, masked)
    write(lint1LVT, masked)
    write(errorLVT, masked)
    write(timerLVT, masked)
    write(errorStatus, 0)
  }

  @inline(__always) public static func endOfInterrupt() { write(eoiRegister, 0) }

  // ---- Timer ----
  public static func configureTimer(mode: TimerMode) {
    write(timerDivide, 0x3)     // divide by 16
    write(timerLVT, UInt32(Vector.timer) | (mode.rawValue << 17))
  }

  public static func startOneShot(count: UInt32) { write(timerInitialCount, count) }
  public static var timerCount: UInt32 { read(timerCurrentCount) }
  public static func setDeadline(tsc: UInt64) { CPU.wrmsr(msrTSCDeadline, tsc) }
  public static func maskTimer() { write(timerLVT, masked); write(timerInitialCount, 0) }

  // ---- Inter-processor interrupts ----
  public static func sendIPI(to apicID: UInt32, vector: UInt64) {
    command(apicID, UInt32(vector & 0xFF))            // fixed delivery
  }
  public static func sendINIT(to apicID: UInt32) {
    command(apicID, 0x0000_4500)                      // INIT, level assert
  }
  public static func sendStartup(to apicID: UInt32, page: UInt64) {
    command(apicID, 0x0000_4600 | UInt32(page >> 12)) // STARTUP with the trampoline's page number
  }

  private static func command(_ apicID: UInt32, _ low: UInt32) {
    while read(commandLow) & (1 << 12) != 0 { hv_pause() }   // previous IPI still being delivered
    write(commandHigh, apicID << 24)
    write(commandLow, low)
  }
}
#endif
