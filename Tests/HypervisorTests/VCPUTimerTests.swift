import Testing
import XenABI

@testable import Hypervisor

/// The vcpu timers' bookkeeping (VCPUTimers) and the hypercalls that set them, without a clock:
/// `SystemTime.platform` is nil on the host, so "now" is whatever a test passes in, and the
/// armed deadline is read back from what `rearm` computes (`VCPUTimers.earliest`).
@Suite struct VCPUTimerTests {
  private func vcpu() -> (VCPU, Domain) {
    let domain = Domain(id: 7, name: Array("t".utf8), memoryBytes: 1 << 20)
    let vcpu = VCPU(id: 0, domain: domain)
    domain.vcpus.append(vcpu)
    return (vcpu, domain)
  }

  @Test func theEarliestDeadlineIsTheOneArmed() {
    let (v, domain) = vcpu()
    _ = domain
    #expect(VCPUTimers.earliest(v) == .max)
    VCPUTimers.setSingleshot(v, deadline: 5_000_000)
    VCPUTimers.setPeriodic(v, period: 10_000_000, now: 0)
    #expect(VCPUTimers.earliest(v) == 5_000_000)
    VCPUTimers.setPollTimeout(v, deadline: 2_000_000)
    #expect(VCPUTimers.earliest(v) == 2_000_000)
    VCPUTimers.cancelAll(v)
    #expect(VCPUTimers.earliest(v) == .max)
  }

  @Test func aSingleshotFiresOnceAndIsGone() {
    let (v, domain) = vcpu()
    _ = domain
    VCPUTimers.setSingleshot(v, deadline: 1_000)
    VCPUTimers.expire(v, now: 999)
    #expect(v.timerInterrupts == 0)
    VCPUTimers.expire(v, now: 1_000)
    #expect(v.timerInterrupts == 1)
    VCPUTimers.expire(v, now: 2_000)
    #expect(v.timerInterrupts == 1)
    #expect(VCPUTimers.earliest(v) == .max)
  }

  @Test func aPeriodicTimerThatFellBehindFiresOnceAndSkipsTheMissedPeriods() {
    let (v, domain) = vcpu()
    _ = domain
    VCPUTimers.setPeriodic(v, period: 1_000_000, now: 0)
    VCPUTimers.expire(v, now: 1_000_000)
    #expect(v.timerInterrupts == 1)
    #expect(v.periodicNext == 2_000_000)
    VCPUTimers.expire(v, now: 5_500_000)             // 3.5 periods late
    #expect(v.timerInterrupts == 2)
    #expect(v.periodicNext == 6_500_000)
    VCPUTimers.stopPeriodic(v)
    VCPUTimers.expire(v, now: 10_000_000)
    #expect(v.timerInterrupts == 2)
  }

  @Test func runstateAccountingChargesTheStateThatWasLeft() {
    var r = RunstateAccounting()
    r.enter(.running, at: 100)
    r.enter(.blocked, at: 350)
    r.enter(.runnable, at: 400)
    r.enter(.running, at: 1_000)
    r.enter(.paused, at: 1_500)
    #expect(r.state == .offline)
    #expect(r.entryTime == 1_500)
    #expect(r.times.0 == 250 + 500)
    #expect(r.times.1 == 600)
    #expect(r.times.2 == 50)
    #expect(r.info.bytes.count == 48)                      // struct vcpu_runstate_info
    #expect(r.info.bytes.littleEndian(UInt64.self, at: 16) == 750)
  }

  // MARK: The hypercalls

  private func call(_ env: FakeHypercallEnvironment, _ hypercall: XenABI.Hypercall, _ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0) -> Int64? {
    if case .result(let value) = Hypercalls.dispatch(HypercallFrame(number: hypercall.rawValue, a0, a1, a2), env) { return value }
    return nil
  }

  static let argument: UInt64 = 0x10_0000

  @Test func singleshotInThePastIsAcceptedUnlessTheGuestAsksForTheFutureOnly() {
    let env = FakeHypercallEnvironment()
    // Host: system time is 0, so a deadline of 0 is "now" and not in the past; use the flag
    // path with a deadline that cannot be in the future of 0 only through the error path.
    env.store(littleEndianBytes(UInt64(123)) + littleEndianBytes(UInt32(0)) + [0, 0, 0, 0], at: Self.argument)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setSingleshotTimer.rawValue), 0, Self.argument) == 0)
    #expect(env.vcpu.singleshotDeadline == 123)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.stopSingleshotTimer.rawValue), 0, 0) == 0)
    #expect(env.vcpu.singleshotDeadline == 0)
    // Another vcpu's one-shot timer: Xen allows only the caller's own.
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setSingleshotTimer.rawValue), 1, Self.argument) == -22)
    // Unreadable argument.
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setSingleshotTimer.rawValue), 0, 0xDEAD_0000) == -14)
  }

  @Test func periodicTimersBelowOneMillisecondAreRefused() {
    let env = FakeHypercallEnvironment()
    env.storeLE(UInt64(999_999), at: Self.argument)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setPeriodicTimer.rawValue), 0, Self.argument) == -22)
    env.storeLE(UInt64(1_000_000), at: Self.argument)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setPeriodicTimer.rawValue), 0, Self.argument) == 0)
    #expect(env.vcpu.periodicPeriod == 1_000_000)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.stopPeriodicTimer.rawValue), 0, 0) == 0)
    #expect(env.vcpu.periodicPeriod == 0)
  }

  /// Xen's bounds: MILLISECS(1) <= period <= STIME_DELTA_MAX (2^62 - 1). The guest-bad trigger
  /// 0x4000000000000000 and everything above it is -EINVAL, whatever a signed type would allow.
  @Test(arguments: [
    (999_999, -22), (1_000_000, 0), (0x3FFF_FFFF_FFFF_FFFF, 0), (0x4000_0000_0000_0000, -22),
    (0x7FFF_FFFF_FFFF_FFFF, -22), (0x8000_0000_0000_0000, -22), (UInt64.max, -22), (0, -22),
  ] as [(UInt64, Int64)])
  func periodicTimerPeriodsAreBoundedAsInXen(period: UInt64, want: Int64) {
    let env = FakeHypercallEnvironment()
    env.storeLE(period, at: Self.argument)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setPeriodicTimer.rawValue), 0, Self.argument) == want)
    #expect(env.vcpu.periodicPeriod == (want == 0 ? period : 0))
    if want == 0 { #expect(env.vcpu.periodicNext == period, "now is 0 on the host: the first event one period away") }
  }

  /// A deadline plus a period saturates at `UInt64.max` ("never") instead of trapping or
  /// wrapping to a deadline in the past, wherever the clock is.
  @Test func periodicDeadlinesSaturate() {
    let (v, domain) = vcpu()
    _ = domain
    let period = VCPUTimers.maximumPeriod
    VCPUTimers.setPeriodic(v, period: period, now: UInt64.max - 5)
    #expect(v.periodicNext == .max)
    #expect(VCPUTimers.earliest(v) == .max)
    // An expiry at the very end of time re-arms for "never", not for a small number.
    VCPUTimers.setPeriodic(v, period: period, now: 1 << 63)
    #expect(v.periodicNext == (1 << 63) + period)
    VCPUTimers.expire(v, now: UInt64.max)
    #expect(v.timerInterrupts == 1)
    #expect(v.periodicNext == .max)
    VCPUTimers.expire(v, now: UInt64.max - 1)
    #expect(v.timerInterrupts == 1)
  }

  /// Far singleshot deadlines are kept as they are: they never come, and nothing wraps.
  @Test(arguments: [UInt64.max, 1 << 63, 1 << 62, UInt64.max - 1])
  func farSingleshotDeadlinesAreKept(deadline: UInt64) {
    let env = FakeHypercallEnvironment()
    env.store(littleEndianBytes(deadline) + littleEndianBytes(UInt32(0)) + [0, 0, 0, 0], at: Self.argument)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.setSingleshotTimer.rawValue), 0, Self.argument) == 0)
    #expect(env.vcpu.singleshotDeadline == deadline)
    VCPUTimers.expire(env.vcpu, now: deadline - 1)
    #expect(env.vcpu.timerInterrupts == 0)
  }

  @Test func setTimerOpZeroCancelsAndAWrappedDeadlineBecomes100Milliseconds() {
    let env = FakeHypercallEnvironment()
    #expect(call(env, .setTimerOp, 5_000) == 0)
    #expect(env.vcpu.singleshotDeadline == 5_000)
    #expect(call(env, .setTimerOp, 0) == 0)
    #expect(env.vcpu.singleshotDeadline == 0)
    #expect(call(env, .setTimerOp, UInt64(bitPattern: -5)) == 0)
    #expect(env.vcpu.singleshotDeadline == 100_000_000)
    #expect(call(env, .setTimerOp, 1 << 51) == 0)
    #expect(env.vcpu.singleshotDeadline == 100_000_000)
  }

  @Test func runstateAreaIsWrittenAtRegistration() {
    let env = FakeHypercallEnvironment()
    env.storeLE(Self.argument + 0x100, at: Self.argument)
    env.map(Self.argument + 0x100, count: 48)
    #expect(call(env, .vcpuOp, UInt64(XenABI.VCPUOp.registerRunstateMemoryArea.rawValue), 0, Self.argument) == 0)
    #expect(env.vcpu.runstateArea == Self.argument + 0x100)
    #expect(env.loadLE(UInt32.self, at: Self.argument + 0x100) == 0)     // running
  }

  @Test func vcpuInfoMustFitItsPageAndBeRAM() {
    let env = FakeHypercallEnvironment()
    env.populated.insert(0x200)
    func register(gfn: UInt64, offset: UInt32) -> Int64? {
      env.store(littleEndianBytes(gfn) + littleEndianBytes(offset) + littleEndianBytes(UInt32(0)), at: Self.argument)
      return call(env, .vcpuOp, UInt64(XenABI.VCPUOp.registerVCPUInfo.rawValue), 0, Self.argument)
    }
    #expect(register(gfn: 0x200, offset: 4096 - 63) == -22)
    #expect(register(gfn: 0x300, offset: 0) == -22)               // not RAM
    // A frame number whose address would not fit in 52 bits (on x86 it shifts into the
    // guest-physical address of another frame, 0x200 here): refused before anything is pinned.
    let aliased: UInt64 = (1 << 52) | 0x200
    env.populated.insert(aliased)
    #expect(register(gfn: aliased, offset: 0) == -22)
    #expect(register(gfn: 1 << 40, offset: 0) == -22)
    #expect(env.pinned.isEmpty && env.vcpu.vcpuInfoGFN == nil)
    #expect(register(gfn: 0x200, offset: 4096 - 64) == 0)
    #expect(env.vcpu.vcpuInfoGFN == 0x200)
    #expect(env.pinned.contains(0x200))
    #expect(register(gfn: 0x200, offset: 0) == -17)               // once per vcpu
  }

  @Test func pollNeedsEventChannels() {
    let env = FakeHypercallEnvironment()
    env.store([UInt8](repeating: 0, count: 24), at: Self.argument)
    // Host builds have no event platform: poll is -ENOSYS, never a silent success.
    #expect(call(env, .schedOp, UInt64(XenABI.SchedOp.poll.rawValue), Self.argument) == -38)
  }
}
