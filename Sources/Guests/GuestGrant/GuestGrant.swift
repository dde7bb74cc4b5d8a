/// guest-grant: two domains share pages through grant tables, without xenstore.
///   role=granter peer=<domid> [die=1]   grants three pages to the peer and checks what it did
///   role=mapper peer=<domid> [keep=1]   maps and copies them, with every wrong argument too
///
/// The convention both sides know (there is no xenstore to publish refs): the granter places
/// its grant table's frame 0 at gfn 0x20000 and grants, to the peer, ref 8 (page P, writable),
/// ref 9 (page Q, read-only) and ref 10 (page R, writable, for the peer to copy into). The
/// mapper retries map_grant_ref of ref 8 (GNTST_bad_domain before the granter is built,
/// general_error or bad_gntref before its entry is written), yielding, for at most 10 s.
///
/// Normal run: the mapper maps P and Q, checks their patterns, writes into P through the mapping,
/// copies from P and into R with GNTTABOP_copy, checks every refusal (a writable map of the
/// read-only grant, a bad ref, a bad domain, a map over its own RAM, bad handles, a double
/// unmap, a copy past the page, into the read-only grant, of a frame named by domid), unmaps,
/// and last copies a marker into P's last word. The granter waits for that marker, then checks
/// P and R and that GTF_reading/GTF_writing are clear, and ends access to all three refs.
///
/// die=1 / keep=1: the mapper writes a marker into P through its mapping; the granter, seeing
/// it, powers off at once, its page still mapped. The mapper waits until a copy from ref 8
/// answers GNTST_bad_domain (the granter is gone), checks P is intact and still writable, and
/// unmaps it: the hypervisor frees the frame only then.
///
/// role=both peer=<domid> [rounds=N]: both domains grant to each other and, at once on two
/// pcpus, map, check, write, unmap and copy each other's pages N times (default 2000): the two
/// domains' grant operations cross (each a granter and a mapper) while the other runs. Each
/// ends by copying a marker into the peer's mailbox grant (ref 12) and waits for the peer's
/// before it powers off, so neither ends while the other still maps.
///
/// role=bench [samples=N]: one domain grants a page to itself and measures, with RDTSC, the
/// median of N samples (default 20000) of a null hypercall (xen_version 0), map_grant_ref,
/// unmap_grant_ref, a map+unmap round trip and a 4 KiB GNTTABOP_copy out of the grant into its
/// own frame (`visor bench grants`).
@main
struct GuestGrant {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-grant is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-grant")

let ms = SystemTime.nanosecondsPerMillisecond
let tableGFN: UInt64 = 0x20000
/// Where the mapper maps P and Q (above its RAM, inside its identity map).
let mapGFN: UInt64 = 0x30000
let mappedMarker: UInt64 = 0x4D41_5050_4544_2121     // written by the mapper at P + 4080
let doneMarker: UInt64 = 0x444F_4E45_2E2E_2E21       // copied by the mapper to P + 4088

func patternP(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 7 &+ 1) }
func patternQ(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 13 &+ 5) }
func patternOwn(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 3 &+ 11) }

/// The scratch area's pages: P, Q, R for the granter; a buffer for the mapper.
func page(_ index: Int) -> UInt64 { Xen.address(gs_scratch()) + UInt64(index) * 4096 }
func byte(_ address: UInt64) -> UInt8 { UnsafePointer<UInt8>(bitPattern: UInt(address))!.pointee }
func setByte(_ address: UInt64, _ value: UInt8) { UnsafeMutablePointer<UInt8>(bitPattern: UInt(address))!.pointee = value }

/// Waits (yielding) until `done` or `timeout` passes; whether it was done.
func waitUntil(_ timeout: UInt64, _ done: () -> Bool) -> Bool {
  let start = SystemTime.now()
  while !done() {
    if SystemTime.now() &- start >= timeout { return false }
    Xen.yield()
  }
  return true
}

func granter(peer: UInt16, die: Bool) -> Never {
  let placed = Grants.placeTable(at: tableGFN)
  if placed != 0 { report.abort("add_to_physmap(grant_table) returned \(placed)") }
  let (p, q, r) = (page(0), page(1), page(2))
  for i in 0..<4096 {
    setByte(p + UInt64(i), patternP(i))
    setByte(q + UInt64(i), patternQ(i))
    setByte(r + UInt64(i), 0)
  }
  Grants.grant(tableGFN, ref: 8, gfn: p >> 12, to: peer)
  Grants.grant(tableGFN, ref: 9, gfn: q >> 12, to: peer, readOnly: true)
  Grants.grant(tableGFN, ref: 10, gfn: r >> 12, to: peer)
  report.pass("granted", "refs 8, 9 (read-only), 10 to domain \(peer)")

  if die {
    let mapped = waitUntil(10_000 * ms) { gs_read_volatile64(p + 4080) == mappedMarker }
    report.check("mapped-by-peer", mapped, fail: "no marker from domain \(peer) within 10 s")
    report.line("powering off with page P mapped by domain \(peer)")
    report.finish()
  }
  let done = waitUntil(10_000 * ms) { gs_read_volatile64(p + 4088) == doneMarker }
  if !done { report.abort("no done marker from domain \(peer) within 10 s") }
  var written = true
  for i in 0..<64 where byte(p + UInt64(i)) != 0xB0 { written = false }
  report.check("written-through-mapping", written, fail: "P's first 64 bytes are not 0xB0")
  var copied = true
  for i in 0..<4096 where byte(r + UInt64(i)) != patternOwn(i) { copied = false }
  report.check("copied-into-grant", copied, fail: "R is not the peer's pattern")
  let busy = UInt16(GS_GTF_reading | GS_GTF_writing)
  report.check("flags-clear", Grants.flags(tableGFN, 8) & busy == 0 && Grants.flags(tableGFN, 9) & busy == 0 && Grants.flags(tableGFN, 10) & busy == 0,
               fail: "flags \(Grants.flags(tableGFN, 8)) \(Grants.flags(tableGFN, 9)) \(Grants.flags(tableGFN, 10))")
  report.check("end-access", Grants.endAccess(tableGFN, 8) && Grants.endAccess(tableGFN, 9) && Grants.endAccess(tableGFN, 10),
               fail: "a ref is still in use")
  report.finish()
}

func expectStatus(_ check: StaticString, _ got: (result: Int64, status: Int16), _ want: Int16) {
  report.check(check, got.result == 0 && got.status == want, fail: "result \(got.result) status \(got.status), want status \(want)")
}

func mapper(peer: UInt16, keep: Bool) -> Never {
  var attempt: (result: Int64, status: Int16, handle: UInt32) = (0, Grants.badDomain, 0)
  let mapped = waitUntil(10_000 * ms) {
    attempt = Grants.map(8, of: peer, at: mapGFN)
    return attempt.result != 0 || attempt.status == Grants.okay
      || (attempt.status != Grants.badDomain && attempt.status != Grants.generalError && attempt.status != Grants.badGrantRef)
  }
  if !mapped || attempt.result != 0 || attempt.status != Grants.okay {
    report.abort("map of domain \(peer)'s ref 8: result \(attempt.result) status \(attempt.status)")
  }
  let handle = attempt.handle
  let p = mapGFN << 12
  var intact = true
  for i in 0..<4096 where byte(p + UInt64(i)) != patternP(i) { intact = false }
  report.check("map", intact, ok: "handle \(handle)", fail: "the mapped page is not the granter's pattern")

  let own = page(0)
  if keep {
    gs_write_volatile64(p + 4080, mappedMarker)
    let gone = waitUntil(20_000 * ms) {
      Grants.copy(from: .init(ref: 8, of: peer), to: .init(ownGFN: own >> 12), length: 8).status == Grants.badDomain
    }
    report.check("granter-gone", gone, fail: "domain \(peer) still answers after 20 s")
    var still = true
    for i in 0..<4080 where byte(p + UInt64(i)) != patternP(i) { still = false }
    report.check("page-outlives-granter", still, fail: "the mapped page changed after its granter ended")
    for i in 0..<64 { setByte(p + UInt64(i), 0x5A) }
    var writable = true
    for i in 0..<64 where byte(p + UInt64(i)) != 0x5A { writable = false }
    report.check("still-writable", writable, fail: "writes to the mapped page did not stick")
    expectStatus("unmap-after-granter", Grants.unmap(handle, at: mapGFN), Grants.okay)
    report.finish()
  }

  for i in 0..<64 { setByte(p + UInt64(i), 0xB0) }
  let readOnly = Grants.map(9, of: peer, at: mapGFN + 1, readOnly: true)
  expectStatus("map-read-only", (readOnly.result, readOnly.status), Grants.okay)
  var q = true
  for i in 0..<4096 where byte(((mapGFN + 1) << 12) + UInt64(i)) != patternQ(i) { q = false }
  report.check("read-only-contents", q, fail: "the read-only page is not the granter's pattern")
  let writableOfReadOnly = Grants.map(9, of: peer, at: mapGFN + 2)
  expectStatus("refuse-writable-map-of-read-only", (writableOfReadOnly.result, writableOfReadOnly.status), Grants.generalError)
  let badRef = Grants.map(9999, of: peer, at: mapGFN + 2)
  expectStatus("refuse-bad-ref", (badRef.result, badRef.status), Grants.badGrantRef)
  let badDomain = Grants.map(8, of: 0x7FF4, at: mapGFN + 2)
  expectStatus("refuse-bad-domain", (badDomain.result, badDomain.status), Grants.badDomain)
  let overRAM = Grants.map(8, of: peer, at: own >> 12)
  expectStatus("refuse-map-over-ram", (overRAM.result, overRAM.status), Grants.generalError)
  let deviceMap = Grants.map(8, of: peer, at: mapGFN + 2, flags: 1)
  expectStatus("refuse-device-map", (deviceMap.result, deviceMap.status), Grants.generalError)
  expectStatus("refuse-bad-handle", Grants.unmap(0xFFFF_FFFF, at: mapGFN), Grants.badHandle)
  expectStatus("refuse-wrong-address", Grants.unmap(handle, at: mapGFN + 5), Grants.generalError)

  // Copies: out of the granted page, into a granted page, and the refusals.
  expectStatus("copy-from-grant", Grants.copy(from: .init(ref: 8, of: peer, offset: 128), to: .init(ownGFN: own >> 12), length: 256), Grants.okay)
  var fromGrant = true
  for i in 0..<256 where byte(own + UInt64(i)) != patternP(128 + i) { fromGrant = false }
  report.check("copy-from-grant-contents", fromGrant, fail: "the copy is not P's bytes 128..<384")
  for i in 0..<4096 { setByte(own + UInt64(i), patternOwn(i)) }
  expectStatus("copy-to-grant", Grants.copy(from: .init(ownGFN: own >> 12), to: .init(ref: 10, of: peer), length: 4096), Grants.okay)
  expectStatus("refuse-copy-to-read-only", Grants.copy(from: .init(ownGFN: own >> 12), to: .init(ref: 9, of: peer), length: 8), Grants.generalError)
  expectStatus("refuse-copy-past-page", Grants.copy(from: .init(ownGFN: own >> 12, offset: 4000), to: .init(ref: 10, of: peer), length: 200), Grants.badCopyArgument)
  var byDomid = Grants.Side(ownGFN: own >> 12)
  byDomid.domid = peer
  expectStatus("refuse-copy-of-frame-by-domid", Grants.copy(from: byDomid, to: .init(ref: 10, of: peer), length: 8), Grants.permissionDenied)

  expectStatus("unmap", Grants.unmap(handle, at: mapGFN), Grants.okay)
  expectStatus("refuse-double-unmap", Grants.unmap(handle, at: mapGFN), Grants.badHandle)
  expectStatus("unmap-read-only", Grants.unmap(readOnly.handle, at: mapGFN + 1), Grants.okay)
  gs_write_volatile64(own, doneMarker)
  expectStatus("copy-done-marker", Grants.copy(from: .init(ownGFN: own >> 12), to: .init(ref: 8, of: peer, offset: 4088), length: 8), Grants.okay)
  report.finish()
}

/// Fills `samples` with the cycles each call of `body` takes and returns the median.
func median(_ samples: UnsafeMutableBufferPointer<UInt64>, _ body: () -> Void) -> UInt64 {
  for _ in 0..<min(1000, samples.count) { body() }   // warm up
  for i in 0..<samples.count {
    let t0 = CPU.rdtsc()
    body()
    samples[i] = CPU.rdtsc() &- t0
  }
  var sorted = samples
  sorted.sort()
  return sorted[sorted.count / 2]
}

func bench(samples count: Int) -> Never {
  let samples = Guest.scratch(UInt64.self, count: max(100, count))
  let placed = Grants.placeTable(at: tableGFN)
  if placed != 0 { report.abort("add_to_physmap(grant_table) returned \(placed)") }
  let granted = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  let target = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  granted.initializeMemory(as: UInt8.self, repeating: 0x5A, count: 4096)
  target.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
  let me = Xen.domainID ?? Xen.domidSelf
  Grants.grant(tableGFN, ref: 8, gfn: Xen.address(granted) >> 12, to: me)
  report.line("samples \(samples.count), domain \(me)")

  let null = median(samples) { _ = Xen.xenVersion(0) }
  report.line("null hypercall median \(null) cycles")
  let check = Grants.map(8, of: Xen.domidSelf, at: mapGFN)
  if check.status != Grants.okay || Grants.unmap(check.handle, at: mapGFN).status != Grants.okay {
    report.abort("map of its own grant: result \(check.result) status \(check.status)")
  }
  let roundTrip = median(samples) {
    let mapped = Grants.map(8, of: Xen.domidSelf, at: mapGFN)
    _ = Grants.unmap(mapped.handle, at: mapGFN)
  }
  report.line("map+unmap median \(roundTrip) cycles")
  // Map and unmap timed apart: each sample times one of them, the other runs untimed.
  var handle: UInt32 = 0
  for i in 0..<samples.count {
    let t0 = CPU.rdtsc()
    handle = Grants.map(8, of: Xen.domidSelf, at: mapGFN).handle
    samples[i] = CPU.rdtsc() &- t0
    _ = Grants.unmap(handle, at: mapGFN)
  }
  var sorted = samples
  sorted.sort()
  report.line("map median \(sorted[sorted.count / 2]) cycles")
  for i in 0..<samples.count {
    handle = Grants.map(8, of: Xen.domidSelf, at: mapGFN).handle
    let t0 = CPU.rdtsc()
    _ = Grants.unmap(handle, at: mapGFN)
    samples[i] = CPU.rdtsc() &- t0
  }
  sorted = samples
  sorted.sort()
  report.line("unmap median \(sorted[sorted.count / 2]) cycles")
  let copy = median(samples) {
    _ = Grants.copy(from: .init(ref: 8, of: Xen.domidSelf), to: .init(ownGFN: Xen.address(target) >> 12), length: 4096)
  }
  var copied = true
  for i in 0..<4096 where target.load(fromByteOffset: i, as: UInt8.self) != 0x5A { copied = false }
  if !copied { report.abort("the copy did not arrive") }
  report.line("copy 4096 median \(copy) cycles")
  report.finish()
}

let bothMarker: UInt64 = 0x424F_5448_2044_4F4E   // copied into the peer's mailbox when done

func both(peer: UInt16, rounds: Int) -> Never {
  let placed = Grants.placeTable(at: tableGFN)
  if placed != 0 { report.abort("add_to_physmap(grant_table) returned \(placed)") }
  // Refs 8-11: pages whose first word is this domain's id and the ref; ref 12: the mailbox.
  let me = UInt64(Xen.domainID ?? 0)
  for ref in 0..<5 {
    let p = page(ref)
    for i in 0..<512 { gs_write_volatile64(p + UInt64(i) * 8, ref == 4 ? 0 : me << 32 | UInt64(8 + ref)) }
    Grants.grant(tableGFN, ref: UInt32(8 + ref), gfn: p >> 12, to: peer)
  }
  // Wait for the peer's grants: a map of its ref 8 succeeds.
  var first: (result: Int64, status: Int16, handle: UInt32) = (0, Grants.badDomain, 0)
  let ready = waitUntil(10_000 * ms) {
    first = Grants.map(8, of: peer, at: mapGFN)
    return first.result != 0 || first.status == Grants.okay
      || (first.status != Grants.badDomain && first.status != Grants.generalError && first.status != Grants.badGrantRef)
  }
  if !ready || first.status != Grants.okay { report.abort("map of domain \(peer)'s ref 8: status \(first.status)") }
  _ = Grants.unmap(first.handle, at: mapGFN)

  let own = page(5)
  var bad = 0
  for round in 0..<rounds {
    let ref = UInt32(8 + round % 4)
    let gfn = mapGFN + UInt64(round % 4)
    let mapped = Grants.map(ref, of: peer, at: gfn, readOnly: round % 3 == 0)
    if mapped.result != 0 || mapped.status != Grants.okay { bad += 1; continue }
    if gs_read_volatile64(gfn << 12) != UInt64(peer) << 32 | UInt64(ref) { bad += 1 }
    if round % 3 != 0 { gs_write_volatile64((gfn << 12) + 8 + UInt64(round % 500) * 8, UInt64(peer) << 32 | UInt64(ref)) }
    if Grants.unmap(mapped.handle, at: gfn).status != Grants.okay { bad += 1 }
    let copied = Grants.copy(from: .init(ref: ref, of: peer), to: .init(ownGFN: own >> 12), length: 4096)
    if copied.status != Grants.okay || gs_read_volatile64(own) != UInt64(peer) << 32 | UInt64(ref) { bad += 1 }
  }
  report.check("cross-maps", bad == 0, ok: "\(rounds) rounds", fail: "\(bad) of \(rounds) rounds went wrong")
  gs_write_volatile64(own, bothMarker)
  let told = Grants.copy(from: .init(ownGFN: own >> 12), to: .init(ref: 12, of: peer), length: 8)
  report.expect("told-peer", Int64(told.status), want: Int64(Grants.okay))
  let heard = waitUntil(20_000 * ms) { gs_read_volatile64(page(4)) == bothMarker }
  report.check("heard-peer", heard, fail: "no marker from domain \(peer) within 20 s")
  // The peer's marker arrives while its copy still pins ref 12: the flags clear a moment later.
  let busy = UInt16(GS_GTF_reading | GS_GTF_writing)
  let clear = waitUntil(1_000 * ms) {
    var any = false
    for ref in UInt32(8)..<13 where Grants.flags(tableGFN, ref) & busy != 0 { any = true }
    return !any
  }
  report.check("flags-clear", clear, fail: "a ref is still in use after 1 s")
  report.finish()
}

func run() -> Never {
  let options = StartInfo.options
  if options.value("role").map({ $0.elementsEqual("bench".utf8) }) ?? false {
    Guest.requireHypervisor("guest-grant")
    bench(samples: options.integer("samples", default: 20_000))
  }
  let role = options.value("role")
  let isGranter = role.map { $0.elementsEqual("granter".utf8) } ?? false
  let isMapper = role.map { $0.elementsEqual("mapper".utf8) } ?? false
  let isBoth = role.map { $0.elementsEqual("both".utf8) } ?? false
  let peer = options.integer("peer", default: 0)
  guard isGranter || isMapper || isBoth, peer > 0, peer < Int(Xen.domidSelf) else {
    report.line("usage: role=granter peer=<domid> [die=1] | role=mapper peer=<domid> [keep=1] | role=both peer=<domid> [rounds=N] | role=bench [samples=N]")
    Xen.shutdown(.crash)
  }
  report.line("\(isGranter ? "granter" : isMapper ? "mapper" : "both"), peer domain \(peer)")
  Guest.requireHypervisor("guest-grant")
  // shared_info, for the system time its waits are bounded by.
  let shared = SharedInfo.map()
  if shared != 0 { report.abort("add_to_physmap(shared_info) returned \(shared)") }
  if isBoth { both(peer: UInt16(peer), rounds: max(1, options.integer("rounds", default: 2000))) }
  if isGranter { granter(peer: UInt16(peer), die: options.integer("die", default: 0) != 0) }
  mapper(peer: UInt16(peer), keep: options.integer("keep", default: 0) != 0)
}
#endif
