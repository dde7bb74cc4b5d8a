/// guest-xapic: the virtual local APIC in both modes, and its timer (needs `vcpus >= 2`).
/// Checks, one line each ("guest-xapic: <check> ok …" or "guest-xapic: <check> FAIL (…)"):
///   reset              APIC_BASE is 0xFEE00900 (xAPIC, enabled, BSP), as Xen starts HVM vcpus;
///                      CPUID.1 has APIC and x2APIC, initial APIC ID 0
///   xapic-msrs-gp      the x2APIC MSRs are #GP in xAPIC mode
///   with `mmio=1` (default), through the xAPIC page (MMIO emulation):
///   xapic-id           ID (0x20) is 0 << 24, version (0x30) 0x00050014, a byte read of 0x30
///   xapic-odd-accesses a byte inside a register, 8 bytes, a straddling dword, past the last
///                      register: as Xen (the byte, else 0; such writes dropped)
///   xapic-self-ipi     ICR high = own ID << 24, ICR low fixed: arrives
///   xapic-ipi-vcpu1    ICR high = 1 << 24: arrives on vcpu 1 (which switched itself to x2APIC),
///                      which answers through its ICR MSR
///   xapic-timer-one-shot, xapic-timer-periodic, xapic-timer-masked: the timer (below)
///   x2apic-id          xAPIC → x2APIC directly (as Linux switches); MSR 0x802 is 0, version
///   x2apic-self-ipi    ICR (MSR 0x830) fixed to itself, and SELF IPI (0x83F), arrive
///   x2apic-ipi-vcpu1   ICR fixed to APIC ID 1 arrives on vcpu 1, which answers on vcpu 0
///   x2apic-timer-one-shot, x2apic-timer-periodic, x2apic-timer-masked, x2apic-timer-bound
///   x2apic-to-xapic-gp x2APIC → xAPIC directly, EXTD without EN, a moved xAPIC page: #GP
///   disable            x2APIC → disabled: APIC_BASE reads EN clear, CPUID.1 EDX.APIC clear;
///                      disabled → x2APIC directly is #GP
///   xapic-enable       disabled → xAPIC; the x2APIC MSRs are #GP again, the ID is back
///   x2apic-again       xAPIC → x2APIC; MSR 0x802 reads again
/// The timer checks: one-shot fires once, not before its 2 ms (measured in Xen system time);
/// periodic at 1 ms counts ticks over a 40 ms interval (no more than the interval allows, at
/// least 2); masked counts down but delivers nothing; initial count 1 periodic is held to one
/// tick per 100 µs or slower.
/// Then "guest-xapic: done" and poweroff.
@main
struct GuestXAPIC {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-xapic is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-xapic")

let ms = SystemTime.nanosecondsPerMillisecond
let selfVector = 0x40, toVCPU1Vector = 0x41, answerVector = 0x42, selfIPIMSRVector = 0x43
let oneShotVector = 0x50, periodicVector = 0x51, maskedVector = 0x52, boundVector = 0x53

enum Register {
  static let id = 0x20, version = 0x30, eoi = 0xB0, svr = 0xF0, icrLow = 0x300, icrHigh = 0x310
  static let lvtTimer = 0x320, initialCount = 0x380, currentCount = 0x390, divide = 0x3E0
}

/// Words both vcpus use, through gs_atomic_*.
enum Slot: Int, CaseIterable {
  case ready = 0        // vcpu 1: its APIC is software-enabled, it waits
  case stop             // vcpu 0: vcpu 1 leaves its loop
  case finished         // vcpu 1: just before it takes itself down
}

nonisolated(unsafe) let shared: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: Slot.allCases.count)
  p.initialize(repeating: 0, count: Slot.allCases.count)
  return p
}()

func load(_ slot: Slot) -> UInt64 { gs_atomic_load(shared + slot.rawValue) }
func store(_ slot: Slot, _ value: UInt64) { gs_atomic_store(shared + slot.rawValue, value) }

/// Spins with interrupts enabled until `condition` or `timeout` ns of Xen time passed.
@discardableResult
func waitFor(_ timeout: UInt64, _ condition: () -> Bool) -> Bool {
  let deadline = SystemTime.now() &+ timeout
  while !condition() {
    if SystemTime.now() > deadline { return condition() }
    CPU.pause()
  }
  return true
}

/// vcpu 1 (guest_secondary_main): switches its APIC to x2APIC and enables it, then answers every
/// IPI `toVCPU1Vector` with `answerVector` to APIC ID 0 through its ICR MSR.
@c(guest_secondary_main)
public func secondaryMain(_ vcpuID: UInt64) {
  CurrentVCPU.record(UInt32(vcpuID))
  // xAPIC at reset; to x2APIC as Linux does, so vcpu 0's xAPIC IPIs reach an x2APIC target.
  gs_wrmsr(LocalAPIC.apicBaseMSR, gs_rdmsr(LocalAPIC.apicBaseMSR) | LocalAPIC.extended)
  LocalAPIC.setMode(x2APIC: true)
  LocalAPIC.write(Register.svr, 0x1FF)
  var answered: UInt64 = 0
  store(.ready, 1)
  CPU.disableInterrupts()
  while load(.stop) == 0 {
    let arrived = LocalAPIC.count(toVCPU1Vector, vcpu: 1)
    if arrived > answered {
      answered = arrived
      gs_wrmsr(0x830, UInt64(answerVector))                 // fixed, physical, APIC ID 0
    }
    CPU.enableInterruptsAndHalt()
    CPU.disableInterrupts()
  }
  store(.finished, 1)
}

func startVCPU1() {
  if let failed = Xen.startSecondVCPU() { report.abort("\(failed.call)(vcpu 1) returned \(failed.result)") }
}

/// WRMSR/RDMSR that may #GP: whether it did (the 2-byte instruction is skipped).
func wrmsrFaults(_ msr: UInt32, _ value: UInt64) -> Bool {
  gs_catch_exceptions(1 << 13, 2)
  gs_wrmsr(msr, value)
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  return caught.count == 1 && caught.vector == 13
}

func rdmsrFaults(_ msr: UInt32) -> Bool {
  gs_catch_exceptions(1 << 13, 2)
  _ = gs_rdmsr(msr)
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  return caught.count == 1 && caught.vector == 13
}

var apicBase: UInt64 { gs_rdmsr(LocalAPIC.apicBaseMSR) }

/// An IPI through the ICR in the current mode: x2APIC one 64-bit write, xAPIC high then low.
func sendIPI(vector: Int, to apicID: UInt32) {
  if LocalAPIC.isX2APIC {
    gs_wrmsr(0x830, UInt64(apicID) << 32 | UInt64(vector))
  } else {
    LocalAPIC.write(Register.icrHigh, apicID << 24)
    LocalAPIC.write(Register.icrLow, UInt32(vector))
  }
}

func ipiChecks(selfCheck: StaticString, vcpu1Check: StaticString) {
  let before = LocalAPIC.count(selfVector, vcpu: 0)
  sendIPI(vector: selfVector, to: 0)
  let arrived = waitFor(100 * ms) { LocalAPIC.count(selfVector, vcpu: 0) > before }
  var selfIPI = arrived
  if LocalAPIC.isX2APIC {
    let beforeMSR = LocalAPIC.count(selfIPIMSRVector, vcpu: 0)
    gs_wrmsr(0x83F, UInt64(selfIPIMSRVector))
    selfIPI = selfIPI && waitFor(100 * ms) { LocalAPIC.count(selfIPIMSRVector, vcpu: 0) > beforeMSR }
  }
  report.check(selfCheck, selfIPI, fail: "a fixed IPI to itself through the ICR\(LocalAPIC.isX2APIC ? " or SELF IPI" : "") did not arrive within 100 ms")
  let sent1 = LocalAPIC.count(toVCPU1Vector, vcpu: 1)
  let answers = LocalAPIC.count(answerVector, vcpu: 0)
  sendIPI(vector: toVCPU1Vector, to: 1)
  let onVCPU1 = waitFor(200 * ms) { LocalAPIC.count(toVCPU1Vector, vcpu: 1) > sent1 }
  let answered = waitFor(200 * ms) { LocalAPIC.count(answerVector, vcpu: 0) > answers }
  report.check(vcpu1Check, onVCPU1 && answered, ok: "(vcpu 1 took it and answered)",
               fail: "arrived on vcpu 1: \(onVCPU1), its answer on vcpu 0: \(answered)")
}

/// The timer checks in the current mode (the registers through `LocalAPIC`).
func timerChecks(oneShot: StaticString, periodic: StaticString, masked: StaticString, bound: StaticString?) {
  LocalAPIC.write(Register.divide, 0xB)                                        // ÷1: 10 ns a count
  // One-shot, 2 ms.
  LocalAPIC.write(Register.lvtTimer, UInt32(oneShotVector))
  let before = LocalAPIC.count(oneShotVector, vcpu: 0)
  let t0 = SystemTime.now()
  LocalAPIC.write(Register.initialCount, 200_000)
  let current = LocalAPIC.read(Register.currentCount)
  var firedAt: UInt64 = 0
  let fired = waitFor(200 * ms) {
    let done = LocalAPIC.count(oneShotVector, vcpu: 0) > before
    if done && firedAt == 0 { firedAt = SystemTime.now() }
    return done
  }
  waitFor(10 * ms) { false }
  let once = LocalAPIC.count(oneShotVector, vcpu: 0) == before + 1
  let after = LocalAPIC.read(Register.currentCount)
  report.check(oneShot, fired && once && firedAt &- t0 >= 2 * ms && current > 0 && current <= 200_000 && after == 0,
               ok: "after \((firedAt &- t0) / 1000) us, current count \(current) then \(after)",
               fail: "fired \(fired), once \(once), after \((firedAt &- t0) / 1000) us (want >= 2000), current count \(current) then \(after)")

  // Periodic, 1 ms, over 40 ms.
  LocalAPIC.write(Register.lvtTimer, UInt32(periodicVector) | (1 << 17))
  let ticks0 = LocalAPIC.count(periodicVector, vcpu: 0)
  let p0 = SystemTime.now()
  LocalAPIC.write(Register.initialCount, 100_000)
  waitFor(40 * ms) { false }
  let ticks = LocalAPIC.count(periodicVector, vcpu: 0) &- ticks0
  let interval = SystemTime.now() &- p0
  LocalAPIC.write(Register.initialCount, 0)                                   // stop
  let stopped = LocalAPIC.count(periodicVector, vcpu: 0)
  waitFor(5 * ms) { false }
  let afterStop = LocalAPIC.count(periodicVector, vcpu: 0) &- stopped
  report.check(periodic, ticks >= 2 && ticks <= interval / ms + 1 && afterStop == 0,
               ok: "\(ticks) ticks in \(interval / 1000) us",
               fail: "\(ticks) ticks in \(interval / 1000) us (want 2 to \(interval / ms + 1)), \(afterStop) after the stop")

  // Masked: counts, delivers nothing.
  LocalAPIC.write(Register.lvtTimer, UInt32(maskedVector) | (1 << 16))
  let maskedBefore = LocalAPIC.count(maskedVector, vcpu: 0)
  LocalAPIC.write(Register.initialCount, 100_000)
  let c1 = LocalAPIC.read(Register.currentCount)
  waitFor(3 * ms) { false }
  let c2 = LocalAPIC.read(Register.currentCount)
  let maskedTicks = LocalAPIC.count(maskedVector, vcpu: 0) &- maskedBefore
  LocalAPIC.write(Register.initialCount, 0)
  report.check(masked, maskedTicks == 0 && c2 == 0 && c1 > 0, ok: "current count \(c1) then \(c2)",
               fail: "\(maskedTicks) interrupts, current count \(c1) then \(c2)")

  // The shortest period a guest can ask for: 1 count, 10 ns. Held to 100 µs.
  if let bound {
    LocalAPIC.write(Register.lvtTimer, UInt32(boundVector) | (1 << 17))
    let b0 = LocalAPIC.count(boundVector, vcpu: 0)
    let s0 = SystemTime.now()
    LocalAPIC.write(Register.initialCount, 1)
    waitFor(20 * ms) { false }
    LocalAPIC.write(Register.initialCount, 0)
    let boundTicks = LocalAPIC.count(boundVector, vcpu: 0) &- b0
    let span = SystemTime.now() &- s0
    let most = span / (100 * SystemTime.nanosecondsPerMicrosecond) + 1
    report.check(bound, boundTicks >= 1 && boundTicks <= most, ok: "\(boundTicks) ticks in \(span / 1000) us",
                 fail: "\(boundTicks) ticks in \(span / 1000) us (want 1 to \(most))")
  }
  LocalAPIC.write(Register.lvtTimer, 1 << 16)
}

/// Accesses to the page that are not one aligned 32-bit register, answered as Xen's
/// vlapic_mmio_read/write: a byte inside a register reads that byte; 8 bytes, a straddling
/// dword, and anything past the divide register read 0; such writes are dropped.
func oddAccesses() {
  let base = LocalAPIC.defaultBase
  LocalAPIC.write(0x80, 0x20)                                                 // TPR
  let versionByte2 = gs_mmio_read8(base + 0x32)                               // bits 23:16: 0x05
  let wide = gs_mmio_read64(base + 0x30)
  let straddling = gs_mmio_read32(base + 0x2E)
  let beyond = gs_mmio_read32(base + 0x400), last = gs_mmio_read8(base + 0xFFF)
  gs_mmio_write64(base + 0x80, 0x55)
  gs_mmio_write32(base + 0x7E, 0x6600_0000)
  let tpr = LocalAPIC.read(0x80)
  LocalAPIC.write(0x80, 0)
  report.check("xapic-odd-accesses", versionByte2 == 5 && wide == 0 && straddling == 0 && beyond == 0 && last == 0 && tpr == 0x20,
               fail: "byte 0x32 \(hex(UInt64(versionByte2))) (want 0x5), 8 bytes at 0x30 \(hex(wide)), dword at 0x2e \(hex(UInt64(straddling))), 0x400 \(hex(UInt64(beyond))), 0xfff \(hex(UInt64(last))), TPR after dropped writes \(hex(UInt64(tpr))) (want 0x20)")
}

func run() -> Never {
  report.line("start")
  Guest.requireHypervisor("guest-xapic")
  let mmio = StartInfo.options.integer("mmio", default: 1) != 0
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  for vector in [selfVector, toVCPU1Vector, answerVector, selfIPIMSRVector, oneShotVector, periodicVector, maskedVector, boundVector] {
    gs_install_lapic_vector(UInt8(vector))
  }
  let x2 = LocalAPIC.defaultBase | LocalAPIC.enable | LocalAPIC.extended
  let xAPIC = LocalAPIC.defaultBase | LocalAPIC.enable
  let bsp: UInt64 = 1 << 8

  // Reset state: xAPIC, as Xen starts HVM vcpus.
  let base = apicBase
  LocalAPIC.setMode(x2APIC: base & LocalAPIC.extended != 0)
  let leaf1 = CPU.cpuid(1)
  report.check("reset", base == xAPIC | bsp && leaf1.ecx & (1 << 21) != 0 && leaf1.edx & (1 << 9) != 0 && leaf1.ebx >> 24 == 0,
               ok: "(APIC_BASE \(hex(base)))",
               fail: "APIC_BASE \(hex(base)) (want 0xfee00900), CPUID.1 ECX \(hex(UInt64(leaf1.ecx))) EDX \(hex(UInt64(leaf1.edx))) EBX \(hex(UInt64(leaf1.ebx)))")
  let msrGP = rdmsrFaults(0x802) && wrmsrFaults(0x808, 0)
  report.check("xapic-msrs-gp", msrGP, fail: "an x2APIC MSR did not #GP in xAPIC mode")

  CPU.enableInterrupts()
  startVCPU1()
  if !waitFor(5_000 * ms, { load(.ready) != 0 }) { report.abort("vcpu 1 did not start within 5 s") }

  if mmio {
    let xid = LocalAPIC.read(Register.id), xversion = LocalAPIC.read(Register.version)
    let versionByte = gs_mmio_read8(LocalAPIC.defaultBase + UInt64(Register.version))
    report.check("xapic-id", xid == 0 && xversion == 0x0005_0014 && versionByte == 0x14,
                 fail: "ID \(hex(UInt64(xid))), version \(hex(UInt64(xversion))), its low byte \(hex(UInt64(versionByte)))")
    oddAccesses()
    LocalAPIC.write(Register.svr, 0x1FF)
    ipiChecks(selfCheck: "xapic-self-ipi", vcpu1Check: "xapic-ipi-vcpu1")
    timerChecks(oneShot: "xapic-timer-one-shot", periodic: "xapic-timer-periodic", masked: "xapic-timer-masked", bound: nil)
  }

  // xAPIC → x2APIC directly, as Linux switches.
  CPU.disableInterrupts()
  let switched = !wrmsrFaults(LocalAPIC.apicBaseMSR, x2)
  LocalAPIC.setMode(x2APIC: true)
  let id = switched ? gs_rdmsr(0x802) : 1, version = switched ? gs_rdmsr(0x803) : 0
  report.check("x2apic-id", switched && apicBase == x2 | bsp && id == 0 && version == 0x0005_0014,
               fail: "switched \(switched), APIC_BASE \(hex(apicBase)), ID \(id), version \(hex(version))")
  LocalAPIC.write(Register.svr, 0x1FF)
  CPU.enableInterrupts()
  ipiChecks(selfCheck: "x2apic-self-ipi", vcpu1Check: "x2apic-ipi-vcpu1")
  timerChecks(oneShot: "x2apic-timer-one-shot", periodic: "x2apic-timer-periodic", masked: "x2apic-timer-masked", bound: "x2apic-timer-bound")

  // The mode rules.
  CPU.disableInterrupts()
  let directly = wrmsrFaults(LocalAPIC.apicBaseMSR, xAPIC)
  let extdWithoutEN = wrmsrFaults(LocalAPIC.apicBaseMSR, LocalAPIC.defaultBase | LocalAPIC.extended)
  let moved = wrmsrFaults(LocalAPIC.apicBaseMSR, 0xFED0_0000 | LocalAPIC.enable)
  report.check("x2apic-to-xapic-gp", directly && extdWithoutEN && moved && apicBase == x2 | bsp,
               fail: "x2APIC → xAPIC #GP: \(directly), EXTD without EN #GP: \(extdWithoutEN), moved page #GP: \(moved), APIC_BASE now \(hex(apicBase))")

  let disabled = !wrmsrFaults(LocalAPIC.apicBaseMSR, LocalAPIC.defaultBase)
  let baseOff = apicBase
  let apicBit = CPU.cpuid(1).edx & (1 << 9)
  let toX2Directly = wrmsrFaults(LocalAPIC.apicBaseMSR, x2)
  report.check("disable", disabled && baseOff == LocalAPIC.defaultBase | bsp && apicBit == 0 && toX2Directly,
               ok: "(APIC_BASE \(hex(baseOff)))",
               fail: "accepted \(disabled), APIC_BASE \(hex(baseOff)), CPUID.1 EDX.APIC \(apicBit), disabled → x2APIC #GP: \(toX2Directly)")

  let enabled = !wrmsrFaults(LocalAPIC.apicBaseMSR, xAPIC)
  LocalAPIC.setMode(x2APIC: false)
  let baseX = apicBase
  let gpAgain = rdmsrFaults(0x802)
  let idAfterReset = mmio ? LocalAPIC.read(Register.id) : 0
  report.check("xapic-enable", enabled && baseX == xAPIC | bsp && gpAgain && idAfterReset == 0, ok: "(APIC_BASE \(hex(baseX)))",
               fail: "accepted \(enabled), APIC_BASE \(hex(baseX)), x2APIC MSRs #GP: \(gpAgain), ID \(hex(UInt64(idAfterReset)))")

  let again = !wrmsrFaults(LocalAPIC.apicBaseMSR, x2)
  LocalAPIC.setMode(x2APIC: true)
  let idAgain = again ? gs_rdmsr(0x802) : 1
  report.check("x2apic-again", again && idAgain == 0 && apicBase == x2 | bsp, fail: "accepted \(again), ID \(idAgain), APIC_BASE \(hex(apicBase))")
  LocalAPIC.write(Register.svr, 0x1FF)
  CPU.enableInterrupts()

  // Stop vcpu 1: the flag, then an IPI to wake it.
  store(.stop, 1)
  sendIPI(vector: toVCPU1Vector, to: 1)
  if !waitFor(2_000 * ms, { load(.finished) != 0 }) { report.fail("stop", "vcpu 1 did not finish within 2 s") }
  CPU.disableInterrupts()
  report.finish()
}
#endif
