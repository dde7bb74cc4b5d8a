#if os(none)
import Hypervisor
import Synchronization

/// A domain's guest-physical → machine map (Xen's p2m), realised as the nested page tables the
/// CPU walks on every guest memory access (AMD nested paging).
///
/// The format is the ordinary 4-level x86-64 one. Nested walks count as user accesses, so every
/// entry carries U. Leaves are 4 KiB or 2 MiB. A leaf whose frame the domain owns (its RAM, its
/// special pages) is marked with the software bit `owned`; `destroy` returns those frames, and
/// every table page, to the frame allocator. This table is the only record of a domain's memory:
/// translating a guest-physical address is a walk of it.
public struct NestedPageTable {
  public let root: UInt64

  static let present: UInt64 = 1 << 0
  static let writable: UInt64 = 1 << 1
  static let user: UInt64 = 1 << 2
  static let largePage: UInt64 = 1 << 7
  static let owned: UInt64 = 1 << 9                 // software bit: free this frame on destroy
  static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  static let tableFlags: UInt64 = present | writable | user

  public enum PageSize { case small, large        // 4 KiB, 2 MiB
    var bytes: UInt64 { self == .small ? 4096 : 2 << 20 }
  }

  /// Bumped after every change to any nested page table (map, unmap, split, destroy), so that
  /// a vcpu's `P2MCache` filled before the change is not used after it.
  public static let generation = Atomic<UInt64>(0)

  private static func changed() { generation.wrappingAdd(1, ordering: .releasing) }

  public static func create() -> NestedPageTable? {
    guard let root = Frames.allocate(order: 0) else { return nil }
    PhysicalMemory.zero(root, count: 4096)
    return NestedPageTable(root: root)
  }

  private static func index(_ gpa: UInt64, level: Int) -> UInt64 { (gpa >> (12 + 9 * UInt64(level))) & 0x1FF }

  /// The entry address for `gpa` at `level` (0 = 4 KiB PTE, 1 = 2 MiB PDE), creating tables on the way.
  private func entryAddress(_ gpa: UInt64, level: Int, create: Bool) -> UInt64? {
    var table = root
    var current = 3
    while current > level {
      let slot = table + Self.index(gpa, level: current) * 8
      guard let entry = PhysicalMemory.read64(slot) else { return nil }
      if entry & Self.present == 0 {
        guard create, let page = Frames.allocate(order: 0) else { return nil }
        PhysicalMemory.zero(page, count: 4096)
        PhysicalMemory.write64(slot, page | Self.tableFlags)
        table = page
      } else {
        if entry & Self.largePage != 0 { return nil }   // a large leaf is in the way
        table = entry & Self.addressMask
      }
      current -= 1
    }
    return table + Self.index(gpa, level: level) * 8
  }

  /// Maps one page. Returns false if memory for a table ran out or something is already mapped.
  @discardableResult
  public func map(gpa: UInt64, machine: UInt64, size: PageSize, owned: Bool, writable: Bool = true) -> Bool {
    guard gpa % size.bytes == 0, machine % size.bytes == 0,
          let slot = entryAddress(gpa, level: size == .small ? 0 : 1, create: true),
          let old = PhysicalMemory.read64(slot), old & Self.present == 0
    else { return false }
    var entry = machine | Self.present | Self.user
    if writable { entry |= Self.writable }
    if size == .large { entry |= Self.largePage }
    if owned { entry |= Self.owned }
    PhysicalMemory.write64(slot, entry)
    Self.changed()
    return true
  }

  /// Removes the 4 KiB mapping at `gpa` (splitting nothing: a 2 MiB leaf there is an error).
  /// Returns the machine frame and whether the domain owned it.
  public func unmapSmall(gpa: UInt64) -> (machine: UInt64, owned: Bool)? {
    guard let slot = entryAddress(gpa, level: 0, create: false),
          let entry = PhysicalMemory.read64(slot), entry & Self.present != 0 else { return nil }
    PhysicalMemory.write64(slot, 0)
    Self.changed()
    return (entry & Self.addressMask, entry & Self.owned != 0)
  }

  /// True if the small leaf at `gpa` is the first page of a split 2 MiB block: the one that
  /// carries the block's ownership, so unmapping it alone would lose (or free) all 512 pages.
  public func headsSplitBlock(_ gpa: UInt64) -> Bool {
    guard let slot = entryAddress(gpa, level: 0, create: false), let entry = PhysicalMemory.read64(slot) else { return false }
    return entry & Self.present != 0 && entry & Self.blockHead != 0
  }

  /// Splits the 2 MiB leaf covering `gpa` into 512 small leaves mapping the same frames (so one
  /// 4 KiB page inside it can be replaced). The large block stays one allocation: only the first
  /// small leaf carries `owned`, so destroy frees the block once.
  public func splitLarge(covering gpa: UInt64) -> Bool {
    let base = gpa & ~((2 << 20) - 1)
    guard let pdeSlot = entryAddress(base, level: 1, create: false),
          let pde = PhysicalMemory.read64(pdeSlot), pde & Self.present != 0 else { return false }
    if pde & Self.largePage == 0 { return true }
    guard let table = Frames.allocate(order: 0) else { return false }
    let machine = pde & Self.addressMask & ~((2 << 20) - 1)
    let flags = pde & (Self.present | Self.writable | Self.user)
    for i in 0..<UInt64(512) {
      var entry = (machine + i * 4096) | flags
      if i == 0 && pde & Self.owned != 0 { entry |= Self.owned | Self.blockHead }
      PhysicalMemory.write64(table + i * 8, entry)
    }
    PhysicalMemory.write64(pdeSlot, table | Self.tableFlags)
    Self.changed()
    return true
  }
  /// Software bit on a small leaf that heads a 2 MiB block split by `splitLarge`.
  static let blockHead: UInt64 = 1 << 10

  /// Guest-physical → machine address, or nil if nothing is mapped there.
  public func translate(_ gpa: UInt64) -> (machine: UInt64, writable: Bool)? {
    // Four levels of 512 entries cover 2^48 bytes: an address above is no guest-physical
    // address at all (and would otherwise alias one below).
    guard gpa >> 48 == 0, root != 0 else { return nil }
    // Every table is a frame the hypervisor allocated and filled itself: its entries are read
    // unchecked (this runs several times for each guest-virtual address a hypercall reads).
    var table = root
    var shift: UInt64 = 39
    while true {
      let entry = PhysicalMemory.ownRead64(table | (((gpa &>> shift) & 0x1FF) &<< 3))
      guard entry & Self.present != 0 else { return nil }
      let writable = entry & Self.writable != 0
      if shift == 12 { return ((entry & Self.addressMask) | (gpa & 0xFFF), writable) }
      if entry & Self.largePage != 0 {
        guard shift == 21 else { return nil }                      // 1 GiB leaves are never made
        return ((entry & Self.addressMask & ~((2 << 20) - 1)) | (gpa & ((2 << 20) - 1)), writable)
      }
      table = entry & Self.addressMask
      shift &-= 9
    }
  }

  /// Frees every owned frame and every table page. Returns the number of frames returned.
  public func destroy() -> Int {
    var freed = 0
    Self.free(table: root, level: 3, freed: &freed)
    Self.changed()
    return freed
  }

  private static func free(table: UInt64, level: Int, freed: inout Int) {
    for i in 0..<UInt64(512) {
      guard let entry = PhysicalMemory.read64(table + i * 8), entry & present != 0 else { continue }
      let target = entry & addressMask
      let isLeaf = level == 0 || (level == 1 && entry & largePage != 0)
      if isLeaf {
        if entry & owned != 0 {
          let size = (level == 1 || entry & blockHead != 0) ? 512 : 1
          if Frames.release(target) { freed += size }
        }
      } else {
        Self.free(table: target, level: level - 1, freed: &freed)
      }
    }
    if Frames.release(table) { freed += 1 }
  }
}
#endif
