import Synchronization

/// The scheduler interface: what the pcpu loop asks for, whatever the policy.
///
/// Policies are classes conforming to `SchedulerPolicy` (a class-bound protocol: Embedded Swift
/// allows those as existentials). `Scheduler.policy` is chosen at boot. All calls may come from
/// any pcpu with interrupts off; the policy does its own locking.
public protocol SchedulerPolicy: AnyObject {
  /// A vcpu became runnable (created and started, woken, unpaused).
  func wake(_ vcpu: VCPU)
  /// An event arrived for `vcpu`: runnable again if, and only if, it is blocked (a down or
  /// paused vcpu stays where it is). Checked under the policy's lock, so it never races a block.
  func unblock(_ vcpu: VCPU)
  /// The vcpu `pcpu` should run next, or nil to idle. The returned vcpu is marked running.
  func pick(pcpu: Int) -> VCPU?
  /// The running vcpu gives up its pcpu but stays runnable (yield, preemption).
  func requeue(_ vcpu: VCPU)
  /// The running vcpu stops being runnable (blocked, paused, down); it is no longer queued.
  func sleep(_ vcpu: VCPU, as state: VCPU.RunState)
  /// Forget the vcpu entirely (its domain is being destroyed).
  func remove(_ vcpu: VCPU)
  /// Whether the vcpu is running or queued to run, read under the policy's lock, so the answer
  /// is ordered with every wake: once a vcpu's `mustStop` is set no wake makes it runnable
  /// (`wake` and `unblock` refuse it), so a false here stays false. What the last vcpu of a
  /// shut-down domain asks before the domain is destroyed (`RunLoop.park`).
  func isOnPCPU(_ vcpu: VCPU) -> Bool
  /// Take the vcpu off the pcpus until `unpause` (a running vcpu: at its next exit, when the
  /// run loop calls this). Remembers whether it was runnable or blocked.
  func pause(_ vcpu: VCPU)
  /// Undo `pause`: back to runnable (queued) or blocked, whichever it was.
  func unpause(_ vcpu: VCPU)
  /// Length of a time slice, in nanoseconds.
  var timeslice: UInt64 { get }

  // Time-aware calls (times are hypervisor system time in nanoseconds). A policy that measures
  // run time (CreditScheduler) needs them; the defaults below keep a policy that does not
  // (RoundRobinScheduler) behaving exactly as before. See docs/scheduling.md for when the run
  // loop calls each one.

  /// `pick(pcpu:)` with the time the pcpu starts running what it returns.
  func pick(pcpu: Int, now: UInt64) -> VCPU?
  /// The vcpu `pick` gave this pcpu has left it (before `requeue`, `sleep` or `pause`): charge
  /// its run time up to `now`.
  func descheduled(_ vcpu: VCPU, now: UInt64)
  /// Asked at an exit of the running vcpu: must it give up the pcpu now (slice over, a
  /// higher-priority vcpu waiting, its domain out of its cap)?
  func shouldPreempt(pcpu: Int, running: VCPU, now: UInt64) -> Bool
  /// SCHEDOP_yield by `running`, the vcpu on `pcpu`, at `now`: true if the policy would pick it
  /// again straight away (nothing here or to steal is as good), so it goes on running without
  /// leaving the pcpu, as Xen continues a yielding vcpu when its scheduler picks it again.
  func keepsRunningAfterYield(pcpu: Int, running: VCPU, now: UInt64) -> Bool
  /// The latest time the pcpu must next ask `shouldPreempt` (arm a one-shot timer for it);
  /// `UInt64.max` when only the policy's `timeslice` matters.
  func deadline(pcpu: Int) -> UInt64
  /// The words behind `shouldPreempt`'s answer for `pcpu` while nothing changes, for the run
  /// loop to read inline at every exit: `shouldPreempt` must answer false whenever
  /// `mustAsk(now:)` does, and its `deadline` is `deadline(pcpu:)`. Lives as long as the policy.
  func preemptionCheck(pcpu: Int) -> PreemptionCheck
  /// The pcpu's periodic timer fired (every 10 ms).
  func tick(pcpu: Int, now: UInt64)
  /// A domain's scheduling parameters: xl's `weight`, `cap` (percent of one pcpu, 0 = none)
  /// and hard affinity (`cpus`).
  func setParameters(domain: Domain, weight: Int, cap: Int, affinity: CPUAffinity)
}

extension SchedulerPolicy {
  public func pick(pcpu: Int, now: UInt64) -> VCPU? { pick(pcpu: pcpu) }
  public func descheduled(_ vcpu: VCPU, now: UInt64) {}
  public func shouldPreempt(pcpu: Int, running: VCPU, now: UInt64) -> Bool { false }
  public func keepsRunningAfterYield(pcpu: Int, running: VCPU, now: UInt64) -> Bool { false }
  public func deadline(pcpu: Int) -> UInt64 { .max }
  public func tick(pcpu: Int, now: UInt64) {}
  public func setParameters(domain: Domain, weight: Int, cap: Int, affinity: CPUAffinity) {}
}

/// What a policy keeps for one pcpu so that the run loop can tell, with two loads and a compare,
/// that `shouldPreempt` would answer false: until `deadline` (system time, ns) and while
/// `recheck` is clear, nothing can have changed for the running vcpu. Every exit reads it; the
/// policy writes it under its own lock when it picks, charges or is told of a change.
public final class PreemptionCheck: Sendable {
  /// When the pcpu must ask again even if nothing changed (end of slice, of credit, of cap).
  public let deadline = Atomic<UInt64>(.max)
  /// Something changed (a wake, a tick, accounting): the next exit asks.
  public let recheck = Atomic<Bool>(false)

  public init(deadline: UInt64 = .max) { self.deadline.store(deadline, ordering: .relaxed) }

  /// For a pcpu a policy does not schedule: every exit asks.
  public static let alwaysAsk = PreemptionCheck(deadline: 0)

  /// True when the run loop must call `shouldPreempt` at an exit at `now`.
  @inline(__always) public func mustAsk(now: UInt64) -> Bool {
    now >= deadline.load(ordering: .relaxed) || recheck.load(ordering: .relaxed)
  }
}

public enum Scheduler {
  /// Chosen once at boot, before `started` is set; never changed afterwards.
  nonisolated(unsafe) public static var policy: (any SchedulerPolicy)?
  /// Set (releasing) once `policy` is in place: pcpus already running their loop and timer
  /// ticks read the policy only after seeing this.
  public static let started = Atomic<Bool>(false)

  /// The policy, once the scheduler has started.
  public static var active: (any SchedulerPolicy)? {
    started.load(ordering: .acquiring) ? unsafe policy : nil
  }
  /// Set by the arch layer: makes pcpu N leave guest mode soon (an IPI). Set once at boot, as
  /// is `kickIdlePCPUs`, before the scheduler starts: reads are marked `unsafe` for that reason.
  nonisolated(unsafe) public static var kickPCPU: (@convention(c) (Int) -> Void)?
  /// Set by the arch layer: interrupts idle pcpus so they look at the run queue now.
  nonisolated(unsafe) public static var kickIdlePCPUs: (@convention(c) () -> Void)?
}

/// The first policy: one global round-robin queue with timer preemption. Every pcpu takes the
/// vcpu at the head; a vcpu that used its slice, yielded or was woken goes to the tail. Simple
/// and fair for equal vcpus; no weights, caps or affinity. The credit scheduler replaced it as
/// the default; `sched=rr` still selects it (to compare against, and as the smallest example of
/// a `SchedulerPolicy`).
public final class RoundRobinScheduler: SchedulerPolicy {
  private let lock = SpinLock()
  private var queue: [VCPU] = []
  private var head = 0
  public let timeslice: UInt64
  /// Per pcpu, when the running vcpu's slice ends (its deadline). Each pcpu touches only its
  /// own entry.
  private let slices: [PreemptionCheck]

  public init(pcpus: Int = CPUAffinity.maximumPCPUs, timesliceNanoseconds: UInt64 = 10_000_000) {
    timeslice = timesliceNanoseconds
    var slices: [PreemptionCheck] = []
    for _ in 0..<max(pcpus, 1) { slices.append(PreemptionCheck()) }
    self.slices = slices
  }

  public func wake(_ vcpu: VCPU) {
    lock.withLock {
      // A stopping vcpu never runs again (`isOnPCPU`).
      guard !vcpu.mustStop else { return }
      guard vcpu.runState == .blocked || vcpu.runState == .down || vcpu.runState == .paused else { return }
      vcpu.runState = .runnable
      queue.append(vcpu)
    }
    unsafe Scheduler.kickIdlePCPUs?()
  }

  public func unblock(_ vcpu: VCPU) {
    let woke = lock.withLock { () -> Bool in
      guard vcpu.runState == .blocked, !vcpu.mustStop else { return false }
      vcpu.runState = .runnable
      queue.append(vcpu)
      return true
    }
    if woke { unsafe Scheduler.kickIdlePCPUs?() }
  }

  public func pick(pcpu: Int) -> VCPU? {
    lock.withLock {
      while head < queue.count {
        let vcpu = queue[head]
        head += 1
        compact()
        if vcpu.runState == .runnable {
          vcpu.runState = .running
          return vcpu
        }
      }
      return nil
    }
  }

  public func pick(pcpu: Int, now: UInt64) -> VCPU? {
    let vcpu = pick(pcpu: pcpu)
    if pcpu < slices.count {
      slices[pcpu].deadline.store(vcpu == nil ? .max : now &+ timeslice, ordering: .relaxed)
    }
    return vcpu
  }

  public func shouldPreempt(pcpu: Int, running: VCPU, now: UInt64) -> Bool {
    pcpu < slices.count && slices[pcpu].mustAsk(now: now)
  }

  public func deadline(pcpu: Int) -> UInt64 {
    pcpu < slices.count ? slices[pcpu].deadline.load(ordering: .relaxed) : .max
  }

  public func preemptionCheck(pcpu: Int) -> PreemptionCheck {
    pcpu >= 0 && pcpu < slices.count ? slices[pcpu] : .alwaysAsk
  }

  public func requeue(_ vcpu: VCPU) {
    lock.withLock {
      guard vcpu.runState == .running else { return }
      vcpu.runState = .runnable
      queue.append(vcpu)
    }
  }

  public func sleep(_ vcpu: VCPU, as state: VCPU.RunState) {
    lock.withLock { vcpu.runState = state }
  }

  public func isOnPCPU(_ vcpu: VCPU) -> Bool {
    lock.withLock { vcpu.runState.isOnPCPU }
  }

  public func remove(_ vcpu: VCPU) {
    lock.withLock {
      vcpu.runState = .down
      var kept: [VCPU] = []
      for i in head..<queue.count where queue[i] !== vcpu { kept.append(queue[i]) }
      queue = kept
      head = 0
    }
  }

  public func pause(_ vcpu: VCPU) {
    lock.withLock {
      switch vcpu.runState {
      case .runnable, .running: vcpu.pausedFrom = .runnable     // a queued entry is skipped by pick
      case .blocked: vcpu.pausedFrom = .blocked
      case .paused, .down: return
      }
      vcpu.runState = .paused
    }
  }

  public func unpause(_ vcpu: VCPU) {
    var woke = false
    lock.withLock {
      guard vcpu.runState == .paused else { return }
      if vcpu.pausedFrom == .blocked {
        vcpu.runState = .blocked
      } else {
        vcpu.runState = .runnable
        queue.append(vcpu)
        woke = true
      }
    }
    if woke { unsafe Scheduler.kickIdlePCPUs?() }
  }

  public var queued: Int { lock.withLock { queue.count - head } }

  /// Drops the consumed prefix now and then, so the array does not grow without bound.
  private func compact() {
    if head > 64 && head * 2 > queue.count {
      queue.removeFirst(head)
      head = 0
    }
  }
}
