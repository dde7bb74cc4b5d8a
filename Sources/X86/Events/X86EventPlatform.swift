#if os(none)
import Hypervisor
import XenABI
import Support
import Synchronization

/// Event channels on x86 (docs/events.md, "The arch contract"): waking and interrupting vcpus.
/// The guest's shared_info and vcpu_info pages are machine frames the hypervisor reaches
/// through its identity map, so their machine addresses (`Events.sharedInfo(of:)`,
/// `Events.vcpuInfo(of:)`) are what `SharedWords` works on, with LOCK-prefixed instructions,
/// exactly as the guest's own handler does on the other side.
public final class X86EventPlatform: EventPlatform {
  public init() {}

  /// A blocked vcpu is made runnable (the scheduler kicks the pcpu that will run it); a vcpu in
  /// guest mode on another pcpu is forced out by an IPI, and the upcall is injected when it
  /// re-enters. On this pcpu nothing is needed: it re-enters after the current exit.
  public func kick(_ vcpu: VCPU) {
    // The event (pending bit, IRR, poll flag) is written: make it visible before reading the
    // state, the mirror of the fence in RunLoop.block.
    atomicMemoryFence(ordering: .sequentiallyConsistent)
    switch vcpu.runState {
    case .blocked:
      unsafe Scheduler.policy?.unblock(vcpu)
    case .running:
      let where_ = vcpu.lastPCPU
      if where_ >= 0 && where_ != CPU.current { unsafe Scheduler.kickPCPU?(where_) }
    case .runnable, .paused, .down:
      break
    }
  }
}

/// The hypervisor's clock and the vcpus' timers on x86: system time from the TSC (Clock), and
/// each vcpu's earliest deadline as one timer in the queue of the pcpu that armed it.
public final class X86TimePlatform: TimePlatform {
  public init() {}
  public func now() -> UInt64 { Clock.now() }

  public func arm(_ vcpu: VCPU, at deadline: UInt64) {
    if vcpu.armedTimerPCPU >= 0 {
      unsafe Timers.cancel(TimerID(raw: vcpu.armedTimerID), on: PCPUs.all[vcpu.armedTimerPCPU])
      vcpu.armedTimerPCPU = -1
    }
    // `.max`, or a deadline so far ahead that its TSC does not fit (a guest may ask for any
    // 64-bit time): nothing to arm.
    let tsc = deadline == .max ? UInt64.max : Clock.tsc(atSystemTime: deadline)
    guard tsc != .max else { return }
    let argument = unsafe UInt64(vcpu.domain.id) << 32 | UInt64(UInt32(vcpu.id))
    let id = Timers.add(atTSC: tsc, .call(Self.fire, argument))
    vcpu.armedTimerPCPU = CPU.current
    vcpu.armedTimerID = id.raw
  }

  /// Runs in the TIMER softirq of the pcpu that armed the timer. The vcpu is found again by
  /// domain and vcpu id (a destroy cancels its vcpus' timers, and ids are not given out again
  /// soon after it: they rotate), so a timer that outlives its domain does nothing.
  static let fire: @convention(c) (UInt64) -> Void = { argument in
    let domainID = UInt16(truncatingIfNeeded: argument >> 32)
    let vcpuID = Int(UInt32(truncatingIfNeeded: argument))
    guard let domain = Domains.find(id: domainID), domain.isAlive, vcpuID < domain.vcpus.count else { return }
    VCPUTimers.expire(domain.vcpus[vcpuID], now: Clock.now())
  }
}
#endif
