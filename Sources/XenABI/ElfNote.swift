// ELF notes a Xen guest kernel carries, from xen/include/public/elfnote.h.
//
// Each is an ELF note with name "Xen" and one of these types. A PVH loader needs only
// PHYS32_ENTRY: the 32-bit physical entry point.

extension XenABI {
  /// `XEN_ELFNOTE_*`: note types under the name "Xen".
  public enum ElfNote: UInt32, Sendable, CaseIterable {
    case info = 0
    case entry = 1
    case hypercallPage = 2
    case virtBase = 3
    case paddrOffset = 4
    case xenVersion = 5
    case guestOS = 6
    case guestVersion = 7
    case loader = 8
    case paeMode = 9
    case features = 10
    case bsdSymtab = 11
    case hvStartLow = 12
    case l1MFNValid = 13
    case suspendCancel = 14
    case initP2M = 15
    case modStartPFN = 16
    case supportedFeatures = 17
    /// The PVH entry point: a 4- or 8-byte physical address, entered in 32-bit protected mode.
    case phys32Entry = 18
    /// Where a relocatable PVH kernel may be placed (newer kernels only).
    case phys32Reloc = 19

    /// The note name, without its terminating NUL.
    public static let name: [UInt8] = [0x58, 0x65, 0x6E]  // "Xen"
  }
}
