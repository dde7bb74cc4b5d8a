#if os(none)
import GuestSupport

/// What runs when a port's event arrives: called from the upcall, on the vcpu the port notifies,
/// with interrupts off, after the port's pending bit has been cleared. A C function pointer, so
/// the table of them needs no Swift existentials.
public typealias EventHandler = @convention(c) (_ port: UInt32, _ vcpu: UInt32) -> Void

/// Xen event channels, 2-level ABI, as a PVH guest uses them: the callback vector, the
/// EVTCHNOP_* calls (xen/include/public/event_channel.h) and the upcall handler.
///
/// Each port has an optional handler and a counter of deliveries (incremented after the handler
/// ran, so a waiter that sees the count move also sees what the handler wrote), plus the vcpu
/// that handled it last. The guest also keeps, like Linux's cpu_evtchn_mask, which vcpu each
/// port is bound to: a vcpu's upcall handles only its own ports, even when another vcpu's port
/// sits in the same pending word.
public enum Events {
  public static let portCount = Int(GS_EVTCHN_2L_PORTS)
  public static let callbackVector = UInt8(GS_XEN_CALLBACK_VECTOR)
  public static let virqTimer = UInt32(GS_VIRQ_TIMER)
  public static let virqDebug = UInt32(GS_VIRQ_DEBUG)
  /// Event words of xen_ulong_t (UInt): 64 of 64 ports, or 32 of 32 in a 32-bit guest.
  static let wordBits = SharedInfo.wordBits
  static let words = portCount / wordBits

  nonisolated(unsafe) static var handlers: UnsafeMutablePointer<EventHandler?>? = nil
  nonisolated(unsafe) static var counts: UnsafeMutablePointer<UInt64>? = nil
  nonisolated(unsafe) static var lastVCPUs: UnsafeMutablePointer<UInt32>? = nil
  /// [SharedInfo.maxVCPUs][words] words: bit p set in vcpu v's row = port p is v's.
  nonisolated(unsafe) static var owners: UnsafeMutablePointer<UInt>? = nil
  /// Upcalls taken, per vcpu.
  nonisolated(unsafe) static var upcalls: UnsafeMutablePointer<UInt64>? = nil

  /// For vcpu 0, before interrupts are enabled: records the vcpu id, allocates the tables, maps
  /// shared_info, installs the upcall entry at `vector` and sets HVM_PARAM_CALLBACK_IRQ to
  /// "vector" delivery (2 << 56 | vector) with HVMOP_set_param. 0, or the first failure.
  public static func setUp(vector: UInt8 = callbackVector) -> Int64 {
    CurrentVCPU.record(0)
    allocateTables()
    let mapped = SharedInfo.map()
    if mapped != 0 { return mapped }
    gs_install_upcall_vector(vector)
    var param = gs_xen_hvm_param(
      domid: Xen.domidSelf, pad: 0, index: UInt32(GS_HVM_PARAM_CALLBACK_IRQ),
      value: (UInt64(GS_HVM_CALLBACK_TYPE_VECTOR) << 56) | UInt64(vector))
    return Xen.withArgument(&param) { Xen.hvmOp(UInt64(GS_HVMOP_set_param), $0) }
  }

  static func allocateTables() {
    guard handlers == nil else { return }
    let h = UnsafeMutablePointer<EventHandler?>.allocate(capacity: portCount)
    h.initialize(repeating: nil, count: portCount)
    let c = UnsafeMutablePointer<UInt64>.allocate(capacity: portCount)
    c.initialize(repeating: 0, count: portCount)
    let l = UnsafeMutablePointer<UInt32>.allocate(capacity: portCount)
    l.initialize(repeating: UInt32.max, count: portCount)
    let rows = SharedInfo.maxVCPUs * words
    let o = UnsafeMutablePointer<UInt>.allocate(capacity: rows)
    o.initialize(repeating: 0, count: rows)
    // A new port notifies vcpu 0 until it is bound elsewhere (as in Xen).
    for w in 0..<words { o[w] = ~0 }
    let u = UnsafeMutablePointer<UInt64>.allocate(capacity: SharedInfo.maxVCPUs)
    u.initialize(repeating: 0, count: SharedInfo.maxVCPUs)
    handlers = h; counts = c; lastVCPUs = l; owners = o; upcalls = u
  }

  // MARK: Per-port bookkeeping

  /// Calls `handler` for each event on `port` from now on (nil: only count).
  public static func setHandler(_ port: UInt32, _ handler: EventHandler?) {
    guard Int(port) < portCount, let handlers else { return }
    handlers[Int(port)] = handler
  }

  /// Events delivered on `port` so far.
  public static func count(_ port: UInt32) -> UInt64 {
    guard Int(port) < portCount, let counts else { return 0 }
    return gs_atomic_load(counts + Int(port))
  }

  /// The vcpu whose upcall handled `port` last (UInt32.max: none yet).
  public static func lastVCPU(_ port: UInt32) -> UInt32 {
    guard Int(port) < portCount, let lastVCPUs else { return UInt32.max }
    return gs_load32(lastVCPUs + Int(port))
  }

  /// Upcalls vcpu `vcpu` has taken.
  public static func upcallCount(_ vcpu: UInt32) -> UInt64 {
    guard Int(vcpu) < SharedInfo.maxVCPUs, let upcalls else { return 0 }
    return gs_atomic_load(upcalls + Int(vcpu))
  }

  /// Records that `port` notifies `vcpu` (what bind_virq, bind_ipi and bind_vcpu tell Xen).
  static func assign(_ port: UInt32, to vcpu: UInt32) {
    guard Int(port) < portCount, Int(vcpu) < SharedInfo.maxVCPUs, let owners else { return }
    let w = Int(port) / wordBits, bit = port % UInt32(wordBits)
    for v in 0..<SharedInfo.maxVCPUs where v != Int(vcpu) { _ = gs_btr_word(owners + v * words + w, bit) }
    _ = gs_bts_word(owners + Int(vcpu) * words + w, bit)
  }

  /// Forgets a closed port: no handler, back to vcpu 0, last vcpu cleared (the count stays).
  static func forget(_ port: UInt32) {
    guard Int(port) < portCount else { return }
    setHandler(port, nil)
    assign(port, to: 0)
    if let lastVCPUs { gs_store32(lastVCPUs + Int(port), UInt32.max) }
  }

  // MARK: EVTCHNOP_*: each returns the port (>= 0) or the hypercall's negative errno

  /// EVTCHNOP_alloc_unbound {dom = DOMID_SELF, remote_dom}: a port waiting for `remote`.
  public static func allocUnbound(remote: UInt16, dom: UInt16 = Xen.domidSelf) -> Int64 {
    var arg = gs_evtchn_alloc_unbound(dom: dom, remote_dom: remote, port: 0)
    let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_alloc_unbound), $0) }
    if r != 0 { return r }
    forget(arg.port)
    return Int64(arg.port)
  }

  /// EVTCHNOP_bind_interdomain {remote_dom, remote_port}: a local port connected to it. Xen
  /// makes the new port pending at once (an event sent before the bind is not lost).
  public static func bindInterdomain(remoteDomain: UInt16, remotePort: UInt32) -> Int64 {
    var arg = gs_evtchn_bind_interdomain(remote_dom: remoteDomain, remote_port: remotePort, local_port: 0)
    let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_bind_interdomain), $0) }
    if r != 0 { return r }
    forget(arg.local_port)
    return Int64(arg.local_port)
  }

  /// EVTCHNOP_bind_virq {virq, vcpu}.
  public static func bindVIRQ(_ virq: UInt32, vcpu: UInt32) -> Int64 {
    var arg = gs_evtchn_bind_virq(virq: virq, vcpu: vcpu, port: 0)
    let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_bind_virq), $0) }
    if r != 0 { return r }
    forget(arg.port)
    assign(arg.port, to: vcpu)
    return Int64(arg.port)
  }

  /// EVTCHNOP_bind_ipi {vcpu}: a port the domain sends to itself, delivered on `vcpu`.
  public static func bindIPI(vcpu: UInt32) -> Int64 {
    var arg = gs_evtchn_bind_ipi(vcpu: vcpu, port: 0)
    let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_bind_ipi), $0) }
    if r != 0 { return r }
    forget(arg.port)
    assign(arg.port, to: vcpu)
    return Int64(arg.port)
  }

  /// EVTCHNOP_bind_vcpu {port, vcpu}: deliver `port` on `vcpu` from now on.
  @discardableResult
  public static func bindVCPU(_ port: UInt32, vcpu: UInt32) -> Int64 {
    var arg = gs_evtchn_bind_vcpu(port: port, vcpu: vcpu)
    let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_bind_vcpu), $0) }
    if r == 0 { assign(port, to: vcpu) }
    return r
  }

  /// EVTCHNOP_close {port}.
  @discardableResult
  public static func close(_ port: UInt32) -> Int64 {
    let r = portOp(GS_EVTCHNOP_close, port)
    if r == 0 { forget(port) }
    return r
  }

  /// EVTCHNOP_send {port}.
  @discardableResult
  public static func send(_ port: UInt32) -> Int64 { portOp(GS_EVTCHNOP_send, port) }

  /// EVTCHNOP_unmask {port}: clears the mask bit, and if the port is pending, delivers it.
  @discardableResult
  public static func unmask(_ port: UInt32) -> Int64 { portOp(GS_EVTCHNOP_unmask, port) }

  /// EVTCHNOP_status {dom = DOMID_SELF, port}: the hypercall's result and the filled structure.
  public static func status(_ port: UInt32) -> (result: Int64, status: gs_evtchn_status) {
    var arg = gs_evtchn_status()
    arg.dom = Xen.domidSelf
    arg.port = port
    let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_status), $0) }
    return (r, arg)
  }

  static func portOp(_ cmd: Int32, _ port: UInt32) -> Int64 {
    var arg = gs_evtchn_port(port: port)
    return Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(cmd), $0) }
  }

  // MARK: The bits in shared_info

  /// Sets `port`'s mask bit: its events stay pending and raise no upcall.
  public static func mask(_ port: UInt32) {
    _ = gs_bts_word(SharedInfo.maskWord(Int(port) / wordBits), port % UInt32(wordBits))
  }

  /// Clears `port`'s mask bit without asking the hypervisor to deliver what is pending (use
  /// `unmask` for that).
  public static func clearMask(_ port: UInt32) {
    _ = gs_btr_word(SharedInfo.maskWord(Int(port) / wordBits), port % UInt32(wordBits))
  }

  public static func isMasked(_ port: UInt32) -> Bool {
    gs_load_word(SharedInfo.maskWord(Int(port) / wordBits)) >> (Int(port) % wordBits) & 1 != 0
  }

  public static func isPending(_ port: UInt32) -> Bool {
    gs_load_word(SharedInfo.pendingWord(Int(port) / wordBits)) >> (Int(port) % wordBits) & 1 != 0
  }

  /// Clears `port`'s pending bit (drops an event nobody should handle). True if it was set.
  @discardableResult
  public static func clearPending(_ port: UInt32) -> Bool {
    gs_btr_word(SharedInfo.pendingWord(Int(port) / wordBits), port % UInt32(wordBits)) != 0
  }

  // MARK: The upcall

  /// Linux's xen_evtchn_do_upcall with the 2-level handler: clear upcall_pending, take the
  /// selector (exchange with 0), and for each selected word handle the bits that are pending,
  /// not masked and this vcpu's, clearing each pending bit before its handler runs; again while
  /// the hypervisor set upcall_pending meanwhile.
  static func handleUpcall() {
    guard SharedInfo.isMapped, let handlers, let counts, let lastVCPUs, let owners, let upcalls else { return }
    let vcpu = CurrentVCPU.id
    guard Int(vcpu) < SharedInfo.maxVCPUs else { return }
    _ = gs_atomic_add(upcalls + Int(vcpu), 1)
    let upcallPending = SharedInfo.upcallPending(vcpu)
    let selector = SharedInfo.pendingSelector(vcpu)
    let mine = owners + Int(vcpu) * words
    repeat {
      gs_store8(upcallPending, 0)
      var selected = gs_xchg_word(selector, 0)
      while selected != 0 {
        let w = selected.trailingZeroBitCount
        selected &= selected &- 1
        let pending = SharedInfo.pendingWord(w)
        var bits = gs_load_word(pending) & ~gs_load_word(SharedInfo.maskWord(w)) & gs_load_word(mine + w)
        while bits != 0 {
          let bit = bits.trailingZeroBitCount
          bits &= bits &- 1
          // Another vcpu (after a bind_vcpu) may have taken it meanwhile.
          guard gs_btr_word(pending, UInt32(bit)) != 0 else { continue }
          let port = w * wordBits + bit
          handlers[port]?(UInt32(port), vcpu)
          gs_store32(lastVCPUs + port, vcpu)
          _ = gs_atomic_add(counts + port, 1)
        }
      }
    } while gs_load8(upcallPending) != 0
  }
}

/// The entry traps.S calls for the upcall vector (gs_upcall_entry), with interrupts off.
@c(gs_upcall)
public func eventUpcall() {
  Events.handleUpcall()
}
#endif
