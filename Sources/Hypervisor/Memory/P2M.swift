import Synchronization

/// Changes to one domain's p2m, made with its p2m lock held (`Domain.changeP2M`).
///
/// The rules, which docs/memory.md ("The life of a frame") follows through the code:
/// - every frame a leaf maps holds a reference, taken when it is mapped;
/// - a frame or table that leaves the p2m is *retired*, not freed: `Domain.changeP2M` drops the
///   lock, waits until no vcpu of the domain can still use a translation from before the change
///   (`P2M.flushTranslations`), and only then drops the references (and frees what nobody else
///   holds);
/// - table pages come from the domain's bounded pool, and a table left empty is retired too;
/// - a change that cannot be completed fails before it changes any mapping.
public struct P2M: ~Copyable {
  let domain: Domain
  let ticket: UInt32
  /// Something was retired (`P2M.retire`): after the flush, `finish` drops it.
  var retiredAny = false
  /// A translation a vcpu may hold went away: the change waits for the flush before it returns.
  /// Set with `retiredAny`, and alone by a grant unmap, whose frame the maptrack holds.
  var flushOwed = false

  /// Waits until no vcpu of `domain` but `caller` may use a translation from before now, and
  /// makes `caller` flush on its next entry. Installed by the arch layer; host tests leave it
  /// unset (there is no TLB there). Set once at boot, before any domain exists.
  nonisolated(unsafe) public static var flushTranslations: ((Domain, VCPU?) -> Void)?

  init(_ domain: Domain, ticket: UInt32) {
    self.domain = domain
    self.ticket = ticket
  }

  var table: NestedPageTable { NestedPageTable(root: domain.p2mRoot) }

  // MARK: - Tables

  /// A zeroed table page from the domain's pool, or nil when the pool or memory is used up.
  private func newTable() -> UInt64? {
    guard domain.p2mTablePages < domain.p2mPoolLimit, let page = Frames.allocate(order: 0) else { return nil }
    FrameMemory.zero(page, count: 4096)
    guard FrameTable.assign(page, to: domain.id, as: .p2mTable) else {
      Frames.release(page)
      return nil
    }
    domain.p2mTablePages += 1
    domain.framesInUse += 1
    return page
  }

  /// Makes the root table. The domain must have none.
  public func createRoot() -> Bool {
    guard domain.p2mRoot == 0, let page = newTable() else { return false }
    domain.p2mRoot = page
    return true
  }

  private func addEntries(_ tablePage: UInt64, _ delta: Int32) -> UInt32 {
    FrameTable.adjustTableEntries(tablePage & ~0xFFF, by: delta)
  }

  /// The slots from the root down to `level` for `gfn` (index = level), creating tables and
  /// splitting a 2 MiB leaf on the way when `create`. Nil if a table is missing (and `create`
  /// is false) or the pool is empty.
  private mutating func path(_ gfn: UInt64, to level: Int, create: Bool) -> InlineArray<4, UInt64>? {
    var slots = InlineArray<4, UInt64>(repeating: 0)
    let gpa = gfn << 12
    var page = domain.p2mRoot
    var current = 3
    while true {
      let slot = page + NestedPageTable.index(gpa, level: current) * 8
      slots[current] = slot
      if current == level { return slots }
      let entry = FrameMemory.read64(slot)
      if entry & NestedPageTable.present == 0 {
        guard create, let fresh = newTable() else { return nil }
        FrameMemory.write64(slot, fresh | NestedPageTable.tableFlags)
        _ = addEntries(page, 1)
        page = fresh
      } else if entry & NestedPageTable.largePage != 0 {
        guard create, current == 1, let split = split(slot, entry) else { return nil }
        page = split
      } else {
        page = entry & NestedPageTable.addressMask
      }
      current -= 1
    }
  }

  /// Replaces the 2 MiB leaf at `slot` with a table of 512 small leaves mapping the same
  /// frames (each keeps its reference). The translations do not change, so nothing is flushed.
  private func split(_ slot: UInt64, _ entry: UInt64) -> UInt64? {
    guard let page = newTable() else { return nil }
    let base = entry & NestedPageTable.addressMask & ~((2 << 20) - 1)
    let flags = entry & ~NestedPageTable.addressMask & ~NestedPageTable.largePage
    for i in 0..<UInt64(512) { FrameMemory.write64(page + i * 8, (base + i * 4096) | flags) }
    FrameTable.setTableEntries(page, 512)
    FrameMemory.write64(slot, page | NestedPageTable.tableFlags)
    NestedPageTable.changed()
    return page
  }

  /// Takes tables left empty along `slots` out of the tree (never the root).
  private mutating func prune(_ slots: InlineArray<4, UInt64>, from level: Int) {
    var level = level
    while level < 3 {
      let page = slots[level] & ~0xFFF
      guard slots[level] != 0, FrameTable.record(page)?.refs == 0 else { return }
      FrameMemory.write64(slots[level + 1], 0)
      _ = addEntries(slots[level + 1], -1)
      retire(page)
      level += 1
    }
  }

  private mutating func retire(_ address: UInt64) {
    domain.p2mRetired.append((ticket: ticket, frame: address))
    retiredAny = true
    flushOwed = true
  }

  // MARK: - Mapping

  public enum Failure: Error, Equatable {
    case outOfRange, noMemory, alreadyMapped, notOwned, notMapped, overQuota
    /// A grant mapping is there: only GNTTABOP_unmap_grant_ref takes it out.
    case grantMapped
  }

  /// Maps the 4 KiB frame `frame` (which the domain must own) at `gfn`.
  public mutating func map(_ gfn: UInt64, _ frame: UInt64, _ kind: NestedPageTable.Kind, writable: Bool = true) throws(Failure) {
    guard gfn < NestedPageTable.frameLimit else { throw .outOfRange }
    guard let slots = path(gfn, to: 0, create: true) else { throw .noMemory }
    guard FrameMemory.read64(slots[0]) & NestedPageTable.present == 0 else { throw .alreadyMapped }
    guard FrameTable.get(frame, owner: domain.id) else {
      prune(slots, from: 0)
      throw .notOwned
    }
    var entry = frame | NestedPageTable.present | NestedPageTable.user | kind.rawValue << NestedPageTable.kindShift
    if writable { entry |= NestedPageTable.writable }
    FrameMemory.write64(slots[0], entry)
    _ = addEntries(slots[0], 1)
    if kind == .ram { domain.ramPages += 1 }
    NestedPageTable.changed()
  }

  /// Maps the 2 MiB block at `block` as RAM at `gfn` (both 2 MiB aligned) with one leaf.
  public mutating func mapLarge(_ gfn: UInt64, _ block: UInt64) throws(Failure) {
    guard gfn & 511 == 0, block & ((2 << 20) - 1) == 0, gfn + 512 <= NestedPageTable.frameLimit else { throw .outOfRange }
    guard let slots = path(gfn, to: 1, create: true) else { throw .noMemory }
    guard FrameMemory.read64(slots[1]) & NestedPageTable.present == 0 else { throw .alreadyMapped }
    for i in 0..<UInt64(512) where !FrameTable.get(block + i * 4096, owner: domain.id) {
      for j in 0..<i { _ = FrameTable.put(block + j * 4096) }
      prune(slots, from: 1)
      throw .notOwned
    }
    let entry = block | NestedPageTable.present | NestedPageTable.user | NestedPageTable.writable
      | NestedPageTable.largePage | NestedPageTable.Kind.ram.rawValue << NestedPageTable.kindShift
    FrameMemory.write64(slots[1], entry)
    _ = addEntries(slots[1], 1)
    domain.ramPages += 512
    NestedPageTable.changed()
  }

  /// Takes whatever is mapped at `gfn` out of the p2m (splitting a 2 MiB leaf around it first)
  /// and retires its frame. Returns what was there, nil if nothing was.
  @discardableResult
  public mutating func unmap(_ gfn: UInt64) throws(Failure) -> (frame: UInt64, kind: NestedPageTable.Kind)? {
    guard gfn < NestedPageTable.frameLimit else { throw .outOfRange }
    guard let found = table.lookup(gfn) else { return nil }
    guard found.kind != .grant else { throw .grantMapped }
    guard let slots = path(gfn, to: 0, create: true) else { throw .noMemory }   // a split needs a table
    FrameMemory.write64(slots[0], 0)
    NestedPageTable.changed()
    if found.kind == .ram { domain.ramPages -= 1 }
    retire(found.frame)
    if addEntries(slots[0], -1) == 0 { prune(slots, from: 0) }
    return found
  }

  /// Takes the 2 MiB RAM leaf at `gfn` out whole, if that is what is mapped there.
  mutating func unmapLarge(_ gfn: UInt64) -> Bool {
    guard gfn & 511 == 0, let slots = path(gfn, to: 1, create: false) else { return false }
    let slot = slots[1]
    let entry = FrameMemory.read64(slot)
    guard entry & NestedPageTable.present != 0, entry & NestedPageTable.largePage != 0 else { return false }
    FrameMemory.write64(slot, 0)
    NestedPageTable.changed()
    if NestedPageTable.kind(of: entry) == .ram { domain.ramPages -= 512 }
    let base = entry & NestedPageTable.addressMask & ~((2 << 20) - 1)
    for i in 0..<UInt64(512) { retire(base + i * 4096) }
    if addEntries(slot, -1) == 0 { prune(slots, from: 1) }
    return true
  }

  /// Makes sure `gfn` can take a 4 KiB mapping without allocating: its tables exist and no
  /// 2 MiB leaf covers it. Nothing any guest access sees changes.
  public mutating func prepare(_ gfn: UInt64) throws(Failure) {
    guard gfn < NestedPageTable.frameLimit else { throw .outOfRange }
    guard path(gfn, to: 0, create: true) != nil else { throw .noMemory }
  }

  // MARK: - Grant mappings

  /// GNTTABOP_map_grant_ref's change: maps another domain's `frame` at `gfn`, where nothing is
  /// mapped (Xen's p2m_add_page refuses a gfn in use; nothing there is clobbered). The caller
  /// holds the reference on the frame and records it in the mapper's maptrack (`GrantTables`).
  /// Nothing is retired, whatever happens, so this change never waits for a flush.
  /// Optimized for speed, as unmapGrant and Domain.changeP2M, not size as the rest of the image:
  /// the grant paths (docs/grant-tables.md, "What it costs").
  @_optimize(speed)
  public mutating func mapGrant(_ gfn: UInt64, _ frame: UInt64, writable: Bool) throws(Failure) {
    guard gfn < NestedPageTable.frameLimit else { throw .outOfRange }
    let slot = try emptySlot(gfn)
    var entry = frame | NestedPageTable.present | NestedPageTable.user | NestedPageTable.Kind.grant.rawValue << NestedPageTable.kindShift
    if writable { entry |= NestedPageTable.writable }
    FrameMemory.write64(slot, entry)
    _ = addEntries(slot, 1)
    // No new generation: the caches (`P2MCache`, `GuestWalkCache`) and the TLBs hold only
    // translations that succeeded, and a leaf put where nothing was mapped (no 2 MiB leaf
    // either: `lookup` found nothing) changes none of them. Every vcpu's caches stay good,
    // where a bump would make each walk its guest's page tables afresh.
  }

  /// The 4 KiB leaf slot for `gfn` where nothing is mapped, making the tables down to it: one
  /// walk, where a lookup and then `path` walked twice (a map's cost). A 2 MiB leaf over `gfn`
  /// is something mapped, so it is never split; a table is made only below an empty entry, so
  /// a gfn already mapped fails before anything is made.
  /// Optimized for speed, as `mapGrant`.
  @_optimize(speed)
  private mutating func emptySlot(_ gfn: UInt64) throws(Failure) -> UInt64 {
    guard domain.p2mRoot != 0 else { throw .noMemory }
    let gpa = gfn << 12
    var page = domain.p2mRoot
    var level = 3
    while true {
      let slot = page + NestedPageTable.index(gpa, level: level) * 8
      let entry = FrameMemory.read64(slot)
      if level == 0 {
        guard entry & NestedPageTable.present == 0 else { throw .alreadyMapped }
        return slot
      }
      if entry & NestedPageTable.present == 0 {
        guard let fresh = newTable() else { throw .noMemory }
        FrameMemory.write64(slot, fresh | NestedPageTable.tableFlags)
        _ = addEntries(page, 1)
        page = fresh
      } else if entry & NestedPageTable.largePage != 0 {
        throw .alreadyMapped                     // a 2 MiB leaf (none is made above level 1)
      } else {
        page = entry & NestedPageTable.addressMask
      }
      level -= 1
    }
  }

  /// GNTTABOP_unmap_grant_ref's change: takes the grant mapping of `frame` at `gfn` out. The
  /// frame is not retired here (its reference is the maptrack's, dropped by `GrantTables` once
  /// `Domain.changeP2M` has flushed), but the change still owes the flush. False if `gfn` does
  /// not hold that grant mapping.
  ///
  /// A table the unmap leaves empty stays (unlike `unmap`'s): a backend maps and unmaps the
  /// same few gfns over and over, and freeing and zeroing a table each time would double the
  /// cost of a map. It is one of the domain's pool, and goes with the domain (as Xen, which
  /// never frees p2m tables before the domain's end).
  ///
  /// The p2m generation stays (it would make every vcpu of every domain walk afresh): only this
  /// domain's vcpus can hold the translation, and of those only what went through `frame`. The
  /// caller's caches, which this pcpu owns, forget just that; the other vcpus' are discarded
  /// (`VCPU.cacheDiscards`) before the flush, which waits for each of them to pass a p2m
  /// boundary, as a generation bump would be.
  @_optimize(speed)
  public mutating func unmapGrant(_ gfn: UInt64, _ frame: UInt64, caller: VCPU?) -> Bool {
    guard let (slot, entry, level) = table.leaf(gfn), level == 0, NestedPageTable.kind(of: entry) == .grant,
          entry & NestedPageTable.addressMask == frame else { return false }
    FrameMemory.write64(slot, 0)
    for vcpu in domain.vcpus {
      if vcpu === caller {
        vcpu.forgetTranslation(of: gfn, frame: frame)
      } else {
        vcpu.cacheDiscards.wrappingAdd(1, ordering: .releasing)
      }
    }
    flushOwed = true                             // nothing retired: `finish` has nothing to do
    _ = addEntries(slot, -1)
    return true
  }

  // MARK: - Domain frames

  /// 2^order fresh zeroed frames owned by the domain as `use`, each with no reference yet
  /// (mapping them takes one); nil when memory is short. Each is freed on its own.
  public func newFrames(order: Int, as use: FrameUse) -> UInt64? {
    guard let block = Frames.allocateFrames(order: order) else { return nil }
    let count = UInt64(1) << UInt64(order)
    FrameMemory.zero(block, count: Int(count * 4096))
    for i in 0..<count { _ = FrameTable.assign(block + i * 4096, to: domain.id, as: use) }
    domain.framesInUse += Int(count)
    return block
  }

  /// Frees frames from `newFrames` that were never mapped or held.
  public func discardFrames(_ block: UInt64, count: Int) {
    for i in 0..<UInt64(count) where Frames.release(block + i * 4096) { domain.framesInUse -= 1 }
  }

  /// A reference for the hypervisor on the frame at `gfn` (its machine address is about to be
  /// kept: a vcpu_info). Nil unless it is RAM the domain owns. The guest may give the page back
  /// later; the frame stays until `P2M.dropHold(_:)`. The caller records the frame (in
  /// `VCPU.vcpuInfoFrame`) before the lock is dropped, so the isolation check finds the hold.
  public func hold(_ gfn: UInt64) -> UInt64? {
    guard let (frame, kind) = table.lookup(gfn), kind == .ram,
          FrameTable.get(frame, owner: domain.id) else { return nil }
    return frame
  }

  /// A reference for the hypervisor on a frame it made for the domain (shared_info, the console
  /// ring; recorded in `Domain.sharedInfoMachine`, `Domain.consoleRingFrame`).
  public func hold(frame: UInt64) -> Bool {
    FrameTable.get(frame, owner: domain.id)
  }

  /// Drops a reference the hypervisor took with `hold` (0: none). The caller clears the field
  /// that recorded it in the same change, so the isolation check never sees one without the other.
  public func dropHold(_ frame: UInt64) {
    guard frame != 0 else { return }
    _ = Self.put(frame & ~0xFFF, of: domain)
  }

  // MARK: - Whole operations, as memory_op asks for them

  /// populate_physmap: fresh RAM for 2^order pages at `gfn`, all or nothing.
  public mutating func populate(_ gfn: UInt64, order: Int) throws(Failure) {
    let count = 1 << order
    guard gfn & UInt64(count - 1) == 0, gfn + UInt64(count) <= NestedPageTable.frameLimit else { throw .outOfRange }
    guard domain.ramPages + count <= domain.maximumPages else { throw .overQuota }
    for i in 0..<UInt64(count) where table.lookup(gfn + i) != nil { throw .alreadyMapped }
    if order == 9, let block = newFrames(order: 9, as: .guestRAM) {
      do throws(Failure) {
        try mapLarge(gfn, block)
        return
      } catch {
        discardFrames(block, count: 512)
        if error != .alreadyMapped { throw error }      // a table in the way: try page by page
      }
    }
    for i in 0..<UInt64(count) {
      do throws(Failure) {
        guard let frame = newFrames(order: 0, as: .guestRAM) else { throw .noMemory }
        do throws(Failure) { try map(gfn + i, frame, .ram) } catch {
          discardFrames(frame, count: 1)
          throw error
        }
      } catch {
        for j in 0..<i { _ = try? unmap(gfn + j) }      // as it was: the pages mapped so far go
        throw error
      }
    }
  }

  /// decrease_reservation: takes 2^order pages at `gfn` out, all or nothing. RAM and special
  /// pages alike: a special page's frame stays with the hypervisor's reference.
  public mutating func release(_ gfn: UInt64, order: Int) throws(Failure) {
    let count = 1 << order
    guard gfn & UInt64(count - 1) == 0, gfn + UInt64(count) <= NestedPageTable.frameLimit else { throw .outOfRange }
    for i in 0..<UInt64(count) {
      guard let found = table.lookup(gfn + i) else { throw .notMapped }
      if found.kind == .grant { throw .grantMapped }
    }
    if order == 9, unmapLarge(gfn) {
      forgetPlacements(gfn, count: 512)
      return
    }
    try prepare(gfn)                  // one split at most, before anything changes
    for i in 0..<UInt64(count) { try unmap(gfn + i) }
    forgetPlacements(gfn, count: UInt64(count))
  }

  /// XENMEM_add_to_physmap(shared_info): puts the domain's shared_info page at `gfn`, made on
  /// first use; what was at `gfn` leaves (RAM is given back, as in Xen), and the page leaves its
  /// old place. Fails before changing a mapping.
  public mutating func placeSharedInfo(at gfn: UInt64) throws(Failure) {
    guard gfn < NestedPageTable.frameLimit else { throw .outOfRange }
    if let old = domain.sharedInfoGFN, old == gfn { return }
    try prepare(gfn)
    if domain.sharedInfoMachine == 0 { domain.sharedInfoMachine = try newHeldFrame(as: .sharedInfo) }
    try place(domain.sharedInfoMachine, at: gfn, leaving: domain.sharedInfoGFN)
    domain.sharedInfoGFN = gfn
  }

  /// Grows the domain's grant table to `count` frames (within `Domain.maxGrantFrames`), each
  /// made zeroed and held; the frames already there stay. Xen's gnttab_grow_table.
  public mutating func growGrantTable(to count: Int) throws(Failure) {
    guard count <= domain.maxGrantFrames else { throw .overQuota }
    while domain.grantFrames.count < count {
      domain.grantFrames.append(try newHeldFrame(as: .grantTable))
      domain.grantFrameGFNs.append(nil)
    }
  }

  /// A ring page the hypervisor shares with the domain (the console's, xenstore's): a fresh
  /// zeroed frame, held (its backend keeps the machine address), mapped at `gfn` as a special
  /// page. The caller records it with that reference before the lock is dropped; the guest may
  /// give the page back, and the frame stays until the backend drops the hold.
  public mutating func newRingPage(at gfn: UInt64, as use: FrameUse) throws(Failure) -> UInt64 {
    let frame = try newHeldFrame(as: use)
    do throws(Failure) { try map(gfn, frame, .special) } catch {
      dropHold(frame)
      throw error
    }
    return frame
  }

  /// A fresh zeroed frame of the domain's, made for it by the hypervisor (shared_info, a grant
  /// table frame), with the hypervisor's reference on it; the caller records it with that
  /// reference before the lock is dropped.
  private func newHeldFrame(as use: FrameUse) throws(Failure) -> UInt64 {
    guard let frame = newFrames(order: 0, as: use) else { throw .noMemory }
    guard hold(frame: frame) else { discardFrames(frame, count: 1); throw .notOwned }
    return frame
  }

  /// XENMEM_add_to_physmap(grant_table): puts grant frame `index` at `gfn`, growing the table
  /// to it first, as Xen does; what was at `gfn` leaves, and the frame leaves its old place.
  /// Linux places them above its RAM, in guest-physical space that is not RAM.
  public mutating func placeGrantFrame(_ index: Int, at gfn: UInt64) throws(Failure) {
    guard gfn < NestedPageTable.frameLimit else { throw .outOfRange }
    guard index >= 0, index < domain.maxGrantFrames else { throw .overQuota }
    try prepare(gfn)
    try growGrantTable(to: index + 1)
    let frame = domain.grantFrames[index]
    if domain.grantFrameGFNs[index] == gfn, table.lookup(gfn)?.frame == frame { return }
    try place(frame, at: gfn, leaving: domain.grantFrameGFNs[index])
    domain.grantFrameGFNs[index] = gfn
  }

  /// Maps the hypervisor's `frame` at `gfn` (its tables prepared): what was there leaves (RAM is
  /// given back; a placed page forgets it was there), and the frame leaves `previous`, if the
  /// guest did not give that page back (and put something else there) meanwhile.
  private mutating func place(_ frame: UInt64, at gfn: UInt64, leaving previous: UInt64?) throws(Failure) {
    try unmap(gfn)
    forgetPlacements(gfn, count: 1)
    try map(gfn, frame, .special)
    if let previous, previous != gfn, table.lookup(previous)?.frame == frame { try unmap(previous) }
  }

  /// Pages the hypervisor made that were placed in `gfn..<gfn+count` are there no more.
  private func forgetPlacements(_ gfn: UInt64, count: UInt64) {
    if let shared = domain.sharedInfoGFN, shared >= gfn, shared - gfn < count { domain.sharedInfoGFN = nil }
    for i in domain.grantFrameGFNs.indices {
      if let placed = domain.grantFrameGFNs[i], placed >= gfn, placed - gfn < count { domain.grantFrameGFNs[i] = nil }
    }
  }

  /// The end of a domain's memory: drops the hypervisor's holds (shared_info, the console ring,
  /// each vcpu_info, the grant table, the FIFO event pages) and clears the fields that recorded them, then frees the
  /// p2m (`destroy`).
  /// Returns the frames freed.
  public func destroyWithHolds() -> Int {
    let before = domain.framesInUse
    dropHold(domain.sharedInfoMachine)
    domain.sharedInfoMachine = 0
    dropHold(domain.consoleRingFrame)
    domain.consoleRingFrame = 0
    for vcpu in domain.vcpus {
      dropHold(vcpu.vcpuInfoFrame)
      vcpu.vcpuInfoFrame = 0
    }
    for frame in domain.grantFrames { dropHold(frame) }
    domain.grantFrames = []
    for frame in domain.eventFrames { dropHold(frame) }
    domain.eventFrames = []
    domain.grantFrameGFNs = []
    _ = destroy()
    return before - domain.framesInUse
  }

  /// Frees every frame and table of a p2m nobody runs on any more: the domain's vcpus are off
  /// every pcpu for good, and a pcpu flushes before it runs the next vcpu. Returns the frames
  /// freed (those the hypervisor still holds go with `P2M.dropHold(_:)`).
  public func destroy() -> Int {
    let domain = self.domain
    var freed = 0
    var tables: [UInt64] = []
    table.walk(leaf: { _, machine, level, kind in
      // A grant mapping's reference is its maptrack entry's, dropped before this
      // (`GrantTables.domainDestroyed`).
      guard kind != .grant else { return }
      let frames = level == 0 ? 1 : 512
      for i in 0..<UInt64(frames) where Self.put(machine + i * 4096, of: domain) { freed += 1 }
    }, table: { page, _ in tables.append(page) })
    for page in tables {
      FrameTable.setTableEntries(page, 0)
      if Frames.release(page) {
        freed += 1
        domain.framesInUse -= 1
        domain.p2mTablePages -= 1
      }
    }
    domain.p2mRoot = 0
    NestedPageTable.changed()
    return freed
  }

  /// Drops a reference; frees the frame when it was the last. True if freed.
  static func put(_ frame: UInt64, of domain: Domain) -> Bool {
    switch FrameTable.put(frame) {
    case .stillReferenced:
      return false
    case .lastReference:
      guard Frames.release(frame) else { return false }
      domain.framesInUse -= 1
      return true
    case .notReferenced:
      Log.error("p2m: domain \(domain.id) dropped a reference it did not hold on \(hex(frame))")
      return false
    }
  }

  /// After the flush: drops what this change retired.
  func finish() {
    var kept: [(ticket: UInt32, frame: UInt64)] = []
    for (ticket, address) in domain.p2mRetired {
      guard ticket == self.ticket else { kept.append((ticket: ticket, frame: address)); continue }
      if FrameTable.record(address)?.use == .p2mTable {
        if Frames.release(address) {
          domain.framesInUse -= 1
          domain.p2mTablePages -= 1
        }
      } else {
        _ = Self.put(address, of: domain)
      }
    }
    domain.p2mRetired = kept
  }
}

extension Domain {
  /// Runs `body` on the domain's p2m with its lock held; then, if anything left the p2m, waits
  /// (without the lock) until no vcpu can still reach it and drops it. `caller` is the vcpu
  /// whose hypercall this is (nil while building or destroying).
  @_optimize(speed)
  public func changeP2M<R>(by caller: VCPU?, _ body: (inout P2M) -> R) -> R {
    p2mLock.lock()
    p2mTicket &+= 1
    var p2m = P2M(self, ticket: p2mTicket)
    let result = body(&p2m)
    let (flushOwed, retiredAny) = (p2m.flushOwed, p2m.retiredAny)
    p2mLock.unlock()
    if flushOwed {
      unsafe P2M.flushTranslations?(self, caller)
      // A grant unmap retires nothing: no second hold of the lock (about 40 instructions).
      if retiredAny {
        p2mLock.lock()
        p2m.finish()
        p2mLock.unlock()
      }
    }
    return result
  }

}
