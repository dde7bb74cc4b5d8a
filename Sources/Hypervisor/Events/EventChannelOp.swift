import XenABI

/// HYPERVISOR_event_channel_op(cmd, arg): Xen's event channels, 2-level ABI. The FIFO ABI's
/// commands answer -ENOSYS, which is how Linux decides to use 2-level; physical IRQs are not
/// supported (-ENOSYS).
enum EventChannelOp {
  typealias Layout = XenABI.EventChannelLayout

  /// The dispatcher's entry: uses the platform the arch layer installed (`Events.platform`).
  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) -> HypercallOutcome {
    guard let platform = unsafe Events.platform else { return .error(.ENOSYS) }
    return handle(command: command, argument: argument, env, platform: platform)
  }

  static func handle<E: HypercallEnvironment>(
    command: UInt64, argument: UInt64, _ env: E, platform: any EventPlatform
  ) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.EventChannelOp(rawValue: UInt32(command)) else {
      return .error(.ENOSYS)
    }
    let domain = env.domain
    switch op {
    case .allocUnbound:
      guard let bytes = env.read(argument, count: Layout.AllocUnbound.size),
            let dom = bytes.littleEndian(UInt16.self, at: Layout.AllocUnbound.Offset.dom),
            let remote = bytes.littleEndian(UInt16.self, at: Layout.AllocUnbound.Offset.remoteDom) else {
        return .error(.EFAULT)
      }
      if let error = Events.resolveSelf(dom, caller: domain, platform) { return .error(error) }
      return answer(Events.allocUnbound(domain, remote: remote), env, at: argument, offset: Layout.AllocUnbound.Offset.port)

    case .bindInterdomain:
      guard let bytes = env.read(argument, count: Layout.BindInterdomain.size),
            let remoteID = bytes.littleEndian(UInt16.self, at: Layout.BindInterdomain.Offset.remoteDom),
            let remotePort = bytes.littleEndian(UInt32.self, at: Layout.BindInterdomain.Offset.remotePort) else {
        return .error(.EFAULT)
      }
      let remote: Domain
      if Hypercalls.isSelf(remoteID, domain) {
        remote = domain
      } else if remoteID < XenABI.DomainID.firstReserved, let found = platform.domain(id: remoteID) {
        remote = found
      } else {
        return .error(.ESRCH)
      }
      return answer(Events.bindInterdomain(domain, remote: remote, remotePort: remotePort, platform),
                    env, at: argument, offset: Layout.BindInterdomain.Offset.localPort)

    case .bindVIRQ:
      guard let bytes = env.read(argument, count: Layout.BindVIRQ.size),
            let virq = bytes.littleEndian(UInt32.self, at: Layout.BindVIRQ.Offset.virq),
            let vcpu = bytes.littleEndian(UInt32.self, at: Layout.BindVIRQ.Offset.vcpu) else {
        return .error(.EFAULT)
      }
      return answer(Events.bindVIRQ(domain, virq: virq, vcpu: vcpu), env, at: argument, offset: Layout.BindVIRQ.Offset.port)

    case .bindIPI:
      // The whole structure first: a port is allocated only for one the guest can be told about.
      guard let bytes = env.read(argument, count: Layout.BindIPI.size),
            let vcpu = bytes.littleEndian(UInt32.self, at: Layout.BindIPI.Offset.vcpu) else {
        return .error(.EFAULT)
      }
      return answer(Events.bindIPI(domain, vcpu: vcpu), env, at: argument, offset: Layout.BindIPI.Offset.port)

    case .close, .send, .unmask:
      guard let port = env.readLE(UInt32.self, at: argument, offset: Layout.Port.Offset.port) else {
        return .error(.EFAULT)
      }
      let error: XenABI.Errno? =
        switch op {
        case .close: Events.close(domain, port: port, platform)
        case .send: Events.send(domain, port: port, platform)
        default: Events.unmask(domain, port: port, platform)
        }
      return error.map { .error($0) } ?? .result(0)

    case .status:
      guard var bytes = env.read(argument, count: Layout.Status.size),
            let dom = bytes.littleEndian(UInt16.self, at: Layout.Status.Offset.dom),
            let port = bytes.littleEndian(UInt32.self, at: Layout.Status.Offset.port) else {
        return .error(.EFAULT)
      }
      if let error = Events.resolveSelf(dom, caller: domain, platform) { return .error(error) }
      let (found, error) = Events.status(domain, port: port)
      guard let status = found else { return .error(error ?? .EINVAL) }
      // Xen copies the whole structure back: fields a state does not use keep what the guest
      // passed in.
      put(status.status.rawValue, into: &bytes, at: Layout.Status.Offset.status)
      put(status.vcpu, into: &bytes, at: Layout.Status.Offset.vcpu)
      switch status.status {
      case .unbound:
        put(status.domain, into: &bytes, at: Layout.Status.Offset.u)
      case .interdomain:
        put(status.domain, into: &bytes, at: Layout.Status.Offset.u)
        put(status.value, into: &bytes, at: Layout.Status.Offset.u + 4)
      case .virq:
        put(status.value, into: &bytes, at: Layout.Status.Offset.u)
      default:
        break
      }
      return env.write(argument, bytes) ? .result(0) : .error(.EFAULT)

    case .bindVCPU:
      guard let bytes = env.read(argument, count: Layout.BindVCPU.size),
            let port = bytes.littleEndian(UInt32.self, at: Layout.BindVCPU.Offset.port),
            let vcpu = bytes.littleEndian(UInt32.self, at: Layout.BindVCPU.Offset.vcpu) else {
        return .error(.EFAULT)
      }
      return Events.bindVCPU(domain, port: port, vcpu: vcpu).map { .error($0) } ?? .result(0)

    case .reset:
      guard let dom = env.readLE(UInt16.self, at: argument, offset: Layout.Reset.Offset.dom) else {
        return .error(.EFAULT)
      }
      if let error = Events.resolveSelf(dom, caller: domain, platform) { return .error(error) }
      Events.reset(domain, platform)
      return .result(0)

    case .bindPIRQ, .initControl, .expandArray, .setPriority:
      return .error(.ENOSYS)
    }
  }

  /// Writes the port of a successful bind into the guest's structure at `base`; Xen keeps the
  /// port bound even when that copy fails (-EFAULT).
  private static func answer<E: HypercallEnvironment>(_ result: EventResult, _ env: E, at base: UInt64, offset: Int) -> HypercallOutcome {
    switch result {
    case .failed(let error): return .error(error)
    case .ok(let port): return env.writeLE(port, at: base, offset: offset) ? .result(0) : .error(.EFAULT)
    }
  }

  private static func put<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
    for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
  }
}
