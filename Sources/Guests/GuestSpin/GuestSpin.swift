/// guest-spin: a CPU-bound guest for scheduling and preemption tests. Runs `iterations=<n>`
/// rounds of arithmetic (default 200000), yielding the CPU every 1000 rounds and printing
/// "guest-spin: progress k/5" at each fifth of the way, then powers off.
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
#endif
