import Testing

@testable import Hypervisor

private let ms = SchedulerSimulation.ms
private let seconds: UInt64 = 1_000 * ms

private func percent(_ x: Double) -> String {
  let tenths = Int((x * 1000).rounded())
  return "\(tenths / 10).\(abs(tenths % 10))%"
}

@Suite struct CPUAffinityParserTests {
  private func parse(_ text: String) throws(CPUAffinity.ParseError) -> CPUAffinity {
    try CPUAffinity.parse(Array(text.utf8))
  }

  @Test func singlesRangesAndLists() throws {
    #expect(try parse("2") == CPUAffinity(pcpus: [2]))
    #expect(try parse("0-3") == CPUAffinity(pcpus: [0, 1, 2, 3]))
    #expect(try parse("0,2, 5-6") == CPUAffinity(pcpus: [0, 2, 5, 6]))
    #expect(try parse("63") == CPUAffinity(pcpus: [63]))
    #expect(try parse(" 1 ") == CPUAffinity(pcpus: [1]))
  }

  @Test func exclusionsApplyLeftToRight() throws {
    #expect(try parse("0-3,^1") == CPUAffinity(pcpus: [0, 2, 3]))
    #expect(try parse("0-7,^2-5") == CPUAffinity(pcpus: [0, 1, 6, 7]))
    #expect(try parse("all,^0") == CPUAffinity(bits: .max - 1))
    // Re-adding after an exclusion wins, as in xl.
    #expect(try parse("0-3,^1,1") == CPUAffinity(pcpus: [0, 1, 2, 3]))
  }

  @Test func all() throws {
    #expect(try parse("all") == .all)
    #expect(try parse("all").limited(to: 2) == CPUAffinity(pcpus: [0, 1]))
  }

  @Test(arguments: [
    ("", CPUAffinity.ParseError.empty),
    ("^1", .empty),
    ("1,^1", .empty),
    ("x", .syntax(offset: 0)),
    ("1,,2", .syntax(offset: 2)),
    ("1,", .syntax(offset: 2)),
    ("1-", .syntax(offset: 0)),
    ("-1", .syntax(offset: 0)),
    ("1-2-3", .syntax(offset: 0)),
    ("0,3x", .syntax(offset: 2)),
    ("^", .syntax(offset: 0)),
    ("64", .outOfRange(64)),
    ("0-99", .outOfRange(99)),
    ("12345678901", .syntax(offset: 0)),
    ("3-1", .reversedRange(3, 1)),
    ("^all", .excludesAll),
    ("nodes:0", .syntax(offset: 0)),
  ])
  func refusesBadInput(text: String, error: CPUAffinity.ParseError) {
    #expect(throws: error) { try parse(text) }
  }
}

@Suite struct CreditSchedulerTests {
  // MARK: - Direct use of the API

  /// A domain with its vcpus, registered with the scheduler. A vcpu does not keep its domain
  /// alive (the hypervisor's domain list does), so a test holds on to this.
  private struct Held {
    let domain: Domain
    subscript(i: Int) -> VCPU { domain.vcpus[i] }
  }

  private func domain(_ id: UInt16, vcpus n: Int, in scheduler: CreditScheduler, weight: Int = 256,
                      cap: Int = 0, affinity: CPUAffinity = .all) -> Held {
    let d = Domain(id: id, name: Array("d\(id)".utf8), memoryBytes: 1 << 24)
    for i in 0..<n { d.vcpus.append(VCPU(id: i, domain: d)) }
    scheduler.setParameters(domain: d, weight: weight, cap: cap, affinity: affinity)
    return Held(domain: d)
  }

  @Test func idlePCPUPicksNothing() {
    let s = CreditScheduler(pcpus: 2) { _ in }
    #expect(s.pick(pcpu: 0, now: 0) == nil)
    #expect(s.pick(pcpu: 1, now: 5) == nil)
  }

  @Test func wokenVCPURunsAndIsMarkedRunning() {
    var kicked: [Int] = []
    let s = CreditScheduler(pcpus: 2) { kicked.append($0) }
    let v = domain(1, vcpus: 1, in: s)[0]
    s.wake(v)
    #expect(v.runState == .runnable)
    #expect(!kicked.isEmpty)
    let p = kicked[0]
    #expect(s.pick(pcpu: p, now: 0) === v)
    #expect(v.runState == .running)
    // Nothing else waits: the slice may run out, it keeps the pcpu.
    #expect(!s.shouldPreempt(pcpu: p, running: v, now: 31 * ms))
    s.descheduled(v, now: 40 * ms)
    s.sleep(v, as: .blocked)
    #expect(v.runState == .blocked)
    #expect(s.state(of: v)?.runTime == 40 * ms)
    #expect(s.pick(pcpu: p, now: 40 * ms) == nil)
  }

  @Test func wakeFromBlockedBoostsAndPreemptsAfterTheRateLimit() {
    let s = CreditScheduler(pcpus: 1) { _ in }
    let hog = domain(1, vcpus: 1, in: s)[0]
    let io = domain(2, vcpus: 1, in: s)[0]
    s.wake(hog)
    #expect(s.pick(pcpu: 0, now: 0) === hog)
    s.wake(io)                               // from down: no BOOST, and no credit yet
    #expect(s.state(of: io)?.priority == .under)
    s.descheduled(hog, now: 1 * ms)
    s.requeue(hog)
    #expect(s.pick(pcpu: 0, now: 1 * ms) === io)
    s.descheduled(io, now: 2 * ms)
    s.sleep(io, as: .blocked)
    #expect(s.pick(pcpu: 0, now: 2 * ms) === hog)
    for t in [10, 20, 30] as [UInt64] { s.tick(pcpu: 0, now: t * ms) }
    #expect(s.accountingCount == 1)          // 15 ms each: io is UNDER again, the hog OVER
    #expect(s.state(of: hog)?.priority == .over)
    s.descheduled(hog, now: 30 * ms)
    s.requeue(hog)
    #expect(s.pick(pcpu: 0, now: 30 * ms) === hog)
    // io wakes 0.2 ms after the hog was picked: BOOST, but the hog keeps its rate limit.
    s.wake(io)
    #expect(s.state(of: io)?.priority == .boost)
    #expect(!s.shouldPreempt(pcpu: 0, running: hog, now: 30 * ms + 200_000))
    #expect(s.deadline(pcpu: 0) == 31 * ms)
    #expect(s.shouldPreempt(pcpu: 0, running: hog, now: 31 * ms))
    s.descheduled(hog, now: 31 * ms)
    s.requeue(hog)
    #expect(s.pick(pcpu: 0, now: 31 * ms) === io)
  }

  @Test func yieldKeepsThePCPUOnlyWhenNothingElseWouldRun() {
    let s = CreditScheduler(pcpus: 2) { _ in }
    let a = domain(1, vcpus: 1, in: s)[0]
    let b = domain(2, vcpus: 1, in: s, affinity: .only(0))[0]
    s.wake(a)
    #expect(s.pick(pcpu: 0, now: 0) === a)
    // Alone: picked again at once, so it keeps the pcpu, charged, with a new slice.
    #expect(s.keepsRunningAfterYield(pcpu: 0, running: a, now: 5 * ms))
    #expect(s.state(of: a)?.runTime == 5 * ms)
    #expect(a.runState == .running)
    #expect(s.deadline(pcpu: 0) > 5 * ms)
    // Another vcpu queued here: a yield gives way to it.
    s.wake(b)
    #expect(!s.keepsRunningAfterYield(pcpu: 0, running: a, now: 6 * ms))
    s.descheduled(a, now: 6 * ms)
    s.requeue(a)
    #expect(s.pick(pcpu: 0, now: 6 * ms) === b)
    // Only the vcpu running on the pcpu asked about is kept.
    #expect(!s.keepsRunningAfterYield(pcpu: 0, running: a, now: 7 * ms))
    #expect(!s.keepsRunningAfterYield(pcpu: 1, running: b, now: 7 * ms))
  }

  @Test func yieldOfAWokenVCPUEndsItsBoost() {
    let s = CreditScheduler(pcpus: 1) { _ in }
    let v = domain(1, vcpus: 1, in: s)[0]
    s.wake(v)
    #expect(s.pick(pcpu: 0, now: 0) === v)
    for t in [10, 20, 30] as [UInt64] { s.tick(pcpu: 0, now: t * ms) }
    s.descheduled(v, now: 30 * ms)
    s.sleep(v, as: .blocked)
    s.unblock(v)
    #expect(s.state(of: v)?.priority == .boost)
    #expect(s.pick(pcpu: 0, now: 31 * ms) === v)
    #expect(s.keepsRunningAfterYield(pcpu: 0, running: v, now: 32 * ms))
    #expect(s.state(of: v)?.priority != .boost)
  }

  @Test func pinnedVCPUIsOnlyQueuedWhereAllowed() {
    let s = CreditScheduler(pcpus: 2) { _ in }
    let v = domain(1, vcpus: 1, in: s, affinity: .only(1))[0]
    s.wake(v)
    #expect(s.pick(pcpu: 0, now: 0) == nil)
    #expect(s.pick(pcpu: 1, now: 0) === v)
  }

  @Test func pauseAndUnpauseKeepWhatItWas() {
    let s = CreditScheduler(pcpus: 1) { _ in }
    let v = domain(1, vcpus: 2, in: s)
    s.wake(v[0])
    s.wake(v[1])
    #expect(s.pick(pcpu: 0, now: 0) === v[0])
    s.descheduled(v[0], now: 1 * ms)
    s.sleep(v[0], as: .blocked)
    s.pause(v[0])
    s.pause(v[1])
    #expect(v[0].runState == .paused && v[1].runState == .paused)
    #expect(s.pick(pcpu: 0, now: 1 * ms) == nil)
    s.unpause(v[0])
    s.unpause(v[1])
    #expect(v[0].runState == .blocked)
    #expect(s.pick(pcpu: 0, now: 1 * ms) === v[1])
  }

  /// A shut-down domain is destroyed once none of its vcpus is on a pcpu (`RunLoop.park` asks
  /// `isOnPCPU`); an event that wakes a blocked vcpu of it meanwhile must not put it back on
  /// one, or a pcpu would run a vcpu whose VMCB the destroy frees.
  @Test func aStoppingVCPUIsNeverWokenAgain() throws {
    let s = CreditScheduler(pcpus: 2) { _ in }
    let v = domain(1, vcpus: 2, in: s)
    s.wake(v[0])
    s.wake(v[1])
    let first = try #require(s.pick(pcpu: 0, now: 0) ?? s.pick(pcpu: 1, now: 0))
    let other = first === v[0] ? v[1] : v[0]
    #expect(s.isOnPCPU(first) && s.isOnPCPU(other))
    // The other vcpu blocks; the running one shuts the domain down, which stops both.
    if other.runState == .running { s.descheduled(other, now: 1 * ms) }
    s.sleep(other, as: .blocked)
    #expect(!s.isOnPCPU(other))
    for vcpu in v.domain.vcpus { vcpu.stop() }
    s.unblock(other)
    s.wake(other)
    #expect(other.runState == .blocked && !s.isOnPCPU(other))
    #expect(s.isOnPCPU(first))
    // The last one leaves its pcpu: none is on one, and none can be put back.
    s.descheduled(first, now: 2 * ms)
    s.sleep(first, as: .down)
    #expect(!v.domain.vcpus.contains { s.isOnPCPU($0) })
    s.wake(first)
    #expect(first.runState == .down)
    #expect(s.pick(pcpu: 0, now: 3 * ms) == nil && s.pick(pcpu: 1, now: 3 * ms) == nil)
    // The round-robin policy refuses the same wakes.
    let rr = RoundRobinScheduler(pcpus: 1)
    let w = domain(2, vcpus: 1, in: s)
    rr.wake(w[0])
    #expect(rr.pick(pcpu: 0) === w[0] && rr.isOnPCPU(w[0]))
    rr.sleep(w[0], as: .blocked)
    w[0].stop()
    rr.unblock(w[0])
    rr.wake(w[0])
    #expect(w[0].runState == .blocked && !rr.isOnPCPU(w[0]) && rr.pick(pcpu: 0) == nil)
  }

  @Test func removeForgetsQueuedVCPUs() {
    let s = CreditScheduler(pcpus: 1) { _ in }
    let v = domain(1, vcpus: 2, in: s)
    s.wake(v[0])
    s.wake(v[1])
    s.remove(v[0])
    s.remove(v[1])
    #expect(v[0].runState == .down)
    #expect(s.pick(pcpu: 0, now: 0) == nil)
    #expect(s.state(of: v[0]) == nil)
    withExtendedLifetime(v) {}
  }

  @Test func creditIsHandedOutByWeightEachPeriod() {
    let s = CreditScheduler(pcpus: 1) { _ in }
    let a = domain(1, vcpus: 1, in: s, weight: 256)[0]
    let b = domain(2, vcpus: 1, in: s, weight: 768)[0]
    s.wake(a)
    s.wake(b)
    // Both run a little, so both are on the active list; then accounting starts and runs.
    let first = s.pick(pcpu: 0, now: 0)!
    s.descheduled(first, now: 1 * ms)
    s.requeue(first)
    let second = s.pick(pcpu: 0, now: 1 * ms)!
    s.descheduled(second, now: 2 * ms)
    s.requeue(second)
    let before = (s.state(of: a)!.credit, s.state(of: b)!.credit)
    s.tick(pcpu: 0, now: 30 * ms)        // first accounting: the first pick started the clock
    #expect(s.accountingCount == 1)
    #expect(s.state(of: a)!.credit - before.0 == 7_500_000)
    #expect(s.state(of: b)!.credit - before.1 == 22_500_000)
    // An accounting that comes late hands out the time that passed, not one period: 48 ms.
    let again = (s.state(of: a)!.credit, s.state(of: b)!.credit)
    s.tick(pcpu: 0, now: 78 * ms)
    #expect(s.accountingCount == 2)
    #expect(s.state(of: a)!.credit - again.0 == 12_000_000)
    #expect(s.state(of: b)!.credit - again.1 == 36_000_000)
  }

  // MARK: - Simulations (10 simulated seconds each unless said)

  @Test func weightsSplitTwoPCPUsInProportion() {
    expectWeights256To512To256(SchedulerSimulation(pcpus: 2), on: "2 pcpus")
  }

  /// Three hogs of weights 256, 512 and 256 for 10 simulated seconds: half, all and half of a
  /// pcpu, within 2 points.
  func expectWeights256To512To256(_ sim: SchedulerSimulation, on layout: String) {
    let a = sim.addDomain("w256a", weight: 256, workloads: [.hog])[0]
    let b = sim.addDomain("w512", weight: 512, workloads: [.hog])[0]
    let c = sim.addDomain("w256b", weight: 256, workloads: [.hog])[0]
    sim.start()
    sim.run(until: 10 * seconds)
    let shares = [a, b, c].map { sim.share($0, over: 10 * seconds) }
    print("credit sim: weights 256/512/256 on \(layout), 10 s: shares of one pcpu "
      + "\(percent(shares[0])) / \(percent(shares[1])) / \(percent(shares[2])) "
      + "(ideal 50.0% / 100.0% / 50.0%), \(sim.contextSwitches) switches")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(abs(shares[0] - 0.5) <= 0.02)
    #expect(abs(shares[1] - 1.0) <= 0.02)
    #expect(abs(shares[2] - 0.5) <= 0.02)
  }

  /// The layout `visor bench sched` boots: QEMU -smp 3 under TCG, pcpu 0 runs no guests but
  /// ticks. Credit must be what the two guest pcpus can give, not three pcpus' worth, or every
  /// vcpu stays UNDER and whichever is alone on a pcpu keeps it whole.
  @Test func weightsHoldWhenPCPU0RunsNoGuests() {
    let sim = SchedulerSimulation.qemuTCG(guestPCPUs: 2)
    expectWeights256To512To256(sim, on: "pcpus 1-2 (pcpu 0 runs no guests)")
    #expect(sim.busyTime[0] == 0)
  }

  /// Eight equal hogs on two pcpus: a quarter of a pcpu each, however they were first placed
  /// (runnable vcpus must move between pcpus, not stay three on one and five on the other).
  @Test func equalHogsAreBalancedAcrossPCPUs() {
    expectEightEqualHogs(SchedulerSimulation.qemuTCG(guestPCPUs: 2), on: "pcpus 1-2 (pcpu 0 runs no guests)")
  }

  /// Eight hogs of equal weight for 10 simulated seconds: a quarter of a pcpu each, within 2
  /// points.
  func expectEightEqualHogs(_ sim: SchedulerSimulation, on layout: String) {
    let hogs = (0..<8).map { sim.addDomain("hog\($0)", workloads: [.hog])[0] }
    sim.start()
    sim.run(until: 10 * seconds)
    let shares = hogs.map { sim.share($0, over: 10 * seconds) }
    print("credit sim: 8 equal hogs on \(layout), 10 s: \(shares.map(percent)) (ideal 25.0% each)")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    for s in shares { #expect(abs(s - 0.25) <= 0.02) }
  }

  /// One hog per (weight, cap, pinned pcpu) on the QEMU layout, with its ideal share of a pcpu:
  /// the arrangements `visor bench sched --arrangement` measures on the hypervisor.
  static let arrangements: [(name: String, hogs: [(weight: Int, cap: Int, pin: Int?)], ideal: [Double])] = [
    ("mixed3", [(128, 0, nil), (256, 0, nil), (768, 0, nil)], [1.0 / 3, 2.0 / 3, 1]),
    ("mixed4", [(128, 0, nil), (256, 0, nil), (512, 0, nil), (1024, 0, nil)], [1.0 / 7, 2.0 / 7, 4.0 / 7, 1]),
    ("mixed5", [(256, 0, nil), (256, 0, nil), (512, 0, nil), (512, 0, nil), (1024, 0, nil)], [0.2, 0.2, 0.4, 0.4, 0.8]),
    ("pinned", [(256, 0, 1), (512, 0, nil), (256, 0, nil)], [0.5, 1, 0.5]),
    ("capped", [(256, 30, nil), (256, 0, nil), (512, 0, nil)], [0.3, 0.7, 1]),
  ]

  /// Measured from 1 s to 11 s, as the benchmark measures a window after every domain started
  /// (with turns, starting takes a while: each pcpu sees its kick only when its turn comes).
  @Test(arguments: CreditSchedulerTests.arrangements.indices, [false, true])
  func arrangementsHoldOnTheQEMULayout(index: Int, late: Bool) {
    let arrangement = Self.arrangements[index]
    let sim = SchedulerSimulation.qemuTCG(guestPCPUs: 2, turns: late ? 1 * ms...100 * ms : nil)
    let hogs = arrangement.hogs.enumerated().map { i, hog in
      sim.addDomain("\(arrangement.name)-\(i)", weight: hog.weight, cap: hog.cap,
                    affinity: hog.pin.map { .only($0) } ?? .all, workloads: [.hog])[0]
    }
    sim.start()
    sim.run(until: 1 * seconds)
    let before = hogs.map(\.runTime)
    sim.run(until: 11 * seconds)
    let shares = zip(hogs, before).map { Double($0.runTime - $1) / Double(10 * seconds) }
    print("credit sim: \(arrangement.name) on pcpus 1-2\(late ? ", pcpus taking turns of 1-100 ms" : ""), 1-11 s: "
      + "\(shares.map(percent)) (ideal \(arrangement.ideal.map(percent)))")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    for (share, ideal) in zip(shares, arrangement.ideal) { #expect(abs(share - ideal) <= 0.02) }
  }

  /// The same when the pcpus execute one at a time for stretches of 1-100 ms (QEMU under
  /// -icount): every exit a pcpu owes comes late, and its guest is charged meanwhile.
  @Test func weightsHoldWhenExitsComeLate() {
    expectWeights256To512To256(SchedulerSimulation.qemuTCG(guestPCPUs: 2, turns: 1 * ms...100 * ms),
                               on: "pcpus 1-2, pcpus taking turns of 1-100 ms")
  }

  /// Eight equal hogs when exits come late: each pcpu's long runs must be paid back.
  @Test func equalHogsStayEqualWhenExitsComeLate() {
    expectEightEqualHogs(SchedulerSimulation.qemuTCG(guestPCPUs: 2, turns: 1 * ms...100 * ms),
                         on: "pcpus 1-2, pcpus taking turns of 1-100 ms")
  }

  /// A capped hog queued behind a pcpu whose exits come up to 220 ms late (QEMU under -icount
  /// has been seen that late) cannot use its cap budget meanwhile: it keeps as much of it as it
  /// waited. Without that it ends at 26.7 % of a pcpu here for a cap of 30 % (26.6 % under
  /// -icount); with it, 28.4 % here, where every turn may be that long, and 30.6 % under
  /// -icount, where few are (SchedulerShareTests asserts that one within 2 points).
  @Test func cappedHogKeepsTheBudgetItWaitedThrough() {
    let arrangement = Self.arrangements.first { $0.name == "capped" }!
    let sim = SchedulerSimulation.qemuTCG(guestPCPUs: 2, turns: 1 * ms...220 * ms)
    let hogs = arrangement.hogs.enumerated().map { i, hog in
      sim.addDomain("\(arrangement.name)-\(i)", weight: hog.weight, cap: hog.cap, workloads: [.hog])[0]
    }
    sim.start()
    sim.run(until: 1 * seconds)
    let before = hogs.map(\.runTime)
    sim.run(until: 11 * seconds)
    let shares = zip(hogs, before).map { Double($0.runTime - $1) / Double(10 * seconds) }
    print("credit sim: capped on pcpus 1-2, pcpus taking turns of 1-220 ms, 1-11 s: "
      + "\(shares.map(percent)) (ideal \(arrangement.ideal.map(percent)))")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(shares[0] >= 0.28 && shares[0] <= 0.3 + 0.02, "capped hog: \(percent(shares[0]))")
  }

  @Test func capIsHeldWhenAlone() {
    let sim = SchedulerSimulation(pcpus: 2)
    let capped = sim.addDomain("cap25", cap: 25, workloads: [.hog])[0]
    sim.start()
    sim.run(until: 10 * seconds)
    let share = sim.share(capped, over: 10 * seconds)
    print("credit sim: cap 25, alone on 2 pcpus, 10 s: \(percent(share)) of one pcpu")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(abs(share - 0.25) <= 0.02)
  }

  @Test func capIsHeldUnderContention() {
    let sim = SchedulerSimulation(pcpus: 1)
    let capped = sim.addDomain("cap25", weight: 1024, cap: 25, workloads: [.hog])[0]
    let h1 = sim.addDomain("hog1", workloads: [.hog])[0]
    let h2 = sim.addDomain("hog2", workloads: [.hog])[0]
    sim.start()
    sim.run(until: 10 * seconds)
    let shares = [capped, h1, h2].map { sim.share($0, over: 10 * seconds) }
    print("credit sim: cap 25 (weight 1024) with two hogs on 1 pcpu, 10 s: "
      + "\(percent(shares[0])) capped, hogs \(percent(shares[1])) / \(percent(shares[2]))")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(abs(shares[0] - 0.25) <= 0.02)
    #expect(abs(shares[1] - 0.375) <= 0.02)
    #expect(abs(shares[2] - 0.375) <= 0.02)
  }

  @Test func wokenInteractiveVCPURunsWithinTheRateLimit() {
    let sim = SchedulerSimulation(pcpus: 2)
    for i in 0..<4 { sim.addDomain("hog\(i)", workloads: [.hog]) }
    let io = sim.addDomain("io", workloads: [.interactive(burst: 300_000, sleep: 2 * ms...20 * ms)])[0]
    sim.start()
    sim.run(until: 10 * seconds)
    let worst = io.longestWakeLatency
    print("credit sim: interactive vcpu among 4 hogs on 2 pcpus, 10 s: \(io.wakeLatencies.count) wakes, "
      + "worst wake-to-run \(worst / 1000) us (rate limit 1000 us), share \(percent(sim.share(io, over: 10 * seconds)))")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(io.wakeLatencies.count > 500)
    #expect(worst <= CreditScheduler.defaultRateLimit)
  }

  @Test func nothingStarves() {
    let sim = SchedulerSimulation(pcpus: 2)
    sim.addDomain("w128", weight: 128, workloads: [.hog])
    sim.addDomain("w256", weight: 256, workloads: [.hog, .hog])
    sim.addDomain("w1024", weight: 1024, workloads: [.hog])
    sim.addDomain("w4096", weight: 4096, workloads: [.hog])
    sim.addDomain("io", workloads: [.interactive(burst: 2 * ms, sleep: 1 * ms...5 * ms)])
    sim.addDomain("yield", workloads: [.tickYielder(margin: 100_000)])
    sim.start()
    sim.run(until: 10 * seconds)
    let slice = CreditScheduler.defaultTimeslice
    let worst = sim.vcpus.map(\.longestWait).max()!
    let report = sim.vcpus.map { "\($0.name) \(percent(sim.share($0, over: 10 * seconds))) wait≤\($0.longestWait / ms)ms" }
    print("credit sim: starvation mix on 2 pcpus, 10 s: \(report.joined(separator: ", ")); "
      + "longest wait \(worst / ms) ms = \(Double(worst) / Double(slice)) slices")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    for v in sim.vcpus { #expect(v.runTime >= 500 * ms, "\(v.name) ran \(v.runTime) ns") }
    #expect(worst <= 12 * slice)
  }

  @Test func pinningIsHonoured() {
    let sim = SchedulerSimulation(pcpus: 2)
    let pinned = sim.addDomain("pinned", affinity: .only(1), workloads: [.hog, .interactive(burst: ms, sleep: ms...3 * ms)])
    let free = sim.addDomain("free", workloads: [.hog, .hog, .hog])
    sim.start()
    sim.run(until: 10 * seconds)
    print("credit sim: vcpus pinned to pcpu 1 ran \(pinned.map { $0.runTimeOn[0] }) ns on pcpu 0 and "
      + "\(pinned.map { percent(sim.share($0, over: 10 * seconds)) }) overall; "
      + "free hogs \(free.map { percent(sim.share($0, over: 10 * seconds)) })")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    for v in pinned {
      #expect(v.runTimeOn[0] == 0)
      #expect(v.runTime > 0)
    }
    #expect(free.contains { $0.runTimeOn[0] > 0 })
  }

  @Test func yieldingBeforeEachTickGainsNothing() {
    let sim = SchedulerSimulation(pcpus: 1)
    let attacker = sim.addDomain("attacker", workloads: [.tickYielder(margin: 100_000)])[0]
    let hog = sim.addDomain("hog", workloads: [.hog])[0]
    sim.start()
    sim.run(until: 10 * seconds)
    let shares = (sim.share(attacker, over: 10 * seconds), sim.share(hog, over: 10 * seconds))
    print("credit sim: yield 0.1 ms before every tick vs a hog on 1 pcpu, 10 s: attacker "
      + "\(percent(shares.0)), hog \(percent(shares.1)) (fair 50%)")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(shares.0 <= 0.52)
    #expect(shares.1 >= 0.48)
  }

  @Test func yieldingBeforeEachTickGainsNothingOnTwoPCPUs() {
    let sim = SchedulerSimulation(pcpus: 2)
    let attacker = sim.addDomain("attacker", workloads: [.tickYielder(margin: 100_000)])[0]
    let hogs = (0..<2).map { sim.addDomain("hog\($0)", workloads: [.hog])[0] }
    sim.start()
    sim.run(until: 10 * seconds)
    let share = sim.share(attacker, over: 10 * seconds)
    print("credit sim: tick yielder vs 2 hogs on 2 pcpus, 10 s: attacker \(percent(share)), hogs "
      + "\(hogs.map { percent(sim.share($0, over: 10 * seconds)) }) (fair 66.7% each)")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(share <= 2.0 / 3.0 + 0.02)
  }

  @Test func idlePCPUStealsQueuedWork() {
    let sim = SchedulerSimulation(pcpus: 2)
    let hogs = sim.addDomain("hogs", affinity: .only(0), workloads: [.hog, .hog, .hog, .hog])
    sim.start()
    sim.run(until: 1 * seconds)
    #expect(sim.scheduler.queued(pcpu: 0) == 3)
    #expect(sim.busyTime[1] == 0)
    // Unpinned: pcpu 1 must take work from pcpu 0's queue.
    sim.setParameters(hogs[0], affinity: .all)
    let busyBefore = sim.busyTime
    let runBefore = hogs.map(\.runTime)
    sim.run(until: 11 * seconds)
    let busy = (0..<2).map { Double(sim.busyTime[$0] - busyBefore[$0]) / Double(10 * seconds) }
    let shares = (0..<4).map { Double(hogs[$0].runTime - runBefore[$0]) / Double(10 * seconds) }
    print("credit sim: 4 hogs queued on pcpu 0, then unpinned: pcpus busy "
      + "\(busy.map(percent)), hogs \(shares.map(percent)) over the next 10 s")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(busy[0] >= 0.99 && busy[1] >= 0.99)
    #expect(hogs.filter { $0.runTimeOn[1] > 0 }.count >= 2)
    for s in shares { #expect(abs(s - 0.5) <= 0.02) }
  }
}
