/// guest-ipi: event channels between the vcpus of one domain (needs `vcpus >= 2`).
/// vcpu 0 binds an IPI port for each vcpu (bind_ipi on behalf of vcpu 1 too, as Linux does from
/// the boot CPU) and brings vcpu 1 up (VCPUOP_initialise in 64-bit mode, then VCPUOP_up, as
/// guest-smp). Checks, one line each ("guest-ipi: <check> ok …" or "guest-ipi: <check> FAIL (…)"):
///   self-ipi-vcpu1  vcpu 1 sends on its own IPI port and handles the event itself
///   rounds          vcpu 0 sends on vcpu 1's port, vcpu 1's handler answers on vcpu 0's,
///                   `rounds=<n>` times (default 100); mean round trip in ns
///   self-ipi-vcpu0  vcpu 0 sends on its own IPI port
///   bind-vcpu       a loopback interdomain port moved to vcpu 1 with bind_vcpu is handled
///                   there, and back on vcpu 0 after moving it back; an IPI port cannot move
///                   (-EINVAL), a vcpu that does not exist is -ENOENT
/// then vcpu 1 is stopped (it takes itself down), "guest-ipi: done" and poweroff.
/// `wait=halt|block|poll|spin` picks how the vcpus sleep (default halt).
@main
struct GuestIPI {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-ipi is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-ipi")

/// Words both vcpus use, only through gs_atomic_*. Allocated by vcpu 0 before vcpu 1 exists.
enum Slot: Int, CaseIterable {
  case port0 = 0        // vcpu 0's IPI port
  case port1            // vcpu 1's IPI port
  case answer           // 1: vcpu 1's handler answers on port0
  case stop             // 1: vcpu 1 leaves its loop
  case ready            // vcpu 1: 1 when its self-IPI check is done
  case selfIPI          // vcpu 1: 1 = its self-IPI arrived on vcpu 1, 2 = it did not
  case finished         // vcpu 1: 1 just before it takes itself down
  case waitMode         // the WaitMode's raw value
}

nonisolated(unsafe) let shared: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: Slot.allCases.count)
  p.initialize(repeating: 0, count: Slot.allCases.count)
  return p
}()

func load(_ slot: Slot) -> UInt64 { gs_atomic_load(shared + slot.rawValue) }
func store(_ slot: Slot, _ value: UInt64) { gs_atomic_store(shared + slot.rawValue, value) }

let ms = SystemTime.nanosecondsPerMillisecond
let timeout: UInt64 = 2_000 * ms

/// vcpu 1's IPI port: answer on vcpu 0's port while the rounds run.
let answerOnPort0: EventHandler = { _, _ in
  if load(.answer) != 0 { Events.send(UInt32(load(.port0))) }
}

/// vcpu 1 starts here (guest_ap_start64, RDI = 1).
@c(guest_secondary_main)
public func secondaryMain(_ vcpuID: UInt64) {
  CurrentVCPU.record(UInt32(vcpuID))
  let mode = WaitMode(rawValue: UInt8(truncatingIfNeeded: load(.waitMode))) ?? .halt
  let port1 = UInt32(load(.port1))
  CPU.enableInterrupts()
  let before = Events.count(port1)
  let sent = Events.send(port1)
  let arrived = sent == 0
    && Wait.until(mode, deadline: SystemTime.now() &+ timeout, ports: [port1]) { Events.count(port1) > before }
  store(.selfIPI, arrived && Events.lastVCPU(port1) == 1 ? 1 : 2)
  store(.ready, 1)
  // Idle until told to stop. Not SCHEDOP_poll here: it wakes only for the polled port, and the
  // bind-vcpu check sends this vcpu events on another one.
  Wait.until(mode == .poll ? .halt : mode) { load(.stop) != 0 }
  CPU.disableInterrupts()
  store(.finished, 1)
  // Returning takes this vcpu down (VCPUOP_down, gs_secondary_returned).
}

/// VCPUOP_initialise (VCPU_HVM_MODE_64B, the boot vcpu's control registers) and VCPUOP_up.
func startVCPU1() {
  if let failed = Xen.startSecondVCPU() { report.abort("\(failed.call)(vcpu 1) returned \(failed.result)") }
}

func run() -> Never {
  report.line("start")
  Guest.requireHypervisor("guest-ipi")
  let options = StartInfo.options
  let mode = WaitMode.fromOptions(options)
  let rounds = max(1, options.integer("rounds", default: 100))
  store(.waitMode, UInt64(mode.rawValue))
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  let bound0 = Events.bindIPI(vcpu: 0)
  let bound1 = Events.bindIPI(vcpu: 1)
  if bound0 < 0 || bound1 < 0 { report.abort("bind_ipi returned \(bound0) for vcpu 0 and \(bound1) for vcpu 1 (the domain needs vcpus >= 2)") }
  let port0 = UInt32(bound0), port1 = UInt32(bound1)
  store(.port0, UInt64(port0))
  store(.port1, UInt64(port1))
  Events.setHandler(port1, answerOnPort0)
  report.line("IPI ports: \(port0) on vcpu 0, \(port1) on vcpu 1; waiting with \(mode.name)")
  CPU.enableInterrupts()

  startVCPU1()
  if !Wait.until(.spin, deadline: SystemTime.now() &+ 5_000 * ms, { load(.ready) != 0 }) {
    report.abort("vcpu 1 did not report within 5 s")
  }
  report.check("self-ipi-vcpu1", load(.selfIPI) == 1, ok: "(handled on vcpu 1)",
               fail: "vcpu 1's event on its own port \(load(.selfIPI) == 2 ? "did not arrive within 2 s, or not on vcpu 1" : "?")")

  // Round trips vcpu 0 → vcpu 1 → vcpu 0.
  store(.answer, 1)
  let ports0 = [port0]
  var total: UInt64 = 0, done = 0
  for _ in 0..<rounds {
    let target = Events.count(port0) &+ 1
    let t0 = SystemTime.now()
    guard Events.send(port1) == 0,
          Wait.until(mode, deadline: t0 &+ timeout, ports: ports0, { Events.count(port0) >= target }) else { break }
    total &+= SystemTime.now() &- t0
    done += 1
  }
  store(.answer, 0)
  report.check(
    "rounds", done == rounds && Events.lastVCPU(port1) == 1 && Events.lastVCPU(port0) == 0,
    ok: "\(rounds) rounds, mean-rtt-ns \(total / UInt64(max(done, 1)))",
    fail: "\(done) of \(rounds) rounds answered within 2 s each; vcpu 1's port last handled on vcpu \(Events.lastVCPU(port1)), vcpu 0's on vcpu \(Events.lastVCPU(port0))")

  // vcpu 0 to itself.
  let before0 = Events.count(port0)
  let sent0 = Events.send(port0)
  let self0 = sent0 == 0 && Wait.until(mode, deadline: SystemTime.now() &+ timeout, ports: ports0, { Events.count(port0) > before0 })
  report.check("self-ipi-vcpu0", self0 && Events.lastVCPU(port0) == 0, ok: "(handled on vcpu 0)",
               fail: "send returned \(sent0), arrived \(self0), handled on vcpu \(Events.lastVCPU(port0))")

  bindVCPU(port0: port0)

  // Stop vcpu 1: the stop flag, then an event to wake it.
  store(.stop, 1)
  Events.send(port1)
  if !Wait.until(.spin, deadline: SystemTime.now() &+ timeout, { load(.finished) != 0 }) {
    report.fail("stop", "vcpu 1 did not finish within 2 s")
  }
  CPU.disableInterrupts()
  Events.close(port0)
  Events.close(port1)
  report.finish()
}

/// A loopback interdomain channel (alloc_unbound for ourselves, bind_interdomain to it): its
/// unbound end moves to vcpu 1 with bind_vcpu and back. vcpu 0 spins while vcpu 1 handles.
func bindVCPU(port0: UInt32) {
  CPU.disableInterrupts()
  let unbound = Events.allocUnbound(remote: Xen.domidSelf)
  let other = unbound >= 0 ? Events.bindInterdomain(remoteDomain: Xen.domidSelf, remotePort: UInt32(unbound)) : unbound
  guard unbound >= 0, other >= 0 else {
    CPU.enableInterrupts()
    report.fail("bind-vcpu", "alloc_unbound returned \(unbound), bind_interdomain \(other)")
    return
  }
  let target = UInt32(unbound), sender = UInt32(other)
  Events.clearPending(sender)   // the bind's own event
  CPU.enableInterrupts()

  func deliveredOn(_ vcpu: UInt32) -> Bool {
    let before = Events.count(target)
    return Events.send(sender) == 0
      && Wait.until(.spin, deadline: SystemTime.now() &+ timeout, { Events.count(target) > before })
      && Events.lastVCPU(target) == vcpu
  }
  let moved = Events.bindVCPU(target, vcpu: 1)
  let onVCPU1 = moved == 0 && deliveredOn(1)
  let back = Events.bindVCPU(target, vcpu: 0)
  let onVCPU0 = back == 0 && deliveredOn(0)
  let ipi = Events.bindVCPU(port0, vcpu: 1)
  let missing = Events.bindVCPU(target, vcpu: 99)
  report.check(
    "bind-vcpu", onVCPU1 && onVCPU0 && ipi == Errno.EINVAL && missing == Errno.ENOENT,
    ok: "(port \(target) handled on vcpu 1, then on vcpu 0; IPI port \(ipi), vcpu 99 \(missing))",
    fail: "bind_vcpu(\(target), 1) returned \(moved), delivered on vcpu 1: \(onVCPU1); back to 0 returned \(back), delivered on vcpu 0: \(onVCPU0); IPI port returned \(ipi) (want -22); vcpu 99 returned \(missing) (want -2)")
  CPU.disableInterrupts()
  Events.close(sender)
  Events.close(target)
  CPU.enableInterrupts()
}
#endif
