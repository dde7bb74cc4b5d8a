import Synchronization

// Xen's csched_acct: every accounting period the pcpus' time is handed out as credit.

extension CreditScheduler {
  /// Runs the accounting if it is due and no other pcpu is doing it. Called with no lock held
  /// (from `tick` and `pick`); never waits for `acctLock`.
  func maybeAccount(now: UInt64) {
    let due = nextAccounting.load(ordering: .acquiring)
    if due == 0 {
      guard acctLock.tryLock() else { return }
      if nextAccounting.load(ordering: .relaxed) == 0 {
        lastAccounting = now
        nextAccounting.store(now &+ accountingPeriod, ordering: .releasing)
      }
      acctLock.unlock()
      return
    }
    guard now >= due, acctLock.tryLock() else { return }
    let again = nextAccounting.load(ordering: .acquiring)
    if now >= again {
      // The time since the last accounting is what was charged meanwhile: hand out that much,
      // so credit and charges stay balanced even when the accounting comes late (a pcpu whose
      // exits come late: 150 ms were seen under QEMU's -icount). Time every pcpu slept through
      // is not handed out beyond `maximumAccountingSpan` periods.
      let span = min(now &- lastAccounting, accountingPeriod &* Self.maximumAccountingSpan)
      lastAccounting = now
      account(now: now, span: max(span, 1))
      // Periods nobody was here for (every pcpu idle) are not made up for.
      let next = again &+ accountingPeriod > now ? again &+ accountingPeriod : now &+ accountingPeriod
      nextAccounting.store(next, ordering: .releasing)
      accountings.wrappingAdd(1, ordering: .relaxed)
    }
    acctLock.unlock()
  }

  /// csched_acct, with `acctLock` held: takes every runqueue lock (in pcpu order), charges the
  /// running vcpus up to `now`, hands out `guestPCPUs.count × accountingPeriod` (the time the
  /// pcpus that run guests have; Xen: the pool's pcpus) of credit to the active
  /// vcpus by weight, within each vcpu's bound (one pcpu, and its share of its domain's cap),
  /// updates priorities and caps, re-sorts the runqueues and kicks the pcpus that should now
  /// run something else.
  func account(now: UInt64, span: UInt64) {
    for rq in runqueues { rq.lock.lock() }
    for rq in runqueues {
      if let svc = rq.current { charge(svc, rq, now: now) }
    }
    let period = Int64(accountingPeriod)
    let handedOut = Int64(span)

    // Who is active, and the total weight: Xen's weight_total += weight × active vcpus.
    var weightLeft: Int64 = 0
    for dom in domains {
      dom.activeCount = 0
      for case let svc? in dom.vcpus {
        svc.share = 0
        svc.shareFixed = false
        if svc.active { dom.activeCount += 1 }
      }
      weightLeft += Int64(dom.weight) * Int64(dom.activeCount)
    }

    // Fair shares by water filling: a vcpu's share is capacity × weight / total weight, but no
    // vcpu can use more than one pcpu (Xen's credit_peak) or its part of its domain's cap (Xen's
    // credit_cap); what those cannot use goes to the others.
    var capacity = Int64(guestPCPUs.count) * handedOut
    var changed = true
    while changed && weightLeft > 0 {
      changed = false
      for dom in domains where dom.activeCount > 0 {
        let bound = vcpuBound(dom, span: handedOut)
        for case let svc? in dom.vcpus where svc.active && !svc.shareFixed {
          if capacity * Int64(dom.weight) / weightLeft > bound {
            svc.share = bound
            svc.shareFixed = true
            capacity -= bound
            weightLeft -= Int64(dom.weight)
            changed = true
          }
        }
      }
    }
    for dom in domains where dom.activeCount > 0 && weightLeft > 0 {
      for case let svc? in dom.vcpus where svc.active && !svc.shareFixed {
        svc.share = capacity * Int64(dom.weight) / weightLeft
      }
    }

    // Caps: the budget earned over the span (a period's, if on time), less any overshoot;
    // parked while the next period's budget is used up. Budget left unused is dropped, except
    // as much as the domain's vcpus waited behind late exits (`lateClaim`, as for credit below):
    // a capped vcpu queued behind a pcpu that reached its deadline late could not use it.
    for dom in domains {
      let budget = dom.capBudget.load(ordering: .relaxed)
      if budget > 0 {
        var claim: Int64 = 0
        for case let svc? in dom.vcpus { claim = min(claim + min(svc.lateClaim, creditBound), creditBound) }
        let used = max(dom.capUsed.load(ordering: .relaxed) - budget * handedOut / period, -claim)
        dom.capUsed.store(used, ordering: .relaxed)
        dom.capParked.store(used >= budget, ordering: .relaxed)
      } else {
        dom.capUsed.store(0, ordering: .relaxed)
        dom.capParked.store(false, ordering: .relaxed)
      }
    }

    // Credit and priority (Xen: credit += credit_fair; UNDER if credit >= 0, else OVER).
    for dom in domains {
      for case let svc? in dom.vcpus {
        if svc.active {
          let waiting = svc.queued || svc.vcpu.runState == .running
          if svc.credit > period && !waiting {
            // It has not been using what it gets: off the active list, and half its credit
            // (__csched_vcpu_acct_stop_locked). Xen tests this after adding the new credit.
            svc.active = false
            svc.credit /= 2
          } else {
            // A vcpu that waited for a pcpu has not been idle: it keeps up to a period's worth
            // of what it could not use (more if it waited behind a late exit), and its share.
            svc.credit = min(svc.credit, period + min(svc.lateClaim, creditBound)) + svc.share
          }
          // Xen's lower bound, one period of debt, forgives a vcpu that ran on while nothing
          // else wanted its pcpu. Time it was charged after its pcpu's deadline is kept on top:
          // that pcpu's exit came late (up to 150 ms under QEMU's -icount), and forgiving it
          // would hand that time to whoever was late, for good.
          let floor = -(period + min(svc.lateDebt, creditBound))
          if svc.credit < floor { svc.credit = floor }
          // What is left of them beyond a period, until paid back or used.
          svc.lateDebt = min(svc.lateDebt, max(-svc.credit - period, 0))
          svc.lateClaim = min(svc.lateClaim, max(svc.credit - period, 0))
        }
        if svc.credit < 0 {
          svc.priority = .over
        } else if svc.priority == .over {
          svc.priority = .under
        }
      }
    }

    // Re-sort, refresh the hints, and find the pcpus that should look again.
    for rq in runqueues {
      rq.sort()
      if let svc = rq.current { rq.runningPriority.store(svc.priority.rawValue, ordering: .relaxed) }
    }
    var bestAnywhere = CreditPriority.idle
    for rq in runqueues { bestAnywhere = max(bestAnywhere, rq.bestQueued.load(ordering: .relaxed)) }
    for rq in runqueues {
      var wake = false
      if let svc = rq.current {
        // Its credit, priority and cap changed: the next exit looks again, and a pcpu whose
        // vcpu is now outranked by waiting work is told at once.
        rq.preemption.recheck.store(true, ordering: .relaxed)
        wake = svc.domain.isParked || bestAnywhere > svc.priority.rawValue
      } else {
        wake = bestAnywhere != CreditPriority.idle
      }
      kickScratch[rq.index] = wake
    }
    for rq in runqueues.reversed() { rq.lock.unlock() }
    for p in 0..<pcpuCount where kickScratch[p] && guestPCPUs.contains(p) { kick(p) }
  }

  /// The most debt or unused credit late exits may add to the one period Xen allows: 1 s.
  var creditBound: Int64 { 1_000_000_000 }

  /// The most credit one of the domain's active vcpus can use in `span` nanoseconds: all of
  /// them on one pcpu, or its part of its domain's cap (a budget per accounting period).
  func vcpuBound(_ dom: CreditDomain, span: Int64) -> Int64 {
    let budget = dom.capBudget.load(ordering: .relaxed)
    guard budget > 0, dom.activeCount > 0 else { return span }
    return min(span, budget * span / Int64(accountingPeriod) / Int64(dom.activeCount))
  }
}
