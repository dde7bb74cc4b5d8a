#if os(none)
import GuestSupport

/// Which vcpu the code is running on, for code that runs on several (the event upcall looks up
/// its own vcpu_info with it). Each vcpu records its id once, in its GS base (an MSR whose value
/// lives in the VMCB, so the hypervisor keeps it per vcpu; nothing else in a guest uses GS).
public enum CurrentVCPU {
  static let gsBase: UInt32 = 0xC000_0101

  /// Called once on each vcpu before it needs `id` (vcpu 0: `Events.setUp` does it).
  public static func record(_ id: UInt32) {
    gs_wrmsr(gsBase, UInt64(id))
  }

  /// The id recorded on this vcpu (0 if none was).
  public static var id: UInt32 {
    UInt32(truncatingIfNeeded: gs_rdmsr(gsBase))
  }
}
#endif
