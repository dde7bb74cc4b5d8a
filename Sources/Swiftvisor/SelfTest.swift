#if os(none)
import X86
import Hypervisor
import Support
import Synchronization

/// The boot-time checks the system tests read: every pcpu takes timer interrupts, and every AP
/// answers an inter-processor call and a reschedule kick from the BSP.
enum SelfTest {
  static let minimumTicks: UInt64 = 3

  static func run() -> Bool {
    var healthy = true
    // Timers: wait (halted, so the BSP's own timer runs too) until every pcpu has ticked.
    let allTicked = waitUntil(seconds: 10) {
      PCPUs.online.allSatisfy { $0.timerInterrupts.load(ordering: .relaxed) >= minimumTicks }
    }
    for cpu in PCPUs.online {
      let n = cpu.timerInterrupts.load(ordering: .relaxed)
      if n >= minimumTicks {
        Log.info("timer: pcpu \(cpu.index) ok (\(n) interrupts, \(Timers.modeName))")
      } else {
        Log.error("timer: pcpu \(cpu.index) FAILED (\(n) interrupts)")
        healthy = false
      }
    }
    if !allTicked { healthy = false }

    // IPIs: a function call round trip to each AP, then a reschedule kick.
    let timeout = Clock.ticks(fromNanoseconds: 5_000_000_000)
    for cpu in PCPUs.online where cpu.index != 0 {
      let before = CPU.rdtsc()
      let answered = IPI.call(on: cpu, echo, UInt64(cpu.index), timeoutTSC: timeout)
      let cycles = CPU.rdtsc() &- before
      let echoed = echoed.load(ordering: .acquiring) == UInt64(cpu.index) + 1000
      let kicksBefore = cpu.rescheduleKicks.load(ordering: .acquiring)
      IPI.kick(cpu)
      let kicked = waitUntil(seconds: 5) { cpu.rescheduleKicks.load(ordering: .acquiring) > kicksBefore }
      if answered && echoed && kicked {
        Log.info("ipi: pcpu 0 -> pcpu \(cpu.index) round trip ok (\(cycles) TSC cycles, kick ok)")
      } else {
        Log.error("ipi: pcpu 0 -> pcpu \(cpu.index) FAILED (call answered: \(answered), echoed: \(echoed), kick: \(kicked))")
        healthy = false
      }
    }
    return healthy
  }

  static let echoed = Atomic<UInt64>(0)
  /// Runs on the target pcpu: proves it ran there by echoing its own index.
  static let echo: IPI.Function = { argument in
    SelfTest.echoed.store(UInt64(CPU.current) + 1000, ordering: .releasing)
    _ = argument
  }

  /// Halts between checks of `condition` (interrupts wake the BSP), up to `seconds`.
  static func waitUntil(seconds: UInt64, _ condition: () -> Bool) -> Bool {
    let deadline = CPU.rdtsc() &+ Clock.ticks(fromNanoseconds: seconds * 1_000_000_000)
    while !condition() {
      if CPU.rdtsc() > deadline { return false }
      Softirq.run()
      hv_sti_hlt()
      hv_cli()
    }
    return true
  }
}

/// `crash=` on the command line: fail on purpose, to prove the crash report works.
enum CrashTests {
  static func trigger(_ test: CrashTest) {
    Log.info("crash test: \(name(test))")
    switch test {
    case .ud2:
      hv_ud2()
    case .pageFault:
      _ = hv_load64(unmappedAddress)
    case .divide:
      _ = hv_divide(1, UInt64(hv_boot_magic_get() & 0))
    case .swiftTrap:
      let empty: [UInt64] = []
      _ = empty[Int(hv_boot_protocol_get())]          // index out of range: a Swift runtime trap
    case .apPageFault:
      guard let target = PCPUs.online.last, target.index != 0 else {
        Log.warning("crash test: ap-pagefault needs a second pcpu; faulting on pcpu 0")
        _ = hv_load64(unmappedAddress)
        return
      }
      _ = IPI.call(on: target, faultHere, 0, timeoutTSC: Clock.ticks(fromNanoseconds: 10_000_000_000))
    }
    Log.error("crash test: the fault did not happen")
    Power.exit(.panic)
  }

  /// Canonical, but far above the identity map.
  static let unmappedAddress: UInt64 = 0x40_0000_0000
  static let faultHere: IPI.Function = { _ in _ = hv_load64(CrashTests.unmappedAddress) }

  static func name(_ test: CrashTest) -> StaticString {
    switch test {
    case .ud2: "ud2"
    case .pageFault: "pagefault"
    case .divide: "divide"
    case .swiftTrap: "trap"
    case .apPageFault: "ap-pagefault"
    }
  }
}
#endif
