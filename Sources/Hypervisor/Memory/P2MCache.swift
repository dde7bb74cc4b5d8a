/// A vcpu's cache of its domain's p2m: the machine frames of the last few guest-physical pages
/// that hypervisor copies (`GuestMemory`) translated. Reading one hypercall argument walks the
/// guest's four page-table levels and the argument itself, each a nested page table walk, and
/// the same few pages (the guest's top page tables, its stack) come back at every hypercall.
///
/// An entry is good only under the version it was filled under (`VCPU.cacheVersion`: the p2m
/// generation plus the vcpu's discards): every change to any nested page table bumps the
/// generation after it is made, except a grant unmap, which forgets its page in the caller's
/// cache and discards the domain's other vcpus' (`P2M.unmapGrant`); a lookup reads the version
/// before it walks, so an entry filled from a table that changed meanwhile is stale at once.
/// Only the pcpu running the vcpu touches its cache (a vcpu is in one exit at a time).
public struct P2MCache {
  static let slots = 8

  struct Entry {
    /// The guest frame number plus one; 0 = empty.
    var tag: UInt64 = 0
    var machine: UInt64 = 0
    var writable = false
    var generation: UInt64 = 0
  }

  var entries = InlineArray<8, Entry>(repeating: Entry())

  public init() {}

  /// The machine address of `gpa` if its page is cached under `generation` (and writable, for
  /// a write); nil: walk the table. Mutating though it changes nothing: called on a vcpu's
  /// cache, it then works in place, where a non-mutating call copies the whole cache out first.
  @inline(__always)
  public mutating func lookup(_ gpa: UInt64, write: Bool, generation: UInt64) -> UInt64? {
    let frame = gpa &>> 12
    let entry = entries[Int(frame & UInt64(Self.slots - 1))]
    guard entry.tag == frame &+ 1, entry.generation == generation, !write || entry.writable else { return nil }
    return entry.machine | (gpa & 0xFFF)
  }

  /// Remembers that the page holding `gpa` is the machine page holding `machine`, as the table
  /// said under `generation`.
  public mutating func fill(_ gpa: UInt64, machine: UInt64, writable: Bool, generation: UInt64) {
    let frame = gpa &>> 12
    entries[Int(frame & UInt64(Self.slots - 1))] =
      Entry(tag: frame &+ 1, machine: machine & ~0xFFF, writable: writable, generation: generation)
  }

  /// Forgets the page `gfn` (its translation changed).
  public mutating func forget(_ gfn: UInt64) {
    let slot = Int(gfn & UInt64(Self.slots - 1))
    if entries[slot].tag == gfn &+ 1 { entries[slot] = Entry() }
  }
}
