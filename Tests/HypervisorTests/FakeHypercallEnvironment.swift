import XenABI
import XenPublic

@testable import Hypervisor

/// A HypercallEnvironment over plain dictionaries, for driving the hypercall handlers on the host.
///
/// - Guest virtual memory is a set of 4 KiB pages keyed by page number: a copy succeeds only when
///   every byte it touches lies in a mapped page, so a buffer that runs into a hole fails as a
///   real page walk would.
/// - The p2m is a set of populated guest frames plus the special frames (shared_info) placed by
///   `placeSharedInfo`; `freeFrames` is the RAM the hypervisor still has to give. Like the real
///   one, it keeps `Domain.ramPages` and `Domain.maximumPages`.
/// - Every call that changes the p2m or starts a vcpu is recorded, so tests can check what the
///   handler asked for, not only what it answered.
final class FakeHypercallEnvironment: HypercallEnvironment {
  static let pageSize = 4096

  let vcpu: VCPU
  /// The caller's layout; tests of 32-bit callers set `.compat`.
  var abi: GuestABI = .native

  // Guest virtual memory.
  private(set) var pages: [UInt64: [UInt8]] = [:]

  // The p2m.
  var populated: Set<UInt64> = []
  private(set) var specialFrames: [UInt64: UInt64] = [:]   // gfn → machine address
  var freeFrames = Int.max
  private var nextMachine: UInt64 = 0x8000_0000

  // Recorded calls.
  private(set) var placeCalls: [UInt64] = []
  private(set) var sharedInfoFramesMade = 0
  private(set) var populateCalls: [(gfn: UInt64, order: Int)] = []
  private(set) var releaseCalls: [(gfn: UInt64, order: Int)] = []
  private(set) var initialiseCalls: [(target: VCPU, context: [UInt8])] = []
  private(set) var preemptionChecks = 0

  // Answers.
  var memoryMap: [(address: UInt64, size: UInt64, type: UInt32)] = [
    (0, 0x9F000, 1),
    (0x9F000, 0x61000, 2),
    (0x10_0000, 0x3F0_0000, 1),       // RAM up to 64 MiB
    (0xFC00_0000, 0x1000, 2),
  ]
  var placeFails = false
  var initialiseResult: XenABI.Errno?
  var preemptionPending = false

  /// A running domain `id` with `vcpuCount` vcpus; vcpu 0 is the caller (running, initialised),
  /// the others are down.
  init(domainID: UInt16 = 1, vcpuCount: Int = 2, ramPages: Int = 16384, maximumPages: Int = 32768) {
    let domain = Domain(id: domainID, name: Array("fake".utf8), memoryBytes: UInt64(maximumPages) * 4096)
    for id in 0..<vcpuCount { domain.vcpus.append(VCPU(id: id, domain: domain)) }
    domain.state = .running
    domain.ramPages = ramPages
    domain.maximumPages = maximumPages
    domain.vcpus[0].runState = .running
    domain.vcpus[0].initialised = true
    vcpu = domain.vcpus[0]
    self.domainReference = domain
  }

  /// The VCPU holds its domain `unowned(unsafe)`: the fake keeps it alive.
  private let domainReference: Domain

  // MARK: Guest memory set-up

  /// Maps zero-filled pages covering `[address, address + count)` (existing pages are kept).
  func map(_ address: UInt64, count: Int) {
    guard count > 0 else { return }
    let first = address / UInt64(Self.pageSize)
    let last = (address + UInt64(count - 1)) / UInt64(Self.pageSize)     // the last page of all, too
    for page in first...last where pages[page] == nil {
      pages[page] = [UInt8](repeating: 0, count: Self.pageSize)
    }
  }

  func unmap(page: UInt64) { pages[page] = nil }

  /// Maps what is needed and stores `bytes` at `address`.
  func store(_ bytes: [UInt8], at address: UInt64) {
    map(address, count: bytes.count)
    precondition(write(address, bytes))
  }

  func storeLE<T: FixedWidthInteger>(_ value: T, at address: UInt64) {
    store(littleEndianBytes(value), at: address)
  }

  func load(_ address: UInt64, count: Int) -> [UInt8]? { peek(address, count: count) }

  func loadLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at address: UInt64) -> T? {
    peek(address, count: MemoryLayout<T>.size)?.littleEndian(T.self, at: 0)
  }

  /// A test's own look at guest memory: not counted in `readsAt`.
  private func peek(_ address: UInt64, count: Int) -> [UInt8]? {
    let before = readsAt
    defer { readsAt = before }
    return read(address, count: count)
  }

  func resetReadCounts() { readsAt = [:] }

  // MARK: HypercallEnvironment

  /// How many times each guest address was the start of a read: a handler reads each argument
  /// structure once (no double fetch).
  private(set) var readsAt: [UInt64: Int] = [:]

  func read(_ guestVirtual: UInt64, count: Int) -> [UInt8]? {
    readsAt[guestVirtual, default: 0] += 1
    guard count >= 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(count)
    var address = guestVirtual
    var left = count
    while left > 0 {
      let (end, overflow) = address.addingReportingOverflow(UInt64(left))
      guard !overflow || end == 0 else { return nil }
      guard let page = pages[address / UInt64(Self.pageSize)] else { return nil }
      let offset = Int(address % UInt64(Self.pageSize))
      let length = min(left, Self.pageSize - offset)
      out += page[offset..<offset + length]
      address &+= UInt64(length)
      left -= length
    }
    return out
  }

  func write(_ guestVirtual: UInt64, _ bytes: [UInt8]) -> Bool {
    // Check every page first: a failed copy changes nothing.
    var address = guestVirtual
    var left = bytes.count
    while left > 0 {
      guard pages[address / UInt64(Self.pageSize)] != nil else { return false }
      let length = min(left, Self.pageSize - Int(address % UInt64(Self.pageSize)))
      address &+= UInt64(length)
      left -= length
    }
    address = guestVirtual
    var done = 0
    while done < bytes.count {
      let page = address / UInt64(Self.pageSize)
      let offset = Int(address % UInt64(Self.pageSize))
      let length = min(bytes.count - done, Self.pageSize - offset)
      pages[page]!.replaceSubrange(offset..<offset + length, with: bytes[done..<done + length])
      address &+= UInt64(length)
      done += length
    }
    return true
  }

  /// The event frames held (`holdEventFrame`): host pages standing for the guest's RAM frames,
  /// zeroed when first held, so the FIFO code's atomics and a test's "guest" share them.
  private(set) var eventFramePages: [UInt64: UnsafeMutableRawPointer] = [:]   // gfn → page
  private(set) var eventFrameHolds: [UInt64: Int] = [:]                        // address → holds
  func holdEventFrame(gfn: UInt64) -> UInt64? {
    guard populated.contains(gfn) else { return nil }
    let page = eventFramePages[gfn] ?? {
      let page = UnsafeMutableRawPointer.allocate(byteCount: Self.pageSize, alignment: Self.pageSize)
      page.initializeMemory(as: UInt8.self, repeating: 0, count: Self.pageSize)
      eventFramePages[gfn] = page
      return page
    }()
    let address = UInt64(UInt(bitPattern: page))
    eventFrameHolds[address, default: 0] += 1
    domain.eventFrames.append(address)
    return address
  }
  func releaseEventFrames(_ frames: [UInt64]) {
    for frame in frames {
      guard let index = domain.eventFrames.firstIndex(of: frame) else { continue }
      domain.eventFrames.remove(at: index)
      eventFrameHolds[frame, default: 0] -= 1
      if eventFrameHolds[frame] == 0 { eventFrameHolds[frame] = nil }
    }
  }
  deinit {
    for page in eventFramePages.values { page.deallocate() }
  }
  /// The host address standing for guest frame `gfn`'s page (held at least once).
  func eventPage(_ gfn: UInt64) -> UInt64 { UInt64(UInt(bitPattern: eventFramePages[gfn]!)) }
  /// Hypervisor holds on event frames still taken.
  var eventHoldCount: Int { eventFrameHolds.values.reduce(0, +) }

  private(set) var pinned: Set<UInt64> = []
  func pinVCPUInfo(_ target: VCPU, gfn: UInt64) -> UInt64? {
    guard target.vcpuInfoGFN == nil, populated.contains(gfn) else { return nil }
    target.vcpuInfoGFN = gfn
    pinned.insert(gfn)
    return 0x1_0000_0000 + gfn * 4096
  }

  func placeSharedInfo(gfn: UInt64) -> XenABI.Errno? {
    placeCalls.append(gfn)
    guard !placeFails else { return .ENOMEM }
    if domain.sharedInfoGFN == gfn { return nil }
    if domain.sharedInfoMachine == 0 {
      domain.sharedInfoMachine = nextMachine
      nextMachine += UInt64(Self.pageSize)
      sharedInfoFramesMade += 1
    }
    if populated.remove(gfn) != nil { domain.ramPages -= 1 }   // the RAM page there is given back
    specialFrames[gfn] = nil
    if let old = domain.sharedInfoGFN, specialFrames[old] == domain.sharedInfoMachine { specialFrames[old] = nil }
    specialFrames[gfn] = domain.sharedInfoMachine
    domain.sharedInfoGFN = gfn
    return nil
  }

  /// Grant frames as the fake makes them: numbered machine addresses, placed like shared_info.
  func growGrantTable(to frames: Int) -> XenABI.Errno? {
    guard frames <= domain.maxGrantFrames else { return .EINVAL }
    while domain.grantFrames.count < frames {
      domain.grantFrames.append(nextMachine)
      domain.grantFrameGFNs.append(nil)
      nextMachine += UInt64(Self.pageSize)
    }
    return nil
  }

  func placeGrantFrame(_ index: Int, gfn: UInt64) -> XenABI.Errno? {
    guard index >= 0, index < domain.maxGrantFrames else { return .EINVAL }
    if let errno = growGrantTable(to: index + 1) { return errno }
    if populated.remove(gfn) != nil { domain.ramPages -= 1 }
    if let old = domain.grantFrameGFNs[index] { specialFrames[old] = nil }
    specialFrames[gfn] = domain.grantFrames[index]
    domain.grantFrameGFNs[index] = gfn
    return nil
  }

  func populate(gfn: UInt64, order: Int) -> Bool {
    populateCalls.append((gfn, order))
    let count = 1 << order
    guard domain.ramPages + count <= domain.maximumPages, freeFrames >= count else { return false }
    let range = gfn..<gfn + UInt64(count)
    guard range.allSatisfy({ !populated.contains($0) && specialFrames[$0] == nil }) else { return false }
    populated.formUnion(range)
    freeFrames -= count
    domain.ramPages += count
    return true
  }

  func release(gfn: UInt64, order: Int) -> Bool {
    releaseCalls.append((gfn, order))
    let range = gfn..<gfn + UInt64(1 << order)
    guard range.allSatisfy({ populated.contains($0) || specialFrames[$0] != nil }) else { return false }
    for g in range {
      if populated.remove(g) != nil {
        domain.ramPages -= 1
        if freeFrames != Int.max { freeFrames += 1 }
      }
      specialFrames[g] = nil
      if domain.sharedInfoGFN == g { domain.sharedInfoGFN = nil }
    }
    return true
  }

  func initialiseVCPU(_ target: VCPU, context: vcpu_hvm_context) -> XenABI.Errno? {
    initialiseCalls.append((target, context.bytes))
    return initialiseResult
  }

  /// Other domains a grant operation may name, by id (the real one asks `Domains`).
  var otherDomains: [UInt16: Domain] = [:]
  func grantingDomain(_ id: UInt16) -> Domain? { otherDomains[id] }

  func preemptionRequested() -> Bool {
    preemptionChecks += 1
    return preemptionPending
  }
}
