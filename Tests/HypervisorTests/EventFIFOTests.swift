import Dispatch
import Synchronization
import Testing
import XenABI

@testable import Hypervisor

// The FIFO event ABI (Sources/Hypervisor/Events/EventFIFO.swift, docs/events.md "FIFO"):
// EVTCHNOP_init_control, expand_array and set_priority through the event_channel_op handler,
// and a guest that consumes its queues as Linux's drivers/xen/events/events_fifo.c does, on
// host pages standing for its RAM frames (FakeHypercallEnvironment.holdEventFrame).

private let argument: UInt64 = 0xFFFF_8880_0020_0000
private let EINVAL = -XenABI.Errno.EINVAL.rawValue
private let ENOENT = -XenABI.Errno.ENOENT.rawValue
private let ENOSPC = -XenABI.Errno.ENOSPC.rawValue
private let ENOSYS = -XenABI.Errno.ENOSYS.rawValue
private let EOPNOTSUPP = -XenABI.Errno.EOPNOTSUPP.rawValue
private let pending = XenABI.FIFO.pendingBit, masked = XenABI.FIFO.maskedBit
private let linked = XenABI.FIFO.linkedBit, busy = XenABI.FIFO.busyBit

/// One domain whose guest uses the FIFO ABI: control blocks at gfn 0x500 + vcpu, event array
/// pages at gfn 0x600 + index.
private final class FIFOGuest: @unchecked Sendable {
  let env: FakeHypercallEnvironment
  let platform: FakeEventPlatform
  var domain: Domain { env.domain }
  /// The guest's own queue heads (Linux's per-cpu `q->head`): where it left each queue.
  var heads: [[UInt32]]
  var arrayPages = 0

  static let controlGFN: UInt64 = 0x500
  static let arrayGFN: UInt64 = 0x600

  init(env: FakeHypercallEnvironment, platform: FakeEventPlatform) {
    self.env = env
    self.platform = platform
    heads = Array(repeating: Array(repeating: 0, count: 16), count: env.domain.vcpus.count)
    env.map(argument, count: 64)
    for gfn in UInt64(0x500)..<0x700 { env.populated.insert(gfn) }
  }

  /// Domains `ids` sharing one fake platform (their shared_info pages exist).
  static func make(_ ids: [UInt16], vcpus: Int = 2) -> [FIFOGuest] {
    let envs = ids.map { FakeHypercallEnvironment(domainID: $0, vcpuCount: vcpus) }
    let platform = FakeEventPlatform(envs.map(\.domain))
    return envs.map { FIFOGuest(env: $0, platform: platform) }
  }

  func call(_ op: XenABI.EventChannelOp, _ bytes: [UInt8]) -> (rc: Int64, out: [UInt8]) {
    env.store(bytes, at: argument)
    guard case .result(let rc) = eventChannelOp(command: UInt64(op.rawValue), argument: argument, env, platform: platform) else {
      Issue.record("not a result")
      return (Int64.min, [])
    }
    return (rc, env.load(argument, count: bytes.count)!)
  }

  func initControl(gfn: UInt64, offset: UInt32 = 0, vcpu: UInt32) -> (rc: Int64, linkBits: UInt8) {
    let out = call(.initControl, littleEndianBytes(gfn) + littleEndianBytes(offset) + littleEndianBytes(vcpu) + [UInt8](repeating: 0xEE, count: 8))
    return (out.rc, out.out[16])
  }
  func expandArray(gfn: UInt64) -> Int64 { call(.expandArray, littleEndianBytes(gfn)).rc }
  func setPriority(_ port: UInt32, _ priority: UInt32) -> Int64 {
    call(.setPriority, littleEndianBytes(port) + littleEndianBytes(priority)).rc
  }
  func bindIPI(vcpu: UInt32) -> UInt32 {
    let out = call(.bindIPI, littleEndianBytes(vcpu) + [0, 0, 0, 0])
    #expect(out.rc == 0)
    return out.out.littleEndian(UInt32.self, at: 4)!
  }
  func allocUnbound(remote: UInt16) -> (rc: Int64, port: UInt32) {
    let out = call(.allocUnbound, littleEndianBytes(XenABI.DomainID.selfDomain) + littleEndianBytes(remote) + [0, 0, 0, 0])
    return (out.rc, out.out.littleEndian(UInt32.self, at: 4)!)
  }
  func bindInterdomain(_ remote: UInt16, _ remotePort: UInt32) -> (rc: Int64, port: UInt32) {
    let out = call(.bindInterdomain, littleEndianBytes(remote) + [0, 0] + littleEndianBytes(remotePort) + [0, 0, 0, 0])
    return (out.rc, out.out.littleEndian(UInt32.self, at: 8)!)
  }
  func send(_ port: UInt32) -> Int64 { call(.send, littleEndianBytes(port)).rc }
  func close(_ port: UInt32) -> Int64 { call(.close, littleEndianBytes(port)).rc }
  func unmask(_ port: UInt32) -> Int64 { call(.unmask, littleEndianBytes(port)).rc }
  func bindVCPU(_ port: UInt32, vcpu: UInt32) -> Int64 { call(.bindVCPU, littleEndianBytes(port) + littleEndianBytes(vcpu)).rc }
  func reset() -> Int64 { call(.reset, littleEndianBytes(XenABI.DomainID.selfDomain)).rc }

  /// What Linux's evtchn_fifo_init does: a control block on each vcpu, then the first array
  /// page (left unmasked here: the tests mask the ports they want masked).
  func startFIFO(pages: Int = 1) {
    for vcpu in 0..<domain.vcpus.count {
      #expect(initControl(gfn: Self.controlGFN + UInt64(vcpu), vcpu: UInt32(vcpu)).rc == 0)
    }
    for _ in 0..<pages { addPage() }
  }

  func addPage() {
    let gfn = Self.arrayGFN + UInt64(arrayPages)
    #expect(expandArray(gfn: gfn) == 0)
    arrayPages += 1
  }

  // MARK: The guest's view of its pages

  func controlBlock(_ vcpu: Int) -> UInt64 { env.eventPage(Self.controlGFN + UInt64(vcpu)) }
  func word(_ port: UInt32) -> UInt64 {
    env.eventPage(Self.arrayGFN + UInt64(port / 1024)) + UInt64(port % 1024) * 4
  }
  func wordValue(_ port: UInt32) -> UInt32 { SharedWords.load32(at: word(port)) }
  func setWord(_ port: UInt32, _ value: UInt32) { SharedWords.store32(at: word(port), value) }
  func head(_ vcpu: Int, _ priority: Int) -> UInt32 { SharedWords.load32(at: controlBlock(vcpu) + 8 + UInt64(priority) * 4) }
  func ready(_ vcpu: Int) -> UInt32 { SharedWords.load32(at: controlBlock(vcpu)) }
  func mask(_ port: UInt32) { _ = SharedWords.testAndSet32(bit: Int(masked), at: word(port)) }
  func upcallPending(_ vcpu: Int) -> Bool { platform.upcallPending(domain.vcpus[vcpu]) }

  /// Linux's __evtchn_fifo_handle_events on `vcpu`: take READY, then consume one event at a
  /// time from the highest-priority ready queue (clear LINKED and LINK with a compare-exchange,
  /// follow LINK), handling (clearing PENDING of) each pending, unmasked port. Bounded, since
  /// a test may have corrupted the words.
  @discardableResult
  func handle(_ vcpu: Int, steps: Int = 10_000) -> [UInt32] {
    _ = SharedWords.exchangeByte(at: platform.vcpuInfo(of: domain.vcpus[vcpu])!, 0)
    let block = controlBlock(vcpu)
    // Only the 16 queues' bits count (Linux's find_first_bit over EVTCHN_FIFO_MAX_QUEUES).
    var ready = SharedWords.word32(block).pointee.exchange(0, ordering: .sequentiallyConsistent) & 0xFFFF
    var handled: [UInt32] = []
    var step = 0
    while ready != 0, step < steps {
      step += 1
      let priority = ready.trailingZeroBitCount
      var port = heads[vcpu][priority]
      if port == 0 { port = head(vcpu, priority) }
      guard port != 0, Int(port) < arrayPages * 1024 else {
        ready &= ~(1 << UInt32(priority))
        heads[vcpu][priority] = 0
        continue
      }
      let address = word(port)
      var seen = SharedWords.load32(at: address)
      while true {
        let cleared = seen & ~((1 << linked) | XenABI.FIFO.linkMask)
        let found = SharedWords.compareExchange32(at: address, expected: seen, desired: cleared)
        if found == seen { break }
        seen = found
      }
      let next = seen & XenABI.FIFO.linkMask
      if next == 0 { ready &= ~(1 << UInt32(priority)) }
      if seen & (1 << pending) != 0, seen & (1 << masked) == 0,
         SharedWords.testAndClear32(bit: Int(pending), at: address) {
        handled.append(port)
      }
      heads[vcpu][priority] = next
      ready |= SharedWords.word32(block).pointee.exchange(0, ordering: .sequentiallyConsistent) & 0xFFFF
    }
    return handled
  }
}

@Suite struct EventFIFOTests {
  // MARK: Validation of the three commands

  @Test func initControlValidatesAsXen() throws {
    let g = FIFOGuest.make([201], vcpus: 2)[0]
    #expect(g.initControl(gfn: 0x500, vcpu: 2).rc == ENOENT, "no such vcpu")
    #expect(g.initControl(gfn: 0x500, vcpu: UInt32.max).rc == ENOENT)
    #expect(g.initControl(gfn: 0x500, offset: 4096 - 72 + 8, vcpu: 0).rc == EINVAL, "the block would cross the page")
    #expect(g.initControl(gfn: 0x500, offset: UInt32.max, vcpu: 0).rc == EINVAL)
    #expect(g.initControl(gfn: 0x500, offset: 4, vcpu: 0).rc == EINVAL, "not 8-byte aligned")
    #expect(g.initControl(gfn: 0x9999, vcpu: 0).rc == EINVAL, "not the domain's RAM")
    #expect(g.initControl(gfn: 1 << 40, vcpu: 0).rc == EINVAL, "beyond guest frames")
    #expect(g.initControl(gfn: UInt64.max, vcpu: 0).rc == EINVAL)
    #expect(g.env.eventHoldCount == 0, "nothing held for a refused call")
    #expect(g.setPriority(5000, 3) == EINVAL, "a port beyond the table")
    #expect(g.bindIPI(vcpu: 0) == 1)
    #expect(g.setPriority(1, 3) == ENOSYS, "2-level has no priorities")

    let first = g.initControl(gfn: 0x500, offset: 4096 - 72, vcpu: 0)
    #expect(first.rc == 0)
    #expect(first.linkBits == 17, "EVTCHN_FIFO_LINK_BITS is copied back")
    #expect(g.initControl(gfn: 0x501, vcpu: 0).rc == EINVAL, "one control block per vcpu")
    #expect(g.env.eventHoldCount == 1, "the refused second block's frame is released")
    #expect(g.initControl(gfn: 0x500, offset: 0, vcpu: 1).rc == 0, "two vcpus may share a page")
    #expect(g.env.eventHoldCount == 2)
    #expect(g.domain.eventFrames.count == 2)
  }

  @Test func expandArrayValidatesAsXen() throws {
    let g = FIFOGuest.make([202])[0]
    #expect(g.expandArray(gfn: 0x600) == EOPNOTSUPP, "not before init_control")
    #expect(g.initControl(gfn: 0x500, vcpu: 0).rc == 0)
    #expect(g.expandArray(gfn: 0x9999) == EINVAL, "not the domain's RAM")
    #expect(g.expandArray(gfn: 1 << 52) == EINVAL)
    for page in 0..<XenABI.FIFO.maximumArrayPages {
      #expect(g.expandArray(gfn: 0x600 + UInt64(page)) == 0)
    }
    #expect(g.expandArray(gfn: 0x600) == ENOSPC, "131,072 ports at most")
    #expect(g.env.eventHoldCount == 1 + XenABI.FIFO.maximumArrayPages)
  }

  @Test func setPriorityValidatesAsXen() throws {
    let g = FIFOGuest.make([203])[0]
    g.startFIFO()
    let port = g.bindIPI(vcpu: 0)
    #expect(g.setPriority(port, 16) == EINVAL)
    #expect(g.setPriority(port, UInt32.max) == EINVAL)
    #expect(g.setPriority(port, 0) == 0)
    #expect(g.setPriority(port, 15) == 0)
    #expect(g.setPriority(5000, 1) == EINVAL, "beyond the table")
    #expect(DomainEvents.of(g.domain).fifo?.ports[Int(port)].priority == 15)
  }

  // MARK: Queueing

  @Test func deliveryFollowsPriorityThenArrival() throws {
    let g = FIFOGuest.make([204])[0]
    g.startFIFO()
    let ports = (0..<5).map { _ in g.bindIPI(vcpu: 0) }
    #expect(g.setPriority(ports[0], 9) == 0)
    #expect(g.setPriority(ports[1], 2) == 0)
    // ports[2] keeps the default, 7
    #expect(g.setPriority(ports[3], 2) == 0)
    #expect(g.setPriority(ports[4], 0) == 0)
    for port in ports { #expect(g.send(port) == 0) }
    #expect(g.upcallPending(0))
    #expect(g.platform.kickCount(g.domain.vcpus[0]) == 1, "one upcall for the lot")
    #expect(g.ready(0) == 1 << 0 | 1 << 2 | 1 << 7 | 1 << 9)
    #expect(g.head(0, 2) == ports[1])
    #expect(g.wordValue(ports[1]) & XenABI.FIFO.linkMask == ports[3], "the tail links to the next arrival")
    #expect(g.handle(0) == [ports[4], ports[1], ports[3], ports[2], ports[0]])
    #expect(g.ready(0) == 0)
    #expect(g.handle(0) == [])
  }

  @Test func aPendingPortIsQueuedOnce() throws {
    let g = FIFOGuest.make([205])[0]
    g.startFIFO()
    let port = g.bindIPI(vcpu: 1)
    #expect(g.send(port) == 0)
    #expect(g.send(port) == 0)
    #expect(g.ready(1) == 1 << 7)
    #expect(g.ready(0) == 0, "delivered to its notify vcpu")
    #expect(g.handle(1) == [port])
    #expect(g.send(port) == 0, "after the guest consumed it, it queues again")
    #expect(g.handle(1) == [port])
  }

  @Test func maskedPortWaitsForUnmask() throws {
    let g = FIFOGuest.make([206])[0]
    g.startFIFO()
    let port = g.bindIPI(vcpu: 0)
    g.mask(port)
    #expect(g.send(port) == 0)
    #expect(g.wordValue(port) == 1 << pending | 1 << masked, "pending, not linked")
    #expect(g.ready(0) == 0)
    #expect(!g.upcallPending(0))
    #expect(g.unmask(port) == 0)
    #expect(g.wordValue(port) & (1 << masked) == 0)
    #expect(g.handle(0) == [port])
  }

  @Test func closeClearsPendingAndBindVCPUMovesDelivery() throws {
    let g = FIFOGuest.make([207])[0]
    g.startFIFO()
    let unbound = g.allocUnbound(remote: 300).port
    g.mask(unbound)
    // Unbound ports drop sends; raise it as a bind would, through the hypervisor's notify.
    #expect(Events.notify(g.domain, port: unbound, using: g.platform))
    #expect(g.wordValue(unbound) & (1 << pending) != 0)
    #expect(g.close(unbound) == 0)
    #expect(g.wordValue(unbound) & (1 << pending) == 0, "a re-bound port starts quiet")

    let port = g.allocUnbound(remote: 300).port
    #expect(port == unbound)
    #expect(g.unmask(port) == 0, "the guest's mask outlives the binding; it unmasks on bind")
    #expect(g.bindVCPU(port, vcpu: 1) == 0)
    #expect(Events.notify(g.domain, port: port, using: g.platform))
    #expect(g.handle(0) == [])
    #expect(g.handle(1) == [port])
  }

  /// A port raised before its event word's page exists (or pending in shared_info when the
  /// domain switched) is raised once the page comes (Xen's evtchn->pending).
  @Test func pendingPortsCarryOverToFIFOAndToNewPages() throws {
    let g = FIFOGuest.make([208])[0]
    g.domain.maxEventChannels = 2047   // ports past the first array page (1024 words)
    let early = g.bindIPI(vcpu: 0)
    #expect(g.send(early) == 0)
    #expect(g.platform.isPending(g.domain, early), "pending in shared_info under 2-level")
    #expect(g.initControl(gfn: 0x500, vcpu: 0).rc == 0)
    #expect(g.initControl(gfn: 0x501, vcpu: 1).rc == 0)
    #expect(DomainEvents.of(g.domain).fifo?.ports[Int(early)].pendingWithoutWord == true)
    g.addPage()
    #expect(g.handle(0) == [early], "raised again when its word's page arrived")

    // Ports beyond the first page: allocated freely under FIFO, raised once the page exists.
    let events = DomainEvents.of(g.domain)
    var high: UInt32 = 0
    while high < 1030 { high = g.bindIPI(vcpu: 1) }
    #expect(g.send(high) == 0)
    #expect(g.ready(1) == 0, "no word yet")
    #expect(events.fifo?.ports[Int(high)].pendingWithoutWord == true)
    g.addPage()
    #expect(g.handle(1) == [high])
  }

  @Test func portTableFollowsTheABI() throws {
    let g = FIFOGuest.make([209], vcpus: 1)[0]
    g.domain.maxEventChannels = 131_072   // the most xl.cfg allows: the ABIs' own limits show
    var count = 0
    while g.allocUnbound(remote: 0).rc == 0 { count += 1 }
    #expect(count == XenABI.eventChannelCount2Level - 1, "2-level: ports 1…4095")
    #expect(g.initControl(gfn: 0x500, vcpu: 0).rc == 0)
    let next = g.allocUnbound(remote: 0)
    #expect(next.rc == 0)
    #expect(next.port == 4096, "FIFO: beyond 2-level's ports")
    #expect(DomainEvents.of(g.domain).abiPortCount == XenABI.FIFO.portCount)

    // Back to 2-level: the table keeps its size, but ports past 4095 have no bit in shared_info,
    // and nothing beyond the page is touched for them.
    #expect(g.reset() == 0)
    #expect(DomainEvents.of(g.domain).abiPortCount == XenABI.eventChannelCount2Level)
    #expect(g.unmask(4096) == 0, "a valid (free) port: nothing to deliver")
    #expect(g.unmask(4100) == 0)
    #expect(g.send(4096) == EINVAL)
    #expect(Events.notify(g.domain, port: 4096, using: g.platform) == false)
    #expect(g.call(.status, [0xF0, 0x7F, 0, 0] + littleEndianBytes(UInt32(4096)) + [UInt8](repeating: 0, count: 16)).rc == 0)
    var refill = 0
    while g.allocUnbound(remote: 0).rc == 0 { refill += 1 }
    #expect(refill == XenABI.eventChannelCount2Level - 1, "2-level's limit again")
  }

  /// A domain's ports stop at its `max_event_channels` (libxl's default 1023) under FIFO too,
  /// which could name 131,071: a guest grows the hypervisor's port table only so far.
  @Test func fifoPortsStopAtTheDomainsLimit() throws {
    let g = FIFOGuest.make([212], vcpus: 1)[0]
    #expect(g.domain.maxEventChannels == 1023)
    #expect(g.initControl(gfn: 0x500, vcpu: 0).rc == 0)
    var count = 0
    while g.allocUnbound(remote: 0).rc == 0 { count += 1 }
    #expect(count == 1023, "ports 1…1023")
    #expect(g.allocUnbound(remote: 0).rc == ENOSPC)
    #expect(DomainEvents.of(g.domain).channels.count == 1024, "the table grew no further")
  }

  @Test func resetReturnsToTwoLevelAndReleasesThePages() throws {
    let g = FIFOGuest.make([210])[0]
    g.startFIFO(pages: 2)
    #expect(g.env.eventHoldCount == 4)
    _ = g.bindIPI(vcpu: 0)
    #expect(g.reset() == 0)
    #expect(g.env.eventHoldCount == 0, "every hold dropped")
    #expect(g.domain.eventFrames.isEmpty)
    let port = g.bindIPI(vcpu: 0)
    #expect(g.setPriority(port, 1) == ENOSYS, "2-level again")
    #expect(g.send(port) == 0)
    #expect(g.platform.isPending(g.domain, port), "delivered in shared_info")
    #expect(g.initControl(gfn: 0x500, vcpu: 0).rc == 0, "and FIFO may start over")
  }

  @Test func destructionLeavesTheHoldsToTheMemoryTeardown() throws {
    let g = FIFOGuest.make([211])[0]
    g.startFIFO()
    Events.domainDestroyed(g.domain, using: g.platform)
    #expect(DomainEvents.existing(g.domain) == nil)
    #expect(g.domain.eventFrames.count == 3, "recorded for P2M.destroyWithHolds")
  }

  // MARK: Loopback

  @Test func loopbackUnderFIFO() throws {
    let g = FIFOGuest.make([212])[0]
    g.startFIFO()
    let unbound = g.allocUnbound(remote: XenABI.DomainID.selfDomain)
    #expect(unbound.rc == 0)
    let bound = g.bindInterdomain(XenABI.DomainID.selfDomain, unbound.port)
    #expect(bound.rc == 0)
    #expect(g.handle(0) == [bound.port], "a new interdomain port starts pending")
    #expect(g.setPriority(unbound.port, 1) == 0)
    #expect(g.send(bound.port) == 0)
    #expect(g.send(unbound.port) == 0)
    #expect(g.handle(0) == [unbound.port, bound.port], "each end notifies the other; priority 1 first")
    #expect(g.close(bound.port) == 0)
    #expect(g.send(unbound.port) == 0, "the surviving end is unbound: its sends are dropped")
    #expect(g.handle(0) == [])
  }

  // MARK: The link protocol against a hostile guest

  @Test func setLinkFollowsXensProtocol() throws {
    let g = FIFOGuest.make([213])[0]
    g.startFIFO()
    let w = g.word(5)
    g.setWord(5, 1 << pending)
    #expect(!FIFOEvents.setLink(w, to: 9), "an unlinked tail: the queue is empty")
    #expect(g.wordValue(5) == 1 << pending, "and it is left alone")
    g.setWord(5, 1 << pending | 1 << masked | 1 << linked | 1 << busy | 0x1FFFF)
    #expect(FIFOEvents.setLink(w, to: 9))
    #expect(g.wordValue(5) == 1 << pending | 1 << masked | 1 << linked | 9, "LINK replaced, BUSY cleared, the rest kept")
    g.setWord(5, 1 << linked | 5)
    #expect(FIFOEvents.setLink(w, to: 5), "a LINK at itself is just a value")
  }

  /// Random bits in event words, queue heads and READY between operations, LINKs at the port
  /// itself and beyond the array: the hypervisor neither traps nor loops, and once the guest
  /// cleans its pages, events flow again.
  @Test func hostileWordsCostOnlyTheGuestsOwnEvents() throws {
    let g = FIFOGuest.make([214])[0]
    g.startFIFO(pages: 2)
    var rng = SplitMix64(seed: 0xF1F0)
    var ports: [UInt32] = []
    for i in 0..<24 { ports.append(g.bindIPI(vcpu: UInt32(i % 2))) }
    for round in 0..<4000 {
      let port = ports[Int(rng.next() % UInt64(ports.count))]
      switch rng.next() % 9 {
      case 0, 1: _ = g.send(port)
      case 2: g.setWord(port, UInt32(truncatingIfNeeded: rng.next()))
      case 3: g.setWord(port, 1 << linked | (rng.next() % 2 == 0 ? port : XenABI.FIFO.linkMask))
      case 4: SharedWords.store32(at: g.controlBlock(Int(rng.next() % 2)) + 8 + (rng.next() % 16) * 4, UInt32(truncatingIfNeeded: rng.next()))
      case 5: SharedWords.store32(at: g.controlBlock(Int(rng.next() % 2)), UInt32(truncatingIfNeeded: rng.next()))
      case 6: g.handle(Int(rng.next() % 2), steps: 64)
      case 7: _ = g.unmask(port)
      default:
        _ = g.setPriority(port, UInt32(rng.next() % 20))
        if round % 5 == 0 { _ = g.bindVCPU(port, vcpu: UInt32(rng.next() % 3)) }
      }
    }
    // The guest starts clean: zeroed words and control blocks, its own heads forgotten.
    for page in 0..<2 {
      let base = g.env.eventPage(FIFOGuest.arrayGFN + UInt64(page))
      for i in 0..<1024 { SharedWords.store32(at: base + UInt64(i) * 4, 0) }
    }
    for vcpu in 0..<2 {
      for i in 0..<18 { SharedWords.store32(at: g.controlBlock(vcpu) + UInt64(i) * 4, 0) }
      g.heads[vcpu] = Array(repeating: 0, count: 16)
    }
    let probe = g.bindIPI(vcpu: 0)
    #expect(g.setPriority(probe, 3) == 0)
    #expect(g.send(probe) == 0)
    #expect(g.handle(0) == [probe])
  }

  /// The guest rewrites its event words as fast as it can (LINKED or not, any LINK) while the
  /// hypervisor links behind whichever is its queue's tail: every link attempt ends (at most
  /// five compare-exchanges), and every send returns.
  @Test func aGuestRacingOnTheWordsCannotHoldTheHypervisor() throws {
    let g = FIFOGuest.make([215])[0]
    g.startFIFO()
    let ports = (0..<9).map { _ in g.bindIPI(vcpu: 0) }
    let words = ports.map { g.word($0) }
    let stop = Atomic<Bool>(false)
    let sends = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: 2) { worker in
      if worker == 0 {
        var rng = SplitMix64(seed: 7)
        while !stop.load(ordering: .relaxed) {
          let value = UInt32(truncatingIfNeeded: rng.next())
          SharedWords.store32(at: words[Int(value % 9)], value)
        }
      } else {
        var rng = SplitMix64(seed: 8)
        for _ in 0..<5000 {
          #expect(g.send(ports[Int(rng.next() % 9)]) == 0)
          sends.add(1, ordering: .relaxed)
        }
        stop.store(true, ordering: .relaxed)
      }
    }
    #expect(sends.load(ordering: .relaxed) == 5000)
  }
}
