import XenABI

/// The half of the event operations that depends on the ABI a domain chose (Xen's
/// `struct evtchn_port_ops`): 2-level, the bits in shared_info every domain starts with, or
/// FIFO, per-port event words in guest pages queued per vcpu and priority, which the first
/// EVTCHNOP_init_control switches the domain to and EVTCHNOP_reset switches back from.
///
/// The generic operations (EventOperations.swift) call these and never look at the ABI
/// themselves. Every method runs with the domain's event lock held (docs/events.md).
///
/// A plain enum (the FIFO state is `DomainEvents.fifo`): the switch on every send is a byte
/// compare, with no reference counted, since the send's instructions are budgeted
/// (docs/exit-budget.md).
enum EventABI {
  case twoLevel
  case fifo

  /// Ports this ABI can name for `domain` (Xen's max_evtchns): 4,096 under 2-level (1,024
  /// once its shared_info is 32-bit), 131,072 under FIFO.
  func portCount(of domain: Domain) -> Int {
    switch self {
    case .twoLevel: Events.portCount(of: domain)
    case .fifo: XenABI.FIFO.portCount
    }
  }

  /// Marks `port` pending and, unless it is masked, raises it on `vcpu`: the upcall flag and
  /// a kick, as Xen's evtchn_port_set_pending.
  @inline(__always)
  func setPending(_ events: DomainEvents, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    switch self {
    case .twoLevel:
      // Borrowed, not retained (the send path's budget): the event state's domain outlives it.
      unsafe Unmanaged.passUnretained(events.domain)._withUnsafeGuaranteedRef {   // unsafe: see above
        Events.setPendingTwoLevel($0, port: port, vcpu: vcpu, platform)
      }
    case .fifo: events.fifo?.setPending(events, port: port, vcpu: vcpu, platform)
    }
  }

  /// Clears `port`'s pending state (it is being freed: a re-bound port starts quiet).
  func clearPending(_ events: DomainEvents, port: UInt32) {
    switch self {
    case .twoLevel: Events.clearPendingTwoLevel(events.domain, port: port)
    case .fifo: events.fifo?.clearPending(port: port)
    }
  }

  /// EVTCHNOP_unmask: clears the mask and delivers the port on `vcpu` if it is pending.
  func unmask(_ events: DomainEvents, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    switch self {
    case .twoLevel: Events.unmaskTwoLevel(events.domain, port: port, vcpu: vcpu, platform)
    case .fifo: events.fifo?.unmask(events, port: port, vcpu: vcpu, platform)
    }
  }

  func isPending(_ events: DomainEvents, port: UInt32) -> Bool {
    switch self {
    case .twoLevel: Events.isPendingTwoLevel(events.domain, port: port)
    case .fifo: events.fifo?.isPending(port: port) ?? false
    }
  }

  func isMasked(_ events: DomainEvents, port: UInt32) -> Bool {
    switch self {
    case .twoLevel: Events.isMaskedTwoLevel(events.domain, port: port)
    case .fifo: events.fifo?.isMasked(port: port) ?? true
    }
  }

  /// EVTCHNOP_set_priority on a valid port: -ENOSYS under 2-level (Xen's 2-level ops have no
  /// set_priority), -EINVAL for a priority beyond EVTCHN_FIFO_PRIORITY_MIN.
  func setPriority(_ events: DomainEvents, port: UInt32, priority: UInt32) -> XenABI.Errno? {
    switch self {
    case .twoLevel: return .ENOSYS
    case .fifo:
      guard priority <= XenABI.FIFO.priorityMin else { return .EINVAL }
      // Only later events go to the new queue: one already linked stays where it is (as Xen).
      events.fifo?.ports[Int(port)].priority = UInt8(priority)
      return nil
    }
  }
}

extension Events {
  /// `events.abi.setPending`: the one entry every raise of a port goes through (send, VIRQ,
  /// backend notify, bind, close of a peer). Caller holds `events.lock`.
  @inline(__always)
  static func setPending(_ events: DomainEvents, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    events.abi.setPending(events, port: port, vcpu: vcpu, platform)
  }
}
