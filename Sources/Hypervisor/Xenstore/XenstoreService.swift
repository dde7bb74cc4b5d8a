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

  public init(limits: XenstoreLimits = .xenDefaults) {
    server = XenstoreServer(limits: limits)
  }

  /// Whether `domid`'s ring is stopped (`isEmpty` first: a lookup hashes the domid, and no ring
  /// is stopped in the usual case).
  public func isStopped(_ domid: UInt32) -> Bool { !stopped.isEmpty && stopped[domid] != nil }

  /// Whether the last `service` call was one read answered by the fast path, which queues
  /// nothing for any domain: the caller then has no other domain's output to deliver.
  public private(set) var answeredLoneRead = false

  /// At most this many request/response passes per `service` call: each pass moves at most a
  /// ring of requests and a ring of responses, so a call is bounded whatever the guest does.
  static let passesPerCall = 4

  /// Serves `domid`'s ring: takes whole requests from `req` (leaving those that must wait for
  /// the outstanding-replies quota), and puts replies and events into `rsp` as far as it has
  /// room. Returns whether anything moved (the domain is then notified).
  public mutating func service(_ page: some SharedPage, domid: UInt32) -> Bool {
    answeredLoneRead = false
    guard !isStopped(domid) else { return false }
    if answerLoneRead(page, domid: domid) {
      answeredLoneRead = true
      return true
    }
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
  /// fits in `rsp` now. The request is read in three copies, its header, its final NUL and its
  /// name (straight into the connection's name buffer), so each byte once, as in
  /// `takeRequests`, and only the copies are parsed. Returns false, having changed nothing, for
  /// anything else, and for a read that fails: the general path then serves the ring as if
  /// this were not here.
  private mutating func answerLoneRead(_ page: some SharedPage, domid: UInt32) -> Bool {
    let size = UInt32(Ring.size)
    let headerSize = XenstoreMessage.headerSize
    // The four indices (req_cons, req_prod, rsp_cons, rsp_prod, in that order) in one load:
    // each is used as read here, once.
    let indices = page.load128(at: Ring.Offset.requestConsumer)
    let consumer = UInt32(truncatingIfNeeded: indices.0)
    let producer = UInt32(truncatingIfNeeded: indices.0 >> 32)
    let available = producer &- consumer
    let start = Int(consumer % size)
    guard available > UInt32(headerSize), available <= size, start + Int(available) <= Ring.size else { return false }
    // The header in one copy and the name in another.
    let header = XenstoreHeader(words: page.load128(at: Ring.Offset.request + start))
    guard header.type == XenstoreOp.read.rawValue, header.transactionID == 0,
          header.length == available - UInt32(headerSize) else { return false }
    // xenstored's onearg: exactly one NUL, at the end (`check` refuses a NUL anywhere else, as
    // an invalid character). The name before it is read once, by `fastRead`.
    let name = Ring.Offset.request + start + headerSize
    let nameCount = Int(header.length) - 1
    guard nameCount >= 0, page.load8(at: name + nameCount) == 0,
          let value = server.fastRead(page, nameAt: name, count: nameCount, from: domid) else { return false }

    let responseConsumer = UInt32(truncatingIfNeeded: indices.1)
    let responseProducer = UInt32(truncatingIfNeeded: indices.1 >> 32)
    let used = responseProducer &- responseConsumer
    let responseStart = Int(responseProducer % size)
    // A header across the ring's end is left to the general path.
    guard used <= size, Int(size - used) >= headerSize + value.count, responseStart + headerSize <= Ring.size else { return false }
    let reply = XenstoreHeader(type: XenstoreOp.read.rawValue, requestID: header.requestID, transactionID: 0, length: UInt32(value.count))
    page.store128(reply.words, at: Ring.Offset.response + responseStart)
    Self.putResponse(value[...], page, at: responseProducer &+ UInt32(headerSize))
    page.store32(producer, at: Ring.Offset.requestConsumer)
    return true
  }

  /// Puts `bytes` into `rsp` from index `producer` (in at most two copies: the ring's end), then
  /// moves `rsp_prod` past them: after a header stored before them, it says "header and
  /// payload". The caller has checked that they fit.
  /// Static: as a method of `self` called from a mutating one, the compiler copied the whole
  /// service (169 bytes, a byte at a time) to call it.
  private static func putResponse(_ bytes: ArraySlice<UInt8>, _ page: some SharedPage, at producer: UInt32) {
    let start = Int(producer % UInt32(Ring.size))
    if bytes.count <= Ring.size - start {
      // In one piece (a short value nearly always): no slice of the slice, which is a call and
      // a reference counted each way.
      page.storeBytes(bytes, at: Ring.Offset.response + start)
    } else {
      let split = bytes.startIndex + (Ring.size - start)
      page.storeBytes(bytes[..<split], at: Ring.Offset.response + start)
      page.storeBytes(bytes[split...], at: Ring.Offset.response)
    }
    // The data before the index (x86 keeps stores in order; the stores are volatile).
    page.store32(producer &+ UInt32(bytes.count), at: Ring.Offset.responseProducer)
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
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(available))
    page.appendBytes(at: Ring.Offset.request + start, count: first, to: &bytes)
    if first < Int(available) { page.appendBytes(at: Ring.Offset.request, count: Int(available) - first, to: &bytes) }
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
    Self.putResponse(bytes[...], page, at: producer)
    return true
  }
}
