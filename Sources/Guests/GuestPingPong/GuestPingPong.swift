/// guest-pingpong: two domains bounce an event over an interdomain channel.
///   role=pong peer=<domid>            allocates the channel and answers every event on it
///   role=ping peer=<domid> rounds=N   binds to it and times N round trips (default 1000)
/// `wait=halt|block|poll|spin` picks how each side sleeps between events (default halt).
///
/// With no xenstore to publish a port number, ping finds pong's ports itself: pong does
/// alloc_unbound(remote = peer) twice, for the data port and then the stop port, and the lowest
/// free port each time, so data < stop. Ping tries bind_interdomain(peer, p) for p = 1, 2, … up
/// to 64: it succeeds only on a port that is unbound and waiting for ping's domain (any other
/// answers -EINVAL, and -ESRCH while pong's domain is not built yet). A sweep can pass the data
/// port before pong allocates it and then find the stop port (ping may be preempted mid-sweep),
/// so ping binds the two ports in whatever order it finds them, the second by a sweep over all
/// ports but the first, and takes the lower as the data port. It sweeps again, yielding in
/// between, for at most 5 s of system time. (Ports pong's domain already has, such as one the hypervisor set up
/// for its console, do not disturb this.)
///
/// Stopping: an event carries no data and closing a port does not notify the other end (as in
/// Xen), and pong is not told the number of rounds. So the stop is its own channel: when done,
/// ping sends once on the stop port; pong, seeing it, prints how many events it answered,
/// closes its ports and powers off. Ping does not wait for pong. Both print
/// "guest-pingpong: done" last.
///
/// Ping prints "guest-pingpong: rounds N mean-rtt-ns X mean-rtt-cycles Y": each round is one send
/// and the wait for the answer, timed with the TSC (`lfence; rdtsc`) and with system time.
@main
struct GuestPingPong {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-pingpong is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-pingpong")

let ms = SystemTime.nanosecondsPerMillisecond
/// How long ping looks for pong's ports, and how long it waits for one answer.
let bindTimeout: UInt64 = 5_000 * ms
let answerTimeout: UInt64 = 5_000 * ms
/// The highest port of pong's that ping tries.
let highestPeerPort: UInt32 = 64

/// Pong's handler for the data port: answer on the same port.
let answer: EventHandler = { port, _ in
  Events.send(port)
}

/// Calls `attempt` until it returns something other than -EINVAL/-ESRCH or `bindTimeout`
/// passes, yielding in between. The last result and how many tries it took.
func retrying(_ attempt: () -> Int64) -> (result: Int64, tries: Int) {
  let start = SystemTime.now()
  var tries = 0
  while true {
    let r = attempt()
    tries += 1
    if r >= 0 || (r != Errno.EINVAL && r != Errno.ESRCH) || SystemTime.now() &- start >= bindTimeout {
      return (r, tries)
    }
    Xen.yield()
  }
}

/// One sweep of bind_interdomain(peer, p) for p in `ports`: the first success as
/// (local port, peer port), else the last error.
func bindFirst(peer: UInt16, in ports: ClosedRange<UInt32>, skipping skipped: UInt32 = 0) -> (local: Int64, remote: UInt32) {
  var last = Errno.EINVAL
  for port in ports where port != skipped {
    let r = Events.bindInterdomain(remoteDomain: peer, remotePort: port)
    if r >= 0 { return (r, port) }
    last = r
    if r != Errno.EINVAL { break }   // -ESRCH (no such domain yet) holds for every port
  }
  return (last, 0)
}

func pong(peer: UInt16, mode: WaitMode) -> Never {
  let data = retrying { Events.allocUnbound(remote: peer) }.result
  let stop = retrying { Events.allocUnbound(remote: peer) }.result
  if data < 0 || stop < 0 { report.abort("alloc_unbound(remote \(peer)) returned \(data) and \(stop)") }
  let dataPort = UInt32(data), stopPort = UInt32(stop)
  Events.setHandler(dataPort, answer)
  report.line("pong allocated ports \(dataPort) (data) and \(stopPort) (stop) for domain \(peer)")
  let ports = [dataPort, stopPort]
  Wait.until(mode, ports: ports) { Events.count(stopPort) > 0 }
  report.line("pong answered \(Events.count(dataPort)) events")
  CPU.disableInterrupts()
  Events.close(dataPort)
  Events.close(stopPort)
  report.finish()
}

func ping(peer: UInt16, rounds: Int, mode: WaitMode) -> Never {
  // Interrupts off while binding: Xen makes a newly bound port pending at once, and that event
  // is not an answer; it is dropped before the first round.
  CPU.disableInterrupts()
  var data = (local: Errno.EINVAL, remote: UInt32(0))
  let (_, sweeps) = retrying {
    data = bindFirst(peer: peer, in: 1...highestPeerPort)
    return data.local
  }
  if data.local < 0 {
    report.abort("no port of domain \(peer) up to \(highestPeerPort) accepted bind_interdomain within 5 s (last answer \(data.local))")
  }
  var stop = (local: Errno.EINVAL, remote: UInt32(0))
  _ = retrying {
    stop = bindFirst(peer: peer, in: 1...highestPeerPort, skipping: data.remote)
    return stop.local
  }
  if stop.local < 0 {
    report.abort("no second port of domain \(peer) besides port \(data.remote) accepted bind_interdomain within 5 s (last answer \(stop.local))")
  }
  if stop.remote < data.remote { swap(&data, &stop) }   // pong's data port is the lower one
  let local = UInt32(data.local), localStop = UInt32(stop.local)
  Events.clearPending(local)
  Events.clearPending(localStop)
  report.line("ping bound local port \(local) to domain \(peer) port \(data.remote) after \(sweeps) sweeps, stop port \(localStop) to port \(stop.remote)")
  CPU.enableInterrupts()

  // The cost of a notification itself (the sender's EVTCHNOP_send), beside a null hypercall
  // measured the same way, here, in the same domain.
  var nullCycles: UInt64 = 0
  for _ in 0..<rounds {
    let n0 = CPU.rdtsc()
    _ = Xen.xenVersion(0)
    nullCycles &+= CPU.rdtsc() &- n0
  }
  let ports = [local]
  var cycles: UInt64 = 0, nanoseconds: UInt64 = 0, sendCycles: UInt64 = 0
  for round in 1...rounds {
    let target = Events.count(local) &+ 1
    let t0 = SystemTime.now()
    let c0 = CPU.rdtsc()
    let sent = Events.send(local)
    sendCycles &+= CPU.rdtsc() &- c0
    let answered = sent == 0 && Wait.until(mode, deadline: t0 &+ answerTimeout, ports: ports) { Events.count(local) >= target }
    let c1 = CPU.rdtsc()
    let t1 = SystemTime.now()
    if !answered {
      report.abort("round \(round): send returned \(sent), no answer within 5 s")
    }
    cycles &+= c1 &- c0
    nanoseconds &+= t1 &- t0
  }
  report.line("rounds \(rounds) mean-rtt-ns \(nanoseconds / UInt64(rounds)) mean-rtt-cycles \(cycles / UInt64(rounds))")
  report.line("send mean-cycles \(sendCycles / UInt64(rounds)) null-hypercall mean-cycles \(nullCycles / UInt64(rounds))")
  let stopped = Events.send(localStop)
  if stopped != 0 { report.fail("stop", "send on the stop port returned \(stopped)") }
  CPU.disableInterrupts()
  Events.close(local)
  Events.close(localStop)
  report.finish()
}

func run() -> Never {
  let options = StartInfo.options
  let role = options.value("role")
  let isPing = role.map { $0.elementsEqual("ping".utf8) } ?? false
  let isPong = role.map { $0.elementsEqual("pong".utf8) } ?? false
  let peer = options.integer("peer", default: 0)
  let rounds = options.integer("rounds", default: 1000)
  let mode = WaitMode.fromOptions(options)
  guard isPing || isPong, peer > 0, peer < Int(Xen.domidSelf), rounds > 0 else {
    report.line("usage: role=ping peer=<domid> [rounds=N] | role=pong peer=<domid> [wait=halt|block|poll|spin]")
    Xen.shutdown(.crash)
  }
  report.line("\(isPing ? "ping" : "pong"), peer domain \(peer)")
  Guest.requireHypervisor("guest-pingpong")
  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  report.line("waiting with \(mode.name)")
  CPU.enableInterrupts()
  if isPing { ping(peer: UInt16(peer), rounds: rounds, mode: mode) }
  pong(peer: UInt16(peer), mode: mode)
}
#endif
