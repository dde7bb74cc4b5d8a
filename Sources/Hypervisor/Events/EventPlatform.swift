import XenABI

/// What the event-channel core needs from the architecture layer (docs/events.md, "The arch
/// contract"): a way to make a vcpu notice an event, and to find a domain.
///
/// Where the guest pages shared for events are is common knowledge: `Events.sharedInfo(of:)`
/// and `Events.vcpuInfo(of:)` give the addresses the hypervisor reaches them at (on x86 the
/// identity-mapped machine address; in the host tests a host address of a fake page), and
/// `SharedWords` works on them directly with atomic instructions.
///
/// A class-bound protocol, so Embedded Swift can hold it as an existential (`Events.platform`).
public protocol EventPlatform: AnyObject {
  /// The vcpu has a new upcall pending: wake it if it is blocked, and if it is in guest mode on
  /// some pcpu, make that pcpu leave guest mode (IPI) so the upcall is injected at its next entry.
  /// Called with event locks held: it may take the scheduler's lock, nothing else of events.
  func kick(_ vcpu: VCPU)
  /// A live domain by id (for bind_interdomain, status and reset of another domain).
  func domain(id: UInt16) -> Domain?
}

extension EventPlatform {
  /// Default domain lookup: the global registry.
  public func domain(id: UInt16) -> Domain? {
    Domains.all.first { $0.id == id }
  }
}

/// The hypervisor-wide entry points of event channels.
public enum Events {
  /// Set by the arch layer at boot. Nil (as on a host build) makes event_channel_op answer
  /// -ENOSYS and `raiseVIRQ` do nothing.
  nonisolated(unsafe) public static var platform: (any EventPlatform)?
  /// Set by whoever provides hypervisor backends: called (with no event lock held) when a
  /// guest sends on a port bound to one, with the send's platform (borrowed, so that a backend
  /// that answers at once raises the sender's port without counting a reference to it). Set
  /// once at boot, before any domain exists.
  nonisolated(unsafe) public static var backendNotified: ((Domain, HypervisorBackend, any EventPlatform) -> Void)?

  /// Ports of the 2-level ABI on a 64-bit guest: 64 words of 64 bits (EVTCHN_2L_NR_CHANNELS).
  public static let portCount = XenABI.eventChannelCount2Level
  /// Bits per pending/mask/selector word.
  public static let bitsPerWord = 64
  /// Ports are allocated in buckets of this many (Xen's EVTCHNS_PER_BUCKET): a port is "valid"
  /// (status answers, unmask works) once its bucket exists, even when the port itself is free.
  public static let bucketSize = 64
  /// The highest port a domain may use unless its xl.cfg says otherwise (`max_event_channels`,
  /// `Domain.maxEventChannels`): libxl's default of 1023 for every domU, whatever its ABI (Xen's
  /// get_free_port stops at d->max_evtchn_port). FIFO could name 131,071, but each port costs
  /// the hypervisor a channel entry, so a guest grows its table only as far as it was allowed.
  public static let defaultMaximumPort = 1023
  /// Ports of the 2-level ABI on a domain whose shared_info is 32-bit
  /// (`Domain.has32BitSharedInfo`): 32 words of 32 bits.
  public static let compatPortCount = XenABI.Compat.eventChannelCount2Level

  /// The 2-level ports `domain`'s shared_info layout has (Xen's BITS_PER_EVTCHN_WORD(d)²).
  @inline(__always) public static func portCount(of domain: Domain) -> Int {
    domain.has32BitSharedInfo ? compatPortCount : portCount
  }

  /// `shared_info.vcpu_info[vcpu.id]` in `sharedInfo`, or nil for vcpus 32 and up, which need
  /// VCPUOP_register_vcpu_info.
  /// The domain's shared_info page (`Domain.sharedInfoMachine`), nil while the guest has not
  /// mapped one (XENMEM_add_to_physmap) and from destruction on: events raised then are not
  /// recorded in any page.
  @inline(__always) public static func sharedInfo(of domain: Domain) -> UInt64? {
    let page = domain.sharedInfoMachine
    return page == 0 ? nil : page
  }

  /// The vcpu's `vcpu_info`: where VCPUOP_register_vcpu_info put it, else
  /// `shared_info.vcpu_info[id]` for ids below 32; nil when it has none. GuestTime publishes
  /// the vcpu's time there too.
  @inline(__always) public static func vcpuInfo(of vcpu: VCPU) -> UInt64? {
    if vcpu.vcpuInfoAddress != 0 { return vcpu.vcpuInfoAddress }
    // The page read through the vcpu's unowned domain reference, not handed to a function
    // (which would retain and release the domain on every entry).
    let page = unsafe vcpu.domain.sharedInfoMachine
    return defaultVCPUInfo(of: vcpu, sharedInfo: page == 0 ? nil : page)
  }

  public static func defaultVCPUInfo(of vcpu: VCPU, sharedInfo: UInt64?) -> UInt64? {
    guard let sharedInfo, vcpu.id >= 0, vcpu.id < XenABI.maxVirtualCPUsInSharedInfo else { return nil }
    return sharedInfo &+ UInt64(XenABI.SharedInfo.vcpuInfoOffset(vcpu.id))   // inside the page: cannot wrap
  }
}
