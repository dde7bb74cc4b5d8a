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
  nonisolated(unsafe) public static var mode: Mode = .oneShot
  /// APIC timer counts per second (divide-by-16), measured at boot; used in one-shot mode.
  nonisolated(unsafe) public static var apicTimerHz: UInt64 = 0
  nonisolated(unsafe) public static var tickTSC: UInt64 = 0

  public static var modeName: StaticString { mode == .tscDeadline ? "tsc-deadline" : "one-shot" }

  /// Sets up this pcpu's APIC timer in the chosen mode and starts the periodic tick.
  public static func startOnThisCPU() {
    LocalAPIC.configureTimer(mode: mode == .tscDeadline ? .tscDeadline : .oneShot)
    let cpu = PCPUs.current
    cpu.timers.insert(deadline: CPU.rdtsc() &+ tickTSC, payload: .tick)
    reprogram(cpu)
  }

  /// Adds a timer on this pcpu (interrupts must be off).
  @discardableResult
  public static func add(after nanoseconds: UInt64, _ event: TimerEvent) -> TimerID {
    let cpu = PCPUs.current
    let id = cpu.timers.insert(deadline: CPU.rdtsc() &+ Clock.ticks(fromNanoseconds: nanoseconds), payload: event)
    reprogram(cpu)
    return id
  }

  /// The TIMER softirq: run every expired timer, then program the next deadline.
  static func runExpired() {
    let cpu = PCPUs.current
    while let (_, _, event) = cpu.timers.popExpired(now: CPU.rdtsc()) {
      switch event {
      case .tick:
        cpu.timers.insert(deadline: CPU.rdtsc() &+ tickTSC, payload: .tick)
      case .call(let function, let argument):
        function(argument)
      }
    }
    reprogram(cpu)
  }

  private static func reprogram(_ cpu: PerCPU) {
    guard let deadline = cpu.timers.nextDeadline else {
      LocalAPIC.maskTimer()
      return
    }
    cpu.programmedDeadline = deadline
    switch mode {
    case .tscDeadline:
      LocalAPIC.setDeadline(tsc: max(deadline, 1))
    case .oneShot:
      let now = CPU.rdtsc()
      // Bound the wait so the conversion cannot overflow; a far deadline just re-arms later.
      let remaining = min(deadline > now ? deadline - now : 0, Clock.tscHz * 10)
      let product = remaining.multipliedFullWidth(by: apicTimerHz)
      let counts = Clock.tscHz > 0 ? Clock.tscHz.dividingFullWidth(product).quotient : 1
      LocalAPIC.startOneShot(count: UInt32(clamping: max(counts, 1)))
    }
  }
}
#endif
