@testable import Hypervisor

/// A deterministic discrete-event simulation of Swiftvisor's pcpus driving the real
/// `CreditScheduler`: simulated pcpus, a simulated clock in nanoseconds, a 10 ms tick on every
/// pcpu, and guest workloads. Each simulated pcpu follows the run loop's protocol
/// (docs/scheduling.md) as `RunLoop` does: `pick` when idle (only on a pcpu that runs guests),
/// `shouldPreempt` at every exit (tick, kick, its `deadline`), `descheduled` then
/// `requeue`/`sleep` when the vcpu leaves.
///
/// The machine is modelled as the hypervisor boots it: a pcpu may run no guests (pcpu 0 under
/// QEMU's TCG, `cpu0guests=auto`) yet still takes its tick, which runs the accounting like any
/// other; domains' affinity is limited to the pcpus that run guests (`DomainBuilder.build`);
/// each pcpu's tick has its own phase (every pcpu starts its timer when it comes up), so the
/// accounting is not aligned with any one pcpu's tick; a kick to the pcpu that makes it is
/// dropped (`RunLoop.kickPCPU`: that pcpu asks the policy anyway on its way back).
///
/// With `turns`, the pcpus execute one at a time, each for a stretch drawn from that range, as
/// QEMU runs every CPU on one thread under `-icount`, where timers are run only between two
/// CPUs' stretches. A pcpu sees its timers, kicks and deadlines only when its turn starts; its
/// guest is still charged meanwhile, as system time passes. This is a machine whose exits come
/// late (under -icount, up to 150 ms were seen), which the policy must survive.
///
/// Everything is single threaded and ordered: the same workloads give the same figures.
final class SchedulerSimulation {
  /// What a simulated vcpu does when it runs.
  enum Workload {
    /// Never stops (a CPU-bound guest).
    case hog
    /// Needs `burst` ns of pcpu time, then blocks for a time drawn from `sleep`, then wakes.
    case interactive(burst: UInt64, sleep: ClosedRange<UInt64>)
    /// Runs until `margin` ns before the next tick, then yields (SCHEDOP_yield): the attack on
    /// tick-sampled accounting.
    case tickYielder(margin: UInt64)
  }

  final class SimVCPU {
    let vcpu: VCPU
    let workload: Workload
    let name: String
    /// Time still needed in the present burst (interactive).
    var remaining: UInt64 = 0
    var runTime: UInt64 = 0
    var runTimeOn: [UInt64]
    var runs = 0
    /// On a pcpu now, since `mark` (run time is added up to `mark`).
    var pcpu: Int?
    /// Where it ran last.
    var lastPCPU: Int?
    var mark: UInt64 = 0
    /// Blocked until then.
    var wakeAt: UInt64?
    /// Waiting while runnable since then.
    var runnableSince: UInt64?
    var longestWait: UInt64 = 0
    /// Woke at this time and has not run since.
    var wokeAt: UInt64?
    var wakeLatencies: [UInt64] = []

    init(vcpu: VCPU, workload: Workload, name: String, pcpus: Int) {
      self.vcpu = vcpu
      self.workload = workload
      self.name = name
      self.runTimeOn = [UInt64](repeating: 0, count: pcpus)
      if case .interactive(let burst, _) = workload { remaining = burst }
    }

    var longestWakeLatency: UInt64 { wakeLatencies.max() ?? 0 }
  }

  /// The scheduler's kicks land here (the closure cannot capture the simulation during init).
  final class Kicks {
    var pending: [Bool]
    /// The pcpu whose code is calling the policy now, if any: `RunLoop.kickPCPU` drops a kick
    /// to it (it is out of guest mode and asks the policy before it resumes or idles).
    var acting: Int?
    init(_ n: Int) { pending = [Bool](repeating: false, count: n) }

    func kick(_ p: Int) {
      if p != acting { pending[p] = true }
    }
  }

  static let ms: UInt64 = 1_000_000
  let tickPeriod: UInt64 = 10 * SchedulerSimulation.ms
  let pcpuCount: Int
  /// The pcpus whose loop asks the policy for vcpus (`PCPUs.forGuests`).
  let guestPCPUs: CPUAffinity
  let scheduler: CreditScheduler
  private let kicks: Kicks
  private(set) var now: UInt64 = 0
  /// Per pcpu, when its next tick fires.
  private var nextTick: [UInt64]
  private(set) var vcpus: [SimVCPU] = []
  private var running: [SimVCPU?]
  private var byIdentity: [ObjectIdentifier: SimVCPU] = [:]
  private var nextDomainID: UInt16 = 1
  private var random = SplitMix64(seed: 0x5CED)
  /// Protocol violations seen (should stay empty).
  private(set) var violations: [String] = []
  private(set) var busyTime: [UInt64]
  private(set) var contextSwitches = 0
  private var acting: Int? {
    get { kicks.acting }
    set { kicks.acting = newValue }
  }
  /// One pcpu at a time, for stretches of this length (nil: every pcpu at once).
  private let turns: ClosedRange<UInt64>?
  /// The pcpu whose turn it is, and when the turn ends.
  private var executing = 0
  private var turnEnd: UInt64 = 0
  /// A tick or the policy's deadline fired while the pcpu was out of its turn.
  private var lateTick: [Bool]
  private var lateExit: [Bool]

  /// `guestPCPUs`: the pcpus that run guests (the others only tick). `tickPhases`: when each
  /// pcpu's first tick fires (default: spread over one tick period, as pcpus that came up at
  /// different moments).
  init(pcpus: Int, guestPCPUs: CPUAffinity = .all, tickPhases: [UInt64]? = nil,
       turns: ClosedRange<UInt64>? = nil,
       timeslice: UInt64 = CreditScheduler.defaultTimeslice,
       rateLimit: UInt64 = CreditScheduler.defaultRateLimit) {
    pcpuCount = pcpus
    self.turns = turns
    lateTick = [Bool](repeating: false, count: pcpus)
    lateExit = [Bool](repeating: false, count: pcpus)
    self.guestPCPUs = guestPCPUs.limited(to: pcpus)
    let kicks = Kicks(pcpus)
    self.kicks = kicks
    scheduler = CreditScheduler(pcpus: pcpus, guestPCPUs: guestPCPUs, timeslice: timeslice, rateLimit: rateLimit) {
      kicks.kick($0)
    }
    running = [SimVCPU?](repeating: nil, count: pcpus)
    busyTime = [UInt64](repeating: 0, count: pcpus)
    let period = tickPeriod
    nextTick = tickPhases ?? (0..<pcpus).map { period * UInt64($0 + 1) / UInt64(pcpus) }
    precondition(nextTick.count == pcpus)
  }

  /// The machine `visor run` and `visor bench sched` boot by default: QEMU's TCG with one pcpu
  /// more than `guestPCPUs`, where pcpu 0 runs no guests (`cpu0guests=auto`) but ticks.
  static func qemuTCG(guestPCPUs: Int, turns: ClosedRange<UInt64>? = nil,
                      timeslice: UInt64 = CreditScheduler.defaultTimeslice,
                      rateLimit: UInt64 = CreditScheduler.defaultRateLimit) -> SchedulerSimulation {
    var guests = CPUAffinity(bits: 0)
    for p in 1...guestPCPUs { guests.insert(p) }
    return SchedulerSimulation(pcpus: guestPCPUs + 1, guestPCPUs: guests, turns: turns, timeslice: timeslice, rateLimit: rateLimit)
  }

  /// Whether pcpu `p` handles its timers and kicks now (always, unless the pcpus take turns:
  /// then only as its turn starts).
  private func inTurn(_ p: Int) -> Bool { turns == nil }

  /// A domain with one vcpu per workload. It starts at `start()`.
  @discardableResult
  func addDomain(
    _ name: String, weight: Int = 256, cap: Int = 0, affinity: CPUAffinity = .all,
    workloads: [Workload]
  ) -> [SimVCPU] {
    let domain = Domain(id: nextDomainID, name: Array(name.utf8), memoryBytes: 1 << 24)
    nextDomainID += 1
    var made: [SimVCPU] = []
    for (i, workload) in workloads.enumerated() {
      let vcpu = VCPU(id: i, domain: domain)
      domain.vcpus.append(vcpu)
      let sim = SimVCPU(vcpu: vcpu, workload: workload, name: "\(name).\(i)", pcpus: pcpuCount)
      byIdentity[ObjectIdentifier(vcpu)] = sim
      vcpus.append(sim)
      made.append(sim)
    }
    domain.state = .running
    // DomainBuilder.build: a domain's `cpus` are limited to the pcpus that run guests.
    let usable = CPUAffinity(bits: affinity.bits & guestPCPUs.bits)
    scheduler.setParameters(domain: domain, weight: weight, cap: cap, affinity: usable)
    return made
  }

  /// Makes every vcpu not yet started runnable (VCPUOP_up / domain start).
  /// Domains are started by pcpu 0, which builds them (`Boot.startDomains`).
  func start(_ which: [SimVCPU]? = nil) {
    acting = 0
    for sim in which ?? vcpus where sim.vcpu.runState == .down {
      sim.runnableSince = now
      scheduler.wake(sim.vcpu)
    }
    exit(0)
    acting = nil
    drainKicks()
  }

  func setParameters(_ sim: SimVCPU, weight: Int = 256, cap: Int = 0, affinity: CPUAffinity) {
    let usable = CPUAffinity(bits: affinity.bits & guestPCPUs.bits)
    scheduler.setParameters(domain: sim.vcpu.domain, weight: weight, cap: cap, affinity: usable)
    drainKicks()
  }

  /// Runs the simulation until `end` (absolute simulated time).
  func run(until end: UInt64) {
    while true {
      var t = nextTick.min()!
      if turns != nil { t = min(t, turnEnd) }
      for p in 0..<pcpuCount {
        guard let sim = running[p] else { continue }
        // Out of its turn, a pcpu's guest does nothing and its deadline waits.
        if inTurn(p) { t = min(t, actionTime(sim), scheduler.deadline(pcpu: p)) }
      }
      for sim in vcpus { if let w = sim.wakeAt { t = min(t, w) } }
      if t > end {
        advance(to: end)
        return
      }
      advance(to: t)
      // 0. The next pcpu's turn: it handles what came while it waited.
      if let turns, t == turnEnd {
        executing = (executing + 1) % pcpuCount
        turnEnd = t + UInt64.random(in: turns, using: &random)
        let p = executing
        acting = p
        if lateTick[p] { scheduler.tick(pcpu: p, now: t) }
        if lateTick[p] || lateExit[p] || kicks.pending[p] || (running[p] != nil && scheduler.deadline(pcpu: p) <= t) {
          kicks.pending[p] = false
          exit(p)
        }
        acting = nil
        lateTick[p] = false
        lateExit[p] = false
        drainKicks()
      }
      // 1. Blocked vcpus whose sleep is over wake: their timer fires on the pcpu they last ran
      // on (timers are armed where they are set), which exits or leaves idle and asks.
      for sim in vcpus where sim.wakeAt == t {
        sim.wakeAt = nil
        sim.wokeAt = t
        sim.runnableSince = t
        let on = sim.lastPCPU
        acting = on
        scheduler.unblock(sim.vcpu)
        if let on { if inTurn(on) { exit(on) } else { lateExit[on] = true } }
        acting = nil
        drainKicks()
      }
      // 2. Running vcpus that block or yield now.
      for p in 0..<pcpuCount {
        guard let sim = running[p], inTurn(p), actionTime(sim) <= t else { continue }
        acting = p
        defer { acting = nil }
        switch sim.workload {
        case .hog: break
        case .interactive(let burst, let sleep):
          leave(p, block: true)
          sim.remaining = burst
          sim.wakeAt = t + UInt64.random(in: sleep, using: &random)
        case .tickYielder:
          // RunLoop: a yielder picked again at once keeps running.
          if scheduler.keepsRunningAfterYield(pcpu: p, running: sim.vcpu, now: t) { continue }
          leave(p, block: false)
        }
        pickFor(p)
      }
      drainKicks()
      // 3. The tick: a pcpu's timer fires (Timers.runExpired); its guest exits and the pcpu
      // asks as at any exit, or, idle, looks for work.
      for p in 0..<pcpuCount where nextTick[p] == t {
        nextTick[p] += tickPeriod
        guard inTurn(p) else {
          lateTick[p] = true        // missed ticks come as one (Timers.runExpired re-arms from now)
          continue
        }
        acting = p
        scheduler.tick(pcpu: p, now: t)
        exit(p)
        acting = nil
        drainKicks()
      }
      // 4. Scheduler deadlines (the one-shot timer the run loop arms).
      for p in 0..<pcpuCount where running[p] != nil && inTurn(p) && scheduler.deadline(pcpu: p) <= t { exit(p) }
      drainKicks()
    }
  }

  /// Share of one pcpu each vcpu got over `duration`.
  func share(_ sim: SimVCPU, over duration: UInt64) -> Double {
    Double(sim.runTime) / Double(duration)
  }

  // MARK: - The run loop's side

  private func actionTime(_ sim: SimVCPU) -> UInt64 {
    switch sim.workload {
    case .hog:
      return .max
    case .interactive:
      return sim.mark + sim.remaining
    case .tickYielder(let margin):
      // The next tick boundary at least `margin` after the present moment, minus `margin`.
      var tick = (sim.mark / tickPeriod + 1) * tickPeriod
      if tick - margin <= sim.mark { tick += tickPeriod }
      return tick - margin
    }
  }

  private func advance(to t: UInt64) {
    for p in 0..<pcpuCount {
      guard let sim = running[p] else { continue }
      let delta = t - sim.mark
      sim.runTime += delta
      sim.runTimeOn[p] += delta
      busyTime[p] += delta
      if case .interactive = sim.workload { sim.remaining -= min(delta, sim.remaining) }
      sim.mark = t
    }
    now = t
  }

  /// An exit on pcpu `p` (or a wake-up of an idle pcpu): ask the scheduler.
  private func exit(_ p: Int) {
    let outer = acting
    acting = p
    defer { acting = outer }
    guard let sim = running[p] else {
      pickFor(p)
      return
    }
    if scheduler.shouldPreempt(pcpu: p, running: sim.vcpu, now: now) {
      leave(p, block: false)
      pickFor(p)
    }
  }

  private func leave(_ p: Int, block: Bool) {
    guard let sim = running[p] else { return }
    scheduler.descheduled(sim.vcpu, now: now)
    running[p] = nil
    sim.pcpu = nil
    if block {
      scheduler.sleep(sim.vcpu, as: .blocked)
    } else {
      scheduler.requeue(sim.vcpu)
      sim.runnableSince = now
    }
  }

  /// RunLoop.enter: only a pcpu that runs guests asks the policy for a vcpu.
  private func pickFor(_ p: Int) {
    let outer = acting
    acting = p
    defer { acting = outer }
    guard running[p] == nil, guestPCPUs.contains(p), let vcpu = scheduler.pick(pcpu: p, now: now) else { return }
    guard let sim = byIdentity[ObjectIdentifier(vcpu)] else {
      violations.append("pick returned an unknown vcpu")
      return
    }
    if let other = sim.pcpu { violations.append("\(sim.name) picked on \(p) while running on \(other)") }
    if vcpu.runState != .running { violations.append("\(sim.name) picked but not marked running") }
    contextSwitches += 1
    if let since = sim.runnableSince { sim.longestWait = max(sim.longestWait, now - since) }
    if let woke = sim.wokeAt { sim.wakeLatencies.append(now - woke) }
    sim.runnableSince = nil
    sim.wokeAt = nil
    sim.runs += 1
    sim.pcpu = p
    sim.lastPCPU = p
    sim.mark = now
    running[p] = sim
  }

  /// Kicked pcpus leave guest mode (or idle) and ask the scheduler, until nobody is kicked.
  private func drainKicks() {
    var rounds = 0
    while let p = kicks.pending.indices.first(where: { kicks.pending[$0] && inTurn($0) }) {
      kicks.pending[p] = false
      exit(p)
      rounds += 1
      if rounds > 10_000 {
        violations.append("kick storm at \(now)")
        return
      }
    }
  }
}
