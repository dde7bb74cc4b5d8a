#if os(none)
import Hypervisor
import Synchronization

/// The virtual local APIC of a PVH vcpu, in x2APIC mode only (docs/vlapic.md): the guest reaches
/// it through MSRs 0x800–0x8FF, never through MMIO, so no instruction decoder is needed. It does
/// what Linux uses on a Xen PVH domain: its identity, task priority and EOI, the LVTs and error
/// status as storage, and the ICR: fixed IPIs, self-IPIs, and INIT + STARTUP to start an AP in
/// real mode. Its timer is storage only (Linux PVH uses the Xen timer instead).
///
/// The APIC ID of vcpu N is N, as the domain's MADT says.
enum VirtualLAPIC {
  static let msrs: ClosedRange<UInt32> = 0x800...0x8FF
  /// Integrated APIC (0x14), maximum LVT entry 5.
  static let version: UInt64 = 0x0005_0014

  static func read(_ msr: UInt32, _ vcpu: VCPU) -> UInt64? {
    vcpu.lapicLock.lock()
    defer { vcpu.lapicLock.unlock() }
    let apic = vcpu.lapic
    switch msr {
    case 0x802: return UInt64(vcpu.id)                                       // x2APIC ID
    case 0x803: return version
    case 0x808: return UInt64(apic.tpr)
    case 0x80A: return UInt64(apic.processorPriority)
    case 0x80D: return UInt64(((vcpu.id >> 4) << 16) | (1 << (vcpu.id & 0xF)))  // logical ID (cluster, bit)
    case 0x80F: return UInt64(apic.svr)
    case 0x810...0x817: return chunk(apic.isr, Int(msr - 0x810))
    case 0x818...0x81F: return 0                                             // TMR: all edge
    case 0x820...0x827: return chunk(apic.irr, Int(msr - 0x820))
    case 0x828: return UInt64(apic.esr)
    case 0x82F: return UInt64(apic.lvt[0])
    case 0x830: return apic.icr
    case 0x832...0x837: return UInt64(apic.lvt[Int(msr - 0x831)])
    case 0x838: return UInt64(apic.timerInitialCount)
    case 0x839: return 0                                                     // the timer never runs
    case 0x83E: return UInt64(apic.timerDivide)
    default: return nil
    }
  }

  static func write(_ msr: UInt32, _ value: UInt64, _ vcpu: VCPU) -> Bool {
    let low = UInt32(truncatingIfNeeded: value)
    switch msr {
    case 0x830:
      vcpu.lapicLock.withLock { vcpu.lapic.icr = value & ~(1 << 12) }       // never "send pending"
      send(value, from: vcpu)
      return true
    case 0x83F:
      post(Int(low & 0xFF), to: vcpu)                                        // SELF IPI
      return true
    default:
      break
    }
    vcpu.lapicLock.lock()
    defer { vcpu.lapicLock.unlock() }
    switch msr {
    case 0x808: vcpu.lapic.tpr = low & 0xFF
    case 0x80B:                                                              // EOI
      if let vector = LocalAPICRegisters.highest(vcpu.lapic.isr) { LocalAPICRegisters.clear(&vcpu.lapic.isr, vector) }
    case 0x80F: vcpu.lapic.svr = low & 0x13FF
    case 0x828: vcpu.lapic.esr = 0
    case 0x82F: vcpu.lapic.lvt[0] = low
    case 0x832...0x837: vcpu.lapic.lvt[Int(msr - 0x831)] = low
    case 0x838: vcpu.lapic.timerInitialCount = low
    case 0x83E: vcpu.lapic.timerDivide = low & 0xB
    default: return false                                                    // read-only or reserved: #GP
    }
    return true
  }

  static func chunk(_ words: InlineArray<4, UInt64>, _ index: Int) -> UInt64 {
    (words[index / 2] >> UInt64(32 * (index % 2))) & 0xFFFF_FFFF
  }

  /// An ICR write: deliver to every vcpu the destination names (x2APIC: the APIC ID in bits
  /// 63:32, 0xFFFFFFFF for all; or a shorthand in bits 19:18).
  static func send(_ icr: UInt64, from sender: VCPU) {
    let vector = Int(icr & 0xFF)
    let mode = (icr >> 8) & 7
    let shorthand = (icr >> 18) & 3
    let destination = UInt32(truncatingIfNeeded: icr >> 32)
    for target in sender.domain.vcpus {
      let chosen = switch shorthand {
      case 1: target === sender
      case 2: true
      case 3: target !== sender
      default: destination == 0xFFFF_FFFF || destination == UInt32(target.id)
      }
      guard chosen else { continue }
      switch mode {
      case 0, 1: post(vector, to: target)                                   // fixed, lowest priority
      case 5: if icr & (1 << 14) != 0 { initialise(target) }                // INIT assert (deassert: nothing)
      case 6: startup(target, page: UInt8(vector))
      default:
        GuestMessages.warning(sender.domain, "domain \(sender.domain.id) vcpu \(sender.id): IPI delivery mode \(mode) is not supported (ignored)")
      }
    }
  }

  /// Requests `vector` on `target` and makes it notice (wake it, or make its pcpu exit).
  static func post(_ vector: Int, to target: VCPU) {
    guard vector >= 16 else { return }                                       // illegal vectors: dropped
    target.lapicLock.withLock {
      LocalAPICRegisters.set(&target.lapic.irr, vector)
      target.lapicHasRequests.store(true, ordering: .releasing)
    }
    unsafe Events.platform?.kick(target)
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
