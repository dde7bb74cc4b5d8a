#if os(none)
import Hypervisor
import Support
import Synchronization

/// The loop every pcpu runs forever once it is up: pick a vcpu, run it until it exits, handle the
/// exit to completion, repeat; idle (HLT) when nothing is runnable. This is the whole of
/// "stackless vcpus" (ARCHITECTURE.md §3): nothing about a vcpu is ever left on this stack
/// between two iterations.
public enum RunLoop {
  private static let finishing = Atomic<Bool>(false)
  /// Free frames just before the boot-time domains were built: all must be back at the end.
  nonisolated(unsafe) public static var framesBeforeDomains = 0

  public static func enter() -> Never {
    let pcpu = PCPUs.current
    while true {
      Softirq.run()
      if let vcpu = Scheduler.policy?.pick(pcpu: pcpu.index) {
        run(vcpu, on: pcpu)
        continue
      }
      if Domains.bootComplete.load(ordering: .acquiring) && Domains.live.load(ordering: .acquiring) == 0 {
        finish()
      }
      pcpu.idle.store(true, ordering: .releasing)
      if pcpu.softirqPending.load(ordering: .acquiring) == 0 {
        hv_sti_hlt()
      }
      hv_cli()
      pcpu.idle.store(false, ordering: .releasing)
    }
  }

  /// Runs `vcpu` on this pcpu until it blocks, yields, uses up its slice, or stops.
  static func run(_ vcpu: VCPU, on pcpu: PerCPU) {
    guard let policy = Scheduler.policy else { return }
    let sliceEnd = CPU.rdtsc() &+ Clock.ticks(fromNanoseconds: policy.timeslice)
    let vmcb = VMCB(address: vcpu.vmcb)
    // A vcpu arriving on a pcpu where something else ran last may find stale translations there.
    if vcpu.lastPCPU != pcpu.index || pcpu.lastVCPU !== vcpu { vcpu.needsTLBFlush = true }
    vcpu.lastPCPU = pcpu.index
    pcpu.lastVCPU = vcpu
    GuestTime.update(vcpu)                 // a fresh TSC/system-time pair for this pcpu
    while true {
      if vcpu.mustStop {
        park(vcpu)
        return
      }
      if vcpu.domain.state == .paused {
        policy.pause(vcpu)
        return
      }
      vmcb.write8(VMCB.Control.tlbControl, vcpu.needsTLBFlush ? 1 : 0)
      vcpu.needsTLBFlush = false
      hv_vmrun(vcpu.vmcb, vcpu.context, SVM.hostVMCBForThisCPU)
      hv_interrupt_window()              // host interrupts that arrived meanwhile run now
      vcpu.exits += 1
      switch Exits.handle(vcpu, on: pcpu) {
      case .resume:
        if pcpu.rescheduleRequested.exchange(false, ordering: .acquiringAndReleasing) || CPU.rdtsc() >= sliceEnd {
          if vcpu.mustStop { park(vcpu) } else { policy.requeue(vcpu) }
          return
        }
      case .yield:
        if vcpu.mustStop { park(vcpu) } else { policy.requeue(vcpu) }
        return
      case .block:
        if vcpu.mustStop { park(vcpu) } else { policy.sleep(vcpu, as: .blocked) }
        return
      case .down:
        takeOffline(vcpu)
        return
      case .stop:
        park(vcpu)
        return
      }
    }
  }

  /// VCPUOP_down: the vcpu stays initialised and waits for VCPUOP_up. When the last vcpu of a
  /// domain goes down, the domain has powered itself off (Xen does the same).
  static func takeOffline(_ vcpu: VCPU) {
    Scheduler.policy?.sleep(vcpu, as: .down)
    let domain = vcpu.domain
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
  /// destroys the domain; by then none of its vcpus can be in guest mode anywhere.
  static func park(_ vcpu: VCPU) {
    Scheduler.policy?.sleep(vcpu, as: .down)
    let domain = vcpu.domain
    guard domain.state == .shutdown else { return }
    domain.lock.lock()
    let stillOnPCPU = domain.vcpus.contains { $0.runState == .running || $0.runState == .runnable }
    let destroyNow = !stillOnPCPU && !domain.destroyClaimed
    if destroyNow { domain.destroyClaimed = true }
    domain.lock.unlock()
    if destroyNow { DomainBuilder.destroy(domain) }
  }

  /// Every domain has ended: report and power off (the default under `visor run`).
  static func finish() -> Never {
    if finishing.exchange(true, ordering: .acquiringAndReleasing) {
      while true { hv_sti_hlt(); hv_cli() }
    }
    let failed = Domains.failed.load(ordering: .acquiring)
    let created = Domains.created.load(ordering: .acquiring)
    let unbuilt = Domains.unbuilt.load(ordering: .acquiring)
    Log.info("all domains have ended: \(created) built, \(created - failed) powered off cleanly, \(failed) did not"
      + (unbuilt > 0 ? "; \(unbuilt) could not be built" : ""))
    let free = Frames.freeFrames
    if free == framesBeforeDomains {
      Log.info("memory: all \(free) frames returned")
    } else {
      Log.error("memory: LEAK: \(framesBeforeDomains) frames free before the domains, \(free) after")
      Power.exit(.panic)
    }
    if failed == 0 && unbuilt == 0 {
      Log.info("poweroff: clean")
      Power.exit(.clean)
    }
    Log.info("poweroff: with the failed-domain status")
    Power.exit(.domainFailed)
  }

  /// Makes pcpu `index` leave guest mode and look at its run queue (domain pause).
  public static let kickPCPU: @convention(c) (Int) -> Void = { index in
    guard index >= 0, index < PCPUs.count, index != CPU.current else { return }
    IPI.kick(PCPUs.all[index])
  }

  /// Wakes idle pcpus so a newly runnable vcpu does not wait for the next tick.
  public static let kickIdle: @convention(c) () -> Void = {
    for cpu in PCPUs.all where cpu.index != CPU.current && cpu.idle.load(ordering: .acquiring) {
      IPI.kick(cpu)
    }
  }
}
#endif
