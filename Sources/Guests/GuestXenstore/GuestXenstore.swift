/// guest-xenstore: a xenstore client (GuestKit's `XenstoreClient`) checking the store the
/// hypervisor serves, through the domain's ring page and store port (docs/xenstore.md).
///
/// `mode=checks` (the default) prints one line per check, "guest-xenstore: <check> ok …" or
/// "guest-xenstore: <check> FAIL (…)": its own nodes, writes under data/, refusals, permissions,
/// watches, transactions and the nodes quota; `peer=<domid>` adds the refusal to read another
/// domain's home. The modes that break the ring, each on its own since a stopped ring stays
/// stopped: `mode=proto` (a header announcing 5000 bytes: `error` must become
/// XENSTORE_ERROR_PROTO, 3), `mode=hostile-index` (req_prod 5000 past req_cons) and
/// `mode=hostile-rsp` (rsp_cons 3000 behind rsp_prod, then a request): `error` must become
/// XENSTORE_ERROR_RINGIDX, 2. Each then checks that the domain itself goes on. `mode=bench
/// samples=<n>` times round trips instead (`visor bench xenstore`). Last "guest-xenstore: done"
/// and poweroff.
@main
struct GuestXenstore {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-xenstore is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-xenstore")

let ms = SystemTime.nanosecondsPerMillisecond

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

func equal(_ bytes: [UInt8], _ string: String) -> Bool { bytes.elementsEqual(string.utf8) }

func checks(_ store: inout XenstoreClient, domid: UInt32, peer: Int) {
  // The domain's own nodes, as the toolstack wrote them.
  let name = store.read("name")
  report.check("read-name", name.ok && !name.text.isEmpty, ok: "'\(text(name.text))'", fail: name.summary)
  let ownID = store.read("domid")
  report.check("read-domid", ownID.holds("\(domid)".utf8), ok: "\(domid)", fail: "\(ownID.summary), want \(domid)")
  let home = store.getDomainPath(domid)
  report.check("get-domain-path", home.ok && equal(home.text, "/local/domain/\(domid)"), ok: "'\(text(home.text))'", fail: home.summary)
  let absolute = store.read("/local/domain/\(domid)/name")
  report.check("read-absolute-name", absolute.ok && absolute.payload == name.payload, fail: absolute.summary)

  // Writes under data/, read back; mkdir, directory, rm.
  let wrote = store.write("data/greeting", "hello from \(domid)")
  let back = store.read("data/greeting")
  report.check("write-read", wrote.ok && back.holds("hello from \(domid)".utf8), fail: "write \(wrote.summary), read \(back.summary)")
  // The in-place read (what `visor bench xenstore` times): the value, a refusal, a value
  // larger than the buffer, and a reply behind a watch event (the general path takes over).
  var buffer = [UInt8](repeating: 0, count: 64)
  let want = Array("hello from \(domid)".utf8)
  let lean = buffer.withUnsafeMutableBytes { store.read("data/greeting", into: $0) }
  let leanValue = Array(buffer.prefix(lean ?? 0))
  let leanMissing = buffer.withUnsafeMutableBytes { store.read("data/no-such-node", into: $0) }
  var small = [UInt8](repeating: 0, count: 4)
  let leanSmall = small.withUnsafeMutableBytes { store.read("data/greeting", into: $0) }
  let leanWatch = store.watch("data/greeting", token: "lean")   // its first event follows the reply
  let leanBehindEvent = buffer.withUnsafeMutableBytes { store.read("data/greeting", into: $0) }
  let leanEvent = store.nextEvent(deadline: SystemTime.now() &+ 500 * ms)
  let leanUnwatch = store.unwatch("data/greeting", token: "lean")
  report.check("lean-read", lean == want.count && leanValue == want && leanMissing == nil
               && leanSmall == want.count && small[...] == want.prefix(4)[...] && leanWatch.ok
               && leanBehindEvent == want.count && leanEvent.map { equal($0.token, "lean") } == true && leanUnwatch.ok,
               fail: "value \(lean.map(String.init) ?? "nil") '\(text(leanValue))', missing \(leanMissing.map(String.init) ?? "nil"), "
                 + "small \(leanSmall.map(String.init) ?? "nil"), watch \(leanWatch.summary), behind an event \(leanBehindEvent.map(String.init) ?? "nil"), "
                 + "event \(leanEvent.map { text($0.token) } ?? "none"), unwatch \(leanUnwatch.summary)")
  // A value larger than the ring: the request goes in pieces, and so does the reply.
  var large = ""
  for i in 0..<1500 { large.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: "a") + UInt8(i % 26))) }
  let wroteLarge = store.write("data/large", large)
  let backLarge = store.read("data/large")
  report.check("large-value", wroteLarge.ok && backLarge.holds(large.utf8), ok: "\(backLarge.payload.count) bytes",
               fail: "write \(wroteLarge.summary), read \(backLarge.payload.count) bytes (\(backLarge.type))")
  let made = store.mkdir("data/dir")
  let a = store.write("data/dir/a", "1"), b = store.write("data/dir/b", "2")
  let listing = store.directory("data/dir")
  let names = listing.strings
  report.check(
    "mkdir-directory", made.ok && a.ok && b.ok && listing.ok && names.count == 2 && equal(names[0], "a") && equal(names[1], "b"),
    fail: "mkdir \(made.summary), writes \(a.summary) \(b.summary), directory \(listing.summary) (\(names.count) names)")
  let removed = store.rm("data/dir")
  let gone = store.read("data/dir/a")
  report.check("rm", removed.ok && gone.refused("ENOENT"), fail: "rm \(removed.summary), then read \(gone.summary)")

  // What the domain may not do.
  let nameWrite = store.write("name", "renamed")
  report.check("write-name-refused", nameWrite.refused("EACCES"), fail: nameWrite.summary)
  let targetWrite = store.write("memory/target", "1")
  report.check("write-memory-target-refused", targetWrite.refused("EACCES"), fail: targetWrite.summary)
  let homeWrite = store.write("/local/domain/\(domid)/new-node", "x")
  report.check("write-home-refused", homeWrite.refused("EACCES"), fail: homeWrite.summary)
  let nameAfter = store.read("name")
  report.check("name-unchanged", nameAfter.payload == name.payload, fail: nameAfter.summary)
  if peer > 0 {
    let peerName = store.read("/local/domain/\(peer)/name")
    report.check("read-peer-home-refused", peerName.refused("EACCES"), fail: peerName.summary)
    let peerData = store.write("/local/domain/\(peer)/data", "intruder")   // the peer's own node
    report.check("write-peer-data-refused", peerData.refused("EACCES"), fail: peerData.summary)
  }

  // Permissions: the owner may open a node to another domain, but not give it away.
  let owned = store.write("data/perm", "p")
  let opened = store.setPerms("data/perm", ["n\(domid)", "r0"])
  let perms = store.getPerms("data/perm")
  let entries = perms.strings
  report.check(
    "set-get-perms", owned.ok && opened.ok && entries.count == 2 && equal(entries[0], "n\(domid)") && equal(entries[1], "r0"),
    fail: "write \(owned.summary), set_perms \(opened.summary), get_perms \(perms.summary) (\(entries.count) entries)")
  let givenAway = store.setPerms("data/perm", ["n0"])
  report.check("give-away-refused", givenAway.refused("EPERM"), fail: givenAway.summary)

  // Watches: the event at once, one for the domain's own write, none after unwatch.
  let soon = { SystemTime.now() &+ 1_000 * ms }
  let watched = store.watch("data/watched", token: "tok-\(domid)")
  let first = watched.ok ? store.nextEvent(deadline: soon()) : nil
  report.check(
    "watch-fires-at-once",
    watched.ok && first.map { equal($0.path, "data/watched") && equal($0.token, "tok-\(domid)") } == true,
    fail: "watch \(watched.summary), event \(first.map { "'\(text($0.path))' '\(text($0.token))'" } ?? "none")")
  let change = store.write("data/watched/x", "1")
  let second = store.nextEvent(deadline: soon())
  report.check(
    "watch-fires-on-write", change.ok && second.map { equal($0.path, "data/watched/x") && equal($0.token, "tok-\(domid)") } == true,
    fail: "write \(change.summary), event \(second.map { "'\(text($0.path))' '\(text($0.token))'" } ?? "none")")
  // The write below creates data/watched/x's sibling: it would fire the watch were it still set.
  let unwatched = store.unwatch("data/watched", token: "tok-\(domid)")
  let quiet = store.write("data/watched/y", "2")
  let third = store.nextEvent(deadline: SystemTime.now() &+ 100 * ms)
  report.check("unwatch", unwatched.ok && quiet.ok && third == nil,
               fail: "unwatch \(unwatched.summary), write \(quiet.summary), event \(third.map { "'\(text($0.path))'" } ?? "none")")

  // Transactions: a commit, an abort, and two of its own touching one node (EAGAIN).
  let started = store.transactionStart()
  let t = XenstoreClient.transactionID(started)
  let inside = store.write("data/tx", "committed", transaction: t)
  let outside = store.read("data/tx")
  let committed = store.transactionEnd(t, commit: true)
  let after = store.read("data/tx")
  report.check(
    "transaction-commit", t != 0 && inside.ok && outside.refused("ENOENT") && committed.ok && after.holds("committed".utf8),
    ok: "id \(t)",
    fail: "start \(started.summary), write \(inside.summary), read outside \(outside.summary), end \(committed.summary), read \(after.summary)")
  let abortID = XenstoreClient.transactionID(store.transactionStart())
  let aborted = store.write("data/tx-aborted", "x", transaction: abortID)
  let abortEnd = store.transactionEnd(abortID, commit: false)
  let notThere = store.read("data/tx-aborted")
  report.check("transaction-abort", abortID != 0 && aborted.ok && abortEnd.ok && notThere.refused("ENOENT"),
               fail: "write \(aborted.summary), end \(abortEnd.summary), read \(notThere.summary)")
  let seeded = store.write("data/conflict", "0")
  let t1 = XenstoreClient.transactionID(store.transactionStart())
  let t2 = XenstoreClient.transactionID(store.transactionStart())
  let read1 = store.read("data/conflict", transaction: t1), read2 = store.read("data/conflict", transaction: t2)
  let write1 = store.write("data/conflict", "1", transaction: t1), write2 = store.write("data/conflict", "2", transaction: t2)
  let end1 = store.transactionEnd(t1, commit: true)
  let end2 = store.transactionEnd(t2, commit: true)
  let final = store.read("data/conflict")
  report.check(
    "transaction-conflict-eagain",
    seeded.ok && t1 != 0 && t2 != 0 && t1 != t2 && read1.ok && read2.ok && write1.ok && write2.ok && end1.ok
      && end2.refused("EAGAIN") && final.holds("1".utf8),
    fail: "ids \(t1) \(t2), reads \(read1.summary) \(read2.summary), writes \(write1.summary) \(write2.summary), ends \(end1.summary) \(end2.summary), value \(final.summary)")

  // The nodes quota (xenstored's default: 1000 nodes a domain owns): nodes until ENOSPC, refused
  // cleanly, and the store answers afterwards. 40 leaves under each of data/q/<n>, so no parent's
  // size (which counts its children's names, at most 2048 bytes) is what refuses.
  var created = 0
  var refusal = XenstoreReply(type: XenstoreType.noReply, payload: Array("no refusal within 1200 nodes".utf8))
  for i in 0..<1200 {
    let r = store.write("data/q/\(i / 40)/\(i % 40)", "")
    if !r.ok { refusal = r; break }
    created += 1 + (i % 40 == 0 ? 1 : 0)   // the first leaf of a group creates its parent too
  }
  report.check("nodes-quota-enospc", refusal.refused("ENOSPC") && created >= 900 && created < 1000,
               ok: "after \(created) nodes", fail: "after \(created) nodes: \(refusal.summary)")
  let stillAnswers = store.read("name")
  let cleared = store.rm("data/q")
  let roomAgain = store.write("data/after-quota", "ok")
  report.check("store-answers-after-quota", stillAnswers.payload == name.payload && cleared.ok && roomAgain.ok,
               fail: "read \(stillAnswers.summary), rm \(cleared.summary), write \(roomAgain.summary)")

  report.check("ring-error-clear", store.ringError == 0 && store.sendFailure == 0,
               fail: "error \(store.ringError), send failure \(store.sendFailure)")
}

/// A mode that breaks the ring: one request answered first, then `breakRing`, then `error` must
/// hold `want`, no reply may come any more, and the domain must go on.
func hostile(_ store: inout XenstoreClient, _ label: StaticString, want: UInt32, _ breakRing: (inout XenstoreClient) -> Void) {
  let before = store.read("name")
  report.check("served-before", before.ok, fail: before.summary)
  breakRing(&store)
  let deadline = SystemTime.now() &+ 1_000 * ms
  while store.ringError == 0 && SystemTime.now() < deadline { Xen.poll(ports: [store.port], timeout: deadline) }
  report.check(label, store.ringError == want, ok: "error \(store.ringError)", fail: "error \(store.ringError), want \(want)")
  store.timeout = 200 * ms
  let after = store.read("name")
  report.check("no-reply-after", !after.ok && after.type == XenstoreType.noReply, fail: after.summary)
  // The domain itself goes on: hypercalls, and its own events.
  let version = Xen.version()
  let ipi = Events.bindIPI(vcpu: 0)
  let sent = ipi >= 0 ? Events.send(UInt32(ipi)) : ipi
  let pending = ipi >= 0 && Events.isPending(UInt32(ipi))
  report.check("domain-goes-on", version.major > 0 && sent == 0 && pending,
               fail: "xen_version \(version.major).\(version.minor), bind_ipi \(ipi), send \(sent), pending \(pending)")
}

func bench(_ store: inout XenstoreClient, samples: Int, readsOnly: Bool) {
  let buffer = Guest.scratch(UInt64.self, count: max(1, samples))
  report.line("bench samples \(buffer.count)")
  var failures = 0
  /// The median of `buffer.count` samples of `body`, which returns whether its round trip was
  /// answered and what it cost (cycles).
  func median(_ body: () -> (ok: Bool, cycles: UInt64)) -> UInt64 {
    for _ in 0..<min(100, buffer.count) { _ = body() }   // warm up
    for i in 0..<buffer.count {
      let sample = body()
      buffer[i] = sample.cycles
      if !sample.ok { failures += 1 }
    }
    var sorted = buffer   // the same memory: sorts in place
    sorted.sort()
    return sorted[sorted.count / 2]
  }
  /// The whole round trip, RDTSC before the first byte is written and after the reply is read.
  func whole(_ body: () -> Bool) -> (ok: Bool, cycles: UInt64) {
    let t0 = CPU.rdtsc()
    let ok = body()
    return (ok, CPU.rdtsc() &- t0)
  }
  /// Only the EVTCHNOP_send that carries the request: the store answers during it, so this is
  /// the hypervisor's share, without the client's.
  func sendOnly(_ body: () -> Bool) -> (ok: Bool, cycles: UInt64) {
    store.timesSends = true
    defer { store.timesSends = false }
    let before = store.sendCycles
    let ok = body()
    return (ok, store.sendCycles &- before)
  }
  let null = median { whole { hv_hypercall2(17, 0, 0) >= 0 } }
  let seeded = store.write("data/bench", "0")
  if !seeded.ok { failures += 1 }
  // The read as a kernel's xenbus makes it (the request written into the ring, the value
  // copied out of it), and as this library's general client does (arrays and strings).
  var value = [UInt8](repeating: 0, count: 16)
  func leanRead() -> Bool {
    value.withUnsafeMutableBytes { store.read("data/bench", into: $0) } == 1 && value[0] == UInt8(ascii: "0")
  }
  let read = median { whole { leanRead() } }
  let readSend = median { sendOnly { leanRead() } }
  report.line("bench null-hypercall median \(null)")
  report.line("bench read median \(read)")
  report.line("bench read-send median \(readSend)")
  if readsOnly {   // for profiling the read alone (scripts/profile-exits)
    report.check("bench-replies", failures == 0, fail: "\(failures) round trips failed")
    return
  }
  let readGeneral = median { whole { store.read("data/bench").holds("0".utf8) } }
  let write = median { whole { store.write("data/bench", "1").ok } }
  let writeSend = median { sendOnly { store.write("data/bench", "1").ok } }
  report.line("bench read-general median \(readGeneral)")
  report.line("bench write median \(write)")
  report.line("bench write-send median \(writeSend)")
  report.check("bench-replies", failures == 0, fail: "\(failures) round trips failed")
}

func run() -> Never {
  let options = StartInfo.options
  let mode = options.value("mode") ?? Array("checks".utf8)[...]
  let peer = options.integer("peer", default: 0)
  report.line("start, mode \(text(Array(mode)))")
  Guest.requireHypervisor("guest-xenstore")
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  guard var store = XenstoreClient.connect() else {
    let p = XenstoreClient.parameters()
    report.abort("no xenstore: STORE_PFN \(p.pfnResult) \(hex(p.pfn)), STORE_EVTCHN \(p.portResult) \(p.port)")
  }
  let domid = UInt32(Xen.domainID ?? 0)
  report.line("domain \(domid), ring at gfn \(hex(store.ring.base >> 12)), port \(store.port)")

  if mode.elementsEqual("checks".utf8) {
    checks(&store, domid: domid, peer: peer)
  } else if mode.elementsEqual("proto".utf8) {
    hostile(&store, "proto-stops-ring", want: 3) { store in
      // A read whose header announces 5000 bytes: more than XENSTORE_PAYLOAD_MAX (4096).
      var header: [UInt8] = []
      for field: UInt32 in [2, 0x7777, 0, 5000] { for i in 0..<4 { header.append(UInt8(truncatingIfNeeded: field >> (8 * UInt32(i)))) } }
      _ = store.writeRaw(header + Array("name".utf8) + [0], deadline: SystemTime.now() &+ 1_000 * ms)
    }
  } else if mode.elementsEqual("hostile-index".utf8) {
    hostile(&store, "hostile-index-stops-ring", want: 2) { store in
      store.ring.store(store.ring.load(XenstoreRingPage.requestConsumer) &+ 5000, XenstoreRingPage.requestProducer)
      store.notify()
    }
  } else if mode.elementsEqual("hostile-rsp".utf8) {
    hostile(&store, "hostile-rsp-stops-ring", want: 2) { store in
      store.ring.store(store.ring.load(XenstoreRingPage.responseProducer) &- 3000, XenstoreRingPage.responseConsumer)
      store.timeout = 200 * ms
      _ = store.read("name")   // its reply finds no sane room in rsp
    }
  } else if mode.elementsEqual("bench".utf8) {
    bench(&store, samples: options.integer("samples", default: 1000), readsOnly: options.value("ops").map { $0.elementsEqual("read".utf8) } ?? false)
  } else {
    report.abort("unknown mode \(text(Array(mode))): checks, proto, hostile-index, hostile-rsp or bench")
  }
  report.finish()
}
#endif
