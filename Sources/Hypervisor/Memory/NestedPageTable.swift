import Synchronization

/// A domain's guest-physical → machine map (Xen's p2m), as the nested page tables the CPU walks
/// on every guest memory access (AMD nested paging; the format is the ordinary 4-level x86-64
/// one, so the same tables would serve Intel's EPT with other bit names).
///
/// This type reads and walks. Every change goes through `P2M`, under the domain's p2m lock.
///
/// - Nested walks count as user accesses, so every entry carries U.
/// - Leaves are 4 KiB or 2 MiB. A leaf says in its software bits what it maps (`Kind`).
/// - Each frame a leaf maps holds one reference in the frame table (a 2 MiB leaf one on each of
///   its 512 frames), and a table page's count is the number of entries in it.
public struct NestedPageTable {
  public let root: UInt64

  @usableFromInline static let present: UInt64 = 1 << 0
  static let writable: UInt64 = 1 << 1
  static let user: UInt64 = 1 << 2
  @usableFromInline static let largePage: UInt64 = 1 << 7
  @usableFromInline static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  static let tableFlags: UInt64 = present | writable | user
  static let kindShift: UInt64 = 9
  static let kindMask: UInt64 = 7 << kindShift

  /// What a leaf maps (bits 9–11 of the entry, ignored by the CPU).
  public enum Kind: UInt64, Sendable {
    /// The domain's RAM: counted in its reservation, given back by decrease_reservation.
    case ram = 1
    /// A page the hypervisor made for the domain (shared_info, the console ring): the guest
    /// may place or give back the mapping, the hypervisor keeps the frame.
    case special = 2
    /// Another domain's frame, mapped with GNTTABOP_map_grant_ref (Xen's p2m_grant_map_rw/ro).
    /// The leaf holds no reference itself: the mapper's maptrack entry does (`GrantTables`),
    /// and only GNTTABOP_unmap_grant_ref (or the mapper's end) takes it out.
    case grant = 3
    // Foreign and MMIO mappings come with device models.
  }

  /// The highest guest frame number plus one: four levels of 512 entries cover 2^48 bytes.
  public static let frameLimit: UInt64 = 1 << 36

  /// Bumped after every change to any nested page table (map, unmap, split, destroy), so that
  /// a vcpu's `P2MCache` filled before the change is not used after it.
  public static let generation = Atomic<UInt64>(0)

  static func changed() { generation.wrappingAdd(1, ordering: .releasing) }

  public init(root: UInt64) { self.root = root }

  @inline(__always)
  static func index(_ gpa: UInt64, level: Int) -> UInt64 { (gpa >> (12 + 9 * UInt64(level))) & 0x1FF }

  /// Guest-physical → machine address, or nil if nothing is mapped there.
  @inlinable
  public func translate(_ gpa: UInt64) -> (machine: UInt64, writable: Bool)? {
    // An address above 2^48 is no guest-physical address at all (and would otherwise alias one
    // below).
    guard gpa >> 48 == 0, root != 0 else { return nil }
    // Every table is a frame the hypervisor allocated and filled itself: its entries are read
    // unchecked (this runs several times for each guest-virtual address a hypercall reads).
    var table = root
    var shift: UInt64 = 39
    while true {
      let entry = FrameMemory.read64(table | (((gpa &>> shift) & 0x1FF) &<< 3))
      guard entry & Self.present != 0 else { return nil }
      let writable = entry & 2 != 0
      if shift == 12 { return ((entry & Self.addressMask) | (gpa & 0xFFF), writable) }
      if entry & Self.largePage != 0 {
        guard shift == 21 else { return nil }                      // 1 GiB leaves are never made
        return ((entry & Self.addressMask & ~((2 << 20) - 1)) | (gpa & ((2 << 20) - 1)), writable)
      }
      table = entry & Self.addressMask
      shift &-= 9
    }
  }

  /// The leaf covering `gfn`: its entry's address and value and its level (0 = 4 KiB,
  /// 1 = 2 MiB), or nil if nothing is mapped there.
  /// Optimized for speed, not size as the rest of the image: each grant operation walks here.
  @_optimize(speed)
  func leaf(_ gfn: UInt64) -> (slot: UInt64, entry: UInt64, level: Int)? {
    guard gfn < Self.frameLimit, root != 0 else { return nil }
    let gpa = gfn << 12
    var table = root
    var level = 3
    while true {
      let slot = table + Self.index(gpa, level: level) * 8
      let entry = FrameMemory.read64(slot)
      guard entry & Self.present != 0 else { return nil }
      if level == 0 || (level == 1 && entry & Self.largePage != 0) { return (slot, entry, level) }
      table = entry & Self.addressMask
      level -= 1
    }
  }

  /// What is mapped at `gfn`: the machine frame of that page and the leaf's kind.
  public func lookup(_ gfn: UInt64) -> (frame: UInt64, kind: Kind)? {
    guard let (_, entry, level) = leaf(gfn) else { return nil }
    let base = entry & Self.addressMask
    let frame = level == 0 ? base : (base & ~((2 << 20) - 1)) + ((gfn & 511) << 12)
    return (frame, Self.kind(of: entry))
  }

  static func kind(of entry: UInt64) -> Kind { Kind(rawValue: (entry & kindMask) >> kindShift) ?? .ram }

  /// Calls `body` for every leaf: the first gfn it covers, its machine address, level and kind;
  /// and `table` for every table page, the root included.
  func walk(leaf: (UInt64, UInt64, Int, Kind) -> Void, table: (UInt64, Int) -> Void) {
    guard root != 0 else { return }
    Self.walk(root, level: 3, base: 0, leaf: leaf, table: table)
  }

  private static func walk(_ page: UInt64, level: Int, base: UInt64,
                           leaf: (UInt64, UInt64, Int, Kind) -> Void, table: (UInt64, Int) -> Void) {
    table(page, level)
    for i in 0..<UInt64(512) {
      let entry = FrameMemory.read64(page + i * 8)
      guard entry & present != 0 else { continue }
      let gfn = base | (i << (9 * UInt64(level)))
      if level == 0 || (level == 1 && entry & largePage != 0) {
        leaf(gfn, entry & addressMask, level, kind(of: entry))
      } else {
        walk(entry & addressMask, level: level - 1, base: gfn, leaf: leaf, table: table)
      }
    }
  }
}
