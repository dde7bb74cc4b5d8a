#if os(none)
import GuestSupport

/// The vcpu's local APIC in either mode (guest-xapic): registers by their xAPIC offset, reached
/// through the MMIO page at 0xFEE00000 in xAPIC mode and through MSR 0x800 + offset >> 4 in
/// x2APIC mode. Each vcpu keeps which mode it put its APIC in; the interrupt handler counts the
/// vector in service per vcpu and writes EOI.
public enum LocalAPIC {
  public static let apicBaseMSR: UInt32 = 0x1B
  public static let defaultBase: UInt64 = 0xFEE0_0000
  public static let enable: UInt64 = 1 << 11
  public static let extended: UInt64 = 1 << 10
  public static let maxVCPUs = 4

  /// Per vcpu: 1 while its APIC is in x2APIC mode (0 at reset: vcpus start in xAPIC mode).
  nonisolated(unsafe) static let x2APICMode: UnsafeMutablePointer<UInt64> = {
    let p = UnsafeMutablePointer<UInt64>.allocate(capacity: maxVCPUs)
    p.initialize(repeating: 0, count: maxVCPUs)
    return p
  }()
  /// Per vcpu and vector: how many interrupts arrived.
  nonisolated(unsafe) static let counts: UnsafeMutablePointer<UInt64> = {
    let p = UnsafeMutablePointer<UInt64>.allocate(capacity: maxVCPUs * 256)
    p.initialize(repeating: 0, count: maxVCPUs * 256)
    return p
  }()

  static var vcpu: Int { min(Int(CurrentVCPU.id), maxVCPUs - 1) }

  public static var isX2APIC: Bool { gs_atomic_load(x2APICMode + vcpu) != 0 }

  /// Records the mode this vcpu's APIC is in now (after a WRMSR of APIC_BASE).
  public static func setMode(x2APIC: Bool) { gs_atomic_store(x2APICMode + vcpu, x2APIC ? 1 : 0) }

  public static func read(_ offset: Int) -> UInt32 {
    if isX2APIC { return UInt32(truncatingIfNeeded: gs_rdmsr(0x800 + UInt32(offset >> 4))) }
    return gs_mmio_read32(defaultBase + UInt64(offset))
  }

  public static func write(_ offset: Int, _ value: UInt32) {
    if isX2APIC { gs_wrmsr(0x800 + UInt32(offset >> 4), UInt64(value)); return }
    gs_mmio_write32(defaultBase + UInt64(offset), value)
  }

  /// How many interrupts with `vector` arrived on `vcpu`.
  public static func count(_ vector: Int, vcpu: Int) -> UInt64 {
    gs_atomic_load(counts + (vcpu * 256 + (vector & 0xFF)))
  }

  /// The highest vector in service (ISR at 0x100 + 0x10 * i), or nil.
  static func inService() -> Int? {
    for index in stride(from: 7, through: 0, by: -1) {
      let word = read(0x100 + 0x10 * index)
      if word != 0 { return index * 32 + 31 - word.leadingZeroBitCount }
    }
    return nil
  }

  /// gs_lapic_entry's handler: count the vector in service, EOI.
  static func interrupt() {
    if let vector = inService() { _ = gs_atomic_add(counts + (vcpu * 256 + vector), 1) }
    write(0xB0, 0)
  }
}

@c(gs_lapic_interrupt)
public func lapicInterrupt() {
  LocalAPIC.interrupt()
}
#endif
