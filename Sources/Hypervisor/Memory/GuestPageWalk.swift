/// The x86 paging mode a guest runs in, from its CR0, CR4 and EFER: which walk turns its
/// virtual addresses into guest-physical ones.
public enum GuestPagingMode: Sendable, Equatable {
  /// CR0.PG clear: a virtual address is the physical one (its low 32 bits).
  case off
  /// 32-bit paging: two levels of 4-byte entries, 4 MiB pages with CR4.PSE.
  case legacy
  /// PAE paging: a 4-entry PDPT at CR3[31:5], then two levels of 8-byte entries; 2 MiB pages.
  case pae
  /// 4-level paging (EFER.LMA): 2 MiB and 1 GiB pages.
  case long

  public init(cr0: UInt64, cr4: UInt64, efer: UInt64) {
    if cr0 & (1 << 31) == 0 { self = .off }
    else if efer & (1 << 10) != 0 { self = .long }
    else if cr4 & (1 << 5) != 0 { self = .pae }
    else { self = .legacy }
  }
}

/// What an access through a virtual address is, in the bits the CPU's page-fault error code
/// gives them (so a fault's error code is these bits plus P and RSVD).
public struct GuestAccess: OptionSet, Sendable, Equatable {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let read: GuestAccess = []
  public static let write = GuestAccess(rawValue: 1 << 1)
  /// A CPL 3 access (the hypervisor's own copies for a guest are supervisor accesses).
  public static let user = GuestAccess(rawValue: 1 << 2)
  /// An instruction fetch.
  public static let execute = GuestAccess(rawValue: 1 << 4)
}

/// Why a walk did not reach a page, and where: enough to build the #PF the CPU would raise.
public struct PageFault: Error, Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    /// An entry on the way had P clear.
    case notPresent
    /// The walk reached a page the access may not make (write, user or execute permission).
    case protection
    /// An entry on the way had a bit set that the CPU requires clear.
    case reservedBit
    /// The address is outside what the mode translates (not canonical in long mode, above
    /// 4 GiB in a 32-bit mode): the CPU raises #GP there, not #PF.
    case outOfRange
    /// A table the walk needed is not the domain's memory (the p2m has nothing there): no
    /// guest fault the CPU could raise; the access just fails.
    case tableNotMemory
  }

  public var kind: Kind
  /// The level the walk stopped at: 1 is the page table entry, 2 the page directory entry, 3
  /// the PDPT entry, 4 the PML4 entry (0 when no entry was read).
  public var level: Int
  public var address: UInt64
  public var access: GuestAccess

  public init(_ kind: Kind, level: Int, address: UInt64, access: GuestAccess) {
    self.kind = kind
    self.level = level
    self.address = address
    self.access = access
  }

  /// The #PF error code: P (bit 0) when the entry was present, W/U/I from the access, RSVD
  /// (bit 3) for a reserved bit.
  public var errorCode: UInt32 {
    var code = access.rawValue & (GuestAccess.write.rawValue | GuestAccess.user.rawValue | GuestAccess.execute.rawValue)
    if kind == .protection || kind == .reservedBit { code |= 1 }
    if kind == .reservedBit { code |= 1 << 3 }
    return code
  }
}

/// A walk of a guest's own page tables, as the CPU does it, in each paging mode: entry
/// formats, index arithmetic, reserved bits and permissions, with the entries read through a
/// closure (guest-physical address and size → value, nil when that is not the domain's memory).
/// Pure, so the host tests walk hand-built tables; the arch layer's GuestMemory feeds it the
/// vcpu's registers and reads through the p2m.
///
/// Rules (Xen's guest_walk_tables): an entry with P clear stops the walk (not present), one with
/// a reserved bit set stops it (reserved bit: physical address bits at or above MAXPHYADDR, NX
/// without EFER.NXE, PS in a PML4 entry, G in a PML4 entry (AMD), the PDPT entry's reserved
/// flags in PAE mode, a large page's frame bits below its alignment); then the access is checked
/// against the permissions of all levels: a write needs R/W everywhere if it is a user access or
/// CR0.WP is set, a user access needs U/S everywhere, an instruction fetch needs NX nowhere (with
/// EFER.NXE). Accessed and dirty bits are not set (the hypervisor's copies never did), and SMEP,
/// SMAP and protection keys are not modelled (the guest CPUID offers none of them to a guest the
/// walk would matter to: the hypervisor's own copies are supervisor data accesses).
public struct GuestPageWalk: Sendable, Equatable {
  public var mode: GuestPagingMode
  public var cr3: UInt64
  /// CR0.WP: supervisor writes honour R/W.
  public var writeProtect: Bool
  /// CR4.PSE: 4 MiB pages in legacy mode (PAE and long mode always have large pages).
  public var pageSizeExtensions: Bool
  /// EFER.NXE: bit 63 is NX rather than reserved (PAE and long mode).
  public var noExecute: Bool
  /// CPUID PSE-36: a legacy 4 MiB page's PDE bits 20:13 are physical address bits 39:32.
  public var pse36: Bool
  /// MAXPHYADDR: entry address bits from here up to 51 are reserved.
  public var physicalAddressBits: Int

  public init(cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, physicalAddressBits: Int = 52, pse36: Bool = false) {
    mode = GuestPagingMode(cr0: cr0, cr4: cr4, efer: efer)
    self.cr3 = cr3
    writeProtect = cr0 & (1 << 16) != 0
    pageSizeExtensions = cr4 & (1 << 4) != 0
    noExecute = efer & (1 << 11) != 0
    self.pse36 = pse36
    self.physicalAddressBits = min(max(physicalAddressBits, 32), 52)
  }

  /// Bits 51:12 of an 8-byte entry: the next table or the page.
  public static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  static let present: UInt64 = 1
  static let writable: UInt64 = 1 << 1
  static let user: UInt64 = 1 << 2
  static let largePage: UInt64 = 1 << 7
  static let global: UInt64 = 1 << 8
  static let noExecuteBit: UInt64 = 1 << 63

  /// Address bits [MAXPHYADDR, 52) of an 8-byte entry, which must be clear.
  var physicalReserved: UInt64 {
    Self.addressMask & ~((UInt64(1) << UInt64(physicalAddressBits)) &- 1)
  }

  /// A large page's frame bits below its own alignment (`pageBits`: 21 or 30) except bit 12,
  /// which is its PAT bit.
  static func largePageReserved(pageBits: Int) -> UInt64 {
    ((UInt64(1) << UInt64(pageBits)) &- 1) & ~UInt64(0x1FFF)
  }

  /// The guest-physical address `gva` reaches for `access`, or why not.
  public func translate(_ gva: UInt64, access: GuestAccess, readEntry: (_ gpa: UInt64, _ size: Int) -> UInt64?) -> Result<UInt64, PageFault> {
    switch mode {
    case .off:
      return .success(gva & 0xFFFF_FFFF)
    case .legacy:
      guard gva >> 32 == 0 else { return .failure(PageFault(.outOfRange, level: 0, address: gva, access: access)) }
      return walkLegacy(gva, access: access, readEntry: readEntry)
    case .pae:
      guard gva >> 32 == 0 else { return .failure(PageFault(.outOfRange, level: 0, address: gva, access: access)) }
      return walkWide(gva, levels: 3, access: access, readEntry: readEntry)
    case .long:
      let top = gva >> 47                                           // canonical: bits 63..47 equal
      guard top == 0 || top == 0x1FFFF else { return .failure(PageFault(.outOfRange, level: 0, address: gva, access: access)) }
      return walkWide(gva, levels: 4, access: access, readEntry: readEntry)
    }
  }

  /// The permissions every level granted, checked once the walk reached its page (the CPU
  /// reports a protection fault only for a complete walk).
  private struct Rights {
    var write = true
    var user = true
    var execute = true
  }

  private func check(_ rights: Rights, _ gpa: UInt64, gva: UInt64, level: Int, access: GuestAccess) -> Result<UInt64, PageFault> {
    let denied =
      (access.contains(.write) && !rights.write && (access.contains(.user) || writeProtect))
      || (access.contains(.user) && !rights.user)
      || (access.contains(.execute) && !rights.execute)
    return denied ? .failure(PageFault(.protection, level: level, address: gva, access: access)) : .success(gpa)
  }

  /// PAE (3 levels, the first the 4-entry PDPT) and long mode (4 levels): 8-byte entries.
  private func walkWide(_ gva: UInt64, levels: Int, access: GuestAccess, readEntry: (UInt64, Int) -> UInt64?) -> Result<UInt64, PageFault> {
    let noExecuteReserved = noExecute ? 0 : Self.noExecuteBit
    var rights = Rights()
    var level = levels
    // PAE's PDPT is 32-byte aligned, below 4 GiB.
    var table = levels == 3 ? cr3 & 0xFFFF_FFE0 : cr3 & Self.addressMask
    while true {
      let shift = UInt64(12 + 9 * (level - 1))
      let index = levels == 3 && level == 3 ? (gva >> 30) & 3 : (gva >> shift) & 0x1FF
      guard let entry = readEntry(table &+ index &* 8, 8) else {
        return .failure(PageFault(.tableNotMemory, level: level, address: gva, access: access))
      }
      guard entry & Self.present != 0 else { return .failure(PageFault(.notPresent, level: level, address: gva, access: access)) }
      let isLarge = entry & Self.largePage != 0
      var reserved = physicalReserved
      if levels == 3 && level == 3 {
        // The PAE PDPT entry: no permissions, no large page; bits 63:52 reserved as well. A and D
        // (bits 5 and 6) are not: the CPU itself sets A there (QEMU's walker does, and KVM's
        // PDPTE check leaves both out), so refusing them would fail walks the guest's own
        // accesses pass.
        reserved |= 0xFFF0_0000_0000_0000 | Self.global | Self.largePage | Self.user | Self.writable
      } else {
        reserved |= noExecuteReserved
        if levels == 3 { reserved |= 0x7FF0_0000_0000_0000 }        // PAE: bits 62:52 too
        if level == 4 { reserved |= Self.largePage | Self.global }
        if isLarge && (level == 2 || level == 3) { reserved |= Self.largePageReserved(pageBits: Int(shift)) }
      }
      guard entry & reserved == 0 else { return .failure(PageFault(.reservedBit, level: level, address: gva, access: access)) }
      if !(levels == 3 && level == 3) {
        if entry & Self.writable == 0 { rights.write = false }
        if entry & Self.user == 0 { rights.user = false }
        if noExecute && entry & Self.noExecuteBit != 0 { rights.execute = false }
      }
      if level == 1 || (isLarge && (level == 2 || (level == 3 && levels == 4))) {
        let offsetMask = (UInt64(1) << shift) &- 1
        let gpa = (entry & Self.addressMask & ~offsetMask) | (gva & offsetMask)
        return check(rights, gpa, gva: gva, level: level, access: access)
      }
      table = entry & Self.addressMask
      level -= 1
    }
  }

  /// Legacy 32-bit paging: 4-byte entries, a 1024-entry directory and tables; 4 MiB pages
  /// with CR4.PSE (PSE-36: address bits 39:32 in PDE bits 20:13). No reserved bits otherwise.
  private func walkLegacy(_ gva: UInt64, access: GuestAccess, readEntry: (UInt64, Int) -> UInt64?) -> Result<UInt64, PageFault> {
    var rights = Rights()
    let directory = cr3 & 0xFFFF_F000
    guard let pde = readEntry(directory &+ ((gva >> 22) & 0x3FF) &* 4, 4).map({ $0 & 0xFFFF_FFFF }) else {
      return .failure(PageFault(.tableNotMemory, level: 2, address: gva, access: access))
    }
    guard pde & Self.present != 0 else { return .failure(PageFault(.notPresent, level: 2, address: gva, access: access)) }
    if pde & Self.writable == 0 { rights.write = false }
    if pde & Self.user == 0 { rights.user = false }
    if pageSizeExtensions && pde & Self.largePage != 0 {
      var reserved: UInt64 = 0x3F_E000                               // bits 21:13
      var high: UInt64 = 0
      if pse36 {
        // Bits 20:13 carry address bits 39:32 (those at or above MAXPHYADDR reserved); bit 21
        // would be address bit 40, beyond PSE-36.
        reserved = 1 << 21
        for bit in 0..<8 where 32 + bit >= physicalAddressBits { reserved |= UInt64(1) << UInt64(13 + bit) }
        high = ((pde >> 13) & 0xFF) << 32
      }
      guard pde & reserved == 0 else { return .failure(PageFault(.reservedBit, level: 2, address: gva, access: access)) }
      return check(rights, high | (pde & 0xFFC0_0000) | (gva & 0x3F_FFFF), gva: gva, level: 2, access: access)
    }
    guard let pte = readEntry((pde & 0xFFFF_F000) &+ ((gva >> 12) & 0x3FF) &* 4, 4).map({ $0 & 0xFFFF_FFFF }) else {
      return .failure(PageFault(.tableNotMemory, level: 1, address: gva, access: access))
    }
    guard pte & Self.present != 0 else { return .failure(PageFault(.notPresent, level: 1, address: gva, access: access)) }
    if pte & Self.writable == 0 { rights.write = false }
    if pte & Self.user == 0 { rights.user = false }
    return check(rights, (pte & 0xFFFF_F000) | (gva & 0xFFF), gva: gva, level: 1, access: access)
  }
}
