#if os(none)
import Hypervisor
import Synchronization

/// The virtual local APIC of a PVH vcpu (docs/vlapic.md), in xAPIC or x2APIC mode. The
/// registers and their decoding are `LocalAPICRegisters` (common, host-tested): one model
/// reached through the x2APIC MSRs 0x800–0x8FF (`read`, `write`) or the xAPIC MMIO page
/// (`mmioRead`, `mmioWrite`). This layer does what a register write asks beyond the
/// registers: sends IPIs (fixed, lowest priority, INIT + STARTUP to start an AP in real mode),
/// and programs the APIC timer on the vcpu's timers (`VCPUTimers.setLAPICTimer`).
///
/// The APIC ID of vcpu N is N, as the domain's MADT says.
enum VirtualLAPIC {
  static let msrs: ClosedRange<UInt32> = 0x800...0x8FF

  // MARK: The x2APIC MSR path

  static func read(_ msr: UInt32, _ vcpu: VCPU) -> UInt64? {
    let now = SystemTime.now()
    return vcpu.lapicLock.withLock { vcpu.lapic.msrRead(msr, now: now) }
  }

  /// False: #GP (not in x2APIC mode, reserved bits, a read-only register).
  static func write(_ msr: UInt32, _ value: UInt64, _ vcpu: VCPU) -> Bool {
    let now = SystemTime.now()
    guard let effect = vcpu.lapicLock.withLock({ vcpu.lapic.msrWrite(msr, value, now: now) }) else { return false }
    perform(effect, vcpu, now: now)
    return true
  }

  // MARK: The xAPIC MMIO path

  /// Where this vcpu's APIC page is, if the APIC is in xAPIC mode (otherwise the page is not
  /// the APIC: `mmioRead` answers all ones and `mmioWrite` drops the write).
  static func xAPICPage(_ vcpu: VCPU) -> UInt64? {
    vcpu.lapicLock.withLock { vcpu.lapic.mode == .xAPIC ? vcpu.lapic.baseAddress : nil }
  }

  /// A guest read of `size` bytes at `offset` into the APIC page.
  static func mmioRead(_ vcpu: VCPU, offset: UInt64, size: Int) -> UInt64 {
    let now = SystemTime.now()
    return vcpu.lapicLock.withLock { vcpu.lapic.mmioRead(offset: offset, size: size, now: now) }
  }

  /// A guest write of `size` bytes at `offset` into the APIC page.
  static func mmioWrite(_ vcpu: VCPU, offset: UInt64, size: Int, value: UInt64) {
    let now = SystemTime.now()
    let effect = vcpu.lapicLock.withLock { vcpu.lapic.mmioWrite(offset: offset, size: size, value: value, now: now) }
    perform(effect, vcpu, now: now)
  }

  // MARK: APIC_BASE

  static func apicBase(_ vcpu: VCPU) -> UInt64 {
    vcpu.lapicLock.withLock { vcpu.lapic.apicBase }
  }

  /// WRMSR APIC_BASE: false is #GP (`LocalAPICRegisters.writeAPICBase` has the rules). A
  /// disabled or reset APIC's timer stops.
  static func writeAPICBase(_ vcpu: VCPU, _ value: UInt64) -> Bool {
    let accepted = vcpu.lapicLock.withLock { () -> Bool in
      guard vcpu.lapic.writeAPICBase(value) else { return false }
      if LocalAPICRegisters.highest(vcpu.lapic.irr) == nil { vcpu.lapicHasRequests.store(false, ordering: .relaxed) }
      return true
    }
    if accepted { programTimer(vcpu, now: SystemTime.now()) }
    return accepted
  }

  // MARK: Effects of a register write

  static func perform(_ effect: LocalAPICWriteEffect, _ vcpu: VCPU, now: UInt64) {
    switch effect {
    case .none: break
    case .send(let icrLow, let destination): send(icrLow, destination: destination, from: vcpu)
    case .timer: programTimer(vcpu, now: now)
    }
  }

  /// The timer's registers changed: arm the vcpu's LAPIC timer for what they say, or stop it.
  static func programTimer(_ vcpu: VCPU, now: UInt64) {
    if let schedule = vcpu.lapicLock.withLock({ vcpu.lapic.timerSchedule(now: now) }) {
      VCPUTimers.setLAPICTimer(vcpu, deadline: schedule.deadline, period: schedule.period)
    } else {
      VCPUTimers.stopLAPICTimer(vcpu)
    }
  }

  /// An ICR write: deliver to every vcpu the destination (decoded by the sender's mode) or the
  /// shorthand in bits 19:18 names; logical destinations (bit 11) match each target's LDR.
  /// Lowest priority goes to the one matching vcpu with the lowest processor priority.
  static func send(_ icrLow: UInt32, destination: UInt32, from sender: VCPU) {
    let vector = Int(icrLow & 0xFF)
    let mode = (icrLow >> 8) & 7
    let shorthand = (icrLow >> 18) & 3
    let logical = icrLow & (1 << 11) != 0
    var lowest: (vcpu: VCPU, priority: UInt32)?
    for target in unsafe sender.domain.vcpus {
      let chosen = switch shorthand {
      case 1: target === sender
      case 2: true
      case 3: target !== sender
      default: target.lapicLock.withLock { target.lapic.accepts(destination: destination, logical: logical) }
      }
      guard chosen else { continue }
      switch mode {
      case 0: LocalAPICDelivery.post(vector, to: target)                    // fixed
      case 1:                                                                // lowest priority
        let priority = target.lapicLock.withLock { target.lapic.processorPriority }
        if let current = lowest, current.priority <= priority { break }
        lowest = (target, priority)
      case 5: if icrLow & (1 << 14) != 0 { initialise(target) }             // INIT assert (deassert: nothing)
      case 6: startup(target, page: UInt8(vector))
      default:
        unsafe GuestMessages.warning(sender.domain, "domain \(sender.domain.id) vcpu \(sender.id): IPI delivery mode \(mode) is not supported (ignored)")
      }
    }
    if let lowest { LocalAPICDelivery.post(vector, to: lowest.vcpu) }
  }

  /// INIT to a vcpu that has not started: it waits for STARTUP.
  static func initialise(_ target: VCPU) {
    guard !target.initialised, target.runState == .down else { return }
    target.lapicLock.withLock { target.lapic.waitingForStartup = true }
  }

  /// STARTUP after INIT: the vcpu starts in real mode at `page` << 12 (the first STARTUP counts,
  /// later ones are ignored, as on hardware).
  static func startup(_ target: VCPU, page: UInt8) {
    let waiting = target.lapicLock.withLock { () -> Bool in
      let was = target.lapic.waitingForStartup
      target.lapic.waitingForStartup = false
      return was
    }
    guard waiting, !target.initialised, target.vmcb != 0 else { return }
    ArchVCPU.setRealModeStart(target, page: page)
    target.initialised = true
    unsafe Scheduler.policy?.wake(target)
  }

  // MARK: Injection

  /// The vector to deliver now, if any (highest request above the processor priority).
  static func deliverable(_ vcpu: VCPU) -> Int? {
    guard vcpu.lapicHasRequests.load(ordering: .acquiring) else { return nil }
    return vcpu.lapicLock.withLock { vcpu.lapic.deliverable }
  }

  /// The vector is being injected: it moves from requested to in service.
  static func accept(_ vector: Int, _ vcpu: VCPU) {
    vcpu.lapicLock.withLock {
      LocalAPICRegisters.clear(&vcpu.lapic.irr, vector)
      LocalAPICRegisters.set(&vcpu.lapic.isr, vector)
      if LocalAPICRegisters.highest(vcpu.lapic.irr) == nil { vcpu.lapicHasRequests.store(false, ordering: .relaxed) }
    }
  }
}
#endif
