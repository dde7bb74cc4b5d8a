#if os(none)
import GuestKit
import GuestSupport

/// The domain's xenstore ring (HVM_PARAM_STORE_PFN) and store port (HVM_PARAM_STORE_EVTCHN),
/// looked up at the first use: 0 before, UInt64.max if there is none.
nonisolated(unsafe) var xenstoreRingGFN: UInt64 = 0
nonisolated(unsafe) var xenstorePort: UInt32 = 0
/// Operations of the generator so far, and whether the ring's stop has been reported.
nonisolated(unsafe) var xenstoreOperations: UInt64 = 0
nonisolated(unsafe) var xenstoreStopSeen = false
/// What EVTCHNOP_status says of the store port while it is the store's (`portStatus`):
/// EVTCHNSTAT_interdomain (2) to DOMID_XEN (0x7FF2), the hypervisor's backend. Once it says
/// anything else the port is gone for good (closed, maybe reused for another channel).
let xenstoreBackendStatus: UInt64 = 2 << 48 | 0x7FF2 << 32
nonisolated(unsafe) var xenstorePortGone = false
/// Whether the generator has had its first turn.
nonisolated(unsafe) var xenstoreStarted = false
/// False while vcpu 0 runs the first burst before starting vcpu 1 (nothing to pause then).
nonisolated(unsafe) var xenstoreSecondVCPUMayRun = false

/// Boundary values for a header's length up to XENSTORE_PAYLOAD_MAX (4096), which a store
/// takes; and past it, which stop the ring for good.
let xenstoreLengths: [UInt32] = [0, 1, 2, 15, 16, 1023, 1024, 1025, 4095, 4096]
let xenstoreBreakingLengths: [UInt32] = [4097, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
/// Operations of the generator before it may break the ring on purpose (a length past 4096 or
/// one that lies, an index out of bounds), and then how rarely (percent): until then the store's
/// parser and operations get the fuzzing.
let xenstoreOperationsBeforeBreaking: UInt64 = 300
let xenstoreBreakingPercent = 1
/// Operations in the generator's first turn, made while vcpu 1 is paused: the event-channel
/// generator would soon close the store port.
let xenstoreFirstBurst = 1000

extension Fuzzer {
  /// Whether this call is the xenstore generator's (`hypercall()` asks first): one call in 40
  /// of vcpu 0's (its first burst runs before vcpu 1 starts, from the main routine).
  mutating func xenstoreTurn() -> Bool {
    guard vcpu == 0 else { return false }
    if !xenstoreStarted { return true }
    return random.below(40) == 0
  }

  /// Bytes and indices into this domain's xenstore ring, then (mostly) a send on its store port:
  /// requests with random types, ids and payloads, headers with boundary lengths, raw bytes, and
  /// now and then an index no client would write. The store must answer or stop this ring only
  /// (docs/xenstore.md); this domain and the others go on. vcpu 0 only: two writers would only
  /// break the ring sooner. Lengths past 4096 or lying and bad indices come only after
  /// `xenstoreOperationsBeforeBreaking` operations, and rarely, since the first one ends the ring for
  /// good.
  mutating func xenstoreRing() {
    guard vcpu == 0 else { return unstructured() }
    xenstoreStarted = true
    if xenstoreRingGFN == 0 {
      let p = XenstoreClient.parameters()
      let usable = p.pfnResult == 0 && p.portResult == 0 && p.pfn != 0 && p.pfn < 1 << 20 && p.port != 0
      xenstoreRingGFN = usable ? p.pfn : UInt64.max
      xenstorePort = UInt32(truncatingIfNeeded: p.port)
    }
    guard xenstoreRingGFN != UInt64.max, !xenstorePortGone else { return unstructured() }
    // The event-channel generator closes random low ports, the store's among them (often
    // before this generator's first turn), and may bind the number again: from then on nothing
    // reaches the store, and this generator gives its turns back.
    if portStatus(xenstorePort) != xenstoreBackendStatus {
      xenstorePortGone = true
      Console.print("guest-fuzz: its xenstore port \(xenstorePort) is no longer the store's, after \(xenstoreOperations) operations of the xenstore generator")
      return unstructured()
    }
    let ring = XenstoreRingPage(base: xenstoreRingGFN << 12)
    // A burst of operations a turn, and a long one the first time with vcpu 1 paused (its
    // closes and binds would take the port away within tens of operations).
    let first = xenstoreOperations == 0
    let quiet = first && xenstoreSecondVCPUMayRun && quietSecondVCPU()
    defer { if quiet { gs_atomic_store(counters + 5, 0) } }
    for index in 0..<(first ? xenstoreFirstBurst : 1 + random.below(32)) {
      if index > 0 && portStatus(xenstorePort) != xenstoreBackendStatus { break }   // closed meanwhile
      xenstoreOperations &+= 1
      // Only the store writes `error` (the generator leaves it alone): when it stops the ring.
      let error = ring.load(XenstoreRingPage.error)
      if error != 0 && !xenstoreStopSeen {
        xenstoreStopSeen = true
        Console.print("guest-fuzz: the store stopped the xenstore ring (error \(error)) after \(xenstoreOperations) operations of the xenstore generator")
      }
      if xenstoreOperations > xenstoreOperationsBeforeBreaking && random.percent(xenstoreBreakingPercent) {
        switch random.below(3) {
        case 0: xenstoreRequest(ring, length: random.pick32(xenstoreBreakingLengths))
        case 1: xenstoreRequest(ring, length: random.pick32(xenstoreLengths))   // a lying length: the stream goes out of step
        default: xenstoreIndex(ring)
        }
      } else {
        switch random.below(100) {
        case 0..<65: xenstoreRequest(ring, length: nil, whole: true)
        case 65..<75: xenstoreRawBytes(ring)
        default:
          // Take what the store answered, so the ring keeps moving: replies it cannot put in a
          // full rsp count against the domain's outstanding requests (20), past which requests
          // wait in req, and a full req takes no more.
          ring.store(ring.load(XenstoreRingPage.responseProducer), XenstoreRingPage.responseConsumer)
        }
      }
      if random.percent(90) {
        trace("xenstore send on port \(xenstorePort)")
        _ = call(32, 4, place(portArgument(xenstorePort)))   // EVTCHNOP_send
      }
    }
  }

  /// EVTCHNOP_status of `port`: the state, remote domain and remote port in one word (or the
  /// errno).
  func portStatus(_ port: UInt32) -> UInt64 {
    let (result, status) = Events.status(port)
    if result != 0 { return UInt64(bitPattern: result) }
    return UInt64(status.status) << 48 | UInt64(status.u.interdomain.dom) << 32 | UInt64(status.u.interdomain.port)
  }

  func portArgument(_ port: UInt32) -> [UInt8] {
    var b = Bytes()
    b.u32(port)
    return b.bytes
  }

  /// A message written where `req_prod` says, as far as the ring has room (`whole`: only if it
  /// all fits), then `req_prod` moved past it: a random type (the defined ones mostly), id and
  /// transaction, and a payload of name-like bytes and NULs, with its length in the header (or
  /// `length`, which may lie).
  mutating func xenstoreRequest(_ ring: XenstoreRingPage, length: UInt32?, whole: Bool = false) {
    var payload: [UInt8] = []
    let alphabet = Array("data/local/domain/0123@_-control/shutdown name".utf8)
    // A quarter of the whole requests are shaped for the store's fast read (one XS_READ outside
    // a transaction, one NUL at the end), so its checks see names of every length up to the
    // longest a request in the ring can carry (1,007 bytes), relative and absolute.
    let loneRead = length == nil && whole && random.percent(25)
    if loneRead {
      let size = random.percent(70) ? random.below(48) : random.percent(50) ? 1007 : random.below(1008)
      for _ in 0..<size { payload.append(alphabet[random.below(alphabet.count)]) }
      if size > 0, random.percent(30) { payload[0] = UInt8(ascii: "/") }
      payload.append(0)
    } else {
      let size = random.percent(80) ? random.below(48) : random.below(1100)
      for _ in 0..<size {
        let kind = random.below(10)
        payload.append(kind < 7 ? alphabet[random.below(alphabet.count)] : kind < 9 ? 0 : UInt8(truncatingIfNeeded: random.next()))
      }
    }
    var message = Bytes()
    message.u32(loneRead ? 2 : random.percent(90) ? UInt32(random.below(24)) : u32())   // 2: XS_READ
    message.u32(UInt32(truncatingIfNeeded: random.next()))
    message.u32(loneRead || random.percent(80) ? 0 : UInt32(random.below(12)))
    message.u32(length ?? UInt32(payload.count))
    let bytes = message.bytes + payload
    let producer = ring.load(XenstoreRingPage.requestProducer)
    let used = producer &- ring.load(XenstoreRingPage.requestConsumer)
    let room = used <= XenstoreRingPage.size ? Int(XenstoreRingPage.size - used) : 0
    // A message cut short puts the stream out of step (the next header is read as its payload,
    // and the store soon stops the ring): only on purpose.
    if whole && room < bytes.count { return }
    let count = min(room, bytes.count)
    trace("xenstore request of \(bytes.count) bytes, \(count) written at \(producer)")
    for i in 0..<count { ring.setByte(XenstoreRingPage.request, producer &+ UInt32(i), bytes[i]) }
    ring.store(producer &+ UInt32(count), XenstoreRingPage.requestProducer)
  }

  /// Random bytes anywhere in either ring, with no index moved; in `req` only while no request
  /// waits there (bytes over a waiting one would put the stream out of step, which only the
  /// rare breaking operations are for).
  mutating func xenstoreRawBytes(_ ring: XenstoreRingPage) {
    let waiting = ring.load(XenstoreRingPage.requestProducer) != ring.load(XenstoreRingPage.requestConsumer)
    let which = random.percent(50) && !waiting ? XenstoreRingPage.request : XenstoreRingPage.response
    let start = UInt32(random.below(1024))
    let count = random.below(64) + 1
    trace("xenstore \(count) raw bytes at \(which) + \(start)")
    for i in 0..<count { ring.setByte(which, start &+ UInt32(i), UInt8(truncatingIfNeeded: random.next())) }
  }

  /// One index or field set to a value no client would write: a producer far ahead or behind,
  /// a consumer past the producer, anything in server_features or connection. Not `error`:
  /// the store keeps its own record of a stopped ring, and the field tells this guest when.
  mutating func xenstoreIndex(_ ring: XenstoreRingPage) {
    let fields = [
      XenstoreRingPage.requestConsumer, XenstoreRingPage.requestProducer, XenstoreRingPage.responseConsumer,
      XenstoreRingPage.responseProducer, XenstoreRingPage.serverFeatures, XenstoreRingPage.connection,
    ]
    let field = fields[random.below(fields.count)]
    let base = ring.load(field == XenstoreRingPage.requestProducer ? XenstoreRingPage.requestConsumer : field)
    let value = random.percent(50) ? base &+ random.pick32([1, 1023, 1024, 1025, 4096, 0x8000_0000, 0xFFFF_FFFF]) : u32()
    trace("xenstore field \(field) = \(value)")
    ring.store(value, field)
  }
}
#endif
