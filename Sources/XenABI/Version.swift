// HYPERVISOR_xen_version, from xen/include/public/version.h and features.h.
//
// xen_version(cmd, arg): `version` returns major << 16 | minor in RAX; every other command
// fills the buffer at the guest-virtual `arg` and returns 0.

extension XenABI {
  /// `XENVER_*`: the command in the first argument of xen_version.
  public enum VersionCommand: UInt32, Sendable, CaseIterable {
    /// arg unused; returns major << 16 | minor.
    case version = 0
    /// arg: `xen_extraversion_t` (16 bytes).
    case extraversion = 1
    /// arg: `xen_compile_info_t`.
    case compileInfo = 2
    /// arg: `xen_capabilities_info_t`.
    case capabilities = 3
    /// arg: `xen_changeset_info_t`.
    case changeset = 4
    /// arg: `xen_platform_parameters_t`.
    case platformParameters = 5
    /// arg: `xen_feature_info_t`; in: submap_idx, out: submap.
    case getFeatures = 6
    /// arg unused; returns the page size.
    case pagesize = 7
    /// arg: `xen_domain_handle_t` (the domain's 16-byte UUID).
    case guestHandle = 8
    /// arg: `xen_commandline_t` (privileged).
    case commandline = 9
    /// arg: `xen_build_id_t` (privileged).
    case buildID = 10
  }


  /// `XENFEAT_*`: bit numbers in the feature submaps returned by XENVER_get_features.
  public enum Feature: UInt32, Sendable, CaseIterable {
    case writablePageTables = 0
    case writableDescriptorTables = 1
    /// The hypervisor does guest-physical to machine translation (true for PVH and HVM).
    case autoTranslatedPhysmap = 2
    case supervisorModeKernel = 3
    case paePgdirAbove4GB = 4
    case mmuPTUpdatePreserveAD = 5
    case highmemAssist = 6
    case gnttabMapAvailBits = 7
    /// HVM_PARAM_CALLBACK_IRQ may name an interrupt vector (type 2).
    case hvmCallbackVector = 8
    case hvmSafePVClock = 9
    case hvmPIRQs = 10
    /// The domain is the initial (control) domain.
    case dom0 = 11
    case grantMapIdentity = 12
    case memoryOpVnodeSupported = 13
    case armSMCCCSupported = 14
    /// x86 PVH: the ACPI RSDP may be anywhere, not only below 1 MiB.
    case linuxRSDPUnrestricted = 15
    case notDirectMapped = 16
    case directMapped = 17
    case runstatePhysArea = 18
    case vcpuTimePhysArea = 19
    case dmMSIXAllWrites = 20

    /// XENFEAT_NR_SUBMAPS: how many 32-bit submaps exist.
    public static let submapCount: UInt32 = 1

    /// The submap this feature lives in and its bit there.
    public var submapIndex: UInt32 { rawValue / 32 }
    public var submapBit: UInt32 { 1 << (rawValue % 32) }
  }
}
