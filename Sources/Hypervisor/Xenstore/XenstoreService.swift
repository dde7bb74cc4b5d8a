import XenABI

// The store as the hypervisor serves it to its domains: the protocol engine (`XenstoreServer`)
// and each domain's ring page. A domain's xenbus writes requests into the page's `req` ring and
// sends on its store port; the send lands in `service`, which moves bytes both ways and says
// which domains now have something new in their `rsp` ring (and so get an event). The arch
// layer owns the pages and the ports (X86/Xenstore/GuestXenstore.swift); this part is plain
// Swift and host-tested over an in-memory page.
//
// The guest owns the indices and may change them at any moment: each is loaded once per pass,
// a producer more than a ring ahead of its consumer stops the ring for good (the `error` field
// says XENSTORE_ERROR_RINGIDX), and nothing is ever copied by a count the guest gave.

public struct XenstoreService: Sendable {
  typealias Ring = XenABI.XenstoreRing

  public var server: XenstoreServer
  /// Domains whose ring stopped (an index out of bounds, or a message no protocol allows), with
  /// why. Kept here, not read back from the page, where the guest could clear it.
  public private(set) var stopped: [UInt32: XenABI.XenstoreRing.Error] = [:]

  /// The fast read path's buffers (`answerLoneRead`): their capacity is kept from request to
  /// request, so a read allocates nothing.
  private var payloadBuffer: [UInt8] = []
  private var nameBuffer: [UInt8] = []

  public init(limits: XenstoreLimits = .xenDefaults) {
    server = XenstoreServer(limits: limits)
    payloadBuffer.reserveCapacity(Ring.size)
    nameBuffer.reserveCapacity(XenstorePath.absoluteMax + 32)
  }

  /// At most this many request/response passes per `service` call: each pass moves at most a
  /// ring of requests and a ring of responses, so a call is bounded whatever the guest does.
  static let passesPerCall = 4

  /// Serves `domid`'s ring: takes whole requests from `req` (leaving those that must wait for
  /// the outstanding-replies quota), and puts replies and events into `rsp` as far as it has
  /// room. Returns whether anything moved (the domain is then notified).
  public mutating func service(_ page: some SharedPage, domid: UInt32) -> Bool {
    guard stopped[domid] == nil else { return false }
    if answerLoneRead(page, domid: domid) { return true }
    var moved = false
    for _ in 0..<Self.passesPerCall {
      let took = takeRequests(page, domid: domid)
      let wrote = stopped[domid] == nil && putOutput(page, domid: domid)
      // A stop on either side ends the call: the guest has its `error` field to look at.
      if stopped[domid] != nil { return true }
      guard took || wrote else { break }
      moved = true
    }
    return moved
  }

  /// Moves queued replies and events to `domid`'s `rsp` ring only (a watch event for a domain
  /// that did not send anything). Returns whether anything moved.
  public mutating func flushOutput(_ page: some SharedPage, domid: UInt32) -> Bool {
    guard stopped[domid] == nil, server.queuedCount(for: domid) > 0 else { return false }
    return putOutput(page, domid: domid) || stopped[domid] != nil
  }

  /// Forgets `domid`'s ring (the domain is gone; `XenstoreServer.release` frees its store
  /// state).
  public mutating func forget(_ domid: UInt32) {
    stopped[domid] = nil
  }

  /// Stops `domid`'s ring for good and tells the guest why in the page's `error` field.
  private mutating func stop(_ domid: UInt32, _ why: XenABI.XenstoreRing.Error, _ page: some SharedPage) {
    stopped[domid] = why
    page.store32(why.rawValue, at: Ring.Offset.error)
  }

  /// The request every xenbus client sends most, answered without the general path's copies
  /// and queue: one XS_READ outside a transaction, alone and in one piece in `req`, whose reply
  /// fits in `rsp` now. Each byte of the request is read once, as in `takeRequests`. Returns
  /// false, having changed nothing, for anything else, and for a read that fails: the general
  /// path then serves the ring as if this were not here.
  private mutating func answerLoneRead(_ page: some SharedPage, domid: UInt32) -> Bool {
    let size = UInt32(Ring.size)
    let header = UInt32(XenstoreMessage.headerSize)
    let consumer = page.load32(at: Ring.Offset.requestConsumer)
    let producer = page.load32(at: Ring.Offset.requestProducer)
    let available = producer &- consumer
    guard available > header, available <= size else { return false }
    let start = Ring.Offset.request + Int(consumer % size)
    guard Int(consumer % size) + Int(available) <= Ring.size else { return false }
    func word(_ offset: Int) -> UInt32 {
      UInt32(page.load8(at: start + offset)) | UInt32(page.load8(at: start + offset + 1)) << 8
        | UInt32(page.load8(at: start + offset + 2)) << 16 | UInt32(page.load8(at: start + offset + 3)) << 24
    }
    guard word(0) == XenstoreOp.read.rawValue, word(8) == 0, word(12) == available - header else { return false }
    let requestID = word(4)
    payloadBuffer.removeAll(keepingCapacity: true)
    for offset in Int(header)..<Int(available) { payloadBuffer.append(page.load8(at: start + offset)) }
    // xenstored's onearg: exactly one NUL, at the end.
    guard payloadBuffer.last == 0 else { return false }
    let argument = payloadBuffer[..<(payloadBuffer.count - 1)]
    guard !argument.contains(0),
          let value = server.fastRead(argument, from: domid, name: &nameBuffer) else { return false }

    let responseConsumer = page.load32(at: Ring.Offset.responseConsumer)
    var position = page.load32(at: Ring.Offset.responseProducer)
    let used = position &- responseConsumer
    guard used <= size, Int(size - used) >= Int(header) + value.count else { return false }
    func put(_ byte: UInt8) {
      page.store8(byte, at: Ring.Offset.response + Int(position % size))
      position &+= 1
    }
    func put(word: UInt32) {
      put(UInt8(truncatingIfNeeded: word)); put(UInt8(truncatingIfNeeded: word >> 8))
      put(UInt8(truncatingIfNeeded: word >> 16)); put(UInt8(truncatingIfNeeded: word >> 24))
    }
    put(word: XenstoreOp.read.rawValue)
    put(word: requestID)
    put(word: 0)
    put(word: UInt32(value.count))
    for byte in value { put(byte) }
    // The reply before its index (x86 keeps stores in order; the stores are volatile).
    page.store32(position, at: Ring.Offset.responseProducer)
    page.store32(producer, at: Ring.Offset.requestConsumer)
    return true
  }

  private mutating func takeRequests(_ page: some SharedPage, domid: UInt32) -> Bool {
    let consumer = page.load32(at: Ring.Offset.requestConsumer)
    let producer = page.load32(at: Ring.Offset.requestProducer)
    let available = producer &- consumer
    guard available <= UInt32(Ring.size) else {
      stop(domid, .ringIndex, page)
      return false
    }
    guard available > 0 else { return false }
    // Each byte read once into our own copy, in at most two pieces (the ring's end); the server
    // parses only that copy.
    let start = Int(consumer % UInt32(Ring.size))
    let first = min(Int(available), Ring.size - start)
    var bytes = page.loadBytes(at: Ring.Offset.request + start, count: first)
    if first < Int(available) { bytes += page.loadBytes(at: Ring.Offset.request, count: Int(available) - first) }
    let taken = server.receive(bytes[...], from: domid)
    if taken > 0 { page.store32(consumer &+ UInt32(taken), at: Ring.Offset.requestConsumer) }
    if server.isBroken(domid) { stop(domid, .proto, page) }
    return taken > 0
  }

  private mutating func putOutput(_ page: some SharedPage, domid: UInt32) -> Bool {
    guard server.queuedCount(for: domid) > 0 else { return false }
    let consumer = page.load32(at: Ring.Offset.responseConsumer)
    let producer = page.load32(at: Ring.Offset.responseProducer)
    let used = producer &- consumer
    guard used <= UInt32(Ring.size) else {
      stop(domid, .ringIndex, page)
      return false
    }
    let bytes = server.takeOutput(for: domid, upTo: Ring.size - Int(used))
    guard !bytes.isEmpty else { return false }
    let start = Int(producer % UInt32(Ring.size))
    let first = min(bytes.count, Ring.size - start)
    page.storeBytes(bytes[..<first], at: Ring.Offset.response + start)
    if first < bytes.count { page.storeBytes(bytes[first...], at: Ring.Offset.response) }
    // The data before the index (x86 keeps stores in order; the stores are volatile).
    page.store32(producer &+ UInt32(bytes.count), at: Ring.Offset.responseProducer)
    return true
  }
}
