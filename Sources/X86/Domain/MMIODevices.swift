#if os(none)
import Hypervisor

/// Who answers a guest's access to a guest-physical address that is not its RAM: the one place
/// the emulated MMIO accesses of `MMIOEmulation` go through.
///
/// A PVH domain without a device model has no devices there: every read gives all ones and every
/// write is dropped, as Xen's null handler (xen/arch/x86/hvm/emulate.c) answers an access that
/// no ioreq server and no internal handler claims. That includes the I/O APIC (0xFEC00000) and the
/// HPET (0xFED00000), which a PVH domU does not have, any gfn the guest never populated or gave
/// back, and the space above its RAM.
///
/// The one device that will claim a page is the virtual local APIC's xAPIC page (0xFEE00000 while
/// the vcpu's APIC is in xAPIC mode): `localAPICPage`, `localAPICRead` and `localAPICWrite` are its
/// hook. Each access is at most 8 bytes and lies within one 4 KiB page (`MMIOEmulation` splits
/// one that crosses a page); it is made with no lock held, on the pcpu running `vcpu`.
enum MMIODevices {
  /// What claims a guest-physical address.
  enum Claim: Equatable {
    /// Nothing: reads are all ones, writes are dropped.
    case absent
    /// The vcpu's virtual local APIC in xAPIC mode; `offset` is from the page's start (0-4095).
    case localAPIC(offset: UInt64)
  }

  static func claim(_ vcpu: VCPU, _ gpa: UInt64) -> Claim {
    if let page = localAPICPage(vcpu), gpa & ~0xFFF == page { return .localAPIC(offset: gpa & 0xFFF) }
    return .absent
  }

  /// A read of `size` bytes (1, 2, 4 or 8; fewer for the part of an access in one page) at
  /// `gpa`: the value in the low `size` bytes, the rest zero.
  static func read(_ vcpu: VCPU, _ gpa: UInt64, size: Int) -> UInt64 {
    switch claim(vcpu, gpa) {
    case .absent: return InstructionEmulator.allOnes(size)
    case .localAPIC(let offset): return localAPICRead(vcpu, offset: offset, size: size) & InstructionEmulator.allOnes(size)
    }
  }

  /// A write of the low `size` bytes of `value` at `gpa`.
  static func write(_ vcpu: VCPU, _ gpa: UInt64, size: Int, value: UInt64) {
    switch claim(vcpu, gpa) {
    case .absent: return
    case .localAPIC(let offset): localAPICWrite(vcpu, offset: offset, size: size, value: value & InstructionEmulator.allOnes(size))
    }
  }

  // ---- The hook for the virtual local APIC's xAPIC mode ----
  // `localAPICPage` answers the APIC base (APIC_BASE[51:12], always 0xFEE00000: a moved page is
  // refused) while the vcpu's APIC is enabled and in xAPIC mode, and the two accesses go to
  // `VirtualLAPIC` (docs/vlapic.md). In x2APIC mode or disabled the page is absent.

  /// The guest-physical page of `vcpu`'s xAPIC registers, nil while they are not in memory.
  static func localAPICPage(_ vcpu: VCPU) -> UInt64? { VirtualLAPIC.xAPICPage(vcpu) }

  static func localAPICRead(_ vcpu: VCPU, offset: UInt64, size: Int) -> UInt64 {
    VirtualLAPIC.mmioRead(vcpu, offset: offset, size: size)
  }

  static func localAPICWrite(_ vcpu: VCPU, offset: UInt64, size: Int, value: UInt64) {
    VirtualLAPIC.mmioWrite(vcpu, offset: offset, size: size, value: value)
  }
}
#endif
