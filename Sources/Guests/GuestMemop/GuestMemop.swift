/// guest-memop: exercises hypercall continuations. One memory_op(XENMEM_populate_physmap) asks for
/// `extents=<n>` (default 65536) single pages at consecutive gpfns just above the end of the
/// guest's RAM; the hypervisor is expected to do the work in chunks, preempting itself and
/// re-entering the same hypercall (a continuation) until it is done. The guest prints the result
/// (the number of extents populated), writes and reads back the first and last new page, prints
/// "guest-memop: done" and powers off. A short or failed result shuts down with reason crash.
@main
struct GuestMemop {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-memop is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

func run() -> Never {
  Console.print("guest-memop: start")
  Guest.requireHypervisor("guest-memop")

  // The gpfn list (xen_pfn_t: 8 bytes each, 4 in a 32-bit guest) lives in the static scratch
  // area (1 MiB: at most 131072 entries, 262144 in a 32-bit guest).
  let requested = StartInfo.options.integer("extents", default: 65536)
  let gpfns = Guest.scratch(XenPFN.self, count: max(1, requested))
  let count = UInt64(gpfns.count)

  // Start just above RAM, 2 MiB aligned; keep clear of the 32-bit MMIO hole (0xF0000000-4 GiB).
  let ramEnd = StartInfo.ramEnd ?? 0x4000_0000
  var first = (ramEnd + 0x1f_ffff) & ~0x1f_ffff
  if first < 0x1_0000_0000 && first + count * 4096 > 0xf000_0000 { first = 0x1_0000_0000 }
  for i in 0..<gpfns.count { gpfns[i] = XenPFN((first >> 12) + UInt64(i)) }
  Console.print("guest-memop: RAM ends at \(hex(ramEnd)); populating \(count) pages at \(hex(first))")

  let start = CPU.rdtsc()
  let done = Memory.populate(gpfns)
  let cycles = CPU.rdtsc() &- start
  Console.print("guest-memop: populate_physmap returned \(done) (\(cycles) cycles)")
  if done != Int64(count) {
    Console.print("guest-memop: FAIL (got \(done), want \(count))")
    Xen.shutdown(.crash)
  }

  // The new memory must now be there: write and read back the first and the last page (where
  // the guest's own page tables map them: the first 4 GiB).
  let last = first + (count - 1) * 4096
  for page in [first, last] where page + 4096 <= 0x1_0000_0000 {
    let p = UnsafeMutablePointer<UInt64>(bitPattern: UInt(page))!
    let pattern = 0x5a5a_0000_0000_0000 | page
    p[0] = pattern
    p[511] = ~pattern
    gs_barrier()
    if p[0] != pattern || p[511] != ~pattern {
      Console.print("guest-memop: FAIL: page \(hex(page)) did not keep what was written")
      Xen.shutdown(.crash)
    }
  }
  Console.print("guest-memop: first and last new page usable")
  Console.print("guest-memop: done")
  Xen.shutdown(.poweroff)
}
#endif
