/// A vcpu's last walk of its guest's own page tables: the page it translated, the machine
/// address and value of each entry the walk read, and the machine page it ended on. Reading a
/// hypercall argument walks four guest levels, and a guest makes hypercalls from the same few
/// pages (its stack, its per-cpu data) again and again.
///
/// The guest owns its page tables and changes them without telling the hypervisor (nothing
/// intercepts its INVLPG or CR3 writes under nested paging), so this is not a TLB: a hit reads
/// every entry the walk read again and answers only if each still holds the value the walk saw.
/// A walk is a function of its root, those values and the p2m, so the answer is then exactly
/// what a new walk would give. The p2m part is held to the p2m generation, as in `P2MCache`
/// (the entries' machine addresses, and the final page's, came from it).
/// Only the pcpu running the vcpu touches its cache (a vcpu is in one exit at a time).
public struct GuestWalkCache {
  public static let maximumLevels = 4

  /// The virtual page number plus one; 0 = empty.
  var tag: UInt64 = 0
  var root: UInt64 = 0
  var generation: UInt64 = 0
  var levels = 0
  var entryAddresses = InlineArray<4, UInt64>(repeating: 0)
  var entries = InlineArray<4, UInt64>(repeating: 0)
  /// Some entry lacked the write permission (a write then faults while CR0.WP is set).
  var readOnly = false
  /// The machine page the walk ended on, and whether the p2m let it be written.
  var machine: UInt64 = 0
  var writable = false

  public init() {}

  /// The machine address of `gva` if the last walk was of its page, from `root`, under
  /// `generation`, and every entry it read still holds what it held (`Memory` reads one entry
  /// at its machine address); nil: walk. Mutating for the same reason as `P2MCache.lookup`.
  /// The reader is a type, not a closure: a closure's context kept the vcpu retained.
  @inline(__always)
  public mutating func lookup<Memory: EntryReader>(
    _ gva: UInt64, root: UInt64, write: Bool, writeProtect: Bool, generation: UInt64, _: Memory.Type
  ) -> UInt64? {
    guard tag == (gva &>> 12) &+ 1, self.root == root, self.generation == generation else { return nil }
    if write && (!writable || (readOnly && writeProtect)) { return nil }
    var level = 0
    while level < levels && level < Self.maximumLevels {
      guard Memory.readEntry(entryAddresses[level]) == entries[level] else { return nil }
      level += 1
    }
    return machine | (gva & 0xFFF)
  }

  /// Starts recording a walk of the page holding `gva` from `root` under `generation`.
  /// Empty until `finish`: a walk that fails caches nothing.
  public mutating func begin(_ gva: UInt64, root: UInt64, generation: UInt64) {
    tag = 0
    pendingTag = (gva &>> 12) &+ 1
    self.root = root
    self.generation = generation
    levels = 0
    readOnly = false
  }

  var pendingTag: UInt64 = 0

  /// One entry the walk read, at machine address `address`; `allowsWrite`: its write permission.
  public mutating func record(entry: UInt64, at address: UInt64, allowsWrite: Bool) {
    guard levels < Self.maximumLevels else { pendingTag = 0; return }   // deeper than any walk: never cached
    entryAddresses[levels] = address
    entries[levels] = entry
    if !allowsWrite { readOnly = true }
    levels += 1
  }

  /// Forgets the walk if it went through machine page `frame`: read an entry in it or ended
  /// on it (the guest frame that mapped it is gone).
  public mutating func forget(frame: UInt64) {
    guard tag != 0 else { return }       // nothing cached (a vcpu's code cache, until an injection)
    let page = frame & ~0xFFF
    var through = machine == page
    var level = 0
    while level < levels && level < Self.maximumLevels {
      if entryAddresses[level] & ~0xFFF == page { through = true }
      level += 1
    }
    if through { tag = 0 }
  }

  /// The walk ended on machine page `machine` (writable in the p2m or not): the cache answers
  /// for this page from now on.
  public mutating func finish(machine: UInt64, writable: Bool) {
    self.machine = machine & ~0xFFF
    self.writable = writable
    tag = pendingTag
  }
}

/// How `GuestWalkCache.lookup` reads a page-table entry again: the arch layer's checked 64-bit
/// load of machine memory (nil: not memory).
public protocol EntryReader {
  static func readEntry(_ machine: UInt64) -> UInt64?
}
