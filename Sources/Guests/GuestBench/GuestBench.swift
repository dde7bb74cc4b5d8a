/// guest-bench: round-trip costs measured with RDTSC, median of `samples=<n>` samples each
/// (default 100000, at most 131072: the samples live in the 1 MiB static scratch area).
///   - a null hypercall: xen_version(XENVER_version)
///   - `cpuid` leaf 0, which every hypervisor intercepts (one exit and return)
///   - an empty measurement (the cost of the two RDTSCs themselves)
///   - EVTCHNOP_send to a port bound to this vcpu, and SCHEDOP_yield with nothing else runnable
/// Without a hypervisor the hypercall is skipped and the other two give the floor: the same work
/// with no hypervisor under the same QEMU.
///
/// With `yield_at_ms=T` it measures a vcpu switch instead: from system time T it times
/// `samples` SCHEDOP_yield calls. Two such domains pinned to one pcpu yield to each other, so
/// each sample is a round trip: two switches and two yields.
@main
struct GuestBench {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-bench is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

/// Fills `samples` with the cycles each call of `body` takes and returns the median.
@inline(__always)
func median(_ samples: UnsafeMutableBufferPointer<UInt64>, _ body: () -> Void) -> UInt64 {
  for _ in 0..<min(1000, samples.count) { body() }   // warm up
  for i in 0..<samples.count {
    let t0 = CPU.rdtsc()
    body()
    let t1 = CPU.rdtsc()
    samples[i] = t1 &- t0
  }
  var sorted = samples   // the same memory: sorts in place
  sorted.sort()
  return sorted[sorted.count / 2]
}

func run() -> Never {
  Console.print("guest-bench: start")
  let requested = StartInfo.options.integer("samples", default: 100_000)
  let samples = Guest.scratch(UInt64.self, count: max(1, requested))
  Console.print("bench: samples \(samples.count)")

  let yieldAt = StartInfo.options.integer("yield_at_ms", default: -1)
  if yieldAt >= 0 && Xen.present {
    guard SharedInfo.map() == 0 else {
      Console.print("bench: FAIL: shared_info could not be mapped")
      Xen.shutdown(.crash)
    }
    // Start together with the other domain, so every yield finds it waiting.
    while SystemTime.now() < UInt64(yieldAt) * 1_000_000 { CPU.pause() }
    let yield = median(samples) { Xen.yield() }
    Console.print("bench: yield median \(yield) cycles")
    Console.print("guest-bench: done")
    Xen.shutdown(.poweroff)
  }

  let empty = median(samples) { gs_barrier() }
  Console.print("bench: rdtsc median \(empty) cycles")

  if Xen.present {
    let hypercall = median(samples) { _ = hv_hypercall2(17, 0, 0) }
    Console.print("bench: hypercall median \(hypercall) cycles")
  } else {
    Console.print("bench: hypercall skipped (no hypervisor)")
  }

  let cpuid = median(samples) { _ = gs_cpuid(0, 0) }
  Console.print("bench: cpuid median \(cpuid) cycles")

  if Xen.present {
    // EVTCHNOP_send to a port of this vcpu (an IPI port bound to vcpu 0), with the callback
    // vector set. Interrupts stay off, so the upcall is not taken: after each send the guest
    // clears what its handler would (the port's pending bit, the selector, upcall_pending),
    // so every send finds the port idle and raises an upcall anew, and the next entry asks
    // for an interrupt window and the one after withdraws it.
    let port = Events.setUp() == 0 ? Events.bindIPI(vcpu: 0) : -1
    guard port >= 0 else {
      Console.print("bench: FAIL: no event channel for the send measurement (\(port))")
      Xen.shutdown(.crash)
    }
    let selector = SharedInfo.pendingSelector(0)
    let upcallPending = SharedInfo.upcallPending(0)
    let send = median(samples) {
      Events.send(UInt32(port))
      Events.clearPending(UInt32(port))
      _ = gs_xchg_word(selector, 0)
      gs_store8(upcallPending, 0)
    }
    Console.print("bench: send median \(send) cycles")
    Events.close(UInt32(port))
    // SCHEDOP_yield when nothing else is runnable here: the scheduler is asked and picks this
    // vcpu again.
    let yield = median(samples) { Xen.yield() }
    Console.print("bench: lone yield median \(yield) cycles")
  }
  Console.print("guest-bench: done")
  Xen.shutdown(.poweroff)
}
#endif
