/// What the emulator needs of a vcpu: its registers, its mode, and its memory by linear address.
/// The arch layer implements it over the VMCB, the context page and the guest's page tables
/// (`MMIOEmulation`); the host tests over a fake.
public protocol EmulationTarget {
  var codeSize: CodeSize { get }
  var rip: UInt64 { get }
  var rflags: UInt64 { get }
  /// General register `number` (0-15: RAX RCX RDX RBX RSP RBP RSI RDI R8-R15), all 64 bits.
  func register(_ number: Int) -> UInt64
  mutating func setRegister(_ number: Int, _ value: UInt64)
  func segmentBase(_ segment: SegmentRegister) -> UInt64
  /// `count` bytes (1-15) of code at linear address `linear`, all within one 4 KiB page; throws
  /// the fault an instruction fetch there raises.
  mutating func fetchCode(_ linear: UInt64, count: Int) throws(GuestException) -> [UInt8]
  /// `size` bytes (1-8) at `linear`, within one 4 KiB page, zero-extended: from RAM, or from
  /// whatever device claims the address.
  mutating func read(_ linear: UInt64, size: Int) throws(GuestException) -> UInt64
  /// The low `size` bytes (1-8) of `value` at `linear`, within one 4 KiB page.
  mutating func write(_ linear: UInt64, size: Int, value: UInt64) throws(GuestException)
}

/// Executes one decoded instruction (`InstructionDecoder`) against an `EmulationTarget`, as the
/// CPU would have: the memory operand's linear address from the registers and segments, checked
/// to be canonical in 64-bit code, each access split at a page boundary, register writes with
/// the CPU's widths (a 32-bit write clears bits 63-32, 8- and 16-bit writes keep the rest, AH-BH
/// without REX).
///
/// A REP MOVS or STOS runs at most `maximumRepetitions` iterations per call: RCX, RSI and RDI
/// then say how far it got and RIP stays on the instruction, so the guest executes it again and
/// the next exit goes on (Xen's emulator restarts a repeated instruction the same way). A guest's
/// RCX therefore never keeps the hypervisor busy for longer than one chunk.
public enum InstructionEmulator {
  public static let maximumRepetitions: UInt64 = 128

  public enum Outcome: Equatable, Sendable {
    /// Done: RIP moves past the instruction, `length` bytes.
    case completed(length: Int)
    /// A chunk of a REP done: RIP stays, the registers carry the progress.
    case restart
  }

  /// The value with the low `size` bytes set (0 for 0; all 64 bits for 8 or more).
  public static func allOnes(_ size: Int) -> UInt64 {
    if size <= 0 { return 0 }
    return size >= 8 ? UInt64.max : (UInt64(1) << (8 * UInt64(size))) &- 1
  }

  /// Decodes the instruction at the target's CS:RIP and executes it. Throws the exception to
  /// give the guest (RIP stays on the instruction, as for a fault).
  public static func emulate<T: EmulationTarget>(_ target: inout T) throws(GuestException) -> Outcome {
    let instruction = try fetchAndDecode(&target)
    return try execute(instruction, &target)
  }

  /// Fetches the instruction at CS:RIP through `EmulationTarget.fetchCode`: once from its page
  /// (up to 15 bytes), and once more from the next page only if the decoder needs bytes there.
  public static func fetchAndDecode<T: EmulationTarget>(_ target: inout T) throws(GuestException) -> DecodedInstruction {
    let codeSize = target.codeSize
    let rip = target.rip
    let codeBase = codeSize == .bits64 ? 0 : target.segmentBase(.cs)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(InstructionDecoder.maximumLength)
    return try InstructionDecoder.decode(codeSize) { (i: Int) throws(GuestException) -> UInt8 in
      while i >= bytes.count {
        let offset = UInt64(bytes.count)
        let address = codeSize == .bits64 ? rip &+ offset : (codeBase &+ rip &+ offset) & 0xFFFF_FFFF
        if codeSize == .bits64 && !isCanonical(address) { throw .generalProtection }
        let room = 4096 - Int(address & 0xFFF)
        let count = min(InstructionDecoder.maximumLength - bytes.count, room)
        let fetched = try target.fetchCode(address, count: count)
        guard fetched.count == count else { throw .generalProtection }
        bytes.append(contentsOf: fetched)
      }
      return bytes[i]
    }
  }

  public static func execute<T: EmulationTarget>(_ d: DecodedInstruction, _ t: inout T) throws(GuestException) -> Outcome {
    let size = d.operandSize
    switch d.operation {
    case .store:
      let value = readRegister(t, d.register, size: size, hasREX: d.hasREX)
      try write(&t, linearAddress(d, t), size: size, value: value, segment: d.memory.segment)
    case .load:
      let value = try read(&t, linearAddress(d, t), size: size, segment: d.memory.segment)
      writeRegister(&t, d.register, size: size, value: value, hasREX: d.hasREX)
    case .exchange:
      // The read and the write of one locked instruction: the old value comes back (all ones
      // from an absent device), the register's value goes out.
      let linear = linearAddress(d, t)
      let old = try read(&t, linear, size: size, segment: d.memory.segment)
      try write(&t, linear, size: size, value: readRegister(t, d.register, size: size, hasREX: d.hasREX), segment: d.memory.segment)
      writeRegister(&t, d.register, size: size, value: old, hasREX: d.hasREX)
    case .storeImmediate:
      try write(&t, linearAddress(d, t), size: size, value: d.immediate & allOnes(size), segment: d.memory.segment)
    case .loadAccumulator:
      let value = try read(&t, linearAddress(d, t), size: size, segment: d.memory.segment)
      writeRegister(&t, 0, size: size, value: value, hasREX: d.hasREX)
    case .storeAccumulator:
      try write(&t, linearAddress(d, t), size: size, value: t.register(0) & allOnes(size), segment: d.memory.segment)
    case .loadZeroExtended(let sourceSize):
      let value = try read(&t, linearAddress(d, t), size: sourceSize, segment: d.memory.segment)
      writeRegister(&t, d.register, size: size, value: value, hasREX: d.hasREX)
    case .loadSignExtended(let sourceSize):
      let raw = try read(&t, linearAddress(d, t), size: sourceSize, segment: d.memory.segment)
      let value = sourceSize == 1 ? UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: raw)))
                                  : UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: raw)))
      writeRegister(&t, d.register, size: size, value: value & allOnes(size), hasREX: d.hasREX)
    case .moveString, .storeString:
      return try string(d, &t)
    }
    return .completed(length: d.length)
  }

  /// MOVS and STOS, once or (REP) for up to `maximumRepetitions` iterations. rSI, rDI and rCX
  /// are written back with the address size's width even when an iteration faults: the
  /// iterations before it are done, as on the CPU.
  static func string<T: EmulationTarget>(_ d: DecodedInstruction, _ t: inout T) throws(GuestException) -> Outcome {
    let addressMask = allOnes(d.addressSize)
    let size = UInt64(d.operandSize)
    let backwards = t.rflags & (1 << 10) != 0                      // DF
    let count = d.repeated ? t.register(1) & addressMask : 1
    if count == 0 { return .completed(length: d.length) }
    let iterations = min(count, maximumRepetitions)
    var source = t.register(6), destination = t.register(7)
    var done: UInt64 = 0
    var failure: GuestException? = nil
    let accumulator = t.register(0) & allOnes(d.operandSize)
    while done < iterations {
      do throws(GuestException) {
        let value: UInt64
        if d.operation == .moveString {
          value = try read(&t, segmented(source & addressMask, d.memory.segment, t), size: d.operandSize,
                           segment: d.memory.segment)
        } else {
          value = accumulator
        }
        try write(&t, segmented(destination & addressMask, .es, t), size: d.operandSize, value: value, segment: .es)
      } catch {
        failure = error
        break
      }
      if d.operation == .moveString { source = backwards ? source &- size : source &+ size }
      destination = backwards ? destination &- size : destination &+ size
      done += 1
    }
    if d.operation == .moveString { t.setRegister(6, addressRegister(t.register(6), source, d.addressSize)) }
    t.setRegister(7, addressRegister(t.register(7), destination, d.addressSize))
    if d.repeated { t.setRegister(1, addressRegister(t.register(1), count - done, d.addressSize)) }
    if let failure { throw failure }
    return d.repeated && count != done ? .restart : .completed(length: d.length)
  }

  /// A register used as an address or count of `addressSize` bytes, after it became `new`: the
  /// 16-bit form keeps bits 63-16, the 32-bit one clears bits 63-32 (a 32-bit register write).
  static func addressRegister(_ old: UInt64, _ new: UInt64, _ addressSize: Int) -> UInt64 {
    switch addressSize {
    case 2: return old & ~0xFFFF | new & 0xFFFF
    case 4: return new & 0xFFFF_FFFF
    default: return new
    }
  }

  /// The linear address of the memory operand: its effective address cut to the address size,
  /// then the segment's base.
  static func linearAddress<T: EmulationTarget>(_ d: DecodedInstruction, _ t: T) -> UInt64 {
    let m = d.memory
    var effective = m.displacement
    if let base = m.base { effective = effective &+ t.register(base) }
    if let index = m.index { effective = effective &+ t.register(index) &* m.scale }
    if m.ripRelative { effective = effective &+ t.rip &+ UInt64(d.length) }
    return segmented(effective & allOnes(d.addressSize), m.segment, t)
  }

  /// In 64-bit code only FS and GS add a base and the sum wraps at 2^64; otherwise every
  /// segment's base is added and the sum wraps at 2^32. (Segment limits are not checked: the
  /// guests this serves use flat segments.)
  static func segmented<T: EmulationTarget>(_ effective: UInt64, _ segment: SegmentRegister, _ t: T) -> UInt64 {
    if t.codeSize == .bits64 {
      return segment == .fs || segment == .gs ? t.segmentBase(segment) &+ effective : effective
    }
    return (t.segmentBase(segment) &+ effective) & 0xFFFF_FFFF
  }

  /// Bits 63-47 all equal (48-bit virtual addresses).
  public static func isCanonical(_ address: UInt64) -> Bool {
    let top = address >> 47
    return top == 0 || top == 0x1FFFF
  }

  /// The address `offset` bytes on from `linear`, wrapping as the mode wraps linear addresses.
  static func advanced<T: EmulationTarget>(_ linear: UInt64, by offset: Int, _ t: T) -> UInt64 {
    let next = linear &+ UInt64(offset)
    return t.codeSize == .bits64 ? next : next & 0xFFFF_FFFF
  }

  /// In 64-bit code both ends of the access must be canonical: #SS(0) through SS, #GP(0)
  /// otherwise.
  static func checkCanonical<T: EmulationTarget>(_ linear: UInt64, size: Int, segment: SegmentRegister, _ t: T) throws(GuestException) {
    guard t.codeSize == .bits64 else { return }
    if !isCanonical(linear) || !isCanonical(linear &+ UInt64(size - 1)) {
      throw segment == .ss ? .stackFault : .generalProtection
    }
  }

  static func read<T: EmulationTarget>(_ t: inout T, _ linear: UInt64, size: Int, segment: SegmentRegister) throws(GuestException) -> UInt64 {
    try checkCanonical(linear, size: size, segment: segment, t)
    let first = min(size, 4096 - Int(linear & 0xFFF))
    var value = try t.read(linear, size: first) & allOnes(first)
    if first < size {
      let rest = try t.read(advanced(linear, by: first, t), size: size - first) & allOnes(size - first)
      value |= rest << (8 * UInt64(first))
    }
    return value
  }

  static func write<T: EmulationTarget>(_ t: inout T, _ linear: UInt64, size: Int, value: UInt64, segment: SegmentRegister) throws(GuestException) {
    try checkCanonical(linear, size: size, segment: segment, t)
    let first = min(size, 4096 - Int(linear & 0xFFF))
    try t.write(linear, size: first, value: value & allOnes(first))
    if first < size {
      try t.write(advanced(linear, by: first, t), size: size - first, value: value >> (8 * UInt64(first)))
    }
  }

  /// A register operand of `size` bytes; byte registers 4-7 without REX are AH CH DH BH.
  static func readRegister<T: EmulationTarget>(_ t: T, _ number: Int, size: Int, hasREX: Bool) -> UInt64 {
    if size == 1 && !hasREX && (4...7).contains(number) { return (t.register(number - 4) >> 8) & 0xFF }
    return t.register(number) & allOnes(size)
  }

  static func writeRegister<T: EmulationTarget>(_ t: inout T, _ number: Int, size: Int, value: UInt64, hasREX: Bool) {
    switch size {
    case 1:
      if !hasREX && (4...7).contains(number) {
        let old = t.register(number - 4)
        t.setRegister(number - 4, old & ~0xFF00 | (value & 0xFF) << 8)
      } else {
        t.setRegister(number, t.register(number) & ~0xFF | value & 0xFF)
      }
    case 2: t.setRegister(number, t.register(number) & ~0xFFFF | value & 0xFFFF)
    case 4: t.setRegister(number, value & 0xFFFF_FFFF)
    default: t.setRegister(number, value)
    }
  }
}
