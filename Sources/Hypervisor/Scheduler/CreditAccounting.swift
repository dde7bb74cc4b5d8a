import Synchronization

// Xen's csched_acct: every accounting period the pcpus' time is handed out as credit.

extension CreditScheduler {
  /// Runs the accounting if it is due and no other pcpu is doing it. Called with no lock held
  /// (from `tick` and `pick`); never waits for `acctLock`.
  func maybeAccount(now: UInt64) {
    let due = nextAccounting.load(ordering: .acquiring)
    if due == 0 {
      _ = nextAccounting.compareExchange(expected: 0, desired: now &+ accountingPeriod, ordering: .acquiringAndReleasing)
      return
    }
    guard now >= due, acctLock.tryLock() else { return }
    let again = nextAccounting.load(ordering: .acquiring)
    if now >= again {
      account(now: now)
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
  func account(now: UInt64) {
    for rq in runqueues { rq.lock.lock() }
    for rq in runqueues {
      if let svc = rq.current { charge(svc, rq, now: now) }
    }
    let period = Int64(accountingPeriod)

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
    var capacity = Int64(guestPCPUs.count) * period
    var changed = true
    while changed && weightLeft > 0 {
      changed = false
      for dom in domains where dom.activeCount > 0 {
        let bound = vcpuBound(dom, period: period)
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

    // Caps: a period's budget, less any overshoot of the last one; parked while it is used up.
    for dom in domains {
      let budget = dom.capBudget.load(ordering: .relaxed)
      if budget > 0 {
        let used = max(dom.capUsed.load(ordering: .relaxed) - budget, 0)
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
          if svc.credit > period {
            // It has not been using what it gets: off the active list, and half its credit
            // (__csched_vcpu_acct_stop_locked). Xen tests this after adding the new credit.
            svc.active = false
            svc.credit /= 2
          } else {
            svc.credit += svc.share
          }
          if svc.credit < -period { svc.credit = -period }     // Xen's lower bound
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
        rq.recheck.store(true, ordering: .relaxed)
        wake = svc.domain.isParked || bestAnywhere > svc.priority.rawValue
      } else {
        wake = bestAnywhere != CreditPriority.idle
      }
      kickScratch[rq.index] = wake
    }
    for rq in runqueues.reversed() { rq.lock.unlock() }
    for p in 0..<pcpuCount where kickScratch[p] && guestPCPUs.contains(p) { kick(p) }
  }

  /// The most credit one of the domain's active vcpus can use in a period.
  func vcpuBound(_ dom: CreditDomain, period: Int64) -> Int64 {
    let budget = dom.capBudget.load(ordering: .relaxed)
    guard budget > 0, dom.activeCount > 0 else { return period }
    return min(period, budget / Int64(dom.activeCount))
  }
}
