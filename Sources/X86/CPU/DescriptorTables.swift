#if os(none)
import Support
import Hypervisor

/// The GDT, TSS and IDT. Each pcpu gets its own GDT and TSS (the TSS holds that pcpu's
/// interrupt stacks); all pcpus share one IDT.
public enum DescriptorTables {
  /// Interrupt stack table slots (TSS.IST1..3): faults that may hit a broken stack get a fresh one.
  static let doubleFaultIST: UInt8 = 1
  static let nmiIST: UInt8 = 2
  static let machineCheckIST: UInt8 = 3
  static let istStackBytes: UInt64 = 16 << 10

  /// The shared IDT, built once on the boot pcpu before any other pcpu starts (each loads it).
  nonisolated(unsafe) static var idtAddress: UInt64 = 0

  /// Builds the shared IDT: every vector points at its entry.S stub; interrupt gates (IF cleared).
  public static func buildIDT() {
    guard let page = Frames.allocate(order: 0) else { fatalError("no frame for the IDT") }
    PhysicalMemory.zero(page, count: 4096)
    for vector in 0..<256 {
      let handler = hv_isr_stub(UInt32(vector))
      var ist: UInt64 = 0
      switch vector {
      case 2: ist = UInt64(nmiIST)
      case 8: ist = UInt64(doubleFaultIST)
      case 18: ist = UInt64(machineCheckIST)
      default: ist = 0
      }
      let low = (handler & 0xFFFF)
        | (UInt64(GDT_CODE64) << 16)
        | (ist << 32)
        | (UInt64(0x8E) << 40)                    // present, DPL 0, 64-bit interrupt gate
        | ((handler >> 16) & 0xFFFF) << 48
      let high = handler >> 32
      PhysicalMemory.write64(page + UInt64(vector) * 16, low)
      PhysicalMemory.write64(page + UInt64(vector) * 16 + 8, high)
    }
    unsafe idtAddress = page
  }

  public static func loadIDT() { unsafe hv_lidt(idtAddress, 256 * 16 - 1) }

  /// Builds and loads this pcpu's GDT and TSS (with its three IST stacks).
  public static func loadGDTAndTSS() {
    // One page: GDT at 0 (6 descriptors), TSS at 256 (104 bytes).
    guard let page = Frames.allocate(order: 0),
          let istStacks = Frames.allocate(order: Frames.order(forBytes: 3 * istStackBytes))
    else { fatalError("no frames for the GDT/TSS") }
    PhysicalMemory.zero(page, count: 4096)
    let tss = page + 256
    // TSS: RSP0..2 unused (no ring changes), IST1..3 at offset 36 + 8*(n-1), I/O map base past the end.
    for slot in 0..<3 {
      let top = istStacks + UInt64(slot + 1) * istStackBytes
      writeUnaligned64(tss + 36 + UInt64(slot) * 8, top)
    }
    writeUnaligned16(tss + 102, 104)

    PhysicalMemory.write64(page + 0x00, 0)
    PhysicalMemory.write64(page + UInt64(GDT_CODE64), UInt64(GDT_CODE64_DESCRIPTOR))
    PhysicalMemory.write64(page + UInt64(GDT_DATA), UInt64(GDT_DATA_DESCRIPTOR))
    PhysicalMemory.write64(page + UInt64(GDT_CODE32), UInt64(GDT_CODE32_DESCRIPTOR))
    // 64-bit TSS descriptor (16 bytes): limit 103, type 0x9 (available TSS), present.
    let limit: UInt64 = 103
    let low = (limit & 0xFFFF) | ((tss & 0xFF_FFFF) << 16) | (UInt64(0x89) << 40)
      | ((limit >> 16) & 0xF) << 48 | ((tss >> 24) & 0xFF) << 56
    PhysicalMemory.write64(page + UInt64(GDT_TSS), low)
    PhysicalMemory.write64(page + UInt64(GDT_TSS) + 8, tss >> 32)
    hv_lgdt(page, UInt16(GDT_TSS + 16 - 1))
    hv_load_segments(UInt16(GDT_TSS))
  }

  private static func writeUnaligned64(_ address: UInt64, _ value: UInt64) {
    var bytes: [UInt8] = []
    for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * i))) }
    PhysicalMemory.write(bytes, to: address)
  }

  private static func writeUnaligned16(_ address: UInt64, _ value: UInt16) {
    PhysicalMemory.write([UInt8(value & 0xFF), UInt8(value >> 8)], to: address)
  }
}
#endif
