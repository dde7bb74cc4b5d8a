import Testing

@testable import Hypervisor

/// Domain and vcpu states through the scheduler interface, on the host: the run loop's side of
/// these transitions is exercised by the SystemTests.
@Suite(.serialized) struct DomainLifecycleTests {
  func makeDomain(vcpus: Int) -> (Domain, RoundRobinScheduler) {
    let scheduler = RoundRobinScheduler()
    Scheduler.policy = scheduler
    let domain = Domain(id: 1, name: Array("test".utf8), memoryBytes: 16 << 20)
    for id in 0..<vcpus { domain.vcpus.append(VCPU(id: id, domain: domain)) }
    domain.state = .running
    return (domain, scheduler)
  }

  @Test func pausedVcpusAreNotPickedUntilUnpaused() {
    let (domain, scheduler) = makeDomain(vcpus: 2)
    for vcpu in domain.vcpus { scheduler.wake(vcpu) }
    #expect(domain.pause())
    #expect(domain.state == .paused)
    #expect(domain.vcpus.allSatisfy { $0.runState == .paused })
    #expect(scheduler.pick(pcpu: 0) == nil)
    #expect(!domain.pause())                    // already paused
    #expect(domain.unpause())
    let first = scheduler.pick(pcpu: 0)
    let second = scheduler.pick(pcpu: 1)
    #expect(first != nil && second != nil && first !== second)
    #expect(scheduler.pick(pcpu: 0) == nil)
  }

  @Test func aBlockedVcpuStaysBlockedAcrossAPause() {
    let (domain, scheduler) = makeDomain(vcpus: 2)
    scheduler.wake(domain.vcpus[0])
    let running = scheduler.pick(pcpu: 0)!
    scheduler.sleep(running, as: .blocked)
    scheduler.wake(domain.vcpus[1])
    domain.pause()
    domain.unpause()
    #expect(domain.vcpus[0].runState == .blocked)
    #expect(scheduler.pick(pcpu: 0) === domain.vcpus[1])
    #expect(scheduler.pick(pcpu: 0) == nil)
  }

  @Test func aRunningVcpuIsPausedByTheRunLoopAtItsNextExit() {
    let (domain, scheduler) = makeDomain(vcpus: 1)
    scheduler.wake(domain.vcpus[0])
    let vcpu = scheduler.pick(pcpu: 0)!
    domain.pause()
    #expect(vcpu.runState == .running)          // still in guest mode until it exits
    scheduler.pause(vcpu)                       // what the run loop does at that exit
    #expect(vcpu.runState == .paused)
    domain.unpause()
    #expect(scheduler.pick(pcpu: 0) === vcpu)
  }

  @Test func shutdownKeepsTheFirstReasonAndStopsEveryVcpu() {
    let (domain, _) = makeDomain(vcpus: 2)
    domain.shutDown(.poweroff)
    domain.shutDown(.crash)
    #expect(domain.shutdownReason == .poweroff)
    #expect(domain.state == .shutdown)
    #expect(domain.vcpus.allSatisfy { $0.mustStop })
    #expect(!domain.pause())
  }

  @Test func consoleLinesAreSplitAndBounded() {
    var console = DomainConsole()
    #expect(console.append(Array("he".utf8)).isEmpty)
    #expect(console.append(Array("llo\r\nworld\n".utf8)) == [Array("hello".utf8), Array("world".utf8)])
    let long = [UInt8](repeating: UInt8(ascii: "x"), count: DomainConsole.maximumLine + 10)
    #expect(console.append(long).count == 1)
    #expect(console.flush()?.count == 10)
    #expect(console.flush() == nil)
  }

  @Test func aLineWrittenThroughBothChannelsShowsOnce() {
    var console = DomainConsole()
    func lines(_ text: String, _ channel: ConsoleChannel) -> [String] {
      console.append(Array(text.utf8), from: channel).map { String(decoding: $0, as: UTF8.self) }
    }
    // A test framework's printk: the ring first, then console_io, two lines each.
    #expect(lines("one\ntwo\n", .ring) == ["one", "two"])
    #expect(lines("one\ntwo\n", .debug) == [])
    #expect(console.duplicatesDropped == 2)
    // The other order, and a line repeated on one channel, which shows each time.
    #expect(lines("three\n", .debug) == ["three"])
    #expect(lines("three\n", .ring) == [])
    #expect(lines("same\nsame\n", .ring) == ["same", "same"])
    // Bytes of the two channels never mix within a line.
    #expect(lines("ab", .ring) == [])
    #expect(lines("xy\n", .debug) == ["xy"])
    #expect(lines("c\n", .ring) == ["abc"])
    // A line the other channel showed long ago is no copy: it shows.
    #expect(lines("early\n", .debug) == ["early"])
    for i in 0...DomainConsole.recentLines { _ = lines("filler \(i)\n", .ring) }
    #expect(lines("early\n", .ring) == ["early"])
    #expect(console.flush() == nil)
  }

  @Test func theFocusedRingShowsAnUnfinishedLineAsItComes() {
    var console = DomainConsole()
    let b = { (text: String) in Array(text.utf8) }
    // A shell's prompt, then what the person types, echoed a byte at a time.
    #expect(console.show(b("swiftvisor:linux /\n# "), from: .ring, showPartial: true)
      == [.line(b("swiftvisor:linux /")), .partial(b("# "))])
    #expect(console.show(b("l"), from: .ring, showPartial: true) == [.partial(b("l"))])
    #expect(console.show(b("s\r\nbin  etc\n"), from: .ring, showPartial: true)
      == [.rest(b("s")), .line(b("bin  etc"))])
    // Without the focus nothing shows before the newline, and the flush leaves out what showed.
    #expect(console.show(b("# "), from: .ring, showPartial: true) == [.partial(b("# "))])
    #expect(console.show(b("half"), from: .ring, showPartial: false) == [])
    #expect(console.flush() == b("half"))
    // A line that showed in part is no copy to drop: the other channel's copy is dropped instead.
    #expect(console.show(b("hel"), from: .ring, showPartial: true) == [.partial(b("hel"))])
    #expect(console.show(b("lo\n"), from: .ring, showPartial: true) == [.rest(b("lo"))])
    #expect(console.append(b("hello\n"), from: .debug) == [])
  }

  @Test func domainIdsRotateBelowTheReservedRangeAndRunOutCleanly() {
    // In order, skipping ids in use, round from the last usable id (0x7FEF) to 1.
    #expect(Domains.nextFreeID(after: 0, inUse: { _ in false }) == 1)
    #expect(Domains.nextFreeID(after: 1, inUse: { $0 == 2 }) == 3)
    #expect(Domains.nextFreeID(after: 0x7FEF, inUse: { _ in false }) == 1)
    #expect(Domains.nextFreeID(after: 0x7FEE, inUse: { $0 == 0x7FEF }) == 1)
    // A guest rebooting in a loop: 70,000 restarts, one domain alive at a time, never an id
    // of 0 or in the reserved range (DOMID_SELF 0x7FF0 and up), never a trap.
    var id: UInt16 = 0
    for _ in 0..<70_000 {
      let alive = id
      guard let next = Domains.nextFreeID(after: id, inUse: { $0 == alive }) else { Issue.record("no id"); return }
      #expect(next != alive)
      #expect(Domains.ids.contains(next), "id \(next)")
      id = next
    }
    // Every id taken: nil, for an error that says so.
    #expect(Domains.nextFreeID(after: 5, inUse: { _ in true }) == nil)
    // A stray previous id (0, or in the reserved range) starts again at 1.
    #expect(Domains.nextFreeID(after: 0xFFFF, inUse: { _ in false }) == 1)
  }
}
