import Testing

@testable import X86

/// RIP after an instruction the hypervisor completed (VMCB.advanceRIP): it wraps as the CPU
/// wraps it, wherever the guest put the instruction, and never traps.
@Suite struct InstructionPointerTests {
  /// CS attributes as the VMCB holds them: 64-bit code (L), 32-bit code (DB), 16-bit code.
  static let code64: UInt16 = 0xA9B
  static let code32: UInt16 = 0xC9B
  static let code16: UInt16 = 0x09B
  static let lma = InstructionPointer.eferLongModeActive

  @Test func only64BitCodeInLongModeIs64Bit() {
    #expect(InstructionPointer.is64BitCode(efer: Self.lma | (1 << 8), codeSegmentAttributes: Self.code64))
    // Compatibility mode: long mode, 32-bit code segment.
    #expect(!InstructionPointer.is64BitCode(efer: Self.lma | (1 << 8), codeSegmentAttributes: Self.code32))
    // CS.L with long mode not active (LME set, paging off) is not 64-bit code.
    #expect(!InstructionPointer.is64BitCode(efer: 1 << 8, codeSegmentAttributes: Self.code64))
    #expect(!InstructionPointer.is64BitCode(efer: 0, codeSegmentAttributes: Self.code32))
    #expect(!InstructionPointer.is64BitCode(efer: 0, codeSegmentAttributes: Self.code16))
  }

  /// The exits' instruction lengths: HLT 1, CPUID/RDMSR/WRMSR 2, VMMCALL 3.
  @Test(arguments: [1, 2, 3] as [UInt64])
  func rip64WrapsModulo2To64(length: UInt64) {
    // An instruction that ends exactly at 2^64 continues at 0.
    #expect(InstructionPointer.advanced(0 &- length, by: length, is64BitCode: true) == 0)
    #expect(InstructionPointer.advanced(UInt64.max, by: length, is64BitCode: true) == length - 1)
    // Above 4 GiB nothing is cut.
    #expect(InstructionPointer.advanced(0xFFFF_FFFF, by: length, is64BitCode: true) == 0xFFFF_FFFF + length)
    #expect(InstructionPointer.advanced(0xFFFF_8000_0010_0000, by: length, is64BitCode: true) == 0xFFFF_8000_0010_0000 + length)
  }

  @Test(arguments: [1, 2, 3] as [UInt64])
  func eipWrapsModulo2To32(length: UInt64) {
    #expect(InstructionPointer.advanced(0x1_0000_0000 - length, by: length, is64BitCode: false) == 0)
    #expect(InstructionPointer.advanced(0xFFFF_FFFF, by: length, is64BitCode: false) == length - 1)
    #expect(InstructionPointer.advanced(0x10_0000, by: length, is64BitCode: false) == 0x10_0000 + length)
    // Bits above 31 (left by a mode switch) do not survive in EIP, and the sum cannot trap.
    #expect(InstructionPointer.advanced(UInt64.max, by: length, is64BitCode: false) == length - 1)
  }

  /// Every RIP near both wrap points, every length an exit completes: no trap, and the result is
  /// the exact sum modulo the width.
  /// Where the code is read from: RIP itself in 64-bit code (wrapping at 2^64), CS's base plus
  /// EIP wrapping at 2^32 in any other mode.
  @Test func codeAddressesWrapAsTheCPUsDo() {
    #expect(InstructionPointer.codeAddress(rip: 0x1000, plus: 2, codeSegmentBase: 0x5000, is64BitCode: true) == 0x1002)
    #expect(InstructionPointer.codeAddress(rip: .max, plus: 2, codeSegmentBase: 0, is64BitCode: true) == 1)
    #expect(InstructionPointer.codeAddress(rip: 0x1000, plus: 2, codeSegmentBase: 0x5000, is64BitCode: false) == 0x6002)
    #expect(InstructionPointer.codeAddress(rip: 0xFFFF_FFFF, plus: 1, codeSegmentBase: 0, is64BitCode: false) == 0)
    #expect(InstructionPointer.codeAddress(rip: 0x10, plus: 0, codeSegmentBase: 0xFFFF_FFF8, is64BitCode: false) == 8)
  }

  @Test func nearTheTopAlwaysTheSumModuloTheWidth() {
    for length: UInt64 in 1...15 {
      for back: UInt64 in 0...32 {
        let rip64 = UInt64.max - back
        let exact64 = rip64.addingReportingOverflow(length).partialValue
        #expect(InstructionPointer.advanced(rip64, by: length, is64BitCode: true) == exact64)
        let eip = UInt64(UInt32.max) - back
        #expect(InstructionPointer.advanced(eip, by: length, is64BitCode: false) == (eip + length) % (1 << 32))
      }
    }
  }
}
