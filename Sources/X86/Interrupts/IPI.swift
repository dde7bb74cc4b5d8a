#if os(none)
import Synchronization
import Hypervisor
import Support

/// Inter-processor interrupts: kick a pcpu to reschedule, or run a function on it.
public enum IPI {
  public typealias Function = @convention(c) (UInt64) -> Void

  /// Asks `cpu` to run its scheduler soon (raises SCHEDULE there and interrupts it).
  public static func kick(_ cpu: PerCPU) {
    Softirq.raise(.schedule, on: cpu)
    LocalAPIC.sendIPI(to: cpu.apicID, vector: Vector.reschedule)
  }

  /// Runs `function(argument)` on `cpu` in interrupt context and waits for it to finish.
  /// Returns false if the target did not answer within `timeoutTSC` ticks.
  public static func call(on cpu: PerCPU, _ function: Function, _ argument: UInt64, timeoutTSC: UInt64) -> Bool {
    cpu.callLock.lock()
    defer { cpu.callLock.unlock() }
    let sequence = cpu.callRequested.load(ordering: .relaxed) &+ 1
    cpu.callFunction.store(unsafe unsafeBitCast(function, to: UInt.self), ordering: .relaxed)
    cpu.callArgument.store(argument, ordering: .relaxed)
    cpu.callRequested.store(sequence, ordering: .releasing)
    LocalAPIC.sendIPI(to: cpu.apicID, vector: Vector.callFunction)
    let start = CPU.rdtsc()
    while cpu.callCompleted.load(ordering: .acquiring) != sequence {
      if CPU.rdtsc() &- start > timeoutTSC { return false }
      hv_pause()
    }
    return true
  }

  /// The call-function IPI handler, on the target pcpu.
  static func handleCall() {
    let cpu = PCPUs.current
    let sequence = cpu.callRequested.load(ordering: .acquiring)
    guard sequence != cpu.callCompleted.load(ordering: .relaxed) else { return }
    let raw = cpu.callFunction.load(ordering: .relaxed)
    let argument = cpu.callArgument.load(ordering: .relaxed)
    if raw != 0 {
      let function = unsafe unsafeBitCast(raw, to: Function.self)
      function(argument)
    }
    cpu.callCompleted.store(sequence, ordering: .releasing)
  }
}
#endif
