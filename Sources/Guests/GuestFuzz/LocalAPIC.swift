#if os(none)
import GuestKit
import GuestSupport

/// Values for the local APIC's registers: the edges of their fields and all ones.
let lapicValues: [UInt64] = [
  0, 0xF, 0x10, 0xFF, 0x100, 0x1FF, 0x3FF, 0x400, 0x1000, 0x1_0000, 0x2_0000, 0x4_0000, 0x6_0000,
  0xFFFF_FFFF, 0x1_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
]

/// APIC_BASE values: every mode (disabled, xAPIC, x2APIC, EXTD without EN), the page moved,
/// reserved bits, the BSP bit, beyond the address width.
let apicBaseValues: [UInt64] = [
  0xFEE0_0000, 0xFEE0_0800, 0xFEE0_0C00, 0xFEE0_0400, 0xFED0_0800, 0xFED0_0C00, 0xFEE0_0801,
  0xFEE0_0A00, 0xFEE0_0900, 0xFEE0_0D00, 0x0010_0000_FEE0_0C00, 0xFFFF_FFFF_FFFF_FFFF, 0,
]

extension Fuzzer {
  /// One poke at the vcpu's local APIC (docs/vlapic.md): a WRMSR or RDMSR anywhere in the
  /// x2APIC range with an edge or random value, or an APIC_BASE write of any mode, then back to
  /// x2APIC through disabled (the only way from some of them). Not the ICR or SELF IPI: a
  /// STARTUP could start this guest's vcpus at a random page, and a fixed IPI would need a
  /// gate. The LVT timer is always written masked (no gate for its vector either); its count and
  /// divide are fuzzed, so the hypervisor's timer runs with any period. TPR back to 0 after.
  mutating func localAPIC() {
    gs_catch_exceptions(generalProtection, 2)
    if random.percent(20) {
      let value = random.percent(80) ? random.pick(apicBaseValues) : u64()
      trace("APIC_BASE <- \(hex(value))")
      gs_wrmsr(LocalAPIC.apicBaseMSR, value)
      gs_wrmsr(LocalAPIC.apicBaseMSR, LocalAPIC.defaultBase)
      gs_wrmsr(LocalAPIC.apicBaseMSR, LocalAPIC.defaultBase | LocalAPIC.enable)
      gs_wrmsr(LocalAPIC.apicBaseMSR, LocalAPIC.defaultBase | LocalAPIC.enable | LocalAPIC.extended)
    } else {
      let msr = 0x800 + UInt32(random.below(0x100))
      if random.percent(40) {
        trace("RDMSR \(hex(UInt64(msr)))")
        _ = gs_rdmsr(msr)
      } else if msr != 0x830 && msr != 0x83F {
        var value = random.percent(70) ? random.pick(lapicValues) : u64()
        if msr == 0x832 { value |= 1 << 16 }
        trace("WRMSR \(hex(UInt64(msr))) <- \(hex(value))")
        gs_wrmsr(msr, value)
      }
    }
    gs_wrmsr(0x808, 0)
    gs_catch_exceptions(0, 0)
  }
}
#endif
