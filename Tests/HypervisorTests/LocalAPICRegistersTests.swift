import Synchronization
import Testing

@testable import Hypervisor

/// The virtual local APIC's register model (LocalAPICRegisters): the same registers by xAPIC
/// offset through the MMIO path and by MSR through the x2APIC path, the APIC_BASE transitions,
/// ICR destinations in both modes and the timer's arithmetic. Time is what each test passes.
@Suite struct LocalAPICRegistersTests {
  typealias R = LocalAPICRegisters

  /// An APIC in xAPIC mode, as every vcpu starts.
  func xAPIC(id: UInt32 = 3) -> R {
    let apic = R(apicID: id)
    #expect(apic.mode == .xAPIC)
    return apic
  }

  /// An APIC switched to x2APIC mode, as Linux does.
  func x2APIC(id: UInt32) -> R {
    var apic = R(apicID: id)
    let switched = apic.writeAPICBase(R.defaultBase | R.baseEnable | R.baseExtended)
    #expect(switched && apic.mode == .x2APIC)
    return apic
  }

  @Test func resetStateIsXAPICWithBSPOnVCPU0() {
    let bsp = R(apicID: 0)
    #expect(bsp.apicBase == 0xFEE0_0900)
    #expect(bsp.mode == .xAPIC)
    let ap = R(apicID: 1)
    #expect(ap.apicBase == 0xFEE0_0800)
    let x2 = R(apicID: 0, x2APIC: true)
    #expect(x2.apicBase == 0xFEE0_0D00 && x2.mode == .x2APIC)
  }

  @Test func apicBaseTransitions() {
    let x2 = R.defaultBase | R.baseEnable | R.baseExtended
    let x1 = R.defaultBase | R.baseEnable
    let off = R.defaultBase
    // x2APIC → xAPIC directly: #GP; → disabled: fine.
    var apic = x2APIC(id: 1)
    do { let ok = !apic.writeAPICBase(x1); #expect(ok) }
    #expect(apic.mode == .x2APIC)
    do { let ok = apic.writeAPICBase(off); #expect(ok) }
    #expect(apic.mode == .disabled)
    // disabled → x2APIC directly, or EXTD without EN: #GP.
    do { let ok = !apic.writeAPICBase(x2); #expect(ok) }
    do { let ok = !apic.writeAPICBase(off | R.baseExtended); #expect(ok) }
    #expect(apic.mode == .disabled)
    // disabled → xAPIC → x2APIC → disabled → xAPIC.
    do { let ok = apic.writeAPICBase(x1); #expect(ok) }
    #expect(apic.mode == .xAPIC)
    do { let ok = apic.writeAPICBase(x2); #expect(ok) }
    #expect(apic.mode == .x2APIC)
    do { let ok = apic.writeAPICBase(off) && apic.writeAPICBase(x1); #expect(ok) }
    // xAPIC → disabled also fine; the same value again is no change.
    do { let ok = apic.writeAPICBase(x1); #expect(ok) }
    do { let ok = apic.writeAPICBase(off) && apic.mode == .disabled; #expect(ok) }
  }

  @Test func apicBaseRefusesReservedBitsAndAMovedXAPICPageAndKeepsBSP() {
    var apic = xAPIC()
    let x1 = R.defaultBase | R.baseEnable
    do { let ok = !apic.writeAPICBase(x1 | 1); #expect(ok) }                          // reserved bit 0
    do { let ok = !apic.writeAPICBase(x1 | (1 << 9)); #expect(ok) }                   // reserved bit 9
    do { let ok = !apic.writeAPICBase(x1 | (1 << 52)); #expect(ok) }                  // beyond the address bits
    do { let ok = !apic.writeAPICBase(0xFED0_0000 | R.baseEnable); #expect(ok) }      // moved xAPIC page
    #expect(apic.baseAddress == R.defaultBase)
    // BSP is read-only: an AP cannot become the BSP, the BSP stays it.
    do { let ok = apic.writeAPICBase(x1 | R.baseBSP); #expect(ok) }
    #expect(apic.apicBase & R.baseBSP == 0)
    var bsp = R(apicID: 0)
    do { let ok = bsp.writeAPICBase(R.defaultBase | R.baseEnable | R.baseExtended); #expect(ok) }
    #expect(bsp.apicBase & R.baseBSP != 0)
  }

  @Test func enablingResetsTheRegisters() {
    var apic = xAPIC()
    _ = apic.mmioWrite(offset: 0x80, size: 4, value: 0x20, now: 0)
    do { let ok = apic.request(0x40); #expect(ok) }
    do { let ok = apic.writeAPICBase(R.defaultBase); #expect(ok) }
    do { let ok = !apic.request(0x41); #expect(ok) }                                  // disabled: dropped
    #expect(apic.deliverable == nil)
    do { let ok = apic.writeAPICBase(R.defaultBase | R.baseEnable); #expect(ok) }
    #expect(apic.tpr == 0 && R.highest(apic.irr) == nil && apic.svr == 0xFF)
  }

  @Test func sameRegistersThroughBothPaths() {
    var x1 = xAPIC(id: 5)
    var x2 = x2APIC(id: 5)
    // ID: 8 bits in 31:24 in xAPIC, 32 bits in x2APIC.
    #expect(x1.mmioRead(offset: 0x20, size: 4, now: 0) == 0x0500_0000)
    #expect(x2.msrRead(0x802, now: 0) == 5)
    #expect(x1.mmioRead(offset: 0x30, size: 4, now: 0) == 0x0005_0014)
    #expect(x2.msrRead(0x803, now: 0) == 0x0005_0014)
    // TPR and PPR.
    _ = x1.mmioWrite(offset: 0x80, size: 4, value: 0x35, now: 0)
    do { let ok = x2.msrWrite(0x808, 0x35, now: 0) == LocalAPICWriteEffect.none; #expect(ok) }
    #expect(x1.mmioRead(offset: 0xA0, size: 4, now: 0) == 0x30)
    #expect(x2.msrRead(0x80A, now: 0) == 0x30)
    // IRR and ISR: vector 0x45 is bit 5 of the third 32-bit register.
    do { let ok = x1.request(0x45) && x2.request(0x45); #expect(ok) }
    #expect(x1.mmioRead(offset: 0x220, size: 4, now: 0) == 1 << 5)
    #expect(x2.msrRead(0x822, now: 0) == 1 << 5)
    // EOI clears the highest in-service vector.
    R.set(&x1.isr, 0x51); R.set(&x2.isr, 0x51)
    #expect(x1.mmioRead(offset: 0x120, size: 4, now: 0) == 1 << 17)
    _ = x1.mmioWrite(offset: 0xB0, size: 4, value: 0, now: 0)
    do { let ok = x2.msrWrite(0x80B, 0, now: 0) == LocalAPICWriteEffect.none; #expect(ok) }
    #expect(R.highest(x1.isr) == nil && R.highest(x2.isr) == nil)
    // SVR, LVTs.
    _ = x1.mmioWrite(offset: 0xF0, size: 4, value: 0x1FF, now: 0)
    do { let ok = x2.msrWrite(0x80F, 0x1FF, now: 0) != nil; #expect(ok) }
    _ = x1.mmioWrite(offset: 0x350, size: 4, value: 0x700, now: 0)
    do { let ok = x2.msrWrite(0x835, 0x700, now: 0) != nil; #expect(ok) }
    #expect(x1.mmioRead(offset: 0x350, size: 4, now: 0) == 0x700)
    #expect(x2.msrRead(0x835, now: 0) == 0x700)
  }

  @Test func x2APICDifferences() {
    var x2 = x2APIC(id: 0x23)
    // LDR derived from the ID, read-only; no DFR, no ICR high; EOI and SELF IPI write-only.
    #expect(x2.msrRead(0x80D, now: 0) == (2 << 16) | (1 << 3))
    do { let ok = x2.msrWrite(0x80D, 0, now: 0) == nil; #expect(ok) }
    #expect(x2.msrRead(0x80E, now: 0) == nil)
    #expect(x2.msrRead(0x831, now: 0) == nil)
    #expect(x2.msrRead(0x80B, now: 0) == nil)
    #expect(x2.msrRead(0x83F, now: 0) == nil)
    do { let ok = x2.msrWrite(0x802, 7, now: 0) == nil; #expect(ok) }                    // ID read-only
    do { let ok = x2.msrWrite(0x80B, 1, now: 0) == nil; #expect(ok) }                    // EOI must be 0
    do { let ok = x2.msrWrite(0x808, 0x100, now: 0) == nil; #expect(ok) }                // TPR reserved bits
    do { let ok = x2.msrWrite(0x83E, 4, now: 0) == nil; #expect(ok) }                    // divide bit 2 reserved
    do { let ok = x2.msrWrite(0x832, 1 << 19, now: 0) == nil; #expect(ok) }              // LVT timer reserved
    do { let ok = x2.msrWrite(0x830, 1 << 12, now: 0) == nil; #expect(ok) }              // ICR delivery status
    // The 64-bit ICR: destination in 63:32.
    let effect = x2.msrWrite(0x830, (0x23 << 32) | 0x4031, now: 0)
    #expect(effect == .send(icrLow: 0x4031, destination: 0x23))
    #expect(x2.msrRead(0x830, now: 0) == (0x23 << 32) | 0x4031)
    // SELF IPI: fixed, to self, vector only.
    do { let ok = x2.msrWrite(0x83F, 0x1_00, now: 0) == nil; #expect(ok) }
    do { let ok = x2.msrWrite(0x83F, 0x42, now: 0) == .send(icrLow: (1 << 18) | 0x42, destination: 0x23); #expect(ok) }
    // In xAPIC mode the MSRs are #GP.
    let x1 = xAPIC()
    #expect(x1.msrRead(0x802, now: 0) == nil)
    var x1w = x1
    do { let ok = x1w.msrWrite(0x808, 0, now: 0) == nil; #expect(ok) }
  }

  @Test func xAPICICRUsesTheHighHalfAndLogicalDestinations() {
    var apic = xAPIC(id: 2)
    _ = apic.mmioWrite(offset: 0x310, size: 4, value: 0x01FF_FFFF, now: 0)
    #expect(apic.icrHigh == 0x0100_0000)
    do { let ok = apic.mmioWrite(offset: 0x300, size: 4, value: 0x0000_1040, now: 0) == .send(icrLow: 0x40, destination: 1); #expect(ok) }
    // Physical: the 8-bit id or 0xFF.
    var target = xAPIC(id: 1)
    #expect(target.accepts(destination: 1, logical: false))
    #expect(target.accepts(destination: 0xFF, logical: false))
    #expect(!target.accepts(destination: 2, logical: false))
    // Flat logical: LDR bits 31:24 against the 8-bit destination.
    _ = target.mmioWrite(offset: 0xD0, size: 4, value: 0x0200_0000, now: 0)
    #expect(target.accepts(destination: 0x02, logical: true))
    #expect(target.accepts(destination: 0x06, logical: true))
    #expect(!target.accepts(destination: 0x01, logical: true))
    // Cluster: high nibble equal, a low bit in common.
    _ = target.mmioWrite(offset: 0xE0, size: 4, value: 0x0FFF_FFFF, now: 0)
    #expect(target.mmioRead(offset: 0xE0, size: 4, now: 0) == 0x0FFF_FFFF)
    _ = target.mmioWrite(offset: 0xD0, size: 4, value: 0x3400_0000, now: 0)
    #expect(target.accepts(destination: 0x34, logical: true))
    #expect(target.accepts(destination: 0x3C, logical: true))
    #expect(!target.accepts(destination: 0x24, logical: true))
    // x2APIC: broadcast 0xFFFFFFFF, logical cluster << 16 | bit.
    let x2 = x2APIC(id: 0x11)
    #expect(x2.destination(icrHigh: 0x11) == 0x11)
    #expect(x2.accepts(destination: 0xFFFF_FFFF, logical: false))
    #expect(!x2.accepts(destination: 0xFF, logical: false))
    #expect(x2.accepts(destination: (1 << 16) | 0x6, logical: true))
    #expect(!x2.accepts(destination: (0 << 16) | 0x2, logical: true))
  }

  @Test func mmioSizesAndAlignmentAsXen() {
    var apic = xAPIC(id: 0x12)
    // Bytes and words inside a register read those bytes.
    #expect(apic.mmioRead(offset: 0x23, size: 1, now: 0) == 0x12)
    #expect(apic.mmioRead(offset: 0x22, size: 2, now: 0) == 0x1200)
    #expect(apic.mmioRead(offset: 0x30, size: 2, now: 0) == 0x0014)
    // Straddling, 8-byte, past the divide register, unused offsets: 0.
    #expect(apic.mmioRead(offset: 0x22, size: 4, now: 0) == 0)
    #expect(apic.mmioRead(offset: 0x30, size: 8, now: 0) == 0)
    #expect(apic.mmioRead(offset: 0x3F0, size: 4, now: 0) == 0)
    #expect(apic.mmioRead(offset: 0x400, size: 4, now: 0) == 0)
    #expect(apic.mmioRead(offset: 0x40, size: 4, now: 0) == 0)
    #expect(apic.mmioRead(offset: 0xFFF, size: 1, now: 0) == 0)
    #expect(apic.mmioRead(offset: 0x24, size: 3, now: 0) == 0)
    // A byte write merges into the register.
    _ = apic.mmioWrite(offset: 0x80, size: 4, value: 0x12, now: 0)
    _ = apic.mmioWrite(offset: 0x80, size: 1, value: 0x34, now: 0)
    #expect(apic.tpr == 0x34)
    _ = apic.mmioWrite(offset: 0x81, size: 1, value: 0x56, now: 0)
    #expect(apic.tpr == 0x34)                                       // TPR keeps 8 bits
    // Straddling and wide writes are dropped.
    do { let ok = apic.mmioWrite(offset: 0x7E, size: 4, value: 0, now: 0) == .none; #expect(ok) }
    _ = apic.mmioWrite(offset: 0x80, size: 8, value: 0, now: 0)
    #expect(apic.tpr == 0x34)
    // Outside xAPIC mode the page is absent.
    var x2 = x2APIC(id: 1)
    #expect(x2.mmioRead(offset: 0x20, size: 4, now: 0) == 0xFFFF_FFFF)
    #expect(x2.mmioRead(offset: 0x20, size: 1, now: 0) == 0xFF)
    #expect(x2.mmioRead(offset: 0x20, size: 8, now: 0) == .max)
    do { let ok = x2.mmioWrite(offset: 0x80, size: 4, value: 0x55, now: 0) == .none; #expect(ok) }
    #expect(x2.tpr == 0)
  }

  @Test func softwareDisableMasksTheLVTs() {
    var apic = xAPIC()
    _ = apic.mmioWrite(offset: 0x320, size: 4, value: 0x40, now: 0)
    #expect(apic.lvt[1] & R.lvtMasked != 0)                        // still software-disabled
    _ = apic.mmioWrite(offset: 0xF0, size: 4, value: 0x1FF, now: 0)
    _ = apic.mmioWrite(offset: 0x320, size: 4, value: 0x40, now: 0)
    #expect(apic.lvt[1] == 0x40)
    _ = apic.mmioWrite(offset: 0xF0, size: 4, value: 0xFF, now: 0)
    #expect(apic.lvt[1] == 0x40 | R.lvtMasked)
    #expect(apic.timerVector == nil)
  }

  @Test func divisorDecoding() {
    #expect(R.divisor(0b0000) == 2)
    #expect(R.divisor(0b0001) == 4)
    #expect(R.divisor(0b0010) == 8)
    #expect(R.divisor(0b0011) == 16)
    #expect(R.divisor(0b1000) == 32)
    #expect(R.divisor(0b1001) == 64)
    #expect(R.divisor(0b1010) == 128)
    #expect(R.divisor(0b1011) == 1)
  }

  /// Software-enabled APIC with the timer LVT at `vector` in `mode`, divide by 1.
  func timerAPIC(mode: UInt32, vector: UInt32 = 0x40) -> R {
    var apic = xAPIC()
    _ = apic.mmioWrite(offset: 0xF0, size: 4, value: 0x1FF, now: 0)
    _ = apic.mmioWrite(offset: 0x3E0, size: 4, value: 0xB, now: 0)
    do { let ok = apic.mmioWrite(offset: 0x320, size: 4, value: UInt64(mode | vector), now: 0) == .timer; #expect(ok) }
    return apic
  }

  @Test func oneShotCountsDownFromElapsedTime() {
    var apic = timerAPIC(mode: R.timerOneShot)
    #expect(apic.timerSchedule(now: 1000) == nil)                  // no count yet
    do { let ok = apic.mmioWrite(offset: 0x380, size: 4, value: 1000, now: 1_000_000) == .timer; #expect(ok) }
    // 1000 counts × 10 ns × 1 = 10 µs.
    #expect(apic.timerSchedule(now: 1_000_000)! == (1_010_000, 0))
    #expect(apic.timerCurrentCount(now: 1_000_000) == 1000)
    #expect(apic.timerCurrentCount(now: 1_004_000) == 600)
    #expect(apic.timerSchedule(now: 1_004_000)! == (1_010_000, 0))
    #expect(apic.timerCurrentCount(now: 1_010_000) == 0)
    #expect(apic.timerCurrentCount(now: 9_000_000) == 0)
    #expect(apic.timerSchedule(now: 1_010_000) == nil)              // ran out
    #expect(apic.mmioRead(offset: 0x380, size: 4, now: 0) == 1000)
    #expect(apic.timerVector == 0x40)
    // Initial count 0 stops it.
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 0, now: 1_002_000)
    #expect(apic.timerSchedule(now: 1_002_000) == nil)
  }

  @Test func periodicWrapsAndIsBoundedBelow() {
    var apic = timerAPIC(mode: R.timerPeriodic)
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 100_000, now: 0)   // 1 ms
    #expect(apic.timerSchedule(now: 0)! == (1_000_000, 1_000_000))
    #expect(apic.timerCurrentCount(now: 2_500_000) == 50_000)
    #expect(apic.timerSchedule(now: 2_500_000)! == (3_000_000, 1_000_000))
    // A count of 1 (10 ns) fires at most every 100 µs.
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 1, now: 5_000_000)
    #expect(apic.timerSchedule(now: 5_000_000)! == (5_000_010, R.minimumTimerPeriod))
    // The largest count and divisor: 2^32 × 1280 ns, no overflow anywhere.
    _ = apic.mmioWrite(offset: 0x3E0, size: 4, value: 0b1010, now: 5_000_000)
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 0xFFFF_FFFF, now: .max)
    #expect(apic.timerCurrentCount(now: .max) == 0xFFFF_FFFF)
    #expect(apic.timerSchedule(now: .max)?.deadline == .max)
    #expect(apic.timerSchedule(now: 0) != nil)                     // time running backwards: no trap
  }

  @Test func divideChangeKeepsTheCountsDone() {
    var apic = timerAPIC(mode: R.timerOneShot)
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 1000, now: 0)
    // 400 counts at 10 ns, then divide by 2: the remaining 600 take 12 µs.
    _ = apic.mmioWrite(offset: 0x3E0, size: 4, value: 0, now: 4000)
    #expect(apic.timerCurrentCount(now: 4000) == 600)
    #expect(apic.timerSchedule(now: 4000)! == (16_000, 0))
  }

  /// A guest flipping the divisor on a count that ran out long ago, at the end of time: the
  /// rebased start never overflows, and the count stays run out.
  @Test func divideFlipsOnALongExpiredCountDoNotOverflow() {
    var apic = timerAPIC(mode: R.timerOneShot)
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 0xFFFF_FFFF, now: 0)
    for (step, now) in [UInt64(1) << 62, .max - 1, .max].enumerated() {
      _ = apic.mmioWrite(offset: 0x3E0, size: 4, value: step % 2 == 0 ? 0b1010 : 0b1011, now: now)
      #expect(apic.timerCurrentCount(now: now) == 0)
      #expect(apic.timerSchedule(now: now) == nil)
    }
    var periodic = timerAPIC(mode: R.timerPeriodic)
    _ = periodic.mmioWrite(offset: 0x380, size: 4, value: 7, now: 0)
    for now in [UInt64(1) << 62, .max] {
      _ = periodic.mmioWrite(offset: 0x3E0, size: 4, value: 0b1010, now: now)
      _ = periodic.mmioWrite(offset: 0x3E0, size: 4, value: 0b1011, now: now)
      #expect(periodic.timerCurrentCount(now: now) <= 7)
      #expect(periodic.timerSchedule(now: now) != nil)
    }
  }

  @Test func tscDeadlineModeDoesNotCount() {
    var apic = timerAPIC(mode: R.timerOneShot)
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 1000, now: 0)
    _ = apic.mmioWrite(offset: 0x320, size: 4, value: UInt64(R.timerTSCDeadline | 0x40), now: 0)
    #expect(apic.timerInitialCount == 0)
    do { let ok = apic.mmioWrite(offset: 0x380, size: 4, value: 1000, now: 0) == .none; #expect(ok) }
    #expect(apic.timerSchedule(now: 0) == nil)
    #expect(apic.mmioRead(offset: 0x390, size: 4, now: 0) == 0)
  }

  @Test func maskedTimerKeepsCountingButDeliversNothing() {
    var apic = timerAPIC(mode: R.timerPeriodic)
    _ = apic.mmioWrite(offset: 0x380, size: 4, value: 100_000, now: 0)
    _ = apic.mmioWrite(offset: 0x320, size: 4, value: UInt64(R.timerPeriodic | R.lvtMasked | 0x40), now: 500_000)
    #expect(apic.timerVector == nil)
    #expect(apic.timerCurrentCount(now: 500_000) == 50_000)
    #expect(apic.timerSchedule(now: 500_000) != nil)
  }

  /// The vcpu's timer bookkeeping for the LAPIC timer: a periodic one re-arms, a one-shot one
  /// ends, cancelAll stops it, and an expiry requests the LVT vector.
  @Test func vcpuTimerFiresTheLVTVector() {
    let domain = Domain(id: 9, name: Array("t".utf8), memoryBytes: 1 << 20)
    let vcpu = VCPU(id: 0, domain: domain)
    domain.vcpus.append(vcpu)
    vcpu.lapic = timerAPIC(mode: R.timerPeriodic, vector: 0x50)
    VCPUTimers.setLAPICTimer(vcpu, deadline: 1_000, period: 10)
    #expect(vcpu.lapicTimerPeriod == R.minimumTimerPeriod)
    #expect(VCPUTimers.earliest(vcpu) == 1_000)
    VCPUTimers.expire(vcpu, now: 1_000)
    #expect(vcpu.lapic.irr[1] & (1 << (0x50 - 64)) != 0)
    let hasRequests = vcpu.lapicHasRequests.load(ordering: .acquiring)
    #expect(hasRequests)
    #expect(VCPUTimers.earliest(vcpu) == 1_000 + R.minimumTimerPeriod)
    // Far behind: fires once, the next is a period from now.
    VCPUTimers.expire(vcpu, now: 10_000_000)
    #expect(vcpu.lapicTimerExpiries == 2)
    #expect(VCPUTimers.earliest(vcpu) == 10_000_000 + R.minimumTimerPeriod)
    VCPUTimers.setLAPICTimer(vcpu, deadline: 20_000_000, period: 0)
    VCPUTimers.expire(vcpu, now: 20_000_000)
    #expect(VCPUTimers.earliest(vcpu) == .max)
    VCPUTimers.setLAPICTimer(vcpu, deadline: 30_000_000, period: 1_000_000)
    VCPUTimers.cancelAll(vcpu)
    #expect(VCPUTimers.earliest(vcpu) == .max)
  }
}
