import XenABI

/// HYPERVISOR_sched_op: a vcpu talking to the scheduler about itself.
enum SchedOp {
  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.SchedOp(rawValue: UInt32(command)) else {
      return .error(.ENOSYS)
    }
    switch op {
    case .yield:
      return .yield(0)
    case .block:
      return .block(0)
    case .shutdown:
      guard let raw = env.readLE(UInt32.self, at: argument) else { return .error(.EFAULT) }
      guard let reason = Domain.ShutdownReason(rawValue: raw) else { return .error(.EINVAL) }
      // A code set earlier with SCHEDOP_shutdown_code is what gets reported, as in Xen.
      let reported = env.domain.shutdownCode.flatMap { Domain.ShutdownReason(rawValue: $0) } ?? reason
      env.domain.shutDown(reported)
      return .shutdown
    case .shutdownCode:
      guard let raw = env.readLE(UInt32.self, at: argument) else { return .error(.EFAULT) }
      guard Domain.ShutdownReason(rawValue: raw) != nil else { return .error(.EINVAL) }
      if env.domain.shutdownCode == nil { env.domain.shutdownCode = raw }   // the first one sticks
      return .result(0)
    case .remoteShutdown:
      return .error(.EPERM)        // only a control domain may shut others down
    default:
      return .error(.ENOSYS)       // poll, watchdog, pin_override: with the scheduler and events
    }
  }
}
