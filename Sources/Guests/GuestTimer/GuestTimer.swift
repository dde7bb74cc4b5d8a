/// guest-timer: Xen's per-vcpu timers, delivered as VIRQ_TIMER through the callback vector.
/// Maps shared_info, sets HVM_PARAM_CALLBACK_IRQ to vector 0xF3, binds VIRQ_TIMER on vcpu 0 and
/// enables interrupts, then checks, one line each ("guest-timer: <check> ok …" or
/// "guest-timer: <check> FAIL (…)"):
///   past-deadline    a singleshot timer already due fires at once; with VCPU_SSHOTTMR_future
///                    the same call answers -ETIME
///   lateness         `timers=<n>` (default 20) singleshot timers 2 ms ahead, each waited for;
///                    none may fire before its deadline (system time read in the handler);
///                    min/mean/max lateness in microseconds
///   stop-singleshot  a stopped timer does not fire
///   periodic         a 10 ms periodic timer: 10 events take >= 90 ms, none after the stop
///   set-timer-op     set_timer_op(deadline) fires, set_timer_op(0) cancels
///   runstate         a registered runstate area says "running", and its blocked time grows
///                    while the vcpu sleeps in HLT
/// then "guest-timer: done" and poweroff. `wait=halt|block|poll|spin` picks how it sleeps
/// (default halt: `sti; hlt`). If the first check gets no event at all, the later waits spin,
/// so that a missing timer ends in a FAIL line rather than a vcpu halted for good.
@main
struct GuestTimer {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-timer is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-timer")

/// System time read by the VIRQ_TIMER handler at its last event (written before the port's
/// count moves, so a waiter that saw the count sees this). Lazily allocated: first touched in
/// run(), before interrupts are on.
nonisolated(unsafe) let lastTimerEvent: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  p.initialize(to: 0)
  return p
}()

let onTimer: EventHandler = { _, _ in
  gs_atomic_store(lastTimerEvent, SystemTime.now())
}

let ms = SystemTime.nanosecondsPerMillisecond
let us = SystemTime.nanosecondsPerMicrosecond
/// How long any wait for an event may take before it counts as "never fired".
let eventTimeout: UInt64 = 2_000 * ms

struct TimerTests {
  let port: UInt32
  /// How to sleep while an event is expected.
  var mode: WaitMode

  var events: UInt64 { Events.count(port) }

  /// Waits for the port's count to pass `count`; false after `eventTimeout`.
  func waitForEvent(after count: UInt64, mode: WaitMode? = nil, from start: UInt64 = SystemTime.now()) -> Bool {
    Wait.until(mode ?? self.mode, deadline: start &+ eventTimeout, ports: [port]) { Events.count(port) > count }
  }

  /// Events that arrive during `nanoseconds` of spinning with interrupts on.
  func eventsDuring(_ nanoseconds: UInt64) -> UInt64 {
    let before = events
    Wait.spin(nanoseconds: nanoseconds)
    return events &- before
  }

  /// A deadline already passed fires at once (flags 0), or is refused with -ETIME (future flag).
  mutating func pastDeadline() {
    let before = events
    let now = SystemTime.now()
    let r = Timers.setSingleshot(at: now &- ms)
    let fired = r == 0 && waitForEvent(after: before, mode: .spin, from: now)
    let latency = fired ? gs_atomic_load(lastTimerEvent) &- now : 0
    let refused = Timers.setSingleshot(at: SystemTime.now() &- ms, flags: Timers.future)
    let extra = eventsDuring(10 * ms)
    if !fired && mode != .spin {
      mode = .spin
      report.line("no timer event arrived: the remaining waits spin instead of sleeping")
    }
    report.check(
      "past-deadline", r == 0 && fired && latency < 100 * ms && refused == Errno.ETIME && extra == 0,
      ok: "(fired \(latency / us) us after the call; with VCPU_SSHOTTMR_future: \(refused))",
      fail: "set returned \(r), fired \(fired ? "after \(latency / us) us" : "never"), with VCPU_SSHOTTMR_future returned \(refused) (want \(Errno.ETIME)), \(extra) events after that (want 0)")
  }

  /// `count` singleshot timers 2 ms ahead, one after the other.
  func lateness(count: Int) {
    var minimum = UInt64.max, maximum: UInt64 = 0, total: UInt64 = 0, measured: UInt64 = 0
    var early = 0, earliest: UInt64 = 0, missed = 0, refused: Int64 = 0
    for _ in 0..<count {
      let before = events
      let deadline = SystemTime.now() &+ 2 * ms
      let r = Timers.setSingleshot(at: deadline)
      if r != 0 {
        refused = r
        break
      }
      guard waitForEvent(after: before) else {
        missed += 1
        Timers.stopSingleshot()
        if missed == 3 { break }   // 2 s each: enough to know
        continue
      }
      let fired = gs_atomic_load(lastTimerEvent)
      if fired < deadline {
        early += 1
        earliest = max(earliest, deadline - fired)
        continue
      }
      let late = fired - deadline
      minimum = min(minimum, late)
      maximum = max(maximum, late)
      total &+= late
      measured += 1
    }
    let mean = measured > 0 ? total / measured : 0
    let summary = measured > 0 ? "late by min \(minimum / us) us mean \(mean / us) us max \(maximum / us) us" : "none measured"
    report.check(
      "lateness", refused == 0 && early == 0 && missed == 0 && measured == UInt64(count),
      ok: "\(count) timers, \(summary)",
      fail: "\(early) fired early (the earliest \(earliest) ns before its deadline), \(missed) never fired within 2 s (it stops at 3), set returned \(refused); \(summary)")
  }

  /// A timer stopped before its deadline stays silent.
  func stopSingleshot() {
    let set = Timers.setSingleshot(at: SystemTime.now() &+ 5 * ms)
    let stopped = Timers.stopSingleshot()
    let extra = eventsDuring(20 * ms)
    report.check(
      "stop-singleshot", set == 0 && stopped == 0 && extra == 0, ok: "(no event in 20 ms)",
      fail: "set returned \(set), stop returned \(stopped), \(extra) events in the 20 ms after the stop (want 0)")
  }

  /// A 10 ms periodic timer: 10 events take at least 90 ms (the first may come at once or after
  /// one period), and none come after the stop.
  func periodic() {
    let before = events
    let start = SystemTime.now()
    let set = Timers.setPeriodic(period: 10 * ms)
    let got = set == 0
      && Wait.until(mode, deadline: start &+ eventTimeout, ports: [port]) { Events.count(port) >= before &+ 10 }
    let last = gs_atomic_load(lastTimerEvent)
    let elapsed = last > start ? last - start : 0
    let stopped = Timers.stopPeriodic()
    let extra = eventsDuring(30 * ms)
    report.check(
      "periodic", got && elapsed >= 90 * ms && stopped == 0 && extra == 0,
      ok: "(10 events in \(elapsed / us) us, none in 30 ms after the stop)",
      fail: "set returned \(set), \(events &- before &- extra) events within 2 s (want 10) in \(elapsed / us) us (want >= 90000), stop returned \(stopped), \(extra) events after it (want 0)")
  }

  /// set_timer_op: the older call for the same singleshot timer.
  func setTimerOp() {
    let before = events
    let deadline = SystemTime.now() &+ 2 * ms
    let set = Timers.setTimerOp(deadline)
    let fired = set == 0 && waitForEvent(after: before)
    let at = gs_atomic_load(lastTimerEvent)
    let rearmed = Timers.setTimerOp(SystemTime.now() &+ 5 * ms)
    let cancelled = Timers.setTimerOp(0)
    let extra = eventsDuring(20 * ms)
    report.check(
      "set-timer-op", fired && at >= deadline && rearmed == 0 && cancelled == 0 && extra == 0,
      ok: "(fired \((at &- deadline) / us) us late; 0 cancels)",
      fail: "set returned \(set), fired \(fired ? (at >= deadline ? "\((at - deadline) / us) us late" : "\(deadline - at) ns early") : "never"), re-arm returned \(rearmed), cancel returned \(cancelled), \(extra) events after the cancel (want 0)")
  }

  /// The runstate area: "running" while the vcpu reads it, and blocked time that grows while the
  /// vcpu sleeps (three 20 ms timers waited for with the sleeping wait).
  func runstate() {
    let area = UnsafeMutablePointer<gs_vcpu_runstate_info>.allocate(capacity: 1)
    // All ones: a field the hypervisor did not write reads as -1 / 2^64 - 1.
    UnsafeMutableRawPointer(area).initializeMemory(as: UInt8.self, repeating: 0xFF, count: MemoryLayout<gs_vcpu_runstate_info>.size)
    let registered = VCPUAreas.registerRunstate(vcpu: 0, at: area)
    let first = VCPUAreas.read(area)
    var slept = 0
    for _ in 0..<3 where mode != .spin {
      let before = events
      guard Timers.setSingleshot(at: SystemTime.now() &+ 20 * ms) == 0, waitForEvent(after: before) else { break }
      slept += 1
    }
    let second = VCPUAreas.read(area)
    let grew = second.blocked &- first.blocked
    report.check(
      "runstate",
      registered == 0 && first.state == Runstate.stateRunning && second.state == Runstate.stateRunning
        && slept == 3 && second.blocked != UInt64.max && second.blocked > first.blocked,
      ok: "(state running; blocked time grew by \(grew / us) us over 3 sleeps of 20 ms)",
      fail: "register returned \(registered), state \(first.state) then \(second.state) (want 0), blocked \(first.blocked) then \(second.blocked) ns (want growth), \(slept) of 3 sleeps done\(mode == .spin ? " (the waits spin, so nothing slept)" : "")")
  }
}

func run() -> Never {
  report.line("start")
  Guest.requireHypervisor("guest-timer")
  let options = StartInfo.options
  gs_atomic_store(lastTimerEvent, 0)   // allocate it before any event can come
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  // A hypervisor may start vcpus with a periodic timer (Xen does for PV vcpus); Linux stops it.
  Timers.stopPeriodic()
  let bound = Events.bindVIRQ(Events.virqTimer, vcpu: 0)
  if bound < 0 { report.abort("bind_virq(VIRQ_TIMER, vcpu 0) returned \(bound)") }
  let port = UInt32(bound)
  Events.setHandler(port, onTimer)
  var tests = TimerTests(port: port, mode: WaitMode.fromOptions(options))
  report.line("VIRQ_TIMER on port \(port), waiting with \(tests.mode.name)")
  CPU.enableInterrupts()

  tests.pastDeadline()
  tests.lateness(count: max(1, options.integer("timers", default: 20)))
  tests.stopSingleshot()
  tests.periodic()
  tests.setTimerOp()
  tests.runstate()

  CPU.disableInterrupts()
  Timers.stopSingleshot()
  Timers.stopPeriodic()
  Events.close(port)
  report.finish()
}
#endif
