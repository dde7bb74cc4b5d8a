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
}
#endif
