import Synchronization

// The credit scheduler's data: one record per vcpu, one per domain, one runqueue per pcpu.
// Names follow Xen's xen/common/sched/credit.c (csched_unit, csched_dom, csched_pcpu).

/// Xen's CSCHED_PRI_TS_*: a higher value runs first. The idle "vcpu" of a pcpu is below all of
/// them (`CreditPriority.idle`, Xen's CSCHED_PRI_IDLE); `pick` returning nil is that vcpu.
public enum CreditPriority: Int8, Sendable, Comparable {
  /// Has used more than its share this accounting period (credit < 0).
  case over = -2
  /// Still has credit (credit >= 0).
  case under = -1
  /// Just woke from blocking with credit left: runs ahead of UNDER and OVER.
  case boost = 0

  /// Xen's CSCHED_PRI_IDLE, as a raw value: below every real priority.
  public static let idle: Int8 = -64

  public static func < (a: CreditPriority, b: CreditPriority) -> Bool { a.rawValue < b.rawValue }
}

/// Per-vcpu state (Xen: struct csched_unit). Guarded by the lock of runqueue `home`, except
/// `active`, `share` and `shareFixed`, which accounting uses with every runqueue lock held.
final class CreditVCPU {
  let vcpu: VCPU
  let domain: CreditDomain
  /// The runqueue whose lock guards this record: where it is queued, where it runs, or (blocked,
  /// paused) where it last was. Changed only with both the old and the new runqueue locked, so
  /// reading it, locking that runqueue and reading it again finds the lock that guards it.
  let home: Atomic<Int>
  /// Nanoseconds of pcpu time it may still use this period (Xen counts 10 credits per ms; a
  /// nanosecond is finer and needs no rounding). Negative: it has used more than its share.
  var credit: Int64 = 0
  var priority: CreditPriority = .under
  /// On Xen's active list: it consumed pcpu time recently and earns credit at each accounting.
  var active = false
  /// In `CreditRunqueue` `home`'s queue (then `vcpu.runState == .runnable`).
  var queued = false
  var next: CreditVCPU?
  var prev: CreditVCPU?
  /// Run time is charged up to here (set when picked, advanced by every charge).
  var chargedUntil: UInt64 = 0
  /// Where it last ran: soft affinity prefers it (Xen's `processor`). -1 before it ever ran.
  var lastPCPU = -1
  /// Nanoseconds of its debt it keeps beyond one period at the next accounting: time it was
  /// charged after the deadline its pcpu had been given (an exit that came late).
  var lateDebt: Int64 = 0
  /// Nanoseconds of unused credit it keeps beyond one period: time it waited in a queue while
  /// the vcpu running there was charged after its deadline.
  var lateClaim: Int64 = 0
  /// Accounting scratch: this period's fair share and whether it was capped by a bound.
  var share: Int64 = 0
  var shareFixed = false
  /// Total pcpu time charged, for reports.
  var runTime: UInt64 = 0

  init(vcpu: VCPU, domain: CreditDomain, home: Int) {
    self.vcpu = vcpu
    self.domain = domain
    self.home = Atomic(home)
  }
}

/// Per-domain state (Xen: struct csched_dom). `weight`, `cap` and `vcpus` are guarded by the
/// scheduler's accounting lock; the atomics are read on the scheduling paths without it.
final class CreditDomain {
  let domain: Domain
  var weight: Int = CreditScheduler.defaultWeight
  /// Percent of one pcpu; 0 means no cap.
  var cap: Int = 0
  /// Hard affinity bits (`CPUAffinity.bits`), limited to the pcpus that run guests and never
  /// empty (`CreditScheduler.usable`).
  let affinity = Atomic<UInt64>(.max)
  /// Nanoseconds of pcpu time the domain may use per accounting period (cap); 0 = uncapped.
  let capBudget = Atomic<Int64>(0)
  /// Nanoseconds used against `capBudget` this period (overshoot carries into the next one).
  let capUsed = Atomic<Int64>(0)
  /// Out of its cap until the next accounting (Xen's CSCHED_FLAG_UNIT_PARKED, per domain).
  let capParked = Atomic<Bool>(false)
  /// How many of its vcpus are on a pcpu now.
  let running = Atomic<Int>(0)
  /// By vcpu id.
  var vcpus: [CreditVCPU?] = []
  /// Accounting scratch: vcpus on the active list.
  var activeCount = 0

  init(domain: Domain) { self.domain = domain }

  var affinityMask: CPUAffinity { CPUAffinity(bits: affinity.load(ordering: .relaxed)) }
  var isParked: Bool { capParked.load(ordering: .relaxed) }
}

/// One pcpu's runqueue (Xen: struct csched_pcpu and its runq): runnable vcpus waiting for this
/// pcpu, sorted by priority, first come first served within a priority. The running vcpu is not
/// in the queue. Every field is guarded by `lock` except the atomics, which are hints other
/// pcpus read without it (placement, stealing, preemption checks).
final class CreditRunqueue {
  let index: Int
  let lock = SpinLock()
  var head: CreditVCPU?
  var tail: CreditVCPU?
  /// The vcpu running on this pcpu (nil: the idle vcpu).
  var current: CreditVCPU?
  /// When `current` was picked (rate limit) and when its present slice began.
  var pickedAt: UInt64 = 0
  var sliceStart: UInt64 = 0
  /// The latest time any call told this runqueue (a fallback when a vcpu leaves without
  /// `descheduled`).
  var lastNow: UInt64 = 0

  /// Until its deadline, and unless something changed (a wake, a tick, accounting: its recheck
  /// flag), `shouldPreempt` on this pcpu answers false without taking the lock; the run loop
  /// reads the same two words itself at every exit.
  let preemption = PreemptionCheck()
  /// Hints: how many are queued, the priority of the first one that may run (not capped out),
  /// and the priority of the running vcpu (`CreditPriority.idle` when idle).
  let queuedCount = Atomic<Int>(0)
  let bestQueued = Atomic<Int8>(CreditPriority.idle)
  let runningPriority = Atomic<Int8>(CreditPriority.idle)

  init(index: Int) { self.index = index }

  /// Nothing running and nothing queued (racy: a hint).
  var looksIdle: Bool {
    runningPriority.load(ordering: .relaxed) == CreditPriority.idle
      && queuedCount.load(ordering: .relaxed) == 0
  }

  /// Xen's __runq_insert: after every vcpu of the same or higher priority.
  func insert(_ svc: CreditVCPU) {
    var after = tail
    while let a = after, a.priority < svc.priority { after = a.prev }
    if let a = after {
      svc.next = a.next
      svc.prev = a
      if let n = a.next { n.prev = svc } else { tail = svc }
      a.next = svc
    } else {
      svc.prev = nil
      svc.next = head
      if let h = head { h.prev = svc } else { tail = svc }
      head = svc
    }
    svc.queued = true
    updateHints()
  }

  /// Xen's __runq_remove.
  func unlink(_ svc: CreditVCPU) {
    guard svc.queued else { return }
    if let p = svc.prev { p.next = svc.next } else { head = svc.next }
    if let n = svc.next { n.prev = svc.prev } else { tail = svc.prev }
    svc.next = nil
    svc.prev = nil
    svc.queued = false
    updateHints()
  }

  /// Xen's csched_runq_sort: priorities changed at accounting. A stable sort by priority in
  /// three passes, moving nodes from the old list to the new one (no allocation).
  func sort() {
    var rest = head
    head = nil
    tail = nil
    move(.boost, from: &rest)
    move(.under, from: &rest)
    move(.over, from: &rest)
    updateHints()
  }

  /// Moves the nodes of `rest` with priority `priority` to the end of this queue, in order.
  private func move(_ priority: CreditPriority, from rest: inout CreditVCPU?) {
    var node = rest
    while let svc = node {
      node = svc.next
      guard svc.priority == priority else { continue }
      if let p = svc.prev { p.next = svc.next } else { rest = svc.next }
      if let n = svc.next { n.prev = svc.prev }
      svc.next = nil
      svc.prev = tail
      if let t = tail { t.next = svc } else { head = svc }
      tail = svc
    }
  }

  /// The first queued vcpu that may run on this pcpu now.
  func firstRunnable() -> CreditVCPU? {
    var node = head
    while let svc = node {
      if !svc.domain.isParked && svc.domain.affinityMask.contains(index) { return svc }
      node = svc.next
    }
    return nil
  }

  func updateHints() {
    var count = 0
    var best = CreditPriority.idle
    var node = head
    while let svc = node {
      count += 1
      if best == CreditPriority.idle && !svc.domain.isParked { best = svc.priority.rawValue }
      node = svc.next
    }
    queuedCount.store(count, ordering: .relaxed)
    bestQueued.store(best, ordering: .relaxed)
  }

  func setRunning(_ svc: CreditVCPU?) {
    current = svc
    runningPriority.store(svc?.priority.rawValue ?? CreditPriority.idle, ordering: .relaxed)
  }
}
