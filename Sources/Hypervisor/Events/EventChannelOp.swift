import XenABI
import XenPublic

/// HYPERVISOR_event_channel_op(cmd, arg): Xen's event channels, 2-level and FIFO ABIs (the
/// first EVTCHNOP_init_control switches a domain to FIFO); physical IRQs are not supported
/// (-ENOSYS).
enum EventChannelOp {
  /// The dispatcher's entry: uses the platform the arch layer installed (`Events.platform`).
  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard let platform = unsafe Events.platform else { throw .ENOSYS }
    return try handle(command: command, argument: argument, env, platform: platform)
  }

  static func handle<E: HypercallEnvironment>(
    command: UInt64, argument: UInt64, _ env: E, platform: any EventPlatform
  ) throws(XenABI.Errno) -> HypercallOutcome {
    if command == UInt64(XenABI.EventChannelOp.send.rawValue) {
      // The most frequent op (every xenstore request and ring kick), before the others (and
      // before the enum's initializer, a call): the caller's domain is borrowed, not retained
      // and released (its vcpu keeps it).
      let port = try env.copyIn(evtchn_send.self, from: argument).port
      let error = unsafe env.borrowedDomain._withUnsafeGuaranteedRef { Events.send($0, port: port, platform) }   // unsafe: see above
      if let error { throw error }
      return .result(0)
    }
    guard command <= UInt64(UInt32.max), let op = XenABI.EventChannelOp(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    let domain = env.domain
    switch op {
    case .allocUnbound:
      var request = try env.copyIn(evtchn_alloc_unbound.self, from: argument)
      if let error = Events.resolveSelf(request.dom, caller: domain, platform) { throw error }
      request.port = try Events.allocUnbound(domain, remote: request.remote_dom).port()
      // Xen keeps the port bound even when the copy back fails (-EFAULT).
      try env.copyOut(request, to: argument)

    case .bindInterdomain:
      var request = try env.copyIn(evtchn_bind_interdomain.self, from: argument)
      let remote: Domain
      if Hypercalls.isSelf(request.remote_dom, domain) {
        remote = domain
      } else if request.remote_dom < XenABI.DomainID.firstReserved, let found = platform.domain(id: request.remote_dom) {
        remote = found
      } else {
        throw .ESRCH
      }
      request.local_port = try Events.bindInterdomain(domain, remote: remote, remotePort: request.remote_port, platform).port()
      try env.copyOut(request, to: argument)

    case .bindVIRQ:
      var request = try env.copyIn(evtchn_bind_virq.self, from: argument)
      request.port = try Events.bindVIRQ(domain, virq: request.virq, vcpu: request.vcpu).port()
      try env.copyOut(request, to: argument)

    case .bindIPI:
      // The whole structure first: a port is allocated only for one the guest can be told about.
      var request = try env.copyIn(evtchn_bind_ipi.self, from: argument)
      request.port = try Events.bindIPI(domain, vcpu: request.vcpu).port()
      try env.copyOut(request, to: argument)

    case .close:
      let port = try env.copyIn(evtchn_close.self, from: argument).port
      if let error = Events.close(domain, port: port, platform) { throw error }

    case .send:
      break                                        // above

    case .unmask:
      let port = try env.copyIn(evtchn_unmask.self, from: argument).port
      if let error = Events.unmask(domain, port: port, platform) { throw error }

    case .status:
      var request = try env.copyIn(evtchn_status.self, from: argument)
      if let error = Events.resolveSelf(request.dom, caller: domain, platform) { throw error }
      let (found, error) = Events.status(domain, port: request.port)
      guard let status = found else { throw error ?? .EINVAL }
      // Xen copies the whole structure back: fields a state does not use keep what the guest
      // passed in.
      request.status = status.status.rawValue
      request.vcpu = status.vcpu
      // unsafe: C union members, each written in the case its status names (as Xen's).
      switch status.status {
      case .unbound:
        unsafe request.u.unbound.dom = status.domain
      case .interdomain:
        unsafe request.u.interdomain.dom = status.domain
        unsafe request.u.interdomain.port = status.value
      case .virq:
        unsafe request.u.virq = status.value
      default:
        break
      }
      try env.copyOut(request, to: argument)

    case .bindVCPU:
      let request = try env.copyIn(evtchn_bind_vcpu.self, from: argument)
      if let error = Events.bindVCPU(domain, port: request.port, vcpu: request.vcpu) { throw error }

    case .reset:
      let dom = try env.copyIn(evtchn_reset.self, from: argument).dom
      if let error = Events.resolveSelf(dom, caller: domain, platform) { throw error }
      env.releaseEventFrames(Events.reset(domain, platform))

    case .initControl, .expandArray, .setPriority:
      try fifoCommand(op, argument: argument, env, platform: platform)

    case .bindPIRQ:
      throw .ENOSYS
    }
    return .result(0)
  }
}

extension EventChannelOp {
  /// The FIFO ABI's commands, out of `handle`'s line: its send case is on every notification's
  /// path and its instructions are budgeted (docs/exit-budget.md).
  @inline(never)
  static func fifoCommand<E: HypercallEnvironment>(
    _ op: XenABI.EventChannelOp, argument: UInt64, _ env: E, platform: any EventPlatform
  ) throws(XenABI.Errno) {
    let domain = env.domain
    switch op {
    case .initControl:
      var request = try env.copyIn(evtchn_init_control.self, from: argument)
      // As Xen's evtchn_fifo_init_control: the vcpu, then the offset (the block inside the
      // page, 8-byte aligned), then one control block per vcpu.
      guard UInt64(request.vcpu) < UInt64(domain.vcpus.count) else { throw .ENOENT }
      guard UInt64(request.offset) <= UInt64(4096 - XenABI.FIFO.ControlBlock.size),
            request.offset & 7 == 0 else { throw .EINVAL }
      let vcpu = Int(request.vcpu)
      if Events.hasControlBlock(domain, vcpu: vcpu) { throw .EINVAL }
      let frame = try Self.holdFrame(request.control_gfn, env)
      if let error = Events.initControl(domain, vcpu: vcpu, frame: frame, offset: request.offset) {
        env.releaseEventFrames([frame])
        throw error
      }
      request.link_bits = UInt8(XenABI.FIFO.linkBits)
      try env.copyOut(request, to: argument)

    case .expandArray:
      let gfn = try env.copyIn(evtchn_expand_array.self, from: argument).array_gfn
      if let error = Events.canExpandArray(domain) { throw error }
      let frame = try Self.holdFrame(gfn, env)
      if let error = Events.expandArray(domain, frame: frame, platform) {
        env.releaseEventFrames([frame])
        throw error
      }

    case .setPriority:
      let request = try env.copyIn(evtchn_set_priority.self, from: argument)
      if let error = Events.setPriority(domain, port: request.port, priority: request.priority) { throw error }

    default:
      break
    }
  }

  /// A FIFO page: the guest's RAM frame `gfn`, held for as long as the event code uses it, or
  /// -EINVAL (not RAM, or a number beyond guest frames: shifted into an address it would lose
  /// its top bits and name some other frame).
  static func holdFrame<E: HypercallEnvironment>(_ gfn: UInt64, _ env: E) throws(XenABI.Errno) -> UInt64 {
    guard gfn < (1 << 40), let frame = env.holdEventFrame(gfn: gfn) else { throw .EINVAL }
    return frame
  }
}

extension EventResult {
  /// The port a bind gave, or its error, thrown.
  func port() throws(XenABI.Errno) -> UInt32 {
    switch self {
    case .ok(let port): return port
    case .failed(let error): throw error
    }
  }
}
