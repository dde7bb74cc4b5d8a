#if os(none)
import Synchronization
import Hypervisor
import Support

/// What the hypervisor keeps for each physical CPU. Only its own pcpu writes the plain fields;
/// other pcpus use the atomics (and the call mailbox) to talk to it.
public final class PerCPU: @unchecked Sendable {
  public let index: Int
  public let apicID: UInt32
  /// The pcpu's hypervisor stack (the only one it has: see docs/architecture.md, "Stackless vcpus").
  public var stackBottom: UInt64 = 0
  public var stackTop: UInt64 = 0

  public let online = Atomic<Bool>(false)
  public let timerInterrupts = Atomic<UInt64>(0)
  public let rescheduleKicks = Atomic<UInt64>(0)
  /// Set by the SCHEDULE softirq: the run loop must pick again at the next exit.
  public let rescheduleRequested = Atomic<Bool>(false)
  /// True while the pcpu halts in its run loop with nothing to run.
  public let idle = Atomic<Bool>(false)
  /// The vcpu that last ran here (to know when its TLB entries may be stale).
  public var lastVCPU: VCPU?
  /// Pending softirq bits (Softirq.Kind), raised by anyone, run by this pcpu on its way out of an interrupt.
  public let softirqPending = Atomic<UInt32>(0)

  /// Per-pcpu timers. This pcpu adds, runs and programs them; any pcpu may cancel one (a
  /// vcpu's timer armed where it ran before), so every access takes `timerLock`.
  public var timers = TimerQueue<TimerEvent>()
  public let timerLock = SpinLock()
  public var programmedDeadline: UInt64 = 0
  /// The APIC timer's LVT is masked (`Timers.reprogram` found no timer): the next deadline
  /// unmasks it, or it would never fire again.
  public var timerMasked = false
  /// The policy's `deadline(pcpu:)` the run loop last armed for (RunLoop.armPreemption).
  public var preemptionDeadline: UInt64 = .max
  /// The scheduler's preemption timer: armed for `preemptionTimerDeadline`, which is at or
  /// before `preemptionDeadline` (a later deadline leaves an armed timer as it is).
  public var preemptionTimer: TimerID?
  public var preemptionTimerDeadline: UInt64 = .max
  /// The TSC at which that timer fires (`Clock.tsc(atSystemTime:)`): an exit before it needs no
  /// clock reading to know the deadline is still ahead. 0 once the timer ran.
  public var preemptionTSC: UInt64 = 0

  /// Cross-pcpu function call mailbox (IPI.swift).
  let callLock = SpinLock()
  let callFunction = Atomic<UInt>(0)
  let callArgument = Atomic<UInt64>(0)
  let callRequested = Atomic<UInt64>(0)
  let callCompleted = Atomic<UInt64>(0)

  init(index: Int, apicID: UInt32) {
    self.index = index
    self.apicID = apicID
  }
}

/// A deferred action on a pcpu's timer queue.
public enum TimerEvent {
  /// The periodic housekeeping tick (`tick=` Hz on the command line): the scheduler's tick.
  case tick
  /// The scheduler wants to look at the running vcpu (end of its slice or credit, rate limit).
  case preemptionCheck
  /// Call `function(argument)` on this pcpu.
  case call(@convention(c) (UInt64) -> Void, UInt64)
}

/// All pcpus, indexed by pcpu number. Filled on the BSP before any AP starts and never resized
/// afterwards, so reading it from any pcpu needs no lock (each read is marked `unsafe` for that
/// reason; `stackBounds` likewise, and `forGuests`, which is decided before any domain exists).
public enum PCPUs {
  nonisolated(unsafe) public private(set) static var all: [PerCPU] = []
  /// Stack bounds by pcpu, in a fixed table the crash reporter can read without allocating.
  nonisolated(unsafe) static var stackBounds = InlineArray<64, (UInt64, UInt64)>(repeating: (0, 0))

  public static var count: Int { unsafe all.count }
  public static var current: PerCPU { unsafe all[CPU.current] }

  public static func add(apicID: UInt32) -> PerCPU {
    if unsafe all.isEmpty { unsafe all.reserveCapacity(Int(HV_MAX_PCPUS)) }
    let cpu = unsafe PerCPU(index: all.count, apicID: apicID)
    unsafe all.append(cpu)
    return cpu
  }

  public static func setStack(_ cpu: PerCPU, bottom: UInt64, top: UInt64) {
    cpu.stackBottom = bottom
    cpu.stackTop = top
    if cpu.index < 64 { unsafe stackBounds[cpu.index] = (bottom, top) }
  }

  /// The pcpus that may run vcpus: all of them unless pcpu 0 is kept free of guests
  /// (`cpu0guests=`, decided once at boot before any domain exists).
  nonisolated(unsafe) public static var forGuests = CPUAffinity.all

  /// The pcpus that came online (an AP that did not keeps its entry, offline).
  public static var online: [PerCPU] { unsafe all.filter { $0.online.load(ordering: .acquiring) } }

  public static var onlineCount: Int {
    var n = 0
    for cpu in unsafe all where cpu.online.load(ordering: .acquiring) { n += 1 }
    return n
  }
}
#endif
