/// HYPERVISOR_set_timer_op (15): the older one-shot timer interface, one absolute deadline in
/// system-time nanoseconds for the calling vcpu (the same timer as VCPUOP_set_singleshot_timer).
enum SetTimerOp {
  /// Xen's guard against deadlines that wrapped: more than 2^50 ns (about 13 days) ahead.
  static let farFuture: UInt64 = 1 << 50
  static let farFutureReplacement: UInt64 = 100_000_000

  static func handle<E: HypercallEnvironment>(deadline raw: UInt64, _ env: E) -> HypercallOutcome {
    let vcpu = env.vcpu
    let deadline = Int64(bitPattern: raw)
    if deadline == 0 {
      VCPUTimers.stopSingleshot(vcpu)
      return .result(0)
    }
    let now = SystemTime.now()
    if deadline < 0 || (raw > now && raw - now >= farFuture) {
      // As Xen: a negative or absurdly far deadline is a guest's wrapped arithmetic, or an old
      // guest saying "no timer"; firing at once would burn the pcpu, never firing could hang
      // the guest, so it fires in 100 ms.
      VCPUTimers.setSingleshot(vcpu, deadline: now.addingSaturating(farFutureReplacement))
    } else {
      VCPUTimers.setSingleshot(vcpu, deadline: raw)
    }
    return .result(0)
  }
}
