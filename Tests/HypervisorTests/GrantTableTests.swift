import Testing
import XenABI
import XenPublic

@testable import Hypervisor

/// GNTTABOP_map_grant_ref, unmap_grant_ref and copy on real frames: the granter is a domain
/// with a real p2m and grant table (as in the other P2M tests), the mapper a
/// FakeHypercallEnvironment whose domain has a real p2m too, so every reference, pin and flag
/// is the real one. Part of P2MTests: `Frames` and `FrameTable` are global.
extension P2MTests {
  static let argument: UInt64 = 0xFFFF_8880_0010_0000
  static let granterID: UInt16 = 2
  static let mapperID: UInt16 = 3
  /// The granter's RAM: gfns 0x100...0x103.
  static let granterGFN: UInt64 = 0x100
  /// Where the mapper maps: above its RAM.
  static let mapGFN: UInt64 = 0x8_0000

  struct Grants {
    let granter: Domain
    let env: FakeHypercallEnvironment
    var mapper: Domain { env.domain }
  }

  func makeGrants() throws -> Grants {
    GrantTables.pinnedGranters = []
    let granter = try makeDomain(id: Self.granterID)
    #expect(populate(granter, Self.granterGFN, order: 2) == nil)
    try #require(granter.changeP2M(by: nil) { (try? $0.growGrantTable(to: 1)) != nil })
    let env = FakeHypercallEnvironment(domainID: Self.mapperID)
    env.domain.ramPages = 0
    env.domain.maximumPages = 4096
    env.domain.p2mPoolLimit = 64
    try #require(env.domain.changeP2M(by: nil) { $0.createRoot() })
    #expect(populate(env.domain, 0x10) == nil)
    env.otherDomains[Self.granterID] = granter
    env.map(Self.argument, count: 1 << 16)
    return Grants(granter: granter, env: env)
  }

  /// Destroys both as DomainBuilder.destroy does (mapper first) and checks every frame is back.
  func endGrants(_ grants: Grants, sourceLocation: SourceLocation = #_sourceLocation) {
    expectIsolated([grants.granter, grants.mapper], sourceLocation: sourceLocation)
    for domain in [grants.mapper, grants.granter] {
      _ = GrantTables.domainDestroyed(domain) { domain.changeP2M(by: nil) { $0.destroyWithHolds() } }
    }
    #expect(GrantTables.pinnedGranters.isEmpty, sourceLocation: sourceLocation)
    #expect(Frames.freeFrames == total, "frames lost", sourceLocation: sourceLocation)
  }

  /// Writes grant entry `ref` of `domain`'s table: {flags, domid, frame}.
  func writeGrant(_ domain: Domain, ref: UInt32, flags: UInt16, to domid: UInt16, gfn: UInt32) {
    let entry = domain.grantFrames[Int(ref) / 512] + UInt64(ref % 512) * 8
    FrameMemory.write64(entry, UInt64(flags) | UInt64(domid) << 16 | UInt64(gfn) << 32)
  }

  func grantFlags(_ domain: Domain, ref: UInt32) -> UInt16 {
    UInt16(truncatingIfNeeded: FrameMemory.read64(domain.grantFrames[Int(ref) / 512] + UInt64(ref % 512) * 8))
  }

  func permit(_ grants: Grants, ref: UInt32, gfn: UInt64 = granterGFN, readOnly: Bool = false) {
    writeGrant(grants.granter, ref: ref, flags: XenABI.GrantLayout.typePermitAccess | (readOnly ? XenABI.GrantLayout.readOnly : 0),
               to: Self.mapperID, gfn: UInt32(gfn))
  }

  func mapRequest(ref: UInt32, at gfn: UInt64 = mapGFN, flags: UInt32 = XenABI.GrantLayout.mapHost, dom: UInt16 = granterID) -> gnttab_map_grant_ref {
    var request = gnttab_map_grant_ref()
    request.host_addr = gfn << 12
    request.flags = flags
    request.ref = ref
    request.dom = dom
    request.status = 0x5555
    request.handle = 0xAAAA_AAAA
    request.dev_bus_addr = 0xDEAD
    return request
  }

  func grantOp(_ env: FakeHypercallEnvironment, _ op: XenABI.GrantTableOp, _ argument: UInt64 = argument, count: UInt64 = 1) -> HypercallOutcome {
    Hypercalls.dispatch(HypercallFrame(number: XenABI.Hypercall.grantTableOp.rawValue, UInt64(op.rawValue), argument, count), env)
  }

  func result(_ outcome: HypercallOutcome) -> Int64? {
    if case .result(let value) = outcome { return value }
    return nil
  }

  /// Maps one element; its status and handle.
  func map(_ grants: Grants, _ request: gnttab_map_grant_ref) -> (status: Int16, handle: UInt32) {
    grants.env.store(request.bytes, at: Self.argument)
    #expect(result(grantOp(grants.env, .mapGrantRef)) == 0)
    let out = grants.env.readStructure(gnttab_map_grant_ref.self, at: Self.argument)!
    #expect(out.dev_bus_addr == 0)
    return (out.status, out.handle)
  }

  func unmap(_ grants: Grants, handle: UInt32, at gfn: UInt64 = mapGFN) -> Int16 {
    var request = gnttab_unmap_grant_ref()
    request.host_addr = gfn << 12
    request.handle = handle
    grants.env.store(request.bytes, at: Self.argument)
    #expect(result(grantOp(grants.env, .unmapGrantRef)) == 0)
    return grants.env.readStructure(gnttab_unmap_grant_ref.self, at: Self.argument)!.status
  }

  func granterFrame(_ grants: Grants, _ gfn: UInt64 = granterGFN) -> UInt64 {
    NestedPageTable(root: grants.granter.p2mRoot).lookup(gfn)!.frame
  }

  static let okay = XenABI.GrantStatus.okay.rawValue
  static let generalError = XenABI.GrantStatus.generalError.rawValue

  // MARK: - Map and unmap

  /// A grant mapped: the mapper's p2m maps the granter's frame at host_addr (writable), the
  /// frame has one more reference, the entry says GTF_reading|GTF_writing; unmapped: all of it
  /// is undone, and the handle is free again.
  @Test func mapAndUnmapAGrant() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let frame = granterFrame(grants)
    FrameMemory.write64(frame, 0x1234_5678)
    let (status, handle) = map(grants, mapRequest(ref: 8))
    #expect(status == Self.okay)
    let mapped = try #require(NestedPageTable(root: grants.mapper.p2mRoot).translate(Self.mapGFN << 12))
    #expect(mapped.machine == frame && mapped.writable)
    #expect(FrameMemory.read64(mapped.machine) == 0x1234_5678)
    #expect(FrameTable.record(frame)?.refs == 2)
    #expect(grantFlags(grants.granter, ref: 8) == XenABI.GrantLayout.typePermitAccess | XenABI.GrantLayout.reading | XenABI.GrantLayout.writing)
    expectIsolated([grants.granter, grants.mapper])

    #expect(unmap(grants, handle: handle) == Self.okay)
    #expect(NestedPageTable(root: grants.mapper.p2mRoot).lookup(Self.mapGFN) == nil)
    #expect(FrameTable.record(frame)?.refs == 1)
    #expect(grantFlags(grants.granter, ref: 8) == XenABI.GrantLayout.typePermitAccess)
    // Double unmap: the handle is free now.
    #expect(unmap(grants, handle: handle) == XenABI.GrantStatus.badHandle.rawValue)
    #expect(map(grants, mapRequest(ref: 8)).handle == handle, "the handle is used again")
    endGrants(grants)
  }

  /// An unmap changes one translation, so the p2m generation stays: the caller's caches forget
  /// only what went through the unmapped page, and the domain's other vcpus discard theirs.
  @Test func unmapForgetsOnlyItsPage() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let (status, handle) = map(grants, mapRequest(ref: 8))
    #expect(status == Self.okay)
    let caller = grants.env.vcpu, other = grants.mapper.vcpus[1]
    let frame = granterFrame(grants)
    let version = caller.cacheVersion()
    caller.p2mCache.fill(Self.mapGFN << 12, machine: frame, writable: true, generation: version)
    caller.p2mCache.fill(0x10 << 12, machine: 0x7_7000, writable: true, generation: version)
    let generation = NestedPageTable.generation.load(ordering: .relaxed)
    let discards = other.cacheDiscards.load(ordering: .relaxed)

    #expect(unmap(grants, handle: handle) == Self.okay)
    #expect(NestedPageTable.generation.load(ordering: .relaxed) == generation)
    #expect(caller.cacheVersion() == version)
    #expect(caller.p2mCache.lookup(Self.mapGFN << 12, write: false, generation: version) == nil)
    #expect(caller.p2mCache.lookup(0x10 << 12, write: false, generation: version) == 0x7_7000)
    #expect(other.cacheDiscards.load(ordering: .relaxed) == discards + 1)
    endGrants(grants)
  }

  /// A read-only map maps read-only and sets only GTF_reading; a read-only grant refuses a
  /// writable map (Xen: general error) and takes a read-only one.
  @Test func readOnlyGrants() throws {
    let grants = try makeGrants()
    permit(grants, ref: 9, readOnly: true)
    #expect(map(grants, mapRequest(ref: 9)).status == Self.generalError)
    #expect(grantFlags(grants.granter, ref: 9) == XenABI.GrantLayout.typePermitAccess | XenABI.GrantLayout.readOnly)
    let (status, handle) = map(grants, mapRequest(ref: 9, flags: XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapReadOnly))
    #expect(status == Self.okay)
    #expect(NestedPageTable(root: grants.mapper.p2mRoot).translate(Self.mapGFN << 12)?.writable == false)
    #expect(grantFlags(grants.granter, ref: 9) & XenABI.GrantLayout.writing == 0)
    #expect(grantFlags(grants.granter, ref: 9) & XenABI.GrantLayout.reading != 0)
    #expect(unmap(grants, handle: handle) == Self.okay)
    #expect(grantFlags(grants.granter, ref: 9) & XenABI.GrantLayout.reading == 0)
    endGrants(grants)
  }

  /// Two maps of one ref (one read-only, one writable): GTF_writing clears with the writable
  /// one, GTF_reading only with the last.
  @Test func pinsCountEveryMap() throws {
    let grants = try makeGrants()
    permit(grants, ref: 10)
    let first = map(grants, mapRequest(ref: 10, flags: XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapReadOnly))
    let second = map(grants, mapRequest(ref: 10, at: Self.mapGFN + 1))
    #expect(first.status == Self.okay && second.status == Self.okay)
    #expect(first.handle != second.handle)
    #expect(FrameTable.record(granterFrame(grants))?.refs == 3)
    expectIsolated([grants.granter, grants.mapper])
    #expect(unmap(grants, handle: second.handle, at: Self.mapGFN + 1) == Self.okay)
    #expect(grantFlags(grants.granter, ref: 10) == XenABI.GrantLayout.typePermitAccess | XenABI.GrantLayout.reading)
    #expect(unmap(grants, handle: first.handle) == Self.okay)
    #expect(grantFlags(grants.granter, ref: 10) == XenABI.GrantLayout.typePermitAccess)
    endGrants(grants)
  }

  /// Every refusal of a map, each with Xen's status and nothing changed.
  @Test func mapRefusals() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    // The entry for another domain, not permitting access, or naming a page that is not RAM.
    writeGrant(grants.granter, ref: 11, flags: XenABI.GrantLayout.typePermitAccess, to: 9, gfn: UInt32(Self.granterGFN))
    writeGrant(grants.granter, ref: 12, flags: XenABI.GrantLayout.typeInvalid, to: Self.mapperID, gfn: UInt32(Self.granterGFN))
    writeGrant(grants.granter, ref: 13, flags: XenABI.GrantLayout.typePermitAccess, to: Self.mapperID, gfn: 0x7_0000)
    writeGrant(grants.granter, ref: 14, flags: XenABI.GrantLayout.typePermitAccess | GrantTables.subPage, to: Self.mapperID, gfn: UInt32(Self.granterGFN))
    let before = Frames.freeFrames
    let cases: [(gnttab_map_grant_ref, XenABI.GrantStatus, String)] = [
      (mapRequest(ref: 8, flags: 0), .badGrantRef, "neither host nor device map"),
      (mapRequest(ref: 8, flags: XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapDevice), .generalError, "device map"),
      (mapRequest(ref: 8, flags: XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapApplication), .generalError, "application map"),
      (mapRequest(ref: 8, flags: XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapContainsPTE), .generalError, "contains_pte"),
      (mapRequest(ref: 8, flags: XenABI.GrantLayout.mapHost | 1 << 9), .generalError, "unknown flag"),
      (mapRequest(ref: 8, dom: 44), .badDomain, "no such domain"),
      (mapRequest(ref: 8, dom: XenABI.DomainID.invalid), .badDomain, "DOMID_INVALID"),
      (mapRequest(ref: 512), .badGrantRef, "ref past the table"),
      (mapRequest(ref: .max), .badGrantRef, "ref 2^32-1"),
      (mapRequest(ref: 11), .generalError, "granted to someone else"),
      (mapRequest(ref: 12), .generalError, "not GTF_permit_access"),
      (mapRequest(ref: 13), .generalError, "frame not the granter's RAM"),
      (mapRequest(ref: 14), .generalError, "sub-page grant"),
      (mapRequest(ref: 8, at: 0x10), .generalError, "host_addr on the mapper's RAM"),
      (mapRequest(ref: 8, at: NestedPageTable.frameLimit), .generalError, "host_addr beyond the p2m"),
    ]
    for (request, expected, why) in cases {
      #expect(map(grants, request).status == expected.rawValue, "\(why)")
      #expect(grantFlags(grants.granter, ref: 8) == XenABI.GrantLayout.typePermitAccess, "\(why)")
    }
    #expect(grants.granter.grantPins == 0)
    #expect(FrameTable.record(granterFrame(grants))?.refs == 1)
    #expect(NestedPageTable(root: grants.mapper.p2mRoot).lookup(0x10)?.kind == .ram, "RAM not clobbered")
    #expect(Frames.freeFrames >= before - 3, "only the maptrack and active frames and a p2m table were taken")
    expectIsolated([grants.granter, grants.mapper])
    endGrants(grants)
  }

  /// A granter that changes its entry faster than the hypervisor can set the flags wins: a
  /// general error after Xen's five tries, never a loop. (The race is played by a fake
  /// compare-and-exchange: the entry changes between the read and each exchange.)
  @Test func unstableEntryIsRefused() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let entry = grants.granter.grantFrames[0] + 8 * 8
    // The granter flips GTF_readonly just before each of the hypervisor's exchanges.
    var tries = 0
    let status = GrantTables.setStatus(entry, for: Self.mapperID, readOnly: true, checkEntry: true, map: true) { address, expected, desired in
      tries += 1
      FrameMemory.write64(address, FrameMemory.read64(address) ^ UInt64(XenABI.GrantLayout.readOnly))
      return SharedWords.compareExchange32(at: address, expected: expected, desired: desired)
    }
    #expect(status == .generalError)
    #expect(tries == GrantTables.statusRetries + 1)
    #expect(grants.granter.grantPins == 0)
    endGrants(grants)
  }

  /// The granter revokes (flags to 0) while a mapping exists: nothing the mapper holds
  /// changes, and the flags it clears on unmap leave the revoked entry revoked.
  @Test func revokeWhileMapped() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let (status, handle) = map(grants, mapRequest(ref: 8))
    #expect(status == Self.okay)
    writeGrant(grants.granter, ref: 8, flags: 0, to: 0, gfn: 0)
    // A second map of the pinned ref checks only the pin's domain, as Xen.
    #expect(unmap(grants, handle: handle) == Self.okay)
    #expect(grantFlags(grants.granter, ref: 8) == 0)
    #expect(map(grants, mapRequest(ref: 8)).status == Self.generalError, "revoked")
    endGrants(grants)
  }

  /// Unmap refusals: a handle never given, one past the maptrack, 2^32-1, the wrong host_addr.
  @Test func unmapRefusals() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let (_, handle) = map(grants, mapRequest(ref: 8))
    for bad: UInt32 in [handle + 1, 255, 256, 100_000, .max] {
      #expect(unmap(grants, handle: bad) == XenABI.GrantStatus.badHandle.rawValue, "handle \(bad)")
    }
    #expect(unmap(grants, handle: handle, at: Self.mapGFN + 1) == Self.generalError)
    #expect(NestedPageTable(root: grants.mapper.p2mRoot).lookup(Self.mapGFN)?.kind == .grant)
    // The mapper cannot take the mapping out any other way.
    #expect(release(grants.mapper, Self.mapGFN) == .grantMapped)
    #expect(unmap(grants, handle: handle) == Self.okay)
    endGrants(grants)
  }

  /// The maptrack is bounded: with one frame (256 entries), the 257th map is GNTST_no_space,
  /// and nothing of it stays.
  @Test func maptrackFull() throws {
    let grants = try makeGrants()
    grants.mapper.maxMaptrackFrames = 1
    permit(grants, ref: 8, readOnly: true)
    let readOnly = XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapReadOnly
    var handles: [UInt32] = []
    for i in 0..<UInt64(256) {
      let (status, handle) = map(grants, mapRequest(ref: 8, at: Self.mapGFN + i, flags: readOnly))
      #expect(status == Self.okay)
      handles.append(handle)
    }
    #expect(Set(handles).count == 256)
    #expect(map(grants, mapRequest(ref: 8, at: Self.mapGFN + 256, flags: readOnly)).status == XenABI.GrantStatus.noSpace.rawValue)
    #expect(NestedPageTable(root: grants.mapper.p2mRoot).lookup(Self.mapGFN + 256) == nil)
    #expect(FrameTable.record(granterFrame(grants))?.refs == 257)
    expectIsolated([grants.granter, grants.mapper])
    // The mapper's end drops every mapping (Xen's gnttab_release_mappings).
    endGrants(grants)
  }

  /// A batch: each element gets its own status; a count beyond what one step does ends in a
  /// continuation that moves the argument on; a huge count is -EINVAL, an element that cannot
  /// be read -EFAULT, an array across 2^64 -EFAULT.
  @Test func batchesContinueAndStopSafely() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8, readOnly: true)
    let size = UInt64(gnttab_map_grant_ref.guestSize)
    let steps = GrantTableOp.elementsPerStep
    var bytes: [UInt8] = []
    for i in 0..<(steps + 2) {
      bytes += mapRequest(ref: i == 1 ? 600 : 8, at: Self.mapGFN + i, flags: XenABI.GrantLayout.mapHost | XenABI.GrantLayout.mapReadOnly).bytes
    }
    grants.env.store(bytes, at: Self.argument)
    let outcome = grantOp(grants.env, .mapGrantRef, count: steps + 2)
    guard case .continuation(let frame) = outcome else {
      Issue.record("no continuation")
      return
    }
    #expect(frame.arguments.0 == UInt64(XenABI.GrantTableOp.mapGrantRef.rawValue))
    #expect(frame.arguments.1 == Self.argument + steps * size)
    #expect(frame.arguments.2 == 2)
    #expect(grants.env.readStructure(gnttab_map_grant_ref.self, at: Self.argument)!.status == Self.okay)
    #expect(grants.env.readStructure(gnttab_map_grant_ref.self, at: Self.argument + size)!.status == XenABI.GrantStatus.badGrantRef.rawValue)
    #expect(result(Hypercalls.dispatch(frame, grants.env)) == 0)
    #expect(grants.env.readStructure(gnttab_map_grant_ref.self, at: Self.argument + (steps + 1) * size)!.status == Self.okay)

    #expect(result(grantOp(grants.env, .mapGrantRef, count: 1 << 31)) == -22)
    #expect(result(grantOp(grants.env, .mapGrantRef, count: .max)) == -22)
    #expect(result(grantOp(grants.env, .mapGrantRef, 0xFFFF_8880_0F00_0000)) == -14)
    #expect(result(grantOp(grants.env, .unmapGrantRef, UInt64.max - 8)) == -14)
    #expect(result(grantOp(grants.env, .copy, UInt64.max - 8, count: 2)) == -14)
    // An element at the 2^64 edge: the address of element 1 would wrap.
    #expect(result(grantOp(grants.env, .mapGrantRef, UInt64.max - size + 1, count: 2)) == -14)
    #expect(result(grantOp(grants.env, .copy, Self.argument, count: 0)) == 0)
    endGrants(grants)
  }

  // MARK: - Copy

  func copyRequest(source: (ref: UInt64, domid: UInt16, offset: UInt16), dest: (ref: UInt64, domid: UInt16, offset: UInt16),
                   length: UInt16, flags: UInt16) -> gnttab_copy {
    var op = gnttab_copy()
    op.source.u.gmfn = source.ref
    op.source.domid = source.domid
    op.source.offset = source.offset
    op.dest.u.gmfn = dest.ref
    op.dest.domid = dest.domid
    op.dest.offset = dest.offset
    op.len = length
    op.flags = flags
    op.status = 0x5555
    return op
  }

  func copy(_ grants: Grants, _ op: gnttab_copy) -> Int16 {
    grants.env.store(op.bytes, at: Self.argument)
    #expect(result(grantOp(grants.env, .copy)) == 0)
    return grants.env.readStructure(gnttab_copy.self, at: Self.argument)!.status
  }

  /// Copies both ways between the caller's own frame and a granted one, within the pages; the
  /// flags are back as they were after each.
  @Test func copiesBothWays() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let granted = granterFrame(grants)
    let own = NestedPageTable(root: grants.mapper.p2mRoot).lookup(0x10)!.frame
    FrameMemory.write64(granted + 16, 0x1122_3344_5566_7788)
    let fromGrant = copyRequest(source: (8, Self.granterID, 16), dest: (0x10, XenABI.DomainID.selfDomain, 4088),
                                length: 8, flags: XenABI.GrantLayout.copySourceGrantRef)
    #expect(copy(grants, fromGrant) == Self.okay)
    #expect(FrameMemory.read64(own + 4088) == 0x1122_3344_5566_7788)
    FrameMemory.write64(own, 0xCAFE)
    let toGrant = copyRequest(source: (0x10, XenABI.DomainID.selfDomain, 0), dest: (8, Self.granterID, 4096 - 8),
                              length: 8, flags: XenABI.GrantLayout.copyDestinationGrantRef)
    #expect(copy(grants, toGrant) == Self.okay)
    #expect(FrameMemory.read64(granted + 4088) == 0xCAFE)
    #expect(grantFlags(grants.granter, ref: 8) == XenABI.GrantLayout.typePermitAccess)
    #expect(grants.granter.grantPins == 0)
    endGrants(grants)
  }

  /// Copy refusals, each with Xen's status, nothing copied and no pin left.
  @Test func copyRefusals() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    permit(grants, ref: 9, readOnly: true)
    let own = NestedPageTable(root: grants.mapper.p2mRoot).lookup(0x10)!.frame
    FrameMemory.write64(own, 0xAAAA)
    let selfID = XenABI.DomainID.selfDomain
    let source = XenABI.GrantLayout.copySourceGrantRef
    let dest = XenABI.GrantLayout.copyDestinationGrantRef
    let cases: [(gnttab_copy, XenABI.GrantStatus, String)] = [
      (copyRequest(source: (8, Self.granterID, 1), dest: (0x10, selfID, 0), length: 4096, flags: source), .badCopyArgument, "source past its page"),
      (copyRequest(source: (8, Self.granterID, 0), dest: (0x10, selfID, 4095), length: 2, flags: source), .badCopyArgument, "dest past its page"),
      (copyRequest(source: (8, Self.granterID, 0xFFFF), dest: (0x10, selfID, 0xFFFF), length: 0xFFFF, flags: source), .badCopyArgument, "all at the top"),
      (copyRequest(source: (0x10, Self.mapperID, 0), dest: (8, Self.granterID, 0), length: 8, flags: dest), .permissionDenied, "own frame by id, not DOMID_SELF"),
      (copyRequest(source: (0x100, Self.granterID, 0), dest: (0x10, selfID, 0), length: 8, flags: 0), .permissionDenied, "another's frame by number"),
      (copyRequest(source: (8, 44, 0), dest: (0x10, selfID, 0), length: 8, flags: source), .badDomain, "no such domain"),
      (copyRequest(source: (600, Self.granterID, 0), dest: (0x10, selfID, 0), length: 8, flags: source), .badGrantRef, "ref past the table"),
      (copyRequest(source: (0x10, selfID, 0), dest: (9, Self.granterID, 0), length: 8, flags: dest), .generalError, "write to a read-only grant"),
      (copyRequest(source: (12, Self.granterID, 0), dest: (0x10, selfID, 0), length: 8, flags: source), .generalError, "no grant there"),
      (copyRequest(source: (0x7777, selfID, 0), dest: (8, Self.granterID, 0), length: 8, flags: dest), .generalError, "own frame not RAM"),
      (copyRequest(source: (1 << 40, selfID, 0), dest: (8, Self.granterID, 0), length: 8, flags: dest), .generalError, "own frame number huge"),
    ]
    for (op, expected, why) in cases {
      #expect(copy(grants, op) == expected.rawValue, "\(why)")
      #expect(grants.granter.grantPins == 0, "\(why)")
    }
    #expect(grantFlags(grants.granter, ref: 8) == XenABI.GrantLayout.typePermitAccess)
    #expect(FrameMemory.read64(granterFrame(grants)) == 0)
    // A zero-length copy is fine whatever it names (Xen looks at nothing).
    #expect(copy(grants, copyRequest(source: (600, 44, 0xFFFF), dest: (0, 44, 0xFFFF), length: 0, flags: 0)) == Self.okay)
    endGrants(grants)
  }

  // MARK: - Ends

  /// The granter ends while its page is mapped: the frame lives on (owned by a domain that no
  /// longer runs, still referenced), the mapper still reads what was there, the isolation check
  /// agrees, its id is not given out again; the last unmap frees the frame and everything is
  /// back.
  @Test func granterEndsWhileMapped() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let frame = granterFrame(grants)
    FrameMemory.write64(frame, 0xFEED)
    let (status, handle) = map(grants, mapRequest(ref: 8))
    #expect(status == Self.okay)
    _ = GrantTables.domainDestroyed(grants.granter) { grants.granter.changeP2M(by: nil) { $0.destroyWithHolds() } }
    grants.granter.state = .dead
    #expect(grants.granter.framesInUse == 1)
    #expect(Domains.isHeld(Self.granterID))
    #expect(FrameTable.record(frame)?.refs == 1)
    #expect(FrameMemory.read64(NestedPageTable(root: grants.mapper.p2mRoot).translate(Self.mapGFN << 12)!.machine) == 0xFEED)
    expectIsolated([grants.mapper])
    // New maps of an ended granter are refused.
    grants.env.otherDomains[Self.granterID] = grants.granter
    #expect(map(grants, mapRequest(ref: 8, at: Self.mapGFN + 1)).status == Self.generalError)
    #expect(unmap(grants, handle: handle) == Self.okay)
    #expect(grants.granter.framesInUse == 0)
    #expect(!Domains.isHeld(Self.granterID))
    #expect(FrameTable.record(frame)?.use == .free)
    _ = GrantTables.domainDestroyed(grants.mapper) { grants.mapper.changeP2M(by: nil) { $0.destroyWithHolds() } }
    #expect(Frames.freeFrames == total, "frames lost")
  }

  /// The granter gives the granted page back (decrease_reservation) while it is mapped: the
  /// reference keeps the frame; the mapper's unmap frees it, counted against the granter.
  @Test func granterReleasesAMappedPage() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    let frame = granterFrame(grants)
    let (_, handle) = map(grants, mapRequest(ref: 8))
    let inUse = grants.granter.framesInUse
    #expect(release(grants.granter, Self.granterGFN) == nil)
    #expect(FrameTable.record(frame)?.refs == 1)
    #expect(FrameTable.record(frame)?.use == .guestRAM)
    expectIsolated([grants.granter, grants.mapper])
    #expect(unmap(grants, handle: handle) == Self.okay)
    #expect(FrameTable.record(frame)?.use == .free)
    #expect(grants.granter.framesInUse == inUse - 1)
    endGrants(grants)
  }

  /// A domain maps its own grant (DOMID_SELF) and copies through it; its end drops the mapping
  /// and leaves nothing held, its id included.
  @Test func selfMappingsEndWithTheDomain() throws {
    let grants = try makeGrants()
    let own = grants.mapper
    try #require(own.changeP2M(by: nil) { (try? $0.growGrantTable(to: 1)) != nil })
    writeGrant(own, ref: 8, flags: XenABI.GrantLayout.typePermitAccess, to: Self.mapperID, gfn: 0x10)
    let (status, _) = map(grants, mapRequest(ref: 8, dom: XenABI.DomainID.selfDomain))
    #expect(status == Self.okay)
    let frame = NestedPageTable(root: own.p2mRoot).lookup(0x10)!.frame
    #expect(NestedPageTable(root: own.p2mRoot).lookup(Self.mapGFN)?.frame == frame)
    #expect(FrameTable.record(frame)?.refs == 2)
    expectIsolated([grants.granter, own])
    _ = GrantTables.domainDestroyed(own) { own.changeP2M(by: nil) { $0.destroyWithHolds() } }
    #expect(!own.grantsOutlive && !Domains.isHeld(Self.mapperID))
    #expect(FrameTable.record(frame)?.use == .free)
    _ = GrantTables.domainDestroyed(grants.granter) { grants.granter.changeP2M(by: nil) { $0.destroyWithHolds() } }
    #expect(GrantTables.pinnedGranters.isEmpty)
    #expect(Frames.freeFrames == total, "frames lost")
  }

  /// The mapper ends with mappings: each is dropped (pins, flags, references), and the granter
  /// is as before.
  @Test func mapperEndsWithMappings() throws {
    let grants = try makeGrants()
    permit(grants, ref: 8)
    permit(grants, ref: 9, gfn: Self.granterGFN + 1)
    _ = map(grants, mapRequest(ref: 8))
    _ = map(grants, mapRequest(ref: 9, at: Self.mapGFN + 1))
    _ = GrantTables.domainDestroyed(grants.mapper) { grants.mapper.changeP2M(by: nil) { $0.destroyWithHolds() } }
    #expect(grants.granter.grantPins == 0)
    #expect(grantFlags(grants.granter, ref: 8) == XenABI.GrantLayout.typePermitAccess)
    #expect(grantFlags(grants.granter, ref: 9) == XenABI.GrantLayout.typePermitAccess)
    #expect(FrameTable.record(granterFrame(grants))?.refs == 1)
    expectIsolated([grants.granter])
    _ = GrantTables.domainDestroyed(grants.granter) { grants.granter.changeP2M(by: nil) { $0.destroyWithHolds() } }
    #expect(Frames.freeFrames == total, "frames lost")
  }
}
