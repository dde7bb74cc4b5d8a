#if os(none)
import Synchronization

/// Deferred work, as Xen's softirqs: raised by anyone (an interrupt, another pcpu), run by the
/// owning pcpu on its way out of an interrupt or in its idle loop, never nested.
public enum Softirq {
  public enum Kind: UInt32 {
    case timer = 0
    case schedule = 1
  }

  public static func raise(_ kind: Kind, on cpu: PerCPU) {
    cpu.softirqPending.bitwiseOr(1 << kind.rawValue, ordering: .releasing)
  }

  /// Runs every pending softirq of this pcpu. Interrupts are off.
  public static func run() {
    let cpu = PCPUs.current
    while true {
      let pending = cpu.softirqPending.exchange(0, ordering: .acquiringAndReleasing)
      if pending == 0 { return }
      if pending & (1 << Kind.timer.rawValue) != 0 { Timers.runExpired() }
      if pending & (1 << Kind.schedule.rawValue) != 0 {
        cpu.rescheduleKicks.wrappingAdd(1, ordering: .relaxed)
        cpu.rescheduleRequested.store(true, ordering: .releasing)
      }
    }
  }
}
#endif
