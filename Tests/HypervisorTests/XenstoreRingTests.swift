import Testing
import XenABI
import XenPublic

@testable import Hypervisor

/// A xenstore ring page in memory, with the guest's side of the protocol (what Linux's
/// xb_write / xb_read do) for the tests to drive.
final class XenstoreTestPage: SharedPage {
  typealias Ring = XenABI.XenstoreRing
  var bytes = [UInt8](repeating: 0, count: 4096)
  var loads = 0

  func load32(at offset: Int) -> UInt32 {
    loads += 1
    return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
  }
  func store32(_ value: UInt32, at offset: Int) {
    for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
  }
  func load8(at offset: Int) -> UInt8 { bytes[offset] }
  func store8(_ value: UInt8, at offset: Int) { bytes[offset] = value }

  var error: UInt32 { load32(at: Ring.Offset.error) }

  /// Puts as much of `message` into `req` as fits; returns how much.
  @discardableResult
  func send(_ message: [UInt8]) -> Int {
    let consumer = load32(at: Ring.Offset.requestConsumer)
    let producer = load32(at: Ring.Offset.requestProducer)
    let room = Ring.size - Int(producer &- consumer)
    let count = min(room, message.count)
    for i in 0..<count { bytes[Ring.Offset.request + Int((producer &+ UInt32(i)) % 1024)] = message[i] }
    store32(producer &+ UInt32(count), at: Ring.Offset.requestProducer)
    return count
  }

  /// Takes what `rsp` holds.
  func receive() -> [UInt8] {
    let consumer = load32(at: Ring.Offset.responseConsumer)
    let producer = load32(at: Ring.Offset.responseProducer)
    var out: [UInt8] = []
    for i in 0..<Int(producer &- consumer) { out.append(bytes[Ring.Offset.response + Int((consumer &+ UInt32(i)) % 1024)]) }
    store32(producer, at: Ring.Offset.responseConsumer)
    return out
  }

  /// Sets all four indices (a ring that has run a while, or a hostile guest).
  func setIndices(requests: UInt32, responses: UInt32) {
    store32(requests, at: Ring.Offset.requestConsumer)
    store32(requests, at: Ring.Offset.requestProducer)
    store32(responses, at: Ring.Offset.responseConsumer)
    store32(responses, at: Ring.Offset.responseProducer)
  }
}

/// Whole messages out of a byte stream.
func xsMessages(_ bytes: [UInt8]) -> [XenstoreMessage] {
  var reader = XenstoreMessageReader()
  var messages: [XenstoreMessage] = []
  var rest = bytes[...]
  while !rest.isEmpty {
    let (count, message) = reader.take(rest)
    if let message { messages.append(message) }
    if count == 0 { break }
    rest = rest.dropFirst(count)
  }
  return messages
}

func xsRequest(_ op: XenstoreOp, _ payload: [UInt8], id: UInt32 = 1, transaction: UInt32 = 0) -> [UInt8] {
  XenstoreMessage(op: op, requestID: id, transactionID: transaction, payload: payload).encoded()
}

func xsDomainInfo(_ domid: UInt32, name: String = "linux") -> XenstoreDomainInfo {
  XenstoreDomainInfo(
    domid: domid, name: xs(name), uuid: XenstoreDomainInfo.uuid(domid: domid, boot: 0x1234_5678_9ABC_DEF1),
    targetKiB: 262_144, staticMaxKiB: 524_288, vcpus: 2, maxVCPUs: 3, storePort: 2, storeRingGFN: 0xFEFFE,
    consolePort: 1, consoleRingGFN: 0xFEFFF)
}

@Suite struct XenstoreRingTests {
  @Test func theRingPageIsXensLayout() {
    // io/xs_wire.h: struct xenstore_domain_interface
    #expect(MemoryLayout<xenstore_domain_interface>.size == 2076)
    #expect(XenABI.XenstoreRing.Offset.response == 1024)
    #expect(XenABI.XenstoreRing.Offset.requestConsumer == 2048)
    // Consecutive: the fast read loads all four indices at once.
    #expect(XenABI.XenstoreRing.Offset.requestProducer == 2052)
    #expect(XenABI.XenstoreRing.Offset.responseConsumer == 2056)
    #expect(XenABI.XenstoreRing.Offset.responseProducer == 2060)
    #expect(XenABI.XenstoreRing.Offset.connection == 2068)
    #expect(XenABI.XenstoreRing.Offset.error == 2072)
  }

  @Test func aRequestThroughTheRingIsAnswered() {
    var service = XenstoreService()
    #expect(service.server.addDomain(xsDomainInfo(1)) == nil)
    let page = XenstoreTestPage()
    page.send(xsRequest(.read, xsPayload("name"), id: 42))
    #expect(service.service(page, domid: 1) == true)
    let replies = xsMessages(page.receive())
    #expect(replies.count == 1)
    #expect(replies.first?.op == .read)
    #expect(replies.first?.requestID == 42)
    #expect(replies.first?.payload == xs("linux"))
    #expect(page.error == 0)
    // Nothing new: nothing moves.
    #expect(service.service(page, domid: 1) == false)
  }

  @Test func indicesWrapAtTheRingAndAt2To32() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    for start in [UInt32(1000), UInt32.max - 5] {
      let page = XenstoreTestPage()
      page.setIndices(requests: start, responses: start)
      page.send(xsRequest(.read, xsPayload("domid")))
      #expect(service.service(page, domid: 1) == true)
      #expect(xsMessages(page.receive()).first?.payload == xs("1"))
      #expect(page.load32(at: XenABI.XenstoreRing.Offset.requestConsumer) == page.load32(at: XenABI.XenstoreRing.Offset.requestProducer))
    }
  }

  @Test func aMessageSentInPiecesIsHandledWhole() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    let page = XenstoreTestPage()
    let message = xsRequest(.write, xsPayload("data/a") + xs("value"))
    page.send(Array(message[..<7]))
    let early = service.service(page, domid: 1)
    #expect(!early || page.receive().isEmpty)
    page.send(Array(message[7...]))
    #expect(service.service(page, domid: 1) == true)
    #expect(xsMessages(page.receive()).first?.op == .write)
    #expect(service.server.toolstackRead(xs("/local/domain/1/data/a")) == xs("value"))
  }

  @Test func outputLargerThanTheRingWaitsForRoom() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    let page = XenstoreTestPage()
    // 40 nodes with long names: the listing is about 2.4 KiB, more than the ring holds.
    for i in 0..<40 { page.send(xsRequest(.mkdir, xsPayload("data/node-with-a-long-name-number-\(i)"), id: UInt32(i))); _ = service.service(page, domid: 1); _ = page.receive() }
    page.send(xsRequest(.directory, xsPayload("data"), id: 99))
    #expect(service.service(page, domid: 1) == true)
    var stream = page.receive()
    #expect(stream.count == 1024)
    while service.flushOutput(page, domid: 1) { stream += page.receive() }
    let replies = xsMessages(stream)
    #expect(replies.count == 1)
    #expect(replies.first?.requestID == 99)
    #expect(replies.first?.strings.count == 40)
  }

  @Test func anIndexMoreThanARingAheadStopsTheRing() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    let page = XenstoreTestPage()
    page.store32(2000, at: XenABI.XenstoreRing.Offset.requestProducer)
    #expect(service.service(page, domid: 1) == true)
    #expect(page.error == XenABI.XenstoreRing.Error.ringIndex.rawValue)
    #expect(service.stopped[1] == .ringIndex)
    // The guest clears the error and sends a good request: it is not served any more.
    page.store32(0, at: XenABI.XenstoreRing.Offset.error)
    page.setIndices(requests: 0, responses: 0)
    page.send(xsRequest(.read, xsPayload("name")))
    #expect(service.service(page, domid: 1) == false)
    #expect(page.receive().isEmpty)
    // A response consumer ahead of its producer is the same.
    var other = XenstoreService()
    other.server.addDomain(xsDomainInfo(1))
    let page2 = XenstoreTestPage()
    page2.store32(5, at: XenABI.XenstoreRing.Offset.responseConsumer)
    page2.send(xsRequest(.read, xsPayload("name")))
    _ = other.service(page2, domid: 1)
    #expect(other.stopped[1] == .ringIndex)
    #expect(page2.error == XenABI.XenstoreRing.Error.ringIndex.rawValue)
  }

  @Test func aResponseConsumerFarBehindStopsTheRingAndSaysSo() {
    // A guest that moves rsp_cons 3000 behind rsp_prod and sends a request: the reply finds
    // no sane room. The ring stops, and `error` says XENSTORE_ERROR_RINGIDX (it once stayed 0
    // when the reply's side found the bad index).
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    let page = XenstoreTestPage()
    page.setIndices(requests: 7, responses: 100)
    page.store32(100 &- 3000, at: XenABI.XenstoreRing.Offset.responseConsumer)
    page.send(xsRequest(.read, xsPayload("name")))
    #expect(service.service(page, domid: 1) == true)
    #expect(service.stopped[1] == .ringIndex)
    #expect(page.error == XenABI.XenstoreRing.Error.ringIndex.rawValue)
    #expect(page.load32(at: XenABI.XenstoreRing.Offset.responseProducer) == 100)
  }

  @Test func theErrorsHaveXsWireNames() {
    #expect(XenABI.XenstoreRing.Error.ringIndex.name == "XENSTORE_ERROR_RINGIDX")
    #expect(XenABI.XenstoreRing.Error.proto.name == "XENSTORE_ERROR_PROTO")
  }

  @Test func aHeaderAnnouncingMoreThanAPayloadStopsTheRing() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    service.server.addDomain(xsDomainInfo(2, name: "other"))
    let page = XenstoreTestPage()
    var header = xsRequest(.write, [])
    header[12] = 0xFF; header[13] = 0xFF   // len = 65535
    page.send(header)
    #expect(service.service(page, domid: 1) == true)
    #expect(page.error == XenABI.XenstoreRing.Error.proto.rawValue)
    // The other domain is served as before.
    let page2 = XenstoreTestPage()
    page2.send(xsRequest(.read, xsPayload("name")))
    #expect(service.service(page2, domid: 2) == true)
    #expect(xsMessages(page2.receive()).first?.payload == xs("other"))
  }

  @Test func theToolstacksNodesAreLibxlsWithItsPermissions() {
    var server = XenstoreServer()
    let info = xsDomainInfo(3, name: "web")
    #expect(server.addDomain(info) == nil)
    let home = "/local/domain/3"
    let uuid = String(decoding: info.uuid, as: UTF8.self)
    #expect(server.toolstackRead(xs("\(home)/name")) == xs("web"))
    #expect(server.toolstackRead(xs("\(home)/domid")) == xs("3"))
    #expect(server.toolstackRead(xs("\(home)/vm")) == xs("/vm/\(uuid)"))
    #expect(server.toolstackRead(xs("/vm/\(uuid)/uuid")) == info.uuid)
    #expect(server.toolstackRead(xs("\(home)/memory/target")) == xs("262144"))
    #expect(server.toolstackRead(xs("\(home)/memory/static-max")) == xs("524288"))
    #expect(server.toolstackRead(xs("\(home)/cpu/1/availability")) == xs("online"))
    #expect(server.toolstackRead(xs("\(home)/cpu/2/availability")) == xs("offline"))
    #expect(server.toolstackRead(xs("\(home)/store/port")) == xs("2"))
    #expect(server.toolstackRead(xs("\(home)/store/ring-ref")) == xs("\(0xFEFFE)"))
    #expect(server.toolstackRead(xs("\(home)/control/platform-feature-xs_reset_watches")) == xs("1"))
    let me = XenstoreCaller.domain(3)
    // Readable, relative names work; not writable where libxl keeps it read-only.
    #expect(server.errorOf(.read, xsPayload("name"), from: me) == nil)
    #expect(server.errorOf(.write, xsPayload("name") + xs("evil"), from: me) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("memory/target") + xs("1"), from: me) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("control/newnode") + xs("1"), from: me) == "EACCES")
    // Writable where Linux writes.
    #expect(server.errorOf(.write, xsPayload("control/feature-poweroff") + xs("1"), from: me) == nil)
    #expect(server.errorOf(.write, xsPayload("data/anything") + xs("1"), from: me) == nil)
    #expect(server.errorOf(.write, xsPayload("device/suspend/event-channel") + xs(""), from: me) == nil)
    // Another domain sees nothing of it.
    server.addDomain(xsDomainInfo(4, name: "other"))
    #expect(server.errorOf(.read, xsPayload("\(home)/name"), from: .domain(4)) == "EACCES")
    #expect(server.errorOf(.directory, xsPayload(home), from: .domain(4)) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("\(home)/data/x") + xs("1"), from: .domain(4)) == "EACCES")
  }

  @Test func aShutdownRequestFiresTheDomainsWatch() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    let page = XenstoreTestPage()
    page.send(xsRequest(.watch, xsPayload("control/shutdown", "tok"), id: 5))
    #expect(service.service(page, domid: 1) == true)
    let first = xsMessages(page.receive())
    #expect(first.map(\.op) == [.watch, .watchEvent])   // the reply, and the event at once
    #expect(service.server.requestShutdown(1, xs("poweroff")) == nil)
    #expect(service.flushOutput(page, domid: 1) == true)
    let events = xsMessages(page.receive())
    #expect(events.count == 1)
    #expect(events.first?.strings.map { String(decoding: $0, as: UTF8.self) } == ["control/shutdown", "tok"])
    // What Linux's shutdown_handler then does: read and clear it in a transaction.
    page.send(xsRequest(.transactionStart, [0], id: 6))
    _ = service.service(page, domid: 1)
    let started = xsMessages(page.receive())
    let tx = UInt32(String(decoding: started.first?.payload.dropLast() ?? [], as: UTF8.self)) ?? 0
    #expect(tx != 0)
    page.send(xsRequest(.read, xsPayload("control/shutdown"), id: 7, transaction: tx))
    page.send(xsRequest(.write, xsPayload("control/shutdown"), id: 8, transaction: tx))
    page.send(xsRequest(.transactionEnd, xsPayload("T"), id: 9, transaction: tx))
    _ = service.service(page, domid: 1)
    let replies = xsMessages(page.receive()).filter { $0.op != .watchEvent }
    #expect(replies.map(\.op) == [.read, .write, .transactionEnd])
    #expect(replies.first?.payload == xs("poweroff"))
    #expect(service.server.toolstackRead(xs("/local/domain/1/control/shutdown")) == [])
  }

  @Test func aRemovedDomainLeavesNothingAndItsWatchersHear() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    service.server.addDomain(xsDomainInfo(2, name: "watcher"))
    let page = XenstoreTestPage()
    page.send(xsRequest(.write, xsPayload("data/mine") + xs("x")))
    _ = service.service(page, domid: 1)
    let before = service.server.store.totalBytes
    service.server.removeDomain(1, uuid: xsDomainInfo(1).uuid)
    service.forget(1)
    #expect(service.server.toolstackRead(xs("/local/domain/1/name")) == nil)
    #expect(service.server.toolstackRead(xs("/vm/\(String(decoding: xsDomainInfo(1).uuid, as: UTF8.self))/name")) == nil)
    #expect(service.server.store.memory(of: 1) == 0)
    #expect(service.server.store.nodeCount(ownedBy: 1) == 0)
    #expect(service.server.store.totalBytes < before)
    // The same id again (a restart) starts afresh.
    #expect(service.server.addDomain(xsDomainInfo(1, name: "again")) == nil)
    #expect(service.server.toolstackRead(xs("/local/domain/1/data/mine")) == nil)
  }

  @Test func aHostileRingNeverTrapsOrServesPastItsBounds() {
    var random = SplitMix64(seed: 0x5EED)
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    service.server.addDomain(xsDomainInfo(2, name: "bystander"))
    for round in 0..<2000 {
      let page = XenstoreTestPage()
      for i in 0..<2076 { page.bytes[i] = UInt8(truncatingIfNeeded: random.next()) }
      if round % 2 == 0 {
        // Plausible indices, garbage bytes.
        let start = UInt32(truncatingIfNeeded: random.next())
        page.setIndices(requests: start, responses: start)
        page.store32(start &+ UInt32(random.next() % 1025), at: XenABI.XenstoreRing.Offset.requestProducer)
      }
      let loadsBefore = page.loads
      _ = service.service(page, domid: 1)
      _ = service.flushOutput(page, domid: 1)
      // Each pass loads four indices; a call makes at most a few passes.
      #expect(page.loads - loadsBefore <= 4 * XenstoreService.passesPerCall + 4)
      service.forget(1)
    }
    let page = XenstoreTestPage()
    page.send(xsRequest(.read, xsPayload("name")))
    #expect(service.service(page, domid: 2) == true)
    #expect(xsMessages(page.receive()).first?.payload == xs("bystander"))
    #expect(service.server.store.totalBytes <= XenstoreLimits.xenDefaults.totalBytes)
  }

  /// The lone-read fast path (`answerLoneRead`) must answer exactly as the general path:
  /// every read here is also handed to `handle` directly, and the ring's reply must be that.
  @Test func aLoneReadIsAnsweredAsTheGeneralPathAnswersIt() {
    var random = SplitMix64(seed: 0xFA57)
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    service.server.addDomain(xsDomainInfo(2, name: "other"))
    // The longest names a lone request in the ring can carry (1,007 bytes), relative and
    // absolute, and a NUL inside a name.
    let long = String(repeating: "a", count: 1007)
    let names = ["name", "domid", "/local/domain/1/name", "/local/domain/2/name", "missing", "/local/domain/1",
                 "data//x", "data/", "/", "@releaseDomain", "", "bad char", "/vm", "memory/target",
                 long, "/" + long.dropFirst(), "data/" + long.dropFirst(100), "na\u{0}me", "/local/domain/123456/x"]
    for round in 0..<400 {
      let page = XenstoreTestPage()
      let start: UInt32 = round % 3 == 0 ? UInt32.max - UInt32(random.next() % 40) : UInt32(truncatingIfNeeded: random.next() % 5000)
      // A response ring with 0, 400 or 1010 bytes the guest has not taken: at 1010 no reply fits.
      let used = [UInt32(0), 400, 1010][Int(random.next() % 3)]
      page.setIndices(requests: start, responses: start)
      page.store32(start &+ used, at: XenABI.XenstoreRing.Offset.responseProducer)
      let name = names[Int(random.next() % UInt64(names.count))]
      let transaction: UInt32 = random.next() % 8 == 0 ? 7 : 0
      let request = XenstoreMessage(op: .read, requestID: UInt32(round), transactionID: transaction, payload: xsPayload(name))
      var general = service.server
      let expected = general.handle(request, from: service.server.caller(1)).encoded()
      page.send(request.encoded())
      var replied: [UInt8] = []
      var from = page.load32(at: XenABI.XenstoreRing.Offset.responseProducer)
      #expect(service.service(page, domid: 1) == true)
      for _ in 0..<4 {
        let to = page.load32(at: XenABI.XenstoreRing.Offset.responseProducer)
        for i in 0..<Int(to &- from) { replied.append(page.bytes[XenABI.XenstoreRing.Offset.response + Int((from &+ UInt32(i)) % 1024)]) }
        page.store32(to, at: XenABI.XenstoreRing.Offset.responseConsumer)    // the guest takes all
        from = to
        _ = service.flushOutput(page, domid: 1)
      }
      #expect(replied == expected, "read of \(name) in transaction \(transaction), \(used) bytes in rsp")
      #expect(page.load32(at: XenABI.XenstoreRing.Offset.requestConsumer) == page.load32(at: XenABI.XenstoreRing.Offset.requestProducer))
    }
  }

  /// Every name is copied after the connection's home prefix, and an absolute name is looked
  /// up from where it starts: a relative read after an absolute one (answered, refused or
  /// missing) still finds its node by the fast path, with the prefix intact.
  @Test func theFastReadAnswersRelativeNamesAfterAbsoluteOnes() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    service.server.addDomain(xsDomainInfo(2, name: "other"))
    let page = XenstoreTestPage()
    page.setIndices(requests: 0, responses: 0)
    let reads: [(name: String, fast: Bool, value: String?)] = [
      ("name", true, "linux"), ("/local/domain/1/name", true, "linux"), ("name", true, "linux"),
      ("/x", false, nil), ("name", true, "linux"), ("/local/domain/2/name", false, nil), ("domid", true, "1"),
      ("@releaseDomain", false, nil), ("/local/domain/1/domid", true, "1"), ("name", true, "linux"),
    ]
    for (id, read) in reads.enumerated() {
      page.send(xsRequest(.read, xsPayload(read.name), id: UInt32(id)))
      _ = service.service(page, domid: 1)
      #expect(service.answeredLoneRead == read.fast, "\(read.name)")
      let reply = xsMessages(page.receive())
      #expect(reply.count == 1 && reply.first?.requestID == UInt32(id), "\(read.name)")
      if let value = read.value {
        #expect(reply.first?.op == .read && reply.first?.payload == xs(value), "\(read.name)")
      } else {
        #expect(reply.first?.op == .error, "\(read.name)")
      }
    }
  }

  /// A read behind something already queued for the domain (here a watch's first event) must
  /// not overtake it.
  @Test func aLoneReadWaitsBehindWhatIsQueued() {
    var service = XenstoreService()
    service.server.addDomain(xsDomainInfo(1))
    let page = XenstoreTestPage()
    page.setIndices(requests: 0, responses: 0)
    page.store32(1024, at: XenABI.XenstoreRing.Offset.responseProducer)    // rsp full: the event waits
    page.send(xsRequest(.watch, xsPayload("data") + xsPayload("t"), id: 1))
    _ = service.service(page, domid: 1)
    #expect(service.server.queuedCount(for: 1) > 0)
    page.send(xsRequest(.read, xsPayload("name"), id: 2))
    _ = service.service(page, domid: 1)
    page.store32(1024, at: XenABI.XenstoreRing.Offset.responseConsumer)    // the guest takes the full ring
    _ = service.flushOutput(page, domid: 1)
    _ = service.service(page, domid: 1)
    let messages = xsMessages(page.receive())
    #expect(messages.map(\.op) == [.watch, .watchEvent, .read])
    #expect(messages.last?.payload == xs("linux"))
  }

  @Test func uuidsAreVersion4TextAndTheHandleIsTheirBytes() {
    let text = XenstoreDomainInfo.uuid(domid: 7, boot: 0x0123_4567_89AB_CDEF)
    #expect(text.count == 36)
    #expect(text[8] == UInt8(ascii: "-") && text[13] == UInt8(ascii: "-") && text[18] == UInt8(ascii: "-") && text[23] == UInt8(ascii: "-"))
    #expect(text[14] == UInt8(ascii: "4"))
    #expect(XenstoreDomainInfo.uuid(domid: 8, boot: 0x0123_4567_89AB_CDEF) != text)
    let domain = Domain(id: 7, name: xs("d"), memoryBytes: 1 << 20)
    #expect(domain.handle == [UInt8](repeating: 0, count: 16))
    domain.uuid = text
    #expect(domain.handle.count == 16)
    #expect(domain.handle[6] >> 4 == 4)
  }
}
