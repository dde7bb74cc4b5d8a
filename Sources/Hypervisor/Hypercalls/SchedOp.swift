import XenABI
import XenPublic

/// HYPERVISOR_sched_op: a vcpu talking to the scheduler about itself.
enum SchedOp {
  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.SchedOp(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    switch op {
    case .yield:
      return .yield(0)
    case .block:
      return .block(0)
    case .shutdown:
      let raw = try env.copyIn(sched_shutdown.self, from: argument).reason
      guard let reason = Domain.ShutdownReason(rawValue: raw) else { throw .EINVAL }
      // A code set earlier with SCHEDOP_shutdown_code is what gets reported, as in Xen.
      let reported = env.domain.shutdownCode.flatMap { Domain.ShutdownReason(rawValue: $0) } ?? reason
      env.domain.shutDown(reported)
      return .shutdown
    case .shutdownCode:
      let raw = try env.copyIn(sched_shutdown.self, from: argument).reason
      guard Domain.ShutdownReason(rawValue: raw) != nil else { throw .EINVAL }
      if env.domain.shutdownCode == nil { env.domain.shutdownCode = raw }   // the first one sticks
      return .result(0)
    case .remoteShutdown:
      throw .EPERM        // only a control domain may shut others down
    case .poll:
      return try poll(argument, env)
    default:
      throw .ENOSYS       // watchdog, pin_override
    }
  }

  /// The most ports one SCHEDOP_poll may name (Xen: 128 ports or the domain's limit).
  static let maximumPollPorts = 128

  /// SCHEDOP_poll: block until one of the listed ports is pending, or the timeout (absolute
  /// system time, 0 = none) passes. Returns at once if one is pending already. A spurious
  /// return is allowed (the guest checks again), so an upcall also ends the wait.
  static func poll<E: HypercallEnvironment>(_ argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard let platform = unsafe Events.platform else { throw .ENOSYS }
    let request = try env.copyIn(sched_poll.self, from: argument)
    let count = request.nr_ports, timeout = request.timeout
    guard count <= UInt32(maximumPollPorts) else { throw .EINVAL }
    var ports: [UInt32] = []
    ports.reserveCapacity(Int(count))
    // Xen: ports up to max_evtchns (the ABI's count: more under FIFO).
    let limit = DomainEvents.ofCaller(env.domain).abiPortCount
    for i in 0..<UInt64(count) {
      let port = try env.copyIn(UInt32.self, element: i, of: request.ports)     // evtchn_port_t
      guard Int(port) < limit else { throw .EINVAL }
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
