import XenABI

/// The event-channel operations on domains, as Xen's common/event_channel.c does them. The
/// hypercall handler (EventChannelOp.swift) parses the guest's structures and calls these; the
/// hypervisor may call them for its own backends too. Errors are Xen's.
extension Events {
  /// A domain named by a guest where Xen requires the caller itself (XSM_TARGET for an
  /// unprivileged domain): itself, -EPERM for another live domain, -ESRCH for none.
  static func resolveSelf(_ domid: UInt16, caller: Domain, _ platform: any EventPlatform) -> XenABI.Errno? {
    if Hypercalls.isSelf(domid, caller) { return nil }
    if domid < XenABI.DomainID.firstReserved, platform.domain(id: domid) != nil { return .EPERM }
    return .ESRCH
  }

  /// Frees `port` (lock held): its pending bit is cleared so a re-bound port starts quiet.
  static func free(_ events: DomainEvents, _ port: UInt32, _ platform: any EventPlatform) {
    if !events.dying { events.abi.clearPending(events, port: port) }
    events.channels[Int(port)] = EventChannel()
  }

  // MARK: Allocation and binding

  /// EVTCHNOP_alloc_unbound in `domain`: a port that `remote` may bind to.
  public static func allocUnbound(_ domain: Domain, remote: UInt16) -> EventResult {
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    let result = events.freePort()
    guard case .ok(let port) = result else { return result }
    let remoteID = remote == XenABI.DomainID.selfDomain ? domain.id : remote
    events.channels[Int(port)] = EventChannel(state: .unbound(remote: remoteID))
    return result
  }

  /// EVTCHNOP_bind_interdomain: connects a new port of `domain` to `remotePort` of `remote`,
  /// which must be unbound and waiting for `domain`. The new port starts pending: an event sent
  /// on the unbound end before the bind is not lost.
  public static func bindInterdomain(
    _ domain: Domain, remote: Domain, remotePort: UInt32, _ platform: any EventPlatform
  ) -> EventResult {
    let local = DomainEvents.of(domain)
    let peer = DomainEvents.of(remote)
    return DomainEvents.withBoth(local, peer) {
      let result = local.freePort()
      guard case .ok(let port) = result else { return result }
      guard !peer.dying, peer.isValid(remotePort),
            case .unbound(let waitingFor) = peer.channels[Int(remotePort)].state,
            waitingFor == domain.id else { return .failed(.EINVAL) }
      local.channels[Int(port)] = EventChannel(state: .interdomain(peer: peer, port: remotePort))
      peer.channels[Int(remotePort)].state = .interdomain(peer: local, port: port)
      setPending(local, port: port, vcpu: local.channels[Int(port)].notifyVCPU, platform)
      return result
    }
  }

  /// EVTCHNOP_bind_virq: `virq` on vcpu `vcpu` (global VIRQs only on vcpu 0).
  public static func bindVIRQ(_ domain: Domain, virq: UInt32, vcpu: UInt32) -> EventResult {
    guard virq < XenABI.VIRQ.count else { return .failed(.EINVAL) }
    if XenABI.VIRQ.isGlobal(raw: virq), vcpu != 0 { return .failed(.EINVAL) }
    guard UInt64(vcpu) < UInt64(domain.vcpus.count) else { return .failed(.ENOENT) }
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    events.ensureVCPUs()
    if events.virqPort(vcpu: Int(vcpu), virq: virq) != 0 { return .failed(.EEXIST) }
    let result = events.freePort()
    guard case .ok(let port) = result else { return result }
    events.channels[Int(port)] = EventChannel(state: .virq(virq), notifyVCPU: Int(vcpu))
    events.setVIRQPort(vcpu: Int(vcpu), virq: virq, port)
    return result
  }

  /// EVTCHNOP_bind_ipi: a port the domain sends to itself, delivered to `vcpu`.
  /// Connects a new port of `domain` to a hypervisor backend (the domain builder does this for
  /// the console before the guest starts).
  public static func bindBackend(_ domain: Domain, _ backend: HypervisorBackend) -> EventResult {
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    let result = events.freePort()
    guard case .ok(let port) = result else { return result }
    events.channels[Int(port)] = EventChannel(state: .backend(backend))
    return result
  }

  public static func bindIPI(_ domain: Domain, vcpu: UInt32) -> EventResult {
    guard UInt64(vcpu) < UInt64(domain.vcpus.count) else { return .failed(.ENOENT) }
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    let result = events.freePort()
    guard case .ok(let port) = result else { return result }
    events.channels[Int(port)] = EventChannel(state: .ipi, notifyVCPU: Int(vcpu))
    return result
  }

  /// EVTCHNOP_bind_vcpu: deliver `port` to `vcpu` from now on. Only unbound, interdomain and
  /// global-VIRQ ports can move (as Xen).
  public static func bindVCPU(_ domain: Domain, port: UInt32, vcpu: UInt32) -> XenABI.Errno? {
    guard UInt64(vcpu) < UInt64(domain.vcpus.count) else { return .ENOENT }
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    guard events.isValid(port) else { return .EINVAL }
    switch events.channels[Int(port)].state {
    case .virq(let virq) where XenABI.VIRQ.isGlobal(raw: virq):
      events.channels[Int(port)].notifyVCPU = Int(vcpu)
      return nil
    case .unbound, .interdomain, .backend:
      events.channels[Int(port)].notifyVCPU = Int(vcpu)
      return nil
    default:
      return .EINVAL
    }
  }

  // MARK: Close and reset

  /// EVTCHNOP_close: frees `port`. The other end of an interdomain channel goes back to unbound,
  /// waiting for this domain again (as Xen); `notifyPeer` also raises it (domain destruction).
  public static func close(
    _ domain: Domain, port: UInt32, _ platform: any EventPlatform, notifyPeer: Bool = false
  ) -> XenABI.Errno? {
    let events = DomainEvents.of(domain)
    /// What the first look, under this domain's lock alone, found.
    enum FirstLook { case done(XenABI.Errno?), otherDomain(DomainEvents, UInt32) }
    let first: FirstLook = events.lock.withLock {
      guard events.isValid(port) else { return .done(.EINVAL) }
      switch events.channels[Int(port)].state {
      case .free, .reserved:
        return .done(.EINVAL)
      case .unbound, .ipi, .backend:
        free(events, port, platform)
      case .virq(let virq):
        for vcpu in 0..<events.domain.vcpus.count where events.virqPort(vcpu: vcpu, virq: virq) == port {
          events.setVIRQPort(vcpu: vcpu, virq: virq, 0)
        }
        free(events, port, platform)
      case .interdomain(let peer, let peerPort):
        if peer !== events { return .otherDomain(peer, peerPort) }
        closeInterdomain(events, port, peer, peerPort, notifyPeer: notifyPeer, platform)
      }
      return .done(nil)
    }
    guard case .otherDomain(let peer, let peerPort) = first else {
      if case .done(let error) = first { return error }
      return nil
    }
    // Both locks, lower id first, which means dropping ours and taking the pair; the channel
    // may have changed in between, and if it no longer is the same connection it was closed
    // (and perhaps re-bound) meanwhile, so answer as if it had been seen free (as Xen).
    return DomainEvents.withBoth(events, peer) {
      guard case .interdomain(let again, let againPort) = events.channels[Int(port)].state,
            again === peer, againPort == peerPort else { return .EINVAL }
      closeInterdomain(events, port, peer, peerPort, notifyPeer: notifyPeer, platform)
      return nil
    }
  }

  /// Closes `port`, one end of an interdomain channel (both ends' locks held): the peer's end
  /// goes back to unbound, waiting for this domain again.
  private static func closeInterdomain(
    _ events: DomainEvents, _ port: UInt32, _ peer: DomainEvents, _ peerPort: UInt32, notifyPeer: Bool, _ platform: any EventPlatform
  ) {
    free(events, port, platform)
    peer.channels[Int(peerPort)].state = .unbound(remote: events.domain.id)
    if notifyPeer, !peer.dying {
      setPending(peer, port: peerPort, vcpu: peer.channels[Int(peerPort)].notifyVCPU, platform)
    }
  }

  /// EVTCHNOP_reset on the caller: closes every port (port 0 stays reserved) and goes back to
  /// the 2-level ABI (as Xen). Returns the FIFO pages the hypervisor no longer uses, for the
  /// caller to release (`HypercallEnvironment.releaseEventFrames`).
  @discardableResult
  public static func reset(_ domain: Domain, _ platform: any EventPlatform) -> [UInt64] {
    let events = DomainEvents.of(domain)
    let count = events.lock.withLock { events.channels.count }
    for port in 1..<count { _ = close(domain, port: UInt32(port), platform) }
    return events.lock.withLock { leaveFIFO(events) }
  }

  /// The domain is being destroyed: no new ports, every port closed, every peer of an
  /// interdomain channel notified (its port is unbound now), the state forgotten. Call it
  /// before the shared_info frame is freed.
  public static func domainDestroyed(_ domain: Domain, using platform: any EventPlatform) {
    guard let events = DomainEvents.existing(domain) else { return }
    let count = events.lock.withLock { () -> Int in
      events.dying = true
      return events.channels.count
    }
    for port in 1..<count { _ = close(domain, port: UInt32(port), platform, notifyPeer: true) }
    // The FIFO pages' holds are recorded in `Domain.eventFrames`: the domain's memory
    // teardown (`P2M.destroyWithHolds`) drops them after this.
    events.lock.withLock { _ = leaveFIFO(events) }
    DomainEvents.forget(events)
  }

  public static func domainDestroyed(_ domain: Domain) {
    guard let platform = unsafe platform else { return }
    domainDestroyed(domain, using: platform)
  }

  // MARK: Send, unmask, status

  /// EVTCHNOP_send by a vcpu of `domain`: an interdomain port raises the peer's port, an IPI
  /// port itself; an unbound port drops the event (0); anything else is -EINVAL.
  public static func send(_ domain: Domain, port: UInt32, _ platform: any EventPlatform) -> XenABI.Errno? {
    // Borrowed, not retained: a caller's domain keeps its event state while one of its vcpus is
    // in a hypercall (`DomainEvents.ofCaller`).
    // Not `withCaller`: its closure, inlined on both of its paths, made this a function that
    // saves and restores five registers on the usual one.
    guard let reference = unsafe domain.eventsReference else { return send(domain, events: DomainEvents.of(domain), port: port, platform) }   // unsafe: read, used below
    return unsafe reference._withUnsafeGuaranteedRef { send(domain, events: $0, port: port, platform) }   // unsafe: see ofCaller
  }

  private static func send(_ domain: Domain, events: DomainEvents, port: UInt32, _ platform: any EventPlatform) -> XenABI.Errno? {
    /// What to do once this domain's lock is dropped.
    enum Then { case done(XenABI.Errno?), deliverToPeer(DomainEvents, UInt32), notifyBackend(HypervisorBackend) }
    let then: Then = events.lock.withLock {
      guard events.isValid(port) else { return .done(.EINVAL) }
      let channel = events.channels[Int(port)]
      switch channel.state {
      case .interdomain(let peer, let peerPort):
        if peer === events {
          setPending(events, port: peerPort, vcpu: events.channels[Int(peerPort)].notifyVCPU, platform)
          return .done(nil)
        }
        return .deliverToPeer(peer, peerPort)
      case .ipi:
        setPending(events, port: port, vcpu: channel.notifyVCPU, platform)
        return .done(nil)
      case .unbound:
        return .done(nil)
      case .backend(let backend):
        return .notifyBackend(backend)
      default:
        return .done(.EINVAL)
      }
    }
    switch then {
    case .done(let error):
      return error
    case .deliverToPeer(let peer, let peerPort):
      // Only one domain lock at a time on this path (so sends in both directions cannot
      // deadlock): the peer was read under ours, and is delivered to under its own if the
      // channel is still connected to this port. A close in between wins the race: the event
      // is dropped, as if it had been sent just after the close.
      peer.lock.withLock {
        if peer.isValid(peerPort), case .interdomain(let back, let backPort) = peer.channels[Int(peerPort)].state,
           back === events, backPort == port {
          setPending(peer, port: peerPort, vcpu: peer.channels[Int(peerPort)].notifyVCPU, platform)
        }
      }
      return nil
    case .notifyBackend(let backend):
      unsafe backendNotified?(domain, backend, platform)
      return nil
    }
  }

  /// EVTCHNOP_unmask: clears the mask bit and delivers the port if it is pending.
  public static func unmask(_ domain: Domain, port: UInt32, _ platform: any EventPlatform) -> XenABI.Errno? {
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    guard events.isValid(port) else { return .EINVAL }
    events.abi.unmask(events, port: port, vcpu: events.channels[Int(port)].notifyVCPU, platform)
    return nil
  }

  /// What EVTCHNOP_status reports about one port.
  public struct PortStatus: Sendable, Equatable {
    public var status: XenABI.EventChannelStatus
    public var vcpu: UInt32
    /// unbound: the remote domain; interdomain: the peer domain.
    public var domain: UInt16 = 0
    /// interdomain: the peer's port; virq: the VIRQ.
    public var value: UInt32 = 0
  }

  public static func status(_ domain: Domain, port: UInt32) -> (PortStatus?, XenABI.Errno?) {
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    guard events.isValid(port) else { return (nil, .EINVAL) }
    let channel = events.channels[Int(port)]
    var status = PortStatus(status: channel.status, vcpu: UInt32(channel.notifyVCPU))
    switch channel.state {
    case .unbound(let remote): status.domain = remote
    case .interdomain(let peer, let peerPort):
      status.domain = peer.domain.id
      status.value = peerPort
    case .virq(let virq): status.value = virq
    case .backend: status.domain = XenABI.DomainID.xen
    default: break
    }
    return (status, nil)
  }
}
