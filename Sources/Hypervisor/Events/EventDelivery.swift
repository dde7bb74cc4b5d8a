import XenABI
import Synchronization

/// The 2-level delivery protocol on the shared_info page, as Xen's event_2l.c does it.
///
/// The guest changes the same words with LOCK-prefixed instructions while this runs on another
/// pcpu, so every read-modify-write goes through the platform's atomics, in this order:
///
///   raise p on vcpu v:  test-and-set pending[p]          — already pending: done
///                       mask[p] set?                     — masked: done (unmask delivers)
///                       test-and-set v.pending_sel[p/64] — already set: done (the guest has
///                                                          not scanned that word yet)
///                       exchange v.upcall_pending ← 1    — was 1: done
///                       kick v
///
/// The guest clears upcall_pending, then exchanges pending_sel with 0, then for each word
/// clears the pending bits it handles: every step above is matched by a step there, so an event
/// is never lost and a vcpu is kicked at most once per upcall.
///
/// A domain whose shared_info is 32-bit (`Domain.has32BitSharedInfo`, Xen's has_32bit_shinfo)
/// has the same protocol on 32-bit words at the compat offsets (`XenABI.Compat`): pending_sel
/// bit p/32, and only ports below 1024. Each operation asks once and goes out of line to its
/// compat form, so a 64-bit domain's send pays one predictable branch.
extension Events {
  // Wrapping sums on purpose: a shared page's address plus an offset inside it (ports are below
  // `portCount`) cannot overflow, and these are on every send's path.
  static func pendingWord(_ sharedInfo: UInt64, _ port: UInt32) -> UInt64 {
    sharedInfo &+ UInt64(XenABI.SharedInfo.Offset.evtchnPending) &+ UInt64(port / 64) &* 8
  }

  static func maskWord(_ sharedInfo: UInt64, _ port: UInt32) -> UInt64 {
    sharedInfo &+ UInt64(XenABI.SharedInfo.Offset.evtchnMask) &+ UInt64(port / 64) &* 8
  }

  // The compat words: 32 bits each, callers check port < `compatPortCount` first.
  static func compatPendingWord(_ sharedInfo: UInt64, _ port: UInt32) -> UInt64 {
    sharedInfo &+ UInt64(XenABI.Compat.SharedInfo.Offset.evtchnPending) &+ UInt64(port / 32) &* 4
  }

  static func compatMaskWord(_ sharedInfo: UInt64, _ port: UInt32) -> UInt64 {
    sharedInfo &+ UInt64(XenABI.Compat.SharedInfo.Offset.evtchnMask) &+ UInt64(port / 32) &* 4
  }

  /// evtchn_2l_set_pending: marks `port` of `domain` pending and, unless masked, raises it on
  /// `vcpu`. Caller holds the domain's event lock (the port's state cannot change meanwhile).
  /// Reached through `EventABI.setPending` (EventABI.swift), and inlined there: the send's
  /// instructions are budgeted (docs/exit-budget.md), and a call here costs about 30.
  @inline(__always)
  static func setPendingTwoLevel(_ domain: Domain, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    guard let shared = Events.sharedInfo(of: domain) else { return }
    if domain.has32BitSharedInfo { return setPendingCompat(domain, shared, port: port, vcpu: vcpu, platform) }
    // A port beyond 2-level's bits (its table grew under FIFO before EVTCHNOP_reset) has no bit
    // in the page: nothing to set, and nothing outside the page may be touched.
    guard port < UInt32(portCount) else { return }
    let bit = Int(port % 64)
    if SharedWords.testAndSet(bit: bit, at: pendingWord(shared, port)) { return }
    if domain.pollingVCPUs > 0 { wakePollers(domain, port: port, platform) }
    if SharedWords.test(bit: bit, at: maskWord(shared, port)) { return }
    guard vcpu >= 0, vcpu < domain.vcpus.count else { return }
    // Borrowed, not retained: a domain's vcpus live as long as the domain.
    unsafe Unmanaged.passUnretained(domain.vcpus[vcpu])._withUnsafeGuaranteedRef { target in   // unsafe: see above
      guard let info = Events.vcpuInfo(of: target) else { return }
      let selector = info &+ UInt64(XenABI.VCPUInfo.Offset.pendingSelector)
      if SharedWords.testAndSet(bit: Int(port / 64), at: selector) { return }
      markEventsPending(target, info: info, platform)
    }
  }

  /// `setPending` on a 32-bit shared_info. A port the layout has no bit for (one allocated
  /// before the domain's shared_info became 32-bit) is dropped, as Xen's is no longer valid.
  @inline(never)
  static func setPendingCompat(_ domain: Domain, _ shared: UInt64, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    guard port < UInt32(compatPortCount) else { return }
    let bit = Int(port % 32)
    if SharedWords.testAndSet32(bit: bit, at: compatPendingWord(shared, port)) { return }
    if domain.pollingVCPUs > 0 { wakePollers(domain, port: port, platform) }
    if SharedWords.test32(bit: bit, at: compatMaskWord(shared, port)) { return }
    raiseCompat(domain, port: port, vcpu: vcpu, platform)
  }

  /// Sets pending_sel bit port/32 of `vcpu`'s compat vcpu_info and, if it was clear, the upcall.
  static func raiseCompat(_ domain: Domain, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    guard vcpu >= 0, vcpu < domain.vcpus.count else { return }
    // Borrowed, not retained: a domain's vcpus live as long as the domain.
    unsafe Unmanaged.passUnretained(domain.vcpus[vcpu])._withUnsafeGuaranteedRef { target in   // unsafe: see above
      guard let info = Events.vcpuInfo(of: target) else { return }
      let selector = info &+ UInt64(XenABI.Compat.VCPUInfo.Offset.pendingSelector)
      if SharedWords.testAndSet32(bit: Int(port / 32), at: selector) { return }
      markEventsPending(target, info: info, platform)
    }
  }

  /// evtchn_check_pollers: a vcpu blocked in SCHEDOP_poll on `port` wakes when it becomes
  /// pending, masked or not (that is what a PV spinlock waiter polls for). Caller holds the
  /// domain's event lock, which also guards `pollPorts`.
  static func wakePollers(_ domain: Domain, port: UInt32, _ platform: any EventPlatform) {
    guard domain.pollingVCPUs > 0 else { return }
    for vcpu in domain.vcpus where !vcpu.pollPorts.isEmpty && vcpu.pollPorts.contains(port) {
      setPollPorts(vcpu, [])
      vcpu.pollWake.store(true, ordering: .releasing)
      platform.kick(vcpu)
    }
  }

  /// Sets the ports `vcpu` polls (empty: none) and keeps its domain's count of polling vcpus.
  /// Caller holds the domain's event lock, or the domain has no event state yet.
  static func setPollPorts(_ vcpu: VCPU, _ ports: [UInt32]) {
    let domain = unsafe vcpu.domain
    if vcpu.pollPorts.isEmpty != ports.isEmpty { domain.pollingVCPUs += ports.isEmpty ? -1 : 1 }
    if ports.isEmpty { vcpu.pollPorts.removeAll(keepingCapacity: true) } else { vcpu.pollPorts = ports }
  }

  /// The poll of `vcpu` ended without an event (its timeout): wake it.
  public static func wakePoller(_ vcpu: VCPU) {
    guard let platform = unsafe platform else { return }
    let events = DomainEvents.existing(unsafe vcpu.domain)
    events?.lock.lock()
    setPollPorts(vcpu, [])
    events?.lock.unlock()
    vcpu.pollWake.store(true, ordering: .releasing)
    platform.kick(vcpu)
  }

  /// SCHEDOP_poll for `vcpu`: true if one of `ports` is pending already (return at once);
  /// otherwise records them so the first of them to become pending wakes the vcpu, and
  /// false (block). Ports must have been validated against the domain.
  public static func startPoll(_ vcpu: VCPU, ports: [UInt32], using platform: any EventPlatform) -> Bool {
    let domain = unsafe vcpu.domain
    let events = DomainEvents.of(domain)
    events.lock.lock()
    defer { events.lock.unlock() }
    vcpu.pollWake.store(false, ordering: .relaxed)
    for port in ports where events.abi.isPending(events, port: port) { return true }
    setPollPorts(vcpu, ports)
    return false
  }

  /// The poll is over (the vcpu runs again): forget its ports, and the wake-up that ended it.
  /// A wake-up left set would end every later block at once: the vcpu's idle HLT would return
  /// straight away, thousands of times a second, until its next poll.
  public static func endPoll(_ vcpu: VCPU) {
    if let events = DomainEvents.existing(unsafe vcpu.domain) {
      events.lock.withLock { setPollPorts(vcpu, []) }
    }
    vcpu.pollWake.store(false, ordering: .relaxed)
  }

  /// vcpu_mark_events_pending: sets upcall_pending and kicks the vcpu if it was clear.
  static func markEventsPending(_ vcpu: VCPU, info: UInt64, _ platform: any EventPlatform) {
    let upcall = info &+ UInt64(XenABI.VCPUInfo.Offset.upcallPending)
    if SharedWords.exchangeByte(at: upcall, 1) == 0 { platform.kick(vcpu) }
  }

  /// evtchn_2l_clear_pending (on close, so a re-bound port does not start pending).
  static func clearPendingTwoLevel(_ domain: Domain, port: UInt32) {
    guard let shared = Events.sharedInfo(of: domain) else { return }
    if domain.has32BitSharedInfo {
      if port < UInt32(compatPortCount) { _ = SharedWords.testAndClear32(bit: Int(port % 32), at: compatPendingWord(shared, port)) }
      return
    }
    guard port < UInt32(portCount) else { return }
    _ = SharedWords.testAndClear(bit: Int(port % 64), at: pendingWord(shared, port))
  }

  /// evtchn_2l_unmask: clears the mask bit; if it was set and the port is pending, raises it on
  /// `vcpu` (selector, upcall, kick) as the masked send would have.
  static func unmaskTwoLevel(_ domain: Domain, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    guard let shared = Events.sharedInfo(of: domain) else { return }
    if domain.has32BitSharedInfo {
      let bit = Int(port % 32)
      guard port < UInt32(compatPortCount),
            SharedWords.testAndClear32(bit: bit, at: compatMaskWord(shared, port)),
            SharedWords.test32(bit: bit, at: compatPendingWord(shared, port)) else { return }
      return raiseCompat(domain, port: port, vcpu: vcpu, platform)
    }
    guard port < UInt32(portCount) else { return }
    let bit = Int(port % 64)
    guard SharedWords.testAndClear(bit: bit, at: maskWord(shared, port)),
          SharedWords.test(bit: bit, at: pendingWord(shared, port)),
          vcpu >= 0, vcpu < domain.vcpus.count else { return }
    // Borrowed, not retained: a domain's vcpus live as long as the domain.
    unsafe Unmanaged.passUnretained(domain.vcpus[vcpu])._withUnsafeGuaranteedRef { target in   // unsafe: see above
      guard let info = Events.vcpuInfo(of: target) else { return }
      let selector = info &+ UInt64(XenABI.VCPUInfo.Offset.pendingSelector)
      if SharedWords.testAndSet(bit: Int(port / 64), at: selector) { return }
      markEventsPending(target, info: info, platform)
    }
  }

  // MARK: For the rest of the hypervisor

  /// Raises `virq` for `vcpu` (VIRQ_TIMER from the timer code, VIRQ_DEBUG …): per-vcpu VIRQs on
  /// the port bound on that vcpu, global ones on the port bound on vcpu 0 and delivered to its
  /// notify vcpu (Xen's send_guest_vcpu_virq / send_guest_global_virq). Unbound: nothing.
  public static func raiseVIRQ(_ virq: XenABI.VIRQ, vcpu: VCPU) {
    guard let platform = unsafe platform else { return }
    raiseVIRQ(virq, vcpu: vcpu, using: platform)
  }

  public static func raiseVIRQ(_ virq: XenABI.VIRQ, vcpu: VCPU, using platform: any EventPlatform) {
    let domain = unsafe vcpu.domain
    guard let events = DomainEvents.existing(domain) else { return }
    events.lock.lock()
    defer { events.lock.unlock() }
    let bindingVCPU = virq.isGlobal ? 0 : vcpu.id
    let port = events.virqPort(vcpu: bindingVCPU, virq: virq.rawValue)
    guard port != 0, events.isValid(port) else { return }
    let channel = events.channels[Int(port)]
    guard case .virq(let bound) = channel.state, bound == virq.rawValue else { return }
    setPending(events, port: port, vcpu: virq.isGlobal ? channel.notifyVCPU : vcpu.id, platform)
  }

  /// Raises a global VIRQ of `domain` (VIRQ_CONSOLE, VIRQ_DOM_EXC …).
  public static func raiseGlobalVIRQ(_ virq: XenABI.VIRQ, domain: Domain, using platform: any EventPlatform) {
    guard !domain.vcpus.isEmpty else { return }
    raiseVIRQ(virq, vcpu: domain.vcpus[0], using: platform)
  }

  /// Raises `port` of `domain` from the hypervisor (a hypervisor-side backend such as the
  /// console): as if the peer had sent on it. False if the port is not bound.
  @discardableResult
  public static func notify(_ domain: Domain, port: UInt32) -> Bool {
    guard let platform = unsafe platform else { return false }
    return notify(domain, port: port, using: platform)
  }

  @discardableResult
  public static func notify(_ domain: Domain, port: UInt32, using platform: any EventPlatform) -> Bool {
    raise(DomainEvents.of(domain), port: port, platform)
  }

  /// `notify` by a backend that answers during the sender's own EVTCHNOP_send (the store's
  /// reply to the request the send carried): one of `domain`'s vcpus is in that hypercall, so
  /// its event state is found without the reference lock (`DomainEvents.ofCaller`, as `send`
  /// does).
  @discardableResult
  public static func notifySender(_ domain: Domain, port: UInt32, using platform: any EventPlatform) -> Bool {
    DomainEvents.withCaller(domain) { raise($0, port: port, platform) }
  }

  /// `notify`'s work once the domain's event state is found: `port` pending, under the
  /// domain's event lock, if it is bound at all.
  @inline(__always) private static func raise(_ events: DomainEvents, port: UInt32, _ platform: any EventPlatform) -> Bool {
    events.lock.lock()
    defer { events.lock.unlock() }
    guard events.isValid(port) else { return false }
    switch events.channels[Int(port)].state {
    case .free, .reserved: return false
    default:
      setPending(events, port: port, vcpu: events.channels[Int(port)].notifyVCPU, platform)
      return true
    }
  }

  /// True if `port` is pending in `domain`'s shared_info.
  static func isPendingTwoLevel(_ domain: Domain, port: UInt32) -> Bool {
    guard port < UInt32(portCount(of: domain)), let shared = Events.sharedInfo(of: domain) else { return false }
    if domain.has32BitSharedInfo { return SharedWords.test32(bit: Int(port % 32), at: compatPendingWord(shared, port)) }
    return SharedWords.test(bit: Int(port % 64), at: pendingWord(shared, port))
  }

  /// True if `port` is masked in `domain`'s shared_info (no page: masked, nothing is delivered).
  static func isMaskedTwoLevel(_ domain: Domain, port: UInt32) -> Bool {
    guard port < UInt32(portCount(of: domain)), let shared = Events.sharedInfo(of: domain) else { return true }
    if domain.has32BitSharedInfo { return SharedWords.test32(bit: Int(port % 32), at: compatMaskWord(shared, port)) }
    return SharedWords.test(bit: Int(port % 64), at: maskWord(shared, port))
  }

  /// True if `port` of `domain` is pending, in the ABI the domain uses (SCHEDOP_poll).
  public static func isPending(_ domain: Domain, port: UInt32, using platform: any EventPlatform) -> Bool {
    guard let events = DomainEvents.existing(domain) else { return isPendingTwoLevel(domain, port: port) }
    return events.lock.withLock { events.abi.isPending(events, port: port) }
  }

  // MARK: Upcall injection (the arch calls these on its way back into the guest)

  /// The vector to inject into `vcpu` now, if any: its vcpu_info.upcall_pending is set and the
  /// domain asked for vector delivery, per vcpu (HVMOP_set_evtchn_upcall_vector) or with
  /// HVM_PARAM_CALLBACK_IRQ = (2 << 56) | vector. Level-like: it stays non-nil until the guest
  /// clears upcall_pending, so the arch injects it only when the guest can take it (RFLAGS.IF,
  /// no interrupt shadow, no event already being injected) and asks for an interrupt window
  /// otherwise. GSI and PCI INTx callbacks give nil (a no-op, as Xen for PVH). The x86 entry
  /// path makes the same two steps itself, the flag read straight from guest memory
  /// (`Upcall.upcallPending`), then `callbackVector(for:)`.
  public static func upcallVector(for vcpu: VCPU, using platform: any EventPlatform) -> UInt8? {
    guard let info = Events.vcpuInfo(of: vcpu),
          SharedWords.load(at: info + UInt64(XenABI.VCPUInfo.Offset.upcallPending)) & 0xFF != 0 else { return nil }
    return callbackVector(for: vcpu)
  }

  /// The vector the guest chose for `vcpu`'s upcall, pending or not: its own (from
  /// HVMOP_set_evtchn_upcall_vector), else the domain's HVM_PARAM_CALLBACK_IRQ vector; nil
  /// for no callback or a GSI/INTx one. No lock: both are single words a guest changes rarely,
  /// and an entry that sees the old vector delivers this one upcall there.
  @inline(__always) public static func callbackVector(for vcpu: VCPU) -> UInt8? {
    let own = vcpu.upcallVector.load(ordering: .relaxed)
    if own != 0 { return own }
    let via = unsafe vcpu.domain.hvmParams[Int(XenABI.HVMParam.callbackIRQ.rawValue)]
    guard via >> XenABI.HVMCallbackVia.typeShift == XenABI.HVMCallbackVia.typeVector else { return nil }
    let vector = UInt8(truncatingIfNeeded: via)
    return vector >= 0x10 ? vector : nil
  }

  /// True if `vcpu` has an upcall pending: a blocked (HLT) vcpu must not stay blocked then.
  public static func upcallPending(_ vcpu: VCPU, using platform: any EventPlatform) -> Bool {
    guard let info = Events.vcpuInfo(of: vcpu) else { return false }
    return SharedWords.load(at: info + UInt64(XenABI.VCPUInfo.Offset.upcallPending)) & 0xFF != 0
  }

  /// HVMOP_set_evtchn_upcall_vector for `vcpu`: nil on success, -EINVAL for vectors below 0x10
  /// (as Xen). A pending upcall is raised again on the new vector.
  public static func setUpcallVector(_ vector: UInt8, vcpu: VCPU) -> XenABI.Errno? {
    guard vector >= 0x10 else { return .EINVAL }
    vcpu.upcallVector.store(vector, ordering: .relaxed)
    if let platform = unsafe platform, upcallPending(vcpu, using: platform) { platform.kick(vcpu) }
    return nil
  }

  /// Xen's hvm_latch_shinfo_size: the domain's shared_info layout follows the mode of the
  /// caller (`abi`) of one of the first things PV drivers do, HVM_PARAM_CALLBACK_IRQ or the
  /// hypercall page MSR. True if the layout changed; then the wallclock is republished at the
  /// new offsets, as the arch layer does after shared_info moves (Xen does the same and
  /// converts nothing else: a pending bit of a port the new layout lacks stays where it was).
  @discardableResult
  public static func latchSharedInfoLayout(_ domain: Domain, abi: GuestABI) -> Bool {
    let compat = abi == .compat
    guard domain.has32BitSharedInfo != compat else { return false }
    let events = DomainEvents.of(domain)
    events.lock.withLock { domain.has32BitSharedInfo = compat }
    domain.timePublishedAtGFN = nil     // the arch layer republishes time on its way back
    return true
  }

  /// VCPUOP_register_vcpu_info: `vcpu`'s vcpu_info lives at `address` from now on (a page the
  /// arch keeps mapped and the guest cannot give back while it is used).
  public static func moveVCPUInfo(_ vcpu: VCPU, to address: UInt64) {
    vcpu.vcpuInfoAddress = address
    vcpu.timeNeedsPublish = true
    if let platform = unsafe platform { vcpuInfoMoved(vcpu, using: platform) }
  }

  /// After VCPUOP_register_vcpu_info moved `vcpu`'s vcpu_info: mark every selector bit and the
  /// upcall pending at the new place so the guest rescans (Xen does the same; the guest copes
  /// with the spurious upcall). A 32-bit vcpu_info's selector is 32 bits: the word after it
  /// (arch.cr2) is left alone.
  public static func vcpuInfoMoved(_ vcpu: VCPU, using platform: any EventPlatform) {
    guard let info = Events.vcpuInfo(of: vcpu) else { return }
    if unsafe vcpu.domain.has32BitSharedInfo {
      let selector = info &+ UInt64(XenABI.Compat.VCPUInfo.Offset.pendingSelector)
      for bit in 0..<XenABI.Compat.eventWordBits { _ = SharedWords.testAndSet32(bit: bit, at: selector) }
    } else {
      let selector = info + UInt64(XenABI.VCPUInfo.Offset.pendingSelector)
      for bit in 0..<bitsPerWord { _ = SharedWords.testAndSet(bit: bit, at: selector) }
    }
    markEventsPending(vcpu, info: info, platform)
  }
}
