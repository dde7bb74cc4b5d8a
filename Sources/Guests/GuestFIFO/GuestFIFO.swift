/// guest-fifo: the FIFO event channel ABI (EVTCHNOP_init_control, expand_array, set_priority)
/// as Linux's drivers/xen/events/events_fifo.c uses it, with interrupts off: the guest reads its
/// control block and event words itself. Checks, one line each ("guest-fifo: <check> ok …" or
/// "guest-fifo: <check> FAIL (…)"):
///   init-control    bad vcpu -ENOENT, misaligned or page-crossing offset and a frame that is
///                   not RAM -EINVAL, expand_array before it -EOPNOTSUPP, set_priority under
///                   2-level -ENOSYS; then it succeeds with link_bits 17, and a second control
///                   block for the vcpu is -EINVAL
///   expand-array    the first event array page (every word MASKED first, as Linux); a frame
///                   that is not RAM is -EINVAL
///   priority-order  five IPI ports with priorities 9, 3, default (7), 0, 3, sent in that order:
///                   one upcall, and the queues give them back by priority, then by arrival;
///                   priority 16 is -EINVAL
///   masked          a masked port's event stays pending and unqueued until EVTCHNOP_unmask
///   loopback        alloc_unbound for itself and bind_interdomain to it: each end's send
///                   arrives on the other; closing one leaves the other unbound
///   reset           EVTCHNOP_reset goes back to 2-level (set_priority -ENOSYS again)
/// then "guest-fifo: done" and poweroff.
@main
struct GuestFIFO {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-fifo is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-fifo")

let pendingBit: UInt32 = 1 << UInt32(GS_EVTCHN_FIFO_PENDING)
let maskedBit: UInt32 = 1 << UInt32(GS_EVTCHN_FIFO_MASKED)
let linkedBit: UInt32 = 1 << UInt32(GS_EVTCHN_FIFO_LINKED)
let linkMask = UInt32(GS_EVTCHN_FIFO_LINK_MASK)

/// The guest's FIFO state: its control block page, its event array page (ports 0…1023), and
/// where it left each queue (Linux's per-cpu q->head).
enum FIFO {
  nonisolated(unsafe) static var controlBlock: UInt64 = 0
  nonisolated(unsafe) static var array: UInt64 = 0
  nonisolated(unsafe) static var heads = [UInt32](repeating: 0, count: 16)

  static func word(_ port: UInt32) -> UInt64 { array &+ UInt64(port & 1023) &* 4 }
  static func load(_ address: UInt64) -> UInt32 {
    gs_load32(UnsafeMutablePointer<UInt32>(bitPattern: UInt(address)))
  }
  /// Changes a word the hypervisor changes too, with compare-exchange (Linux's sync_cmpxchg).
  static func update(_ address: UInt64, _ change: (UInt32) -> UInt32) -> UInt32 {
    var seen = load(address)
    while true {
      let found = gs_cmpxchg32(address, seen, change(seen))
      if found == seen { return seen }
      seen = found
    }
  }
  static func mask(_ port: UInt32) { _ = update(word(port)) { $0 | maskedBit } }
  static func clearMask(_ port: UInt32) { _ = update(word(port)) { $0 & ~maskedBit } }

  /// Linux's __evtchn_fifo_handle_events on vcpu 0: READY, then one event at a time from the
  /// highest-priority ready queue: unlink it (clear LINKED and LINK, keep what LINK said), and
  /// handle it (clear PENDING) if it is pending and not masked. Bounded by `limit` events.
  static func consume(limit: Int = 64) -> [UInt32] {
    var handled: [UInt32] = []
    var ready = gs_xchg32(controlBlock, 0) & 0xFFFF
    var steps = 0
    while ready != 0, steps < limit {
      steps += 1
      let priority = ready.trailingZeroBitCount
      var port = heads[priority]
      if port == 0 { port = load(controlBlock &+ UInt64(GS_EVTCHN_FIFO_CONTROL_HEAD) &+ UInt64(priority) &* 4) }
      if port == 0 || port >= 1024 {
        ready &= ~(1 << UInt32(priority))
        heads[priority] = 0
        continue
      }
      let before = update(word(port)) { $0 & ~(linkedBit | linkMask) }
      let next = before & linkMask
      if next == 0 { ready &= ~(1 << UInt32(priority)) }
      if before & pendingBit != 0, before & maskedBit == 0 {
        if update(word(port), { $0 & ~pendingBit }) & pendingBit != 0 { handled.append(port) }
      }
      heads[priority] = next
      ready |= gs_xchg32(controlBlock, 0) & 0xFFFF
    }
    return handled
  }
}

func initControl(gfn: UInt64, offset: UInt32 = 0, vcpu: UInt32 = 0) -> (result: Int64, linkBits: UInt8) {
  var arg = gs_evtchn_init_control()
  arg.control_gfn = gfn
  arg.offset = offset
  arg.vcpu = vcpu
  let r = Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_init_control), $0) }
  return (r, arg.link_bits)
}

func expandArray(gfn: UInt64) -> Int64 {
  var arg = gs_evtchn_expand_array(array_gfn: gfn)
  return Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_expand_array), $0) }
}

func setPriority(_ port: UInt32, _ priority: UInt32) -> Int64 {
  var arg = gs_evtchn_set_priority(port: port, priority: priority)
  return Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_set_priority), $0) }
}

func resetEvents() -> Int64 {
  var arg = gs_evtchn_reset(dom: Xen.domidSelf)
  return Xen.withArgument(&arg) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_reset), $0) }
}

func bindIPI() -> UInt32 {
  let port = Events.bindIPI(vcpu: 0)
  if port <= 0 || port >= 1024 { report.abort("bind_ipi returned \(port)") }
  return UInt32(port)
}

func upcallPending() -> Bool { SharedInfo.upcallPending(0).pointee != 0 }
func clearUpcall() { SharedInfo.upcallPending(0).pointee = 0 }

func list(_ values: [UInt32]) -> String { list(values.map { Int64($0) }) }
func list(_ values: [Int64]) -> String {
  var text = "["
  for (i, value) in values.enumerated() { text += (i == 0 ? "" : " ") + "\(value)" }
  return text + "]"
}

/// -EOPNOTSUPP: expand_array before init_control.
let EOPNOTSUPP: Int64 = -95

func run() -> Never {
  report.line("start")
  Guest.requireHypervisor("guest-fifo")
  CPU.disableInterrupts()
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  let controlPage = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  let arrayPage = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  controlPage.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
  // Linux's init_array_page: every word MASKED; a port is unmasked when it is bound.
  arrayPage.initializeMemory(as: UInt32.self, repeating: maskedBit, count: 1024)
  FIFO.controlBlock = UInt64(UInt(bitPattern: controlPage))
  FIFO.array = UInt64(UInt(bitPattern: arrayPage))
  let controlGFN = FIFO.controlBlock >> 12, arrayGFN = FIFO.array >> 12
  let notRAM: UInt64 = 0xF_FFFF_FFFF

  // init-control
  let early = bindIPI()
  let twoLevelPriority = setPriority(early, 3)
  let badVCPU = initControl(gfn: controlGFN, vcpu: 99).result
  let misaligned = initControl(gfn: controlGFN, offset: 4).result
  let crossing = initControl(gfn: controlGFN, offset: 4096 - 64).result
  let badFrame = initControl(gfn: notRAM).result
  let expandFirst = expandArray(gfn: arrayGFN)
  let good = initControl(gfn: controlGFN)
  let twice = initControl(gfn: controlGFN).result
  report.check(
    "init-control",
    twoLevelPriority == Errno.ENOSYS && badVCPU == Errno.ENOENT && misaligned == Errno.EINVAL && crossing == Errno.EINVAL
      && badFrame == Errno.EINVAL && expandFirst == EOPNOTSUPP && good.result == 0 && good.linkBits == 17 && twice == Errno.EINVAL,
    ok: "(link_bits \(good.linkBits))",
    fail: "set_priority under 2-level \(twoLevelPriority) (want -38), vcpu 99 \(badVCPU) (want -2), offset 4 \(misaligned), offset 4032 \(crossing), frame not RAM \(badFrame) (want -22 each), expand_array first \(expandFirst) (want -95), init_control \(good.result) link_bits \(good.linkBits), again \(twice) (want -22)")
  if good.result != 0 { report.abort("no FIFO: init_control returned \(good.result)") }

  // expand-array
  let badArray = expandArray(gfn: notRAM)
  let expanded = expandArray(gfn: arrayGFN)
  report.check("expand-array", expanded == 0 && badArray == Errno.EINVAL, ok: "(ports 0-1023 have words)",
               fail: "expand_array returned \(expanded), with a frame that is not RAM \(badArray) (want -22)")
  if expanded != 0 { report.abort("no event array") }
  // The port bound under 2-level carried over: it is simply bound (not pending).
  FIFO.clearMask(early)
  _ = FIFO.consume()

  // priority-order
  let priorities: [UInt32] = [9, 3, 7, 0, 3]
  var ports: [UInt32] = []
  var setResults: [Int64] = []
  for (i, priority) in priorities.enumerated() {
    let port = bindIPI()
    ports.append(port)
    if i != 2 { setResults.append(setPriority(port, priority)) }     // the third keeps the default
    FIFO.clearMask(port)
  }
  let tooLow = setPriority(ports[0], 16)
  clearUpcall()
  for port in ports { Events.send(port) }
  let upcall = upcallPending()
  let order = FIFO.consume()
  let want = [ports[3], ports[1], ports[4], ports[2], ports[0]]
  report.check(
    "priority-order", order == want && upcall && tooLow == Errno.EINVAL && setResults.allSatisfy { $0 == 0 },
    ok: "(handled \(list(order)), priorities 0 3 3 7 9)",
    fail: "handled \(list(order)), want \(list(want)); upcall raised \(upcall); set_priority results \(list(setResults)), priority 16 \(tooLow) (want -22)")

  // masked
  let quiet = ports[2]
  FIFO.mask(quiet)
  clearUpcall()
  Events.send(quiet)
  let whileMasked = FIFO.consume()
  let stillPending = FIFO.load(FIFO.word(quiet)) & pendingBit != 0
  let unmasked = Events.unmask(quiet)
  let afterUnmask = FIFO.consume()
  report.check(
    "masked", whileMasked.isEmpty && stillPending && unmasked == 0 && afterUnmask == [quiet] && upcallPending(),
    ok: "(port \(quiet) delivered by EVTCHNOP_unmask)",
    fail: "while masked \(list(whileMasked)), pending \(stillPending); unmask \(unmasked), then \(list(afterUnmask)), upcall \(upcallPending())")

  // loopback
  let unboundEnd = Events.allocUnbound(remote: Xen.domidSelf)
  let boundEnd = unboundEnd > 0 ? Events.bindInterdomain(remoteDomain: Xen.domidSelf, remotePort: UInt32(unboundEnd)) : unboundEnd
  if unboundEnd <= 0 || boundEnd <= 0 || unboundEnd >= 1024 || boundEnd >= 1024 {
    report.fail("loopback", "alloc_unbound returned \(unboundEnd), bind_interdomain \(boundEnd)")
  } else {
    let a = UInt32(unboundEnd), b = UInt32(boundEnd)
    FIFO.clearMask(a)
    FIFO.clearMask(b)
    let bindEvent = FIFO.consume()          // the new end starts pending (masked until now)
    _ = Events.unmask(b)
    let bindEvent2 = FIFO.consume()
    Events.send(b)
    let toA = FIFO.consume()
    Events.send(a)
    let toB = FIFO.consume()
    let closed = Events.close(b)
    let status = Events.status(a)
    Events.send(a)
    let afterClose = FIFO.consume()
    let bindSeen = bindEvent + bindEvent2 == [b]
    report.check(
      "loopback",
      bindSeen && toA == [a] && toB == [b] && closed == 0 && status.result == 0
        && status.status.status == UInt32(GS_EVTCHNSTAT_unbound) && afterClose.isEmpty,
      ok: "(ports \(a) and \(b) of one domain notify each other)",
      fail: "bind event \(list(bindEvent + bindEvent2)) (want [\(b)]), send on \(b) gave \(list(toA)), send on \(a) gave \(list(toB)); close \(closed); status of \(a) \(status.result)/\(status.status.status) (want 0/1); after close \(list(afterClose))")
    Events.close(a)
  }

  // reset
  let reset = resetEvents()
  let port = Events.bindIPI(vcpu: 0)
  let afterReset = port > 0 ? setPriority(UInt32(port), 1) : port
  report.check("reset", reset == 0 && afterReset == Errno.ENOSYS, ok: "(2-level again)",
               fail: "reset returned \(reset), set_priority after it \(afterReset) (want -38)")
  report.finish()
}
#endif
