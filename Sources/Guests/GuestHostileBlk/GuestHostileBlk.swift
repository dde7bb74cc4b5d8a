/// guest-hostile-blk: a hostile blkfront. It connects to the backend of its vbd as Linux's
/// xen-blkfront does, then puts requests on the ring that no sane frontend sends, and checks
/// that the backend answers each with an error and stops reading a ring whose producer index
/// runs far ahead (docs/pv-devices.md, "When a domain dies or misbehaves").
///
///   vdev=<device number>   the vbd to play (default 51712, xvda)
///
/// The handshake (xen/include/public/io/blkif.h): it reads device/vbd/<vdev>/backend and
/// backend-id, waits (a xenstore watch) for the backend's state to read 2 (InitWait), places its
/// grant table's frame 0 at gfn 0x20000, grants one page to the backend as the shared ring (ref
/// 8), allocates an unbound event channel for the backend, writes ring-ref, event-channel,
/// protocol = x86_64-abi and state = 3 (Initialised), and waits for the backend's state to read
/// 4 (Connected).
///
/// The requests, each with its own id, then req_prod moved past all of them and one notify:
///   bad-gref           a read of one segment whose grant ref is past the grant table
///   ungranted-ref      a write of one segment whose ref (9) is in the table but grants nothing
///   too-many-segments  a read claiming 200 segments (the most is 11)
///   no-segments        a read of 0 segments
///   backwards-segment  a read of one segment whose first sector is after its last
///   past-the-end       a read at sector 2^62
///   unknown-op         operation 0x77
///   indirect-absurd    an indirect read claiming 65535 segments
///   indirect-bad-op    an indirect request whose inner operation is 0x77
///   indirect-bad-gref  an indirect read of 8 segments whose indirect page's ref is past the table
///   discard-past-end   a discard of 2^40 sectors at sector 2^62
/// Each must come back with its id and a status that is not BLKIF_RSP_OKAY (0); every
/// response's status is printed. Then req_prod is set 1000 entries past the backend's consumer
/// (a ring has 32) and notified: no response may come within 3 s. Last "guest-hostile-blk: done"
/// and poweroff, with the ring page still mapped by the backend.
@main
struct GuestHostileBlk {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-hostile-blk is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-hostile-blk")

let ms = SystemTime.nanosecondsPerMillisecond
let tableGFN: UInt64 = 0x20000
let ringRef: UInt32 = 8
let ungrantedRef: UInt32 = 9
/// A ref past the domain's grant table (its frames hold 512 refs each, and it has few).
let badRef: UInt32 = 0x00FF_FFF0

/// The shared ring of blkif.h on x86_64 (ring.h's DEFINE_RING_TYPES): the producer and event
/// indices, 48 bytes of padding, then the entries, each the size of a request (112 bytes);
/// (4096 - 64) / 112 = 36 entries, rounded down to a power of two.
enum Ring {
  static let requestProducer = 0
  static let requestEvent = 4
  static let responseProducer = 8
  static let responseEvent = 12
  static let firstEntry = 64
  static let entrySize = 112
  static let size: UInt32 = 32

  static var base: UInt64 { Xen.address(gs_scratch()) }

  static func entry(_ index: UInt32) -> UInt64 {
    base + UInt64(firstEntry) + UInt64(index % size) * UInt64(entrySize)
  }

  static func load(_ offset: Int) -> UInt32 {
    // Unsafe: the ring is the scratch area's first page, mapped by the identity map.
    gs_load32(UnsafeMutablePointer<UInt32>(bitPattern: UInt(base) + UInt(offset))!)
  }

  static func store(_ value: UInt32, _ offset: Int) {
    // Unsafe: as `load`; a sequentially consistent store orders the entries written before it.
    gs_store32(UnsafeMutablePointer<UInt32>(bitPattern: UInt(base) + UInt(offset))!, value)
  }
}

/// Stores `value` at `address` (inside the ring page), little-endian, whatever its alignment.
func put<T: FixedWidthInteger>(_ value: T, at address: UInt64) {
  // Unsafe: every address passed is inside the ring page (an entry is 112 bytes).
  UnsafeMutableRawPointer(bitPattern: UInt(address))!.storeBytes(of: value.littleEndian, as: T.self)
}

func get<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T {
  // Unsafe: as `put`.
  T(littleEndian: UnsafeRawPointer(bitPattern: UInt(address))!.loadUnaligned(as: T.self))
}

/// One request to put on the ring: `fill` writes its bytes into a zeroed entry, given its id.
struct Request {
  let label: StaticString
  let fill: (UInt64, UInt64) -> Void
}

let opRead: UInt8 = 0, opWrite: UInt8 = 1, opDiscard: UInt8 = 5, opIndirect: UInt8 = 6

/// blkif_request with u.rw: operation, nr_segments, handle, (pad), id, sector_number, then
/// segments of {gref, first_sect, last_sect, pad} from byte 24.
func readWrite(_ op: UInt8, segments: UInt8, handle: UInt16, sector: UInt64, refs: [(UInt32, UInt8, UInt8)]) -> (UInt64, UInt64) -> Void {
  { entry, id in
    put(op, at: entry)
    put(segments, at: entry + 1)
    put(handle, at: entry + 2)
    put(id, at: entry + 8)
    put(sector, at: entry + 16)
    for (i, segment) in refs.enumerated() {
      let at = entry + 24 + UInt64(i) * 8
      put(segment.0, at: at)
      put(segment.1, at: at + 4)
      put(segment.2, at: at + 5)
    }
  }
}

/// blkif_request with u.indirect: operation, indirect_op, nr_segments (u16), (pad), id,
/// sector_number, handle, (pad), indirect_grefs[8] from byte 28.
func indirect(innerOp: UInt8, segments: UInt16, handle: UInt16, refs: [UInt32]) -> (UInt64, UInt64) -> Void {
  { entry, id in
    put(opIndirect, at: entry)
    put(innerOp, at: entry + 1)
    put(segments, at: entry + 2)
    put(id, at: entry + 8)
    put(UInt64(0), at: entry + 16)
    put(handle, at: entry + 24)
    for (i, ref) in refs.enumerated() { put(ref, at: entry + 28 + UInt64(i) * 4) }
  }
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Waits (SCHEDOP_poll on `port`) until `condition()` or `timeout` passes. Interrupts are
/// off except for a moment before each look: the upcall clears what is pending (a poll returns
/// at once while an upcall is due), and an event after the look makes the poll return.
func waitOn(_ port: UInt32, _ timeout: UInt64, _ condition: () -> Bool) -> Bool {
  let deadline = SystemTime.now() &+ timeout
  CPU.disableInterrupts()
  defer { CPU.enableInterrupts() }
  while true {
    CPU.enableInterruptsBriefly()
    if condition() { return true }
    if SystemTime.now() >= deadline { return false }
    Xen.poll(ports: [port], timeout: deadline)
  }
}

/// Waits until `path` reads `value`, through a watch on it; false after `timeout`.
func waitForNode(_ store: inout XenstoreClient, _ path: String, _ value: String, timeout: UInt64) -> Bool {
  let watched = store.watch(path, token: "hostile-blk")
  if !watched.ok { report.line("watch \(path): \(watched.summary)") }
  let deadline = SystemTime.now() &+ timeout
  defer { _ = store.unwatch(path, token: "hostile-blk") }
  while true {
    if store.read(path).holds(value.utf8) { return true }
    if SystemTime.now() >= deadline { return false }
    // Until the watch fires (its event waits in the ring) or a second passes.
    store.events.removeAll()
    let ring = store.ring
    _ = waitOn(store.port, min(deadline &- SystemTime.now(), 1_000 * ms)) {
      ring.load(XenstoreRingPage.responseProducer) != ring.load(XenstoreRingPage.responseConsumer)
    }
  }
}

func run() -> Never {
  let vdev = StartInfo.options.integer("vdev", default: 51712)
  report.line("start, vbd \(vdev)")
  Guest.requireHypervisor("guest-hostile-blk")
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  guard var store = XenstoreClient.connect() else { report.abort("no xenstore") }
  let front = "device/vbd/\(vdev)"
  let backendPath = store.read("\(front)/backend")
  let backendID = store.read("\(front)/backend-id")
  guard backendPath.ok, backendID.ok, let backend = CommandLineOptions.parseInteger(backendID.text[...]), backend > 0, backend < 0x7FF0 else {
    report.abort("\(front): backend \(backendPath.summary), backend-id \(backendID.summary)")
  }
  let back = text(backendPath.text)
  let handle = UInt16(truncatingIfNeeded: vdev)
  report.line("backend domain \(backend) at \(back)")

  // The handshake, as blkfront's talk_to_blkback.
  let waiting = waitForNode(&store, "\(back)/state", "2", timeout: 120_000 * ms)
  if !waiting { report.abort("the backend's state did not reach 2 (InitWait) within 120 s: \(store.read("\(back)/state").summary)") }
  let placed = Grants.placeTable(at: tableGFN)
  if placed != 0 { report.abort("add_to_physmap(grant_table) returned \(placed)") }
  for offset in stride(from: 0, to: 4096, by: 8) { gs_write_volatile64(Ring.base + UInt64(offset), 0) }
  Ring.store(1, Ring.requestEvent)
  Ring.store(1, Ring.responseEvent)
  Grants.grant(tableGFN, ref: ringRef, gfn: Ring.base >> 12, to: UInt16(backend))
  let allocated = Events.allocUnbound(remote: UInt16(backend))
  if allocated < 0 { report.abort("alloc_unbound for domain \(backend) returned \(allocated)") }
  let port = UInt32(allocated)
  let written = [
    store.write("\(front)/ring-ref", "\(ringRef)"),
    store.write("\(front)/event-channel", "\(port)"),
    store.write("\(front)/protocol", "x86_64-abi"),
    store.write("\(front)/state", "3"),
  ]
  report.check("handshake-written", written.allSatisfy { $0.ok }, ok: "ring-ref \(ringRef), event-channel \(port), state 3",
               fail: "a write failed: \(written.first { !$0.ok }?.summary ?? "")")
  let connected = waitForNode(&store, "\(back)/state", "4", timeout: 60_000 * ms)
  if !connected { report.abort("the backend did not connect within 60 s: state \(store.read("\(back)/state").summary)") }
  report.pass("backend-connected", "state 4")

  // Garbage, all at once.
  let requests = [
    Request(label: "bad-gref", fill: readWrite(opRead, segments: 1, handle: handle, sector: 0, refs: [(badRef, 0, 7)])),
    Request(label: "ungranted-ref", fill: readWrite(opWrite, segments: 1, handle: handle, sector: 8, refs: [(ungrantedRef, 0, 7)])),
    Request(label: "too-many-segments", fill: readWrite(opRead, segments: 200, handle: handle, sector: 0, refs: [(ringRef, 0, 7)])),
    Request(label: "no-segments", fill: readWrite(opRead, segments: 0, handle: handle, sector: 0, refs: [])),
    Request(label: "backwards-segment", fill: readWrite(opRead, segments: 1, handle: handle, sector: 0, refs: [(badRef, 7, 0)])),
    Request(label: "past-the-end", fill: readWrite(opRead, segments: 1, handle: handle, sector: 1 << 62, refs: [(badRef, 0, 7)])),
    Request(label: "unknown-op", fill: readWrite(0x77, segments: 1, handle: handle, sector: 0, refs: [(badRef, 0, 7)])),
    Request(label: "indirect-absurd", fill: indirect(innerOp: opRead, segments: 0xFFFF, handle: handle, refs: [badRef])),
    Request(label: "indirect-bad-op", fill: indirect(innerOp: 0x77, segments: 8, handle: handle, refs: [badRef])),
    Request(label: "indirect-bad-gref", fill: indirect(innerOp: opRead, segments: 8, handle: handle, refs: [badRef])),
    Request(label: "discard-past-end", fill: { entry, id in
      put(opDiscard, at: entry)
      put(id, at: entry + 8)
      put(UInt64(1) << 62, at: entry + 16)
      put(UInt64(1) << 40, at: entry + 24)
    }),
  ]
  let firstID: UInt64 = 0x1000
  for (i, request) in requests.enumerated() {
    request.fill(Ring.entry(UInt32(i)), firstID + UInt64(i))
  }
  Ring.store(UInt32(requests.count), Ring.requestProducer)
  _ = Events.send(port)
  // blkback notifies when rsp_prod passes rsp_event: each look asks for the next response
  // (RING_FINAL_CHECK_FOR_RESPONSES).
  let answered = waitOn(port, 20_000 * ms) {
    let produced = Ring.load(Ring.responseProducer)
    if produced >= UInt32(requests.count) { return true }
    Ring.store(produced &+ 1, Ring.responseEvent)
    return Ring.load(Ring.responseProducer) >= UInt32(requests.count)
  }
  let responses = Ring.load(Ring.responseProducer)
  report.check("all-answered", answered, ok: "\(responses) responses", fail: "\(responses) of \(requests.count) responses within 20 s")
  // blkif_response: id (u64), operation (u8), status (i16 at byte 10).
  var refused = 0
  for i in 0..<min(responses, UInt32(requests.count)) {
    let entry = Ring.entry(i)
    let id = get(UInt64.self, at: entry)
    let status = get(Int16.self, at: entry + 10)
    let index = Int(id &- firstID)
    let label = index >= 0 && index < requests.count ? "\(requests[index].label)" : "an unknown id \(hex(id))"
    report.line("response \(i): \(label), status \(status)")
    if index >= 0 && index < requests.count && status != 0 { refused += 1 }
  }
  report.check("all-refused", refused == requests.count, ok: "\(refused) errors",
               fail: "\(refused) of \(requests.count) requests answered with an error status")

  // A producer index far past the consumer: the backend must not read 1000 entries of a
  // 32-entry ring.
  let before = Ring.load(Ring.responseProducer)
  Ring.store(before &+ 1, Ring.responseEvent)
  Ring.store(UInt32(requests.count) &+ 1000, Ring.requestProducer)
  _ = Events.send(port)
  let moved = waitOn(port, 3_000 * ms) { Ring.load(Ring.responseProducer) != before }
  report.check("runaway-producer-ignored", !moved, ok: "no response in 3 s",
               fail: "responses went from \(before) to \(Ring.load(Ring.responseProducer))")
  report.finish()
}
#endif
