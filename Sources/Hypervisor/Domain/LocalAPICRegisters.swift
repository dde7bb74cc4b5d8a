/// A vcpu's virtual local APIC registers, kept as data with the vcpu (like its VMCB) so its
/// whole state stays in the vcpu structure. The x86 layer implements the device on top
/// (X86/APIC/VirtualLAPIC.swift, docs/vlapic.md). Guarded by `VCPU.lapicLock`: other pcpus set
/// IRR bits when they send this vcpu an IPI.
public struct LocalAPICRegisters: Sendable {
  public var tpr: UInt32 = 0
  /// Spurious-interrupt vector register; bit 8 is "APIC software enabled". Reset: 0xFF.
  public var svr: UInt32 = 0xFF
  public var esr: UInt32 = 0
  public var icr: UInt64 = 0
  /// LVT CMCI, timer, thermal, performance, LINT0, LINT1, error: all masked at reset.
  /// Inline arrays, not Swift arrays: the registers are read on every exit, and a struct of
  /// heap arrays costs a reference count on each copy.
  public var lvt = InlineArray<7, UInt32>(repeating: 1 << 16)
  public var timerInitialCount: UInt32 = 0
  public var timerDivide: UInt32 = 0
  /// 256-bit request and in-service registers, as four 64-bit words.
  public var irr = InlineArray<4, UInt64>(repeating: 0)
  public var isr = InlineArray<4, UInt64>(repeating: 0)
  /// An INIT was received: the next STARTUP starts the vcpu (the real-mode AP start).
  public var waitingForStartup = false

  public init() {}

  public static func highest(_ words: InlineArray<4, UInt64>) -> Int? {
    for word in stride(from: 3, through: 0, by: -1) where words[word] != 0 {
      return word * 64 + 63 - words[word].leadingZeroBitCount
    }
    return nil
  }

  public static func set(_ words: inout InlineArray<4, UInt64>, _ vector: Int) { words[vector / 64] |= 1 << UInt64(vector % 64) }
  public static func clear(_ words: inout InlineArray<4, UInt64>, _ vector: Int) { words[vector / 64] &= ~(1 << UInt64(vector % 64)) }

  /// The processor priority: the higher of the task priority and the class of the highest
  /// vector in service.
  public var processorPriority: UInt32 {
    let inService = Self.highest(isr).map { UInt32($0) & 0xF0 } ?? 0
    return max(tpr & 0xF0, inService)
  }

  /// The highest requested vector whose priority class beats the processor priority: the one
  /// to deliver when the vcpu can take an interrupt.
  public var deliverable: Int? {
    guard let vector = Self.highest(irr), UInt32(vector) & 0xF0 > processorPriority else { return nil }
    return vector
  }
}
