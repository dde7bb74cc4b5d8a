#if os(none)
import GuestSupport

/// The xenstore ring page as the guest sees it (xen/include/public/io/xs_wire.h, struct
/// xenstore_domain_interface): req[1024] at 0, rsp[1024] at 1024, then the u32 indices req_cons,
/// req_prod, rsp_cons, rsp_prod, server_features, connection, error. The indices run free and
/// are taken modulo 1024. Every access to the page goes through here.
public struct XenstoreRingPage {
  public static let size: UInt32 = 1024
  public static let request = 0
  public static let response = 1024
  public static let requestConsumer = 2048
  public static let requestProducer = 2052
  public static let responseConsumer = 2056
  public static let responseProducer = 2060
  public static let serverFeatures = 2064
  public static let connection = 2068
  public static let error = 2072

  /// The page's address (guest-virtual = guest-physical in the boot identity map).
  public let base: UInt64

  public init(base: UInt64) { self.base = base }

  /// One of the u32 fields above. Acquire: the data the other side wrote before moving an index
  /// is read after it.
  public func load(_ offset: Int) -> UInt32 {
    // Unsafe: the page is mapped by the identity map (the hypervisor maps the ring's gfn).
    gs_load32(UnsafeMutablePointer<UInt32>(bitPattern: UInt(base) + UInt(offset))!)
  }

  /// Stores a u32 field. Sequentially consistent: the data stored before it is visible first
  /// (the barrier Linux's xb_write puts before advancing req_prod).
  public func store(_ value: UInt32, _ offset: Int) {
    // Unsafe: the page is mapped by the identity map, and offset is one of the fields above.
    gs_store32(UnsafeMutablePointer<UInt32>(bitPattern: UInt(base) + UInt(offset))!, value)
  }

  /// The byte at `index` (taken modulo the ring) of `req` (ring = request) or `rsp`.
  public func byte(_ ring: Int, _ index: UInt32) -> UInt8 {
    // Unsafe: the offset stays inside the 1024 bytes of that ring.
    UnsafePointer<UInt8>(bitPattern: UInt(base) + UInt(ring) + UInt(index % Self.size))!.pointee
  }

  public func setByte(_ ring: Int, _ index: UInt32, _ value: UInt8) {
    // Unsafe: the offset stays inside the 1024 bytes of that ring.
    UnsafeMutablePointer<UInt8>(bitPattern: UInt(base) + UInt(ring) + UInt(index % Self.size))!.pointee = value
  }

  /// Copies `bytes` into `ring` from `index` on (taken modulo the ring), in at most two copies
  /// (the ring's end). At most a ring's worth.
  public func copyIn(_ ring: Int, at index: UInt32, _ bytes: UnsafeRawBufferPointer) {
    let start = Int(index % Self.size)
    let first = min(bytes.count, Int(Self.size) - start)
    // Unsafe: both pieces stay inside the 1024 bytes of that ring.
    let target = UnsafeMutableRawPointer(bitPattern: UInt(base) + UInt(ring))!
    if first > 0 { (target + start).copyMemory(from: bytes.baseAddress!, byteCount: first) }
    if first < bytes.count { target.copyMemory(from: bytes.baseAddress! + first, byteCount: min(bytes.count - first, start)) }
  }

  /// A message whose payload is one string (`name` and its NUL) into `req` at `index`, when it
  /// does not cross the ring's end: the header in two 8-byte stores, the name in one copy, then
  /// the NUL. False, writing nothing, when it would cross (`copyIn` then writes it in pieces).
  public func putRequest(_ header: (UInt64, UInt64), name: UnsafeRawBufferPointer, at index: UInt32) -> Bool {
    let start = Int(index % Self.size)
    guard start + 16 + name.count + 1 <= Int(Self.size) else { return false }
    // Unsafe: the message stays inside the 1024 bytes of `req` (checked above).
    let target = UnsafeMutableRawPointer(bitPattern: UInt(base) + UInt(Self.request + start))!
    target.storeBytes(of: header.0, as: UInt64.self)
    target.storeBytes(of: header.1, toByteOffset: 8, as: UInt64.self)
    if let bytes = name.baseAddress, name.count > 0 { Self.copy(bytes, to: target + 16, count: name.count) }
    target.storeBytes(of: 0, toByteOffset: 16 + name.count, as: UInt8.self)
    return true
  }

  /// The 16-byte header at `index` of `rsp` as two little-endian words, when it does not cross
  /// the ring's end; nil when it does (`copyOut` then reads it in pieces).
  public func responseHeader(at index: UInt32) -> (UInt64, UInt64)? {
    let start = Int(index % Self.size)
    guard start + 16 <= Int(Self.size) else { return nil }
    // Unsafe: the 16 bytes stay inside the 1024 bytes of `rsp` (checked above).
    let source = UnsafeRawPointer(bitPattern: UInt(base) + UInt(Self.response + start))!
    return (source.loadUnaligned(as: UInt64.self), source.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
  }

  /// Copies `bytes.count` bytes out of `ring` from `index` on (taken modulo the ring), in at
  /// most two copies. At most a ring's worth.
  public func copyOut(_ ring: Int, at index: UInt32, _ bytes: UnsafeMutableRawBufferPointer) {
    let start = Int(index % Self.size)
    let first = min(bytes.count, Int(Self.size) - start)
    // Unsafe: both pieces stay inside the 1024 bytes of that ring.
    let source = UnsafeRawPointer(bitPattern: UInt(base) + UInt(ring))!
    if first > 0 { Self.copy(source + start, to: bytes.baseAddress!, count: first) }
    if first < bytes.count { Self.copy(source, to: bytes.baseAddress! + first, count: min(bytes.count - first, start)) }
  }

  /// Copies `count` bytes that do not overlap: a word at a time, then byte by byte. A name or a
  /// value is a few dozen bytes, where `copyMemory` (memmove, then memcpy) spends more on its
  /// set-up than on the bytes.
  static func copy(_ source: UnsafeRawPointer, to target: UnsafeMutableRawPointer, count: Int) {
    var offset = 0
    // Unsafe: the caller's ranges hold `count` bytes each; every access stays below it.
    while offset + 8 <= count {
      target.storeBytes(of: source.loadUnaligned(fromByteOffset: offset, as: UInt64.self), toByteOffset: offset, as: UInt64.self)
      offset += 8
    }
    while offset < count {
      target.storeBytes(of: source.load(fromByteOffset: offset, as: UInt8.self), toByteOffset: offset, as: UInt8.self)
      offset += 1
    }
  }
}

/// The xs_wire.h message types the client sends or receives.
public enum XenstoreType {
  public static let directory: UInt32 = 1
  public static let read: UInt32 = 2
  public static let getPerms: UInt32 = 3
  public static let watch: UInt32 = 4
  public static let unwatch: UInt32 = 5
  public static let transactionStart: UInt32 = 6
  public static let transactionEnd: UInt32 = 7
  public static let getDomainPath: UInt32 = 10
  public static let write: UInt32 = 11
  public static let mkdir: UInt32 = 12
  public static let rm: UInt32 = 13
  public static let setPerms: UInt32 = 14
  public static let watchEvent: UInt32 = 15
  public static let error: UInt32 = 16
  /// Not on the wire: the client got no reply (the ring stopped, or the deadline passed).
  public static let noReply: UInt32 = 0xFFFF_FFFF
}

/// One reply: its type (XS_ERROR for a refusal) and payload. For `noReply`, the payload says why.
public struct XenstoreReply {
  public let type: UInt32
  public let payload: [UInt8]

  public init(type: UInt32, payload: [UInt8]) {
    self.type = type
    self.payload = payload
  }

  public var ok: Bool { type != XenstoreType.error && type != XenstoreType.noReply }

  /// The payload up to its first NUL (a value, an error name, a path).
  public var text: [UInt8] {
    Array(payload.prefix { $0 != 0 })
  }

  /// Whether this is an XS_ERROR reply naming `errno` ("EACCES").
  public func refused(_ errno: StaticString) -> Bool {
    guard type == XenstoreType.error else { return false }
    return errno.withUTF8Buffer { text.elementsEqual($0) }
  }

  /// Whether the reply succeeded with exactly `value` as its payload.
  public func holds(_ value: some Collection<UInt8>) -> Bool {
    ok && payload.elementsEqual(value)
  }

  /// For result lines: "ok <payload>", "error <name>" or "no reply (<why>)".
  public var summary: String {
    switch type {
    case XenstoreType.error: return "error " + String(decoding: text, as: UTF8.self)
    case XenstoreType.noReply: return "no reply (" + String(decoding: payload, as: UTF8.self) + ")"
    default: return "ok '" + String(decoding: text, as: UTF8.self) + "'"
    }
  }

  /// The NUL-separated strings of the payload (a directory listing, a watch event).
  public var strings: [[UInt8]] {
    var result: [[UInt8]] = []
    var current: [UInt8] = []
    for byte in payload {
      if byte == 0 { result.append(current); current = [] } else { current.append(byte) }
    }
    if !current.isEmpty { result.append(current) }
    return result
  }
}

/// A watch event: the path that changed and the watch's token.
public struct XenstoreWatchEvent {
  public let path: [UInt8]
  public let token: [UInt8]
}

/// A xenstore client over the domain's ring, as Linux's xenbus (drivers/xen/xenbus/
/// xenbus_comms.c) drives it: a request's bytes go into `req`, then `req_prod` moves (after a
/// barrier), then EVTCHNOP_send on the store port; the reply is read from `rsp` after `rsp_prod`
/// moved, and `rsp_cons` moves past it. Watch events may arrive before a reply: they are queued
/// in `events`. One request at a time; waits use SCHEDOP_poll on the store port with interrupts
/// off, so it works whether or not the guest takes upcalls.
public struct XenstoreClient {
  public let ring: XenstoreRingPage
  public let port: UInt32
  /// How long one request waits for its reply (system time, ns).
  public var timeout: UInt64 = 2_000 * SystemTime.nanosecondsPerMillisecond
  /// Watch events read from the ring and not taken yet (oldest first).
  public var events: [XenstoreWatchEvent] = []
  /// EVTCHNOP_send calls that did not return 0 (the last such answer).
  public private(set) var sendFailure: Int64 = 0
  /// TSC cycles spent in EVTCHNOP_send so far, while `timesSends` is on: the store answers
  /// during the send that carries a request, so this is the hypervisor's share of the round
  /// trips.
  public private(set) var sendCycles: UInt64 = 0
  /// Whether each send is timed into `sendCycles`: off, a round trip that is timed whole does
  /// not also pay for the two RDTSCs around its send.
  public var timesSends = false
  var nextRequestID: UInt32 = 1
  /// Bytes of a message read from `rsp` but not whole yet.
  var partial: [UInt8] = []

  /// HVMOP_get_param(HVM_PARAM_STORE_PFN = 1, HVM_PARAM_STORE_EVTCHN = 2).
  public static func parameters() -> (pfnResult: Int64, pfn: UInt64, portResult: Int64, port: UInt64) {
    let pfn = getParam(1), port = getParam(2)
    return (pfn.result, pfn.value, port.result, port.value)
  }

  static func getParam(_ index: UInt32) -> (result: Int64, value: UInt64) {
    var param = gs_xen_hvm_param(domid: Xen.domidSelf, pad: 0, index: index, value: 0)
    let r = Xen.withArgument(&param) { Xen.hvmOp(1, $0) }   // HVMOP_get_param
    return (r, param.value)
  }

  /// The client for this domain's ring, or nil if the parameters are missing or shared_info
  /// (for system time and the port's pending bit) cannot be mapped.
  public static func connect() -> XenstoreClient? {
    guard SharedInfo.map() == 0 else { return nil }
    let p = parameters()
    guard p.pfnResult == 0, p.portResult == 0, p.pfn != 0, p.port != 0, p.pfn < 1 << 20 else { return nil }
    return XenstoreClient(ring: XenstoreRingPage(base: p.pfn << 12), port: UInt32(p.port))
  }

  public init(ring: XenstoreRingPage, port: UInt32) {
    self.ring = ring
    self.port = port
  }

  /// The ring's `error` field: 0, or XENSTORE_ERROR_* once the store stopped serving it.
  public var ringError: UInt32 { ring.load(XenstoreRingPage.error) }

  // MARK: Operations (paths relative to the domain's home unless they start with "/")

  public mutating func read(_ path: String, transaction: UInt32 = 0) -> XenstoreReply {
    request(XenstoreType.read, strings: [path], transaction: transaction)
  }

  /// XS_READ of `path` as a kernel's xenbus does it, without an array or a string on the way:
  /// the request goes straight into `req`, and the reply is copied from `rsp` into `value`
  /// (as much as fits). Returns the value's whole length, or nil when the store refused or did
  /// not answer. Anything unusual (no room yet, a watch event or a half message first) takes
  /// the general path (`request`), which gives the same answer.
  public mutating func read(_ path: StaticString, into value: UnsafeMutableRawBufferPointer) -> Int? {
    let name = UnsafeRawBufferPointer(start: path.utf8Start, count: path.utf8CodeUnitCount)
    let size = 16 + name.count + 1
    let producer = ring.load(XenstoreRingPage.requestProducer)
    let used = producer &- ring.load(XenstoreRingPage.requestConsumer)
    guard partial.isEmpty, used <= XenstoreRingPage.size, Int(XenstoreRingPage.size - used) >= size else {
      return copyValue(read(String(decoding: name, as: UTF8.self)), into: value)
    }
    let id = nextRequestID
    nextRequestID &+= 1
    // type, id, tx_id 0, len: two little-endian words.
    let words = (UInt64(XenstoreType.read) | UInt64(id) << 32, UInt64(name.count + 1) << 32)
    if !ring.putRequest(words, name: name, at: producer) {
      withUnsafeBytes(of: words) { ring.copyIn(XenstoreRingPage.request, at: producer, $0) }
      ring.copyIn(XenstoreRingPage.request, at: producer &+ 16, name)
      ring.setByte(XenstoreRingPage.request, producer &+ UInt32(size - 1), 0)
    }
    ring.store(producer &+ UInt32(size), XenstoreRingPage.requestProducer)
    notify()
    // The store answers during the send, so the reply is usually there already.
    let consumer = ring.load(XenstoreRingPage.responseConsumer)
    let available = ring.load(XenstoreRingPage.responseProducer) &- consumer
    if available >= 16, available <= XenstoreRingPage.size {
      let reply = ring.responseHeader(at: consumer) ?? {
        var words = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &words) { ring.copyOut(XenstoreRingPage.response, at: consumer, $0) }
        return words
      }()
      let type = UInt32(truncatingIfNeeded: reply.0), length = UInt32(truncatingIfNeeded: reply.1 >> 32)
      if type != XenstoreType.watchEvent, UInt32(truncatingIfNeeded: reply.0 >> 32) == id, length <= available - 16 {
        let kept = min(Int(length), value.count)
        ring.copyOut(XenstoreRingPage.response, at: consumer &+ 16, UnsafeMutableRawBufferPointer(rebasing: value[..<kept]))
        ring.store(consumer &+ 16 &+ length, XenstoreRingPage.responseConsumer)
        // A full ring may hide more output behind it: tell the store there is room (xb_read).
        if available == XenstoreRingPage.size { notify() }
        return type == XenstoreType.error ? nil : Int(length)
      }
    }
    return copyValue(awaitReply(id, deadline: SystemTime.now() &+ timeout), into: value)
  }

  /// The length of `reply`'s value, copied into `value` as far as it fits; nil for a refusal.
  func copyValue(_ reply: XenstoreReply, into value: UnsafeMutableRawBufferPointer) -> Int? {
    guard reply.ok else { return nil }
    let kept = min(reply.payload.count, value.count)
    reply.payload.withUnsafeBytes { value.baseAddress?.copyMemory(from: $0.baseAddress!, byteCount: kept) }
    return reply.payload.count
  }

  public mutating func write(_ path: String, _ value: String, transaction: UInt32 = 0) -> XenstoreReply {
    var payload = Array(path.utf8)
    payload.append(0)
    payload.append(contentsOf: value.utf8)   // the value is not NUL-terminated
    return request(XenstoreType.write, payload, transaction: transaction)
  }

  public mutating func mkdir(_ path: String, transaction: UInt32 = 0) -> XenstoreReply {
    request(XenstoreType.mkdir, strings: [path], transaction: transaction)
  }

  public mutating func rm(_ path: String, transaction: UInt32 = 0) -> XenstoreReply {
    request(XenstoreType.rm, strings: [path], transaction: transaction)
  }

  public mutating func directory(_ path: String, transaction: UInt32 = 0) -> XenstoreReply {
    request(XenstoreType.directory, strings: [path], transaction: transaction)
  }

  public mutating func getPerms(_ path: String, transaction: UInt32 = 0) -> XenstoreReply {
    request(XenstoreType.getPerms, strings: [path], transaction: transaction)
  }

  /// `permissions` as xenstored takes them: "n1" (owner 1, others none), "r2" (domain 2 reads).
  public mutating func setPerms(_ path: String, _ permissions: [String], transaction: UInt32 = 0) -> XenstoreReply {
    request(XenstoreType.setPerms, strings: [path] + permissions, transaction: transaction)
  }

  public mutating func watch(_ path: String, token: String) -> XenstoreReply {
    request(XenstoreType.watch, strings: [path, token])
  }

  public mutating func unwatch(_ path: String, token: String) -> XenstoreReply {
    request(XenstoreType.unwatch, strings: [path, token])
  }

  /// XS_TRANSACTION_START: the reply's text is the new transaction's id in decimal.
  public mutating func transactionStart() -> XenstoreReply {
    request(XenstoreType.transactionStart, strings: [""])
  }

  /// The id a transaction_start reply carries, or 0.
  public static func transactionID(_ reply: XenstoreReply) -> UInt32 {
    guard reply.ok, let id = CommandLineOptions.parseInteger(reply.text[...]), id > 0, let value = UInt32(exactly: id) else { return 0 }
    return value
  }

  /// XS_TRANSACTION_END with "T" (commit) or "F" (abort).
  public mutating func transactionEnd(_ transaction: UInt32, commit: Bool) -> XenstoreReply {
    request(XenstoreType.transactionEnd, strings: [commit ? "T" : "F"], transaction: transaction)
  }

  public mutating func getDomainPath(_ domid: UInt32) -> XenstoreReply {
    request(XenstoreType.getDomainPath, strings: ["\(domid)"])
  }

  // MARK: The protocol

  /// Sends one request whose payload is `strings`, each NUL-terminated, and waits for its reply.
  public mutating func request(_ type: UInt32, strings: [String], transaction: UInt32 = 0) -> XenstoreReply {
    var payload: [UInt8] = []
    for s in strings {
      payload.append(contentsOf: s.utf8)
      payload.append(0)
    }
    return request(type, payload, transaction: transaction)
  }

  /// Sends one request (header: type, request id, transaction id, length; then `payload`) and
  /// waits for the reply with its request id, queueing watch events that come first.
  public mutating func request(_ type: UInt32, _ payload: [UInt8], transaction: UInt32 = 0) -> XenstoreReply {
    let id = nextRequestID
    nextRequestID &+= 1
    var message: [UInt8] = []
    message.reserveCapacity(16 + payload.count)
    for field in [type, id, transaction, UInt32(payload.count)] { appendLE(&message, field) }
    message.append(contentsOf: payload)
    let deadline = SystemTime.now() &+ timeout
    guard writeRaw(message, deadline: deadline) else { return noReply("the request did not fit before the deadline") }
    return awaitReply(id, deadline: deadline)
  }

  /// Waits for the reply to request `id`, queueing watch events that come first.
  mutating func awaitReply(_ id: UInt32, deadline: UInt64) -> XenstoreReply {
    while true {
      guard let reply = nextMessage(deadline: deadline) else {
        return noReply(ringError != 0 ? "ring error \(ringError)" : "timeout")
      }
      if reply.type == XenstoreType.watchEvent {
        queueEvent(reply.payload)
        continue
      }
      if reply.id == id { return XenstoreReply(type: reply.type, payload: reply.payload) }
      // A reply to an earlier request that gave up waiting: dropped.
    }
  }

  /// The oldest queued watch event, waiting for one until `deadline` (system time) if none is
  /// queued; nil if none came.
  public mutating func nextEvent(deadline: UInt64) -> XenstoreWatchEvent? {
    while events.isEmpty {
      guard let message = nextMessage(deadline: deadline) else { return nil }
      if message.type == XenstoreType.watchEvent { queueEvent(message.payload) }
    }
    return events.removeFirst()
  }

  /// Writes `bytes` into `req` as room allows, moving `req_prod` and notifying after each piece
  /// (a message may be larger than the ring). False if the deadline passed first.
  public mutating func writeRaw(_ bytes: [UInt8], deadline: UInt64) -> Bool {
    var sent = 0
    while sent < bytes.count {
      var room: UInt32 = 0
      let hasRoom = waitFor(deadline: deadline) {
        let used = ring.load(XenstoreRingPage.requestProducer) &- ring.load(XenstoreRingPage.requestConsumer)
        room = used <= XenstoreRingPage.size ? XenstoreRingPage.size - used : 0
        return room > 0
      }
      guard hasRoom else { return false }
      let producer = ring.load(XenstoreRingPage.requestProducer)
      let piece = min(Int(room), bytes.count - sent)
      for i in 0..<piece {
        ring.setByte(XenstoreRingPage.request, producer &+ UInt32(i), bytes[sent + i])
      }
      ring.store(producer &+ UInt32(piece), XenstoreRingPage.requestProducer)
      sent += piece
      notify()
    }
    return true
  }

  /// EVTCHNOP_send on the store port.
  public mutating func notify() {
    guard timesSends else {
      let r = Events.send(port)
      if r != 0 { sendFailure = r }
      return
    }
    let t0 = CPU.rdtsc()
    let r = Events.send(port)
    sendCycles &+= CPU.rdtsc() &- t0
    if r != 0 { sendFailure = r }
  }

  /// The next whole message from `rsp` (header fields and payload), or nil at the deadline.
  mutating func nextMessage(deadline: UInt64) -> (type: UInt32, id: UInt32, payload: [UInt8])? {
    while true {
      if partial.count >= 16 {
        let length = Int(readLE(partial, 12))
        if length > 4096 { return nil }   // not from a store that follows the protocol
        if partial.count >= 16 + length {
          let message = (type: readLE(partial, 0), id: readLE(partial, 4), payload: Array(partial[16..<(16 + length)]))
          partial.removeFirst(16 + length)
          return message
        }
      }
      var available: UInt32 = 0
      let arrived = waitFor(deadline: deadline) {
        available = ring.load(XenstoreRingPage.responseProducer) &- ring.load(XenstoreRingPage.responseConsumer)
        return available > 0
      }
      guard arrived, available <= XenstoreRingPage.size else { return nil }
      let consumer = ring.load(XenstoreRingPage.responseConsumer)
      for i in 0..<available {
        partial.append(ring.byte(XenstoreRingPage.response, consumer &+ i))
      }
      ring.store(consumer &+ available, XenstoreRingPage.responseConsumer)
      // A full ring may hide more output behind it: tell the store there is room (xb_read).
      if available == XenstoreRingPage.size { notify() }
    }
  }

  mutating func queueEvent(_ payload: [UInt8]) {
    let parts = XenstoreReply(type: XenstoreType.watchEvent, payload: payload).strings
    events.append(XenstoreWatchEvent(path: parts.first ?? [], token: parts.count > 1 ? parts[1] : []))
  }

  func noReply(_ why: String) -> XenstoreReply {
    XenstoreReply(type: XenstoreType.noReply, payload: Array(why.utf8))
  }

  /// Waits until `condition()` holds or system time reaches `deadline`, with interrupts off
  /// (restored afterwards): the port's pending bit is cleared before the last look, so an event
  /// that comes after it makes SCHEDOP_poll return at once.
  func waitFor(deadline: UInt64, _ condition: () -> Bool) -> Bool {
    let wasEnabled = CPU.interruptsEnabled
    CPU.disableInterrupts()
    defer { if wasEnabled { CPU.enableInterrupts() } }
    while true {
      if condition() { return true }
      Events.clearPending(port)
      if condition() { return true }
      if ringError != 0 || SystemTime.now() >= deadline { return false }
      Xen.poll(ports: [port], timeout: deadline)
    }
  }
}

func appendLE(_ bytes: inout [UInt8], _ value: UInt32) {
  for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
}

func readLE(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
  var value: UInt32 = 0
  for i in 0..<4 { value |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
  return value
}
#endif
