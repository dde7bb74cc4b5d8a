/// guest-mmio: touches guest-physical addresses with no RAM behind them (the HPET's and the I/O
/// APIC's, which a PVH domain does not have, a gfn above its RAM and one it gave back) with every
/// instruction form the hypervisor emulates, and checks what Xen answers: reads all ones of their
/// width, writes dropped, REP MOVS and STOS carried through in chunks. Then the hostile cases,
/// each caught by its own exception handler: an instruction the hypervisor cannot fetch (its
/// second page, or its own page, unmapped behind the CPU's TLB: #PF with CR2), 16 prefixes and
/// LOCK on a MOV (the hypervisor reads bytes other than those the CPU ran: #GP, #UD), an
/// instruction it does not emulate (#UD) and code in MMIO (#UD). docs/test-guests.md.
@main
struct GuestMMIO {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-mmio is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

let hpet: UInt64 = 0xFED0_0000
let ioapic: UInt64 = 0xFEC0_0000
let invalidOpcode: UInt32 = 1 << 6
let generalProtection: UInt32 = 1 << 13
let pageFault: UInt32 = 1 << 14
/// The exceptions a wrong answer could raise: caught around every instruction, so a failing
/// hypervisor makes a FAIL line instead of ending the guest.
let anyFault: UInt32 = invalidOpcode | generalProtection | pageFault | 1 << 12
/// Where the hostile cases map their own pages: PML4[1], outside the boot tables' identity map.
let window: UInt64 = 0x80_0000_0000
let pattern: UInt64 = 0x1111_1111_1111_1111

/// Code pages from the heap (identity-mapped, executable): the instruction under test is
/// written into them, followed by a RET, and called with chosen registers.
struct Runner {
  let code = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)

  /// Runs `bytes` (then RET) with `r`; the exceptions caught meanwhile, skipping the instruction.
  func run(_ bytes: [UInt8], _ r: inout gs_call_registers, at offset: Int = 0x800, catchingDebug: Bool = false) -> gs_caught_exception {
    store(bytes + [0xC3], in: code, at: offset)
    gs_catch_exceptions(anyFault | (catchingDebug ? 1 << 1 : 0), UInt64(bytes.count))
    gs_call_at(Xen.address(code) + UInt64(offset), &r, 0)
    let caught = gs_caught_exception()
    gs_catch_exceptions(0, 0)
    return caught
  }
}

func store(_ bytes: [UInt8], in page: UnsafeMutableRawPointer, at offset: Int) {
  for (i, b) in bytes.enumerated() { page.storeBytes(of: b, toByteOffset: offset + i, as: UInt8.self) }
  gs_barrier()
}

func registers(rax: UInt64 = pattern, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0, rsi: UInt64 = 0, rdi: UInt64 = 0) -> gs_call_registers {
  gs_call_registers(rax: rax, rbx: rbx, rcx: rcx, rdx: rdx, rsi: rsi, rdi: rdi)
}

/// CR2, read with MOV from CR2 (0F 20 D0) run like the instructions under test.
func cr2(_ runner: Runner) -> UInt64 {
  var r = registers(rax: 0)
  _ = runner.run([0x0F, 0x20, 0xD0], &r, at: 0x100)
  return r.rax
}

/// The guest's last-level page-table entry for `va` (mapped with 4 KiB pages by gs_map_page),
/// found by walking its tables from CR3; the tables are in its identity-mapped RAM.
func leafEntry(_ va: UInt64) -> UnsafeMutablePointer<UInt64> {
  var table = CPU.cr3 & 0x000F_FFFF_FFFF_F000
  for level in stride(from: 3, to: 0, by: -1) {
    let index = (va >> (12 + 9 * UInt64(level))) & 0x1FF
    table = UnsafeMutablePointer<UInt64>(bitPattern: UInt(table + index * 8))!.pointee & 0x000F_FFFF_FFFF_F000
  }
  return UnsafeMutablePointer<UInt64>(bitPattern: UInt(table + ((va >> 12) & 0x1FF) * 8))!
}

func describe(_ c: gs_caught_exception) -> String {
  "\(c.count) caught, the last vector \(c.vector) error \(hex(c.error_code)) at RIP \(hex(c.rip))"
}

/// `bench=<n>`: the median of n round trips (TSC cycles, through the same call and return) of an
/// emulated `mov (%rdi),%eax` at the HPET, of a CPUID (an intercepted instruction the
/// hypervisor answers without decoding) and of a MOV from RAM (the floor).
func bench(_ runner: Runner, samples: Int, _ report: Report) {
  func median(_ bytes: [UInt8], rdi: UInt64) -> UInt64 {
    store(bytes + [0xC3], in: runner.code, at: 0x800)
    var times = [UInt64](repeating: 0, count: samples)
    for i in 0..<samples {
      var r = registers(rax: 0, rdi: rdi)
      let start = CPU.rdtsc()
      gs_call_at(Xen.address(runner.code) + 0x800, &r, 0)
      times[i] = CPU.rdtsc() &- start
    }
    times.sort()
    return times[samples / 2]
  }
  let ram = median([0x8B, 0x07], rdi: Xen.address(runner.code))
  let cpuid = median([0x0F, 0xA2], rdi: 0)
  let mmio = median([0x8B, 0x07], rdi: hpet)
  report.line("bench samples \(samples): ram read median \(ram), cpuid median \(cpuid), mmio read median \(mmio) cycles")
}

func run() -> Never {
  Console.print("guest-mmio: start")
  Guest.requireHypervisor("guest-mmio")
  var report = Report("guest-mmio")
  let runner = Runner()
  let ramEnd = StartInfo.ramEnd ?? 0
  // A gfn above RAM that nothing was ever mapped at, inside the boot tables' 4 GiB identity map;
  // and one of its own RAM pages given back (gfn 0x90, in the first 2 MiB, which it does not use).
  let unbacked = (ramEnd + 0x100_0000) & ~0xFFF
  let givenBack: UInt64 = 0x90_000
  let released = Memory.release(givenBack >> 12)
  report.line("unbacked gfn \(hex(unbacked >> 12)), gfn 0x90 given back: \(released)")
  let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)

  // ---- Reads: all ones of each width, the rest of the register as the width says ----
  let widths: [([UInt8], UInt64)] = [
    ([0x8A, 0x07], 0x1111_1111_1111_11FF),          // mov (%rdi),%al
    ([0x66, 0x8B, 0x07], 0x1111_1111_1111_FFFF),    // mov (%rdi),%ax
    ([0x8B, 0x07], 0xFFFF_FFFF),                    // mov (%rdi),%eax (bits 63-32 cleared)
    ([0x48, 0x8B, 0x07], UInt64.max),               // mov (%rdi),%rax
    ([0x8A, 0x67, 0x01], 0x1111_1111_1111_FF11),    // mov 1(%rdi),%ah
  ]
  func readsAllOnes(_ base: UInt64) -> String? {
    for (bytes, want) in widths {
      var r = registers(rdi: base + 0x10)
      let caught = runner.run(bytes, &r)
      if caught.count != 0 || r.rax != want {
        return "\(bytes.map { hex(UInt64($0)) }.joined(separator: " ")): rax \(hex(r.rax)), want \(hex(want)); \(describe(caught))"
      }
    }
    return nil
  }
  for (check, base) in [("read-hpet", hpet), ("read-ioapic", ioapic), ("read-unbacked", unbacked), ("read-given-back", givenBack)] as [(StaticString, UInt64)] {
    let problem = readsAllOnes(base)
    report.check(check, problem == nil, ok: "8, 16, 32, 64-bit and AH all ones", fail: problem ?? "")
  }

  // MOVZX, MOVSX, a 64-bit moffs and RIP-relative reads.
  let extended: [([UInt8], UInt64)] = [
    ([0x0F, 0xB6, 0x07], 0xFF), ([0x0F, 0xB7, 0x07], 0xFFFF), ([0x48, 0x0F, 0xB6, 0x07], 0xFF),
    ([0x0F, 0xBE, 0x07], 0xFFFF_FFFF), ([0x48, 0x0F, 0xBF, 0x07], UInt64.max), ([0x66, 0x0F, 0xBE, 0x07], 0x1111_1111_1111_FFFF),
  ]
  var problem: String? = nil
  for (bytes, want) in extended where problem == nil {
    var r = registers(rdi: hpet)
    let caught = runner.run(bytes, &r)
    if caught.count != 0 || r.rax != want { problem = "\(bytes.map { hex(UInt64($0)) }.joined(separator: " ")): rax \(hex(r.rax)), want \(hex(want)); \(describe(caught))" }
  }
  report.check("movzx-movsx", problem == nil, fail: problem ?? "")
  do {
    // xchg %rax,(%rdi), what a sequentially consistent store compiles to: the old value is all
    // ones, the write is dropped.
    var r = registers(rdi: ioapic)
    let caught = runner.run([0x48, 0x87, 0x07], &r)
    var back = registers(rdi: ioapic)
    _ = runner.run([0x48, 0x8B, 0x07], &back)
    report.check("xchg", caught.count == 0 && r.rax == UInt64.max && back.rax == UInt64.max,
                 fail: "rax \(hex(r.rax)), reads back \(hex(back.rax)); \(describe(caught))")
  }
  do {
    var r = registers()
    var bytes: [UInt8] = [0x48, 0xA1]                               // movabs 0xfed000f0,%rax
    for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: (hpet + 0xF0) >> (8 * UInt64(i)))) }
    let caught = runner.run(bytes, &r)
    report.check("moffs", caught.count == 0 && r.rax == UInt64.max, fail: "rax \(hex(r.rax)); \(describe(caught))")
  }
  do {
    // mov disp32(%rip),%eax, the displacement reaching the unbacked gfn from the code page.
    let next = Xen.address(runner.code) + 0x800 + 6
    let displacement = UInt32(truncatingIfNeeded: unbacked &- next)
    var r = registers()
    let caught = runner.run([0x8B, 0x05] + (0..<4).map { UInt8(truncatingIfNeeded: displacement >> (8 * UInt32($0))) }, &r)
    report.check("rip-relative", caught.count == 0 && r.rax == 0xFFFF_FFFF, fail: "rax \(hex(r.rax)); \(describe(caught))")
  }

  do {
    // pushfq; orq $0x100,(%rsp); popfq; mov (%rdi),%eax: TF set, then the emulated MOV, which
    // must end in the single-step trap right after it (the handler clears TF).
    var r = registers(rdi: hpet)
    let caught = runner.run([0x9C, 0x48, 0x81, 0x0C, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9D, 0x8B, 0x07], &r, catchingDebug: true)
    let after = Xen.address(runner.code) + 0x800 + 12
    report.check("single-step-after-emulation", caught.count == 1 && caught.vector == 1 && caught.rip == after
                   && caught.dr6 & (1 << 14) != 0 && r.rax == 0xFFFF_FFFF,
                 fail: "\(describe(caught)), dr6 \(hex(caught.dr6)), want the trap at \(hex(after)); rax \(hex(r.rax))")
  }

  // ---- Writes are dropped: the place still reads all ones ----
  let writes: [[UInt8]] = [
    [0x48, 0x89, 0x07], [0x89, 0x47, 0x08], [0x66, 0x89, 0x07], [0x88, 0x27],    // mov %rax/%eax/%ax/%ah
    [0xC7, 0x07, 0x44, 0x33, 0x22, 0x11], [0x48, 0xC7, 0x47, 0x08, 0x00, 0x00, 0x00, 0x00], [0xC6, 0x07, 0x00],
  ]
  problem = nil
  for base in [unbacked, hpet, givenBack] {
    for bytes in writes where problem == nil {
      var r = registers(rax: 0, rdi: base)
      let caught = runner.run(bytes, &r)
      var back = registers(rdi: base)
      _ = runner.run([0x48, 0x8B, 0x07], &back)
      var back8 = registers(rdi: base + 8)
      _ = runner.run([0x48, 0x8B, 0x07], &back8)
      if caught.count != 0 || back.rax != UInt64.max || back8.rax != UInt64.max {
        problem = "\(hex(base)): after \(bytes.map { hex(UInt64($0)) }.joined(separator: " ")) it reads \(hex(back.rax)) \(hex(back8.rax)); \(describe(caught))"
      }
    }
  }
  report.check("writes-dropped", problem == nil, ok: "7 forms at 3 places", fail: problem ?? "")

  // ---- REP MOVS from MMIO into RAM, REP STOS into MMIO, both directions ----
  do {
    for i in 0..<4096 { buffer.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
    var r = registers(rcx: 300, rsi: hpet, rdi: Xen.address(buffer))
    let caught = runner.run([0xF3, 0xA4], &r)                                      // rep movsb
    var filled = 0
    while filled < 4096 && buffer.load(fromByteOffset: filled, as: UInt8.self) == 0xFF { filled += 1 }
    var r8 = registers(rcx: 100, rsi: ioapic, rdi: Xen.address(buffer) + 1024)
    let caught8 = runner.run([0xF3, 0x48, 0xA5], &r8)                               // rep movsq
    var filled8 = 0
    while filled8 < 3072 && buffer.load(fromByteOffset: 1024 + filled8, as: UInt8.self) == 0xFF { filled8 += 1 }
    report.check("rep-movs-to-ram", caught.count == 0 && filled == 300 && r.rcx == 0 && r.rsi == hpet + 300
                   && r.rdi == Xen.address(buffer) + 300 && caught8.count == 0 && filled8 == 800 && r8.rcx == 0,
                 ok: "300 bytes and 100 quadwords all ones",
                 fail: "\(filled) and \(filled8) bytes all ones, rcx \(r.rcx) \(r8.rcx), rsi \(hex(r.rsi)), rdi \(hex(r.rdi)); \(describe(caught)); \(describe(caught8))")
  }
  do {
    var r = registers(rax: 0x4242_4242, rcx: 1000, rdi: unbacked)
    let caught = runner.run([0xF3, 0xAB], &r)                                      // rep stosl
    var back = registers(rdi: unbacked + 3996)
    _ = runner.run([0x8B, 0x07], &back)
    // std; rep stosw; cld: DF set, RDI moves down.
    var down = registers(rax: 0, rcx: 300, rdi: hpet + 0x800)
    let caughtDown = runner.run([0xFD, 0xF3, 0x66, 0xAB, 0xFC], &down)
    report.check("rep-stos", caught.count == 0 && r.rcx == 0 && r.rdi == unbacked + 4000 && back.rax == 0xFFFF_FFFF
                   && caughtDown.count == 0 && down.rcx == 0 && down.rdi == hpet + 0x800 - 600,
                 ok: "1000 up, 300 down",
                 fail: "rcx \(r.rcx) rdi \(hex(r.rdi)) reads \(hex(back.rax)); down rcx \(down.rcx) rdi \(hex(down.rdi)); \(describe(caught)); \(describe(caughtDown))")
  }

  // ---- Instructions the hypervisor does not emulate, and code in MMIO: #UD ----
  do {
    var r = registers(rdi: hpet)
    let caught = runner.run([0xF6, 0x07, 0x01], &r)                                // test $1,(%rdi)
    report.check("unknown-opcode-raises-ud", caught.count == 1 && caught.vector == 6 && caught.rip == Xen.address(runner.code) + 0x800,
                 fail: describe(caught))
  }
  do {
    // Call into the HPET's page: the fetch itself is emulated, and finds no RAM. The handler
    // returns to a RET in the code page.
    store([0xC3], in: runner.code, at: 0x700)
    gs_catch_exceptions(anyFault, (Xen.address(runner.code) + 0x700) &- hpet)
    var r = registers()
    gs_call_at(hpet, &r, 0)
    let caught = gs_caught_exception()
    gs_catch_exceptions(0, 0)
    report.check("code-in-mmio-raises-ud", caught.count == 1 && caught.vector == 6 && caught.rip == hpet, fail: describe(caught))
  }

  // ---- What the hypervisor reads is not what the CPU ran: pages changed behind its TLB ----
  // Two pages in the window, A and B (then B2): the code touches a page to have its translation
  // in the TLB, changes the page's entry without INVLPG, and runs the MMIO access from the page.
  // The CPU may use the translation it holds (and faults into the hypervisor, which walks the
  // tables as they are now) or, if an exit flushed its TLB meanwhile, walk them itself: the
  // guest sees the same exception either way.
  let pageA = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  let pageB = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  let pageB2 = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  func mapWindow() {
    gs_map_page(window, Xen.address(pageA))
    gs_map_page(window + 0x1000, Xen.address(pageB))
  }
  /// The prologue at A+0x800: mov (%rsi),%cl (touch), mov %rbx,(%rdx) (the entry), jmp `to`.
  func prologue(jumpTo target: UInt64) {
    let jumpEnd = window + 0x800 + 2 + 3 + 5
    let rel = UInt32(truncatingIfNeeded: target &- jumpEnd)
    store([0x8A, 0x0E, 0x48, 0x89, 0x1A, 0xE9] + (0..<4).map { UInt8(truncatingIfNeeded: rel >> (8 * UInt32($0))) }, in: pageA, at: 0x800)
  }
  func runWindow(_ r: inout gs_call_registers, skip: UInt64) -> gs_caught_exception {
    gs_catch_exceptions(anyFault, skip)
    gs_call_at(window + 0x800, &r, 0)
    let caught = gs_caught_exception()
    gs_catch_exceptions(0, 0)
    return caught
  }

  do {
    // mov (%rdi),%rax across A's end into B, B unmapped: #PF for the fetch at B's first byte.
    mapWindow()
    prologue(jumpTo: window + 0xFFE)
    store([0x48, 0x8B], in: pageA, at: 0xFFE)
    store([0x07, 0xC3], in: pageB, at: 0)
    store([0xC3], in: pageA, at: 0x900)
    var r = registers(rbx: 0, rdx: Xen.address(leafEntry(window + 0x1000)), rsi: window + 0x1000, rdi: hpet)
    let caught = runWindow(&r, skip: (window + 0x900) &- (window + 0xFFE))
    let address = cr2(runner)
    report.check("straddle-into-unmapped-page", caught.count == 1 && caught.vector == 14 && caught.rip == window + 0xFFE
                   && address == window + 0x1000 && caught.error_code & 0x11 == 0x10 && r.rax == pattern,
                 ok: "#PF cr2 \(hex(address)) error \(hex(caught.error_code))",
                 fail: "\(describe(caught)), cr2 \(hex(address)), rax \(hex(r.rax))")
  }
  do {
    // The page holding the instruction unmapped: #PF for the fetch at the instruction. The
    // handler returns to a RET at the start of B.
    mapWindow()
    store([0x8A, 0x0E, 0x48, 0x89, 0x1A, 0x48, 0x8B, 0x07, 0xC3], in: pageA, at: 0x800)
    store([0xC3], in: pageB, at: 0)
    var r = registers(rbx: 0, rdx: Xen.address(leafEntry(window)), rsi: window + 0x800, rdi: hpet)
    let caught = runWindow(&r, skip: (window + 0x1000) &- (window + 0x805))
    let address = cr2(runner)
    report.check("code-page-unmapped", caught.count == 1 && caught.vector == 14 && caught.rip == window + 0x805
                   && address == window + 0x805 && caught.error_code & 0x11 == 0x10 && r.rax == pattern,
                 ok: "#PF cr2 \(hex(address)) error \(hex(caught.error_code))",
                 fail: "\(describe(caught)), cr2 \(hex(address)), rax \(hex(r.rax))")
  }
  for (check, vector, hostile) in [("sixteen-prefixes-raise-gp", UInt64(13), [UInt8](repeating: 0x66, count: 16) + [0x8B, 0x07]),
                                    ("lock-mov-raises-ud", UInt64(6), [0xF0, 0x89, 0x07])] as [(StaticString, UInt64, [UInt8])] {
    // B holds mov (%rdi),%eax; its entry is pointed at B2, which holds the hostile bytes there.
    mapWindow()
    prologue(jumpTo: window + 0x1000)
    store([0x8B, 0x07, 0xC3], in: pageB, at: 0)
    store(hostile, in: pageB2, at: 0)
    store([0xC3], in: pageB, at: 0x800)
    store([0xC3], in: pageB2, at: 0x800)
    var r = registers(rbx: Xen.address(pageB2) | 3, rdx: Xen.address(leafEntry(window + 0x1000)), rsi: window + 0x1000, rdi: hpet)
    let caught = runWindow(&r, skip: 0x800)
    report.check(check, caught.count == 1 && caught.vector == vector && caught.rip == window + 0x1000
                   && caught.error_code == 0 && r.rax == pattern,
                 fail: "\(describe(caught)), rax \(hex(r.rax))")
  }
  gs_map_page(window, 0)
  gs_map_page(window + 0x1000, 0)
  let samples = StartInfo.options.integer("bench", default: 0)
  if samples > 0 { bench(runner, samples: min(samples, 100_000), report) }
  report.finish()
}
#endif
