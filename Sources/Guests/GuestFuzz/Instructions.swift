#if os(none)
import GuestKit
import GuestSupport

/// CPUID leaves: the basic and extended ranges' edges, Xen's leaves at both bases, nonsense.
let cpuidLeaves: [UInt64] = [
  0, 1, 2, 4, 6, 7, 0xB, 0xD, 0xF, 0x10, 0x14, 0x1F, 0x20, 0x4000_0000, 0x4000_0001, 0x4000_0002,
  0x4000_0003, 0x4000_0004, 0x4000_0005, 0x4000_00FF, 0x4000_0100, 0x4000_0104, 0x4000_0105,
  0x8000_0000, 0x8000_0001, 0x8000_0008, 0x8000_000A, 0x8000_001F, 0x8000_0020, 0x8000_0021, 0xFFFF_FFFF,
]

/// MSRs a WRMSR of any value would take from the guest itself (its clock, its vcpu id in GS
/// base, long mode, the APIC, single-stepping, performance interrupts): only what they hold is
/// written back to them. The TSC and TSC_ADJUST are not written at all (the fuzzer's budget is
/// TSC time), nor the x2APIC range (an ICR write could INIT the guest's own vcpus).
let msrsWrittenBack: [ClosedRange<UInt32>] = [
  0x1B...0x1B, 0x3A...0x3A, 0x1D9...0x1D9, 0xC000_0080...0xC000_0080, 0xC000_0100...0xC000_0102,
  0xC001_0000...0xC001_0007, 0xC001_0010...0xC001_0010, 0xC001_0015...0xC001_0015,
  0xC001_0114...0xC001_0117, 0xC001_0200...0xC001_020B,
]
let msrsNotWritten: [ClosedRange<UInt32>] = [0x10...0x10, 0x3B...0x3B, 0x6E0...0x6E0, 0x800...0x8FF]
/// MSRs worth reading and writing: the ones above, the common architectural ones, the AMD ones,
/// the hypervisor range (Xen's hypercall page MSR).
let interestingMSRs: [UInt32] = [
  0x10, 0x1B, 0x3A, 0x3B, 0x48, 0x49, 0x8B, 0xFE, 0x174, 0x175, 0x176, 0x179, 0x17A, 0x17B, 0x1D9,
  0x200, 0x201, 0x250, 0x258, 0x259, 0x268, 0x277, 0x2FF, 0x400, 0x401, 0x402, 0x403, 0x6E0, 0x800, 0x830,
  0xC000_0080, 0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084, 0xC000_0100, 0xC000_0101, 0xC000_0102,
  0xC000_0103, 0xC001_0000, 0xC001_0004, 0xC001_0010, 0xC001_0015, 0xC001_001A, 0xC001_001D, 0xC001_0058,
  0xC001_0114, 0xC001_0117, 0xC001_0140, 0xC001_0200, 0x4000_0000, 0x4000_0001, 0x4000_0100, 0x4000_0200,
]

let generalProtection: UInt32 = 1 << 13
let invalidOpcode: UInt32 = 1 << 6

extension Fuzzer {
  /// One intercepted instruction, placed at the end of a page (the next instruction, a RET,
  /// on the next page) or ending exactly at 2^64 (the RET at address 0).
  mutating func instruction() {
    var r = gs_call_registers(rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0)
    let bytes: [UInt8]
    let kind = random.below(9)
    // `classes=<mask>` narrows the instructions to the kinds whose bits are set (bit n: case n
    // below), to find which one QEMU fails under.
    if layout.instructionClasses & (1 << UInt64(kind)) == 0 { return }
    switch kind {
    case 0:                              // CPUID
      r.rax = random.percent(80) ? random.pick(cpuidLeaves) : random.next() & 0xFFFF_FFFF
      r.rcx = random.percent(70) ? random.below(4) : random.next() & 0xFFFF_FFFF
      bytes = [0x0F, 0xA2]
    case 1:                              // RDMSR
      r.rcx = UInt64(msrIndex())
      bytes = [0x0F, 0x32]
    case 2:                              // WRMSR
      let index = msrIndex()
      if msrsNotWritten.contains(where: { $0.contains(index) }) { return }
      var value = u64()
      if msrsWrittenBack.contains(where: { $0.contains(index) }) {
        gs_catch_exceptions(generalProtection, 2)
        value = gs_rdmsr(index)
        let faulted = gs_caught_exception().count > 0
        gs_catch_exceptions(0, 0)
        if faulted { value = 0 }
      } else if index & 0xFFFF_FF00 == 0x4000_0000 {
        // Xen's hypercall page MSR takes a frame to write the page into: a safe one.
        value = safeGFN() << 12 | random.below(2)
      }
      r.rcx = UInt64(index); r.rax = value & 0xFFFF_FFFF; r.rdx = value >> 32
      bytes = [0x0F, 0x30]
    case 3:                              // IN/OUT on any port, every width, immediate and DX forms
      r.rdx = random.percent(50) ? random.below(0x10000) : random.pick([0x20, 0x21, 0x40, 0x43, 0x60, 0x64, 0x70, 0x71, 0x80, 0xCF8, 0xCFC, 0xCF9, 0x3F8, 0x3FD, 0x510, 0xE9, 0xF4, 0xB000, 0xFFFF])
      // Not port 0x402 with a 4-byte IN: QEMU's TCG (7.2) aborts (`tcg_handle_interrupt:
      // assertion failed: (qemu_mutex_iothread_locked())`; seed 1, call 84 on vcpu 0, IN EAX, DX).
      if r.rdx & 0xFFFC == 0x400 { r.rdx = 0x80 }
      r.rax = random.next()
      r.rdi = Xen.address(places.ram) + 2048; r.rsi = r.rdi
      let port = UInt8(truncatingIfNeeded: r.rdx)
      let forms: [[UInt8]] = [[0xEC], [0xED], [0x66, 0xED], [0xEE], [0xEF], [0x66, 0xEF], [0xE4, port], [0xE6, port], [0xE5, port], [0xE7, port]]
      // Not INS/OUTS: the hypervisor does not emulate string I/O and ends the domain that uses
      // it ("string I/O (ins/outs) on port … is not emulated"; seed 1, call 103 on vcpu 0).
      bytes = forms[random.below(forms.count)]
    case 4:                              // VMMCALL with registers of no hypercall in particular
      r.rax = random.pick([17, 1000, 64, 0xFFFF_FFFF_FFFF_FFFF, 29, 56, 1 << 32])
      r.rdi = r.rax == 29 ? 0 : random.below(12)
      r.rsi = random.percent(50) ? Xen.address(places.ram) : badPointer()
      r.rdx = u64()
      bytes = [0x0F, 0x01, 0xD9]
    case 5:                              // MOV to CR0/CR3/CR4: the same value, or one that must #GP
      let which = random.pick([0, 3, 4])
      let current = which == 0 ? CPU.cr0 : which == 3 ? CPU.cr3 : CPU.cr4
      r.rax = controlValue(which, current)
      bytes = [0x0F, 0x22, UInt8(0xC0 | (which << 3))]
    case 6:                              // MOV to CR8 and CR2, and reads of every CR (CR1/5/6/7: #UD)
      switch random.below(3) {
      case 0: r.rax = random.below(16); bytes = [0x44, 0x0F, 0x22, 0xC0]
      case 1: r.rax = u64(); bytes = [0x0F, 0x22, 0xD0]
      default: bytes = [0x0F, 0x20, UInt8(0xC0 | (random.below(8) << 3))]
      }
    case 7:                              // MOV to DR0-DR7 with boundary values, and reads
      let which = UInt8(random.below(8))
      if random.percent(30) {
        bytes = [0x0F, 0x21, 0xC0 | (which << 3)]
      } else {
        r.rax = debugValue(which)
        bytes = [0x0F, 0x23, 0xC0 | (which << 3)]
      }
    default:                             // HLT, woken by a timer
      haltUntilTimer()
      return
    }
    // QEMU's TCG (7.2) aborts translating an instruction at the very top of the address space
    // when its translation saves the PC (`gen_update_eip_cur: Assertion s->pc_save != -1`):
    // I/O and CR/DR moves do; CPUID, RDMSR, WRMSR and VMMCALL, which guest-bad runs there, do not.
    let fitsAtTop = bytes == [0x0F, 0xA2] || bytes == [0x0F, 0x32] || bytes == [0x0F, 0x30] || bytes == [0x0F, 0x01, 0xD9]
    // I/O mid-page: QEMU's TCG (7.2) aborts on an intercepted IN or OUT that is the last
    // instruction of its page (the same assertion as above; seed 1, call 84 on vcpu 0, IN EAX, DX
    // at 0x…fff, port 0x402).
    let isIO = bytes[0] >= 0xE4 && bytes[0] <= 0xEF || bytes[0] == 0x66
    execute(bytes, &r, catching: generalProtection | invalidOpcode, atTop: fitsAtTop, pageEnd: !isIO)
    gs_write_cr8(0)   // a TPR left high would hold back the HLT step's timer
  }

  mutating func msrIndex() -> UInt32 {
    switch random.below(5) {
    case 0, 1: return random.pick32(interestingMSRs)
    case 2: return UInt32(truncatingIfNeeded: random.next())
    case 3: return UInt32(random.below(0x2000)) | random.pick32([0, 0xC000_0000, 0xC001_0000, 0x4000_0000])
    default: return random.pick32(interestingMSRs) &+ UInt32(random.below(3)) &- 1
    }
  }

  /// A value for MOV to CR`which`: what it holds, or that with a bit flipped the guest does not
  /// depend on (CR0.WP, AM, CD; CR4.DE, PGE, TSD). Not the values a CPU refuses with #GP
  /// (reserved bits, PG or PAE off in long mode, NW without CD): CR0 and CR4 writes are not
  /// intercepted, and QEMU's TCG (7.2) takes such values without the #GP; the guest then runs
  /// without paging, or the next VMRUN fails its consistency checks (VMEXIT_INVALID), and its
  /// domain ends (seed 1, call 13 on vcpu 0, while they were in). Never CR0.TS, CR4.OSFXSR or
  /// another CR3 either.
  mutating func controlValue(_ which: UInt64, _ current: UInt64) -> UInt64 {
    switch which {
    case 0: return random.pick([current, current ^ (1 << 16), current ^ (1 << 18), current ^ (1 << 30)])
    case 3: return current
    default: return random.pick([current, current ^ (1 << 3), current ^ (1 << 7), current ^ (1 << 2)])
    }
  }

  /// A value for MOV to DR`which`: DR0-3 canonical addresses (no breakpoint is enabled), DR6
  /// and DR7 their reset values. Not the values a CPU refuses with #GP (non-canonical, upper
  /// 32 bits of DR6/DR7): DR writes are not intercepted, and QEMU's TCG (7.2) aborts on them
  /// (`tcg_handle_interrupt: assertion failed: (qemu_mutex_iothread_locked())`; seed 1, call 59
  /// on vcpu 0, MOV DR3 of 0x3fffffffffffffff, while they were in).
  mutating func debugValue(_ which: UInt8) -> UInt64 {
    switch which {
    case 0...3: return u64() & 0x7FFF_FFFF_FFFF
    case 6: return 0xFFFF_0FF0
    default: return 0x400
    }
  }

  /// Runs `bytes` as one instruction at a page end or at the top of the address space, with the exceptions in `catching` caught (the handler skips the instruction
  /// to the RET after it, or `skip` bytes from the faulting one).
  mutating func execute(_ bytes: [UInt8], _ r: inout gs_call_registers, catching: UInt32, atTop: Bool, pageEnd: Bool,
                        skip: UInt64? = nil) {
    guard let code else { return }
    let placement = atTop && random.percent(50) ? 2 : 0
    var target: UInt64
    if placement == 2 {
      let top = places.edgeBacking[2]
      storeCode(bytes, in: top, at: 4096 - bytes.count)
      target = GS_TOP_PAGE + UInt64(4096 - bytes.count)
    } else {
      // At the end of the first page. Not across the boundary: QEMU's TCG (7.2) aborts when an
      // intercepted instruction that crosses a page exits (`tcg_handle_interrupt: assertion
      // failed: (qemu_mutex_iothread_locked())`, seen with VMMCALL).
      let start = pageEnd ? 4096 - bytes.count : 2048
      storeCode(bytes + [0xC3], in: code, at: start)
      target = Xen.address(code) + UInt64(start)
    }
    gs_barrier()
    if layout.trace { trace("instruction \(bytes.map { hex(UInt64($0)) }.joined(separator: " ")) at \(hex(target)) rax \(hex(r.rax)) rcx \(hex(r.rcx)) rdx \(hex(r.rdx))") }
    gs_catch_exceptions(catching, skip ?? UInt64(bytes.count))
    gs_call_at(target, &r, 0)
    gs_catch_exceptions(0, 0)
  }

  /// Writes code bytes that differ from what is there: QEMU's TCG invalidates the translations
  /// of a code page on any write to it, even of the same bytes.
  func storeCode(_ bytes: [UInt8], in page: UnsafeMutableRawPointer, at offset: Int) {
    for (i, b) in bytes.enumerated() where page.load(fromByteOffset: offset + i, as: UInt8.self) != b {
      page.storeBytes(of: b, toByteOffset: offset + i, as: UInt8.self)
    }
  }

  /// STI; HLT, the HLT at a page end, woken by a singleshot timer 1 ms ahead on VIRQ_TIMER.
  /// What the hypercalls may have changed is set back first: the callback vector (domain-wide and
  /// vcpu 0's own) and a VIRQ_TIMER port bound to vcpu 0 and unmasked. Skipped if no such port
  /// can be had (the port table may be full).
  mutating func haltUntilTimer() {
    // vcpu 1 pauses meanwhile: its closes, binds and resets would take the timer port away.
    guard quietSecondVCPU() else { return }
    defer { gs_atomic_store(counters + 5, 0) }
    Memory.placeSharedInfo(at: layout.sharedHome)
    // An init_control may have switched the domain to FIFO, where this guest's 2-level timer
    // event would never arrive: back to 2-level then.
    if eventsAreFIFO() {
      var reset = gs_evtchn_reset(dom: Xen.domidSelf)
      _ = Xen.withArgument(&reset) { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_reset), $0) }
    }
    var param = gs_xen_hvm_param(
      domid: Xen.domidSelf, pad: 0, index: UInt32(GS_HVM_PARAM_CALLBACK_IRQ),
      value: (UInt64(GS_HVM_CALLBACK_TYPE_VECTOR) << 56) | UInt64(Events.callbackVector))
    _ = Xen.withArgument(&param) { Xen.hvmOp(UInt64(GS_HVMOP_set_param), $0) }
    var vector = Bytes(); vector.u32(0); vector.u8(Events.callbackVector); vector.pad(to: 8)
    vector.bytes.withUnsafeBytes { _ = Xen.hvmOp(23, Xen.address($0.baseAddress)) }
    guard let port = timerPort() else { return }
    Events.clearMask(port)
    Events.unmask(port)
    let armed = Timers.setSingleshot(at: layout.now() &+ ms)
    guard armed == 0, let code else { return }
    // STI; HLT with the HLT as the page's last byte: STI's shadow covers the HLT, so a timer that
    // fired already wakes it instead of being taken before it.
    code.storeBytes(of: UInt8(0xFB), toByteOffset: 4094, as: UInt8.self)
    code.storeBytes(of: UInt8(0xF4), toByteOffset: 4095, as: UInt8.self)
    code.storeBytes(of: UInt8(0xC3), toByteOffset: 4096, as: UInt8.self)
    gs_barrier()
    if layout.trace { trace("hlt, timer port \(port)") }
    var r = gs_call_registers(rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0)
    gs_call_at(Xen.address(code) + 4094, &r, 0)
    CPU.disableInterrupts()
  }

  /// Asks vcpu 1 to pause (counters[5]) and waits until it has (counters[6]) or has finished,
  /// bringing it up if it took itself down. False after 2 s without either.
  func quietSecondVCPU() -> Bool {
    gs_atomic_store(counters + 5, 1)
    let patience = CPU.rdtsc() &+ 2_000 &* layout.tscPerMs
    while gs_atomic_load(counters + 6) == 0 && gs_atomic_load(counters + 2) == 0 {
      if CPU.rdtsc() > patience {
        gs_atomic_store(counters + 5, 0)
        return false
      }
      _ = Xen.vcpuOp(1, vcpu: 1)
      Xen.yield()
    }
    return true
  }

  /// vcpu 0's VIRQ_TIMER port: bound now, or found among the low ports if it already was (and
  /// moved to vcpu 0 if it notifies another).
  func timerPort() -> UInt32? {
    let bound = Events.bindVIRQ(Events.virqTimer, vcpu: 0)
    if bound > 0 { return UInt32(bound) }
    for port in UInt32(1)..<256 {
      let (result, status) = Events.status(port)
      guard result == 0, status.status == UInt32(GS_EVTCHNSTAT_virq), status.u.virq == Events.virqTimer else { continue }
      return Events.bindVCPU(port, vcpu: 0) == 0 ? port : nil
    }
    return nil
  }
}
/// Whether the domain is on the FIFO event ABI (an init_control of either vcpu switched it):
/// EVTCHNOP_expand_array with a frame that is no one's answers -EOPNOTSUPP only under 2-level,
/// and holds nothing. The waits that rely on 2-level delivery ask it first.
func eventsAreFIFO() -> Bool {
  var probe = gs_evtchn_expand_array(array_gfn: 1 << 52)
  return Xen.withArgument(&probe, { Xen.eventChannelOp(UInt64(GS_EVTCHNOP_expand_array), $0) }) != -95
}
#endif
