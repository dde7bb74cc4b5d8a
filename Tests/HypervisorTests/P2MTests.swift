import Testing
import XenABI

@testable import Hypervisor

/// The frame table and the p2m on the host: `Frames` and `FrameTable` are set up over a block
/// of host memory, so the nested page tables are real tables in real pages, walked by the same
/// code as on the machine. `Frames` and `FrameTable` are global: these tests run one at a time.
@Suite(.serialized) struct P2MTests {
  static let arenaBytes = 24 << 20

  /// Host memory for the frames (2 MiB aligned, so 2 MiB blocks exist) and for the frame table.
  nonisolated(unsafe) static let arena = UnsafeMutableRawPointer.allocate(byteCount: arenaBytes, alignment: 2 << 20)
  nonisolated(unsafe) static let tableStorage = UnsafeMutableRawPointer.allocate(byteCount: arenaBytes / 4096 * 8, alignment: 4096)

  static var span: Range<UInt64> {
    let base = UInt64(UInt(bitPattern: arena))
    return base..<(base + UInt64(arenaBytes))
  }

  let total: Int

  init() {
    FrameTable.setUp(span: Self.span, storage: UInt64(UInt(bitPattern: Self.tableStorage)))
    Frames.setUp(span: Self.span, free: [Self.span])
    total = Frames.freeFrames
    P2M.flushTranslations = nil
  }

  /// A domain with a root table, `maximumPages` of allotment and a pool of `pool` tables.
  func makeDomain(id: UInt16 = 7, maximumPages: Int = 4096, pool: Int = 64, vcpus: Int = 1) throws -> Domain {
    let domain = Domain(id: id, name: Array("p2m-test".utf8), memoryBytes: UInt64(maximumPages) * 4096)
    domain.maximumPages = maximumPages
    domain.p2mPoolLimit = pool
    for id in 0..<vcpus { domain.vcpus.append(VCPU(id: id, domain: domain)) }
    try #require(domain.changeP2M(by: nil) { $0.createRoot() })
    return domain
  }

  func populate(_ domain: Domain, _ gfn: UInt64, order: Int = 0) -> P2M.Failure? {
    domain.changeP2M(by: nil) { p2m -> P2M.Failure? in
      do throws(P2M.Failure) { try p2m.populate(gfn, order: order); return nil } catch { return error }
    }
  }

  func release(_ domain: Domain, _ gfn: UInt64, order: Int = 0) -> P2M.Failure? {
    domain.changeP2M(by: nil) { p2m -> P2M.Failure? in
      do throws(P2M.Failure) { try p2m.release(gfn, order: order); return nil } catch { return error }
    }
  }

  func place(_ domain: Domain, _ gfn: UInt64) -> P2M.Failure? {
    domain.changeP2M(by: nil) { p2m -> P2M.Failure? in
      do throws(P2M.Failure) { try p2m.placeSharedInfo(at: gfn); return nil } catch { return error }
    }
  }

  /// Destroys the domain's memory as `DomainBuilder.destroy` does and checks every frame came back.
  func destroyAndExpectEverythingBack(_ domain: Domain, sourceLocation: SourceLocation = #_sourceLocation) {
    domain.changeP2M(by: nil) { _ = $0.destroyWithHolds() }
    #expect(domain.framesInUse == 0, sourceLocation: sourceLocation)
    #expect(domain.p2mTablePages == 0, sourceLocation: sourceLocation)
    #expect(Frames.freeFrames == total, "frames lost", sourceLocation: sourceLocation)
    var left = 0
    FrameTable.forEachInUse { _, record in if record.use != .hypervisor { left += 1 } }
    #expect(left == 0, "\(left) frames still recorded as a domain's", sourceLocation: sourceLocation)
  }

  func expectIsolated(_ domains: [Domain], sourceLocation: SourceLocation = #_sourceLocation) {
    let (problems, _) = IsolationCheck.run(domains)
    #expect(problems.isEmpty, "\(problems)", sourceLocation: sourceLocation)
  }

  // MARK: - The frame table

  @Test func aFrameLivesWhileReferenced() throws {
    let frame = try #require(Frames.allocate(order: 0))
    #expect(FrameTable.record(frame) == FrameRecord(owner: FrameTable.hypervisorOwner, use: .hypervisor, refs: 1))
    #expect(FrameTable.assign(frame, to: 3, as: .guestRAM))
    #expect(!FrameTable.assign(frame, to: 4, as: .guestRAM), "a frame is given once")
    #expect(!FrameTable.get(frame, owner: 4), "a reference names the owner")
    #expect(FrameTable.get(frame, owner: 3))
    #expect(FrameTable.get(frame, owner: 3))
    #expect(throws: Frames.FreeError.self) { try Frames.free(frame) }   // still referenced
    #expect(FrameTable.put(frame) == .stillReferenced)
    guard case .lastReference(let last) = FrameTable.put(frame) else {
      Issue.record("the second put is the last")
      return
    }
    #expect(last.owner == 3 && last.use == .guestRAM)
    #expect(FrameTable.put(frame) == .notReferenced)
    try Frames.free(frame)
    #expect(FrameTable.record(frame)?.use == .free)
    #expect(!FrameTable.get(frame, owner: 3), "a free frame takes no reference")
    #expect(Frames.freeFrames == total)
  }

  @Test func everyFrameOfABlockIsMarkedAndFreed() throws {
    let block = try #require(Frames.allocate(order: 3))
    for i in 0..<UInt64(8) { #expect(FrameTable.record(block + i * 4096)?.use == .hypervisor) }
    try Frames.free(block)
    for i in 0..<UInt64(8) { #expect(FrameTable.record(block + i * 4096)?.use == .free) }
  }

  // MARK: - The p2m

  @Test func anyPageOfA2MiBBlockGoesBackOnItsOwn() throws {
    let domain = try makeDomain()
    #expect(populate(domain, 512, order: 9) == nil)
    let table = NestedPageTable(root: domain.p2mRoot)
    let head = try #require(table.lookup(512)).frame
    #expect(domain.ramPages == 512)
    let freeBefore = Frames.freeFrames
    #expect(release(domain, 512) == nil, "the head page of a 2 MiB block")
    #expect(release(domain, 700) == nil)
    #expect(domain.ramPages == 510)
    #expect(Frames.freeFrames == freeBefore + 2 - 1, "two frames back, one table for the split")
    #expect(FrameTable.record(head)?.use == .free)
    #expect(table.lookup(512) == nil && table.lookup(513) != nil)
    #expect(release(domain, 512) == .notMapped)
    #expect(populate(domain, 512) == nil)
    #expect(domain.ramPages == 511)
    expectIsolated([domain])
    destroyAndExpectEverythingBack(domain)
  }

  @Test func sharedInfoGoesAnywhereAsOftenAsTheGuestLikes() throws {
    let domain = try makeDomain()
    #expect(populate(domain, 0, order: 9) == nil)
    #expect(populate(domain, 512, order: 9) == nil)
    // 2 MiB aligned, inside a 2 MiB leaf: the head page Xen never had trouble with.
    #expect(place(domain, 512) == nil)
    let frame = domain.sharedInfoMachine
    #expect(domain.ramPages == 1023)
    let table = NestedPageTable(root: domain.p2mRoot)
    #expect(table.lookup(512)?.frame == frame && table.lookup(512)?.kind == .special)
    for (i, gfn) in [UInt64(0), 1, 1000, 5000, 512, 0x1_0000, 3].enumerated() {
      #expect(place(domain, gfn) == nil, "move \(i) to \(gfn)")
      #expect(domain.sharedInfoGFN == gfn)
      #expect(domain.sharedInfoMachine == frame, "one frame, moved")
      #expect(FrameTable.record(frame)?.refs == 2, "the hypervisor's reference and one mapping")
      expectIsolated([domain])
    }
    #expect(table.lookup(512) == nil && table.lookup(0x1_0000) == nil, "its old places are empty")
    // Given back by the guest: the frame stays, held by the hypervisor.
    #expect(release(domain, 3) == nil)
    #expect(domain.sharedInfoGFN == nil)
    #expect(FrameTable.record(frame)?.refs == 1 && FrameTable.record(frame)?.use == .sharedInfo)
    expectIsolated([domain])
    #expect(place(domain, 9) == nil)
    destroyAndExpectEverythingBack(domain)
  }

  /// Grant table frames: placed anywhere (RAM there is given back), moved, given back (the
  /// hypervisor's hold keeps them), one over another's place, up to the domain's limit; every
  /// frame comes back at the end.
  @Test func grantFramesArePlacedMovedAndGivenBack() throws {
    let domain = try makeDomain()
    domain.maxGrantFrames = 3
    func placeGrant(_ index: Int, _ gfn: UInt64) -> P2M.Failure? {
      domain.changeP2M(by: nil) { p2m -> P2M.Failure? in
        do throws(P2M.Failure) { try p2m.placeGrantFrame(index, at: gfn); return nil } catch { return error }
      }
    }
    #expect(populate(domain, 0, order: 9) == nil)
    #expect(placeGrant(1, 0x8_0001) == nil)                  // grows to 2 frames, above RAM
    #expect(domain.grantFrames.count == 2)
    #expect(domain.grantFrameGFNs == [nil, 0x8_0001])
    for frame in domain.grantFrames { #expect(FrameTable.record(frame)?.use == .grantTable) }
    #expect(placeGrant(0, 7) == nil)                         // over RAM: the page is given back
    #expect(domain.ramPages == 511)
    let table = NestedPageTable(root: domain.p2mRoot)
    #expect(table.lookup(7)?.frame == domain.grantFrames[0] && table.lookup(7)?.kind == .special)
    expectIsolated([domain])
    #expect(placeGrant(0, 8) == nil)                         // moved: its old place is empty
    #expect(table.lookup(7) == nil && domain.grantFrameGFNs[0] == 8)
    #expect(placeGrant(1, 8) == nil)                         // frame 1 over frame 0's place
    #expect(domain.grantFrameGFNs[0] == nil && domain.grantFrameGFNs[1] == 8)
    #expect(FrameTable.record(domain.grantFrames[0])?.refs == 1, "only the hypervisor's hold")
    #expect(release(domain, 8) == nil)                       // given back: the hold keeps it
    #expect(domain.grantFrameGFNs[1] == nil && FrameTable.record(domain.grantFrames[1])?.refs == 1)
    #expect(placeGrant(3, 9) == .overQuota)
    #expect(domain.grantFrames.count == 2)
    expectIsolated([domain])
    #expect(placeGrant(2, 0x8_0002) == nil)
    destroyAndExpectEverythingBack(domain)
    #expect(domain.grantFrames.isEmpty)
  }

  @Test func aPlaceThatCannotBeMadeChangesNothing() throws {
    let domain = try makeDomain(pool: 3)            // the root, one PDPT, one PD: no room to split
    #expect(populate(domain, 0, order: 9) == nil)
    #expect(place(domain, 100) == .noMemory)
    let table = NestedPageTable(root: domain.p2mRoot)
    #expect(domain.sharedInfoMachine == 0 && domain.sharedInfoGFN == nil)
    #expect(table.lookup(100)?.kind == .ram && domain.ramPages == 512)
    expectIsolated([domain])
    destroyAndExpectEverythingBack(domain)
  }

  @Test func theFlushComesBeforeAnyFrameIsFreed() throws {
    let domain = try makeDomain()
    #expect(populate(domain, 16, order: 0) == nil)
    let frame = try #require(NestedPageTable(root: domain.p2mRoot).lookup(16)).frame
    nonisolated(unsafe) var seen: FrameRecord?
    nonisolated(unsafe) var flushes = 0
    P2M.flushTranslations = { _, _ in
      flushes += 1
      seen = FrameTable.record(frame)
    }
    defer { P2M.flushTranslations = nil }
    #expect(release(domain, 16) == nil)
    #expect(flushes == 1)
    #expect(seen?.use == .guestRAM && seen?.refs == 1, "still the domain's while the flush runs: \(String(describing: seen))")
    #expect(FrameTable.record(frame)?.use == .free)
    #expect(populate(domain, 17) == nil)
    #expect(flushes == 1, "mapping needs no flush")
    destroyAndExpectEverythingBack(domain)
  }

  @Test func emptyTablesAreFreedAndThePoolIsABound() throws {
    let domain = try makeDomain(maximumPages: 64, pool: 8)
    // One page in each of many fresh 2 MiB regions, each given back at once: the tables
    // made for it go with it.
    for i in 0..<UInt64(200) {
      let gfn = (UInt64(16) << 18) + (i << 9) + 1
      #expect(populate(domain, gfn) == nil)
      #expect(release(domain, gfn) == nil)
    }
    #expect(domain.p2mTablePages == 1, "only the root is left")
    // Without giving back: the pool runs out, and the domain gets -ENOMEM, not the host's memory.
    var failures: [P2M.Failure] = []
    for i in 0..<UInt64(40) {
      if let failure = populate(domain, (UInt64(i) << 18) + 1) { failures.append(failure) }
    }
    #expect(domain.p2mTablePages <= 8)
    #expect(!failures.isEmpty && failures.allSatisfy { $0 == .noMemory })
    #expect(domain.ramPages == 40 - failures.count)
    expectIsolated([domain])
    destroyAndExpectEverythingBack(domain)
  }

  @Test func theAllotmentHolds() throws {
    let domain = try makeDomain(maximumPages: 600)
    #expect(populate(domain, 0, order: 9) == nil)
    #expect(populate(domain, 512, order: 9) == .overQuota)
    for gfn in UInt64(1)..<UInt64(512) { #expect(release(domain, gfn) == nil) }
    for gfn in UInt64(1)..<UInt64(512) { #expect(populate(domain, gfn) == nil) }
    #expect(domain.ramPages == 512)
    for gfn in UInt64(1000)..<UInt64(1088) { #expect(populate(domain, gfn) == nil) }
    #expect(populate(domain, 2000) == .overQuota)
    #expect(domain.ramPages == 600)
    destroyAndExpectEverythingBack(domain)
  }

  @Test func aHeldPageGivenBackStaysUntilTheHoldIsDropped() throws {
    let domain = try makeDomain()
    #expect(populate(domain, 40) == nil)
    let frame = try #require(domain.changeP2M(by: nil) { p2m -> UInt64? in
      let frame = p2m.hold(40)
      domain.vcpus[0].vcpuInfoFrame = frame ?? 0
      return frame
    })
    #expect(release(domain, 40) == nil)
    #expect(FrameTable.record(frame)?.use == .guestRAM && FrameTable.record(frame)?.refs == 1)
    expectIsolated([domain])
    #expect(domain.changeP2M(by: nil) { $0.hold(41) } == nil, "nothing there")
    destroyAndExpectEverythingBack(domain)
  }

  /// The FIFO event pages (`Domain.eventFrames`): a frame held twice (two control blocks in one
  /// page) and one given back by the guest stay allocated, the isolation check counts each hold,
  /// and the domain's memory teardown drops them all.
  @Test func fifoEventFramesAreHeldUntilTheTeardown() throws {
    let domain = try makeDomain()
    #expect(populate(domain, 50) == nil)
    #expect(populate(domain, 51) == nil)
    let held = domain.changeP2M(by: nil) { p2m -> [UInt64] in
      let frames = [p2m.hold(50), p2m.hold(50), p2m.hold(51)].compactMap { $0 }
      domain.eventFrames += frames
      return frames
    }
    #expect(held.count == 3)
    #expect(release(domain, 51) == nil)
    #expect(FrameTable.record(held[0])?.refs == 3, "the p2m's reference and two holds")
    #expect(FrameTable.record(held[2])?.refs == 1, "given back: only the hold keeps it")
    expectIsolated([domain])
    destroyAndExpectEverythingBack(domain)
    #expect(domain.eventFrames.isEmpty)
  }

  @Test func theIsolationCheckNamesAFrameWhoseCountIsWrong() throws {
    let domain = try makeDomain()
    #expect(populate(domain, 5) == nil)
    let frame = try #require(NestedPageTable(root: domain.p2mRoot).lookup(5)).frame
    #expect(FrameTable.get(frame, owner: domain.id))      // a reference nobody holds
    let (problems, _) = IsolationCheck.run([domain])
    #expect(problems.count == 1)
    #expect(problems.first?.contains(hex(frame)) == true, "\(problems)")
    _ = FrameTable.put(frame)
    // A frame of a domain that is gone.
    let other = try makeDomain(id: 8)
    #expect(populate(other, 5) == nil)
    let (leaks, _) = IsolationCheck.run([domain])
    #expect(!leaks.isEmpty && leaks.allSatisfy { $0.contains("domain 8") }, "the other domain's tables and page are no one's now: \(leaks)")
    other.changeP2M(by: nil) { _ = $0.destroy() }
    #expect(IsolationCheck.run([domain]).problems.isEmpty)
    destroyAndExpectEverythingBack(domain)
  }

  /// Review finding #1: two vcpus moving shared_info at once (and giving pages back) must never
  /// leave its frame mapped at two gfns, nor a frame freed while mapped. Two threads stand in
  /// for the two vcpus; the p2m lock is what keeps them apart.
  @Test func racingChangesNeverMapAFrameTwice() async throws {
    let domain = try makeDomain(maximumPages: 4096, pool: 64)
    #expect(populate(domain, 0, order: 9) == nil)
    #expect(populate(domain, 512, order: 9) == nil)
    await withTaskGroup(of: Void.self) { group in
      for side in 0..<UInt64(2) {
        group.addTask {
          for i in 0..<UInt64(300) {
            let gfn = side * 512 + 1 + (i * 7) % 500
            _ = place(domain, gfn)
            _ = release(domain, side * 512 + 1 + (i * 13) % 500)
            _ = populate(domain, side * 512 + 1 + (i * 11) % 500)
          }
        }
      }
    }
    let table = NestedPageTable(root: domain.p2mRoot)
    var sharedInfoPlaces = 0
    for gfn in UInt64(0)..<UInt64(1024) where table.lookup(gfn)?.frame == domain.sharedInfoMachine { sharedInfoPlaces += 1 }
    #expect(sharedInfoPlaces <= 1)
    if let gfn = domain.sharedInfoGFN { #expect(table.lookup(gfn)?.kind == .special) }
    expectIsolated([domain])
    destroyAndExpectEverythingBack(domain)
  }

  // MARK: - Against a reference model

  /// Random sequences of populate, give back (single pages, parts of 2 MiB blocks, whole
  /// blocks), shared_info placement and vcpu_info holds, each checked against a plain model of
  /// what the guest should see, and with the isolation check after every step.
  @Test(arguments: [1, 2, 3, 4] as [UInt64])
  func matchesAReferenceModel(seed: UInt64) throws {
    var random = SplitMix64(seed: seed)
    let domain = try makeDomain(maximumPages: 3000, pool: 24, vcpus: 4)
    enum Page: Equatable { case ram, sharedInfo }
    var model: [UInt64: Page] = [:]
    var held = 0                              // frames held, as each vcpu's vcpu_info would be
    let gfnSpace: UInt64 = 8 * 512             // 16 MiB of guest-physical space
    let table = NestedPageTable(root: domain.p2mRoot)

    for step in 0..<600 {
      let gfn = random.next() % gfnSpace
      switch random.next() % 10 {
      case 0, 1, 2:
        let result = populate(domain, gfn)
        let ramCount = model.values.filter { $0 == .ram }.count
        let expected: P2M.Failure? = model[gfn] != nil ? .alreadyMapped : ramCount + 1 > 3000 ? .overQuota : nil
        if result == nil { model[gfn] = .ram }
        #expect(result == expected || result == .noMemory, "step \(step): populate \(gfn): \(String(describing: result))")
      case 3:
        let block = gfn & ~511
        let free = (block..<block + 512).allSatisfy { model[$0] == nil }
        let result = populate(domain, block, order: 9)
        if result == nil { for g in block..<block + 512 { model[g] = .ram } }
        #expect((result == nil) == free || result == .noMemory || result == .overQuota, "step \(step): populate 2 MiB at \(block): \(String(describing: result))")
      case 4, 5:
        let result = release(domain, gfn)
        #expect((result == nil) == (model[gfn] != nil), "step \(step): release \(gfn): \(String(describing: result))")
        if result == nil { model[gfn] = nil }
      case 6:
        let order = Int(random.next() % 4) * 3        // 1, 8, 64 or 512 pages
        let start = gfn & ~UInt64((1 << order) - 1)
        let all = (start..<start + UInt64(1 << order)).allSatisfy { model[$0] != nil }
        let result = release(domain, start, order: order)
        #expect((result == nil) == all || (all && result == .noMemory), "step \(step): release \(start) order \(order): \(String(describing: result))")
        if result == nil { for g in start..<start + UInt64(1 << order) { model[g] = nil } }
      case 7, 8:
        let result = place(domain, gfn)
        #expect(result == nil || result == .noMemory, "step \(step): place shared_info at \(gfn): \(String(describing: result))")
        if result == nil {
          for (g, page) in model where page == .sharedInfo { model[g] = nil }
          model[gfn] = .sharedInfo
        }
      default:
        if held < domain.vcpus.count, model[gfn] == .ram {
          let vcpu = domain.vcpus[held]
          if domain.changeP2M(by: nil, { p2m -> Bool in
            guard let frame = p2m.hold(gfn) else { return false }
            vcpu.vcpuInfoFrame = frame
            return true
          }) { held += 1 }
        }
      }
      // The p2m says what the model says.
      for g in Set(model.keys).union([gfn]) {
        let found = table.lookup(g)
        switch model[g] {
        case nil: #expect(found == nil, "step \(step): gfn \(g) should be empty")
        case .ram: #expect(found?.kind == .ram, "step \(step): gfn \(g) should be RAM")
        case .sharedInfo: #expect(found?.kind == .special && found?.frame == domain.sharedInfoMachine, "step \(step): gfn \(g) should be shared_info")
        }
      }
      #expect(domain.ramPages == model.values.filter { $0 == .ram }.count, "step \(step)")
      #expect(Frames.freeFrames + domain.framesInUse == total, "step \(step): frames unaccounted for")
      #expect(domain.p2mTablePages <= 24)
      expectIsolated([domain], sourceLocation: #_sourceLocation)
    }
    destroyAndExpectEverythingBack(domain)
  }
}
