#if os(none)
import GuestSupport

/// The instructions the guests time and inspect.
public enum CPU {
  public static func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0)
    -> (eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32)
  {
    let r = gs_cpuid(leaf, subleaf)
    return (r.eax, r.ebx, r.ecx, r.edx)
  }

  /// LFENCE; RDTSC.
  @inline(__always)
  public static func rdtsc() -> UInt64 { gs_rdtsc() }

  public static var cr0: UInt64 { gs_read_cr0() }
  public static var cr3: UInt64 { gs_read_cr3() }
  public static var cr4: UInt64 { gs_read_cr4() }
  public static var efer: UInt64 { gs_rdmsr(0xC000_0080) }

  @inline(__always)
  public static func pause() { gs_pause() }
  public static func halt() { gs_hlt() }

  /// STI.
  @inline(__always)
  public static func enableInterrupts() { gs_sti() }
  /// CLI.
  @inline(__always)
  public static func disableInterrupts() { gs_cli() }
  /// STI; HLT back to back: the STI's interrupt shadow covers the HLT, so an interrupt that
  /// arrived after a check made with interrupts off wakes the HLT instead of being missed.
  @inline(__always)
  public static func enableInterruptsAndHalt() { gs_sti_hlt() }
  /// STI and a NOP in its shadow, so an interrupt already pending is taken before the next
  /// instruction even if that is a CLI (STI; CLI back to back takes none).
  @inline(__always)
  public static func enableInterruptsBriefly() { gs_sti_window() }
  /// RFLAGS.IF.
  public static var interruptsEnabled: Bool { gs_interrupts_enabled() != 0 }
}
#endif
