// The hypervisor CPUID leaves and MSR, from xen/include/public/arch-x86/cpuid.h.
//
// A guest finds Xen by scanning CPUID 0x40000000, 0x40000100, ... for the signature
// "XenVMMXenVMM". Linux's xen_cpuid_base() requires (max leaf - base) >= 2.

extension XenABI {
  /// The Xen CPUID leaves and the hypercall-page MSR.
  public enum XenCPUID {
    /// XEN_CPUID_FIRST_LEAF: the first leaf (no Viridian leaves in front of it).
    public static let base: UInt32 = 0x4000_0000

    /// Leaf offsets from `base`.
    public enum Leaf {
      /// EAX = highest Xen leaf; EBX, ECX, EDX = the signature.
      public static let signature: UInt32 = 0
      /// EAX = major << 16 | minor.
      public static let version: UInt32 = 1
      /// EAX = hypercall pages, EBX = the MSR to write their address to, ECX = features.
      public static let hypercallPage: UInt32 = 2
      /// Time: subleaf 0 flags/mode/kHz, 1 TSC offset/scale, 2 host kHz.
      public static let time: UInt32 = 3
      /// HVM features (`HVMFeature` flags in EAX; vcpu id in EBX, domid in ECX).
      public static let hvmFeatures: UInt32 = 4
      /// PV features.
      public static let pvFeatures: UInt32 = 5
    }

    /// "XenV" as EBX returns it (little-endian).
    public static let signatureEBX: UInt32 = 0x566e_6558
    /// "MMXe".
    public static let signatureECX: UInt32 = 0x6558_4d4d
    /// "nVMM".
    public static let signatureEDX: UInt32 = 0x4d4d_566e

    /// The MSR a guest writes a page-aligned guest-physical address to, to get a hypercall page
    /// (leaf 2's EBX).
    public static let hypercallPageMSR: UInt32 = 0x4000_0000

    /// Leaf 3, subleaf 0, EAX flags.
    public enum TimeFlag {
      public static let tscEmulated: UInt32 = 1 << 0
      public static let tscStable: UInt32 = 1 << 1
      public static let rdtscpAvailable: UInt32 = 1 << 2
    }

    /// Leaf 4 EAX flags (XEN_HVM_CPUID_*).
    public enum HVMFeature {
      public static let apicAccessVirt: UInt32 = 1 << 0
      public static let x2apicVirt: UInt32 = 1 << 1
      public static let iommuMappings: UInt32 = 1 << 2
      /// EBX holds the vcpu id.
      public static let vcpuIDPresent: UInt32 = 1 << 3
      /// ECX holds the domain id.
      public static let domIDPresent: UInt32 = 1 << 4
      public static let extendedDestinationID: UInt32 = 1 << 5
      /// HVMOP_set_evtchn_upcall_vector is available.
      public static let upcallVector: UInt32 = 1 << 6
    }
  }
}
