#if os(none)
import Hypervisor
import Support
import Synchronization

/// The loop every pcpu runs forever once it is up: pick a vcpu, run it until it exits, handle the
/// exit to completion, repeat; idle (HLT) when nothing is runnable. This is the whole of
/// "stackless vcpus" (docs/stackless.md): nothing about a vcpu is ever left on this stack
/// between two iterations.
public enum RunLoop {
  private static let finishing = Atomic<Bool>(false)
  /// `ondone=`: power off once every domain has ended, or stay up until `q`. This and
  /// `framesBeforeDomains` are set once at boot, before the domains run.
  nonisolated(unsafe) public static var onDone: OnDoneOption = .poweroff
  /// Free frames just before the boot-time domains were built: all must be back at the end.
  nonisolated(unsafe) public static var framesBeforeDomains = 0

  public static func enter() -> Never {
    let pcpu = PCPUs.current
    while true {
      Softirq.run()
      if unsafe PCPUs.forGuests.contains(pcpu.index), let policy = Scheduler.active,
         let vcpu = policy.pick(pcpu: pcpu.index, now: Clock.now()) {
        run(vcpu, policy, on: pcpu)
        continue
      }
      armPreemption(at: .max, on: pcpu)
      if Domains.bootComplete.load(ordering: .acquiring) && Domains.live.load(ordering: .acquiring) == 0 {
        finish()   // returns only with ondone=stay
      }
      pcpu.idle.store(true, ordering: .releasing)
      if pcpu.softirqPending.load(ordering: .acquiring) == 0 {
        hv_sti_hlt()
      }
      hv_cli()
      pcpu.idle.store(false, ordering: .releasing)
    }
  }

  /// How a vcpu leaves the pcpu.
  enum Leaving {
    /// Still runnable: back on a run queue (yield, preemption).
    case requeue
    /// Waits for an event (HLT, SCHEDOP_block, SCHEDOP_poll).
    case block
    /// Its domain was paused.
    case pause
    /// VCPUOP_down.
    case down
    /// For good: its domain shut down.
    case park
  }

  /// Runs `vcpu` on this pcpu until it blocks, yields, is preempted, or stops. This is the
  /// context switch: everything of the vcpu is in its VMCB and context page, so switching is
  /// VMRUN with another VMCB (docs/scheduling.md follows one switch through this function).
  static func run(_ vcpu: VCPU, _ policy: any SchedulerPolicy, on pcpu: PerCPU) {
    let vmcb = VMCB(address: vcpu.vmcb)
    // A vcpu arriving on a pcpu where something else ran last may find stale translations there.
    let samePlace = vcpu.lastPCPU == pcpu.index && pcpu.lastVCPU === vcpu
    if !samePlace {
      vcpu.needsTLBFlush.store(true, ordering: .relaxed)
      DebugRegisters.load(vcpu)          // the pcpu's DR0-DR3 may be another vcpu's
    }
    vcpu.p2mBoundary(busy: true)
    vcpu.lastPCPU = pcpu.index
    pcpu.lastVCPU = vcpu
    if vcpu.polling {
      // Back from SCHEDOP_poll, by an event, its timeout or an upcall: the poll is over.
      vcpu.polling = false
      Events.endPoll(vcpu)
      VCPUTimers.setPollTimeout(vcpu, deadline: 0)
    }
    // A fresh TSC/system-time pair for this pcpu. A vcpu back on the pcpu it just left (a
    // yield with nothing else to run) keeps the pair it has: it is still exact, as the same
    // TSC and scale extend it (Xen, too, updates it only on a real context switch).
    if !samePlace { GuestTime.update(vcpu) }
    publishRunstate(vcpu, vcpu.runstate)
    let hostVMCB = SVM.hostVMCBForThisCPU
    // The VMCB's TLB control is written only when it changes: set for one entry after the
    // vcpu's translations may have gone stale, then cleared.
    var flushOnEntry = vmcb.read8(VMCB.Control.tlbControl) != 0
    // Read inline at every exit: the policy is asked only when it could answer "preempt".
    // A strong local, retained once here: an unowned one would be retained at every use.
    let preemption = policy.preemptionCheck(pcpu: pcpu.index)
    armPreemption(at: preemption.deadline.load(ordering: .relaxed), on: pcpu, exactly: true)
    while true {
      if vcpu.mustStop {
        leave(vcpu, policy, .park, on: pcpu)
        return
      }
      if unsafe vcpu.domain.state == .paused {
        leave(vcpu, policy, .pause, on: pcpu)
        return
      }
      if vcpu.timeNeedsPublish {
        vcpu.timeNeedsPublish = false
        GuestTime.update(vcpu)
      }
      Upcall.prepare(vcpu, vmcb)
      let deadline = preemption.deadline.load(ordering: .relaxed)
      if deadline != pcpu.preemptionDeadline { armPreemption(at: deadline, on: pcpu) }
      // The boundary first, then the flag: a p2m change that set the flag before it saw this
      // boundary finds the flag read here, and waits for nothing else (TLBShootdown).
      vcpu.p2mBoundary(busy: true)
      let flush = vcpu.needsTLBFlush.exchange(false, ordering: .sequentiallyConsistent)
      if flush != flushOnEntry {
        flushOnEntry = flush
        vmcb.write8(VMCB.Control.tlbControl, flush ? 1 : 0)
      }
      let other = vcpu.inGuestOn.exchange(pcpu.index, ordering: .acquiringAndReleasing)
      if other != -1 {
        unsafe Log.error("domain \(vcpu.domain.id) vcpu \(vcpu.id) entered on pcpu \(pcpu.index) while in guest mode on pcpu \(other)")
        CrashReport.panic("a vcpu was run on two pcpus at once")
      }
      hv_vmrun(vcpu.vmcb, vcpu.context, hostVMCB)
      vcpu.inGuestOn.store(-1, ordering: .releasing)
      hv_interrupt_window()              // host interrupts that arrived meanwhile run now
      vcpu.exitsByClass[ExitClass(code: vmcb.exitCode).rawValue] &+= 1
      Upcall.afterExit(vmcb)
      switch Exits.handle(vcpu, on: pcpu) {
      case .resume:
        // Kicks (a wake elsewhere, a pause) and timer interrupts all end up here: the policy
        // decides whether this vcpu keeps the pcpu.
        // `preemption.mustAsk(now:)` with the deadline as the TSC it was armed for: no clock
        // conversion. The deadline cannot have moved since the entry without the recheck flag.
        if !pcpu.rescheduleRequested.load(ordering: .relaxed) && CPU.rdtsc() < pcpu.preemptionTSC
          && !preemption.recheck.load(ordering: .relaxed) {
          continue
        }
        pcpu.rescheduleRequested.store(false, ordering: .relaxed)
        if policy.shouldPreempt(pcpu: pcpu.index, running: vcpu, now: Clock.now()) {
          leave(vcpu, policy, .requeue, on: pcpu)
          return
        }
      case .yield:
        // Picked again at once (nothing else to run here): it goes on running, with no trip
        // through leave and pick and no runstate change, as in Xen.
        if policy.keepsRunningAfterYield(pcpu: pcpu.index, running: vcpu, now: Clock.now()) { continue }
        leave(vcpu, policy, .requeue, on: pcpu)
        return
      case .block:
        leave(vcpu, policy, .block, on: pcpu)
        return
      case .down:
        leave(vcpu, policy, .down, on: pcpu)
        return
      case .stop:
        leave(vcpu, policy, .park, on: pcpu)
        return
      }
    }
  }

  /// Takes `vcpu` off this pcpu: its run time is charged, the guest's runstate area shows
  /// where it goes, and the policy queues it, lets it sleep, or forgets it.
  static func leave(_ vcpu: VCPU, _ policy: any SchedulerPolicy, _ how: Leaving, on pcpu: PerCPU) {
    DebugRegisters.save(vcpu)
    let now = Clock.now()
    policy.descheduled(vcpu, now: now)
    let next: VCPU.RunState
    switch how {
    case .requeue: next = vcpu.mustStop ? .down : .runnable
    case .block: next = vcpu.mustStop ? .down : .blocked
    case .pause: next = .paused
    case .down, .park: next = .down
    }
    // Written before the policy can hand the vcpu to another pcpu.
    if next != .down {
      var runstate = vcpu.runstate
      runstate.enter(next, at: now)
      publishRunstate(vcpu, runstate)
    }
    // Its last use of the p2m here: a p2m change need not wait for it any more.
    vcpu.p2mBoundary(busy: false)
    switch how {
    case .requeue:
      if vcpu.mustStop { park(vcpu) } else { policy.requeue(vcpu) }
    case .block:
      if vcpu.mustStop { park(vcpu) } else { block(vcpu, policy) }
    case .pause:
      policy.pause(vcpu)
    case .down:
      takeOffline(vcpu)
    case .park:
      park(vcpu)
    }
  }

  /// The vcpu sleeps until an event. An event raised after the guest last looked but before
  /// this point found the vcpu still running and only sent an IPI, so look once more now that
  /// it is marked blocked: from here on, every event finds it blocked and wakes it.
  static func block(_ vcpu: VCPU, _ policy: any SchedulerPolicy) {
    policy.sleep(vcpu, as: .blocked)
    // A full fence: "blocked" must be visible to a waker before this vcpu reads what the waker
    // wrote. x86 may let a load pass an earlier store (the store buffer); without the fence the
    // waker can see "running" while this sees no event, and the vcpu sleeps through its wake-up.
    atomicMemoryFence(ordering: .sequentiallyConsistent)
    if Upcall.pending(vcpu) || (vcpu.polling && vcpu.pollWake.load(ordering: .acquiring)) {
      policy.unblock(vcpu)
    }
  }

  /// Copies `runstate` into the guest's registered runstate area, if it has one (Xen updates
  /// it at every context switch; Linux reads it for steal time).
  /// Inlined, so that a vcpu without an area (most, and guest-bench's) costs a compare at each
  /// switch: with both layouts' writes in the same function, its prologue saved six registers
  /// before the check (about 30 instructions a switch, measured).
  @inline(__always)
  static func publishRunstate(_ vcpu: VCPU, _ runstate: RunstateAccounting) {
    guard let area = vcpu.runstateArea else { return }
    writeRunstate(vcpu, runstate, at: area)
  }

  @inline(never)
  static func writeRunstate(_ vcpu: VCPU, _ runstate: RunstateAccounting, at area: UInt64) {
    if vcpu.runstateAreaABI == .compat {
      _ = GuestMemory(vcpu).write(area, runstate.info.compatBytes)
    } else {
      _ = GuestMemory(vcpu).writeStructure(runstate.info, at: area)
    }
  }

  /// Keeps the pcpu's preemption timer armed for the policy's deadline, so a guest that never
  /// exits by itself is still asked about at the end of its slice. A later deadline than the
  /// one armed (every pick and every kept yield starts a new slice) leaves the timer as it is:
  /// it fires early, that exit asks the policy, finds the slice still running, and the loop
  /// arms the later deadline then. One spare exit per slice instead of a timer queue
  /// operation and a clock conversion at every switch and yield.
  static func armPreemption(at deadline: UInt64, on pcpu: PerCPU, exactly: Bool = false) {
    guard deadline != pcpu.preemptionDeadline else { return }
    pcpu.preemptionDeadline = deadline
    if !exactly && pcpu.preemptionTimer != nil && deadline >= pcpu.preemptionTimerDeadline { return }
    if let timer = pcpu.preemptionTimer { Timers.cancel(timer, on: pcpu) }
    pcpu.preemptionTimer = nil
    pcpu.preemptionTimerDeadline = deadline
    guard deadline != .max else {
      pcpu.preemptionTSC = .max
      return
    }
    pcpu.preemptionTSC = Clock.tsc(atSystemTime: deadline)
    pcpu.preemptionTimer = Timers.add(atTSC: pcpu.preemptionTSC, .preemptionCheck)
  }

  /// VCPUOP_down: the vcpu stays initialised and waits for VCPUOP_up. When the last vcpu of a
  /// domain goes down, the domain has powered itself off (Xen does the same).
  static func takeOffline(_ vcpu: VCPU) {
    VCPUTimers.cancelAll(vcpu)
    unsafe Scheduler.policy?.sleep(vcpu, as: .down)
    let domain = unsafe vcpu.domain
    domain.lock.lock()
    let allDown = domain.vcpus.allSatisfy { $0.runState == .down }
    domain.lock.unlock()
    if allDown {
      Log.info("domain \(domain.id) (\(domain.nameString)): every vcpu is down: poweroff")
      domain.shutDown(.poweroff)
      park(vcpu)
    }
  }

  /// Takes a vcpu off the pcpus for good. The last vcpu of a shut-down domain to leave a pcpu
  /// carries out the domain's end (destroy, preserve or restart: DomainEnd); by then none of
  /// its vcpus can be in guest mode anywhere.
  static func park(_ vcpu: VCPU) {
    unsafe Scheduler.policy?.sleep(vcpu, as: .down)
    let domain = unsafe vcpu.domain
    guard domain.state == .shutdown else { return }
    domain.lock.lock()
    // Asked of the policy, under its locks: a wake racing this (an event from another domain
    // to a blocked vcpu) either came first and is seen here, or comes after and is refused
    // (every vcpu's `mustStop` is set by now), so no vcpu of a destroyed domain is ever run.
    let stillOnPCPU = domain.vcpus.contains { unsafe Scheduler.policy?.isOnPCPU($0) ?? false }
    let destroyNow = !stillOnPCPU && !domain.destroyClaimed
    if destroyNow { domain.destroyClaimed = true }
    domain.lock.unlock()
    if destroyNow { DomainEnd.carryOut(domain) }
  }

  /// Every domain has ended: report, check that every frame came back, and power off with the
  /// status the domains earned (`ondone=poweroff`, the default under `visor run`). With
  /// `ondone=stay` (`visor demo`) the report is made once and the pcpus go back to idling, the
  /// console input on the hypervisor, until `q` powers off.
  static func finish() {
    if finishing.exchange(true, ordering: .acquiringAndReleasing) {
      if unsafe onDone == .stay { return }
      while true { hv_sti_hlt(); hv_cli() }
    }
    // Preserved domains kept their memory until now; the frame check below needs it back.
    let preservedDomains = Domains.preservedDomains
    for domain in preservedDomains {
      Log.info("domain \(domain.id) (\(domain.nameString)): preserved until the end: destroying it now")
      DomainBuilder.destroy(domain)
    }
    let failed = Domains.failed.load(ordering: .acquiring)
    let created = Domains.created.load(ordering: .acquiring)
    let unbuilt = Domains.unbuilt.load(ordering: .acquiring)
    let restarted = Domains.restarted.load(ordering: .acquiring)
    let preserved = preservedDomains.count
    Log.info("all domains have ended: \(created) built, \(created - failed) ended cleanly, \(failed) did not"
      + (restarted > 0 ? "; \(restarted) restarted" : "")
      + (preserved > 0 ? "; \(preserved) preserved" : "")
      + (unbuilt > 0 ? "; \(unbuilt) could not be built" : ""))
    DomainBuilder.checkIsolation(after: "the end of the run", quietly: false)
    let free = Frames.freeFrames
    if unsafe free == framesBeforeDomains {
      Log.info("memory: all \(free) frames returned")
    } else {
      unsafe Log.error("memory: LEAK: \(framesBeforeDomains) frames free before the domains, \(free) after")
      Power.exit(.panic)
    }
    if unsafe onDone == .stay {
      GuestConsoles.setFocus(0, announce: true)
      Log.info("ondone=stay: the hypervisor stays up; q on its console powers off")
      return
    }
    powerOff()
  }

  /// Powers off with the status the domains earned: clean if every domain was built and ended
  /// with a clean poweroff (or a reboot), the failed-domain status otherwise.
  static func powerOff() -> Never {
    if Domains.failed.load(ordering: .acquiring) == 0 && Domains.unbuilt.load(ordering: .acquiring) == 0 {
      Log.info("poweroff: clean")
      Power.exit(.clean)
    }
    Log.info("poweroff: with the failed-domain status")
    Power.exit(.domainFailed)
  }

  /// Makes pcpu `index` leave guest mode and look at its run queue (domain pause).
  public static let kickPCPU: @convention(c) (Int) -> Void = { index in
    guard index >= 0, index < PCPUs.count, index != CPU.current else { return }
    unsafe IPI.kick(PCPUs.all[index])
  }

  /// Wakes idle pcpus so a newly runnable vcpu does not wait for the next tick.
  public static let kickIdle: @convention(c) () -> Void = {
    for cpu in unsafe PCPUs.all where cpu.index != CPU.current && cpu.idle.load(ordering: .acquiring) {
      IPI.kick(cpu)
    }
  }
}
#endif
