import Testing

@testable import Hypervisor

/// A vcpu for the emulator: registers, a mode, flat or based segments, and a memory of pages
/// that are RAM (bytes), MMIO (no RAM: reads all ones, writes dropped and recorded) or not
/// mapped by the guest (a #PF). Linear = guest-physical, as with paging off or an identity map.
struct FakeTarget: EmulationTarget {
  var codeSize: CodeSize
  var rip: UInt64
  var rflags: UInt64 = 0x2
  var registers = [UInt64](repeating: 0, count: 16)
  var bases: [SegmentRegister: UInt64] = [:]
  var user = false
  /// RAM pages by page number: their bytes.
  var ram: [UInt64: [UInt8]] = [:]
  /// Pages the guest maps but that are not RAM (MMIO).
  var mmio: Set<UInt64> = []
  var mmioWrites: [(address: UInt64, size: Int, value: UInt64)] = []
  var mmioReads: [(address: UInt64, size: Int)] = []
  var fetches: [(address: UInt64, count: Int)] = []

  init(_ codeSize: CodeSize, rip: UInt64 = 0x1000, code: [UInt8] = []) {
    self.codeSize = codeSize
    self.rip = rip
    place(code, at: rip)
  }

  mutating func place(_ bytes: [UInt8], at address: UInt64) {
    for (i, b) in bytes.enumerated() {
      let a = address &+ UInt64(i)
      ram[a >> 12, default: [UInt8](repeating: 0, count: 4096)][Int(a & 0xFFF)] = b
    }
  }

  func byte(_ address: UInt64) -> UInt8? { ram[address >> 12].map { $0[Int(address & 0xFFF)] } }

  func register(_ number: Int) -> UInt64 { registers[number] }
  mutating func setRegister(_ number: Int, _ value: UInt64) { registers[number] = value }
  func segmentBase(_ segment: SegmentRegister) -> UInt64 { bases[segment] ?? 0 }

  func fault(_ address: UInt64, write: Bool = false, fetch: Bool = false) -> GuestException {
    .pageFault(address: address, errorCode: (write ? GuestException.pageFaultWrite : 0)
      | (fetch ? GuestException.pageFaultInstructionFetch : 0) | (user ? GuestException.pageFaultUser : 0))
  }

  mutating func fetchCode(_ linear: UInt64, count: Int) throws(GuestException) -> [UInt8] {
    #expect(count >= 1 && count <= 15 && Int(linear & 0xFFF) + count <= 4096)
    fetches.append((linear, count))
    guard let page = ram[linear >> 12] else {
      if mmio.contains(linear >> 12) { throw .invalidOpcode }
      throw fault(linear, fetch: true)
    }
    let start = Int(linear & 0xFFF)
    return Array(page[start..<(start + count)])
  }

  mutating func read(_ linear: UInt64, size: Int) throws(GuestException) -> UInt64 {
    #expect(size >= 1 && size <= 8 && Int(linear & 0xFFF) + size <= 4096)
    if mmio.contains(linear >> 12) {
      mmioReads.append((linear, size))
      return InstructionEmulator.allOnes(size)
    }
    guard ram[linear >> 12] != nil else { throw fault(linear) }
    var value: UInt64 = 0
    for i in 0..<size { value |= UInt64(byte(linear + UInt64(i))!) << (8 * UInt64(i)) }
    return value
  }

  mutating func write(_ linear: UInt64, size: Int, value: UInt64) throws(GuestException) {
    #expect(size >= 1 && size <= 8 && Int(linear & 0xFFF) + size <= 4096)
    if mmio.contains(linear >> 12) {
      mmioWrites.append((linear, size, value))
      return
    }
    guard ram[linear >> 12] != nil else { throw fault(linear, write: true) }
    for i in 0..<size { place([UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))], at: linear + UInt64(i)) }
  }
}

let hpet: UInt64 = 0xFED0_0000
let ioapic: UInt64 = 0xFEC0_0000

@Suite struct InstructionDecoderTests {
  func decode(_ size: CodeSize, _ bytes: [UInt8]) -> Result<DecodedInstruction, GuestException> {
    do throws(GuestException) {
      return .success(try InstructionDecoder.decode(size) { (i: Int) throws(GuestException) -> UInt8 in
        guard i < bytes.count else { throw .pageFault(address: 0xDEAD, errorCode: 0) }
        return bytes[i]
      })
    } catch {
      return .failure(error)
    }
  }

  struct Row {
    var mode: CodeSize
    var bytes: [UInt8]
    var operation: Operation
    var length: Int
    var operandSize: Int
    var addressSize: Int
    var memory: MemoryOperand? = nil
    var register: Int? = nil
    var immediate: UInt64? = nil
    var repeated = false
  }

  static let rows: [Row] = [
    // mov %eax,(%rdi): Linux's writel
    Row(mode: .bits64, bytes: [0x89, 0x07], operation: .store, length: 2, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(base: 7), register: 0),
    // mov (%rdi),%eax: readl
    Row(mode: .bits64, bytes: [0x8B, 0x07], operation: .load, length: 2, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(base: 7), register: 0),
    // mov (%rsi),%r9 (REX.W REX.R)
    Row(mode: .bits64, bytes: [0x4C, 0x8B, 0x0E], operation: .load, length: 3, operandSize: 8, addressSize: 8,
        memory: MemoryOperand(base: 6), register: 9),
    // mov %dx,0x10(%rax): 66 prefix, disp8
    Row(mode: .bits64, bytes: [0x66, 0x89, 0x50, 0x10], operation: .store, length: 4, operandSize: 2, addressSize: 8,
        memory: MemoryOperand(base: 0, displacement: 0x10), register: 2),
    // mov %al,-1(%rbx)
    Row(mode: .bits64, bytes: [0x88, 0x43, 0xFF], operation: .store, length: 3, operandSize: 1, addressSize: 8,
        memory: MemoryOperand(base: 3, displacement: UInt64.max), register: 0),
    // mov 0x12345678(%r12,%r13,8),%r15d: SIB with REX.X REX.B, disp32 (R12 as base is DS, not SS)
    Row(mode: .bits64, bytes: [0x47, 0x8B, 0xBC, 0xEC, 0x78, 0x56, 0x34, 0x12], operation: .load, length: 8,
        operandSize: 4, addressSize: 8, memory: MemoryOperand(base: 12, index: 13, scale: 8, displacement: 0x1234_5678), register: 15),
    // mov (%rsp),%eax: SIB base RSP, no index, SS
    Row(mode: .bits64, bytes: [0x8B, 0x04, 0x24], operation: .load, length: 3, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(base: 4, segment: .ss), register: 0),
    // mov 0(%rbp),%ecx: disp8 form with RBP, SS
    Row(mode: .bits64, bytes: [0x8B, 0x4D, 0x00], operation: .load, length: 3, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(base: 5, segment: .ss), register: 1),
    // mov 0x100(%rip),%eax
    Row(mode: .bits64, bytes: [0x8B, 0x05, 0x00, 0x01, 0x00, 0x00], operation: .load, length: 6, operandSize: 4,
        addressSize: 8, memory: MemoryOperand(displacement: 0x100, ripRelative: true), register: 0),
    // mov 0xfed00000 (SIB, no base, no index: absolute disp32 sign-extended)
    Row(mode: .bits64, bytes: [0x8B, 0x04, 0x25, 0x00, 0x00, 0xD0, 0xFE], operation: .load, length: 7, operandSize: 4,
        addressSize: 8, memory: MemoryOperand(displacement: 0xFFFF_FFFF_FED0_0000), register: 0),
    // movl $0x11223344,(%rdi)
    Row(mode: .bits64, bytes: [0xC7, 0x07, 0x44, 0x33, 0x22, 0x11], operation: .storeImmediate, length: 6, operandSize: 4,
        addressSize: 8, memory: MemoryOperand(base: 7), immediate: 0x1122_3344),
    // movq $-1,(%rdi): imm32 sign-extended
    Row(mode: .bits64, bytes: [0x48, 0xC7, 0x07, 0xFF, 0xFF, 0xFF, 0xFF], operation: .storeImmediate, length: 7,
        operandSize: 8, addressSize: 8, memory: MemoryOperand(base: 7), immediate: UInt64.max),
    // movw $0x1234,(%rdi)
    Row(mode: .bits64, bytes: [0x66, 0xC7, 0x07, 0x34, 0x12], operation: .storeImmediate, length: 5, operandSize: 2,
        addressSize: 8, memory: MemoryOperand(base: 7), immediate: 0x1234),
    // movb $0x80,(%rdi)
    Row(mode: .bits64, bytes: [0xC6, 0x07, 0x80], operation: .storeImmediate, length: 3, operandSize: 1,
        addressSize: 8, memory: MemoryOperand(base: 7), immediate: 0xFFFF_FFFF_FFFF_FF80),
    // movabs 0xfed00000,%eax (A1 with an 8-byte offset)
    Row(mode: .bits64, bytes: [0xA1, 0x00, 0x00, 0xD0, 0xFE, 0, 0, 0, 0], operation: .loadAccumulator, length: 9,
        operandSize: 4, addressSize: 8, memory: MemoryOperand(displacement: 0xFED0_0000)),
    // movabs %al,0xfec00000 with 67: a 4-byte offset
    Row(mode: .bits64, bytes: [0x67, 0xA2, 0x00, 0x00, 0xC0, 0xFE], operation: .storeAccumulator, length: 6,
        operandSize: 1, addressSize: 4, memory: MemoryOperand(displacement: 0xFEC0_0000)),
    // movzbl (%rdi),%eax; movzwl; movsbq; movswl
    Row(mode: .bits64, bytes: [0x0F, 0xB6, 0x07], operation: .loadZeroExtended(sourceSize: 1), length: 3, operandSize: 4,
        addressSize: 8, memory: MemoryOperand(base: 7), register: 0),
    Row(mode: .bits64, bytes: [0x0F, 0xB7, 0x0F], operation: .loadZeroExtended(sourceSize: 2), length: 3, operandSize: 4,
        addressSize: 8, memory: MemoryOperand(base: 7), register: 1),
    Row(mode: .bits64, bytes: [0x48, 0x0F, 0xBE, 0x07], operation: .loadSignExtended(sourceSize: 1), length: 4,
        operandSize: 8, addressSize: 8, memory: MemoryOperand(base: 7), register: 0),
    Row(mode: .bits64, bytes: [0x0F, 0xBF, 0x07], operation: .loadSignExtended(sourceSize: 2), length: 3, operandSize: 4,
        addressSize: 8, memory: MemoryOperand(base: 7), register: 0),
    // xchg %rsi,(%rdi) (a sequentially consistent store); lock xchg %al,(%rbx)
    Row(mode: .bits64, bytes: [0x48, 0x87, 0x37], operation: .exchange, length: 3, operandSize: 8, addressSize: 8,
        memory: MemoryOperand(base: 7), register: 6),
    Row(mode: .bits64, bytes: [0xF0, 0x86, 0x03], operation: .exchange, length: 3, operandSize: 1, addressSize: 8,
        memory: MemoryOperand(base: 3), register: 0),
    // rep movsb; rep movsq; movsl; rep stosl; stosb; fs rep movsb (the source's segment)
    Row(mode: .bits64, bytes: [0xF3, 0xA4], operation: .moveString, length: 2, operandSize: 1, addressSize: 8, repeated: true),
    Row(mode: .bits64, bytes: [0xF3, 0x48, 0xA5], operation: .moveString, length: 3, operandSize: 8, addressSize: 8, repeated: true),
    Row(mode: .bits64, bytes: [0xA5], operation: .moveString, length: 1, operandSize: 4, addressSize: 8),
    Row(mode: .bits64, bytes: [0xF3, 0xAB], operation: .storeString, length: 2, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(segment: .es), repeated: true),
    Row(mode: .bits64, bytes: [0xAA], operation: .storeString, length: 1, operandSize: 1, addressSize: 8,
        memory: MemoryOperand(segment: .es)),
    Row(mode: .bits64, bytes: [0x64, 0xF3, 0xA4], operation: .moveString, length: 3, operandSize: 1, addressSize: 8,
        memory: MemoryOperand(segment: .fs), repeated: true),
    // gs mov (%rax),%eax; es mov (%rax),%eax (recorded; only FS and GS add a base in 64-bit code)
    Row(mode: .bits64, bytes: [0x65, 0x8B, 0x00], operation: .load, length: 3, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(base: 0, segment: .gs), register: 0),
    Row(mode: .bits64, bytes: [0x26, 0x8B, 0x00], operation: .load, length: 3, operandSize: 4, addressSize: 8,
        memory: MemoryOperand(base: 0, segment: .es), register: 0),
    // A REX before a legacy prefix is ignored: 48 66 89 07 is a 16-bit store
    Row(mode: .bits64, bytes: [0x48, 0x66, 0x89, 0x07], operation: .store, length: 4, operandSize: 2, addressSize: 8,
        memory: MemoryOperand(base: 7), register: 0),
    // REX.W beats 66
    Row(mode: .bits64, bytes: [0x66, 0x48, 0x89, 0x07], operation: .store, length: 4, operandSize: 8, addressSize: 8,
        memory: MemoryOperand(base: 7), register: 0),
    // 67: 32-bit addresses in 64-bit code
    Row(mode: .bits64, bytes: [0x67, 0x8B, 0x07], operation: .load, length: 3, operandSize: 4, addressSize: 4,
        memory: MemoryOperand(base: 7), register: 0),
    // 32-bit code: 0x05 is disp32 alone, 40-4F are not REX (they are INC/DEC: #UD here)
    Row(mode: .bits32, bytes: [0x8B, 0x05, 0x00, 0x00, 0xC0, 0xFE], operation: .load, length: 6, operandSize: 4,
        addressSize: 4, memory: MemoryOperand(displacement: 0xFFFF_FFFF_FEC0_0000), register: 0),
    Row(mode: .bits32, bytes: [0x66, 0x8B, 0x4C, 0x24, 0x08], operation: .load, length: 5, operandSize: 2, addressSize: 4,
        memory: MemoryOperand(base: 4, displacement: 8, segment: .ss), register: 1),
    Row(mode: .bits32, bytes: [0xA1, 0x00, 0x00, 0xD0, 0xFE], operation: .loadAccumulator, length: 5, operandSize: 4,
        addressSize: 4, memory: MemoryOperand(displacement: 0xFED0_0000)),
    Row(mode: .bits32, bytes: [0x26, 0x8B, 0x00], operation: .load, length: 3, operandSize: 4, addressSize: 4,
        memory: MemoryOperand(base: 0, segment: .es), register: 0),
    // 32-bit code with 67: 16-bit addressing, [BX+SI+disp8]
    Row(mode: .bits32, bytes: [0x67, 0x8B, 0x40, 0x04], operation: .load, length: 4, operandSize: 4, addressSize: 2,
        memory: MemoryOperand(base: 3, index: 6, displacement: 4), register: 0),
    // 16-bit code: mov (%bp,%di),%ax is SS; mov 0x1234,%ax is disp16; 66 makes it 32 bits
    Row(mode: .bits16, bytes: [0x8B, 0x03], operation: .load, length: 2, operandSize: 2, addressSize: 2,
        memory: MemoryOperand(base: 5, index: 7, segment: .ss), register: 0),
    Row(mode: .bits16, bytes: [0x8B, 0x06, 0x34, 0x12], operation: .load, length: 4, operandSize: 2, addressSize: 2,
        memory: MemoryOperand(displacement: 0x1234), register: 0),
    Row(mode: .bits16, bytes: [0x66, 0x89, 0x1F], operation: .store, length: 3, operandSize: 4, addressSize: 2,
        memory: MemoryOperand(base: 3), register: 3),
    Row(mode: .bits16, bytes: [0x67, 0x8B, 0x07], operation: .load, length: 3, operandSize: 2, addressSize: 4,
        memory: MemoryOperand(base: 7), register: 0),
    Row(mode: .bits16, bytes: [0xF3, 0xA4], operation: .moveString, length: 2, operandSize: 1, addressSize: 2, repeated: true),
    // 14 prefixes and a 1-byte instruction: exactly 15 bytes is allowed
    Row(mode: .bits64, bytes: [UInt8](repeating: 0x3E, count: 14) + [0xA5], operation: .moveString, length: 15,
        operandSize: 4, addressSize: 8),
  ]

  @Test(arguments: rows.indices) func decodes(_ index: Int) throws {
    let row = Self.rows[index]
    let d = try decode(row.mode, row.bytes).get()
    #expect(d.operation == row.operation)
    #expect(d.length == row.length)
    #expect(d.operandSize == row.operandSize)
    #expect(d.addressSize == row.addressSize)
    if let memory = row.memory { #expect(d.memory == memory) }
    if let register = row.register { #expect(d.register == register) }
    if let immediate = row.immediate { #expect(d.immediate == immediate) }
    #expect(d.repeated == row.repeated)
  }

  @Test func refusals() {
    // Unknown opcodes, register forms, C6/C7 other than /0, LOCK on MOV: #UD.
    for bytes: [UInt8] in [[0x90], [0x01, 0x07], [0x0F, 0x0B], [0x0F, 0xB8, 0x07], [0x89, 0xC0], [0x8B, 0xC8],
                           [0xC7, 0x0F, 0, 0, 0, 0], [0xC6, 0xF8, 0], [0xF0, 0x89, 0x07], [0xF0, 0xA5], [0x0F, 0xB6, 0xC0],
                           [0xC4, 0xE1, 0x79, 0x7E, 0x07], [0x8C, 0x07], [0xFF, 0xFF], [0xF6, 0x07, 1], [0x85, 0x07]] {
      #expect(decode(.bits64, bytes) == .failure(.invalidOpcode), "\(bytes)")
    }
    // 40 is INC EAX outside 64-bit code.
    #expect(decode(.bits32, [0x48, 0x89, 0x07]) == .failure(.invalidOpcode))
    // 15 prefixes and an opcode: 16 bytes, #GP(0); the 16th byte is never fetched.
    #expect(decode(.bits64, [UInt8](repeating: 0x66, count: 15) + [0x89, 0x07]) == .failure(.generalProtection))
    #expect(decode(.bits64, [UInt8](repeating: 0x66, count: 16) + [0x89, 0x07]) == .failure(.generalProtection))
    #expect(decode(.bits16, [UInt8](repeating: 0x2E, count: 13) + [0x8B, 0x06, 0x34, 0x12]) == .failure(.generalProtection))
    // A mov whose displacement would be bytes 15-18.
    #expect(decode(.bits64, [UInt8](repeating: 0x3E, count: 12) + [0x8B, 0x80, 1, 2, 3, 4]) == .failure(.generalProtection))
    // A fetch that fails mid-instruction gives its fault.
    #expect(decode(.bits64, [0x8B, 0x05, 0x00]) == .failure(.pageFault(address: 0xDEAD, errorCode: 0)))
  }

  /// Random bytes in every mode: each sequence decodes or is refused, and nothing traps or reads
  /// past 15 bytes.
  @Test(arguments: [CodeSize.bits64, .bits32, .bits16]) func randomBytesNeverTrap(_ mode: CodeSize) {
    var random = SplitMix64(seed: 0x4D4D_494F + UInt64(mode == .bits64 ? 0 : mode == .bits32 ? 1 : 2))
    var decoded = 0
    // Bytes weighted towards prefixes and the opcodes the decoder knows, so deep paths are hit.
    let interesting: [UInt8] = [0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x40, 0x48, 0x4F,
                                0x88, 0x89, 0x8A, 0x8B, 0xC6, 0xC7, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xAA, 0xAB,
                                0x0F, 0xB6, 0xB7, 0xBE, 0xBF, 0x04, 0x05, 0x24, 0x25, 0x44, 0x84, 0x80, 0xFF]
    for _ in 0..<20_000 {
      let bytes = (0..<15).map { _ in random.next() % 3 == 0 ? UInt8(truncatingIfNeeded: random.next())
                                                             : interesting[Int(random.next() % UInt64(interesting.count))] }
      var highest = -1
      let result: Result<DecodedInstruction, GuestException>
      do throws(GuestException) {
        result = .success(try InstructionDecoder.decode(mode) { (i: Int) throws(GuestException) -> UInt8 in
          highest = max(highest, i)
          return bytes[i]
        })
      } catch {
        result = .failure(error)
      }
      #expect(highest < 15)
      if case .success(let d) = result {
        decoded += 1
        #expect(d.length >= 1 && d.length <= 15 && d.length == highest + 1)
        #expect([1, 2, 4, 8].contains(d.operandSize) && [2, 4, 8].contains(d.addressSize))
      } else if case .failure(let e) = result {
        #expect(e == .invalidOpcode || e == .generalProtection)
      }
    }
    #expect(decoded > 1000)
  }
}

@Suite struct InstructionEmulatorTests {
  /// Runs the instruction at the target's RIP; the outcome or the exception.
  func run(_ t: inout FakeTarget) -> Result<InstructionEmulator.Outcome, GuestException> {
    do throws(GuestException) {
      return .success(try InstructionEmulator.emulate(&t))
    } catch {
      return .failure(error)
    }
  }

  func target(_ code: [UInt8], rip: UInt64 = 0x1000) -> FakeTarget { target(.bits64, code, rip: rip) }

  func target(_ mode: CodeSize, _ code: [UInt8], rip: UInt64 = 0x1000) -> FakeTarget {
    var t = FakeTarget(mode, rip: rip, code: code)
    t.mmio = [hpet >> 12, ioapic >> 12, 0x90]
    return t
  }

  @Test func readsOfAbsentDevicesAreAllOnesOfTheirWidth() {
    // mov (%rdi),%al / %ax / %eax / %rax, over registers full of a pattern.
    for (code, want) in [([0x8A, 0x07], 0x1111_1111_1111_11FF), ([0x66, 0x8B, 0x07], 0x1111_1111_1111_FFFF),
                         ([0x8B, 0x07], 0x0000_0000_FFFF_FFFF), ([0x48, 0x8B, 0x07], UInt64.max)] as [([UInt8], UInt64)] {
      var t = target(code)
      t.registers[0] = 0x1111_1111_1111_1111
      t.registers[7] = hpet + 0xF0
      #expect(run(&t) == .success(.completed(length: code.count)))
      #expect(t.registers[0] == want, "\(code)")
      #expect(t.mmioReads.count == 1 && t.mmioReads[0].address == hpet + 0xF0)
    }
    // mov (%rdi),%ah keeps AL and the rest; with REX the same register number is SIL... here %sil.
    var t = target([0x8A, 0x27])
    t.registers[0] = 0x1111_1111_1111_1122
    t.registers[7] = ioapic
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.registers[0] == 0x1111_1111_1111_FF22)
    t = target([0x40, 0x8A, 0x37])
    t.registers[6] = 0x1234
    t.registers[7] = ioapic
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.registers[6] == 0x12FF)
  }

  @Test func exchangeReadsAndWrites() {
    // xchg %rsi,(%rdi) on an absent device: RSI gets all ones, the write is offered.
    var t = target([0x48, 0x87, 0x37])
    t.registers[6] = 0x4141_4141_4141_4141
    t.registers[7] = 0x90_000
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.registers[6] == UInt64.max)
    #expect(t.mmioReads.count == 1 && t.mmioWrites.count == 1 && t.mmioWrites[0] == (0x90_000, 8, 0x4141_4141_4141_4141))
    // In RAM, the values change places.
    t = target([0xF0, 0x87, 0x07])
    t.place([1, 2, 3, 4], at: 0x5000)
    t.registers[0] = 0xAAAA_AAAA_0A0B_0C0D
    t.registers[7] = 0x5000
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.registers[0] == 0x0403_0201 && t.byte(0x5000) == 0x0D && t.byte(0x5003) == 0x0A)
  }

  @Test func zeroAndSignExtension() {
    for (code, want) in [([0x0F, 0xB6, 0x07], 0xFF), ([0x0F, 0xB7, 0x07], 0xFFFF), ([0x48, 0x0F, 0xB7, 0x07], 0xFFFF),
                         ([0x66, 0x0F, 0xB6, 0x07], 0x5555_5555_5555_00FF),
                         ([0x0F, 0xBE, 0x07], 0xFFFF_FFFF), ([0x48, 0x0F, 0xBF, 0x07], UInt64.max),
                         ([0x66, 0x0F, 0xBE, 0x07], 0x5555_5555_5555_FFFF)] as [([UInt8], UInt64)] {
      var t = target(code)
      t.registers[0] = 0x5555_5555_5555_5555
      t.registers[7] = hpet
      #expect(run(&t) == .success(.completed(length: code.count)))
      #expect(t.registers[0] == want, "\(code)")
    }
    // From RAM the extension follows the value: 0x80 sign-extends, 0x7F does not.
    var t = target([0x48, 0x0F, 0xBE, 0x07])
    t.place([0x80], at: 0x5000)
    t.registers[7] = 0x5000
    #expect(run(&t) == .success(.completed(length: 4)))
    #expect(t.registers[0] == 0xFFFF_FFFF_FFFF_FF80)
  }

  @Test func writesAreMadeWithTheirWidthAndValue() {
    var t = target([0x48, 0x89, 0x47, 0x08])            // mov %rax,8(%rdi)
    t.registers[0] = 0x0102_0304_0506_0708
    t.registers[7] = ioapic
    #expect(run(&t) == .success(.completed(length: 4)))
    #expect(t.mmioWrites.count == 1 && t.mmioWrites[0] == (ioapic + 8, 8, 0x0102_0304_0506_0708))
    t = target([0x66, 0xC7, 0x07, 0x34, 0x12])            // movw $0x1234,(%rdi)
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 5)))
    #expect(t.mmioWrites.count == 1 && t.mmioWrites[0] == (hpet, 2, 0x1234))
    t = target([0x88, 0x27])                               // mov %ah,(%rdi)
    t.registers[0] = 0xAB00
    t.registers[7] = hpet + 3
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioWrites[0] == (hpet + 3, 1, 0xAB))
    t = target([0xA3, 0x10, 0x00, 0xD0, 0xFE, 0, 0, 0, 0])   // movabs %eax,0xfed00010
    t.registers[0] = 0xFFFF_FFFF_8765_4321
    #expect(run(&t) == .success(.completed(length: 9)))
    #expect(t.mmioWrites[0] == (hpet + 0x10, 4, 0x8765_4321))
  }

  @Test func addressing() {
    // RIP-relative: the next instruction's address plus the displacement.
    var t = target([0x8B, 0x05, 0xFA, 0x0F, 0x00, 0x00], rip: 0x90_000 - 0x1000)   // mov 0xffa(%rip),%eax
    #expect(run(&t) == .success(.completed(length: 6)))
    #expect(t.mmioReads[0].address == 0x90_000)
    // SIB with a scaled index and a negative displacement.
    t = target([0x8B, 0x44, 0x8B, 0xFC])                  // mov -4(%rbx,%rcx,4),%eax
    t.registers[3] = hpet
    t.registers[1] = 2
    #expect(run(&t) == .success(.completed(length: 4)))
    #expect(t.mmioReads[0].address == hpet + 4)
    // 67 in 64-bit code: the effective address wraps at 2^32.
    t = target([0x67, 0x8B, 0x07])
    t.registers[7] = 0x1234_5678_FED0_0000
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.mmioReads[0].address == hpet)
    // FS adds its base in 64-bit code; DS and ES do not.
    t = target([0x64, 0x8B, 0x07])
    t.bases[.fs] = hpet
    t.registers[7] = 0x10
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.mmioReads[0].address == hpet + 0x10)
    t = target([0x26, 0x8B, 0x07])
    t.bases[.es] = 0x1000
    t.bases[.ds] = 0x1000
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.mmioReads[0].address == hpet)
    // 32-bit code: a segment base is added, and the sum wraps at 2^32.
    t = target(.bits32, [0x8B, 0x07])
    t.bases[.ds] = 0x1_0000
    t.registers[7] = 0xFED0_0000 - 0x1_0000
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioReads[0].address == hpet)
    // 16-bit code: BX+SI wraps at 64 KiB, then the segment base.
    t = target(.bits16, [0x8B, 0x00])
    t.bases[.ds] = 0x9_0000
    t.registers[3] = 0xFFFF
    t.registers[6] = 0x1_0001
    t.registers[0] = 0xAAAA_0000
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioReads[0].address == 0x9_0000 && t.registers[0] == 0xAAAA_FFFF)
    // The code segment's base, in 32-bit code.
    t = target(.bits32, [0x8B, 0x07], rip: 0x1000)
    t.bases[.cs] = 0x3000
    t.place([0x8B, 0x07], at: 0x4000)
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.fetches[0].address == 0x4000)
  }

  @Test func nonCanonicalAddressesFault() {
    var t = target([0x8B, 0x07])
    t.registers[7] = 0x0000_8000_0000_0000
    #expect(run(&t) == .failure(.generalProtection))
    // Through RSP or RBP, or with an SS override: #SS.
    t = target([0x8B, 0x45, 0x00])
    t.registers[5] = 0xDEAD_BEEF_0000_0000
    #expect(run(&t) == .failure(.stackFault))
    t = target([0x36, 0x8B, 0x07])
    t.registers[7] = 0xDEAD_BEEF_0000_0000
    #expect(run(&t) == .failure(.stackFault))
    // The last byte past the canonical hole.
    t = target([0x48, 0x8B, 0x07])
    t.registers[7] = 0x0000_7FFF_FFFF_FFFC
    #expect(run(&t) == .failure(.generalProtection))
  }

  @Test func accessesCrossingAPageAreSplit() {
    // An 8-byte read from the last 4 bytes of RAM page 0x8F into MMIO page 0x90.
    var t = target([0x48, 0x8B, 0x07])
    t.place([1, 2, 3, 4], at: 0x8FFFC)
    t.registers[7] = 0x8FFFC
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.registers[0] == 0xFFFF_FFFF_0403_0201)
    #expect(t.mmioReads.count == 1 && t.mmioReads[0] == (0x90000, 4))
    // A write across the same boundary: the RAM part lands, the MMIO part is offered.
    t = target([0x48, 0x89, 0x07])
    t.place([0, 0, 0, 0], at: 0x8FFFC)
    t.registers[0] = 0x1122_3344_5566_7788
    t.registers[7] = 0x8FFFE
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.byte(0x8FFFE) == 0x88 && t.byte(0x8FFFF) == 0x77)
    #expect(t.mmioWrites.count == 1 && t.mmioWrites[0] == (0x90000, 6, 0x1122_3344_5566))
    // Into a page the guest does not map: #PF at the first byte there.
    t = target([0x48, 0x8B, 0x07])
    t.ram[0xA0] = [UInt8](repeating: 0, count: 4096)
    t.registers[7] = 0xA0FFD
    #expect(run(&t) == .failure(.pageFault(address: 0xA1000, errorCode: 0)))
  }

  @Test func repStosAndMovs() {
    // rep stosl into an absent device, forwards: RCX iterations, RDI moves on, RCX 0.
    var t = target([0xF3, 0xAB])
    t.registers[0] = 0xCAFE
    t.registers[1] = 5
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioWrites.map(\.address) == [hpet, hpet + 4, hpet + 8, hpet + 12, hpet + 16])
    #expect(t.registers[1] == 0 && t.registers[7] == hpet + 20)
    // Backwards (DF set).
    t = target([0xF3, 0x66, 0xAB])
    t.rflags |= 1 << 10
    t.registers[1] = 3
    t.registers[7] = hpet + 0x10
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.mmioWrites.map(\.address) == [hpet + 0x10, hpet + 0xE, hpet + 0xC] && t.registers[7] == hpet + 0xA)
    // rep movsb from MMIO into RAM: the bytes read all ones.
    t = target([0xF3, 0xA4])
    t.ram[0x50] = [UInt8](repeating: 0, count: 4096)
    t.registers[1] = 16
    t.registers[6] = ioapic
    t.registers[7] = 0x50_000
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect((0..<16).allSatisfy { t.byte(0x50_000 + UInt64($0)) == 0xFF } && t.byte(0x50_010) == 0)
    #expect(t.registers[6] == ioapic + 16 && t.registers[7] == 0x50_010 && t.registers[1] == 0)
    // RCX 0: nothing happens, the instruction completes.
    t = target([0xF3, 0xA4])
    t.registers[6] = ioapic
    t.registers[7] = 0x50_000
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioReads.isEmpty && t.registers[6] == ioapic)
    // Without REP: one iteration, RCX untouched.
    t = target([0x48, 0xA5])
    t.ram[0x50] = [UInt8](repeating: 0, count: 4096)
    t.registers[1] = 77
    t.registers[6] = ioapic
    t.registers[7] = 0x50_000
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.registers[1] == 77 && t.registers[6] == ioapic + 8 && t.registers[7] == 0x50_008)
  }

  @Test func aLongRepIsDoneInBoundedChunks() {
    // RCX = 2^64 - 1: each call does at most maximumRepetitions, RIP stays, RCX says how far.
    var t = target([0xF3, 0x48, 0xAB])
    t.registers[1] = UInt64.max
    t.registers[7] = hpet
    #expect(run(&t) == .success(.restart))
    let chunk = InstructionEmulator.maximumRepetitions
    #expect(t.mmioWrites.count == Int(chunk))
    #expect(t.registers[1] == UInt64.max - chunk && t.registers[7] == hpet + 8 * chunk)
    // 300 iterations: restart, restart, completed.
    t = target([0xF3, 0xAA])
    t.registers[1] = 300
    t.registers[7] = hpet
    #expect(run(&t) == .success(.restart))
    #expect(run(&t) == .success(.restart))
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioWrites.count == 300 && t.registers[1] == 0 && t.registers[7] == hpet + 300)
    // 32-bit addresses (67): ECX counts and RDI wraps at 2^32, the upper halves cleared.
    t = target([0x67, 0xF3, 0xAA])
    t.registers[1] = 0xFFFF_FFFF_0000_0002
    t.registers[7] = 0xAAAA_AAAA_FFFF_FFFF
    t.mmio.insert(0xFFFFF)
    t.mmio.insert(0)
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.mmioWrites.map(\.address) == [0xFFFF_FFFF, 0])
    #expect(t.registers[1] == 0 && t.registers[7] == 1)
    // 16-bit addresses: CX and DI, the rest kept.
    t = target(.bits16, [0xF3, 0xAA])
    t.registers[1] = 0x5555_0001
    t.registers[7] = 0x7777_FFFF
    t.mmio.insert(0xF)
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.mmioWrites.map(\.address) == [0xFFFF])
    #expect(t.registers[1] == 0x5555_0000 && t.registers[7] == 0x7777_0000)
  }

  @Test func aFaultInARepKeepsTheIterationsDone() {
    // rep movsl from MMIO into RAM that ends after 8 bytes: two iterations, then #PF with
    // RCX, RSI, RDI pointing at the third.
    var t = target([0xF3, 0xA5])
    t.ram[0x50] = [UInt8](repeating: 0, count: 4096)
    t.registers[1] = 10
    t.registers[6] = hpet
    t.registers[7] = 0x50_FF8
    #expect(run(&t) == .failure(.pageFault(address: 0x51_000, errorCode: GuestException.pageFaultWrite)))
    #expect(t.registers[1] == 8 && t.registers[6] == hpet + 8 && t.registers[7] == 0x51_000)
  }

  @Test func instructionFetch() {
    // An instruction crossing into a page the guest does not map: #PF for the fetch at the
    // first byte of that page; one fetch per page.
    var t = target([0x48, 0x8B], rip: 0x1FFE)
    #expect(run(&t) == .failure(.pageFault(address: 0x2000, errorCode: GuestException.pageFaultInstructionFetch)))
    #expect(t.fetches.count == 2 && t.fetches[0] == (0x1FFE, 2) && t.fetches[1] == (0x2000, 13))
    // The same instruction with its last byte mapped: it completes, with exactly two fetches.
    t = target([0x48, 0x8B], rip: 0x1FFE)
    t.place([0x07], at: 0x2000)
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 3)))
    #expect(t.fetches.count == 2)
    // Short instruction near a page end whose next page is unmapped: no fault (never fetched).
    t = target([0x8B, 0x07], rip: 0x1FFE)
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.fetches.count == 1)
    // A mid-page instruction: one fetch of 15 bytes.
    t = target([0x8B, 0x07], rip: 0x1800)
    t.registers[7] = hpet
    #expect(run(&t) == .success(.completed(length: 2)))
    #expect(t.fetches.count == 1 && t.fetches[0] == (0x1800, 15))
    // Running into the non-canonical hole: #GP.
    t = target([0x48, 0x8B], rip: 0x0000_7FFF_FFFF_FFFE)
    #expect(run(&t) == .failure(.generalProtection))
    // User mode: the error code says so.
    t = target([0x48, 0x8B], rip: 0x1FFE)
    t.user = true
    #expect(run(&t) == .failure(.pageFault(address: 0x2000, errorCode: GuestException.pageFaultInstructionFetch | GuestException.pageFaultUser)))
    // Code in MMIO (the target says #UD, as all-ones bytes decode to).
    t = target([], rip: hpet)
    #expect(run(&t) == .failure(.invalidOpcode))
    // 16 prefixes: #GP.
    t = target([UInt8](repeating: 0x66, count: 16) + [0x8B, 0x07])
    t.registers[7] = hpet
    #expect(run(&t) == .failure(.generalProtection))
    #expect(t.mmioReads.isEmpty)
  }

  /// Random instructions against random registers, in every mode: decode-or-refuse, and when
  /// run, nothing traps and every access stays within a page.
  @Test func randomInstructionsNeverTrap() {
    var random = SplitMix64(seed: 16)
    let interesting: [UInt8] = [0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x40, 0x48, 0x4F,
                                0x88, 0x89, 0x8A, 0x8B, 0xC6, 0xC7, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xAA, 0xAB,
                                0x0F, 0xB6, 0xB7, 0xBE, 0xBF, 0x04, 0x05, 0x24, 0x25, 0x44, 0x84, 0x80, 0xFF, 0x00]
    var completed = 0
    for round in 0..<6_000 {
      let mode: CodeSize = [.bits64, .bits32, .bits16][round % 3]
      let code = (0..<15).map { _ in random.next() % 3 == 0 ? UInt8(truncatingIfNeeded: random.next())
                                                           : interesting[Int(random.next() % UInt64(interesting.count))] }
      let rip: UInt64 = [0x1000, 0x1FF8, 0xFFFF_FFFF_FFFF_FFF8, 0x0000_7FFF_FFFF_FFF0][Int(random.next() % 4)]
      var t = target(mode, code, rip: rip)
      for r in 0..<16 {
        t.registers[r] = [random.next(), hpet + random.next() % 8192, 0x8FFF8, UInt64.max, random.next() % 512][Int(random.next() % 5)]
      }
      t.rflags = random.next()
      t.bases[.fs] = random.next()
      t.bases[.ds] = random.next() % 3 == 0 ? random.next() : 0
      t.ram[0x8F] = [UInt8](repeating: 0, count: 4096)
      if case .success = run(&t) { completed += 1 }
    }
    #expect(completed > 100)
  }
}
