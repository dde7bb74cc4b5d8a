import XenABI

/// A port, or the error Xen would answer.
public enum EventResult: Sendable, Equatable {
  case ok(UInt32)
  case failed(XenABI.Errno)
}

/// One event channel: one port of one domain (Xen's `struct evtchn`).
public struct EventChannel: Sendable {
  public enum State: Sendable {
    /// Not in use; `allocate` may hand it out.
    case free
    /// Port 0: never allocated, reported as closed (Xen's ECS_RESERVED).
    case reserved
    /// Allocated, waiting for domain `remote` to bind to it (EVTCHNOP_alloc_unbound), or the
    /// surviving end of an interdomain channel whose peer closed it.
    case unbound(remote: UInt16)
    /// Connected to `port` of `peer`; the peer's channel points back here.
    case interdomain(peer: DomainEvents, port: UInt32)
    /// Raised by the hypervisor for virtual IRQ `virq` (XenABI.VIRQ raw value).
    case virq(UInt32)
    /// Sent by the domain to itself; delivered to the notify vcpu.
    case ipi
    /// Connected to a backend inside the hypervisor (the console): a send calls it, and the
    /// hypervisor raises the port with `Events.notify`. Reported as interdomain with DOMID_XEN.
    case backend(HypervisorBackend)
  }

  public var state: State
  /// The vcpu whose selector and upcall flag an event on this port raises.
  public var notifyVCPU: Int

  public init(state: State = .free, notifyVCPU: Int = 0) {
    self.state = state
    self.notifyVCPU = notifyVCPU
  }

  public var isFree: Bool {
    if case .free = state { return true }
    return false
  }

  /// EVTCHNSTAT_* for EVTCHNOP_status.
  public var status: XenABI.EventChannelStatus {
    switch state {
    case .free, .reserved: .closed
    case .unbound: .unbound
    case .interdomain, .backend: .interdomain
    case .virq: .virq
    case .ipi: .ipi
    }
  }
}

/// The backends the hypervisor itself provides over event channels.
public enum HypervisorBackend: Sendable, Equatable {
  /// The console ring behind hvc0 (HVM_PARAM_CONSOLE_PFN / CONSOLE_EVTCHN).
  case console
  /// The xenstore ring (HVM_PARAM_STORE_PFN / STORE_EVTCHN).
  case xenstore
}

/// Xen's VIRQs that are bound once per vcpu; every other one is global (bound on vcpu 0 and
/// delivered to its port's notify vcpu). x86's arch VIRQs are global, as in Xen.
extension XenABI.VIRQ {
  public var isGlobal: Bool {
    switch self {
    case .timer, .debug, .xenoprof, .xenpmu: false
    default: true
    }
  }

  static func isGlobal(raw: UInt32) -> Bool {
    XenABI.VIRQ(rawValue: raw)?.isGlobal ?? true
  }
}

/// A domain's event channels: the port table and the per-vcpu event state (Xen's `d->evtchn`,
/// `d->event_lock`, `v->virq_to_evtchn`).
///
/// Locking (docs/events.md, "Invariants"): `lock` guards everything here. Two domains' locks are
/// taken lower domain id first; inside a domain lock only the atomic bit operations on guest
/// pages and `EventPlatform.kick` (which may take the scheduler's lock) happen.
public final class DomainEvents: @unchecked Sendable {
  public let domain: Domain
  public let lock = SpinLock()
  /// Indexed by port; grows a bucket at a time up to `maximumPort + 1` entries.
  public internal(set) var channels: [EventChannel]
  /// The highest port this domain may allocate (Xen's max_evtchn_port): `Domain.maxEventChannels`
  /// (xl.cfg `max_event_channels`, default 1023) when this state is made. The ABI's port count
  /// bounds it further (`abi.portCount(of:)`: 4,096 under 2-level, 1,024 for a 32-bit shared_info, 131,072 under FIFO).
  public var maximumPort: Int
  /// The ABI the domain uses: 2-level until its first EVTCHNOP_init_control (EventABI.swift),
  /// and under FIFO its state; changed together by `useFIFO`.
  private(set) var abi: EventABI = .twoLevel
  private(set) var fifo: FIFOEvents?

  /// Switches to FIFO with `state`, or back to 2-level with nil (lock held).
  func useFIFO(_ state: FIFOEvents?) {
    fifo = state
    abi = state == nil ? .twoLevel : .fifo
  }
  /// virq → port for each vcpu, `vcpu * VIRQ.count + virq`; 0 = not bound.
  var virqPorts: [UInt32] = []
  /// Set when the domain is being destroyed: no new ports.
  public internal(set) var dying = false

  init(domain: Domain) {
    self.domain = domain
    self.maximumPort = min(max(domain.maxEventChannels, 1), XenABI.FIFO.portCount - 1)
    channels = [EventChannel](repeating: EventChannel(), count: Events.bucketSize)
    channels[0].state = .reserved
  }

  // MARK: Finding a domain's event state

  /// Guards every domain's `Domain.events` (never held while taking another lock): the
  /// reference is taken under it, so a pcpu that finds a domain's event state (the console
  /// backend notifying a domain, say) holds it even if the domain is destroyed meanwhile.
  private static let referenceLock = SpinLock()

  /// The event state of `domain`, created on first use. A domain being destroyed, whose state
  /// was dropped, gets an empty one that is `dying` (no ports, none can be made) and is not
  /// kept: another domain binding to it while it goes (found by id before it left the
  /// registry) must not make it a new state, which would keep the dead domain alive through
  /// the state's reference to it.
  public static func of(_ domain: Domain) -> DomainEvents {
    referenceLock.lock()
    defer { referenceLock.unlock() }
    if let events = domain.events { return events }
    let events = DomainEvents(domain: domain)
    if domain.eventsForgotten {
      events.dying = true
      return events
    }
    domain.events = events
    return events
  }

  /// `of(domain)` for the domain one of whose vcpus makes the call (a hypercall): a domain is
  /// destroyed only once none of its vcpus is on a pcpu, so its event state cannot be forgotten
  /// meanwhile, and once it exists it is read without the reference lock.
  @inline(__always) static func ofCaller(_ domain: Domain) -> DomainEvents {
    if let events = domain.events { return events }
    return of(domain)
  }

  /// `body` with `ofCaller(domain)`, lent without a retain and a release (as `ofCaller`, for
  /// the domain whose vcpu makes the call).
  @inline(__always) static func withCaller<Result>(_ domain: Domain, _ body: (DomainEvents) -> Result) -> Result {
    guard let reference = unsafe domain.eventsReference else { return body(of(domain)) }   // unsafe: read, not used yet
    return unsafe reference._withUnsafeGuaranteedRef(body)   // unsafe: see ofCaller
  }

  /// The event state of `domain` if it has any, without creating it.
  static func existing(_ domain: Domain) -> DomainEvents? {
    referenceLock.lock()
    defer { referenceLock.unlock() }
    return domain.events
  }

  /// The domain is gone: its event state goes with it (and the reference cycle with the
  /// domain is broken).
  static func forget(_ events: DomainEvents) {
    referenceLock.withLock {
      events.domain.eventsForgotten = true
      if events.domain.events === events { events.domain.events = nil }
    }
  }

  // MARK: Ports (all below: `lock` held)

  /// Xen's port_is_valid: the port's bucket exists. Free ports in it are valid too.
  @inline(__always) func isValid(_ port: UInt32) -> Bool { UInt64(port) < UInt64(channels.count) }

  /// Xen's get_free_port: the lowest free port, growing the table by a bucket when every port
  /// in it is used. The port stays free until the caller sets its state.
  /// Below the port count of the domain's shared_info layout: 1024 once it is 32-bit, even if
  /// the table grew past that before.
  func freePort() -> EventResult {
    if dying { return .failed(.EINVAL) }
    let highest = min(maximumPort, abi.portCount(of: domain) - 1)
    for port in 1..<channels.count {
      if port > highest { return .failed(.ENOSPC) }
      if channels[port].isFree {
        fifo?.portAllocated(UInt32(port))
        return .ok(UInt32(port))
      }
    }
    let next = channels.count
    if next > highest { return .failed(.ENOSPC) }
    channels += [EventChannel](repeating: EventChannel(), count: Events.bucketSize)
    fifo?.portsGrew(to: channels.count)
    fifo?.portAllocated(UInt32(next))
    return .ok(UInt32(next))
  }

  /// Makes sure the per-vcpu arrays cover every vcpu of the domain.
  func ensureVCPUs() {
    let count = domain.vcpus.count
    let virqs = Int(XenABI.VIRQ.count)
    if virqPorts.count < count * virqs {
      virqPorts += [UInt32](repeating: 0, count: count * virqs - virqPorts.count)
    }
  }

  func virqPort(vcpu: Int, virq: UInt32) -> UInt32 {
    let index = vcpu * Int(XenABI.VIRQ.count) + Int(virq)
    return index < virqPorts.count ? virqPorts[index] : 0
  }

  func setVIRQPort(vcpu: Int, virq: UInt32, _ port: UInt32) {
    ensureVCPUs()
    virqPorts[vcpu * Int(XenABI.VIRQ.count) + Int(virq)] = port
  }

  /// Number of ports in use (not free, not port 0).
  public var portsInUse: Int {
    lock.withLock { channels.reduce(0) { $0 + ($1.isFree ? 0 : 1) } - 1 }
  }

  /// The ports the domain's ABI can name (Xen's max_evtchns; SCHEDOP_poll's bound).
  public var abiPortCount: Int { lock.withLock { abi.portCount(of: domain) } }

  /// The channel at `port` (a copy), or nil if the port is not valid.
  public func channel(_ port: UInt32) -> EventChannel? {
    lock.withLock { isValid(port) ? channels[Int(port)] : nil }
  }
}

extension DomainEvents {
  /// Runs `body` with the locks of `a` and `b` held, taken in the documented order (lower
  /// domain id first; once if they are the same domain) and released however `body` ends.
  static func withBoth<R>(_ a: DomainEvents, _ b: DomainEvents, _ body: () -> R) -> R {
    if a === b { return a.lock.withLock(body) }
    let (first, second) = a.domain.id < b.domain.id ? (a, b) : (b, a)
    return first.lock.withLock { second.lock.withLock(body) }
  }
}
