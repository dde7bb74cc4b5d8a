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

/// One check that is true or false, with what was seen.
func checkTrue(_ name: StaticString, _ ok: Bool, _ detail: String) {
  if ok {
    Console.print("check \(name): ok")
  } else {
    failures += 1
    Console.print("check \(name): FAIL (\(detail))")
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

  hostileChecks()

  if failures > 0 {
    Console.print("guest-bad: \(failures) checks failed")
  }
  Console.print("guest-bad: done")
  Xen.shutdown(.poweroff)
}

// MARK: - Guest values that once trapped the hypervisor (docs/hypercalls.md, "Guest input never
// traps the hypervisor"). Before the fixes, each of these ended the whole machine or hung a pcpu.

let ms: UInt64 = 1_000_000

/// The timer, pointer and RIP checks, in that order (the pointer checks put data in the top page,
/// the RIP checks code). `hostile=<mask>` on the command line picks the groups: 1 timers,
/// 2 pointers, 4 RIP (default 7, all), so each trigger can be run alone against a hypervisor that
/// falls over at the first; 8 adds hlt-at-top, which QEMU's TCG cannot run (see hltAtTop).
func hostileChecks() {
  let groups = StartInfo.options.integer("hostile", default: 7)
  // Events: the timer checks wait for VIRQ_TIMER, and SystemTime needs shared_info.
  let setUp = Events.setUp()
  check("event-set-up", setUp, want: 0)
  let bound = Events.bindVIRQ(Events.virqTimer, vcpu: 0)
  checkTrue("bind-virq-timer", bound > 0, "got \(bound)")
  let timerPort = UInt32(truncatingIfNeeded: max(bound, 0))
  if bound > 0 { Events.unmask(timerPort) }
  if groups & 1 != 0 { timerChecks(timerPort) }

  // The last page of the address space, backed by a page of the guest's own heap.
  let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  page.initializeMemory(as: UInt8.self, repeating: 0xCC, count: 4096)     // int3 outside the code
  gs_map_top_page(UInt64(UInt(bitPattern: page)))
  gs_put_ret_at_zero()
  if groups & 2 != 0 {
    pointerChecks(page)
    remapChecks(page)
  }
  if groups & 4 != 0 { ripChecks(page) }
  if groups & 8 != 0 { hltAtTop(page, timerPort: timerPort) }
}

/// VCPUOP_set_periodic_timer as Xen bounds it (at least 1 ms, at most STIME_DELTA_MAX = 2^62 - 1),
/// and singleshot deadlines too far to ever come: none may hang the pcpu, and a near timer set
/// afterwards must still fire.
func timerChecks(_ port: UInt32) {
  check("periodic-below-1ms", Timers.setPeriodic(period: 999_999), want: Errno.EINVAL)
  check("periodic-2-to-62", Timers.setPeriodic(period: 0x4000_0000_0000_0000), want: Errno.EINVAL)
  check("periodic-int64-max", Timers.setPeriodic(period: 0x7FFF_FFFF_FFFF_FFFF), want: Errno.EINVAL)
  check("periodic-uint64-max", Timers.setPeriodic(period: ~0), want: Errno.EINVAL)
  // The largest period Xen takes: its first event would come in 146 years.
  check("periodic-stime-delta-max", Timers.setPeriodic(period: 0x3FFF_FFFF_FFFF_FFFF), want: 0)
  Guest.spin(100_000)
  Timers.stopPeriodic()

  check("singleshot-uint64-max", Timers.setSingleshot(at: ~0), want: 0)
  Guest.spin(100_000)
  check("singleshot-2-to-63", Timers.setSingleshot(at: 1 << 63), want: 0)
  Guest.spin(100_000)
  check("singleshot-2-to-62", Timers.setSingleshot(at: 1 << 62), want: 0)
  Guest.spin(100_000)
  check("set-timer-op-uint64-max", Timers.setTimerOp(~0), want: 0)
  Guest.spin(100_000)

  // A timer 2 ms ahead replaces the far one and fires (spinning with interrupts on, at most 2 s).
  let before = Events.count(port)
  let start = SystemTime.now()
  let armed = Timers.setSingleshot(at: start &+ 2 * ms)
  let fired = armed == 0 && Wait.until(.spin, deadline: start &+ 2_000 * ms) { Events.count(port) > before }
  CPU.disableInterrupts()
  checkTrue("timer-fires-after-far-deadlines", fired, "set returned \(armed), events \(Events.count(port) &- before)")
}

/// Hypercall structures whose last field lies past 2^64: the hypervisor once added the field's
/// offset to the pointer with a trapping `+`. A structure that ends exactly at 2^64 is fine.
func pointerChecks(_ page: UnsafeMutableRawPointer) {
  let top: UInt64 = GS_TOP_PAGE
  func store32(_ offset: Int, _ value: UInt32) { page.storeBytes(of: value, toByteOffset: offset, as: UInt32.self) }
  func store64(_ offset: Int, _ value: UInt64) { page.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
  func load32(_ offset: Int) -> UInt32 { page.load(fromByteOffset: offset, as: UInt32.self) }

  // XENVER_get_features {u32 submap_idx, u32 submap}.
  var info = gs_xen_feature_info(submap_idx: 0, submap: 0)
  let wanted = Xen.withArgument(&info) { Xen.xenVersion(6, $0) }
  store32(0xFFC, 0)
  check("features-struct-wraps", Xen.xenVersion(6, top + 0xFFC), want: Errno.EFAULT)
  store64(0xFF8, 0)
  let atTop = Xen.xenVersion(6, top + 0xFF8)
  checkTrue("features-struct-at-top", wanted == 0 && atTop == 0 && load32(0xFFC) == info.submap,
            "got \(atTop), submap \(hex(UInt64(load32(0xFFC)))), want 0 and \(hex(UInt64(info.submap)))")

  // XENMEM_memory_map {u32 nr_entries, u32 pad, u64 buffer}.
  store64(0xFF8, 0)
  check("memory-map-struct-wraps", Xen.memoryOp(9, top + 0xFF8), want: Errno.EFAULT)
  let entries = UnsafeMutableRawPointer.allocate(byteCount: 16 * 24, alignment: 8)
  store32(0xFF0, 16)
  store64(0xFF8, Xen.address(entries))
  let map = Xen.memoryOp(9, top + 0xFF0)
  checkTrue("memory-map-struct-at-top", map == 0 && load32(0xFF0) >= 1,
            "got \(map), nr_entries \(load32(0xFF0))")

  // EVTCHNOP_bind_ipi {u32 vcpu, u32 port}: no port may be allocated when the answer is -EFAULT.
  store32(0xFFC, 0)
  check("bind-ipi-struct-wraps", Xen.eventChannelOp(7, top + 0xFFC), want: Errno.EFAULT)
  store64(0xFF8, 0)
  let bind = Xen.eventChannelOp(7, top + 0xFF8)
  let port = load32(0xFFC)
  checkTrue("bind-ipi-struct-at-top", bind == 0 && port > 0, "got \(bind), port \(port)")
  if bind == 0 { Events.close(port) }
}

/// The same argument address, backed by another page between two hypercalls: the guest owns its
/// page tables and changes them without telling the hypervisor, so an argument must be read
/// through the tables as they are now (the hypervisor caches its last walk, docs/memory.md),
/// whichever level changed. HVMOP_get_param {u16 domid, u32 index at 4, u64 value at 8} reads
/// the index and writes the value. Leaves the top page on `page`.
func remapChecks(_ page: UnsafeMutableRawPointer) {
  let top: UInt64 = GS_TOP_PAGE
  let other = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  func put(_ target: UnsafeMutableRawPointer, index: UInt32, value: UInt64) {
    target.storeBytes(of: UInt16(0x7FF0), toByteOffset: 0xF00, as: UInt16.self)     // DOMID_SELF
    target.storeBytes(of: index, toByteOffset: 0xF04, as: UInt32.self)
    target.storeBytes(of: value, toByteOffset: 0xF08, as: UInt64.self)
  }
  func value(_ target: UnsafeMutableRawPointer) -> UInt64 { target.load(fromByteOffset: 0xF08, as: UInt64.self) }
  put(page, index: 0, value: 0x1111)                    // HVM_PARAM_CALLBACK_IRQ: set by Events.setUp
  put(other, index: 1000, value: 0x2222)                // no such parameter
  gs_barrier()
  let first = Xen.hvmOp(1, top + 0xF00)
  let callback = value(page)
  // Only the last-level entry changes: the other page's index is read, and nothing is written.
  gs_remap_top_page(UInt64(UInt(bitPattern: other)))
  let second = Xen.hvmOp(1, top + 0xF00)
  checkTrue("remapped-argument-page", first == 0 && callback != 0x1111 && second == Errno.EINVAL && value(other) == 0x2222,
            "got \(first) then \(second), values \(hex(callback)) and \(hex(value(other)))")
  // Not present any more: the same address is a fault now.
  gs_remap_top_page(0)
  check("unmapped-argument-page", Xen.hvmOp(1, top + 0xF00), want: Errno.EFAULT)
  // And back: the value is written to the page mapped now.
  put(page, index: 0, value: 0x3333)
  gs_barrier()
  gs_remap_top_page(UInt64(UInt(bitPattern: page)))
  let third = Xen.hvmOp(1, top + 0xF00)
  checkTrue("argument-page-mapped-again", third == 0 && value(page) == callback && value(other) == 0x2222,
            "got \(third), values \(hex(value(page))) and \(hex(value(other)))")
}

/// Puts `bytes` at the very end of the top page; returns the address of the first.
func codeAtTop(_ page: UnsafeMutableRawPointer, _ bytes: [UInt8]) -> UInt64 {
  for (i, byte) in bytes.enumerated() { page.storeBytes(of: byte, toByteOffset: 4096 - bytes.count + i, as: UInt8.self) }
  gs_barrier()
  return GS_TOP_PAGE + UInt64(4096 - bytes.count)
}

/// Intercepted instructions that end exactly at 2^64: the hypervisor completes them and must wrap
/// RIP to 0, as the CPU does. A RET at address 0 brings each call back.
func ripChecks(_ page: UnsafeMutableRawPointer) {
  func code(_ bytes: [UInt8]) -> UInt64 { codeAtTop(page, bytes) }

  // CPUID (0F A2) at 0xFFFFFFFFFFFFFFFE: Xen's leaf 0x40000000.
  var r = gs_call_registers(rax: 0x4000_0000, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0)
  gs_call_at(code([0x0F, 0xA2]), &r, 0)
  checkTrue("cpuid-at-top", r.rbx == 0x566e_6558 && r.rcx == 0x6558_4d4d && r.rdx == 0x4d4d_566e,
            "ebx \(hex(r.rbx)) ecx \(hex(r.rcx)) edx \(hex(r.rdx))")

  // RDMSR (0F 32) of IA32_PAT, then WRMSR (0F 30) of the same value.
  let pat = gs_rdmsr(0x277)
  r = gs_call_registers(rax: 0, rbx: 0, rcx: 0x277, rdx: 0, rsi: 0, rdi: 0)
  gs_call_at(code([0x0F, 0x32]), &r, 0)
  let read = (r.rdx << 32) | (r.rax & 0xFFFF_FFFF)
  checkTrue("rdmsr-at-top", read == pat, "got \(hex(read)), want \(hex(pat))")
  r = gs_call_registers(rax: pat & 0xFFFF_FFFF, rbx: 0, rcx: 0x277, rdx: pat >> 32, rsi: 0, rdi: 0)
  gs_call_at(code([0x0F, 0x30]), &r, 0)
  checkTrue("wrmsr-at-top", gs_rdmsr(0x277) == pat, "PAT \(hex(gs_rdmsr(0x277))), want \(hex(pat))")

  // VMMCALL (0F 01 D9) at 0xFFFFFFFFFFFFFFFD: xen_version(XENVER_version).
  r = gs_call_registers(rax: UInt64(Hypercall.xenVersion), rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0)
  gs_call_at(code([0x0F, 0x01, 0xD9]), &r, 0)
  checkTrue("vmmcall-at-top", r.rax == (4 << 16) | 17, "got \(hex(r.rax))")
}

/// HLT (F4) at 0xFFFFFFFFFFFFFFFF with interrupts on: the vcpu sleeps until a timer 2 ms ahead
/// fires; the upcall comes in at RIP 0 and returns there. Not in the default set: QEMU's TCG
/// (7.2) aborts on an instruction at that address whose translation saves the PC (its
/// translator takes a saved PC of -1 for "none": `gen_update_eip_cur: Assertion
/// s->pc_save != -1`), which an intercepted HLT does. The hypervisor's side is the same
/// `VMCB.advanceRIP(by:)` as for the other exits, tested on the host.
func hltAtTop(_ page: UnsafeMutableRawPointer, timerPort: UInt32) {
  let before = Events.count(timerPort)
  let armed = Timers.setSingleshot(at: SystemTime.now() &+ 2 * ms)
  var r = gs_call_registers(rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0)
  gs_call_at(codeAtTop(page, [0xF4]), &r, 1)
  checkTrue("hlt-at-top", armed == 0 && Events.count(timerPort) > before,
            "set returned \(armed), events \(Events.count(timerPort) &- before)")
}
#endif
