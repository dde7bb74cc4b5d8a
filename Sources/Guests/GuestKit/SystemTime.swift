#if os(none)
import GuestSupport

/// Xen system time: nanoseconds since the hypervisor started, the clock every timer hypercall
/// takes its deadlines in. Read without a hypercall from the vcpu's vcpu_time_info in shared_info
/// (the pvclock formula over the TSC).
public enum SystemTime {
  /// Now, as the current vcpu's time info says; 0 before shared_info is mapped or if the time
  /// info never read stable.
  public static func now() -> UInt64 {
    guard SharedInfo.isMapped else { return 0 }
    var info = gs_vcpu_time_info()
    let vcpu = CurrentVCPU.id
    guard gs_read_time_info_at(SharedInfo.vcpuInfo(vcpu) + UInt64(GS_VCPU_INFO_TIME), &info) != 0 else { return 0 }
    if info.tsc_to_system_mul == 0 && vcpu != 0 {
      // This vcpu's time info is not published yet (it has not entered the guest since
      // shared_info was mapped); vcpu 0's gives the same time when the TSC is stable.
      guard gs_read_time_info_at(SharedInfo.vcpuInfo(0) + UInt64(GS_VCPU_INFO_TIME), &info) != 0 else { return 0 }
    }
    return gs_pvclock_ns(&info, CPU.rdtsc())
  }

  public static let nanosecondsPerMillisecond: UInt64 = 1_000_000
  public static let nanosecondsPerMicrosecond: UInt64 = 1_000
}
#endif
