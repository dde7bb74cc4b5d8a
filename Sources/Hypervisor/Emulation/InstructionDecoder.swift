/// A decoder for the few x86 instructions a guest uses to touch memory-mapped I/O: MOV in its
/// memory forms, MOVZX, MOVSX, XCHG, MOVS and STOS (docs/emulation.md says why no more).
///
/// Under nested paging an access to a guest-physical address that is not RAM stops the guest with
/// a nested page fault that names the address but not the instruction: without decode assists
/// (QEMU's TCG has none) the hypervisor reads the instruction from the guest's memory and decodes
/// it here. Everything it reads is the guest's, so every byte is fetched through `fetch` (which
/// may fail with the fault the CPU would raise), nothing is read past 15 bytes, and an encoding it
/// does not know is #UD, as Xen's emulator answers X86EMUL_UNRECOGNIZED.
///
/// Pure, so the host tests run it on tables of encodings and on random bytes; the arch side is
/// `MMIOEmulation` (X86/Domain/MMIOEmulation.swift).

/// The width of the code the guest runs: 64-bit (long mode with CS.L), 32-bit (CS.D) or 16-bit.
public enum CodeSize: Sendable, Equatable {
  case bits64, bits32, bits16
}

/// The segment registers, in the encoding's order (ES CS SS DS FS GS).
public enum SegmentRegister: Int, Sendable, Equatable {
  case es = 0, cs, ss, ds, fs, gs
}

/// The exception the CPU would raise, for the guest: what decoding or emulating an instruction
/// ends in when it cannot complete.
public enum GuestException: Error, Equatable, Sendable {
  /// #UD: an instruction the emulator does not know, or LOCK where it is not allowed.
  case invalidOpcode
  /// #GP(0): longer than 15 bytes, or a non-canonical address.
  case generalProtection
  /// #SS(0): a non-canonical address through the stack segment.
  case stackFault
  /// #PF: `address` goes to CR2.
  case pageFault(address: UInt64, errorCode: UInt32)

  /// The #PF error code bits (AMD APM vol. 2, 8.4.2).
  public static let pageFaultPresent: UInt32 = 1 << 0
  public static let pageFaultWrite: UInt32 = 1 << 1
  public static let pageFaultUser: UInt32 = 1 << 2
  public static let pageFaultInstructionFetch: UInt32 = 1 << 4
}

/// A memory operand: segment base + base + index × scale + displacement, cut to the address
/// size; RIP-relative adds the next instruction's address instead of a base.
public struct MemoryOperand: Sendable, Equatable {
  /// Register numbers 0-15 (RAX RCX RDX RBX RSP RBP RSI RDI R8-R15); nil when absent.
  public var base: Int?
  public var index: Int?
  public var scale: UInt64
  public var displacement: UInt64
  public var ripRelative: Bool
  public var segment: SegmentRegister

  public init(base: Int? = nil, index: Int? = nil, scale: UInt64 = 1, displacement: UInt64 = 0,
              ripRelative: Bool = false, segment: SegmentRegister = .ds) {
    self.base = base; self.index = index; self.scale = scale; self.displacement = displacement
    self.ripRelative = ripRelative; self.segment = segment
  }
}

/// What a decoded instruction does.
public enum Operation: Sendable, Equatable {
  /// MOV r/m, reg (88, 89).
  case store
  /// MOV reg, r/m (8A, 8B).
  case load
  /// XCHG r/m, reg (86, 87): what a sequentially consistent store compiles to.
  case exchange
  /// MOV r/m, imm (C6 /0, C7 /0).
  case storeImmediate
  /// MOV AL/rAX, moffs (A0, A1): `memory.displacement` is the offset.
  case loadAccumulator
  /// MOV moffs, AL/rAX (A2, A3).
  case storeAccumulator
  /// MOVZX reg, r/m8 or r/m16 (0F B6, 0F B7): the source's size in bytes.
  case loadZeroExtended(sourceSize: Int)
  /// MOVSX reg, r/m8 or r/m16 (0F BE, 0F BF).
  case loadSignExtended(sourceSize: Int)
  /// MOVS (A4, A5): from `memory.segment`:rSI to ES:rDI.
  case moveString
  /// STOS (AA, AB): rAX to ES:rDI.
  case storeString
}

public struct DecodedInstruction: Sendable, Equatable {
  public var operation: Operation
  /// In bytes, prefixes included (1-15).
  public var length: Int
  /// The size of the value moved, in bytes (1, 2, 4, 8); for MOVZX and MOVSX the destination's.
  public var operandSize: Int
  /// The size of addresses and of rSI, rDI and rCX for the string instructions, in bytes (2, 4, 8).
  public var addressSize: Int
  /// The memory operand; for MOVS the source's segment, for STOS unused.
  public var memory: MemoryOperand
  /// The ModRM reg field with REX.R (0-15); 0 (the accumulator) for the forms without one.
  public var register: Int
  /// A REX prefix was there: byte registers 4-7 are SPL BPL SIL DIL, not AH CH DH BH.
  public var hasREX: Bool
  /// MOV's immediate, sign-extended to 64 bits.
  public var immediate: UInt64
  /// REP (F3) or REPNE (F2) on MOVS or STOS (both just repeat there).
  public var repeated: Bool

  public init(operation: Operation, length: Int, operandSize: Int, addressSize: Int,
              memory: MemoryOperand = MemoryOperand(), register: Int = 0, hasREX: Bool = false,
              immediate: UInt64 = 0, repeated: Bool = false) {
    self.operation = operation; self.length = length; self.operandSize = operandSize
    self.addressSize = addressSize; self.memory = memory; self.register = register
    self.hasREX = hasREX; self.immediate = immediate; self.repeated = repeated
  }
}

public enum InstructionDecoder {
  /// No x86 instruction is longer: the CPU raises #GP(0) for one that would be.
  public static let maximumLength = 15

  /// Decodes the instruction whose i-th byte `byte(i)` gives (called with i = 0, 1, … in order,
  /// never with i ≥ 15; it throws the fault of a fetch that fails).
  public static func decode(_ codeSize: CodeSize, byte: (Int) throws(GuestException) -> UInt8) throws(GuestException) -> DecodedInstruction {
    var cursor = Cursor()
    var operandOverride = false, addressOverride = false, lock = false, repeated = false
    var segmentOverride: SegmentRegister? = nil
    var rex: UInt8 = 0
    var opcode: UInt8 = 0
    // Prefixes: any number, in any order (the 15-byte limit bounds them). A REX counts only
    // right before the opcode: one followed by a legacy prefix is ignored, as the CPU ignores it.
    prefixes: while true {
      let b = try cursor.next(byte)
      switch b {
      case 0x26: segmentOverride = .es; rex = 0
      case 0x2E: segmentOverride = .cs; rex = 0
      case 0x36: segmentOverride = .ss; rex = 0
      case 0x3E: segmentOverride = .ds; rex = 0
      case 0x64: segmentOverride = .fs; rex = 0
      case 0x65: segmentOverride = .gs; rex = 0
      case 0x66: operandOverride = true; rex = 0
      case 0x67: addressOverride = true; rex = 0
      case 0xF0: lock = true; rex = 0
      case 0xF2, 0xF3: repeated = true; rex = 0
      case 0x40...0x4F where codeSize == .bits64: rex = b
      default:
        opcode = b
        break prefixes
      }
    }
    // In 64-bit code the ES, CS, SS and DS overrides add no base (`InstructionEmulator` adds
    // only FS's and GS's there), but SS still decides #SS over #GP for a non-canonical address.
    let rexW = rex & 0x8 != 0, rexR = rex & 0x4 != 0, rexX = rex & 0x2 != 0, rexB = rex & 0x1 != 0
    let operandSize: Int
    switch codeSize {
    case .bits64: operandSize = rexW ? 8 : operandOverride ? 2 : 4
    case .bits32: operandSize = operandOverride ? 2 : 4
    case .bits16: operandSize = operandOverride ? 4 : 2
    }
    let addressSize: Int
    switch codeSize {
    case .bits64: addressSize = addressOverride ? 4 : 8
    case .bits32: addressSize = addressOverride ? 2 : 4
    case .bits16: addressSize = addressOverride ? 4 : 2
    }
    // Of what this decoder knows only XCHG may be locked (it always is): MOV, MOVZX, MOVSX, MOVS
    // and STOS raise #UD with LOCK, as on the CPU.
    if lock && opcode != 0x86 && opcode != 0x87 { throw .invalidOpcode }

    var result = DecodedInstruction(operation: .load, length: 0, operandSize: operandSize, addressSize: addressSize,
                                    hasREX: rex != 0)
    func modRM(_ cursor: inout Cursor, size: Int) throws(GuestException) {
      let m = try cursor.next(byte)
      guard m >> 6 != 3 else { throw .invalidOpcode }         // a register: no memory access to emulate
      result.register = Int((m >> 3) & 7) | (rexR ? 8 : 0)
      result.operandSize = size
      result.memory = try memoryOperand(m, &cursor, byte, codeSize: codeSize, addressSize: addressSize,
                                        rexX: rexX, rexB: rexB, segmentOverride: segmentOverride)
    }
    switch opcode {
    case 0x88, 0x89:
      result.operation = .store
      try modRM(&cursor, size: opcode == 0x88 ? 1 : operandSize)
    case 0x8A, 0x8B:
      result.operation = .load
      try modRM(&cursor, size: opcode == 0x8A ? 1 : operandSize)
    case 0x86, 0x87:
      result.operation = .exchange
      try modRM(&cursor, size: opcode == 0x86 ? 1 : operandSize)
    case 0xC6, 0xC7:
      result.operation = .storeImmediate
      try modRM(&cursor, size: opcode == 0xC6 ? 1 : operandSize)
      guard result.register & 7 == 0 else { throw .invalidOpcode }    // only /0 is MOV
      result.register = 0
      let immediateSize = min(result.operandSize, 4)                     // imm32 sign-extended for 64 bits
      result.immediate = try cursor.immediate(immediateSize, byte)
    case 0xA0...0xA3:
      result.operation = opcode < 0xA2 ? .loadAccumulator : .storeAccumulator
      result.operandSize = opcode & 1 == 0 ? 1 : operandSize
      let offset = try cursor.littleEndian(addressSize, byte)
      result.memory = MemoryOperand(displacement: offset, segment: segmentOverride ?? .ds)
    case 0xA4, 0xA5:
      result.operation = .moveString
      result.operandSize = opcode == 0xA4 ? 1 : operandSize
      result.memory = MemoryOperand(segment: segmentOverride ?? .ds)
      result.repeated = repeated
    case 0xAA, 0xAB:
      result.operation = .storeString
      result.operandSize = opcode == 0xAA ? 1 : operandSize
      result.memory = MemoryOperand(segment: .es)
      result.repeated = repeated
    case 0x0F:
      let second = try cursor.next(byte)
      switch second {
      case 0xB6, 0xB7:
        result.operation = .loadZeroExtended(sourceSize: second == 0xB6 ? 1 : 2)
      case 0xBE, 0xBF:
        result.operation = .loadSignExtended(sourceSize: second == 0xBE ? 1 : 2)
      default:
        throw .invalidOpcode
      }
      try modRM(&cursor, size: operandSize)
    default:
      throw .invalidOpcode
    }
    result.length = cursor.count
    return result
  }

  /// The bytes read so far: at most 15, and asking for a 16th is #GP(0).
  struct Cursor {
    typealias Fetch = (Int) throws(GuestException) -> UInt8
    var count = 0

    mutating func next(_ byte: Fetch) throws(GuestException) -> UInt8 {
      guard count < InstructionDecoder.maximumLength else { throw .generalProtection }
      let b = try byte(count)
      count += 1
      return b
    }

    /// `size` bytes (1, 2, 4 or 8), little-endian, zero-extended.
    mutating func littleEndian(_ size: Int, _ byte: Fetch) throws(GuestException) -> UInt64 {
      var value: UInt64 = 0
      for i in 0..<size { value |= UInt64(try next(byte)) << (8 * UInt64(i)) }
      return value
    }

    /// `size` bytes (1, 2 or 4), sign-extended to 64 bits.
    mutating func immediate(_ size: Int, _ byte: Fetch) throws(GuestException) -> UInt64 {
      let raw = try littleEndian(size, byte)
      switch size {
      case 1: return UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: raw)))
      case 2: return UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: raw)))
      default: return UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: raw)))
      }
    }
  }

  /// The memory operand a ModRM byte (mod ≠ 3) names, with its SIB byte and displacement.
  static func memoryOperand(_ m: UInt8, _ cursor: inout Cursor, _ byte: Cursor.Fetch, codeSize: CodeSize, addressSize: Int,
                            rexX: Bool, rexB: Bool, segmentOverride: SegmentRegister?) throws(GuestException) -> MemoryOperand {
    let mod = m >> 6, rm = m & 7
    var operand = MemoryOperand()
    var stackBased = false
    if addressSize == 2 {
      // 16-bit addressing: the eight fixed combinations of BX, BP, SI and DI.
      switch rm {
      case 0: operand.base = 3; operand.index = 6           // BX+SI
      case 1: operand.base = 3; operand.index = 7           // BX+DI
      case 2: operand.base = 5; operand.index = 6           // BP+SI
      case 3: operand.base = 5; operand.index = 7           // BP+DI
      case 4: operand.index = 6                             // SI
      case 5: operand.index = 7                             // DI
      case 6: operand.base = 5                              // BP
      default: operand.base = 3                             // BX
      }
      if mod == 0 && rm == 6 {
        operand.base = nil
        operand.displacement = try cursor.littleEndian(2, byte)
      } else {
        stackBased = rm == 2 || rm == 3 || rm == 6
        if mod == 1 { operand.displacement = try cursor.immediate(1, byte) }
        if mod == 2 { operand.displacement = try cursor.immediate(2, byte) }
      }
    } else {
      if rm == 4 {
        let sib = try cursor.next(byte)
        let index = Int((sib >> 3) & 7) | (rexX ? 8 : 0)
        operand.index = index == 4 ? nil : index                 // index 100 without REX.X: none
        operand.scale = 1 << UInt64(sib >> 6)
        if sib & 7 == 5 && mod == 0 {
          operand.displacement = try cursor.immediate(4, byte)          // no base, disp32
        } else {
          operand.base = Int(sib & 7) | (rexB ? 8 : 0)
        }
      } else if rm == 5 && mod == 0 {
        operand.displacement = try cursor.immediate(4, byte)
        operand.ripRelative = codeSize == .bits64                  // disp32 alone outside 64-bit code
      } else {
        operand.base = Int(rm) | (rexB ? 8 : 0)
      }
      if mod == 1 { operand.displacement = try cursor.immediate(1, byte) }
      if mod == 2 { operand.displacement = try cursor.immediate(4, byte) }
      stackBased = operand.base == 4 || operand.base == 5               // rSP, rBP (not R12, R13)
    }
    operand.segment = segmentOverride ?? (stackBased ? .ss : .ds)
    return operand
  }
}
