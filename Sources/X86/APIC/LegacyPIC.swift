#if os(none)
import Support

/// The two 8259 interrupt controllers of the PC. The firmware leaves them delivering IRQ 0-15 on
/// vectors 8-15 and 0x70-0x77, which overlap CPU exceptions: an early timer tick would look like a
/// double fault. Swiftvisor uses the local APIC only, so the PICs are moved to vectors 0x30-0x3F
/// (harmless if one ever fires: it is reported as unexpected) and every line is masked.
public enum LegacyPIC {
  public static let vectorBase: UInt8 = 0x30

  public static func remapAndMask() {
    hv_outb(0x20, 0x11); hv_outb(0xA0, 0x11)                   // ICW1: init, ICW4 follows
    hv_outb(0x21, vectorBase); hv_outb(0xA1, vectorBase + 8)   // ICW2: vector offsets
    hv_outb(0x21, 0x04); hv_outb(0xA1, 0x02)                   // ICW3: cascade on IRQ 2
    hv_outb(0x21, 0x01); hv_outb(0xA1, 0x01)                   // ICW4: 8086 mode
    hv_outb(0x21, 0xFF); hv_outb(0xA1, 0xFF)                   // mask everything
  }
}
#endif
