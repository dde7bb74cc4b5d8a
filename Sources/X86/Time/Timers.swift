#if os(none)
import Hypervisor
import Support

/// Per-pcpu timers on the local APIC timer.
///
/// Each pcpu keeps its deadlines (in TSC ticks) in its own TimerQueue and programs its APIC timer
/// for the earliest one: with TSC-deadline mode when the CPU has it (the deadline is written as
/// is), else in one-shot mode (the remaining time converted into APIC timer counts). The timer
/// interrupt only raises the TIMER softirq; expired timers run in the softirq, on the way out of
/// the interrupt, where they may add new timers.
public enum Timers {
  public enum Mode { case tscDeadline, oneShot }
  // The mode, the rates and `tickTSC` are set once at boot, while calibrating time, before any
  // other pcpu starts; each read is marked `unsafe` for that reason.
  nonisolated(unsafe) public static var mode: Mode = .oneShot
  /// APIC timer counts per second (divide-by-16), measured at boot; used in one-shot mode.
  nonisolated(unsafe) public private(set) static var apicTimerHz: UInt64 = 0
  /// TSC ticks to APIC timer counts (one-shot mode), by multiplication (see `Clock`).
  nonisolated(unsafe) static var apicCountsPerTick = TimeScale(ratio: 1, to: 1)

  /// Sets the calibrated APIC timer rate (after `Clock.setTSCRate`).
  public static func setAPICTimerRate(_ hz: UInt64) {
    unsafe apicTimerHz = hz
    unsafe apicCountsPerTick = TimeScale(ratio: max(hz, 1), to: max(Clock.tscHz, 1))
  }
  nonisolated(unsafe) public static var tickTSC: UInt64 = 0

  public static var modeName: StaticString { unsafe mode == .tscDeadline ? "tsc-deadline" : "one-shot" }

  /// The APIC timer's LVT in the chosen mode, unmasked (at start-up, and after `reprogram`
  /// masked it).
  private static func configureTimerLVT() {
    unsafe LocalAPIC.configureTimer(mode: mode == .tscDeadline ? .tscDeadline : .oneShot)
  }

  /// Sets up this pcpu's APIC timer in the chosen mode and starts the periodic tick.
  public static func startOnThisCPU() {
    configureTimerLVT()
    let cpu = PCPUs.current
    cpu.timerLock.withLock { _ = unsafe cpu.timers.insert(deadline: CPU.rdtsc() &+ tickTSC, payload: .tick) }
    reprogram(cpu)
  }

  /// Adds a timer on this pcpu (interrupts must be off).
  @discardableResult
  public static func add(after nanoseconds: UInt64, _ event: TimerEvent) -> TimerID {
    add(atTSC: CPU.rdtsc().addingSaturating(Clock.ticks(fromNanoseconds: nanoseconds)), event)
  }

  /// Adds a timer on this pcpu for TSC value `deadline` (interrupts must be off).
  @discardableResult
  public static func add(atTSC deadline: UInt64, _ event: TimerEvent) -> TimerID {
    let cpu = PCPUs.current
    let id = cpu.timerLock.withLock { cpu.timers.insert(deadline: deadline, payload: event) }
    reprogram(cpu)
    return id
  }

  /// Adds a timer on this pcpu for hypervisor system time `nanoseconds` (interrupts must be off):
  /// when it runs, `Clock.now()` is at or past `nanoseconds` (`Clock.tsc(atSystemTime:)`). A time
  /// that never comes gives a timer for TSC `UInt64.max`, which never runs.
  @discardableResult
  public static func add(atSystemTime nanoseconds: UInt64, _ event: TimerEvent) -> TimerID {
    add(atTSC: Clock.tsc(atSystemTime: nanoseconds), event)
  }

  /// Cancels a timer on any pcpu (a vcpu's timer armed where it ran before). The target's
  /// hardware timer is left as it is: at worst it fires once for nothing.
  public static func cancel(_ id: TimerID, on cpu: PerCPU) {
    cpu.timerLock.withLock { _ = cpu.timers.cancel(id) }
  }

  /// The most timers one TIMER softirq runs. Each pcpu has a few timers (its tick, a preemption
  /// check, one per vcpu that armed one there), so this is never reached in normal running; it
  /// bounds the time spent with interrupts off if a timer keeps re-adding itself in the past.
  static let maximumPerSoftirq = 64

  /// The TIMER softirq: run the expired timers (at most `maximumPerSoftirq`), then program the
  /// next deadline; if expired ones are left, that deadline is past and the timer interrupt
  /// comes again at once, after interrupts were open. The queue's lock is not held while a
  /// timer runs, so it may add and cancel timers.
  static func runExpired() {
    let cpu = PCPUs.current
    for _ in 0..<maximumPerSoftirq {
      let expired = cpu.timerLock.withLock { cpu.timers.popExpired(now: CPU.rdtsc()) }
      guard let (_, _, event) = expired else { break }
      switch event {
      case .tick:
        cpu.timerLock.withLock { _ = unsafe cpu.timers.insert(deadline: CPU.rdtsc() &+ tickTSC, payload: .tick) }
        Scheduler.active?.tick(pcpu: cpu.index, now: Clock.now())
        if cpu.index == 0 { GuestConsoles.pollInput(); GuestConsoles.drainHeldBack(); Log.drainSink() }
      case .preemptionCheck:
        // The interrupt itself made the guest exit, and the run loop asks the policy at every
        // exit; the run loop arms the next one.
        cpu.preemptionTimer = nil
        cpu.preemptionDeadline = .max
        cpu.preemptionTSC = 0
      case .call(let function, let argument):
        function(argument)
      }
    }
    reprogram(cpu)
  }

  /// Programs this pcpu's hardware timer for the earliest deadline in its queue.
  static func reprogram(_ cpu: PerCPU) {
    let next = cpu.timerLock.withLock { cpu.timers.nextDeadline }
    guard let deadline = next else {
      LocalAPIC.maskTimer()
      cpu.timerMasked = true
      return
    }
    if cpu.timerMasked {
      // Writing a count or a deadline does not unmask the LVT.
      configureTimerLVT()
      cpu.timerMasked = false
    }
    cpu.programmedDeadline = deadline
    switch unsafe mode {
    case .tscDeadline:
      LocalAPIC.setDeadline(tsc: max(deadline, 1))
    case .oneShot:
      let now = CPU.rdtsc()
      // Bound the wait so the conversion cannot overflow; a far deadline just re-arms later.
      let remaining = deadline > now ? deadline - now : 0
      let counts = unsafe apicCountsPerTick.scaledSaturating(remaining)
      LocalAPIC.startOneShot(count: UInt32(clamping: max(counts, 1)))   // a far deadline re-arms when this fires
    }
  }
}
#endif
