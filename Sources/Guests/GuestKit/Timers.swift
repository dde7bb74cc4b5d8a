#if os(none)
import GuestSupport

/// Xen's per-vcpu timers (xen/include/public/vcpu.h), all delivered as VIRQ_TIMER on the vcpu:
/// one singleshot timer (VCPUOP_set/stop_singleshot_timer, and the older set_timer_op, which
/// programs the same timer) and one periodic timer. Deadlines are absolute system time in ns
/// (`SystemTime.now()`).
public enum Timers {
  /// VCPU_SSHOTTMR_future: fail with -ETIME instead of firing at once when the deadline has
  /// already passed.
  public static let future = UInt32(GS_VCPU_SSHOTTMR_future)

  /// VCPUOP_set_singleshot_timer {timeout_abs_ns, flags}. Xen allows it only on the calling vcpu.
  @discardableResult
  public static func setSingleshot(at deadline: UInt64, flags: UInt32 = 0, vcpu: UInt32 = CurrentVCPU.id) -> Int64 {
    var arg = gs_vcpu_set_singleshot_timer(timeout_abs_ns: deadline, flags: flags)
    return Xen.withArgument(&arg) { Xen.vcpuOp(UInt64(GS_VCPUOP_set_singleshot_timer), vcpu: UInt64(vcpu), $0) }
  }

  /// VCPUOP_stop_singleshot_timer (no argument).
  @discardableResult
  public static func stopSingleshot(vcpu: UInt32 = CurrentVCPU.id) -> Int64 {
    Xen.vcpuOp(UInt64(GS_VCPUOP_stop_singleshot_timer), vcpu: UInt64(vcpu), 0)
  }

  /// VCPUOP_set_periodic_timer {period_ns}.
  @discardableResult
  public static func setPeriodic(period: UInt64, vcpu: UInt32 = CurrentVCPU.id) -> Int64 {
    var arg = gs_vcpu_set_periodic_timer(period_ns: period)
    return Xen.withArgument(&arg) { Xen.vcpuOp(UInt64(GS_VCPUOP_set_periodic_timer), vcpu: UInt64(vcpu), $0) }
  }

  /// VCPUOP_stop_periodic_timer (no argument).
  @discardableResult
  public static func stopPeriodic(vcpu: UInt32 = CurrentVCPU.id) -> Int64 {
    Xen.vcpuOp(UInt64(GS_VCPUOP_stop_periodic_timer), vcpu: UInt64(vcpu), 0)
  }

  /// HYPERVISOR_set_timer_op(timeout): the calling vcpu's singleshot timer at `deadline`
  /// (absolute ns); 0 cancels it.
  @discardableResult
  public static func setTimerOp(_ deadline: UInt64) -> Int64 {
    Xen.hypercall(Hypercall.setTimerOp, deadline)
  }
}
#endif
