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
    case .poll:
      return poll(argument, env)
    default:
      return .error(.ENOSYS)       // watchdog, pin_override
    }
  }

  /// The most ports one SCHEDOP_poll may name (Xen: 128 ports or the domain's limit).
  static let maximumPollPorts = 128

  /// SCHEDOP_poll: block until one of the listed ports is pending, or the timeout (absolute
  /// system time, 0 = none) passes. Returns at once if one is pending already. A spurious
  /// return is allowed (the guest checks again), so an upcall also ends the wait.
  static func poll<E: HypercallEnvironment>(_ argument: UInt64, _ env: E) -> HypercallOutcome {
    typealias Layout = XenABI.SchedLayout.Poll
    guard let platform = unsafe Events.platform else { return .error(.ENOSYS) }
    guard let bytes = env.read(argument, count: Layout.size),
          let list = bytes.littleEndian(UInt64.self, at: Layout.Offset.ports),
          let count = bytes.littleEndian(UInt32.self, at: Layout.Offset.portCount),
          let timeout = bytes.littleEndian(UInt64.self, at: Layout.Offset.timeout) else { return .error(.EFAULT) }
    guard count <= UInt32(maximumPollPorts) else { return .error(.EINVAL) }
    guard let raw = env.read(list, count: Int(count) * 4) else { return .error(.EFAULT) }
    var ports: [UInt32] = []
    ports.reserveCapacity(Int(count))
    for i in 0..<Int(count) {
      let port = raw.littleEndian(UInt32.self, at: i * 4) ?? 0
      guard port < UInt32(Events.portCount) else { return .error(.EINVAL) }
      ports.append(port)
    }
    let vcpu = env.vcpu
    if Events.startPoll(vcpu, ports: ports, using: platform) { return .result(0) }
    vcpu.polling = true
    if timeout != 0 {
      if timeout <= SystemTime.now() {
        Events.endPoll(vcpu)
        vcpu.polling = false
        return .result(0)
      }
      VCPUTimers.setPollTimeout(vcpu, deadline: timeout)
    }
    return .block(0)
  }
}
