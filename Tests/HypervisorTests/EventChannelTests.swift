import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import XenABI

@testable import Hypervisor

// Event channels (Sources/Hypervisor/Events, docs/events.md) driven through the
// event_channel_op handler with a FakeHypercallEnvironment per domain for guest memory and a
// FakeEventPlatform for the shared_info pages, with real atomics so several threads can race
// on the same words as pcpus and a guest would.

// MARK: - Fakes and helpers

/// Shared_info pages in host memory, one page per domain, which the event code changes with
/// `SharedWords`' real atomics so several threads can race on the same words as pcpus and a
/// guest would, plus a record of every kick. The pages exist from the start (as if every guest
/// had mapped shared_info), unless a domain is listed in `unmapped`.
final class FakeEventPlatform: EventPlatform, @unchecked Sendable {
  private let pages: [UInt16: UnsafeMutableRawPointer]
  private let domains: [Domain]
  private let kickLock = SpinLock()
  private var kicks: [Int: Int] = [:]

  init(_ domains: [Domain], unmapped: Set<UInt16> = []) {
    self.domains = domains
    var pages: [UInt16: UnsafeMutableRawPointer] = [:]
    for domain in domains where !unmapped.contains(domain.id) {
      let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
      page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
      pages[domain.id] = page
      domain.sharedInfoMachine = UInt64(UInt(bitPattern: page))     // the event code finds it there
    }
    self.pages = pages
  }

  deinit {
    for page in pages.values { page.deallocate() }
  }

  // Where the event code finds the pages.
  func sharedInfo(of domain: Domain) -> UInt64? { Events.sharedInfo(of: domain) }
  func vcpuInfo(of vcpu: VCPU) -> UInt64? { Events.vcpuInfo(of: vcpu) }
  // What the guest does to the same words, as the hypervisor does it.
  func testAndSetBit(_ bit: Int, at address: UInt64) -> Bool { SharedWords.testAndSet(bit: bit, at: address) }
  func testAndClearBit(_ bit: Int, at address: UInt64) -> Bool { SharedWords.testAndClear(bit: bit, at: address) }
  func load(at address: UInt64) -> UInt64 { SharedWords.load(at: address) }
  func testBit(_ bit: Int, at address: UInt64) -> Bool { SharedWords.test(bit: bit, at: address) }
  func exchangeByte(at address: UInt64, _ value: UInt8) -> UInt8 { SharedWords.exchangeByte(at: address, value) }
  func kick(_ vcpu: VCPU) {
    let key = Int(unsafe vcpu.domain.id) << 16 | vcpu.id
    kickLock.withLock { kicks[key, default: 0] += 1 }
  }
  func domain(id: UInt16) -> Domain? { domains.first { $0.id == id } }

  // What the guest sees and does.
  func kickCount(_ vcpu: VCPU) -> Int {
    kickLock.withLock { kicks[Int(unsafe vcpu.domain.id) << 16 | vcpu.id, default: 0] }
  }
  func totalKicks() -> Int { kickLock.withLock { kicks.values.reduce(0, +) } }
  private func base(_ domain: Domain) -> UInt64 { sharedInfo(of: domain)! }
  func isPending(_ domain: Domain, _ port: UInt32) -> Bool {
    testBit(Int(port % 64), at: Events.pendingWord(base(domain), port))
  }
  func isMasked(_ domain: Domain, _ port: UInt32) -> Bool {
    testBit(Int(port % 64), at: Events.maskWord(base(domain), port))
  }
  /// The guest masks a port (`sync_set_bit` on evtchn_mask).
  func mask(_ domain: Domain, _ port: UInt32) {
    _ = testAndSetBit(Int(port % 64), at: Events.maskWord(base(domain), port))
  }
  func selector(_ vcpu: VCPU) -> UInt64 {
    load(at: vcpuInfo(of: vcpu)! + UInt64(XenABI.VCPUInfo.Offset.pendingSelector))
  }
  func upcallPending(_ vcpu: VCPU) -> Bool {
    load(at: vcpuInfo(of: vcpu)!) & 0xFF != 0
  }
  /// The guest's upcall handler (Linux's __xen_evtchn_do_upcall for 2-level): clear
  /// upcall_pending, take the selector, and for each word take its pending, unmasked bits.
  /// Returns the ports it handled.
  @discardableResult
  func guestHandle(_ vcpu: VCPU) -> [UInt32] {
    let info = vcpuInfo(of: vcpu)!
    let domain = unsafe vcpu.domain
    _ = exchangeByte(at: info, 0)
    let selectorWord = SharedWords.word(info + UInt64(XenABI.VCPUInfo.Offset.pendingSelector))
    let selector = selectorWord.pointee.exchange(0, ordering: .sequentiallyConsistent)
    var handled: [UInt32] = []
    for index in 0..<64 where selector & (1 << UInt64(index)) != 0 {
      let pending = load(at: base(domain) + UInt64(XenABI.SharedInfo.Offset.evtchnPending) + UInt64(index) * 8)
      let masked = load(at: base(domain) + UInt64(XenABI.SharedInfo.Offset.evtchnMask) + UInt64(index) * 8)
      var bits = pending & ~masked
      while bits != 0 {
        let bit = bits.trailingZeroBitCount
        bits &= bits - 1
        let port = UInt32(index * 64 + bit)
        if testAndClearBit(bit, at: Events.pendingWord(base(domain), port)) { handled.append(port) }
      }
    }
    return handled
  }

  /// The same handler as a 32-bit guest runs it, on the compat words.
  @discardableResult
  func guestHandleCompat(_ vcpu: VCPU) -> [UInt32] {
    typealias Compat = XenABI.Compat
    let info = vcpuInfo(of: vcpu)!
    let page = base(unsafe vcpu.domain)
    _ = exchangeByte(at: info, 0)
    let selector = SharedWords.word32(info + UInt64(Compat.VCPUInfo.Offset.pendingSelector)).pointee.exchange(0, ordering: .sequentiallyConsistent)
    var handled: [UInt32] = []
    for index in 0..<32 where selector & (1 << UInt32(index)) != 0 {
      let pendingWord = page + UInt64(Compat.SharedInfo.Offset.evtchnPending) + UInt64(index) * 4
      let masked = SharedWords.load32(at: page + UInt64(Compat.SharedInfo.Offset.evtchnMask) + UInt64(index) * 4)
      var bits = SharedWords.load32(at: pendingWord) & ~masked
      while bits != 0 {
        let bit = bits.trailingZeroBitCount
        bits &= bits - 1
        if SharedWords.testAndClear32(bit: bit, at: pendingWord) { handled.append(UInt32(index * 32 + bit)) }
      }
    }
    return handled
  }
}

private let argument: UInt64 = 0xFFFF_8880_0010_0000
private let selfID = XenABI.DomainID.selfDomain

/// One domain as its guest kernel sees event_channel_op.
private struct Guest {
  let env: FakeHypercallEnvironment
  let platform: FakeEventPlatform
  var domain: Domain { env.domain }
  var vcpu0: VCPU { env.domain.vcpus[0] }
  var vcpu1: VCPU { env.domain.vcpus[1] }

  /// Runs one command with `bytes` as its argument; returns RAX and the argument afterwards.
  func call(_ op: UInt32, _ bytes: [UInt8]) -> (rc: Int64, out: [UInt8]) {
    env.store(bytes, at: argument)
    let outcome = eventChannelOp(command: UInt64(op), argument: argument, env, platform: platform)
    guard case .result(let value) = outcome else { Issue.record("not a result"); return (Int64.min, []) }
    return (value, env.load(argument, count: bytes.count)!)
  }
  func call(_ op: XenABI.EventChannelOp, _ bytes: [UInt8]) -> (rc: Int64, out: [UInt8]) { call(op.rawValue, bytes) }

  private func port(_ result: (rc: Int64, out: [UInt8]), at offset: Int) -> (rc: Int64, port: UInt32) {
    (result.rc, result.out.littleEndian(UInt32.self, at: offset) ?? 0)
  }

  func allocUnbound(remote: UInt16, dom: UInt16 = selfID) -> (rc: Int64, port: UInt32) {
    port(call(.allocUnbound, littleEndianBytes(dom) + littleEndianBytes(remote) + [0, 0, 0, 0]), at: 4)
  }
  func bindInterdomain(_ remote: UInt16, _ remotePort: UInt32) -> (rc: Int64, port: UInt32) {
    port(call(.bindInterdomain, littleEndianBytes(remote) + [0, 0] + littleEndianBytes(remotePort) + [0, 0, 0, 0]), at: 8)
  }
  func bindVIRQ(_ virq: UInt32, vcpu: UInt32) -> (rc: Int64, port: UInt32) {
    port(call(.bindVIRQ, littleEndianBytes(virq) + littleEndianBytes(vcpu) + [0, 0, 0, 0]), at: 8)
  }
  func bindIPI(vcpu: UInt32) -> (rc: Int64, port: UInt32) {
    port(call(.bindIPI, littleEndianBytes(vcpu) + [0, 0, 0, 0]), at: 4)
  }
  func close(_ port: UInt32) -> Int64 { call(.close, littleEndianBytes(port)).rc }
  func send(_ port: UInt32) -> Int64 { call(.send, littleEndianBytes(port)).rc }
  func unmask(_ port: UInt32) -> Int64 { call(.unmask, littleEndianBytes(port)).rc }
  func bindVCPU(_ port: UInt32, vcpu: UInt32) -> Int64 {
    call(.bindVCPU, littleEndianBytes(port) + littleEndianBytes(vcpu)).rc
  }
  func reset(dom: UInt16 = selfID) -> Int64 { call(.reset, littleEndianBytes(dom)).rc }

  struct Status: Equatable {
    var rc: Int64
    var status: UInt32 = 0
    var vcpu: UInt32 = 0
    var dom: UInt16 = 0
    var value: UInt32 = 0
  }
  /// EVTCHNOP_status, with the union pre-filled with zeros.
  func status(_ port: UInt32, dom: UInt16 = selfID) -> Status {
    var bytes = littleEndianBytes(dom) + [0, 0] + littleEndianBytes(port)
    bytes += [UInt8](repeating: 0, count: 16)
    let (rc, out) = call(.status, bytes)
    guard rc == 0 else { return Status(rc: rc) }
    return Status(
      rc: rc, status: out.littleEndian(UInt32.self, at: 8)!, vcpu: out.littleEndian(UInt32.self, at: 12)!,
      dom: out.littleEndian(UInt16.self, at: 16)!, value: out.littleEndian(UInt32.self, at: 20)!)
  }
}

private let EINVAL = -XenABI.Errno.EINVAL.rawValue
private let EEXIST = -XenABI.Errno.EEXIST.rawValue
private let ENOSPC = -XenABI.Errno.ENOSPC.rawValue
private let ESRCH = -XenABI.Errno.ESRCH.rawValue
private let EPERM = -XenABI.Errno.EPERM.rawValue
private let ENOENT = -XenABI.Errno.ENOENT.rawValue
private let ENOSYS = -XenABI.Errno.ENOSYS.rawValue
private let EFAULT = -XenABI.Errno.EFAULT.rawValue

private func statusValue(_ status: XenABI.EventChannelStatus) -> UInt32 { status.rawValue }

/// Domains `ids` (2 vcpus each) sharing one fake platform.
private func guests(_ ids: [UInt16], vcpus: Int = 2, unmapped: Set<UInt16> = []) -> [Guest] {
  let envs = ids.map { FakeHypercallEnvironment(domainID: $0, vcpuCount: vcpus) }
  for env in envs { env.map(argument, count: 64) }
  let platform = FakeEventPlatform(envs.map(\.domain), unmapped: unmapped)
  return envs.map { Guest(env: $0, platform: platform) }
}

/// Two domains connected by an interdomain channel: (a, b, a's port, b's port), b's bind
/// notification already handled.
private func connected(_ ids: (UInt16, UInt16) = (11, 12)) throws -> (Guest, Guest, UInt32, UInt32) {
  let g = guests([ids.0, ids.1])
  let (a, b) = (g[0], g[1])
  let alloc = a.allocUnbound(remote: ids.1)
  try #require(alloc.rc == 0)
  let bind = b.bindInterdomain(ids.0, alloc.port)
  try #require(bind.rc == 0)
  b.platform.guestHandle(b.vcpu0)
  return (a, b, alloc.port, bind.port)
}

// MARK: - Tests

@Suite struct EventChannelTests {
  /// SCHEDOP_poll's wake-up belongs to that poll: once the poll is over, nothing of it may end a
  /// later block (an idle HLT) at once.
  @Test func aPollWakeEndsWithItsPoll() throws {
    let (a, b, aPort, bPort) = try connected((41, 42))
    #expect(!Events.startPoll(b.vcpu0, ports: [bPort], using: b.platform), "nothing pending yet: block")
    #expect(a.send(aPort) == 0)
    let woken = b.vcpu0.pollWake.load(ordering: .acquiring)
    #expect(woken, "the send wakes the poller")
    #expect(b.platform.kickCount(b.vcpu0) >= 1)
    Events.endPoll(b.vcpu0)
    let stillWoken = b.vcpu0.pollWake.load(ordering: .acquiring)
    #expect(!stillWoken, "the wake-up ends with the poll")
    #expect(b.vcpu0.pollPorts.isEmpty)
  }

  @Test func interdomainChannelConnectsTwoDomains() throws {
    let g = guests([21, 22])
    let (a, b) = (g[0], g[1])
    let alloc = a.allocUnbound(remote: 22)
    #expect(alloc.rc == 0)
    #expect(alloc.port == 1, "port 0 is reserved; the first port is 1")
    #expect(a.status(alloc.port) == .init(rc: 0, status: statusValue(.unbound), vcpu: 0, dom: 22))

    let bind = b.bindInterdomain(21, alloc.port)
    #expect(bind.rc == 0)
    #expect(bind.port == 1)
    #expect(a.status(alloc.port) == .init(rc: 0, status: statusValue(.interdomain), vcpu: 0, dom: 22, value: bind.port))
    #expect(b.status(bind.port) == .init(rc: 0, status: statusValue(.interdomain), vcpu: 0, dom: 21, value: alloc.port))
    // Xen sets the new local port pending: an event sent on the unbound end is not lost.
    #expect(b.platform.isPending(b.domain, bind.port))
    #expect(b.platform.kickCount(b.vcpu0) == 1)
    #expect(b.platform.guestHandle(b.vcpu0) == [bind.port])

    // The remote end must be unbound and waiting for the binder.
    let other = a.allocUnbound(remote: 99)
    #expect(b.bindInterdomain(21, other.port).rc == EINVAL)
    #expect(b.bindInterdomain(21, alloc.port).rc == EINVAL, "already connected")
    #expect(b.bindInterdomain(99, 1).rc == ESRCH)
    #expect(b.bindInterdomain(21, 4000).rc == EINVAL)
  }

  @Test func sendRaisesPendingSelectorUpcallAndKicksOnce() throws {
    let (a, b, portA, portB) = try connected((31, 32))
    let kicks = b.platform.kickCount(b.vcpu0)
    #expect(!b.platform.upcallPending(b.vcpu0))

    #expect(a.send(portA) == 0)
    #expect(b.platform.isPending(b.domain, portB))
    #expect(b.platform.selector(b.vcpu0) == 1 << UInt64(portB / 64))
    #expect(b.platform.upcallPending(b.vcpu0))
    #expect(b.platform.kickCount(b.vcpu0) == kicks + 1)
    #expect(!a.platform.isPending(a.domain, portA), "the sender's own port is untouched")

    // Still pending: no second kick, nothing changes.
    #expect(a.send(portA) == 0)
    #expect(b.platform.kickCount(b.vcpu0) == kicks + 1)

    // The guest handles it; the next send kicks again.
    #expect(b.platform.guestHandle(b.vcpu0) == [portB])
    #expect(a.send(portA) == 0)
    #expect(b.platform.kickCount(b.vcpu0) == kicks + 2)

    // The other direction.
    #expect(b.send(portB) == 0)
    #expect(a.platform.isPending(a.domain, portA))
    #expect(a.platform.kickCount(a.vcpu0) == 1)
  }

  @Test func upcallAlreadyPendingDoesNotKickAgain() throws {
    let g = guests([35])
    let a = g[0]
    let p1 = a.bindIPI(vcpu: 0).port
    let p2 = a.bindIPI(vcpu: 0).port
    let far = (0..<70).map { _ in a.bindIPI(vcpu: 0).port }.last!   // a port in word 1
    #expect(a.send(p1) == 0)
    #expect(a.send(p2) == 0)       // same word: the selector bit is already set
    #expect(a.send(far) == 0)      // new word: selector set, but upcall_pending already 1
    #expect(a.platform.selector(a.vcpu0) == 0b11)
    #expect(a.platform.kickCount(a.vcpu0) == 1)
    #expect(Set(a.platform.guestHandle(a.vcpu0)) == [p1, p2, far])
  }

  @Test func maskedPortStaysSilentUntilUnmask() throws {
    let (a, b, portA, portB) = try connected((41, 42))
    let kicks = b.platform.kickCount(b.vcpu0)
    b.platform.mask(b.domain, portB)

    #expect(a.send(portA) == 0)
    #expect(b.platform.isPending(b.domain, portB), "a masked port still becomes pending")
    #expect(b.platform.selector(b.vcpu0) == 0)
    #expect(!b.platform.upcallPending(b.vcpu0))
    #expect(b.platform.kickCount(b.vcpu0) == kicks)

    #expect(b.unmask(portB) == 0)
    #expect(!b.platform.isMasked(b.domain, portB))
    #expect(b.platform.selector(b.vcpu0) == 1 << UInt64(portB / 64))
    #expect(b.platform.upcallPending(b.vcpu0))
    #expect(b.platform.kickCount(b.vcpu0) == kicks + 1)

    // Unmasking an unmasked port does nothing more.
    #expect(b.unmask(portB) == 0)
    #expect(b.platform.kickCount(b.vcpu0) == kicks + 1)
    #expect(b.platform.guestHandle(b.vcpu0) == [portB])

    // Unmasking a masked port that is not pending only clears the mask.
    b.platform.mask(b.domain, portB)
    #expect(b.unmask(portB) == 0)
    #expect(!b.platform.upcallPending(b.vcpu0))
    #expect(b.platform.kickCount(b.vcpu0) == kicks + 1)
  }

  @Test func closeReturnsThePeerToUnbound() throws {
    let (a, b, portA, portB) = try connected((51, 52))
    #expect(a.close(portA) == 0)
    #expect(a.status(portA) == .init(rc: 0, status: statusValue(.closed)))
    #expect(b.status(portB) == .init(rc: 0, status: statusValue(.unbound), vcpu: 0, dom: 51))
    #expect(a.close(portA) == EINVAL, "closing twice")
    #expect(a.send(portA) == EINVAL, "sending on a free port")

    // The survivor's sends are dropped silently.
    let kicks = a.platform.totalKicks()
    #expect(b.send(portB) == 0)
    #expect(a.platform.totalKicks() == kicks)

    // The survivor waits for the same domain, which can bind again.
    let again = a.bindInterdomain(52, portB)
    #expect(again.rc == 0)
    #expect(b.status(portB).status == statusValue(.interdomain))

    // Closing from the other side works the same.
    #expect(b.close(portB) == 0)
    #expect(a.status(again.port) == .init(rc: 0, status: statusValue(.unbound), vcpu: 0, dom: 52))
  }

  @Test func closeClearsThePendingBit() throws {
    let g = guests([55])
    let a = g[0]
    let port = a.bindIPI(vcpu: 0).port
    #expect(a.send(port) == 0)
    #expect(a.platform.isPending(a.domain, port))
    #expect(a.close(port) == 0)
    #expect(!a.platform.isPending(a.domain, port), "a re-bound port must not start pending")
  }

  @Test func loopbackChannelWithinOneDomain() throws {
    let g = guests([57])
    let a = g[0]
    let unbound = a.allocUnbound(remote: selfID)
    #expect(a.status(unbound.port).dom == 57, "DOMID_SELF is recorded as the caller's id")
    let bound = a.bindInterdomain(selfID, unbound.port)
    #expect(bound.rc == 0)
    a.platform.guestHandle(a.vcpu0)
    #expect(a.send(bound.port) == 0)
    #expect(a.platform.guestHandle(a.vcpu0) == [unbound.port])
    #expect(a.close(unbound.port) == 0)
    #expect(a.status(bound.port) == .init(rc: 0, status: statusValue(.unbound), vcpu: 0, dom: 57))
  }

  /// A domain may connect two of its own ports naming itself by its id, not only DOMID_SELF,
  /// as Xen allows (evtchn_bind_interdomain looks the remote domain up by id either way).
  @Test func loopbackChannelByTheDomainsOwnID() throws {
    let g = guests([58])
    let a = g[0]
    let unbound = a.allocUnbound(remote: 58)
    #expect(unbound.rc == 0)
    let bound = a.bindInterdomain(58, unbound.port)
    #expect(bound.rc == 0)
    a.platform.guestHandle(a.vcpu0)
    #expect(a.send(unbound.port) == 0)
    #expect(a.platform.guestHandle(a.vcpu0) == [bound.port])
  }

  @Test func virqBindingAndRaising() throws {
    let g = guests([61])
    let a = g[0]
    let timer0 = a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 0)
    #expect(timer0.rc == 0)
    #expect(a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 0).rc == EEXIST)
    let timer1 = a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 1)
    #expect(timer1.rc == 0)
    #expect(timer1.port != timer0.port)
    #expect(a.bindVIRQ(XenABI.VIRQ.console.rawValue, vcpu: 1).rc == EINVAL, "global VIRQs bind on vcpu 0")
    #expect(a.bindVIRQ(XenABI.VIRQ.count, vcpu: 0).rc == EINVAL)
    #expect(a.bindVIRQ(XenABI.VIRQ.debug.rawValue, vcpu: 7).rc == ENOENT)
    #expect(a.status(timer1.port) == .init(rc: 0, status: statusValue(.virq), vcpu: 1, dom: 0, value: 0))

    // VIRQ_TIMER on vcpu 1 goes to vcpu 1's port and vcpu 1 only.
    Events.raiseVIRQ(.timer, vcpu: a.vcpu1, using: a.platform)
    #expect(a.platform.isPending(a.domain, timer1.port))
    #expect(!a.platform.isPending(a.domain, timer0.port))
    #expect(a.platform.kickCount(a.vcpu1) == 1)
    #expect(a.platform.kickCount(a.vcpu0) == 0)
    #expect(a.platform.guestHandle(a.vcpu1) == [timer1.port])

    // A per-vcpu VIRQ cannot move; a global one can.
    #expect(a.bindVCPU(timer0.port, vcpu: 1) == EINVAL)
    let console = a.bindVIRQ(XenABI.VIRQ.console.rawValue, vcpu: 0)
    #expect(a.bindVCPU(console.port, vcpu: 1) == 0)
    #expect(a.bindVCPU(console.port, vcpu: 2) == ENOENT)
    Events.raiseGlobalVIRQ(.console, domain: a.domain, using: a.platform)
    #expect(a.platform.guestHandle(a.vcpu1) == [console.port])

    // Closing frees the binding: the VIRQ can be bound again.
    #expect(a.close(timer0.port) == 0)
    Events.raiseVIRQ(.timer, vcpu: a.vcpu0, using: a.platform)
    #expect(a.platform.kickCount(a.vcpu0) == 0, "an unbound VIRQ is dropped")
    #expect(a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 0).rc == 0)
  }

  @Test func ipiToAnotherVCPUOfTheSameDomain() throws {
    let g = guests([71])
    let a = g[0]
    let ipi = a.bindIPI(vcpu: 1)
    #expect(ipi.rc == 0)
    #expect(a.bindIPI(vcpu: 2).rc == ENOENT)
    #expect(a.status(ipi.port) == .init(rc: 0, status: statusValue(.ipi), vcpu: 1))
    #expect(a.send(ipi.port) == 0)        // sent by vcpu 0
    #expect(a.platform.selector(a.vcpu1) == 1)
    #expect(a.platform.upcallPending(a.vcpu1))
    #expect(!a.platform.upcallPending(a.vcpu0))
    #expect(a.platform.kickCount(a.vcpu1) == 1)
    #expect(a.platform.kickCount(a.vcpu0) == 0)
    #expect(a.bindVCPU(ipi.port, vcpu: 0) == EINVAL, "IPI ports cannot move (as Xen)")
  }

  /// libxl's default max_event_channels (1023) holds every domain: ports 1…1023, then -ENOSPC.
  @Test func portExhaustion() throws {
    let g = guests([81])
    let a = g[0]
    #expect(a.domain.maxEventChannels == 1023)
    for expected in 1...1023 {
      let ipi = a.bindIPI(vcpu: 0)
      guard ipi.rc == 0, ipi.port == UInt32(expected) else {
        Issue.record("port \(expected): rc \(ipi.rc), port \(ipi.port)")
        return
      }
    }
    #expect(a.bindIPI(vcpu: 0).rc == ENOSPC)
    #expect(a.allocUnbound(remote: 82).rc == ENOSPC)
    #expect(a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 0).rc == ENOSPC)
    #expect(a.close(234) == 0)
    #expect(a.bindIPI(vcpu: 0) == (0, 234), "the lowest free port is reused")
    #expect(DomainEvents.of(a.domain).portsInUse == 1023)
    #expect(DomainEvents.of(a.domain).channels.count == 1024, "the table grew no further")
  }

  /// A higher max_event_channels: 2-level's own limit (port 4095) still holds.
  @Test func twoLevelPortsStopAtTheABIsLimit() throws {
    let g = guests([84])
    let a = g[0]
    a.domain.maxEventChannels = 131_072
    for expected in 1...4095 {
      let ipi = a.bindIPI(vcpu: 0)
      guard ipi.rc == 0, ipi.port == UInt32(expected) else {
        Issue.record("port \(expected): rc \(ipi.rc), port \(ipi.port)")
        return
      }
    }
    #expect(a.bindIPI(vcpu: 0).rc == ENOSPC)
    #expect(DomainEvents.of(a.domain).portsInUse == 4095)
  }

  /// xl.cfg `max_event_channels` (Domain.maxEventChannels) is the domain's highest port.
  @Test func configuredPortLimit() throws {
    let g = guests([83])
    let a = g[0]
    a.domain.maxEventChannels = 10
    for _ in 1...10 { #expect(a.bindIPI(vcpu: 0).rc == 0) }
    #expect(a.bindIPI(vcpu: 0).rc == ENOSPC)
    #expect(a.allocUnbound(remote: 82).rc == ENOSPC)
  }

  @Test func badPortsAreRejected() throws {
    let g = guests([91])
    let a = g[0]
    // Port 0 is reserved: reported closed, never sent on or closed.
    #expect(a.status(0) == .init(rc: 0, status: statusValue(.closed)))
    #expect(a.send(0) == EINVAL)
    #expect(a.close(0) == EINVAL)
    // A free port inside the first bucket is valid but closed.
    #expect(a.status(5) == .init(rc: 0, status: statusValue(.closed)))
    #expect(a.send(5) == EINVAL)
    #expect(a.close(5) == EINVAL)
    #expect(a.bindVCPU(5, vcpu: 0) == EINVAL)
    #expect(a.unmask(5) == 0)
    // Beyond the allocated ports, beyond 2-level, and absurd.
    for port: UInt32 in [64, 4095, 4096, 70000, .max] {
      #expect(a.status(port).rc == EINVAL)
      #expect(a.send(port) == EINVAL)
      #expect(a.close(port) == EINVAL)
      #expect(a.unmask(port) == EINVAL)
      #expect(a.bindVCPU(port, vcpu: 0) == EINVAL)
      #expect(a.bindInterdomain(selfID, port).rc == EINVAL)
    }
  }

  @Test func domainsOtherThanSelf() throws {
    let g = guests([101, 102])
    let (a, b) = (g[0], g[1])
    let port = b.allocUnbound(remote: 101).port
    #expect(a.allocUnbound(remote: 0, dom: 102).rc == EPERM)
    #expect(a.allocUnbound(remote: 0, dom: 103).rc == ESRCH)
    #expect(a.allocUnbound(remote: 102, dom: 101).rc == 0, "its own id is self")
    #expect(a.status(port, dom: 102).rc == EPERM)
    #expect(a.status(port, dom: 103).rc == ESRCH)
    #expect(a.reset(dom: 102) == EPERM)
    #expect(a.reset(dom: XenABI.DomainID.invalid) == ESRCH)
  }

  @Test func statusOfEveryState() throws {
    let (a, b, portA, portB) = try connected((111, 112))
    let unbound = a.allocUnbound(remote: 0x7FF4).port
    let virq = a.bindVIRQ(XenABI.VIRQ.debug.rawValue, vcpu: 1).port
    let ipi = a.bindIPI(vcpu: 1).port
    #expect(a.status(60) == .init(rc: 0, status: statusValue(.closed)))
    #expect(a.status(unbound) == .init(rc: 0, status: statusValue(.unbound), dom: 0x7FF4))
    #expect(a.status(portA) == .init(rc: 0, status: statusValue(.interdomain), dom: 112, value: portB))
    // u.virq is a u32 at +16, where `dom` reads its low half.
    #expect(a.status(virq) == .init(rc: 0, status: statusValue(.virq), vcpu: 1, dom: UInt16(XenABI.VIRQ.debug.rawValue)))
    #expect(a.status(ipi) == .init(rc: 0, status: statusValue(.ipi), vcpu: 1))
    // bind_vcpu moves the notify vcpu, and status shows it.
    #expect(b.bindVCPU(portB, vcpu: 1) == 0)
    #expect(b.status(portB).vcpu == 1)
    #expect(a.send(portA) == 0)
    #expect(b.platform.guestHandle(b.vcpu1) == [portB])
  }

  @Test func resetClosesEverything() throws {
    let (a, b, portA, portB) = try connected((121, 122))
    _ = a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 0)
    _ = a.bindIPI(vcpu: 1)
    _ = a.allocUnbound(remote: 122)
    #expect(a.reset() == 0)
    for port: UInt32 in 0..<64 { #expect(a.status(port).status == statusValue(.closed)) }
    #expect(b.status(portB) == .init(rc: 0, status: statusValue(.unbound), vcpu: 0, dom: 121))
    #expect(DomainEvents.of(a.domain).portsInUse == 0)
    #expect(a.bindVIRQ(XenABI.VIRQ.timer.rawValue, vcpu: 0) == (0, 1), "bindings are gone, port 1 is free")
    _ = portA
  }

  @Test func destroyingADomainUnbindsAndNotifiesPeers() throws {
    let (a, b, _, portB) = try connected((131, 132))
    Events.domainDestroyed(a.domain, using: a.platform)
    #expect(b.status(portB) == .init(rc: 0, status: statusValue(.unbound), vcpu: 0, dom: 131))
    #expect(b.platform.guestHandle(b.vcpu0) == [portB], "the peer hears about it")
    #expect(DomainEvents.existing(a.domain) == nil)
    // The domain is still found by id until it leaves the registry: a peer binding to it then
    // is refused, and makes it no new event state (one would keep the dead domain alive).
    #expect(b.bindInterdomain(131, 1).rc == EINVAL)
    #expect(b.allocUnbound(remote: 131).rc == 0, "an unbound port for a domain id is only a number")
    #expect(DomainEvents.existing(a.domain) == nil && a.domain.events == nil)
  }

  @Test func unsupportedAndMalformedCommands() throws {
    let g = guests([141])
    let a = g[0]
    // bind_pirq is absent; set_priority exists only under FIFO (Xen's 2-level ops have none).
    for op: XenABI.EventChannelOp in [.bindPIRQ, .setPriority] {
      #expect(a.call(op, [UInt8](repeating: 0, count: 24)).rc == ENOSYS)
    }
    #expect(a.call(99, [0, 0, 0, 0]).rc == ENOSYS)
    let hole: UInt64 = 0xFFFF_8880_0F00_0000
    for op: XenABI.EventChannelOp in [.allocUnbound, .bindInterdomain, .bindVIRQ, .bindIPI, .close, .send, .status, .bindVCPU, .unmask, .reset,
                                      .initControl, .expandArray, .setPriority] {
      let outcome = eventChannelOp(command: UInt64(op.rawValue), argument: hole, a.env, platform: a.platform)
      guard case .result(let rc) = outcome else { Issue.record("\(op)"); continue }
      #expect(rc == EFAULT, "\(op)")
    }
    // Without an installed platform (host builds) the hypercall is absent.
    #expect(eventChannelOp(command: 4, argument: argument, a.env) .isENOSYS || Events.platform != nil)
  }

  /// EVTCHNOP_bind_ipi with the structure across 2^64 (vcpu readable at ...FFFC, the port
  /// would go to 2^64): -EFAULT and no port taken; one that ends at 2^64 binds as usual.
  @Test func bindIPIAcrossTheTopOfTheAddressSpace() throws {
    let a = guests([161])[0]
    let top: UInt64 = 0xFFFF_FFFF_FFFF_F000
    a.env.map(top, count: 4096)
    let before = DomainEvents.of(a.domain).portsInUse
    for op: XenABI.EventChannelOp in [.bindIPI, .allocUnbound, .bindVIRQ, .bindInterdomain, .bindVCPU, .status] {
      let outcome = eventChannelOp(command: UInt64(op.rawValue), argument: top + 0xFFC, a.env, platform: a.platform)
      guard case .result(let rc) = outcome else { Issue.record("\(op)"); continue }
      #expect(rc == EFAULT, "\(op)")
    }
    #expect(DomainEvents.of(a.domain).portsInUse == before)
    let outcome = eventChannelOp(command: UInt64(XenABI.EventChannelOp.bindIPI.rawValue), argument: top + 0xFF8,
                                        a.env, platform: a.platform)
    guard case .result(let rc) = outcome else { Issue.record("bind_ipi at the top"); return }
    #expect(rc == 0)
    let port = try #require(a.env.loadLE(UInt32.self, at: top + 0xFFC))
    #expect(port != 0 && DomainEvents.of(a.domain).portsInUse == before + 1)
  }

  @Test func eventsBeforeSharedInfoIsMappedAreDropped() throws {
    let g = guests([151], unmapped: [151])
    let a = g[0]
    let port = a.bindIPI(vcpu: 0).port
    #expect(a.send(port) == 0)
    #expect(a.platform.totalKicks() == 0)
    #expect(Events.upcallVector(for: a.vcpu0, using: a.platform) == nil)
  }

  @Test func upcallVectorDecision() throws {
    let g = guests([161])
    let a = g[0]
    let port = a.bindIPI(vcpu: 0).port
    let vcpu = a.vcpu0
    let callbackIRQ = Int(XenABI.HVMParam.callbackIRQ.rawValue)
    #expect(a.send(port) == 0)
    #expect(Events.upcallVector(for: vcpu, using: a.platform) == nil, "no callback set: nothing to inject")

    a.domain.hvmParams[callbackIRQ] = XenABI.HVMCallbackVia.typeGSI << 56 | 28
    #expect(Events.upcallVector(for: vcpu, using: a.platform) == nil, "GSI callbacks are a no-op")

    a.domain.hvmParams[callbackIRQ] = XenABI.HVMCallbackVia.typeVector << 56 | 0xF3
    #expect(Events.upcallVector(for: vcpu, using: a.platform) == 0xF3)
    #expect(Events.upcallVector(for: vcpu, using: a.platform) == 0xF3, "level-like until the guest clears it")
    #expect(Events.upcallVector(for: a.vcpu1, using: a.platform) == nil, "vcpu 1 has nothing pending")

    #expect(Events.setUpcallVector(0x0F, vcpu: vcpu) == .EINVAL)
    #expect(Events.setUpcallVector(0x40, vcpu: vcpu) == nil)
    #expect(Events.upcallVector(for: vcpu, using: a.platform) == 0x40, "the per-vcpu vector wins")

    a.platform.guestHandle(vcpu)
    #expect(Events.upcallVector(for: vcpu, using: a.platform) == nil)
    #expect(!Events.upcallPending(vcpu, using: a.platform))
    #expect(Events.isPending(a.domain, port: port, using: a.platform) == false)
  }

  @Test func movedVCPUInfoIsMarkedPending() throws {
    let g = guests([171])
    let a = g[0]
    Events.vcpuInfoMoved(a.vcpu1, using: a.platform)
    #expect(a.platform.selector(a.vcpu1) == .max)
    #expect(a.platform.upcallPending(a.vcpu1))
    #expect(a.platform.kickCount(a.vcpu1) == 1)
  }

    // MARK: A 32-bit shared_info (compat layout)

  /// A compat domain's send: pending bit p of the 32-bit pending words (the same byte as in the
  /// native layout), pending_sel bit p/32 in the 32-bit selector at its compat offset, the
  /// upcall byte, one kick; arch.cr2 after the selector untouched.
  @Test func compatSendSetsThe32BitSelectorAndPendingWord() throws {
    let a = guests([201])[0]
    #expect(Events.latchSharedInfoLayout(a.domain, abi: .compat))
    #expect(a.domain.has32BitSharedInfo)
    let ports = (0..<40).map { _ in a.bindIPI(vcpu: 0).port }
    let port = try #require(ports.last)
    #expect(port == 40)
    #expect(a.send(port) == 0)
    let page = try #require(a.platform.sharedInfo(of: a.domain))
    let info = try #require(a.platform.vcpuInfo(of: a.vcpu0))
    typealias Compat = XenABI.Compat
    #expect(SharedWords.load32(at: page + UInt64(Compat.SharedInfo.Offset.evtchnPending) + 4) == 1 << 8)
    #expect(SharedWords.load32(at: info + UInt64(Compat.VCPUInfo.Offset.pendingSelector)) == 1 << 1)
    #expect(SharedWords.load32(at: info + UInt64(Compat.VCPUInfo.Offset.pendingSelector) + 4) == 0, "arch.cr2")
    #expect(a.platform.upcallPending(a.vcpu0))
    #expect(a.platform.kickCount(a.vcpu0) == 1)
    #expect(Events.isPending(a.domain, port: port, using: a.platform))
    #expect(a.platform.guestHandleCompat(a.vcpu0) == [port])
    // Ports 33 and 40 share compat word 1: one selector bit, one kick.
    #expect(a.send(33) == 0)
    #expect(a.send(port) == 0)
    #expect(SharedWords.load32(at: info + UInt64(Compat.VCPUInfo.Offset.pendingSelector)) == 1 << 1)
    #expect(a.platform.kickCount(a.vcpu0) == 2)
    #expect(Set(a.platform.guestHandleCompat(a.vcpu0)) == [33, port])
  }

  /// The mask words are at the compat offset: a mask bit there holds the event back, one at the
  /// native offset does not; unmask raises a pending port through the 32-bit selector.
  @Test func compatMaskAndUnmaskUseTheCompatMaskWords() throws {
    let a = guests([202])[0]
    Events.latchSharedInfoLayout(a.domain, abi: .compat)
    let port = (0..<70).map { _ in a.bindIPI(vcpu: 1).port }.last!     // compat word 2
    #expect(port == 70)
    let page = try #require(a.platform.sharedInfo(of: a.domain))
    let info = try #require(a.platform.vcpuInfo(of: a.vcpu1))
    typealias Compat = XenABI.Compat
    let maskWord = page + UInt64(Compat.SharedInfo.Offset.evtchnMask) + UInt64(port / 32) * 4
    _ = SharedWords.testAndSet32(bit: Int(port % 32), at: maskWord)
    #expect(a.send(port) == 0)
    #expect(Events.isPending(a.domain, port: port, using: a.platform))
    #expect(SharedWords.load32(at: info + UInt64(Compat.VCPUInfo.Offset.pendingSelector)) == 0)
    #expect(a.platform.kickCount(a.vcpu1) == 0, "masked")
    #expect(a.unmask(port) == 0)
    #expect(SharedWords.load32(at: maskWord) == 0)
    #expect(SharedWords.load32(at: info + UInt64(Compat.VCPUInfo.Offset.pendingSelector)) == 1 << 2)
    #expect(a.platform.kickCount(a.vcpu1) == 1)
    #expect(a.platform.guestHandleCompat(a.vcpu1) == [port])

    // The native mask word of this port means nothing in the compat layout.
    _ = SharedWords.testAndSet(bit: Int(port % 64), at: Events.maskWord(page, port))
    #expect(a.send(port) == 0)
    #expect(a.platform.kickCount(a.vcpu1) == 2)
  }

  /// 32 × 32 ports: the 1024th cannot be allocated, and a port above 1023 allocated while the
  /// shared_info was 64-bit is dropped (nothing written anywhere) once it is 32-bit.
  @Test func compatPortsStopAt1024() throws {
    let a = guests([203])[0]
    a.domain.maxEventChannels = 4095   // past xl.cfg's default of 1023: the layout's limit shows
    for _ in 1...1100 { try #require(a.bindIPI(vcpu: 0).rc == 0) }
    Events.latchSharedInfoLayout(a.domain, abi: .compat)
    #expect(Events.portCount(of: a.domain) == 1024)
    #expect(a.bindIPI(vcpu: 0).rc == ENOSPC, "every port below 1024 is in use")
    #expect(a.close(1050) == 0)
    #expect(a.bindIPI(vcpu: 0).rc == ENOSPC, "1050 is free, but not in the compat layout")
    #expect(a.close(1023) == 0)
    #expect(a.bindIPI(vcpu: 0) == (0, 1023))

    let page = try #require(a.platform.sharedInfo(of: a.domain))
    let before = (0..<512).map { SharedWords.load(at: page + UInt64($0) * 8) }
    #expect(a.send(1060) == 0)
    #expect(a.unmask(1060) == 0)
    #expect(Events.notify(a.domain, port: 1070, using: a.platform))
    #expect(!Events.isPending(a.domain, port: 1060, using: a.platform))
    #expect((0..<512).map { SharedWords.load(at: page + UInt64($0) * 8) } == before)
    #expect(a.platform.kickCount(a.vcpu0) == 0)

    // A fresh compat domain: ports 1…1023, then ENOSPC.
    let b = guests([204])[0]
    Events.latchSharedInfoLayout(b.domain, abi: .compat)
    for expected in 1...1023 { try #require(b.bindIPI(vcpu: 0) == (0, UInt32(expected))) }
    #expect(b.bindIPI(vcpu: 0).rc == ENOSPC)
    #expect(b.allocUnbound(remote: 207).rc == ENOSPC)
  }

  /// A moved compat vcpu_info gets all 32 selector bits, and nothing past the selector.
  @Test func movedCompatVCPUInfoIsMarkedPending() throws {
    let a = guests([205])[0]
    Events.latchSharedInfoLayout(a.domain, abi: .compat)
    Events.vcpuInfoMoved(a.vcpu1, using: a.platform)
    let info = try #require(a.platform.vcpuInfo(of: a.vcpu1))
    let selector = info + UInt64(XenABI.Compat.VCPUInfo.Offset.pendingSelector)
    #expect(SharedWords.load32(at: selector) == .max)
    #expect(SharedWords.load32(at: selector + 4) == 0, "arch.cr2")
    #expect(a.platform.upcallPending(a.vcpu1))
    #expect(a.platform.kickCount(a.vcpu1) == 1)
  }

  /// The layout follows the latest latch, and a 64-bit domain's words are as before.
  @Test func latchingBackTo64BitRestoresTheNativeLayout() throws {
    let a = guests([206])[0]
    #expect(!a.domain.has32BitSharedInfo)
    #expect(!Events.latchSharedInfoLayout(a.domain, abi: .native), "already native")
    #expect(Events.latchSharedInfoLayout(a.domain, abi: .compat))
    #expect(!Events.latchSharedInfoLayout(a.domain, abi: .compat))
    #expect(Events.latchSharedInfoLayout(a.domain, abi: .native))
    #expect(Events.portCount(of: a.domain) == 4096)
    let port = (0..<70).map { _ in a.bindIPI(vcpu: 0).port }.last!
    #expect(a.send(port) == 0)
    #expect(a.platform.isPending(a.domain, port))
    #expect(a.platform.selector(a.vcpu0) == 1 << 1, "64-bit word 1")
  }

  /// A hostile guest flips its layout (HVM_PARAM_CALLBACK_IRQ from 32-bit, then 64-bit code)
  /// while its ports, one of them above 1023, are sent on from other threads: every write stays
  /// in the event words of one layout or the other, nothing past the native structure's end.
  @Test func layoutFlippingWhileSendingStaysInTheEventWords() throws {
    let a = guests([207])[0]
    a.domain.maxEventChannels = 4095   // past xl.cfg's default of 1023
    for _ in 1...1030 { try #require(a.bindIPI(vcpu: 0).rc == 0) }
    let page = try #require(a.platform.sharedInfo(of: a.domain))
    let end = UInt64(XenABI.SharedInfo.size)
    let (platform, domain, vcpu) = (a.platform, a.domain, a.vcpu0)
    DispatchQueue.concurrentPerform(iterations: 3) { worker in
      for round in 0..<2000 {
        let port = UInt32(1 + round % 1030)
        switch worker {
        case 0: Events.latchSharedInfoLayout(domain, abi: round % 2 == 0 ? .compat : .native)
        case 1: _ = Events.send(domain, port: port, platform)
        default: if round % 3 == 0 { platform.guestHandleCompat(vcpu) } else { _ = Events.unmask(domain, port: port, platform) }
        }
        if round % 64 == 0 { yieldThread() }
      }
    }
    for offset in stride(from: end, to: 4096, by: 8) { #expect(SharedWords.load(at: page + offset) == 0, "offset \(offset)") }
    // vcpu_info words other than the upcall byte and the selector: untouched.
    let info = try #require(a.platform.vcpuInfo(of: a.vcpu0))
    for offset in stride(from: UInt64(16), to: 64, by: 8) { #expect(SharedWords.load(at: info + offset) == 0) }
    // The native mask words are untouched: only the guest sets mask bits, and the compat layout
    // ends before them. (The compat mask words are native pending words of ports 1024–2047, so
    // a native send on port 1030 may set one: the layouts overlap there, in Xen too.)
    for word in 0..<64 { #expect(SharedWords.load(at: Events.maskWord(page, UInt32(word * 64))) == 0) }
  }

  /// Senders on several threads race with the guest's handler and with mask/unmask on the
  /// same words. Whatever the interleaving, no event is lost: when everything is quiet, every
  /// pending unmasked port is reachable (its selector bit and the upcall flag are set), and
  /// every send was either handled or is still pending.
  @Test func concurrentSendUnmaskAndHandlerLoseNothing() throws {
    let g = guests([181, 182])
    let (a, b) = (g[0], g[1])
    var ports: [(UInt32, UInt32)] = []
    for _ in 0..<8 {
      let alloc = a.allocUnbound(remote: 182)
      let bind = b.bindInterdomain(181, alloc.port)
      ports.append((alloc.port, bind.port))
    }
    b.platform.guestHandle(b.vcpu0)
    let platform = a.platform
    let (domainA, domainB, vcpuB) = (a.domain, b.domain, b.vcpu0)
    let pairs = ports
    let senders = 2
    let rounds = 2000
    let done = Atomic<Int>(0)
    let handled = Atomic<Int>(0)

    DispatchQueue.concurrentPerform(iterations: senders + 2) { worker in
      if worker < senders {
        for round in 0..<rounds {
          let (portA, _) = pairs[(round + worker) % pairs.count]
          _ = Events.send(domainA, port: portA, platform)
          if round % 64 == 0 { yieldThread() }
        }
        done.wrappingAdd(1, ordering: .sequentiallyConsistent)
      } else if worker == senders {
        // The guest's vcpu 0: handles upcalls while senders run.
        while done.load(ordering: .sequentiallyConsistent) < senders {
          if platform.upcallPending(vcpuB) {
            handled.wrappingAdd(platform.guestHandle(vcpuB).count, ordering: .relaxed)
          }
          yieldThread()
        }
      } else {
        // Another guest thread masking and unmasking the ports in turn.
        var i = 0
        while done.load(ordering: .sequentiallyConsistent) < senders {
          let portB = pairs[i % pairs.count].1
          platform.mask(domainB, portB)
          _ = Events.unmask(domainB, port: portB, platform)
          i += 1
          yieldThread()
        }
      }
    }

    for (_, portB) in ports where platform.isPending(b.domain, portB) && !platform.isMasked(b.domain, portB) {
      #expect(platform.selector(b.vcpu0) & (1 << UInt64(portB / 64)) != 0, "port \(portB) pending but not selected")
      #expect(platform.upcallPending(b.vcpu0), "port \(portB) pending without an upcall")
    }
    // One last upcall takes everything that is left: nothing pending stays unreachable.
    _ = handled.load(ordering: .relaxed)
    if platform.upcallPending(vcpuB) { platform.guestHandle(vcpuB) }
    for (_, portB) in ports {
      #expect(!platform.isPending(domainB, portB), "port \(portB) still pending after the last upcall")
    }
  }
}

/// Lets the other threads run: the host may have fewer cores than the test has threads, and a
/// ticket lock whose next owner is not running stalls everyone behind it.
private func yieldThread() {
  #if canImport(Glibc)
  sched_yield()
  #endif
}

extension HypercallOutcome {
  fileprivate var isENOSYS: Bool {
    if case .result(let value) = self { return value == -XenABI.Errno.ENOSYS.rawValue }
    return false
  }
}

/// EventChannelOp's handler as the dispatcher runs it: a thrown error is the guest's -errno.
func eventChannelOp(command: UInt64, argument: UInt64, _ env: FakeHypercallEnvironment, platform: (any EventPlatform)? = nil) -> HypercallOutcome {
  do throws(XenABI.Errno) {
    if let platform { return try EventChannelOp.handle(command: command, argument: argument, env, platform: platform) }
    return try EventChannelOp.handle(command: command, argument: argument, env)
  } catch {
    return .error(error)
  }
}
