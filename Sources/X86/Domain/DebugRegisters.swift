#if os(none)
import Hypervisor
import Support

/// DR0-DR3 follow their vcpu. The VMCB holds a vcpu's DR6 and DR7, but the four address
/// registers are the pcpu's: without this a vcpu would find the addresses the last vcpu on its
/// pcpu left there (another domain's, perhaps) and lose its own when it moved. Xen intercepts
/// debug register accesses until a vcpu's first and switches them lazily from then on; here they
/// are switched on every departure and arrival, with no intercept: four reads when a vcpu leaves
/// its pcpu, and a write only for a register whose value the arriving vcpu does not share (none,
/// when no guest uses them).
enum DebugRegisters {
  /// The vcpu leaves its pcpu: keep what it left in DR0-DR3.
  @inline(__always)
  static func save(_ vcpu: VCPU) {
    vcpu.debugAddresses = (hv_read_dr0(), hv_read_dr1(), hv_read_dr2(), hv_read_dr3())
  }

  /// The vcpu arrives on a pcpu: its own DR0-DR3, each written only when it differs.
  @inline(__always)
  static func load(_ vcpu: VCPU) {
    let (a, b, c, d) = vcpu.debugAddresses
    if hv_read_dr0() != a { hv_write_dr0(canonical(a)) }
    if hv_read_dr1() != b { hv_write_dr1(canonical(b)) }
    if hv_read_dr2() != c { hv_write_dr2(canonical(c)) }
    if hv_read_dr3() != d { hv_write_dr3(canonical(d)) }
  }

  /// A value a guest left in a debug register is one the CPU accepted, so canonical; an
  /// emulator that let a non-canonical one through must not make the hypervisor's own MOV to
  /// DRn fault (#GP), so such a value becomes 0.
  @inline(__always)
  static func canonical(_ address: UInt64) -> UInt64 {
    let top = address >> 47
    return top == 0 || top == 0x1FFFF ? address : 0
  }
}
#endif
