#if os(none)
import Hypervisor

/// What a guest sees when it executes CPUID: the host's answers, filtered to what Swiftvisor
/// really virtualises, plus Xen's leaves at 0x40000000 so Xen guests recognise their hypervisor.
///
/// Hidden on purpose: MONITOR/MWAIT (idle must use HLT, which we intercept), XSAVE/AVX (guest
/// XCR0 is not switched yet), PCID, TSC-deadline (the virtual APIC timer has one-shot and periodic modes only), SVM (no nested
/// virtualisation), PMU, SME/SEV (a raw MSR read on an unsupported feature kills early Linux), LA57.
public enum CPUIDPolicy {
  /// Xen 4.17 as far as guests can tell: the ABI version Swiftvisor implements.
  public static let xenMajor: UInt32 = 4
  public static let xenMinor: UInt32 = 17

  public static func answer(leaf: UInt32, subleaf: UInt32, vcpu: VCPU) -> CPU.CPUIDResult {
    let zero = CPU.CPUIDResult(eax: 0, ebx: 0, ecx: 0, edx: 0)
    switch leaf {
    case 0:
      let host = CPU.cpuid(0)
      // "AuthenticAMD": Linux picks vmmcall over vmcall from the vendor.
      return CPU.CPUIDResult(eax: min(host.eax, 0xD), ebx: 0x6874_7541, ecx: 0x444D_4163, edx: 0x6974_6E65)
    case 1:
      var r = CPU.cpuid(1)
      let hiddenECX: UInt32 = (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 15)
        | (1 << 17) | (1 << 18) | (1 << 24) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 29)
      // x2APIC (bit 21): the virtual local APIC has both modes (docs/vlapic.md).
      r.ecx = (r.ecx & ~hiddenECX) | (1 << 21) | (1 << 31)          // hypervisor present
      r.edx &= ~((1 << 22) | (1 << 29) | (1 << 31))                  // ACPI thermal, TM, PBE
      // APIC (bit 9) follows APIC_BASE.EN, as on hardware and in Xen: a guest that disabled
      // its APIC no longer sees one.
      r.edx |= 1 << 9
      if VirtualLAPIC.apicBase(vcpu) & LocalAPICRegisters.baseEnable == 0 { r.edx &= ~(1 << 9) }
      let logical = unsafe UInt32(min(vcpu.domain.vcpus.count, 255))
      // Initial APIC ID (bits 31:24): the vcpu id, the APIC ID in either mode (the MADT's).
      r.ebx = (r.ebx & 0xFFFF) | (logical << 16) | (UInt32(vcpu.id & 0xFF) << 24)
      return r
    case 2, 4:
      return CPU.cpuid(leaf, subleaf)
    case 7 where subleaf == 0:
      let r = CPU.cpuid(7, 0)
      let allowedEBX: UInt32 = (1 << 0) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 20)
      return CPU.CPUIDResult(eax: 0, ebx: r.ebx & allowedEBX, ecx: 0, edx: 0)
    case 0x4000_0000:
      return CPU.CPUIDResult(eax: 0x4000_0005, ebx: 0x566E_6558, ecx: 0x6558_4D4D, edx: 0x4D4D_566E)
    case 0x4000_0001:
      return CPU.CPUIDResult(eax: (xenMajor << 16) | xenMinor, ebx: 0, ecx: 0, edx: 0)
    case 0x4000_0002:
      return CPU.CPUIDResult(eax: 1, ebx: 0x4000_0000, ecx: 0, edx: 0)   // 1 hypercall page, its MSR
    case 0x4000_0004:
      // VCPU_ID_PRESENT (bit 3, id in EBX) and DOMID_PRESENT (bit 4, id in ECX).
      return unsafe CPU.CPUIDResult(eax: 0x18, ebx: UInt32(vcpu.id), ecx: UInt32(vcpu.domain.id), edx: 0)
    case 0x8000_0000:
      let host = CPU.cpuid(0x8000_0000)
      return CPU.CPUIDResult(eax: min(host.eax, 0x8000_0008), ebx: host.ebx, ecx: host.ecx, edx: host.edx)
    case 0x8000_0001:
      var r = CPU.cpuid(0x8000_0001)
      r.ecx &= ~((1 << 2) | (1 << 12) | (1 << 13) | (1 << 15) | (1 << 23))   // SVM, SKINIT, WDT, LWP, PERFCTR
      r.edx &= ~(1 << 27)                                                     // RDTSCP
      return r
    case 0x8000_0002...0x8000_0006, 0x8000_0008:
      return CPU.cpuid(leaf, subleaf)
    default:
      return zero
    }
  }
}
#endif
