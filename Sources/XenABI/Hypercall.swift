// Hypercall numbers, from xen/include/public/xen.h.
//
// On x86_64 a guest puts the number in RAX and up to six arguments in RDI, RSI, RDX, R10, R8 and
// R9, then executes VMMCALL (AMD) or VMCALL (Intel), directly or through the hypercall page. The
// result comes back in RAX: zero or a positive value on success, a negated `Errno` on failure.
// A number this enum does not name must be answered with -ENOSYS: guests probe optional
// interfaces that way.

extension XenABI {
  /// `__HYPERVISOR_*`: the hypercall number a guest passes in RAX.
  public enum Hypercall: UInt64, Sendable, CaseIterable {
    case setTrapTable = 0
    case mmuUpdate = 1
    case setGDT = 2
    case stackSwitch = 3
    case setCallbacks = 4
    case fpuTaskswitch = 5
    /// Superseded by `schedOp` (compat since 0x00030101).
    case schedOpCompat = 6
    case platformOp = 7
    case setDebugreg = 8
    case getDebugreg = 9
    case updateDescriptor = 10
    // 11 is unused.
    case memoryOp = 12
    case multicall = 13
    case updateVAMapping = 14
    case setTimerOp = 15
    /// Superseded by `eventChannelOp` (compat since 0x00030202).
    case eventChannelOpCompat = 16
    case xenVersion = 17
    case consoleIO = 18
    /// Superseded by `physdevOp` (compat since 0x00030202).
    case physdevOpCompat = 19
    case grantTableOp = 20
    case vmAssist = 21
    case updateVAMappingOtherdomain = 22
    /// x86 PV only.
    case iret = 23
    case vcpuOp = 24
    /// x86_64 PV only.
    case setSegmentBase = 25
    case mmuextOp = 26
    case xsmOp = 27
    case nmiOp = 28
    case schedOp = 29
    case callbackOp = 30
    case xenoprofOp = 31
    case eventChannelOp = 32
    case physdevOp = 33
    case hvmOp = 34
    case sysctl = 35
    case domctl = 36
    case kexecOp = 37
    case tmemOp = 38
    case argoOp = 39
    case xenpmuOp = 40
    case dmOp = 41
    case hypfsOp = 42
    // 43...47 are unassigned.
    /// `__HYPERVISOR_arch_0`; on x86 this is `__HYPERVISOR_mca`.
    case arch0 = 48
    /// `__HYPERVISOR_arch_1`; on x86 this is `__HYPERVISOR_paging_domctl_cont`.
    case arch1 = 49
    case arch2 = 50
    case arch3 = 51
    case arch4 = 52
    case arch5 = 53
    case arch6 = 54
    case arch7 = 55
  }

  /// The hypercall page: the guest asks for it by writing a page-aligned guest-physical address
  /// to `XenCPUID.hypercallPageMSR`; the hypervisor fills it with one stub per hypercall.
  public enum HypercallPage {
    /// Bytes per stub: hypercall `n` is called at `page + n * stubSize`.
    public static let stubSize = 32
    /// Stubs in one 4 KiB page.
    public static let stubCount = 128
  }
}
