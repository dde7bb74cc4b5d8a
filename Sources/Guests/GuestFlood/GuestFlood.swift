/// guest-flood: fills the event channel table, floods it with sends, and feeds event_channel_op
/// every wrong argument it can think of. Nothing here may hurt the hypervisor; the guest checks
/// the answers, one line each ("guest-flood: <check> ok …" or "guest-flood: <check> FAIL (…)"):
///   fill             alloc_unbound(remote = DOMID_SELF) until refused, which must be -ENOSPC
///   send-unbound     `sends=<n>` sends (default 4) on each of those ports: 0, nothing pending
///   close-all        closing them all
///   loopback-pairs   alloc_unbound + bind_interdomain to ourselves until refused (-ENOSPC);
///                    each new bound port starts pending (Xen does that)
///   masked-sends     per pair: mask, n sends, pending but not delivered; EVTCHNOP_unmask then
///                    delivers exactly once
///   coalesced-sends  per pair: n sends with interrupts off are one event
///   unmasked-sends   per pair: n sends with interrupts on arrive (1 to n times), both ways
///   close-pairs      closing both ends of every pair
///   virq-twice       VIRQ_TIMER bound on vcpu 0 twice: the second is -EEXIST
///   invalid-ports    send/close/bind_vcpu on the reserved port 0: -EINVAL (status: closed);
///                    send/close/unmask/status/bind_vcpu on ports 4096 and 0xFFFFFFFF: -EINVAL
///   bad-vcpus        bind_virq and bind_ipi on vcpu 99: -ENOENT; VIRQ 24: -EINVAL
///   bad-pointers     arguments at a non-canonical address, an unmapped one and one past RAM: -EFAULT
///   bad-commands     EVTCHNOP 99: -ENOSYS; bind_interdomain to domain 999: -ESRCH
///   clean-table      afterwards alloc_unbound gives the same first port as at the start, and
///                    status says it is unbound
/// then "guest-flood: done" and poweroff. `pairs=<n>` limits the loopback pairs (default: as
/// many as fit).
@main
struct GuestFlood {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-flood is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-flood")

let ms = SystemTime.nanosecondsPerMillisecond

/// Waits (spinning, interrupts on) up to 1 s for `port`'s count to pass `count`.
func arrived(_ port: UInt32, after count: UInt64) -> Bool {
  Wait.until(.spin, deadline: SystemTime.now() &+ 1_000 * ms) { Events.count(port) > count }
}

/// alloc_unbound for ourselves until refused. Returns the first port it got: the lowest free
/// one (ports the hypervisor set up at build time, such as the console's, come before it).
func fill(sends: Int) -> Int64 {
  var ports: [UInt32] = []
  var refusal: Int64 = 0
  while ports.count < 2 * Events.portCount {
    let r = Events.allocUnbound(remote: Xen.domidSelf)
    if r < 0 {
      refusal = r
      break
    }
    ports.append(UInt32(r))
  }
  report.line("alloc_unbound gave \(ports.count) ports, then \(refusal)")
  report.check("fill", !ports.isEmpty && refusal == Errno.ENOSPC, ok: "(\(ports.count) ports, then -ENOSPC)",
               fail: "\(ports.count) ports, then \(refusal) (want -28)")

  // Sends on an unbound port go nowhere.
  var failed: Int64 = 0, pending = 0
  for port in ports {
    for _ in 0..<sends {
      let r = Events.send(port)
      if r != 0 { failed = r }
    }
    if Events.isPending(port) { pending += 1 }
  }
  report.check("send-unbound", failed == 0 && pending == 0, ok: "(\(ports.count * sends) sends)",
               fail: "a send returned \(failed) (want 0), \(pending) ports pending (want 0)")

  var closeFailed: Int64 = 0
  for port in ports {
    let r = Events.close(port)
    if r != 0 { closeFailed = r }
  }
  report.expect("close-all", closeFailed, want: 0)
  return ports.first.map { Int64($0) } ?? -1
}

/// Loopback pairs: `a` waits for ourselves (alloc_unbound), `b` is bound to it (bind_interdomain).
func loopback(sends: Int, limit: Int) {
  var pairs: [(a: UInt32, b: UInt32)] = []
  var refusal: Int64 = 0
  var startedPending = 0
  // Interrupts off: each bound port starts pending, and that event is checked, then dropped.
  CPU.disableInterrupts()
  while pairs.count < limit {
    let a = Events.allocUnbound(remote: Xen.domidSelf)
    if a < 0 {
      refusal = a
      break
    }
    let b = Events.bindInterdomain(remoteDomain: Xen.domidSelf, remotePort: UInt32(a))
    if b < 0 {
      refusal = b
      Events.close(UInt32(a))
      break
    }
    if Events.clearPending(UInt32(b)) { startedPending += 1 }
    pairs.append((UInt32(a), UInt32(b)))
  }
  CPU.enableInterrupts()
  report.line("\(pairs.count) loopback pairs, then \(refusal)")
  let full = pairs.count == limit || refusal == Errno.ENOSPC
  report.check(
    "loopback-pairs", !pairs.isEmpty && full && startedPending == pairs.count,
    ok: "(\(pairs.count) pairs\(refusal == 0 ? "" : ", then -ENOSPC"), each bound port started pending)",
    fail: "\(pairs.count) pairs, then \(refusal) (want -28), \(startedPending) started pending (want all)")

  // Masked: the bit stays pending, nothing is delivered until EVTCHNOP_unmask, then once.
  var bad = 0, detail = ""
  for (a, b) in pairs {
    Events.mask(a)
    let before = Events.count(a)
    var sendFailed: Int64 = 0
    for _ in 0..<sends {
      let r = Events.send(b)
      if r != 0 { sendFailed = r }
    }
    let pendingWhileMasked = Events.isPending(a)
    let deliveredWhileMasked = Events.count(a) &- before
    let unmasked = Events.unmask(a)
    let delivered = arrived(a, after: before)
    let total = Events.count(a) &- before
    if sendFailed != 0 || !pendingWhileMasked || deliveredWhileMasked != 0 || unmasked != 0 || !delivered || total != 1
      || Events.isMasked(a) {
      bad += 1
      if detail.isEmpty {
        detail = "port \(a): send returned \(sendFailed), pending while masked \(pendingWhileMasked), delivered while masked \(deliveredWhileMasked), unmask returned \(unmasked), delivered \(total) times after it (want 1), still masked \(Events.isMasked(a))"
      }
    }
  }
  report.check("masked-sends", bad == 0, ok: "(\(pairs.count) ports, \(sends) sends each)", fail: "\(bad) ports wrong; first: \(detail)")

  // Interrupts off: n sends leave one pending bit, delivered once when interrupts come back on.
  bad = 0
  detail = ""
  for (a, b) in pairs {
    let before = Events.count(a)
    CPU.disableInterrupts()
    for _ in 0..<sends { Events.send(b) }
    let pending = Events.isPending(a)
    CPU.enableInterrupts()
    let delivered = arrived(a, after: before)
    let total = Events.count(a) &- before
    if !pending || !delivered || total != 1 {
      bad += 1
      if detail.isEmpty { detail = "port \(a): pending \(pending), delivered \(total) times (want 1)" }
    }
  }
  report.check("coalesced-sends", bad == 0, ok: "(\(pairs.count) ports)", fail: "\(bad) ports wrong; first: \(detail)")

  // Interrupts on, both directions: between 1 and n deliveries each way.
  bad = 0
  detail = ""
  for (a, b) in pairs {
    for (from, to) in [(b, a), (a, b)] {
      let before = Events.count(to)
      for _ in 0..<sends { Events.send(from) }
      let delivered = arrived(to, after: before)
      // The last sends may still be on their way: let the pending bit drain first.
      let drained = Wait.until(.spin, deadline: SystemTime.now() &+ 1_000 * ms) { !Events.isPending(to) }
      let total = Events.count(to) &- before
      if !delivered || total > UInt64(sends) || !drained {
        bad += 1
        if detail.isEmpty { detail = "port \(to): delivered \(total) times for \(sends) sends, still pending \(Events.isPending(to))" }
      }
    }
  }
  report.check("unmasked-sends", bad == 0, ok: "(\(pairs.count) pairs, both ways)", fail: "\(bad) directions wrong; first: \(detail)")

  var closeFailed: Int64 = 0
  for (a, b) in pairs {
    let r1 = Events.close(b), r2 = Events.close(a)
    if r1 != 0 { closeFailed = r1 }
    if r2 != 0 { closeFailed = r2 }
  }
  report.expect("close-pairs", closeFailed, want: 0)
}

/// The errors, each as event_channel.h and Xen define them.
func wrongArguments() {
  let first = Events.bindVIRQ(Events.virqTimer, vcpu: 0)
  let second = Events.bindVIRQ(Events.virqTimer, vcpu: 0)
  report.check("virq-twice", first >= 0 && second == Errno.EEXIST, ok: "(port \(first), then -EEXIST)",
               fail: "first bind returned \(first), second \(second) (want -17)")
  if first >= 0 { Events.close(UInt32(first)) }

  // Port 0 exists but is reserved: nothing can use it, and status calls it closed (as Xen, which
  // also lets unmask clear its mask bit). Ports past the table do not exist for any call.
  var wrong: [String] = []
  let reserved: [(StaticString, Int64)] = [
    ("send", Events.send(0)), ("close", Events.close(0)), ("bind_vcpu", Events.bindVCPU(0, vcpu: 0)),
  ]
  for (name, r) in reserved where r != Errno.EINVAL { wrong.append("\(name)(0) = \(r) (want -22)") }
  let status0 = Events.status(0)
  if status0.result != 0 || status0.status.status != UInt32(GS_EVTCHNSTAT_closed) {
    wrong.append("status(0) = \(status0.result), state \(status0.status.status) (want 0, closed)")
  }
  for port: UInt32 in [4096, 0xFFFF_FFFF] {
    let results: [(StaticString, Int64)] = [
      ("send", Events.send(port)), ("close", Events.close(port)), ("unmask", Events.unmask(port)),
      ("status", Events.status(port).result), ("bind_vcpu", Events.bindVCPU(port, vcpu: 0)),
    ]
    for (name, r) in results where r != Errno.EINVAL { wrong.append("\(name)(\(port)) = \(r) (want -22)") }
  }
  report.check("invalid-ports", wrong.isEmpty, ok: "(port 0: -EINVAL, status closed; ports 4096, 0xffffffff: -EINVAL)",
               fail: joined(wrong))

  let virq99 = Events.bindVIRQ(Events.virqTimer, vcpu: 99)
  let ipi99 = Events.bindIPI(vcpu: 99)
  let virq24 = Events.bindVIRQ(24, vcpu: 0)
  report.check("bad-vcpus", virq99 == Errno.ENOENT && ipi99 == Errno.ENOENT && virq24 == Errno.EINVAL,
               ok: "(vcpu 99: -ENOENT; VIRQ 24: -EINVAL)",
               fail: "bind_virq on vcpu 99 returned \(virq99) (want -2), bind_ipi on vcpu 99 \(ipi99) (want -2), VIRQ 24 \(virq24) (want -22)")

  // Addresses the hypervisor cannot read: non-canonical, canonical but not in the guest's page
  // tables, and (if RAM ends low enough) mapped by the guest but 2 MiB past the end of RAM.
  var addresses: [UInt64] = [0xdead_beef_0000, 0x7fff_ffff_f000]
  if let end = StartInfo.ramEnd, end <= 0xe000_0000 { addresses.append((end + 0x20_0000) & ~0xFFF) }
  wrong = []
  for address in addresses {
    let send = Xen.eventChannelOp(UInt64(GS_EVTCHNOP_send), address)
    let alloc = Xen.eventChannelOp(UInt64(GS_EVTCHNOP_alloc_unbound), address)
    let bind = Xen.eventChannelOp(UInt64(GS_EVTCHNOP_bind_virq), address)
    if send != Errno.EFAULT { wrong.append("send at \(hex(address)) = \(send)") }
    if alloc != Errno.EFAULT { wrong.append("alloc_unbound at \(hex(address)) = \(alloc)") }
    if bind != Errno.EFAULT { wrong.append("bind_virq at \(hex(address)) = \(bind)") }
  }
  report.check("bad-pointers", wrong.isEmpty, ok: "(-EFAULT at \(addresses.count) addresses)", fail: "want -14: \(joined(wrong))")

  var port: UInt32 = 1
  let unknown = Xen.withArgument(&port) { Xen.eventChannelOp(99, $0) }
  let noDomain = Events.bindInterdomain(remoteDomain: 999, remotePort: 1)
  report.check("bad-commands", unknown == Errno.ENOSYS && noDomain == Errno.ESRCH, ok: "(EVTCHNOP 99: -ENOSYS; domain 999: -ESRCH)",
               fail: "EVTCHNOP 99 returned \(unknown) (want -38), bind_interdomain to domain 999 \(noDomain) (want -3)")
}

func joined(_ parts: [String]) -> String {
  var text = ""
  for part in parts { text += text.isEmpty ? part : ", " + part }
  return text
}

func run() -> Never {
  report.line("start")
  Guest.requireHypervisor("guest-flood")
  let options = StartInfo.options
  let sends = max(1, options.integer("sends", default: 4))
  let limit = max(1, options.integer("pairs", default: Events.portCount))
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  CPU.enableInterrupts()

  let firstFree = fill(sends: sends)
  loopback(sends: sends, limit: limit)
  wrongArguments()

  // Everything was closed: the lowest free port is the same as at the start.
  let again = Events.allocUnbound(remote: Xen.domidSelf)
  let status = again >= 0 ? Events.status(UInt32(again)) : (result: again, status: gs_evtchn_status())
  report.check(
    "clean-table", again == firstFree && status.result == 0 && status.status.status == UInt32(GS_EVTCHNSTAT_unbound),
    ok: "(port \(again) again, unbound)",
    fail: "alloc_unbound returned \(again) (want \(firstFree), the first port at the start), status returned \(status.result) with state \(status.status.status) (want 1, unbound)")
  if again >= 0 { Events.close(UInt32(again)) }
  CPU.disableInterrupts()
  report.finish()
}
#endif
