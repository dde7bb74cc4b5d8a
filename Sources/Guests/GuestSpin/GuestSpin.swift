/// guest-spin: a CPU-bound guest for scheduling and preemption tests. Runs `iterations=<n>`
/// rounds of arithmetic (default 200000), yielding the CPU every 1000 rounds and printing
/// "guest-spin: progress k/5" at each fifth of the way, then powers off.
///
/// With `from_ms=F until_ms=T` it is a hog for measuring CPU shares instead: it never yields,
/// spins until system time T ms (the hypervisor's clock, read through pvclock) and counts the
/// rounds it completed between F and T, so several hogs started at different moments measure
/// the same window. It also reads its runstate area at both ends of the window: the time the
/// hypervisor had it running in between, which under `-icount` (where the work a pcpu does in a
/// stretch of time depends on how QEMU shares its one thread among its CPUs) is the scheduler's
/// decision alone. It prints "guest-spin: window F-T ms: rounds R, ran N us of M us" (M: the
/// window's length) and powers off.
///
/// With `port_reads=N` or `cpuid_calls=N` it only exits, N times (I/O reads of port 0x61, or
/// CPUID), and powers off: the reproducer of docs/known-issues.md.
@main
struct GuestSpin {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-spin is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

func run() -> Never {
  Console.print("guest-spin: start")
  let from = StartInfo.options.integer("from_ms", default: -1)
  let until = StartInfo.options.integer("until_ms", default: -1)
  if from >= 0 && until > from { window(from: UInt64(from) * 1_000_000, until: UInt64(until) * 1_000_000) }
  let portReads = StartInfo.options.integer("port_reads", default: 0)
  if portReads > 0 { readPorts(portReads) }
  let cpuidCalls = StartInfo.options.integer("cpuid_calls", default: 0)
  if cpuidCalls > 0 {
    var sum: UInt32 = 0
    for _ in 0..<cpuidCalls { sum &+= CPU.cpuid(0).eax }
    Console.print("guest-spin: cpuid calls done (\(sum))")
    Xen.shutdown(.poweroff)
  }
  let iterations = StartInfo.options.integer("iterations", default: 200_000)
  Console.print("guest-spin: iterations \(iterations)")
  let start = CPU.rdtsc()
  var x: UInt64 = 0x9E37_79B9_7F4A_7C15
  var yields = 0
  var i = 0
  while i < iterations {
    // One round: 32 xorshift steps (about 200 instructions).
    for _ in 0..<32 {
      x ^= x << 13
      x ^= x >> 7
      x ^= x << 17
    }
    gs_barrier()
    i += 1
    if i % 1000 == 0 {
      Xen.yield()
      yields += 1
    }
    if iterations >= 5 && i % (iterations / 5) == 0 && i < iterations {
      Console.print("guest-spin: progress \(i / (iterations / 5))/5")
    }
  }
  let cycles = CPU.rdtsc() &- start
  Console.print("guest-spin: checksum \(hex(x)), \(yields) yields, \(cycles) cycles")
  Console.print("guest-spin: done")
  Xen.shutdown(.poweroff)
}

/// `port_reads=N`: N reads of port 0x61 (the PC speaker and PIT gate, which PVH domains do not have),
/// each an I/O exit: an exit storm like the port probing of a Linux boot (docs/known-issues.md).
func readPorts(_ count: Int) -> Never {
  Console.print("guest-spin: \(count) port reads")
  var ones = 0
  for i in 0..<count {
    if gs_inb(0x61) == 0xFF { ones += 1 }
    if count >= 5 && (i + 1) % (count / 5) == 0 && i + 1 < count {
      Console.print("guest-spin: progress \((i + 1) / (count / 5))/5")
    }
  }
  Console.print("guest-spin: port reads done, \(ones) of \(count) read all ones")
  Xen.shutdown(.poweroff)
}

/// One round of the same arithmetic as `run`, timed in windows of 64 rounds.
func window(from: UInt64, until: UInt64) -> Never {
  guard SharedInfo.map() == 0 else {
    Console.print("guest-spin: FAIL: shared_info could not be mapped")
    Xen.shutdown(.crash)
  }
  let area = UnsafeMutablePointer<gs_vcpu_runstate_info>.allocate(capacity: 1)
  UnsafeMutableRawPointer(area).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<gs_vcpu_runstate_info>.size)
  guard VCPUAreas.registerRunstate(vcpu: 0, at: area) == 0 else {
    Console.print("guest-spin: FAIL: the runstate area could not be registered")
    Xen.shutdown(.crash)
  }
  var x: UInt64 = 0x9E37_79B9_7F4A_7C15
  var rounds: UInt64 = 0
  var ran = RunInWindow(from: from, until: until)
  while true {
    let now = SystemTime.now()
    ran.observe(VCPUAreas.read(area), at: now)
    if now >= until { break }
    for _ in 0..<64 {
      for _ in 0..<32 {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
      }
      gs_barrier()
    }
    if now >= from { rounds &+= 64 }
  }
  Console.print("guest-spin: window \(from / 1_000_000)-\(until / 1_000_000) ms: rounds \(rounds), ran \(ran.total / 1000) us of \((until &- from) / 1000) us (checksum \(hex(x)))")
  Console.print("guest-spin: done")
  Xen.shutdown(.poweroff)
}

/// The time the vcpu ran inside [from, until), from its runstate area read between batches of
/// rounds. The area changes at each context switch: the running time up to the switch and when
/// the present stretch began. So a change between two readings closes the stretch seen at the
/// first one, which began at its entry time and lasted the growth of the running time. (Two
/// stretches between two readings, which a pcpu that stalls in mid-batch can give, count as
/// one from the first one's start.)
struct RunInWindow {
  let from: UInt64
  let until: UInt64
  private(set) var total: UInt64 = 0
  private var last: Runstate?

  init(from: UInt64, until: UInt64) {
    self.from = from
    self.until = until
  }

  /// A reading of the area at system time `time`, while the vcpu runs.
  mutating func observe(_ reading: Runstate, at time: UInt64) {
    if let last, reading.stateEntryTime != last.stateEntryTime {
      add(start: last.stateEntryTime, end: last.stateEntryTime &+ (reading.running &- last.running))
    }
    last = reading
    if time >= until { add(start: reading.stateEntryTime, end: time) }
  }

  private mutating func add(start: UInt64, end: UInt64) {
    let a = max(start, from), b = min(end, until)
    if b > a { total &+= b &- a }
  }
}
#endif
