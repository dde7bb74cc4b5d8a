import XenABI

/// What the event-channel core needs from the architecture layer (docs/events.md, "The arch
/// contract"): atomic bit operations on guest pages the hypervisor has mapped, where those pages
/// are, and a way to make a vcpu notice an event.
///
/// Addresses are opaque to this layer: they name bytes in the hypervisor's view of a guest page
/// (on x86 the identity-mapped machine address, so `hv_atomic_*` in Support.h apply directly; in
/// the host tests an index into a fake). Word addresses are 8-byte aligned.
///
/// A class-bound protocol, so Embedded Swift can hold it as an existential (`Events.platform`).
public protocol EventPlatform: AnyObject {
  /// The domain's shared_info page, nil while the guest has not mapped one
  /// (XENMEM_add_to_physmap): events raised before that are not recorded in any page.
  func sharedInfo(of domain: Domain) -> UInt64?
  /// The vcpu's `vcpu_info`: `shared_info.vcpu_info[id]` for ids below 32 unless the guest moved
  /// it with VCPUOP_register_vcpu_info; nil when it has none. `Events.defaultVCPUInfo` computes
  /// the first case.
  func vcpuInfo(of vcpu: VCPU) -> UInt64?
  /// Atomically sets bit `bit` (0–63) of the 64-bit word at `word`; returns its old value
  /// (x86: `lock bts`, `hv_atomic_test_and_set_bit64`).
  func testAndSetBit(_ bit: Int, at word: UInt64) -> Bool
  /// Atomically clears bit `bit` of the word at `word`; returns its old value.
  func testAndClearBit(_ bit: Int, at word: UInt64) -> Bool
  /// Atomic 64-bit load.
  func load(at word: UInt64) -> UInt64
  /// Atomically stores `value` in the byte at `address`; returns the old byte.
  func exchangeByte(at address: UInt64, _ value: UInt8) -> UInt8
  /// The vcpu has a new upcall pending: wake it if it is blocked, and if it is in guest mode on
  /// some pcpu, make that pcpu leave guest mode (IPI) so the upcall is injected at its next entry.
  /// Called with event locks held: it may take the scheduler's lock, nothing else of events.
  func kick(_ vcpu: VCPU)
  /// A live domain by id (for bind_interdomain, status and reset of another domain).
  func domain(id: UInt16) -> Domain?
}

extension EventPlatform {
  public func testBit(_ bit: Int, at word: UInt64) -> Bool {
    load(at: word) & (1 << UInt64(bit)) != 0
  }

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
  /// guest sends on a port bound to one.
  nonisolated(unsafe) public static var backendNotified: ((Domain, HypervisorBackend) -> Void)?

  /// Ports of the 2-level ABI on a 64-bit guest: 64 words of 64 bits (EVTCHN_2L_NR_CHANNELS).
  public static let portCount = XenABI.eventChannelCount2Level
  /// Bits per pending/mask/selector word.
  public static let bitsPerWord = 64
  /// Ports are allocated in buckets of this many (Xen's EVTCHNS_PER_BUCKET): a port is "valid"
  /// (status answers, unmask works) once its bucket exists, even when the port itself is free.
  public static let bucketSize = 64
  /// The highest port a domain may use unless configured lower (max_event_channels).
  public static let defaultMaximumPort = portCount - 1

  /// `shared_info.vcpu_info[vcpu.id]` in `sharedInfo`, or nil for vcpus 32 and up, which need
  /// VCPUOP_register_vcpu_info.
  public static func defaultVCPUInfo(of vcpu: VCPU, sharedInfo: UInt64?) -> UInt64? {
    guard let sharedInfo, vcpu.id >= 0, vcpu.id < XenABI.maxVirtualCPUsInSharedInfo else { return nil }
    return sharedInfo + UInt64(XenABI.SharedInfo.vcpuInfoOffset(vcpu.id))
  }
}
