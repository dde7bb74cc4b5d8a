/// guest-bad: misbehaves on purpose and checks that the hypervisor answers with errors instead of
/// faulting, hanging or ending the wrong thing. Every check prints one line,
/// "check <name>: ok" or "check <name>: FAIL (got X, want Y)"; the guest then prints
/// "guest-bad: N checks failed" if any did, "guest-bad: done", and powers off.
@main
struct GuestBad {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-bad is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var failures = 0

/// One check: `got` must equal `want`.
func check(_ name: StaticString, _ got: Int64, want: Int64) {
  if got == want {
    Console.print("check \(name): ok")
  } else {
    failures += 1
    Console.print("check \(name): FAIL (got \(got), want \(want))")
  }
}

/// One check: `got` must be negative (any error).
func checkNegative(_ name: StaticString, _ got: Int64) {
  if got < 0 {
    Console.print("check \(name): ok")
  } else {
    failures += 1
    Console.print("check \(name): FAIL (got \(got), want negative)")
  }
}

/// The guest-physical (= virtual) address of the last 64 bytes of RAM, if the memory map has RAM
/// ending below 3.75 GiB (so a hole above it is still mapped by the guest's page tables) and
/// those bytes hold none of the start-of-day structures the loader put in RAM.
func ramTail() -> UInt64? {
  guard let end = StartInfo.ramEnd, end >= 0x20_0000, end <= 0xe000_0000, let info = StartInfo.raw else {
    return nil
  }
  let tail = end - 64
  let taken: [(UInt64, UInt64)] = [
    (gs_start_info_address(), 56),
    (info.cmdline_paddr, 4096),
    (info.memmap_paddr, UInt64(info.memmap_entries) * 24),
    (info.modlist_paddr, UInt64(info.nr_modules) * 32),
  ]
  for (address, size) in taken where address != 0 && address < end && address + size > tail {
    return nil
  }
  if tail < gs_image_end() { return nil }
  return tail
}

func run() -> Never {
  Console.print("guest-bad: start")
  Guest.requireHypervisor("guest-bad")

  let message = Array("guest-bad: this line must not appear\n".utf8)
  let count = UInt64(message.count)

  // console_io(CONSOLEIO_write) with buffers the guest does not have.
  // Non-canonical (bits 63:47 not all equal): no translation exists.
  check("console-bad-pointer", Xen.hypercall(Hypercall.consoleIO, 0, count, 0xdead_beef_0000), want: Errno.EFAULT)
  // Canonical, but not mapped by the guest's page tables (they cover the first 4 GiB only).
  check("console-unmapped-pointer", Xen.hypercall(Hypercall.consoleIO, 0, count, 0x7fff_ffff_f000), want: Errno.EFAULT)

  // Buffers at and past the end of RAM. The last 64 bytes of RAM are filled with newlines first:
  // a hypervisor that copies in chunks may print part of a buffer before it reaches the end of
  // RAM, and that part should be blank lines, not garbage in front of the next line.
  if let tail = ramTail() {
    let p = UnsafeMutablePointer<UInt8>(bitPattern: UInt(tail))!
    for i in 0..<64 { p[i] = 0x0a }
    gs_barrier()
    // Mapped by the guest's page tables, but with no guest RAM behind it.
    let hole = (tail + 64 + 0x3f_ffff) & ~0x1f_ffff
    check("console-beyond-ram", Xen.hypercall(Hypercall.consoleIO, 0, count, hole), want: Errno.EFAULT)
    // Starts in RAM (16 bytes) and runs past its end.
    check("console-straddles-ram-end", Xen.hypercall(Hypercall.consoleIO, 0, 64, tail + 48), want: Errno.EFAULT)
    // An absurd count (count is a 32-bit `unsigned int` in Xen's interface, so the largest
    // there is): it runs off the end of RAM, and an error it must be.
    let huge = Xen.hypercall(Hypercall.consoleIO, 0, 0xFFFF_FFFF, tail)
    Console.print("console huge count returned \(huge)")
    checkNegative("console-huge-count", huge)
    // A count that makes buffer + count wrap around 2^64.
    let wrapping = Xen.hypercall(Hypercall.consoleIO, 0, ~UInt64(0) - 32, tail)
    Console.print("console wrapping count returned \(wrapping)")
    checkNegative("console-wrapping-count", wrapping)
  } else {
    Console.print("check console-beyond-ram: skipped (no usable end of RAM below 4 GiB)")
    Console.print("check console-straddles-ram-end: skipped (no usable end of RAM below 4 GiB)")
    Console.print("check console-huge-count: skipped (no usable end of RAM below 4 GiB)")
    Console.print("check console-wrapping-count: skipped (no usable end of RAM below 4 GiB)")
  }
  // An unknown console_io command.
  check("console-unknown-cmd", Xen.hypercall(Hypercall.consoleIO, 99, 0, 0), want: Errno.ENOSYS)

  // Hypercall numbers that do not exist.
  check("hypercall-63", Xen.hypercall(63), want: Errno.ENOSYS)
  check("hypercall-1000", Xen.hypercall(1000), want: Errno.ENOSYS)

  // Unknown sub-operations.
  check("xen-version-subop-99", Xen.xenVersion(99), want: Errno.ENOSYS)
  check("sched-op-subop-99", Xen.schedOp(99), want: Errno.ENOSYS)
  check("memory-op-subop-99", Xen.memoryOp(99), want: Errno.ENOSYS)

  // Output buffers the guest does not have.
  check("xen-version-bad-out-pointer", Xen.xenVersion(1, 0xdead_beef_0000), want: Errno.EFAULT)
  // A shutdown request whose argument cannot be read must fail, not shut the guest down.
  check("shutdown-bad-pointer", Xen.schedOp(2, 0x7fff_ffff_f000), want: Errno.EFAULT)
  // A vcpu that does not exist.
  check("vcpu-op-no-such-vcpu", Xen.vcpuOp(1, vcpu: 4096), want: Errno.ENOENT)

  if failures > 0 {
    Console.print("guest-bad: \(failures) checks failed")
  }
  Console.print("guest-bad: done")
  Xen.shutdown(.poweroff)
}
#endif
