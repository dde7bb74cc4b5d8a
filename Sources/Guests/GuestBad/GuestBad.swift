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

/// The timer, pointer, RIP, exception and memory checks, in that order (the pointer checks put
/// data in the top page, the RIP checks code; the memory checks move shared_info, so they come
/// last). `hostile=<mask>` on the command line picks the groups: 1 timers, 2 pointers, 4 RIP,
/// 32 exceptions, 16 memory (default 55, all of them), so each trigger can be run alone against
/// a hypervisor that falls over at the first; 8 adds hlt-at-top and 128 icebp, which QEMU 7.2's
/// TCG cannot run (see hltAtTop and icebp).
func hostileChecks() {
  let groups = StartInfo.options.integer("hostile", default: 55)
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
  if groups & 32 != 0 { exceptionChecks() }
  if groups & 128 != 0 { icebp() }
  if groups & 16 != 0 { memoryChecks(timerPort: timerPort) }
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

// MARK: - Exceptions: what the hypervisor intercepts and hands back. #DB is intercepted and
// reflected unchanged, ICEBP becomes a #DB after it, WBINVD and INVD do nothing, RDPMC is #GP(0),
// INVLPGA #UD, and a CR4 write with a bit the guest may not set #GP(0). The handler is the
// guest's own IDT, told which vectors to expect (gs_catch_exceptions): it records them and
// returns instead of ending the guest.

let singleStepBit: UInt64 = 1 << 14      // DR6.BS
let trapFlag: UInt64 = 1 << 8            // RFLAGS.TF
/// DR6 with no debug condition recorded (bits 0-3 and 13-15 clear, the rest as they read).
let dr6Clear: UInt64 = 0xFFFF_0FF0

/// `hostile` group 32, with interrupts off.
func exceptionChecks() {
  CPU.disableInterrupts()
  singleStep()
  cacheFlushes()
  rdpmcRaisesGP()
  invlpgaRaisesUD()
  cr4RefusedWrites()
  cr4ValidToggles()
}

/// What was caught, for a FAIL line.
func describe(_ c: gs_caught_exception, want: UInt64) -> String {
  "\(c.count) caught, the last vector \(c.vector) error \(hex(c.error_code)) at RIP \(hex(c.rip)) (want \(hex(want))), RFLAGS \(hex(c.rflags)), DR6 \(hex(c.dr6))"
}

/// RFLAGS.TF set by POPFQ, then one NOP: exactly one #DB, after the NOP, with DR6.BS set and TF
/// set in the RFLAGS it pushed; the handler clears TF there, so TF is clear afterwards.
func singleStep() {
  gs_write_dr6(dr6Clear)
  gs_catch_exceptions(1 << 1, 0)
  let after = gs_single_step_nop()
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  let tf = gs_read_rflags() & trapFlag
  checkTrue("single-step",
            caught.count == 1 && caught.vector == 1 && caught.rip == after && caught.dr6 & singleStepBit != 0
              && caught.rflags & trapFlag != 0 && tf == 0,
            "\(describe(caught, want: after)), TF afterwards \(tf >> 8)")
}

/// ICEBP (F1): exactly one #DB, whose RIP is the instruction after the ICEBP byte (the hypervisor
/// intercepts ICEBP, moves RIP past it and injects #DB). `hostile` mask bit 128, not in the
/// default set: QEMU 7.2's TCG has no ICEBP (its translator leaves it out unless built with
/// WANT_ICEBP) and raises #UD for it itself, without the intercept; later QEMU versions
/// implement it. A #UD is caught too, so that shows as a FAIL (vector 6 at the ICEBP).
func icebp() {
  CPU.disableInterrupts()
  gs_write_dr6(dr6Clear)
  gs_catch_exceptions(1 << 1 | 1 << 6, 1)
  let after = gs_icebp()
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  checkTrue("icebp", caught.count == 1 && caught.vector == 1 && caught.rip == after, describe(caught, want: after))
}

/// WBINVD and INVD: the guest goes on after each, and INVD drops nothing it wrote (the
/// hypervisor executes neither).
func cacheFlushes() {
  gs_wbinvd()
  checkTrue("wbinvd", true, "")
  let word = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  gs_atomic_store(word, 0x0123_4567_89AB_CDEF)
  gs_invd()
  let value = gs_load64(word)
  checkTrue("invd", value == 0x0123_4567_89AB_CDEF, "the word written before INVD reads \(hex(value))")
}

/// RDPMC of counter 0: #GP with error code 0 at the RDPMC (no performance counters are offered).
func rdpmcRaisesGP() {
  gs_catch_exceptions(1 << 13 | 1 << 6, 2)
  let at = gs_rdpmc_probe(0)
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  checkTrue("rdpmc-raises-gp", caught.count == 1 && caught.vector == 13 && caught.error_code == 0 && caught.rip == at,
            describe(caught, want: at))
}

/// INVLPGA with RAX = 0, ECX = 0: #UD at the INVLPGA (SVM instructions are not offered).
func invlpgaRaisesUD() {
  gs_catch_exceptions(1 << 6 | 1 << 13, 3)
  let at = gs_invlpga_probe()
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  checkTrue("invlpga-raises-ud", caught.count == 1 && caught.vector == 6 && caught.rip == at, describe(caught, want: at))
}

/// CR4 writes the hypervisor must refuse with #GP(0) at the MOV, leaving CR4 as it was (Xen's
/// hvm_set_cr4): bit 15 (reserved in every CPU), OSXSAVE (bit 18: XSAVE is not offered), bit 32
/// (above the architectural bits) and PAE cleared in long mode.
func cr4RefusedWrites() {
  let cr4 = gs_read_cr4()
  let refused: [(StaticString, UInt64)] = [
    ("cr4-reserved-bit-raises-gp", cr4 | 1 << 15),
    ("cr4-unoffered-bit-raises-gp", cr4 | 1 << 18),
    ("cr4-high-bit-raises-gp", cr4 | 1 << 32),
    ("cr4-clear-pae-raises-gp", cr4 & ~(1 << 5)),
  ]
  for (name, value) in refused {
    gs_catch_exceptions(1 << 13 | 1 << 6, 3)
    let at = gs_write_cr4_probe(value)
    let caught = gs_caught_exception()
    gs_catch_exceptions(0, 0)
    let after = gs_read_cr4()
    checkTrue(name, caught.count == 1 && caught.vector == 13 && caught.error_code == 0 && caught.rip == at && after == cr4,
              "\(describe(caught, want: at)), CR4 \(hex(cr4)) -> \(hex(after)) writing \(hex(value))")
  }
}

/// CR4 writes the hypervisor must carry out: TSD on and off through R9 (a REX prefix to decode),
/// OSXMMEXCPT off and on through RAX. Each read back as written, no exception, the guest goes on.
func cr4ValidToggles() {
  let cr4 = gs_read_cr4()
  let tsd: UInt64 = 1 << 2, osxmmexcpt: UInt64 = 1 << 10
  gs_catch_exceptions(1 << 13 | 1 << 6, 0)
  _ = gs_write_cr4_r9_probe(cr4 | tsd)
  let withTSD = gs_read_cr4()
  _ = gs_write_cr4_r9_probe(cr4 & ~tsd)
  let withoutTSD = gs_read_cr4()
  _ = gs_write_cr4_r9_probe(cr4)
  let tsdCaught = gs_caught_exception()
  checkTrue("cr4-tsd-on-off", tsdCaught.count == 0 && withTSD == cr4 | tsd && withoutTSD == cr4 & ~tsd && gs_read_cr4() == cr4,
            "CR4 \(hex(cr4)): with TSD \(hex(withTSD)), without \(hex(withoutTSD)), \(tsdCaught.count) exceptions (the last vector \(tsdCaught.vector))")
  gs_catch_exceptions(1 << 13 | 1 << 6, 0)
  _ = gs_write_cr4_probe(cr4 & ~osxmmexcpt)
  let without = gs_read_cr4()
  _ = gs_write_cr4_probe(cr4 | osxmmexcpt)
  let with = gs_read_cr4()
  _ = gs_write_cr4_probe(cr4)
  let caught = gs_caught_exception()
  gs_catch_exceptions(0, 0)
  checkTrue("cr4-osxmmexcpt-off-on", caught.count == 0 && without == cr4 & ~osxmmexcpt && with == cr4 | osxmmexcpt && gs_read_cr4() == cr4,
            "CR4 \(hex(cr4)): without OSXMMEXCPT \(hex(without)), with \(hex(with)), \(caught.count) exceptions (the last vector \(caught.vector))")
}

// MARK: - Memory: pages given back inside 2 MiB blocks, shared_info moved anywhere, special pages
// given back, a sparse populate storm. What a guest may do to its own p2m with memory_op (as
// Linux's balloon driver and its shared_info setup do, and then some), each answered as Xen does.

let blockPages: UInt64 = 512

/// The names of the memory checks, in the order they print.
let memoryCheckNames: [StaticString] = [
  "release-page-in-large-block", "repopulate-page-in-large-block",
  "release-head-of-large-block", "repopulate-head-of-large-block",
  "release-block-page-by-page", "repopulate-block-page-by-page",
  "populate-stops-at-maxmem", "sparse-populate-storm", "release-console-ring",
  "shared-info-to-large-block-head", "shared-info-moves-repeatedly", "release-shared-info-page",
]

/// The gfns the memory checks use. The RAM blocks are whole 2 MiB blocks above the guest's image,
/// which the domain builder maps with one 2 MiB page each; `fresh` is unpopulated space above RAM,
/// still inside the guest's 4 GiB identity map (and below the MMIO hole).
struct MemoryPlan {
  /// Pages given back to make room before populating elsewhere (`makeRoom`), from the second
  /// page of the block on (the head page has a check of its own).
  var donor: UInt64
  var donorNext = 1
  /// shared_info's first new place, the head of a 2 MiB block (and a page in its middle later).
  let sharedHead: UInt64
  /// A block with a page in the middle given back and populated again.
  let splitBlock: UInt64
  /// A block with its head page given back and populated again.
  let headBlock: UInt64
  /// Every page given back one by one and populated again.
  let wholeBlock: UInt64
  /// More places for shared_info: its head and its last page.
  let sharedBlock: UInt64
  /// Given back whole (order 9) before the storm and populated again after it.
  let allotmentBlock: UInt64
  /// Unpopulated: [fresh, fresh + 4096) tops the reservation up to maxmem, then the console and
  /// shared_info checks populate pages at fresh + 4352 and fresh + 4608, and fresh + 4864 is a
  /// place for shared_info with no RAM behind it.
  let fresh: UInt64
  /// Where Events.setUp put shared_info.
  let sharedHome: UInt64

  static let blocks: UInt64 = 7

  init(firstBlock: UInt64, fresh: UInt64, sharedHome: UInt64) {
    donor = firstBlock
    sharedHead = firstBlock + blockPages
    splitBlock = firstBlock + 2 * blockPages
    headBlock = firstBlock + 3 * blockPages
    wholeBlock = firstBlock + 4 * blockPages
    sharedBlock = firstBlock + 5 * blockPages
    allotmentBlock = firstBlock + 6 * blockPages
    self.fresh = fresh
    self.sharedHome = sharedHome
  }

  /// Gives `count` pages of the donor block back, so that as many can be populated elsewhere
  /// without going over maxmem. False if one was refused.
  mutating func makeRoom(_ count: Int) -> Bool {
    for _ in 0..<count {
      guard donorNext < Int(blockPages), Memory.release(donor + UInt64(donorNext)) == 1 else { return false }
      donorNext += 1
    }
    return true
  }
}

/// Page `gfn` through the identity map (the gfn must be below 4 GiB and mapped).
func pageWords(_ gfn: UInt64) -> UnsafeMutablePointer<UInt64> {
  UnsafeMutablePointer<UInt64>(bitPattern: UInt(gfn << 12))!
}

/// Word `word` of what the memory checks write into page `gfn`: different for every page and
/// offset, with the low 16 bits clear, so an event bit, a flag or a small index set in the page
/// shows. With `ringIndices` the page also looks like a console ring with 4 bytes to send
/// (in_cons = in_prod = 0 at 3072, out_cons 0x100 and out_prod 0x104 at 3080): a backend that
/// took it for the ring would consume them and move out_cons.
func patternWord(_ gfn: UInt64, _ word: Int, ringIndices: Bool = false) -> UInt64 {
  if ringIndices && word == 384 { return 0 }
  if ringIndices && word == 385 { return 0x104 << 32 | 0x100 }
  return 0x5AA5_0000_0000_0000 ^ (gfn << 32) ^ (UInt64(word) << 16)
}

func fillPage(_ gfn: UInt64, ringIndices: Bool = false) {
  let p = pageWords(gfn)
  for w in 0..<512 { p[w] = patternWord(gfn, w, ringIndices: ringIndices) }
  gs_barrier()
}

/// Where page `gfn` no longer holds its pattern ("gfn 0x… word n: 0x…, want 0x…"), or nil.
func patternDamage(_ gfn: UInt64, ringIndices: Bool = false) -> String? {
  gs_barrier()
  let p = pageWords(gfn)
  for w in 0..<512 {
    let want = patternWord(gfn, w, ringIndices: ringIndices)
    let got = gs_load64(p + w)
    if got != want { return "gfn \(hex(gfn)) word \(w): \(hex(got)), want \(hex(want))" }
  }
  return nil
}

func fillBlock(_ block: UInt64) {
  for i in 0..<blockPages { fillPage(block + i) }
}

/// The first page of the block at `block`, other than those in `except`, that lost its pattern.
func blockDamage(_ block: UInt64, except: [UInt64] = []) -> String? {
  for i in 0..<blockPages where !except.contains(i) {
    if let damage = patternDamage(block + i) { return damage }
  }
  return nil
}

/// Whether the shared_info page is the page at `gfn` now: `port` (bound by this guest and masked)
/// shows as masked there, and after EVTCHNOP_send it shows as pending there. Nil if so, else what
/// was seen. Leaves the port's pending bit clear.
func sharedInfoProblem(at gfn: UInt64, port: UInt32) -> String? {
  let base = gfn << 12
  let word = UInt64(port / 64) * 8, bit = port % 64
  let mask = UnsafeMutablePointer<UInt64>(bitPattern: UInt(base + UInt64(GS_SHARED_INFO_EVTCHN_MASK) + word))!
  let pending = UnsafeMutablePointer<UInt64>(bitPattern: UInt(base + UInt64(GS_SHARED_INFO_EVTCHN_PENDING) + word))!
  let masked = gs_load64(mask) >> UInt64(bit) & 1 != 0
  _ = gs_btr64(pending, bit)
  let sent = Events.send(port)
  let seen = gs_btr64(pending, bit) != 0
  if masked && sent == 0 && seen { return nil }
  return "at \(hex(gfn)): port \(port) masked \(masked), send \(sent), pending \(seen)"
}

/// HVMOP_get_param(DOMID_SELF, index): the result and the value.
func hvmParam(_ index: UInt32) -> (result: Int64, value: UInt64) {
  var param = gs_xen_hvm_param(domid: Xen.domidSelf, pad: 0, index: index, value: 0)
  let r = Xen.withArgument(&param) { Xen.hvmOp(1, $0) }
  return (r, param.value)
}

/// TSC ticks per millisecond of system time (measured over 2 ms), for waiting while shared_info
/// (and with it the clock) is away.
func tscPerMillisecond() -> UInt64 {
  let start = SystemTime.now(), tsc = CPU.rdtsc()
  guard start != 0 else { return 1_000_000 }
  var spins = 0
  while SystemTime.now() < start &+ 2 * ms && spins < 50_000_000 {
    CPU.pause()
    spins += 1
  }
  return max(1, (CPU.rdtsc() &- tsc) / 2)
}

/// About `count` ms by the TSC, yielding now and then (so whatever the hypervisor does for the
/// domain outside its hypercalls gets to run), interrupts left as they are (off).
func pass(milliseconds count: UInt64, tscPerMs: UInt64) {
  let end = CPU.rdtsc() &+ count * tscPerMs
  var spins = 0
  while CPU.rdtsc() < end && spins < 5_000_000 {
    if spins % 64 == 0 { Xen.yield() }
    CPU.pause()
    spins += 1
  }
}

/// The memory group, with interrupts off from here on: the upcall handler looks for shared_info
/// where GuestKit put it, and these checks move it. shared_info is home again after each check
/// that moves it (the last one gives it back, then places it home again).
func memoryChecks(timerPort: UInt32) {
  let firstBlock = ((gs_image_end() + 0x1f_ffff) & ~0x1f_ffff) >> 12
  let blocksEnd = (firstBlock + MemoryPlan.blocks * blockPages) << 12
  let inRAM = StartInfo.memoryMap.contains { $0.type == 1 && $0.address <= firstBlock << 12 && $0.end >= blocksEnd }
  guard SharedInfo.isMapped, let ramEnd = StartInfo.ramEnd, ramEnd <= 0xe000_0000, inRAM else {
    for name in memoryCheckNames {
      Console.print("check \(name): skipped (needs shared_info and RAM from \(hex(firstBlock << 12)) to \(hex(blocksEnd)), ending below 3.5 GiB)")
    }
    return
  }
  CPU.disableInterrupts()
  var plan = MemoryPlan(
    firstBlock: firstBlock, fresh: (((ramEnd + 0x1f_ffff) & ~0x1f_ffff) >> 12) + blockPages,
    sharedHome: SharedInfo.address >> 12)

  releaseInBlock("release-page-in-large-block", "repopulate-page-in-large-block", block: plan.splitBlock, page: 7)
  releaseInBlock("release-head-of-large-block", "repopulate-head-of-large-block", block: plan.headBlock, page: 0)
  releaseBlockPageByPage(plan.wholeBlock)
  populateStopsAtMaxmem(fresh: plan.fresh)
  sparsePopulateStorm(plan)
  releaseConsoleRing(&plan)

  // A masked IPI port of vcpu 0 shows where shared_info is: its mask bit is in the page, and a
  // send sets its pending bit there (and nothing else: no upcall).
  let bound = Events.bindIPI(vcpu: 0)
  let probe = UInt32(truncatingIfNeeded: max(bound, 0))
  if bound > 0 { Events.mask(probe) }
  sharedInfoToLargeBlockHead(plan, probe: probe, bound: bound)
  sharedInfoMovesRepeatedly(plan, probe: probe)
  releaseSharedInfoPage(&plan, probe: probe, timerPort: timerPort)
}

/// Page `index` of a block mapped with one 2 MiB page, given back (decrease_reservation) and
/// populated again: each answers 1 and moves the reservation by exactly one page, the other 511
/// pages keep what was written to them (the 2 MiB mapping was split, not dropped or remapped),
/// and the page populated again is usable.
func releaseInBlock(_ releaseName: StaticString, _ repopulateName: StaticString, block: UInt64, page index: UInt64) {
  fillBlock(block)
  let gfn = block + index
  let before = Memory.currentReservation()
  let released = Memory.release(gfn)
  let after = Memory.currentReservation()
  let damage = blockDamage(block, except: [index])
  checkTrue(releaseName, released == 1 && after == before - 1 && damage == nil,
            "released \(released), reservation \(before) -> \(after), \(damage ?? "the other pages intact")")

  let populated = Memory.populate(gfn)
  let again = Memory.currentReservation()
  var pageDamage: String? = "not populated"
  if populated == 1 {
    fillPage(gfn)
    pageDamage = patternDamage(gfn)
  }
  let rest = blockDamage(block, except: [index])
  checkTrue(repopulateName, populated == 1 && again == after + 1 && pageDamage == nil && rest == nil,
            "populated \(populated), reservation \(after) -> \(again), page \(pageDamage ?? "usable"), \(rest ?? "the other pages intact")")
}

/// All 512 pages of a 2 MiB block given back one by one, then populated again one by one: every
/// call answers 1 and moves the reservation by exactly one page, the reservation never goes over
/// maxmem, and the pages populated again are usable.
func releaseBlockPageByPage(_ block: UInt64) {
  var reservation = Memory.currentReservation()
  var problem: String? = nil
  for i in 0..<blockPages {
    let released = Memory.release(block + i)
    let now = Memory.currentReservation()
    if released != 1 || now != reservation - 1 {
      problem = "page \(i): released \(released), reservation \(reservation) -> \(now)"
      break
    }
    reservation = now
  }
  checkTrue("release-block-page-by-page", problem == nil, problem ?? "")

  let maximum = Memory.maximumReservation()
  problem = nil
  var populated: UInt64 = 0
  for i in 0..<blockPages {
    let r = Memory.populate(block + i)
    let now = Memory.currentReservation()
    if r == 1 { populated += 1 }
    if r != 1 || now != reservation + 1 || now > maximum {
      problem = "page \(i): populated \(r), reservation \(reservation) -> \(now), maxmem \(maximum)"
      break
    }
    reservation = now
  }
  if problem == nil {
    for i in 0..<populated { fillPage(block + i) }
    for i in 0..<populated {
      if let damage = patternDamage(block + i) {
        problem = damage
        break
      }
    }
  }
  checkTrue("repopulate-block-page-by-page", problem == nil, problem ?? "")
}

/// The reservation topped up to maxmem with pages above RAM: the next populate_physmap is refused
/// (0, or a negative errno) and the reservation stays at maxmem. The pages go back afterwards.
func populateStopsAtMaxmem(fresh: UInt64) {
  let maximum = Memory.maximumReservation()
  let start = Memory.currentReservation()
  let room = maximum - start
  guard maximum > 0, start > 0, room >= 0 else {
    checkTrue("populate-stops-at-maxmem", false, "reservation \(start) of maxmem \(maximum)")
    return
  }
  guard room <= 4096 else {
    Console.print("check populate-stops-at-maxmem: skipped (maxmem is \(room) pages above the reservation)")
    return
  }
  var problem: String? = nil
  var added: UInt64 = 0
  while added < UInt64(room) {
    let r = Memory.populate(fresh + added)
    if r != 1 {
      problem = "topping up: page \(added) of \(room) populated \(r)"
      break
    }
    added += 1
  }
  let full = Memory.currentReservation()
  let over = Memory.populate(fresh + 4096)
  let afterOver = Memory.currentReservation()
  if over == 1 { Memory.release(fresh + 4096) }
  var returned: UInt64 = 0
  for i in 0..<added where Memory.release(fresh + i) == 1 { returned += 1 }
  let end = Memory.currentReservation()
  checkTrue("populate-stops-at-maxmem",
            problem == nil && full == maximum && over <= 0 && afterOver == maximum && returned == added && end == start,
            "\(problem ?? "topped up \(added) pages"): reservation \(full) of maxmem \(maximum), one more populated \(over) -> \(afterOver), \(returned) of \(added) given back, reservation \(end) (was \(start))")
}

/// A sparse storm: one page populated and given back in each of up to 16384 fresh 2 MiB regions
/// (gfn (16 << 18) + (i << 9) + 1, 32 GiB of guest-physical space from 16 GiB up), each needing a
/// page table of its own, 32 regions per populate_physmap and per decrease_reservation. First a
/// block of RAM mapped with one 2 MiB page is given back whole (order 9), which makes the room
/// and hands its 2 MiB back to the hypervisor. Either every populate succeeds (the emptied tables
/// are freed) or one is refused (fewer pages than asked for, or a negative errno) once the
/// domain's table pool is full; either way the reservation ends where the storm found it, and the
/// domain keeps its own allotment: the block comes back as one 2 MiB extent, usable. A hypervisor
/// that let the tables eat its memory has nothing left for that.
func sparsePopulateStorm(_ plan: MemoryPlan) {
  let regions = 16384, batch = 32
  let block = plan.allotmentBlock
  let start = Memory.currentReservation()
  let released = Memory.release(block, order: 9)
  let roomMade = Memory.currentReservation()
  var problem: String? = nil
  if released != 1 || roomMade != start - Int64(blockPages) {
    problem = "the block at \(hex(block << 12)) given back whole: \(released), reservation \(start) -> \(roomMade)"
  }
  let gfns = UnsafeMutablePointer<XenPFN>.allocate(capacity: batch)
  var stormed = 0
  var refused: Int64? = nil
  while stormed < regions && problem == nil && refused == nil {
    for i in 0..<batch { gfns[i] = XenPFN((UInt64(16) << 18) + (UInt64(stormed + i) << 9) + 1) }
    let populated = Memory.populate(UnsafeMutableBufferPointer(start: gfns, count: batch))
    let done = Int(max(0, min(populated, Int64(batch))))
    let given = done > 0 ? Memory.release(UnsafeMutableBufferPointer(start: gfns, count: done)) : 0
    if populated > Int64(batch) || given != Int64(done) {
      problem = "regions \(stormed) to \(stormed + batch - 1): populated \(populated), gave back \(given)"
    } else if done < batch {
      refused = populated
    }
    stormed += done
  }
  let afterStorm = Memory.currentReservation()
  if let refused {
    Console.print("sparse populate storm: \(stormed) of \(regions) regions, then populate answered \(refused) for \(batch)")
  } else {
    Console.print("sparse populate storm: \(stormed) of \(regions) regions populated and given back")
  }
  if problem == nil && afterStorm != roomMade { problem = "reservation \(roomMade) before the storm, \(afterStorm) after" }

  // The domain's own allotment: the block it gave back, populated again.
  if problem == nil {
    let populated = Memory.populate(block, order: 9)
    let end = Memory.currentReservation()
    if populated != 1 || end != start {
      problem = "after \(stormed) regions, the block at \(hex(block << 12)) populated again: \(populated), reservation \(end) (was \(start))"
    } else {
      fillBlock(block)
      if let damage = blockDamage(block) { problem = "after the storm: \(damage)" }
    }
  }
  checkTrue("sparse-populate-storm", problem == nil, problem ?? "")
}

/// Gives the special page at `gfn` back, populates its gfn again if that worked and `again`,
/// then populates four fresh pages from `fresh` (stopping at the first refusal, which becomes
/// `problem`). Returns what the give-back and the repopulation answered, and the pages now
/// populated (the special page's gfn first, if it is one of them).
func giveBackThenPopulate(_ gfn: UInt64, again: Bool, fresh: UInt64, problem: inout String?)
  -> (released: Int64, populatedAgain: Int64, pages: [UInt64]) {
  let released = Memory.release(gfn)
  var pages: [UInt64] = []
  var populatedAgain: Int64 = 0
  if released == 1 && again {
    populatedAgain = Memory.populate(gfn)
    if populatedAgain == 1 { pages.append(gfn) }
  }
  for i in 0..<UInt64(4) where problem == nil {
    let page = fresh + i
    let r = Memory.populate(page)
    if r == 1 { pages.append(page) } else { problem = "populating \(hex(page << 12)): \(r)" }
  }
  return (released, populatedAgain, pages)
}

/// The console ring page (HVM_PARAM_CONSOLE_PFN) given back with decrease_reservation: that may
/// succeed or fail, but the console backend must not write into memory the guest populates
/// afterwards. Fresh pages (and the ring's own gfn, if it was given back and can be populated)
/// are filled with a pattern that looks like a ring with bytes to send, the console port is
/// notified, and 20 ms later every page must still hold the pattern.
func releaseConsoleRing(_ plan: inout MemoryPlan) {
  let pfn = hvmParam(17), evtchn = hvmParam(18)
  guard pfn.result == 0, pfn.value != 0, evtchn.result == 0, evtchn.value != 0 else {
    checkTrue("release-console-ring", false,
              "HVM_PARAM_CONSOLE_PFN \(pfn.result) \(hex(pfn.value)), HVM_PARAM_CONSOLE_EVTCHN \(evtchn.result) \(evtchn.value)")
    return
  }
  let ring = pfn.value, port = UInt32(truncatingIfNeeded: evtchn.value)
  var problem: String? = plan.makeRoom(5) ? nil : "no room made: a donor page was not given back"
  // Populated again only below 4 GiB, where the identity map reaches it to fill it (at 0xFEFFF,
  // in the reserved hole, populate refuses it anyway).
  let (released, ringPopulated, pages) = giveBackThenPopulate(
    ring, again: ring < 1 << 20, fresh: plan.fresh + 4352, problem: &problem)
  for gfn in pages { fillPage(gfn, ringIndices: true) }
  var sent: Int64 = 0
  for _ in 0..<3 where sent == 0 { sent = Events.send(port) }
  let deadline = SystemTime.now() &+ 20 * ms
  var spins = 0
  while SystemTime.now() < deadline && spins < 5_000_000 {
    if spins % 64 == 0 { Xen.yield() }
    CPU.pause()
    spins += 1
  }
  for gfn in pages where problem == nil { problem = patternDamage(gfn, ringIndices: true) }
  if problem == nil && sent != 0 { problem = "EVTCHNOP_send on the console port \(port): \(sent)" }
  Console.print("console ring gfn \(hex(ring)) given back: \(released), populated again: \(ringPopulated)")
  checkTrue("release-console-ring", problem == nil, problem ?? "")
}

/// shared_info put on the head page of a block of RAM mapped with one 2 MiB page: answer 0, the
/// reservation one page less (the RAM page there is given back), nothing left at the old gfn
/// (decrease_reservation there gives back 0 pages), shared_info working at the new place (the
/// masked probe port's mask bit is there and a send shows up pending there), and the block's
/// other 511 pages keeping what was written to them.
func sharedInfoToLargeBlockHead(_ plan: MemoryPlan, probe: UInt32, bound: Int64) {
  guard bound > 0 else {
    checkTrue("shared-info-to-large-block-head", false, "EVTCHNOP_bind_ipi for the probe port: \(bound)")
    return
  }
  let target = plan.sharedHead
  fillBlock(target)
  let before = Memory.currentReservation()
  let placed = Memory.placeSharedInfo(at: target)
  let after = Memory.currentReservation()
  let oldLeft = Memory.release(plan.sharedHome)
  let working = placed == 0 ? sharedInfoProblem(at: target, port: probe) : "not placed"
  let damage = blockDamage(target, except: [0])
  checkTrue("shared-info-to-large-block-head",
            placed == 0 && after == before - 1 && oldLeft == 0 && working == nil && damage == nil,
            "placed \(placed), reservation \(before) -> \(after), old gfn gave back \(oldLeft), \(working ?? "working"), \(damage ?? "the other pages intact")")
}

/// shared_info moved again and again: to a page in the middle of a block that is already split,
/// to unpopulated space above RAM, to the head and the last page of another 2 MiB block, to the
/// highest gfn below 2^36, back to the first block's head (a hole now) and home. Each move
/// answers 0, lowers the reservation by one page exactly when RAM was there, leaves nothing at the
/// previous gfn, and (below 4 GiB, where the guest can look) shared_info works at the new place.
/// shared_info ends where Events.setUp put it.
func sharedInfoMovesRepeatedly(_ plan: MemoryPlan, probe: UInt32) {
  let targets: [(gfn: UInt64, ram: Bool)] = [
    (plan.sharedHead + 5, true), (plan.fresh + 4864, false), (plan.sharedBlock, true),
    (plan.sharedBlock + blockPages - 1, true), ((1 << 36) - 1, false), (plan.sharedHead, false),
    (plan.sharedHome, false),
  ]
  fillBlock(plan.sharedBlock)
  var previous = plan.sharedHead
  var problem: String? = nil
  for (n, target) in targets.enumerated() {
    let before = Memory.currentReservation()
    let placed = Memory.placeSharedInfo(at: target.gfn)
    let after = Memory.currentReservation()
    let previousLeft = Memory.release(previous)
    let working = placed == 0 && target.gfn < 1 << 20 ? sharedInfoProblem(at: target.gfn, port: probe) : nil
    if placed != 0 || after != before - (target.ram ? 1 : 0) || previousLeft != 0 || working != nil {
      problem = "move \(n + 1) to \(hex(target.gfn)): placed \(placed), reservation \(before) -> \(after), previous gfn \(hex(previous)) gave back \(previousLeft), \(working ?? "working")"
      break
    }
    previous = target.gfn
  }
  if problem != nil { Memory.placeSharedInfo(at: plan.sharedHome) }
  if problem == nil { problem = blockDamage(plan.sharedBlock, except: [0, blockPages - 1]) }
  checkTrue("shared-info-moves-repeatedly", problem == nil, problem ?? "")
}

/// The shared_info gfn given back with decrease_reservation: that may succeed or fail, but the
/// events and times the hypervisor keeps writing into shared_info must not land in memory the
/// guest populates afterwards. Fresh pages (and shared_info's own gfn, if it was given back) are
/// filled with the pattern; sends on the masked probe port and on an unmasked IPI port and a
/// singleshot timer follow, and 10 ms later every page must still hold the pattern. shared_info
/// is put back home afterwards (not part of the check: Xen need not allow it).
func releaseSharedInfoPage(_ plan: inout MemoryPlan, probe: UInt32, timerPort: UInt32) {
  let home = plan.sharedHome
  let tscPerMs = tscPerMillisecond()
  var problem: String? = plan.makeRoom(5) ? nil : "no room made: a donor page was not given back"
  let bound = Events.bindIPI(vcpu: 0)
  let loud = UInt32(truncatingIfNeeded: max(bound, 0))
  if bound <= 0 && problem == nil { problem = "EVTCHNOP_bind_ipi: \(bound)" }
  let armed = Timers.setSingleshot(at: SystemTime.now() &+ 2 * ms)

  let (released, homePopulated, pages) = giveBackThenPopulate(
    home, again: true, fresh: plan.fresh + 4608, problem: &problem)
  for gfn in pages { fillPage(gfn) }
  var sent: Int64 = 0
  for _ in 0..<3 {
    if sent == 0 { sent = Events.send(probe) }
    if sent == 0 && bound > 0 { sent = Events.send(loud) }
  }
  pass(milliseconds: 10, tscPerMs: tscPerMs)
  for gfn in pages where problem == nil { problem = patternDamage(gfn) }
  if problem == nil && (sent != 0 || armed != 0) { problem = "EVTCHNOP_send \(sent), singleshot timer \(armed)" }

  // Home again, and the ports closed (pending bits cleared, while the guest can see them).
  let placed = Memory.placeSharedInfo(at: home)
  if placed == 0 {
    Events.clearPending(probe)
    if bound > 0 { Events.clearPending(loud) }
  }
  if probe != 0 { Events.close(probe) }
  if bound > 0 { Events.close(loud) }
  Console.print("shared_info gfn \(hex(home)) given back: \(released), populated again: \(homePopulated), shared_info placed there again: \(placed)")
  checkTrue("release-shared-info-page", problem == nil, problem ?? "")
}
#endif
