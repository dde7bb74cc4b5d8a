import Synchronization

/// Xen's credit scheduler (xen/common/sched/credit.c) as a `SchedulerPolicy`.
///
/// Each domain has a weight (default 256) and an optional cap (percent of one pcpu). Every
/// accounting period (30 ms, Xen's csched_acct) the pcpus' time is handed out as credit to the
/// active vcpus in proportion to their domain's weight; running burns credit at the rate of
/// measured run time. A vcpu with credit left is UNDER, one without is OVER; a vcpu that wakes
/// from blocking with credit left is BOOST. Each pcpu has a runqueue sorted by priority; a pcpu
/// whose best local choice is OVER or nothing steals better work from the others (runq_steal).
/// docs/scheduling.md has the whole design, the call protocol and the lock order.
///
/// Locks: `acctLock` (Xen's prv->lock: the domain table, weights, caps, accounting) comes before
/// any runqueue lock; two runqueue locks are taken in pcpu order, or with `tryLock` when
/// stealing. No path holding a runqueue lock takes `acctLock`. Nothing here allocates on the
/// pick / preempt / deschedule / tick paths; the domain table grows only when a domain is first
/// seen (wake, setParameters).
public final class CreditScheduler: SchedulerPolicy {
  public static let defaultWeight = 256
  public static let defaultTimeslice: UInt64 = 30_000_000
  public static let defaultRateLimit: UInt64 = 1_000_000
  public static let defaultAccountingPeriod: UInt64 = 30_000_000
  /// The shortest deadline given for credit or cap exhaustion (Xen's CSCHED_MIN_TIMER idea).
  public static let minimumTimer: UInt64 = 50_000

  /// Xen's sched_credit_tslice_ms: the longest a vcpu runs while others of its priority wait.
  public let timeslice: UInt64
  /// Xen's sched_ratelimit_us: a vcpu picked less than this ago is not preempted for another.
  public let rateLimit: UInt64
  /// How often credit is handed out (Xen ties it to the timeslice; here it is its own setting).
  public let accountingPeriod: UInt64
  public let pcpuCount: Int
  /// The pcpus whose loop asks this policy for vcpus (`PCPUs.forGuests`: under QEMU's TCG,
  /// every pcpu but 0). Only their time is handed out as credit, and only they are chosen for
  /// a vcpu; the others still call `tick` (and may run the accounting).
  public let guestPCPUs: CPUAffinity

  let runqueues: [CreditRunqueue]
  /// Xen's prv->lock. Guards `slots`, `domains`, every CreditDomain's weight, cap and vcpus,
  /// and `kickScratch`; accounting takes it and then every runqueue lock.
  let acctLock = SpinLock()
  var slots: [CreditDomain?] = []
  var domains: [CreditDomain] = []
  var kickScratch: [Bool]
  /// When accounting is next due (0: not started).
  let nextAccounting = Atomic<UInt64>(0)
  /// When credit was last handed out (acctLock).
  var lastAccounting: UInt64 = 0
  /// The most accounting periods one accounting hands out at once.
  static let maximumAccountingSpan: UInt64 = 8
  let accountings = Atomic<Int>(0)
  /// Makes a pcpu leave guest mode or idle and call back (shouldPreempt or pick).
  let kick: (Int) -> Void

  public init(
    pcpus: Int, guestPCPUs: CPUAffinity = .all, timeslice: UInt64 = CreditScheduler.defaultTimeslice,
    rateLimit: UInt64 = CreditScheduler.defaultRateLimit,
    accountingPeriod: UInt64 = CreditScheduler.defaultAccountingPeriod,
    kick: @escaping (Int) -> Void = { unsafe Scheduler.kickPCPU?($0) }   // unsafe: the hook is set once at boot, before any pcpu schedules
  ) {
    precondition(pcpus >= 1 && pcpus <= CPUAffinity.maximumPCPUs)
    precondition(timeslice > 0 && accountingPeriod > 0)
    self.pcpuCount = pcpus
    let guests = guestPCPUs.limited(to: pcpus)
    self.guestPCPUs = guests.isEmpty ? CPUAffinity.all.limited(to: pcpus) : guests
    self.timeslice = timeslice
    // Xen: a rate limit longer than the slice is cut to the slice.
    self.rateLimit = min(rateLimit, timeslice)
    self.accountingPeriod = accountingPeriod
    self.kick = kick
    var queues: [CreditRunqueue] = []
    queues.reserveCapacity(pcpus)
    for i in 0..<pcpus { queues.append(CreditRunqueue(index: i)) }
    runqueues = queues
    kickScratch = [Bool](repeating: false, count: pcpus)
  }

  // MARK: - The run loop's calls

  /// Xen's csched_schedule: what pcpu `pcpu` runs next, from `now`; nil means idle.
  public func pick(pcpu: Int, now: UInt64) -> VCPU? {
    maybeAccount(now: now)
    guard guestPCPUs.contains(pcpu) else { return nil }
    let rq = runqueues[pcpu]
    rq.lock.lock()
    rq.lastNow = max(rq.lastNow, now)
    if let stale = rq.current { deschedule(stale, rq, now: now) }
    var next = rq.firstRunnable()
    // csched_load_balance: only when the best local choice is OVER or the idle vcpu.
    if next == nil || next!.priority == .over {
      if let stolen = steal(for: pcpu, betterThan: next?.priority.rawValue ?? CreditPriority.idle) {
        next = stolen
      }
    }
    guard let svc = next else {
      rq.preemption.deadline.store(.max, ordering: .relaxed)
      rq.lock.unlock()
      return nil
    }
    rq.unlink(svc)
    svc.vcpu.runState = .running
    svc.chargedUntil = now
    svc.lastPCPU = pcpu
    svc.domain.running.wrappingAdd(1, ordering: .relaxed)
    rq.setRunning(svc)
    rq.pickedAt = now
    rq.sliceStart = now
    rq.preemption.recheck.store(false, ordering: .relaxed)
    let waiting = waitingPriority(for: pcpu, rq, running: svc)
    rq.preemption.deadline.store(deadline(rq, svc, now: now, waiting: waiting), ordering: .relaxed)
    // More work here than this pcpu can run: an idle pcpu may take some (Xen tickles idlers).
    let idler = rq.queuedCount.load(ordering: .relaxed) > 0 ? idlePCPU(allowed: guestPCPUs, except: pcpu) : nil
    rq.lock.unlock()
    if let idler { kick(idler) }
    return svc.vcpu
  }

  public func pick(pcpu: Int) -> VCPU? { pick(pcpu: pcpu, now: runqueues[pcpu].lastNow) }

  /// The vcpu left the pcpu at `now` (blocked, yielded, preempted, paused, stopped): burn its
  /// credit for the time it ran. Call before `requeue`, `sleep` or `pause`.
  public func descheduled(_ vcpu: VCPU, now: UInt64) {
    guard let svc = record(for: vcpu, create: false) else { return }
    let rq = lockHome(svc)
    rq.lastNow = max(rq.lastNow, now)
    if rq.current === svc { deschedule(svc, rq, now: now) }
    rq.lock.unlock()
  }

  /// At an exit of `running` on `pcpu`: true if it must give up the pcpu now. Cheap (no lock)
  /// until `deadline(pcpu:)` passes or something changed (a wake, a tick, accounting).
  public func shouldPreempt(pcpu: Int, running: VCPU, now: UInt64) -> Bool {
    unowned(unsafe) let rq = runqueues[pcpu]   // runqueues live as long as the scheduler: uses are marked unsafe
    if unsafe !rq.preemption.mustAsk(now: now) { return false }
    unsafe rq.lock.lock()
    unsafe rq.preemption.recheck.store(false, ordering: .relaxed)
    unsafe rq.lastNow = max(rq.lastNow, now)
    guard let svc = unsafe rq.current, svc.vcpu === running else {
      unsafe rq.lock.unlock()
      return false
    }
    unsafe charge(svc, rq, now: now)
    var preempt = false
    var waiting = CreditPriority.idle
    if svc.domain.isParked || !svc.domain.affinityMask.contains(pcpu) {
      preempt = true          // out of its cap (Xen parks it), or no longer allowed here
    } else {
      waiting = unsafe waitingPriority(for: pcpu, rq, running: svc)
      if unsafe now &- rq.sliceStart >= timeslice {
        // Slice over: round robin among equals, as Xen reinserting current behind its peers.
        if waiting >= svc.priority.rawValue { preempt = true } else { unsafe rq.sliceStart = now }
      } else if unsafe now &- rq.pickedAt >= rateLimit && waiting > svc.priority.rawValue {
        preempt = true
      }
    }
    if !preempt {
      unsafe rq.preemption.deadline.store(deadline(rq, svc, now: now, waiting: waiting), ordering: .relaxed)
    }
    unsafe rq.lock.unlock()
    return preempt
  }

  /// SCHEDOP_yield: csched_schedule puts a yielding vcpu behind its peers of the same priority
  /// and steals only when its best local choice is OVER. With nothing queued here and nothing
  /// better to steal it picks the yielder again: then it keeps the pcpu with a new slice, charged
  /// and with BOOST ended as `requeue` would, and without the trip through `pick`.
  public func keepsRunningAfterYield(pcpu: Int, running: VCPU, now: UInt64) -> Bool {
    unowned(unsafe) let rq = runqueues[pcpu]   // runqueues live as long as the scheduler: uses are marked unsafe
    guard unsafe rq.queuedCount.load(ordering: .relaxed) == 0 else { return false }
    unsafe rq.lock.lock()
    unsafe rq.lastNow = max(rq.lastNow, now)
    guard let svc = unsafe rq.current, svc.vcpu === running, unsafe rq.queuedCount.load(ordering: .relaxed) == 0,
          !svc.domain.isParked, svc.domain.affinityMask.contains(pcpu) else {
      unsafe rq.lock.unlock()
      return false
    }
    unsafe charge(svc, rq, now: now)
    if svc.priority == .boost {
      svc.priority = .under
      unsafe rq.runningPriority.store(svc.priority.rawValue, ordering: .relaxed)
    }
    let waiting = unsafe waitingPriority(for: pcpu, rq, running: svc)
    guard waiting < svc.priority.rawValue, !svc.domain.isParked else {
      unsafe rq.lock.unlock()
      return false
    }
    unsafe rq.pickedAt = now
    unsafe rq.sliceStart = now
    unsafe rq.preemption.recheck.store(false, ordering: .relaxed)
    unsafe rq.preemption.deadline.store(deadline(rq, svc, now: now, waiting: waiting), ordering: .relaxed)
    unsafe rq.lock.unlock()
    return true
  }

  /// When the pcpu must next call `shouldPreempt` even if the guest does not exit.
  public func deadline(pcpu: Int) -> UInt64 { runqueues[pcpu].preemption.deadline.load(ordering: .relaxed) }

  public func preemptionCheck(pcpu: Int) -> PreemptionCheck {
    pcpu >= 0 && pcpu < runqueues.count ? runqueues[pcpu].preemption : .alwaysAsk
  }

  /// Xen's csched_tick: the pcpu's 10 ms timer. Charges the running vcpu so far, ends its BOOST
  /// (csched_vcpu_acct: a vcpu still running at a tick is using real pcpu time), and runs the
  /// accounting when it is due. Afterwards the pcpu asks `shouldPreempt` as at any exit.
  public func tick(pcpu: Int, now: UInt64) {
    let rq = runqueues[pcpu]
    rq.lock.lock()
    rq.lastNow = max(rq.lastNow, now)
    if let svc = rq.current {
      charge(svc, rq, now: now)
      if svc.priority == .boost { svc.priority = .under }
      rq.runningPriority.store(svc.priority.rawValue, ordering: .relaxed)
      rq.preemption.recheck.store(true, ordering: .relaxed)
    }
    rq.lock.unlock()
    maybeAccount(now: now)
  }

  // MARK: - Run state changes

  /// csched_unit_wake: runnable again. From blocked with credit left, it is BOOSTed.
  public func wake(_ vcpu: VCPU) {
    guard let svc = record(for: vcpu, create: true) else { return }
    makeRunnable(svc, from: .any)
  }

  /// vcpu_unblock: an event arrived; runnable again only if it is blocked.
  public func unblock(_ vcpu: VCPU) {
    guard let svc = record(for: vcpu, create: false) else { return }
    makeRunnable(svc, from: .blocked)
  }

  /// Back on its pcpu's queue (yield, preemption, end of slice). A vcpu that gives up its pcpu
  /// is no longer "just woken": BOOST ends.
  public func requeue(_ vcpu: VCPU) {
    guard let svc = record(for: vcpu, create: false) else { return }
    while true {
      let rq = lockHome(svc)
      if rq.current === svc { deschedule(svc, rq, now: rq.lastNow) }
      guard vcpu.runState == .running else {
        rq.lock.unlock()
        return
      }
      if svc.priority == .boost { svc.priority = .under }
      if svc.domain.affinityMask.contains(rq.index) {
        vcpu.runState = .runnable
        rq.insert(svc)
        rq.lock.unlock()
        return
      }
      // Its affinity no longer includes this pcpu: queue it where it may run.
      rq.lock.unlock()
      let target = placement(svc, boosting: false)
      let (a, b) = lockPair(rq.index, target)
      if svc.home.load(ordering: .relaxed) == rq.index && vcpu.runState == .running && rq.current !== svc {
        vcpu.runState = .runnable
        svc.home.store(target, ordering: .relaxed)
        runqueues[target].insert(svc)
        unlockPair(a, b)
        tickle(svc, target)
        return
      }
      unlockPair(a, b)
    }
  }

  /// The vcpu stops being runnable (blocked, down, paused): off its queue, BOOST ended.
  public func sleep(_ vcpu: VCPU, as state: VCPU.RunState) {
    guard let svc = record(for: vcpu, create: false) else {
      vcpu.runState = state
      return
    }
    let rq = lockHome(svc)
    if rq.current === svc { deschedule(svc, rq, now: rq.lastNow) }
    rq.unlink(svc)
    vcpu.runState = state
    if svc.priority == .boost { svc.priority = .under }
    rq.lock.unlock()
  }

  /// Running or queued, read under the vcpu's run queue lock (see the protocol).
  public func isOnPCPU(_ vcpu: VCPU) -> Bool {
    guard let svc = record(for: vcpu, create: false) else { return vcpu.runState.isOnPCPU }
    let rq = lockHome(svc)
    let on = vcpu.runState.isOnPCPU
    rq.lock.unlock()
    return on
  }

  /// Forgets the vcpu (its domain is being destroyed); the domain's record goes with its last.
  public func remove(_ vcpu: VCPU) {
    acctLock.lock()
    guard let svc = lookup(vcpu) else {
      acctLock.unlock()
      vcpu.runState = .down
      return
    }
    let dom = svc.domain
    dom.vcpus[vcpu.id] = nil
    if !dom.vcpus.contains(where: { $0 != nil }) { dropDomain(dom) }
    let rq = lockHome(svc)
    if rq.current === svc { deschedule(svc, rq, now: rq.lastNow) }
    rq.unlink(svc)
    vcpu.runState = .down
    rq.lock.unlock()
    acctLock.unlock()
  }

  public func pause(_ vcpu: VCPU) {
    guard let svc = record(for: vcpu, create: true) else { return }
    let rq = lockHome(svc)
    switch vcpu.runState {
    case .runnable, .running: vcpu.pausedFrom = .runnable
    case .blocked: vcpu.pausedFrom = .blocked
    case .paused, .down:
      rq.lock.unlock()
      return
    }
    if rq.current === svc { deschedule(svc, rq, now: rq.lastNow) }
    rq.unlink(svc)
    if svc.priority == .boost { svc.priority = .under }
    vcpu.runState = .paused
    rq.lock.unlock()
  }

  public func unpause(_ vcpu: VCPU) {
    guard let svc = record(for: vcpu, create: true) else { return }
    let rq = lockHome(svc)
    if vcpu.runState == .paused && vcpu.pausedFrom == .blocked {
      vcpu.runState = .blocked
      rq.lock.unlock()
      return
    }
    rq.lock.unlock()
    makeRunnable(svc, from: .paused)
  }

  // MARK: - Parameters

  /// xl sched-credit -d … -w … -c …, and `cpus`: weight 1…65535, cap in percent of one pcpu
  /// (0 = none), hard affinity. Queued vcpus that may no longer run where they wait move; a
  /// running one leaves at its next `shouldPreempt`.
  public func setParameters(domain: Domain, weight: Int, cap: Int, affinity: CPUAffinity) {
    acctLock.lock()
    let dom = domainRecord(domain, create: true)!
    dom.weight = min(max(weight, 1), 65535)
    dom.cap = max(cap, 0)
    dom.capBudget.store(Int64(dom.cap) * Int64(accountingPeriod) / 100, ordering: .relaxed)
    if dom.cap == 0 {
      dom.capParked.store(false, ordering: .relaxed)
      dom.capUsed.store(0, ordering: .relaxed)
    }
    dom.affinity.store(usable(affinity).bits, ordering: .relaxed)
    var kicks = 0 as UInt64
    for case let svc? in dom.vcpus {
      while true {
        let from = svc.home.load(ordering: .relaxed)
        let target = placement(svc, boosting: false)
        let (a, b) = lockPair(from, target)
        guard svc.home.load(ordering: .relaxed) == from else {
          unlockPair(a, b)
          continue
        }
        let rq = runqueues[from]
        if svc.queued && !affinity.contains(from) && from != target {
          rq.unlink(svc)
          svc.home.store(target, ordering: .relaxed)
          runqueues[target].insert(svc)
          kicks |= 1 << UInt64(target)
        }
        if rq.current === svc && !affinity.contains(from) {
          rq.preemption.recheck.store(true, ordering: .relaxed)
          kicks |= 1 << UInt64(from)
        }
        unlockPair(a, b)
        break
      }
    }
    acctLock.unlock()
    for p in 0..<pcpuCount where kicks & (1 << UInt64(p)) != 0 || (guestPCPUs.contains(p) && runqueues[p].looksIdle) {
      kick(p)
    }
  }

  // MARK: - Inspection (tests, reports)

  /// The vcpu's credit in nanoseconds, its priority, and the pcpu time charged to it.
  public func state(of vcpu: VCPU) -> (credit: Int64, priority: CreditPriority, runTime: UInt64)? {
    guard let svc = record(for: vcpu, create: false) else { return nil }
    let rq = lockHome(svc)
    defer { rq.lock.unlock() }
    return (svc.credit, svc.priority, svc.runTime)
  }

  /// How many times credit has been handed out.
  public var accountingCount: Int { accountings.load(ordering: .relaxed) }

  public func queued(pcpu: Int) -> Int { runqueues[pcpu].queuedCount.load(ordering: .relaxed) }

  // MARK: - Internals

  /// Which states `makeRunnable` takes a vcpu out of.
  enum WakeFrom { case any, paused, blocked }

  /// Marks `svc` runnable if it is in a state `from` accepts (`any`: blocked, down or paused),
  /// queues it where it should run, and tells that pcpu (or an idle one) about it.
  func makeRunnable(_ svc: CreditVCPU, from: WakeFrom) {
    while true {
      let rq = lockHome(svc)
      let state = svc.vcpu.runState
      let accepted = switch from {
      case .any: state == .blocked || state == .down || state == .paused
      case .paused: state == .paused
      case .blocked: state == .blocked
      }
      // A stopping vcpu never runs again (`isOnPCPU`): its domain may be destroyed as soon as
      // none of its vcpus is on a pcpu.
      guard accepted, !svc.vcpu.mustStop else {
        rq.lock.unlock()
        return
      }
      let boost = state == .blocked && svc.credit >= 0 && !svc.domain.isParked
      let target = placement(svc, boosting: boost)
      var pair = (rq.index, rq.index)
      if target != rq.index {
        rq.lock.unlock()
        pair = lockPair(rq.index, target)
        guard svc.home.load(ordering: .relaxed) == rq.index && svc.vcpu.runState == state else {
          unlockPair(pair.0, pair.1)
          continue
        }
      }
      if boost { svc.priority = .boost } else if svc.credit < 0 { svc.priority = .over }
      svc.vcpu.runState = .runnable
      svc.home.store(target, ordering: .relaxed)
      runqueues[target].insert(svc)
      if pair.0 != pair.1 { unlockPair(pair.0, pair.1) } else { rq.lock.unlock() }
      tickle(svc, target)
      return
    }
  }

  /// Xen's __runq_tickle: a vcpu was queued on `target`. If it would preempt what runs there,
  /// or `target` is idle, tell `target`; otherwise tell an idle pcpu that may steal it.
  func tickle(_ svc: CreditVCPU, _ target: Int) {
    let rq = runqueues[target]
    let running = rq.runningPriority.load(ordering: .relaxed)
    if running == CreditPriority.idle || svc.priority.rawValue > running {
      rq.preemption.recheck.store(true, ordering: .relaxed)
      kick(target)
    } else if let idler = idlePCPU(allowed: svc.domain.affinityMask, except: target) {
      kick(idler)
    }
  }

  /// Xen's _csched_cpu_pick, with soft affinity meaning "where it ran last": that pcpu if it is
  /// idle or runs something this vcpu outranks; else an idle pcpu it may use; else that pcpu
  /// anyway; else the least loaded pcpu it may use.
  func placement(_ svc: CreditVCPU, boosting: Bool) -> Int {
    let allowed = svc.domain.affinityMask
    let last = svc.lastPCPU >= 0 ? svc.lastPCPU : svc.home.load(ordering: .relaxed)
    let priority = boosting ? CreditPriority.boost.rawValue : svc.priority.rawValue
    if allowed.contains(last) {
      let rq = runqueues[last]
      if rq.looksIdle
        || (rq.queuedCount.load(ordering: .relaxed) == 0
          && rq.runningPriority.load(ordering: .relaxed) < priority)
      {
        return last
      }
    }
    if let idler = idlePCPU(allowed: allowed, except: -1, after: last) { return idler }
    if allowed.contains(last) { return last }
    var best = -1, bestLoad = Int.max
    for p in 0..<pcpuCount where allowed.contains(p) {
      let rq = runqueues[p]
      let load = rq.queuedCount.load(ordering: .relaxed)
        + (rq.runningPriority.load(ordering: .relaxed) == CreditPriority.idle ? 0 : 1)
      if load < bestLoad {
        best = p
        bestLoad = load
      }
    }
    return best
  }

  /// An idle pcpu that runs guests, in `allowed`, other than `except`, searching from the one
  /// after `after`. (A pcpu that runs no guests always looks idle and must never be chosen.)
  func idlePCPU(allowed: CPUAffinity, except: Int, after: Int = -1) -> Int? {
    let start = after < 0 ? 0 : after + 1
    for k in 0..<pcpuCount {
      let p = (start + k) % pcpuCount
      if p != except && allowed.contains(p) && guestPCPUs.contains(p) && runqueues[p].looksIdle { return p }
    }
    return nil
  }

  /// Xen's csched_load_balance and csched_runq_steal: with `pcpu`'s runqueue locked, takes the
  /// first queued vcpu of a peer with priority above `threshold` that may run on `pcpu`. Peers
  /// are only tried (tryLock), never waited for, so two stealing pcpus cannot deadlock.
  func steal(for pcpu: Int, betterThan threshold: Int8) -> CreditVCPU? {
    for k in 1..<max(pcpuCount, 1) {
      let peer = runqueues[(pcpu + k) % pcpuCount]
      if peer.queuedCount.load(ordering: .relaxed) == 0 { continue }
      if peer.bestQueued.load(ordering: .relaxed) <= threshold { continue }
      guard peer.lock.tryLock() else { continue }
      var node = peer.head
      while let svc = node, svc.priority.rawValue > threshold {
        if !svc.domain.isParked && svc.domain.affinityMask.contains(pcpu) {
          peer.unlink(svc)
          svc.home.store(pcpu, ordering: .relaxed)
          peer.lock.unlock()
          return svc
        }
        node = svc.next
      }
      peer.lock.unlock()
    }
    return nil
  }

  /// The priority of the best vcpu that could replace `running` on `pcpu`: the first runnable
  /// one queued here, or one a peer has queued that this pcpu could steal.
  func waitingPriority(for pcpu: Int, _ rq: CreditRunqueue, running: CreditVCPU) -> Int8 {
    var best = rq.firstRunnable()?.priority.rawValue ?? CreditPriority.idle
    // Stealing happens only when the local choice is OVER or nothing (csched_load_balance).
    guard best <= CreditPriority.over.rawValue, running.priority < .boost else { return best }
    for k in 1..<max(pcpuCount, 1) {
      let peer = runqueues[(pcpu + k) % pcpuCount]
      let hint = peer.bestQueued.load(ordering: .relaxed)
      if hint <= max(best, CreditPriority.over.rawValue) || hint <= running.priority.rawValue { continue }
      guard peer.lock.tryLock() else { continue }
      var node = peer.head
      while let svc = node, svc.priority.rawValue > best {
        if !svc.domain.isParked && svc.domain.affinityMask.contains(pcpu) {
          best = svc.priority.rawValue
          break
        }
        node = svc.next
      }
      peer.lock.unlock()
    }
    return best
  }

  /// The next time `shouldPreempt` must look: the end of the slice; when its credit runs out
  /// (it turns OVER and may lose the pcpu); the end of the rate-limit interval if something
  /// better waits; when its domain's cap runs out.
  func deadline(_ rq: CreditRunqueue, _ svc: CreditVCPU, now: UInt64, waiting: Int8) -> UInt64 {
    var d = rq.sliceStart &+ timeslice
    if svc.priority >= .under && svc.credit > 0 {
      d = min(d, now &+ max(UInt64(svc.credit), Self.minimumTimer))
    }
    if waiting > svc.priority.rawValue { d = min(d, rq.pickedAt &+ rateLimit) }
    let budget = svc.domain.capBudget.load(ordering: .relaxed)
    if budget > 0 {
      let left = max(budget - svc.domain.capUsed.load(ordering: .relaxed), 0)
      let sharers = Int64(max(svc.domain.running.load(ordering: .relaxed), 1))
      d = min(d, now &+ max(UInt64(left / sharers), Self.minimumTimer))
    }
    return max(d, now &+ 1)
  }

  /// Xen's burn_credits: charges run time since the last charge, with the runqueue locked.
  func charge(_ svc: CreditVCPU, _ rq: CreditRunqueue, now: UInt64) {
    guard now > svc.chargedUntil else { return }
    let delta = now - svc.chargedUntil
    // The part after the deadline this pcpu was given came late (see `CreditVCPU.lateDebt`).
    let due = rq.current === svc ? max(rq.preemption.deadline.load(ordering: .relaxed), svc.chargedUntil) : now
    if now > due {
      svc.lateDebt &+= Int64(now - due)
      // Whoever waited here meanwhile was kept from the pcpu as long (unless its domain was
      // parked at its cap: it could not have run anyway).
      var node = rq.head
      while let waiting = node {
        if !waiting.domain.isParked { waiting.lateClaim &+= Int64(now - due) }
        node = waiting.next
      }
    }
    svc.chargedUntil = now
    svc.runTime &+= delta
    svc.credit -= Int64(delta)
    svc.active = true                           // __csched_vcpu_acct_start
    if svc.credit < 0 { svc.priority = .over }
    if rq.current === svc { rq.runningPriority.store(svc.priority.rawValue, ordering: .relaxed) }
    let budget = svc.domain.capBudget.load(ordering: .relaxed)
    if budget > 0 {
      let used = svc.domain.capUsed.wrappingAdd(Int64(delta), ordering: .relaxed).newValue
      if used >= budget { svc.domain.capParked.store(true, ordering: .relaxed) }
    }
  }

  /// Takes `svc` off the pcpu of `rq` (locked) at `now`.
  func deschedule(_ svc: CreditVCPU, _ rq: CreditRunqueue, now: UInt64) {
    charge(svc, rq, now: max(now, svc.chargedUntil))
    rq.setRunning(nil)
    rq.preemption.deadline.store(.max, ordering: .relaxed)
    svc.domain.running.wrappingSubtract(1, ordering: .relaxed)
  }

  /// The pcpus a domain with hard affinity `affinity` may run on: those of them that run
  /// guests, or, if that leaves none, every pcpu that runs guests (Xen's fallback when a hard
  /// affinity holds no online pcpu of the pool).
  func usable(_ affinity: CPUAffinity) -> CPUAffinity {
    let bits = affinity.bits & guestPCPUs.bits
    return bits == 0 ? guestPCPUs : CPUAffinity(bits: bits)
  }

  /// Locks the runqueue that guards `svc` and returns it.
  func lockHome(_ svc: CreditVCPU) -> CreditRunqueue {
    while true {
      let rq = runqueues[svc.home.load(ordering: .acquiring)]
      rq.lock.lock()
      if svc.home.load(ordering: .relaxed) == rq.index { return rq }
      rq.lock.unlock()
    }
  }

  /// Locks two runqueues (one if the same) in pcpu order; returns them in that order.
  func lockPair(_ x: Int, _ y: Int) -> (Int, Int) {
    let a = min(x, y), b = max(x, y)
    runqueues[a].lock.lock()
    if b != a { runqueues[b].lock.lock() }
    return (a, b)
  }

  func unlockPair(_ a: Int, _ b: Int) {
    if b != a { runqueues[b].lock.unlock() }
    runqueues[a].lock.unlock()
  }

  // MARK: - The domain table (acctLock)

  func record(for vcpu: VCPU, create: Bool) -> CreditVCPU? {
    acctLock.lock()
    defer { acctLock.unlock() }
    if let svc = lookup(vcpu) { return svc }
    guard create, let dom = unsafe domainRecord(vcpu.domain, create: true) else { return nil }
    while dom.vcpus.count <= vcpu.id { dom.vcpus.append(nil) }
    let home = dom.affinityMask.bits.trailingZeroBitCount
    let svc = CreditVCPU(vcpu: vcpu, domain: dom, home: home)
    dom.vcpus[vcpu.id] = svc
    return svc
  }

  /// With acctLock held.
  func lookup(_ vcpu: VCPU) -> CreditVCPU? {
    guard let dom = unsafe domainRecord(vcpu.domain, create: false), vcpu.id >= 0, vcpu.id < dom.vcpus.count,
      let svc = dom.vcpus[vcpu.id], svc.vcpu === vcpu
    else { return nil }
    return svc
  }

  /// With acctLock held. A record left by a destroyed domain whose id was reused is replaced.
  func domainRecord(_ domain: Domain, create: Bool) -> CreditDomain? {
    let id = Int(domain.id)
    if id < slots.count, let dom = slots[id] {
      if dom.domain === domain { return dom }
      guard create else { return nil }
      dropDomain(dom)
    }
    guard create else { return nil }
    while slots.count <= id { slots.append(nil) }
    let dom = CreditDomain(domain: domain)
    dom.affinity.store(guestPCPUs.bits, ordering: .relaxed)
    slots[id] = dom
    domains.append(dom)
    return dom
  }

  func dropDomain(_ dom: CreditDomain) {
    let id = Int(dom.domain.id)
    if id < slots.count, slots[id] === dom { slots[id] = nil }
    if let i = domains.firstIndex(where: { $0 === dom }) { domains.remove(at: i) }
  }
}
