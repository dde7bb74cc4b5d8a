import XenABI
import XenPublic

/// Grant mappings and copies: one domain reaching another's frame by grant reference
/// (GNTTABOP_map_grant_ref, unmap_grant_ref, copy), as Xen offers them to a PVH guest
/// (xen/common/grant_table.c, xen/arch/x86/hvm/grant_table.c). docs/grant-tables.md follows one
/// map and one unmap through this file.
///
/// Three records, all under `lock`:
/// - the granter's *grant entries* (`grant_entry_v1`, in its grant table frames): the guest
///   writes them; the hypervisor sets GTF_reading / GTF_writing in an entry's flags while the
///   grant is in use, with a compare-and-exchange, as the granter may race to revoke it;
/// - the granter's *active entries* (one 8-byte word per ref, in hypervisor frames:
///   `Domain.grantActiveFrames`): how many read-only and writable pins the ref has and for
///   which domain, so several maps of one ref work and the flags clear only when the last goes;
/// - the mapper's *maptrack* (16-byte entries, in hypervisor frames: `Domain.maptrackFrames`):
///   one per mapping, the handle being its index. Each entry holds one reference on the mapped
///   frame (the p2m's grant leaf holds none), taken when it is made and dropped only after the
///   leaf is out of the p2m and the mapper's TLBs are flushed.
///
/// A granter that ends while its frames are mapped elsewhere keeps its active entries and the
/// mapped frames (still referenced, owned by a domain that no longer runs) until the last
/// unmap; `pinnedGranters` keeps it findable by id until then, and its id is not given out
/// again (`Domains.holdID(_:)`).
///
/// Lock order: `lock`, then any domain's `p2mLock` (two at once in id order), then `Frames`';
/// `Domains.registry` is innermost.
/// Nothing waits for a TLB flush while holding `lock`: the one change that flushes (an unmap)
/// is made between two holds of it.
public enum GrantTables {
  public static let lock = SpinLock()
  /// The end of the maptrack's free list.
  public static let noEntry = UInt32.max
  /// Xen's MAPTRACK_PER_PAGE: 4096 / sizeof(struct grant_mapping).
  public static let maptrackEntriesPerFrame = 256
  static let activeEntriesPerFrame = 512
  /// The most pins of one kind (read-only, writable) a ref may have: a 16-bit count each.
  static let maximumPins: UInt64 = 0xFFFF
  /// Xen's _set_status_v1 bound: the first compare-and-exchange and four retries.
  static let statusRetries = 4
  /// GTF_sub_page (version 2's sub-page grants): a map refuses an entry with it.
  static let subPage: UInt16 = 1 << 8

  /// Domains whose refs were pinned (strong references; `Domain.grantPinned`), found here by
  /// id when a mapping goes, also after they ended: a live one from its first pin to its end,
  /// an ended one until its last pin goes. Only touched with `lock` held: each use is marked
  /// `unsafe` for that reason.
  nonisolated(unsafe) static var pinnedGranters: [Domain] = []

  // MARK: - Map

  /// GNTTABOP_map_grant_ref for one element: maps `request.ref` of domain `request.dom` (the
  /// caller's own when it names itself, else what `lookup` finds; nil: no such domain) at
  /// `request.host_addr` in the caller's p2m. Returns the status and the handle.
  public static func map(_ request: gnttab_map_grant_ref, by vcpu: VCPU, lookup: (UInt16) -> Domain?) -> (XenABI.GrantStatus, UInt32) {
    // The mapper borrowed from its vcpu, which keeps it: no retain and release. A grant of its
    // own is mapped with the same borrowed reference (the caller read its domain twice, each a
    // retain and a release).
    unsafe Unmanaged.passUnretained(vcpu.domain)._withUnsafeGuaranteedRef { mapper in   // unsafe: see above
      if Hypercalls.isSelf(request.dom, mapper) { return map(request, by: vcpu, mapper: mapper, granter: mapper) }
      // No such domain: refused as Xen does, after the flags. (The granter is not optional
      // below: a binding of an optional parameter there was a retain and a release.)
      guard let granter = lookup(request.dom) else { return (refusal(flags: request.flags) ?? .badDomain, 0) }
      return map(request, by: vcpu, mapper: mapper, granter: granter)
    }
  }

  /// Xen's map_grant_ref: neither a host nor a device map is no map at all; an HVM/PVH mapper
  /// may make only host maps (create_grant_p2m_mapping), read-only or not.
  private static func refusal(flags: UInt32) -> XenABI.GrantStatus? {
    guard flags & (XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapDevice) != 0 else { return .badGrantRef }
    guard flags & ~XenABI.GrantLayout.mapReadOnly == XenABI.GrantLayout.mapHost else { return .generalError }
    return nil
  }

  /// Optimized for speed, as unmap, copy, pin, unpin and release, not size as the rest of the
  /// image: the grant paths (docs/grant-tables.md, "What it costs").
  @_optimize(speed)
  private static func map(_ request: gnttab_map_grant_ref, by vcpu: VCPU, mapper: Domain, granter: Domain) -> (XenABI.GrantStatus, UInt32) {
    let flags = request.flags
    if let refused = refusal(flags: flags) { return (refused, 0) }
    let readOnly = flags & XenABI.GrantLayout.mapReadOnly != 0
    let gfn = request.host_addr >> 12
    guard gfn < NestedPageTable.frameLimit else { return (.generalError, 0) }

    lock.lock()
    defer { lock.unlock() }
    guard !mapper.grantsClosed else { return (.generalError, 0) }
    guard let handle = newMaptrackEntry(mapper) else { return (.noSpace, 0) }

    granter.p2mLock.lock()
    var frame: UInt64 = 0
    var status = pin(granter, ref: request.ref, for: mapper.id, readOnly: readOnly, map: true)
    if status == .okay {
      if let found = granterFrame(granter, ref: request.ref), FrameTable.get(found, owner: granter.id) {
        frame = found
      } else {
        unpin(granter, ref: request.ref, readOnly: readOnly)
        status = .generalError
      }
    }
    granter.p2mLock.unlock()
    guard status == .okay else {
      freeMaptrackEntry(mapper, handle)
      return (status, 0)
    }

    // Never retires anything, so never waits for a flush while `lock` is held.
    let inserted = mapper.changeP2M(by: vcpu) { p2m -> Bool in
      do throws(P2M.Failure) { try p2m.mapGrant(gfn, frame, writable: !readOnly); return true } catch { return false }
    }
    guard inserted else {
      granter.p2mLock.lock()
      _ = P2M.put(frame, of: granter)
      unpin(granter, ref: request.ref, readOnly: readOnly)
      granter.p2mLock.unlock()
      freeMaptrackEntry(mapper, handle)
      return (.generalError, 0)
    }
    writeMaptrack(mapper, handle, MaptrackEntry(gfn: gfn, granter: granter.id, ref: request.ref, frame: frame, readOnly: readOnly))
    return (.okay, handle)
  }

  /// The machine frame behind `ref`'s entry: the granter's RAM (its p2m) at the frame the entry
  /// names, read once; nil if that is not RAM. With the granter's `p2mLock` held.
  /// Optimized for speed, as the other steps of a map (`map`).
  @_optimize(speed)
  private static func granterFrame(_ granter: Domain, ref: UInt32) -> UInt64? {
    let gfn = UInt64(SharedWords.load32(at: grantEntry(granter, ref) + 4))
    guard let (frame, kind) = NestedPageTable(root: granter.p2mRoot).lookup(gfn), kind == .ram else { return nil }
    return frame
  }

  // MARK: - Unmap

  /// GNTTABOP_unmap_grant_ref for one element: takes mapping `handle` of the caller out of its
  /// p2m (at `hostAddress`, which must be where it was mapped), flushes the caller's TLBs, and
  /// only then drops the frame's reference and the pin.
  @_optimize(speed)
  public static func unmap(handle: UInt32, hostAddress: UInt64, by vcpu: VCPU) -> XenABI.GrantStatus {
    let mapper = unsafe vcpu.domain
    lock.lock()
    guard let slot = maptrackSlot(mapper, handle) else {
      lock.unlock()
      return .badHandle
    }
    let first = FrameMemory.read64(slot)
    let entry = MaptrackEntry(words: (first, FrameMemory.read64(slot + 8)))
    guard entry.inUse, !entry.unmapping else {
      lock.unlock()
      return .badHandle
    }
    guard hostAddress >> 12 == entry.gfn else {
      lock.unlock()
      return .generalError
    }
    // A second unmap of it now finds no handle. Only the flag's bit changes: the entry is
    // not encoded again.
    FrameMemory.write64(slot, first | MaptrackEntry.unmappingBit)
    lock.unlock()

    // The flush: until it is done a vcpu of the mapper may still reach the frame.
    let removed = mapper.changeP2M(by: vcpu) { $0.unmapGrant(entry.gfn, entry.frame, caller: vcpu) }
    guard removed else {
      // Only this path takes a grant leaf out, so this is a hypervisor bug: the reference
      // stays (a leak until the domain's end, not a frame freed while something may map it).
      Log.error("grant: domain \(mapper.id)'s mapping \(handle) was not in its p2m at \(hex(entry.gfn))")
      return .generalError
    }
    lock.withLock { release(mapper, handle, entry) }
    return .okay
  }

  /// Drops mapping `handle`'s reference and pin and frees its entry. With `lock` held.
  @_optimize(speed)
  private static func release(_ mapper: Domain, _ handle: UInt32, _ entry: MaptrackEntry) {
    if let granter = unsafe pinnedGranters.first(where: { $0.id == entry.granter }) {
      granter.p2mLock.lock()
      _ = P2M.put(entry.frame, of: granter)
      unpin(granter, ref: entry.ref, readOnly: entry.readOnly)
      granter.p2mLock.unlock()
    } else {
      Log.error("grant: domain \(mapper.id)'s mapping \(handle) names domain \(entry.granter), which holds no pin")
    }
    freeMaptrackEntry(mapper, handle)
  }

  // MARK: - Copy

  /// One side of a copy: the domain, its frame and the range in it, and the ref pinned for it.
  private struct CopySide {
    let domain: Domain
    let gfn: UInt64
    let ref: UInt32?
    let offset: Int
  }

  /// GNTTABOP_copy for one element. `lookup` finds a granter by id. Each side is a grant
  /// reference (checked as a map is, read-only for the source) or, with DOMID_SELF only, the
  /// caller's own guest frame. The refs are pinned (GTF_reading / GTF_writing set) around the
  /// copy, and the copy itself runs with both domains' p2m locks held, so neither frame can
  /// leave its p2m (nor be freed) until it is done.
  @_optimize(speed)
  public static func copy(_ op: gnttab_copy, by vcpu: VCPU, lookup: (UInt16) -> Domain?) -> XenABI.GrantStatus {
    guard op.len != 0 else { return .okay }             // as Xen: nothing to copy, nothing checked
    let caller = unsafe vcpu.domain
    let sourceIsGrant = op.flags & XenABI.GrantLayout.copySourceGrantRef != 0
    let destinationIsGrant = op.flags & XenABI.GrantLayout.copyDestinationGrantRef != 0
    // Xen's gnttab_copy_lock_domain: only DOMID_SELF may name a frame rather than a grant.
    var status = XenABI.GrantStatus.okay
    func domain(_ pointer: gnttab_copy_ptr, isGrant: Bool) -> Domain? {
      guard isGrant || pointer.domid == XenABI.DomainID.selfDomain else { status = .permissionDenied; return nil }
      if pointer.domid == XenABI.DomainID.selfDomain || pointer.domid == caller.id { return caller }
      guard let found = lookup(pointer.domid) else { status = .badDomain; return nil }
      return found
    }
    guard let source = domain(op.source, isGrant: sourceIsGrant),
          let destination = domain(op.dest, isGrant: destinationIsGrant) else { return status }
    let length = Int(op.len)
    guard Int(op.source.offset) + length <= 4096, Int(op.dest.offset) + length <= 4096 else { return .badCopyArgument }

    lock.lock()
    defer { lock.unlock() }
    guard !caller.grantsClosed else { return .generalError }
    // Pins a grant side; a gfn side names the caller's own frame. The side's C union is read as
    // the member the op's flags name (`isGrant`), hence `unsafe`.
    func claim(_ domain: Domain, _ pointer: gnttab_copy_ptr, isGrant: Bool, readOnly: Bool) -> CopySide? {
      guard isGrant else { return unsafe CopySide(domain: domain, gfn: pointer.u.gmfn, ref: nil, offset: Int(pointer.offset)) }
      let ref = unsafe pointer.u.ref
      domain.p2mLock.lock()
      defer { domain.p2mLock.unlock() }
      status = pin(domain, ref: ref, for: caller.id, readOnly: readOnly, map: false)
      guard status == .okay else { return nil }
      let gfn = UInt64(SharedWords.load32(at: grantEntry(domain, ref) + 4))
      return CopySide(domain: domain, gfn: gfn, ref: ref, offset: Int(pointer.offset))
    }
    func unclaim(_ side: CopySide, readOnly: Bool) {
      guard let ref = side.ref else { return }
      side.domain.p2mLock.withLock { unpin(side.domain, ref: ref, readOnly: readOnly) }
    }
    guard let from = claim(source, op.source, isGrant: sourceIsGrant, readOnly: true) else { return status }
    guard let to = claim(destination, op.dest, isGrant: destinationIsGrant, readOnly: false) else {
      unclaim(from, readOnly: true)
      return status
    }

    // Both p2m locks, in id order (one if both sides are one domain's).
    let first = from.domain.id <= to.domain.id ? from.domain : to.domain
    let second = first === from.domain ? to.domain : from.domain
    first.p2mLock.lock()
    if second !== first { second.p2mLock.lock() }
    status = .generalError
    if let sourceFrame = ramFrame(from), let destinationFrame = ramFrame(to) {
      FrameMemory.copy(from: sourceFrame + UInt64(from.offset), to: destinationFrame + UInt64(to.offset), count: length)
      status = .okay
    }
    if second !== first { second.p2mLock.unlock() }
    first.p2mLock.unlock()
    unclaim(to, readOnly: false)
    unclaim(from, readOnly: true)
    return status
  }

  /// The RAM frame at the side's gfn (Xen's get_paged_frame: RAM only, not a grant mapping or
  /// a page the hypervisor made). With the domain's `p2mLock` held.
  private static func ramFrame(_ side: CopySide) -> UInt64? {
    guard side.gfn < NestedPageTable.frameLimit,
          let (frame, kind) = NestedPageTable(root: side.domain.p2mRoot).lookup(side.gfn), kind == .ram else { return nil }
    return frame
  }

  // MARK: - A domain's end

  /// The grant side of destroying `domain` (Xen's gnttab_release_mappings and
  /// grant_table_destroy): its mappings of others' frames are dropped, then `destroyMemory`
  /// frees its p2m and its grant table; the active entries of its own refs stay while others
  /// still map them. All under `lock`, so the isolation check never sees half of it.
  public static func domainDestroyed<R>(_ domain: Domain, _ destroyMemory: () -> R) -> R {
    lock.lock()
    defer { lock.unlock() }
    domain.grantsClosed = true
    var released = 0
    for handle in 0..<UInt32(domain.maptrackFrames.count * maptrackEntriesPerFrame) {
      if let entry = maptrackEntry(domain, handle), entry.inUse {
        release(domain, handle, entry)
        released += 1
      }
    }
    if released > 0 { Log.info("domain \(domain.id): \(released) grant mappings released") }
    for page in domain.maptrackFrames { Frames.release(page) }
    domain.maptrackFrames = []
    domain.maptrackFreeHead = noEntry
    let result = destroyMemory()
    if domain.grantPins == 0 {
      if domain.grantPinned { forget(domain) }
      freeActiveFrames(domain)
    } else {
      domain.grantsOutlive = true
      Domains.holdID(domain.id)
      Log.info("domain \(domain.id): the frames other domains map stay until they unmap them (\(domain.grantPins) mappings and copies)")
    }
    return result
  }

  private static func freeActiveFrames(_ domain: Domain) {
    for page in domain.grantActiveFrames { Frames.release(page) }
    domain.grantActiveFrames = []
  }

  // MARK: - Pins (active entries) and the granter's flags

  /// Where `ref`'s `grant_entry_v1` is (the ref must be below the table's entries).
  private static func grantEntry(_ granter: Domain, _ ref: UInt32) -> UInt64 {
    granter.grantFrames[Int(ref) / activeEntriesPerFrame] + UInt64(Int(ref) % activeEntriesPerFrame) * 8
  }

  /// `ref`'s active entry word, making its frame if `create`; nil without memory.
  private static func activeEntry(_ granter: Domain, _ ref: UInt32, create: Bool) -> UInt64? {
    let index = Int(ref) / activeEntriesPerFrame
    while create && granter.grantActiveFrames.count <= index {
      guard let page = Frames.allocate(order: 0) else { return nil }
      FrameMemory.zero(page, count: 4096)
      granter.grantActiveFrames.append(page)
    }
    guard index < granter.grantActiveFrames.count else { return nil }
    return granter.grantActiveFrames[index] + UInt64(Int(ref) % activeEntriesPerFrame) * 8
  }

  /// One more pin of `ref` for domain `mapper` (Xen's map_grant_ref / acquire_grant_for_copy up
  /// to the frame): the ref must exist; when the ref is not pinned yet, its entry must permit
  /// access to `mapper` (and, for a map, not be a sub-page grant); a writable pin needs an entry
  /// without GTF_readonly. GTF_reading (and GTF_writing) are set in the entry first. With `lock`
  /// and the granter's `p2mLock` held.
  @_optimize(speed)
  static func pin(_ granter: Domain, ref: UInt32, for mapper: UInt16, readOnly: Bool, map: Bool) -> XenABI.GrantStatus {
    guard !granter.grantsClosed else { return .generalError }
    guard UInt64(ref) < UInt64(granter.grantFrames.count) * UInt64(activeEntriesPerFrame) else { return .badGrantRef }
    guard let active = activeEntry(granter, ref, create: true) else { return .generalError }
    var pins = Pins(word: FrameMemory.read64(active))
    if pins.total > 0 && pins.holder != mapper { return .generalError }
    if (readOnly ? pins.readers : pins.writers) >= maximumPins { return .generalError }
    if pins.total == 0 || (!readOnly && pins.writers == 0) {
      let status = setStatus(grantEntry(granter, ref), for: mapper, readOnly: readOnly, checkEntry: pins.total == 0, map: map)
      guard status == .okay else { return status }
    }
    if readOnly { pins.readers += 1 } else { pins.writers += 1 }
    pins.holder = mapper
    FrameMemory.write64(active, pins.word)
    granter.grantPins += 1
    if !granter.grantPinned {
      granter.grantPinned = true
      unsafe pinnedGranters.append(granter)
    }
    return .okay
  }

  /// Xen's _set_status_v1: sets GTF_reading (and GTF_writing) in the shared entry with a
  /// compare-and-exchange on its flags and domid together, so the granter's own change (a
  /// revoke: flags to 0) either comes first and is seen, or fails. A granter that keeps
  /// changing the entry gets a general error after `statusRetries` retries.
  /// (`exchange` is the compare-and-exchange; tests give one that lets the granter race.)
  static func setStatus(_ entry: UInt64, for mapper: UInt16, readOnly: Bool, checkEntry: Bool, map: Bool,
                        exchange: (UInt64, UInt32, UInt32) -> UInt32 = { SharedWords.compareExchange32(at: $0, expected: $1, desired: $2) }) -> XenABI.GrantStatus {
    let mask = XenABI.GrantLayout.typeMask | (map ? subPage : 0)
    var combined = SharedWords.load32(at: entry)
    var retries = 0
    while true {
      let flags = UInt16(truncatingIfNeeded: combined)
      let domid = UInt16(truncatingIfNeeded: combined >> 16)
      if checkEntry && (flags & mask != XenABI.GrantLayout.typePermitAccess || domid != mapper) { return .generalError }
      var newFlags = flags | XenABI.GrantLayout.reading
      if !readOnly {
        // Xen answers a writable use of a read-only grant with a general error too.
        if flags & XenABI.GrantLayout.readOnly != 0 { return .generalError }
        newFlags |= XenABI.GrantLayout.writing
      }
      let desired = (combined & 0xFFFF_0000) | UInt32(newFlags)
      let previous = exchange(entry, combined, desired)
      if previous == combined { return .okay }
      if retries == statusRetries { return .generalError }
      retries += 1
      combined = previous
    }
  }

  /// Drops a pin of `ref`: GTF_writing clears when no writable pin is left, GTF_reading when no
  /// pin is (Xen's unmap_common_complete); a granter that ended has no entries left to clear.
  /// With `lock` and the granter's `p2mLock` held.
  @_optimize(speed)
  static func unpin(_ granter: Domain, ref: UInt32, readOnly: Bool) {
    guard let active = activeEntry(granter, ref, create: false) else { return }
    var pins = Pins(word: FrameMemory.read64(active))
    if readOnly { pins.readers -= min(pins.readers, 1) } else { pins.writers -= min(pins.writers, 1) }
    if pins.total == 0 { pins.holder = 0 }
    FrameMemory.write64(active, pins.word)
    if !granter.grantsClosed, UInt64(ref) < UInt64(granter.grantFrames.count) * UInt64(activeEntriesPerFrame) {
      // Both flags in one atomic clear when the last pin goes (the granter sees them go together).
      var clear: UInt16 = 0
      if pins.writers == 0 { clear |= XenABI.GrantLayout.writing }
      if pins.total == 0 { clear |= XenABI.GrantLayout.reading }
      if clear != 0 { SharedWords.clearBits16(clear, at: grantEntry(granter, ref)) }
    }
    granter.grantPins -= 1
    // A live granter stays listed (a map that pins it again finds it there); one destroyed
    // while others mapped its frames goes with its last pin.
    guard granter.grantPins == 0, granter.grantsOutlive else { return }
    granter.grantsOutlive = false
    forget(granter)
    freeActiveFrames(granter)
    Domains.releaseID(granter.id)
    Log.info("domain \(granter.id): its last mapped grant is unmapped: every frame returned")
  }

  private static func forget(_ granter: Domain) {
    granter.grantPinned = false
    unsafe pinnedGranters.removeAll { $0 === granter }
  }

  /// An active entry: read-only and writable pins, and the domain they are for.
  struct Pins {
    var readers: UInt64
    var writers: UInt64
    var holder: UInt16
    init(word: UInt64) {
      readers = word & 0xFFFF
      writers = (word >> 16) & 0xFFFF
      holder = UInt16(truncatingIfNeeded: word >> 32)
    }
    var total: UInt64 { readers + writers }
    var word: UInt64 { readers | writers << 16 | UInt64(holder) << 32 }
  }

  // MARK: - The maptrack

  /// One mapping: where (the mapper's gfn), of what (granter, ref, machine frame), how.
  struct MaptrackEntry: Equatable {
    var gfn: UInt64
    var granter: UInt16
    var ref: UInt32
    var frame: UInt64
    var readOnly: Bool
    var inUse = true
    var unmapping = false

    init(gfn: UInt64, granter: UInt16, ref: UInt32, frame: UInt64, readOnly: Bool) {
      self.gfn = gfn
      self.granter = granter
      self.ref = ref
      self.frame = frame
      self.readOnly = readOnly
    }

    // Word 0: gfn (bits 0-35), granter (36-51), unmapping (61), read-only (62), in use (63).
    // Word 1: ref (bits 0-23: a ref is below the table's entries, at most 4096 * 512 = 2^21),
    // machine frame number (24-63: 52-bit machine addresses); the next free entry when free.
    static let unmappingBit: UInt64 = 1 << 61

    init(words: (UInt64, UInt64)) {
      gfn = words.0 & (NestedPageTable.frameLimit - 1)
      granter = UInt16(truncatingIfNeeded: words.0 >> 36)
      unmapping = words.0 & Self.unmappingBit != 0
      readOnly = words.0 & (1 << 62) != 0
      inUse = words.0 & (1 << 63) != 0
      ref = UInt32(truncatingIfNeeded: words.1 & 0xFF_FFFF)
      frame = (words.1 >> 24) << 12
    }

    var words: (UInt64, UInt64) {
      var first = gfn | UInt64(granter) << 36
      if unmapping { first |= Self.unmappingBit }
      if readOnly { first |= 1 << 62 }
      if inUse { first |= 1 << 63 }
      return (first, UInt64(ref & 0xFF_FFFF) | (frame >> 12) << 24)
    }
  }

  private static func maptrackSlot(_ domain: Domain, _ handle: UInt32) -> UInt64? {
    let index = Int(handle / UInt32(maptrackEntriesPerFrame))
    guard index < domain.maptrackFrames.count else { return nil }
    return domain.maptrackFrames[index] + UInt64(handle % UInt32(maptrackEntriesPerFrame)) * 16
  }

  /// Entry `handle` of the domain's maptrack (free or not); nil beyond it.
  static func maptrackEntry(_ domain: Domain, _ handle: UInt32) -> MaptrackEntry? {
    guard let slot = maptrackSlot(domain, handle) else { return nil }
    return MaptrackEntry(words: (FrameMemory.read64(slot), FrameMemory.read64(slot + 8)))
  }

  private static func writeMaptrack(_ domain: Domain, _ handle: UInt32, _ entry: MaptrackEntry) {
    guard let slot = maptrackSlot(domain, handle) else { return }
    let (first, second) = entry.words
    FrameMemory.write64(slot, first)
    FrameMemory.write64(slot + 8, second)
  }

  /// A free entry, growing the maptrack by a frame when none is left (up to
  /// `Domain.maxMaptrackFrames`); nil when it is full or memory is short (Xen: GNTST_no_space).
  /// Optimized for speed, as the other steps of a map (`map`).
  @_optimize(speed)
  private static func newMaptrackEntry(_ domain: Domain) -> UInt32? {
    if domain.maptrackFreeHead == noEntry {
      guard domain.maptrackFrames.count < domain.maxMaptrackFrames, let page = Frames.allocate(order: 0) else { return nil }
      let base = UInt32(domain.maptrackFrames.count * maptrackEntriesPerFrame)
      for i in 0..<UInt32(maptrackEntriesPerFrame) {
        let next = i + 1 < UInt32(maptrackEntriesPerFrame) ? base + i + 1 : noEntry
        FrameMemory.write64(page + UInt64(i) * 16, 0)
        FrameMemory.write64(page + UInt64(i) * 16 + 8, UInt64(next))
      }
      domain.maptrackFrames.append(page)
      domain.maptrackFreeHead = base
    }
    let handle = domain.maptrackFreeHead
    guard let slot = maptrackSlot(domain, handle) else { return nil }
    domain.maptrackFreeHead = UInt32(truncatingIfNeeded: FrameMemory.read64(slot + 8))
    FrameMemory.write64(slot + 8, 0)
    return handle
  }

  /// Optimized for speed, as the other steps of an unmap (`map`).
  @_optimize(speed)
  private static func freeMaptrackEntry(_ domain: Domain, _ handle: UInt32) {
    guard let slot = maptrackSlot(domain, handle) else { return }
    FrameMemory.write64(slot, 0)
    FrameMemory.write64(slot + 8, UInt64(domain.maptrackFreeHead))
    domain.maptrackFreeHead = handle
  }

  /// The domain's mappings in use, for the isolation check. With `lock` held.
  static func mappings(of domain: Domain) -> [MaptrackEntry] {
    var found: [MaptrackEntry] = []
    for handle in 0..<UInt32(domain.maptrackFrames.count * maptrackEntriesPerFrame) {
      if let entry = maptrackEntry(domain, handle), entry.inUse { found.append(entry) }
    }
    return found
  }

  /// Ids of domains that ended while others still map their frames. With `lock` held.
  static var endedGranterIDs: [UInt16] { unsafe pinnedGranters.filter { $0.grantsOutlive }.map { $0.id } }
}
