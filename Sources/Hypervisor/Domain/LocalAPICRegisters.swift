/// The mode a local APIC is in, from the EN (bit 11) and EXTD (bit 10) bits of its APIC_BASE.
public enum LocalAPICMode: Sendable, Equatable {
  /// EN clear: the APIC is hardware-disabled; it neither sends nor accepts interrupts.
  case disabled
  /// EN set, EXTD clear: registers in the 4 KiB MMIO page at the base address.
  case xAPIC
  /// EN and EXTD set: registers as MSRs 0x800–0x8FF.
  case x2APIC
}

/// What a register write asks of the device beyond the registers themselves.
public enum LocalAPICWriteEffect: Sendable, Equatable {
  case none
  /// The ICR was written: send `icrLow` to `destination`, already decoded for the sender's
  /// mode (xAPIC: ICR high bits 31:24; x2APIC: ICR bits 63:32).
  case send(icrLow: UInt32, destination: UInt32)
  /// The timer's configuration changed: reprogram it (`timerSchedule`).
  case timer
}

/// A vcpu's virtual local APIC registers, kept as data with the vcpu (like its VMCB) so its
/// whole state stays in the vcpu structure. One register model serves both interfaces: a
/// register is named by its xAPIC offset (0x20 ID … 0x3E0 divide), and the x2APIC MSR path
/// (`msrRead`, `msrWrite`: MSR 0x800 + offset >> 4) and the xAPIC MMIO path (`mmioRead`,
/// `mmioWrite`) are two ways in (docs/vlapic.md). The x86 layer implements the device on top
/// (X86/APIC/VirtualLAPIC.swift): the IPIs, the timer and the injection. Guarded by
/// `VCPU.lapicLock`: other pcpus set IRR bits when they send this vcpu an IPI. Every method is
/// pure (time comes in as `now`), so the decoding is tested on the host.
public struct LocalAPICRegisters: Sendable {
  // MARK: Constants (Intel SDM vol. 3 ch. 11, AMD APM vol. 2 ch. 16; Xen's vlapic.c)
  public static let defaultBase: UInt64 = 0xFEE0_0000
  public static let baseBSP: UInt64 = 1 << 8
  public static let baseExtended: UInt64 = 1 << 10
  public static let baseEnable: UInt64 = 1 << 11
  /// The base address bits of APIC_BASE (bits 12–51); anything else but BSP, EXTD, EN is reserved.
  public static let baseAddressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  /// Integrated APIC (0x14), maximum LVT entry 5 (timer … error), as Xen's VLAPIC_VERSION.
  public static let version: UInt32 = 0x0005_0014
  /// The APIC bus: one timer count is 10 ns before division (Xen's APIC_BUS_CYCLE_NS, 100 MHz).
  public static let busCycleNanoseconds: UInt64 = 10
  /// The shortest period a periodic APIC timer fires at (Xen's create_periodic_time clamps
  /// shorter periods to 100 µs), so a guest cannot keep a pcpu busy with timer interrupts.
  public static let minimumTimerPeriod: UInt64 = 100_000

  // Register offsets in the xAPIC page.
  public static let idOffset = 0x20, versionOffset = 0x30, tprOffset = 0x80, arbitrationOffset = 0x90
  public static let pprOffset = 0xA0, eoiOffset = 0xB0, remoteReadOffset = 0xC0, ldrOffset = 0xD0
  public static let dfrOffset = 0xE0, svrOffset = 0xF0, isrOffset = 0x100, tmrOffset = 0x180
  public static let irrOffset = 0x200, esrOffset = 0x280, cmciOffset = 0x2F0, icrLowOffset = 0x300
  public static let icrHighOffset = 0x310, lvtTimerOffset = 0x320, lvtErrorOffset = 0x370
  public static let timerInitialOffset = 0x380, timerCurrentOffset = 0x390, timerDivideOffset = 0x3E0
  public static let selfIPIOffset = 0x3F0

  // LVT fields.
  public static let lvtMasked: UInt32 = 1 << 16
  static let lvtBasic: UInt32 = (1 << 16) | (1 << 12) | 0xFF            // masked, status, vector
  static let lvtDeliveryMode: UInt32 = 0x700
  static let lvtLINT: UInt32 = lvtBasic | lvtDeliveryMode | (1 << 13) | (1 << 14) | (1 << 15)
  public static let timerModeMask: UInt32 = 3 << 17
  public static let timerOneShot: UInt32 = 0
  public static let timerPeriodic: UInt32 = 1 << 17
  public static let timerTSCDeadline: UInt32 = 2 << 17
  /// ICR low bits a guest may set: vector, delivery mode, destination mode, level, trigger,
  /// shorthand (bit 12, delivery status, reads 0 here: an IPI is sent at once).
  public static let icrWritable: UInt32 = 0xFF | 0x700 | (1 << 11) | (1 << 14) | (1 << 15) | (3 << 18)

  // MARK: State
  /// The APIC ID: the vcpu id, as the domain's MADT says (xAPIC: bits 31:24 of register 0x20).
  public let apicID: UInt32
  /// MSR_APIC_BASE: base address, EN, EXTD, BSP.
  public var apicBase: UInt64
  public var tpr: UInt32 = 0
  /// Spurious-interrupt vector register; bit 8 is "APIC software enabled". Reset: 0xFF.
  public var svr: UInt32 = 0xFF
  public var esr: UInt32 = 0
  /// ICR low half, and the high half (xAPIC: destination in bits 31:24; x2APIC: 32-bit APIC ID).
  public var icrLow: UInt32 = 0
  public var icrHigh: UInt32 = 0
  /// xAPIC logical destination (bits 31:24) and destination format (flat 0xFFFFFFFF, cluster
  /// 0x0FFFFFFF). In x2APIC mode the LDR is derived from the ID and there is no DFR.
  public var ldr: UInt32 = 0
  public var dfr: UInt32 = 0xFFFF_FFFF
  /// LVT CMCI, timer, thermal, performance, LINT0, LINT1, error: all masked at reset.
  /// Inline arrays, not Swift arrays: the registers are read on every exit, and a struct of
  /// heap arrays costs a reference count on each copy.
  public var lvt = InlineArray<7, UInt32>(repeating: 1 << 16)
  public var timerInitialCount: UInt32 = 0
  /// The divide configuration register (bits 0, 1, 3).
  public var timerDivide: UInt32 = 0
  /// When the count last started from the initial count (system time, ns; may be "negative"
  /// after a divide change rebased it), and whether it counts at all.
  public var timerStart: Int64 = 0
  public var timerRunning = false
  /// 256-bit request and in-service registers, as four 64-bit words.
  public var irr = InlineArray<4, UInt64>(repeating: 0)
  public var isr = InlineArray<4, UInt64>(repeating: 0)
  /// An INIT was received: the next STARTUP starts the vcpu (the real-mode AP start).
  public var waitingForStartup = false

  /// The state at reset: xAPIC mode (`x2APIC: false`), enabled, at 0xFEE00000, BSP on vcpu 0,
  /// as Xen starts HVM vcpus. Linux switches to x2APIC itself (docs/vlapic.md).
  public init(apicID: UInt32 = 0, x2APIC: Bool = false) {
    self.apicID = apicID
    apicBase = Self.defaultBase | Self.baseEnable | (x2APIC ? Self.baseExtended : 0) | (apicID == 0 ? Self.baseBSP : 0)
  }

  public var mode: LocalAPICMode {
    if apicBase & Self.baseEnable == 0 { return .disabled }
    return apicBase & Self.baseExtended != 0 ? .x2APIC : .xAPIC
  }

  public var softwareEnabled: Bool { svr & (1 << 8) != 0 }

  /// The base address of the xAPIC page (meaningful in xAPIC mode).
  public var baseAddress: UInt64 { apicBase & Self.baseAddressMask }

  // MARK: Bit sets

  public static func highest(_ words: InlineArray<4, UInt64>) -> Int? {
    for word in stride(from: 3, through: 0, by: -1) where words[word] != 0 {
      return word * 64 + 63 - words[word].leadingZeroBitCount
    }
    return nil
  }

  public static func set(_ words: inout InlineArray<4, UInt64>, _ vector: Int) { words[vector / 64] |= 1 << UInt64(vector % 64) }
  public static func clear(_ words: inout InlineArray<4, UInt64>, _ vector: Int) { words[vector / 64] &= ~(1 << UInt64(vector % 64)) }

  /// 32-bit register `index` (0…7) of a 256-bit set, as ISR/TMR/IRR are read.
  static func chunk(_ words: InlineArray<4, UInt64>, _ index: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: words[index / 2] >> UInt64(32 * (index % 2)))
  }

  /// The processor priority: the higher of the task priority and the class of the highest
  /// vector in service.
  public var processorPriority: UInt32 {
    let inService = Self.highest(isr).map { UInt32($0) & 0xF0 } ?? 0
    return max(tpr & 0xF0, inService)
  }

  /// The highest requested vector whose priority class beats the processor priority: the one
  /// to deliver when the vcpu can take an interrupt. A hardware-disabled APIC delivers nothing.
  public var deliverable: Int? {
    guard mode != .disabled, let vector = Self.highest(irr), UInt32(vector) & 0xF0 > processorPriority else { return nil }
    return vector
  }

  /// Requests `vector` (fixed delivery). Vectors 0–15 are illegal and dropped, as is anything
  /// sent to a hardware-disabled APIC. Returns whether the request was taken.
  public mutating func request(_ vector: Int) -> Bool {
    guard vector >= 16, vector < 256, mode != .disabled else { return false }
    Self.set(&irr, vector)
    return true
  }

  // MARK: Identity and destinations

  /// The logical destination register as read: x2APIC derives it from the ID (cluster
  /// id >> 4 in bits 31:16, bit id & 15), xAPIC keeps what the guest wrote.
  public var logicalID: UInt32 {
    mode == .x2APIC ? ((apicID >> 4) << 16) | (1 << (apicID & 0xF)) : ldr
  }

  /// The destination an ICR write names, decoded for the sender's mode (Xen's _VLAPIC_ID):
  /// xAPIC takes bits 31:24 of ICR high, x2APIC the whole 32 bits.
  public func destination(icrHigh: UInt32) -> UInt32 {
    mode == .x2APIC ? icrHigh : icrHigh >> 24
  }

  /// Whether this APIC (the target) accepts an IPI with `destination` (decoded by the sender)
  /// in physical (`logical` false) or logical mode, without shorthand. Physical: the APIC ID or
  /// the broadcast ID of the target's mode (0xFF, 0xFFFFFFFF). Logical: x2APIC matches cluster
  /// and bit; xAPIC flat matches any common bit of the 8-bit ids, cluster the high nibble and a
  /// common low bit.
  public func accepts(destination: UInt32, logical: Bool) -> Bool {
    if !logical {
      let broadcast: UInt32 = mode == .x2APIC ? 0xFFFF_FFFF : 0xFF
      return destination == broadcast || destination == apicID
    }
    if mode == .x2APIC {
      let id = logicalID
      return id >> 16 == destination >> 16 && (id & destination & 0xFFFF) != 0
    }
    let id = ldr >> 24
    let mda = destination & 0xFF
    switch dfr {
    case 0xFFFF_FFFF: return id & mda != 0                                          // flat
    case 0x0FFF_FFFF: return id >> 4 == mda >> 4 && (id & mda & 0xF) != 0            // cluster
    default: return false
    }
  }

  // MARK: APIC_BASE

  /// A write of MSR_APIC_BASE, with Xen's rules (guest_wrmsr_apic_base): reserved bits, EXTD
  /// without EN, x2APIC → xAPIC directly, and an xAPIC page away from 0xFEE00000 are refused
  /// (#GP: false). Enabling a disabled APIC resets it; disabling stops its timer. BSP is
  /// read-only. Returns false (and changes nothing) when refused.
  public mutating func writeAPICBase(_ value: UInt64) -> Bool {
    let allowed = Self.baseAddressMask | Self.baseEnable | Self.baseExtended | Self.baseBSP
    guard value & ~allowed == 0 else { return false }
    let enable = value & Self.baseEnable != 0
    let extended = value & Self.baseExtended != 0
    if enable && !extended && value & Self.baseAddressMask != Self.defaultBase { return false }
    let value = (value & ~Self.baseBSP) | (apicBase & Self.baseBSP)
    let old = mode
    if (apicBase ^ value) & Self.baseEnable != 0 {
      guard !extended else { return false }          // disabled ↔ x2APIC directly, EXTD without EN
      if enable {
        resetRegisters()
      } else {
        timerRunning = false
      }
    } else if (apicBase ^ value) & Self.baseExtended != 0 && old != .xAPIC {
      return false                                   // x2APIC → xAPIC, or EXTD while disabled
    }
    apicBase = value
    return true
  }

  /// The registers at reset or INIT (base and ID kept), as Xen's vlapic_do_init.
  public mutating func resetRegisters() {
    tpr = 0; svr = 0xFF; esr = 0; icrLow = 0; icrHigh = 0; ldr = 0; dfr = 0xFFFF_FFFF
    lvt = InlineArray<7, UInt32>(repeating: Self.lvtMasked)
    timerInitialCount = 0; timerDivide = 0; timerStart = 0; timerRunning = false
    irr = InlineArray<4, UInt64>(repeating: 0)
    isr = InlineArray<4, UInt64>(repeating: 0)
  }

  // MARK: Registers by offset

  /// The register at `offset` (16-byte aligned) as this mode reads it, or nil when there is
  /// none there in this mode.
  public func register(_ offset: Int, now: UInt64) -> UInt32? {
    let x2 = mode == .x2APIC
    switch offset {
    case Self.idOffset: return x2 ? apicID : apicID << 24
    case Self.versionOffset: return Self.version
    case Self.tprOffset: return tpr
    case Self.arbitrationOffset, Self.remoteReadOffset: return x2 ? nil : 0
    case Self.pprOffset: return processorPriority
    case Self.eoiOffset: return x2 ? nil : 0                    // write-only
    case Self.ldrOffset: return logicalID
    case Self.dfrOffset: return x2 ? nil : dfr
    case Self.svrOffset: return svr
    case 0x100...0x170 where offset & 0xF == 0: return Self.chunk(isr, (offset - Self.isrOffset) >> 4)
    case 0x180...0x1F0 where offset & 0xF == 0: return 0        // TMR: all edge
    case 0x200...0x270 where offset & 0xF == 0: return Self.chunk(irr, (offset - Self.irrOffset) >> 4)
    case Self.esrOffset: return esr
    case Self.cmciOffset: return lvt[0]
    case Self.icrLowOffset: return icrLow
    case Self.icrHighOffset: return x2 ? nil : icrHigh
    case 0x320...0x370 where offset & 0xF == 0: return lvt[(offset - 0x310) >> 4]
    case Self.timerInitialOffset: return timerCounting ? timerInitialCount : 0
    case Self.timerCurrentOffset: return timerCurrentCount(now: now)
    case Self.timerDivideOffset: return timerDivide
    default: return nil
    }
  }

  /// Writes the register at `offset` (16-byte aligned) with the checks both paths share.
  /// Writes to read-only or absent registers do nothing (the x2APIC path refuses them before).
  public mutating func writeRegister(_ offset: Int, _ value: UInt32, now: UInt64) -> LocalAPICWriteEffect {
    switch offset {
    case Self.tprOffset: tpr = value & 0xFF
    case Self.eoiOffset:
      if let vector = Self.highest(isr) { Self.clear(&isr, vector) }
    case Self.ldrOffset where mode == .xAPIC: ldr = value & 0xFF00_0000
    case Self.dfrOffset where mode == .xAPIC: dfr = value | 0x0FFF_FFFF
    case Self.svrOffset:
      svr = value & 0x3FF
      if !softwareEnabled {                            // software disable masks every LVT
        for index in 1..<7 { lvt[index] |= Self.lvtMasked }
      }
    case Self.esrOffset: esr = 0
    case Self.cmciOffset: lvt[0] = storedLVT(value & (Self.lvtBasic | Self.lvtDeliveryMode))
    case Self.icrLowOffset:
      icrLow = value & Self.icrWritable
      return .send(icrLow: icrLow, destination: destination(icrHigh: icrHigh))
    case Self.icrHighOffset where mode == .xAPIC: icrHigh = value & 0xFF00_0000
    case Self.lvtTimerOffset:
      let old = lvt[1]
      let new = storedLVT(value & (Self.lvtBasic | Self.timerModeMask))
      // Into or out of TSC-deadline mode: the count stops (Xen clears TMICT).
      if (old & Self.timerModeMask == Self.timerTSCDeadline) != (new & Self.timerModeMask == Self.timerTSCDeadline) {
        timerInitialCount = 0
        timerRunning = false
      } else if timerRunning && old & Self.timerModeMask == Self.timerPeriodic && new & Self.timerModeMask != Self.timerPeriodic {
        // Periodic → one-shot: the count runs out at the end of the current period.
        let elapsed = elapsedCounts(now: now) % UInt64(max(timerInitialCount, 1))
        timerStart = Self.signed(now) &- Int64(elapsed &* countNanoseconds)
      }
      lvt[1] = new
      return .timer
    case 0x330, 0x340: lvt[(offset - 0x310) >> 4] = storedLVT(value & (Self.lvtBasic | Self.lvtDeliveryMode))
    case 0x350, 0x360: lvt[(offset - 0x310) >> 4] = storedLVT(value & Self.lvtLINT)
    case Self.lvtErrorOffset: lvt[6] = storedLVT(value & Self.lvtBasic)
    case Self.timerInitialOffset:
      guard timerCounting else { return .none }        // TSC-deadline mode: TMICT is ignored
      timerInitialCount = value
      timerStart = Self.signed(now)
      timerRunning = value != 0
      return .timer
    case Self.timerDivideOffset:
      // A running count keeps the counts it has done (within this run: never more than the
      // initial count, so the rebased start stays within 2^43 ns); the rest go at the new rate.
      let initial = UInt64(max(timerInitialCount, 1))
      let counted = timerRunning ? elapsedCounts(now: now) : 0
      let done = timerMode == Self.timerPeriodic ? counted % initial : min(counted, initial)
      timerDivide = value & 0xB
      if timerRunning { timerStart = Self.signed(now) &- Int64(done &* countNanoseconds) }
      return .timer
    default: break
    }
    return .none
  }

  /// While software-disabled, every LVT written stays masked (Xen's vlapic_reg_write).
  func storedLVT(_ value: UInt32) -> UInt32 { softwareEnabled ? value : value | Self.lvtMasked }

  // MARK: The x2APIC MSR path

  /// RDMSR of 0x800–0x8FF: the register value, or nil for #GP (not in x2APIC mode, or not a
  /// readable x2APIC register: EOI, SELF IPI, DFR, ICR high and the reserved ones). The ICR is
  /// one 64-bit register.
  public func msrRead(_ msr: UInt32, now: UInt64) -> UInt64? {
    guard mode == .x2APIC, msr >= 0x800, msr <= 0x8FF else { return nil }
    let offset = Int(msr - 0x800) << 4
    guard offset != Self.eoiOffset, let low = register(offset, now: now) else { return nil }
    if offset == Self.icrLowOffset { return UInt64(icrHigh) << 32 | UInt64(low) }
    return UInt64(low)
  }

  /// WRMSR of 0x800–0x8FF, with x2APIC's checks as Xen's guest_wrmsr_x2apic: reserved bits
  /// set, read-only registers (ID, version, PPR, LDR, ISR/TMR/IRR, current count) and EOI or
  /// ESR written with anything but 0 are #GP (nil). SELF IPI (0x83F) becomes an ICR write to self.
  public mutating func msrWrite(_ msr: UInt32, _ value: UInt64, now: UInt64) -> LocalAPICWriteEffect? {
    guard mode == .x2APIC, msr >= 0x800, msr <= 0x8FF else { return nil }
    let offset = Int(msr - 0x800) << 4
    let low = UInt32(truncatingIfNeeded: value)
    let high = UInt32(truncatingIfNeeded: value >> 32)
    let fits: Bool
    switch offset {
    case Self.tprOffset: fits = value & ~0xFF == 0
    case Self.svrOffset: fits = value & ~0x3FF == 0
    case Self.lvtTimerOffset: fits = value & ~UInt64(Self.lvtBasic | Self.timerModeMask) == 0
    case 0x330, 0x340, Self.cmciOffset: fits = value & ~UInt64(Self.lvtBasic | Self.lvtDeliveryMode) == 0
    case 0x350, 0x360: fits = value & ~UInt64(Self.lvtLINT) == 0
    case Self.lvtErrorOffset: fits = value & ~UInt64(Self.lvtBasic) == 0
    case Self.timerInitialOffset: fits = high == 0
    case Self.timerDivideOffset: fits = value & ~0xB == 0
    case Self.icrLowOffset:
      guard low & ~Self.icrWritable == 0 else { return nil }
      icrHigh = high
      fits = true
    case Self.selfIPIOffset:
      guard value & ~0xFF == 0 else { return nil }
      return writeRegisterSelfIPI(vector: low)
    case Self.eoiOffset, Self.esrOffset: fits = value == 0
    default: return nil
    }
    guard fits else { return nil }
    return writeRegister(offset, low, now: now)
  }

  /// SELF IPI: an ICR write with the "self" shorthand, fixed, edge, the ICR keeping its value
  /// (Xen writes the ICR; the SDM does not say: the ICR is left alone here).
  mutating func writeRegisterSelfIPI(vector: UInt32) -> LocalAPICWriteEffect {
    .send(icrLow: (1 << 18) | (vector & 0xFF), destination: apicID)
  }

  // MARK: The xAPIC MMIO path

  /// A read of `size` bytes at `offset` in the APIC page, as Xen's vlapic_mmio_read: any
  /// access that fits inside one 32-bit register (offset & 0xF + size ≤ 4) reads those bytes
  /// of it; anything else (wider, straddling, past the divide register, no register) reads 0.
  /// Outside xAPIC mode the page is not the APIC: all ones.
  public func mmioRead(offset: UInt64, size: Int, now: UInt64) -> UInt64 {
    let ones: UInt64 = size >= 8 ? .max : (1 << UInt64(max(size, 0) * 8)) &- 1
    guard mode == .xAPIC else { return ones }
    let alignment = Int(offset & 0xF)
    guard size == 1 || size == 2 || size == 4, alignment + size <= 4, offset <= UInt64(Self.timerDivideOffset + 3) else { return 0 }
    let word = register(Int(offset) & ~0xF, now: now) ?? 0
    let bytes = UInt64(word) >> UInt64(alignment * 8)
    return size == 4 ? bytes : bytes & ((1 << UInt64(size * 8)) - 1)
  }

  /// A write of `size` bytes at `offset`, as Xen's vlapic_mmio_write: an access inside one
  /// register writes it, a 1- or 2-byte one merged into the register's current value; anything
  /// else is dropped, as is any write outside xAPIC mode.
  public mutating func mmioWrite(offset: UInt64, size: Int, value: UInt64, now: UInt64) -> LocalAPICWriteEffect {
    guard mode == .xAPIC else { return .none }
    let alignment = Int(offset & 0xF)
    guard size == 1 || size == 2 || size == 4, alignment + size <= 4, offset <= UInt64(Self.timerDivideOffset + 3) else { return .none }
    let aligned = Int(offset) & ~0xF
    var word = UInt32(truncatingIfNeeded: value)
    if size < 4 {
      let shift = UInt32(alignment * 8)
      let mask: UInt32 = (size == 1 ? 0xFF : 0xFFFF) << shift
      let current = register(aligned, now: now) ?? 0
      word = (current & ~mask) | ((UInt32(truncatingIfNeeded: value) << shift) & mask)
    }
    return writeRegister(aligned, word, now: now)
  }

  // MARK: The timer

  /// The divisor the divide configuration names: bits 0, 1, 3 → 2, 4, … 128, and 1 for 0b1011.
  public static func divisor(_ config: UInt32) -> UInt64 {
    let code = ((config & 3) | ((config & 8) >> 1)) + 1
    return 1 << UInt64(code & 7)
  }

  /// Nanoseconds per count at the current divisor (10 … 1280).
  public var countNanoseconds: UInt64 { Self.busCycleNanoseconds * Self.divisor(timerDivide) }

  public var timerMode: UInt32 { lvt[1] & Self.timerModeMask }

  /// One-shot or periodic: the modes the initial count drives.
  public var timerCounting: Bool { timerMode == Self.timerOneShot || timerMode == Self.timerPeriodic }

  /// The length of one run of the count in ns (initial × 10 × divisor < 2^43: never overflows).
  public var timerPeriodNanoseconds: UInt64 { UInt64(timerInitialCount) * countNanoseconds }

  static func signed(_ now: UInt64) -> Int64 { Int64(truncatingIfNeeded: min(now, UInt64(Int64.max))) }

  /// Counts done since the count started (0 before it started).
  func elapsedCounts(now: UInt64) -> UInt64 {
    let elapsed = Self.signed(now).subtractingReportingOverflow(timerStart)
    guard !elapsed.overflow, elapsed.partialValue > 0 else { return 0 }
    return UInt64(elapsed.partialValue) / countNanoseconds
  }

  /// The current count: computed from the time since the count started, never stored. A
  /// one-shot count stays at 0 once it ran out; a periodic one starts over.
  public func timerCurrentCount(now: UInt64) -> UInt32 {
    guard timerRunning, timerCounting, timerInitialCount != 0 else { return 0 }
    var done = elapsedCounts(now: now)
    if timerMode == Self.timerPeriodic { done %= UInt64(timerInitialCount) }
    return done < UInt64(timerInitialCount) ? timerInitialCount - UInt32(done) : 0
  }

  /// When the timer next fires and then how often: the first deadline (system time) and the
  /// period (0: one-shot), or nil when it does not run (stopped, TSC-deadline mode, a one-shot
  /// count that already ran out). A periodic timer's period is at least `minimumTimerPeriod`.
  public func timerSchedule(now: UInt64) -> (deadline: UInt64, period: UInt64)? {
    guard timerRunning, timerCounting, timerInitialCount != 0 else { return nil }
    let period = timerPeriodNanoseconds
    let elapsedNanoseconds = elapsedCounts(now: now) &* countNanoseconds
    if timerMode == Self.timerPeriodic {
      let remaining = period - elapsedNanoseconds % period
      return (now.addingSaturating(remaining), max(period, Self.minimumTimerPeriod))
    }
    guard elapsedNanoseconds < period else { return nil }
    return (now.addingSaturating(period - elapsedNanoseconds), 0)
  }

  /// The timer fired: the vector to request, if the LVT lets it through (not masked, APIC
  /// enabled in hardware and software).
  public var timerVector: Int? {
    let entry = lvt[1]
    guard mode != .disabled, softwareEnabled, entry & Self.lvtMasked == 0 else { return nil }
    return Int(entry & 0xFF)
  }
}
