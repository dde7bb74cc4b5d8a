/// MOV to CR4 from a guest, as Xen checks it (xen/arch/x86/hvm/hvm.c: hvm_cr4_guest_valid_bits
/// and hvm_set_cr4): a bit the guest's CPUID does not offer, PAE cleared in long mode, PCIDE set
/// outside long mode or with CR3[11:0] not zero, or CET without CR0.WP is #GP(0), and the write
/// does not happen.
///
/// Pure arithmetic and decoding, so the host tests run it; the exit handler that uses it is
/// `ControlRegisterExits` (X86/Domain/ControlRegisterExits.swift).
public enum CR4Write {
  public static let vme: UInt64 = 1 << 0
  public static let pvi: UInt64 = 1 << 1
  public static let tsd: UInt64 = 1 << 2
  public static let de: UInt64 = 1 << 3
  public static let pse: UInt64 = 1 << 4
  public static let pae: UInt64 = 1 << 5
  public static let mce: UInt64 = 1 << 6
  public static let pge: UInt64 = 1 << 7
  public static let pce: UInt64 = 1 << 8
  public static let osfxsr: UInt64 = 1 << 9
  public static let osxmmexcpt: UInt64 = 1 << 10
  public static let umip: UInt64 = 1 << 11
  public static let vmxe: UInt64 = 1 << 13
  public static let fsgsbase: UInt64 = 1 << 16
  public static let pcide: UInt64 = 1 << 17
  public static let osxsave: UInt64 = 1 << 18
  public static let smep: UInt64 = 1 << 20
  public static let smap: UInt64 = 1 << 21
  public static let pke: UInt64 = 1 << 22
  public static let cet: UInt64 = 1 << 23
  public static let pks: UInt64 = 1 << 24

  /// The CPUID words the valid bits depend on, as the guest sees them (`CPUIDPolicy`).
  public struct Features: Sendable {
    public var leaf1ECX: UInt32, leaf1EDX: UInt32
    public var leaf7EBX: UInt32, leaf7ECX: UInt32, leaf7EDX: UInt32
    public init(leaf1ECX: UInt32, leaf1EDX: UInt32, leaf7EBX: UInt32, leaf7ECX: UInt32, leaf7EDX: UInt32) {
      self.leaf1ECX = leaf1ECX; self.leaf1EDX = leaf1EDX
      self.leaf7EBX = leaf7EBX; self.leaf7ECX = leaf7ECX; self.leaf7EDX = leaf7EDX
    }
  }

  /// The CR4 bits a guest with these CPUID features may set: hvm_cr4_guest_valid_bits, bit for
  /// bit (VMXE never: there is no nested virtualisation; PCE always, as in Xen).
  public static func validBits(_ f: Features) -> UInt64 {
    func has(_ word: UInt32, _ bit: UInt32) -> Bool { word & (1 << bit) != 0 }
    var valid = pce
    if has(f.leaf1EDX, 1) { valid |= vme | pvi }
    if has(f.leaf1EDX, 4) { valid |= tsd }
    if has(f.leaf1EDX, 2) { valid |= de }
    if has(f.leaf1EDX, 3) { valid |= pse }
    if has(f.leaf1EDX, 6) { valid |= pae }
    if has(f.leaf1EDX, 7) || has(f.leaf1EDX, 14) { valid |= mce }     // MCE or MCA
    if has(f.leaf1EDX, 13) { valid |= pge }
    if has(f.leaf1EDX, 24) { valid |= osfxsr }
    if has(f.leaf1EDX, 25) { valid |= osxmmexcpt }                     // SSE
    if has(f.leaf7ECX, 2) { valid |= umip }
    if has(f.leaf7EBX, 0) { valid |= fsgsbase }
    if has(f.leaf1ECX, 17) { valid |= pcide }
    if has(f.leaf1ECX, 26) { valid |= osxsave }
    if has(f.leaf7EBX, 7) { valid |= smep }
    if has(f.leaf7EBX, 20) { valid |= smap }
    if has(f.leaf7ECX, 3) { valid |= pke }
    if has(f.leaf7ECX, 7) || has(f.leaf7EDX, 20) { valid |= cet }     // CET_SS or CET_IBT
    if has(f.leaf7ECX, 31) { valid |= pks }
    return valid
  }

  /// Why a write is refused (for the host tests; the guest sees #GP(0) for each).
  public enum Refusal: Equatable, Sendable {
    case reservedBits(UInt64)
    case paeClearedInLongMode
    case cetWithoutWriteProtect
    case pcideOutsideLongModeOrWithCR3Tag
  }

  /// hvm_set_cr4's checks, in its order: nil if `value` may be written.
  public static func refusal(value: UInt64, old: UInt64, valid: UInt64, longModeActive: Bool,
                             cr0: UInt64, cr3: UInt64) -> Refusal? {
    if value & ~valid != 0 { return .reservedBits(value & ~valid) }
    if value & pae == 0 && longModeActive { return .paeClearedInLongMode }
    if value & cet != 0 && cr0 & (1 << 16) == 0 { return .cetWithoutWriteProtect }     // CR0.WP
    if value & pcide != 0 && old & pcide == 0 && (!longModeActive || cr3 & 0xFFF != 0) {
      return .pcideOutsideLongModeOrWithCR3Tag
    }
    return nil
  }

  /// True when the write changes how the guest's translations are made, so its TLB must be
  /// flushed (a real MOV to CR4 would flush it): PSE, PGE, PAE or SMEP changed, or PCIDE cleared.
  public static func flushesTLB(old: UInt64, new: UInt64) -> Bool {
    (old ^ new) & (pse | pge | pae | smep) != 0 || (old & pcide != 0 && new & pcide == 0)
  }

  /// A decoded MOV to a control register (0F 22 /r): which control register, which general
  /// register (0-15, the instruction encoding's order: RAX RCX RDX RBX RSP RBP RSI RDI R8-R15),
  /// and the instruction's length.
  public struct MovToCR: Equatable, Sendable {
    public var controlRegister: Int
    public var generalRegister: Int
    public var length: Int
  }

  /// Decodes the instruction at the guest's RIP, `byte(i)` being its i-th byte (nil if it cannot
  /// be read). Legacy prefixes may come first (only LOCK changes MOV to CR), then in
  /// 64-bit code one REX prefix, which must come last. The ModRM byte's mod field is ignored, as
  /// the CPU ignores it. Nil for anything else, or past the 15-byte limit of an instruction.
  public static func decodeMovToCR(is64BitCode: Bool, byte: (Int) -> UInt8?) -> MovToCR? {
    var index = 0
    var rex: UInt8 = 0
    var locked = false
    while index < 15 {
      guard let b = byte(index) else { return nil }
      switch b {
      case 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3:
        if b == 0xF0 { locked = true }
        rex = 0                                    // a REX before a legacy prefix is ignored
        index += 1
      case 0x40...0x4F where is64BitCode:
        rex = b
        index += 1
      case 0x0F:
        guard index + 2 < 15, byte(index + 1) == 0x22, let modrm = byte(index + 2) else { return nil }
        // REX.R, or AMD's LOCK prefix (LOCK MOV CR0 is CR8), make it CR8-CR15.
        let cr = Int((modrm >> 3) & 7) | (rex & 0x4 != 0 || locked ? 8 : 0)
        let gpr = Int(modrm & 7) | (rex & 0x1 != 0 ? 8 : 0)                 // REX.B
        return MovToCR(controlRegister: cr, generalRegister: gpr, length: index + 3)
      default:
        return nil
      }
    }
    return nil
  }
}
