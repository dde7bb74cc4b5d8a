/// Interrupt vector assignments (vectors 0-31 are the CPU's exceptions).
public enum Vector {
  public static let timer: UInt64 = 0x20
  public static let reschedule: UInt64 = 0xF0
  public static let callFunction: UInt64 = 0xF1
  public static let spurious: UInt64 = 0xFF

  /// Mnemonic and name of each CPU exception, for crash reports.
  public static func exceptionName(_ vector: UInt64) -> StaticString {
    switch vector {
    case 0: "#DE divide error"
    case 1: "#DB debug"
    case 2: "NMI"
    case 3: "#BP breakpoint"
    case 4: "#OF overflow"
    case 5: "#BR bound range"
    case 6: "#UD invalid opcode"
    case 7: "#NM device not available"
    case 8: "#DF double fault"
    case 10: "#TS invalid TSS"
    case 11: "#NP segment not present"
    case 12: "#SS stack fault"
    case 13: "#GP general protection"
    case 14: "#PF page fault"
    case 16: "#MF x87 floating point"
    case 17: "#AC alignment check"
    case 18: "#MC machine check"
    case 19: "#XM SIMD floating point"
    case 20: "#VE virtualization"
    case 21: "#CP control protection"
    case 29: "#VC VMM communication"
    case 30: "#SX security"
    default: "reserved exception"
    }
  }
}
