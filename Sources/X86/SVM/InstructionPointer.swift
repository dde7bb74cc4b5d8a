/// Where a guest continues after an instruction the hypervisor completed for it (CPUID, HLT,
/// VMMCALL, RDMSR, WRMSR): RIP plus the instruction's length, wrapped as the CPU wraps it.
///
/// In 64-bit code (EFER.LMA and CS.L both set) RIP is 64 bits wide and wraps modulo 2^64: an
/// instruction may end exactly at 2^64 and the next one is at 0. In every other mode (32-bit
/// protected mode, compatibility mode, 16-bit code, real mode) the instruction pointer is EIP and
/// wraps modulo 2^32. The guest chooses where its instructions are, so the sum must never trap:
/// `VMCB.advanceRIP(by:)` is the one way the exit handlers move RIP forward.
///
/// Pure arithmetic, so the host tests run it; the VMCB side is in VMCB.swift.
public enum InstructionPointer {
  /// EFER.LMA: long mode is active.
  public static let eferLongModeActive: UInt64 = 1 << 10
  /// CS.L in the VMCB's segment attributes (descriptor flags G/DB/L/AVL in bits 11-8): 64-bit code.
  public static let codeSegmentLong: UInt16 = 1 << 9

  /// True when the guest runs 64-bit code: long mode active and a 64-bit code segment. A guest in
  /// long mode with a 32-bit code segment (compatibility mode) runs with a 32-bit EIP.
  public static func is64BitCode(efer: UInt64, codeSegmentAttributes: UInt16) -> Bool {
    efer & eferLongModeActive != 0 && codeSegmentAttributes & codeSegmentLong != 0
  }

  /// The linear address of byte `offset` of the instruction at CS:`rip`, as the CPU forms it:
  /// modulo 2^64 in 64-bit code (where CS's base is 0), CS's base plus EIP modulo 2^32
  /// otherwise. How the hypervisor finds the code it reads (a HLT to complete, a MOV to CR4 to
  /// decode).
  public static func codeAddress(rip: UInt64, plus offset: UInt64, codeSegmentBase: UInt64, is64BitCode: Bool) -> UInt64 {
    is64BitCode ? rip &+ offset : (codeSegmentBase &+ rip &+ offset) & 0xFFFF_FFFF
  }

  /// `rip` advanced by `length` bytes: modulo 2^64 in 64-bit code, modulo 2^32 otherwise.
  public static func advanced(_ rip: UInt64, by length: UInt64, is64BitCode: Bool) -> UInt64 {
    let next = rip &+ length
    return is64BitCode ? next : next & 0xFFFF_FFFF
  }
}
