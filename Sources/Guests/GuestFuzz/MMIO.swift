#if os(none)
import GuestKit
import GuestSupport

/// Where the generated memory accesses aim: the HPET's and the I/O APIC's pages (devices a PVH
/// domain does not have) and a megabyte at 3.5 GiB, above any RAM the fuzzer has (it needs RAM to
/// end below 3 GiB) and outside the special pages at 0xFEFF8000: every one a nested page fault
/// the hypervisor emulates (docs/emulation.md).
let mmioBases: [UInt64] = [0xFED0_0000, 0xFEC0_0000, 0xE000_0000]

extension Random {
  mutating func pick8(_ values: [UInt8]) -> UInt8 { values[below(values.count)] }
}

extension Fuzzer {
  /// One instruction whose memory operand is an address with no RAM behind it: random prefixes
  /// (operand and address size, REP, LOCK, segment overrides, REX.W/R), one of the opcodes the
  /// emulator knows or a few it does not (TEST, ADD, OR on memory, register forms), random ModRM
  /// modes and displacements, immediates, RCX up to 4096 and DF either way. At most 3 + 1 + 1
  /// prefixes and 8 bytes of instruction: never more than 15 with STD and CLD around it. Only base registers
  /// the call sets (RAX RBX RCX RDX RSI RDI) are used, all pointing at MMIO, and only they are
  /// written, so the fuzzer's own memory and stack are never the operand. #UD, #GP, #SS and #PF
  /// are caught; the hypervisor must answer each with one of them or with the instruction done.
  mutating func mmioAccess() {
    var r = gs_call_registers(rax: mmioAddress(), rbx: mmioAddress(), rcx: mmioAddress(), rdx: mmioAddress(),
                              rsi: mmioAddress(), rdi: mmioAddress())
    var bytes: [UInt8] = []
    for _ in 0..<random.below(4) {
      bytes.append(random.pick8([0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65, 0x66, 0xF3]))
    }
    if random.percent(3) { bytes.append(0xF0) }
    // REX (W or none): never R, X or B, which would name R8-R15.
    let wide = random.percent(25)
    if wide || random.percent(15) { bytes.append(wide ? 0x48 : 0x40) }
    let immediateSize = wide ? 4 : bytes.contains(0x66) ? 2 : 4
    // reg and rm fields: registers the call sets and reads back (not RSP, RBP, R8-R15).
    let usable: [UInt8] = [0, 1, 2, 3, 6, 7]
    func modRM(_ f: inout Fuzzer, reg: UInt8? = nil) -> [UInt8] {
      let mod = UInt8(f.random.below(3))
      let rm = f.random.pick8(usable)
      let field = reg ?? f.random.pick8(usable)
      var out: [UInt8] = [mod << 6 | field << 3 | rm]
      if mod == 1 { out.append(UInt8(truncatingIfNeeded: f.random.next())) }
      if mod == 2 { out += le(UInt64(f.random.below(0x1000)) &- 0x800, 4) }
      return out
    }
    func le(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    switch random.below(11) {
    case 0: bytes += [random.pick8([0x88, 0x89, 0x8A, 0x8B])] + modRM(&self)
    case 1: bytes += [0xC6] + modRM(&self, reg: random.percent(90) ? 0 : random.pick8(usable)) + le(random.next(), 1)
    case 2: bytes += [0xC7] + modRM(&self, reg: random.percent(90) ? 0 : random.pick8(usable)) + le(random.next(), immediateSize)
    case 3: bytes += [0x0F, random.pick8([0xB6, 0xB7, 0xBE, 0xBF])] + modRM(&self)
    case 4: bytes += [random.pick8([0x86, 0x87])] + modRM(&self)
    case 5:                                          // moffs: the address is the offset
      bytes += [random.pick8([0xA0, 0xA1, 0xA2, 0xA3])] + le(mmioAddress(), bytes.contains(0x67) ? 4 : 8)
    case 6, 7:                                       // MOVS, STOS, REP or not, a short count
      r.rcx = random.percent(80) ? random.below(300) : random.below(4097)
      bytes += [random.pick8([0xA4, 0xA5, 0xAA, 0xAB])]
    case 8: bytes += [random.pick8([0x84, 0x85, 0x00, 0x01, 0x08, 0x09, 0x20, 0x21])] + modRM(&self)
    case 9: bytes += [0xF6, random.pick8([0x07, 0x00, 0x03])] + le(random.next(), 1)
    default:                                         // a register form: no memory access at all
      bytes += [random.pick8([0x89, 0x8B]), 0xC0 | random.pick8(usable) << 3 | random.pick8(usable)]
    }
    let length = bytes.count
    // DF set around it (STD first, CLD after): a caught fault skips the instruction to the CLD.
    let backwards = random.percent(20)
    if backwards { bytes = [0xFD] + bytes + [0xFC] }
    if layout.trace { trace("mmio \(bytes.map { hex(UInt64($0)) }.joined(separator: " ")) rdi \(hex(r.rdi)) rsi \(hex(r.rsi)) rcx \(hex(r.rcx))") }
    execute(bytes, &r, catching: invalidOpcode | generalProtection | 1 << 12 | 1 << 14, atTop: false,
            pageEnd: random.percent(50), skip: UInt64(length))
  }

  /// An address in one of the MMIO places, its page or the next (so some accesses cross).
  mutating func mmioAddress() -> UInt64 {
    let base = mmioBases[random.below(mmioBases.count)]
    return random.percent(10) ? base &+ 0xFFC &+ random.below(4) : base &+ random.below(0x1000)
  }
}
#endif
