import Testing

@testable import X86

/// MOV to CR4 from a guest (`CR4Write`): the bits its CPUID allows, Xen's other checks, and the
/// instruction decoded from the guest's memory when the CPU does not name the register.
@Suite struct CR4WriteTests {
  /// QEMU's qemu64 model as the guest sees it: leaf 1 EDX with VME DE PSE TSC PAE MCE PGE MCA
  /// FXSR SSE, ECX with SSE3 and CX16 only; nothing in leaf 7.
  static let qemu64 = CR4Write.Features(
    leaf1ECX: 1 << 0 | 1 << 13, leaf1EDX: 0x078B_FBFF, leaf7EBX: 0, leaf7ECX: 0, leaf7EDX: 0)

  @Test func validBitsFollowTheCPUIDPolicy() {
    let valid = CR4Write.validBits(Self.qemu64)
    let want: UInt64 = CR4Write.vme | CR4Write.pvi | CR4Write.tsd | CR4Write.de | CR4Write.pse | CR4Write.pae
      | CR4Write.mce | CR4Write.pge | CR4Write.pce | CR4Write.osfxsr | CR4Write.osxmmexcpt
    #expect(valid == want)
    // PCE is valid even with no features at all (Xen: unconditional).
    #expect(CR4Write.validBits(.init(leaf1ECX: 0, leaf1EDX: 0, leaf7EBX: 0, leaf7ECX: 0, leaf7EDX: 0)) == CR4Write.pce)
    // Leaf 7 and the ECX features.
    var more = Self.qemu64
    more.leaf7EBX = 1 << 0 | 1 << 7 | 1 << 20          // FSGSBASE SMEP SMAP
    more.leaf7ECX = 1 << 2 | 1 << 3                     // UMIP PKU
    more.leaf1ECX |= 1 << 17 | 1 << 26                  // PCID XSAVE
    #expect(CR4Write.validBits(more) == want | CR4Write.fsgsbase | CR4Write.smep | CR4Write.smap | CR4Write.umip
      | CR4Write.pke | CR4Write.pcide | CR4Write.osxsave)
    // MCA alone is enough for MCE; VMX (leaf 1 ECX bit 5) never gives VMXE.
    #expect(CR4Write.validBits(.init(leaf1ECX: 1 << 5, leaf1EDX: 1 << 14, leaf7EBX: 0, leaf7ECX: 0, leaf7EDX: 0))
      == CR4Write.pce | CR4Write.mce)
  }

  static let valid = CR4Write.validBits(qemu64)
  /// What Linux runs with in long mode on qemu64.
  static let linuxCR4 = CR4Write.pae | CR4Write.pge | CR4Write.osfxsr | CR4Write.osxmmexcpt | CR4Write.pse

  func refusal(_ value: UInt64, old: UInt64 = linuxCR4, longMode: Bool = true, cr0: UInt64 = 0x8005_0033,
               cr3: UInt64 = 0x1000) -> CR4Write.Refusal? {
    CR4Write.refusal(value: value, old: old, valid: Self.valid, longModeActive: longMode, cr0: cr0, cr3: cr3)
  }

  @Test func reservedAndUnofferedBitsAreRefused() {
    #expect(refusal(Self.linuxCR4) == nil)
    #expect(refusal(Self.linuxCR4 | CR4Write.tsd) == nil)
    #expect(refusal(Self.linuxCR4 | 1 << 15) == .reservedBits(1 << 15))
    #expect(refusal(Self.linuxCR4 | 1 << 63) == .reservedBits(1 << 63))
    #expect(refusal(Self.linuxCR4 | 1 << 32) == .reservedBits(1 << 32))
    #expect(refusal(Self.linuxCR4 | CR4Write.osxsave | CR4Write.vmxe) == .reservedBits(CR4Write.osxsave | CR4Write.vmxe))
    #expect(refusal(UInt64.max) == .reservedBits(~Self.valid))
    // LA57 (bit 12) is not among Xen's guest bits at all.
    #expect(refusal(Self.linuxCR4 | 1 << 12) == .reservedBits(1 << 12))
  }

  @Test func paeStaysOnInLongMode() {
    #expect(refusal(Self.linuxCR4 & ~CR4Write.pae) == .paeClearedInLongMode)
    // Outside long mode PAE may go (32-bit code before paging is turned on).
    #expect(refusal(0, old: CR4Write.pae, longMode: false, cr0: 0x11, cr3: 0) == nil)
  }

  @Test func pcideNeedsLongModeAndAClearCR3Tag() {
    let allPCID = CR4Write.validBits(.init(leaf1ECX: 1 << 17, leaf1EDX: 0x078B_FBFF, leaf7EBX: 0, leaf7ECX: 0, leaf7EDX: 0))
    func check(old: UInt64, longMode: Bool, cr3: UInt64) -> CR4Write.Refusal? {
      CR4Write.refusal(value: Self.linuxCR4 | CR4Write.pcide, old: old, valid: allPCID, longModeActive: longMode,
                       cr0: 0x8005_0033, cr3: cr3)
    }
    #expect(check(old: Self.linuxCR4, longMode: true, cr3: 0x1000) == nil)
    #expect(check(old: Self.linuxCR4, longMode: true, cr3: 0x1001) == .pcideOutsideLongModeOrWithCR3Tag)
    #expect(check(old: Self.linuxCR4, longMode: false, cr3: 0x1000) == .pcideOutsideLongModeOrWithCR3Tag)
    // Already on: a CR3 tag does not matter (only the 0 -> 1 change is checked).
    #expect(check(old: Self.linuxCR4 | CR4Write.pcide, longMode: true, cr3: 0x1001) == nil)
  }

  @Test func cetNeedsWriteProtect() {
    let withCET = CR4Write.validBits(.init(leaf1ECX: 0, leaf1EDX: 0x078B_FBFF, leaf7EBX: 0, leaf7ECX: 1 << 7, leaf7EDX: 0))
    #expect(CR4Write.refusal(value: Self.linuxCR4 | CR4Write.cet, old: Self.linuxCR4, valid: withCET, longModeActive: true,
                             cr0: 0x8000_0033, cr3: 0) == .cetWithoutWriteProtect)
    #expect(CR4Write.refusal(value: Self.linuxCR4 | CR4Write.cet, old: Self.linuxCR4, valid: withCET, longModeActive: true,
                             cr0: 0x8001_0033, cr3: 0) == nil)
  }

  @Test func translationBitsFlushTheTLB() {
    #expect(CR4Write.flushesTLB(old: Self.linuxCR4, new: Self.linuxCR4 & ~CR4Write.pge))
    #expect(CR4Write.flushesTLB(old: 0, new: CR4Write.pae))
    #expect(CR4Write.flushesTLB(old: CR4Write.pcide, new: 0))
    #expect(!CR4Write.flushesTLB(old: 0, new: CR4Write.pcide))
    #expect(!CR4Write.flushesTLB(old: Self.linuxCR4, new: Self.linuxCR4 | CR4Write.tsd))
  }

  func decode(_ bytes: [UInt8], is64BitCode: Bool = true) -> CR4Write.MovToCR? {
    CR4Write.decodeMovToCR(is64BitCode: is64BitCode) { $0 < bytes.count ? bytes[$0] : nil }
  }

  @Test func decodesMovToCR4() {
    #expect(decode([0x0F, 0x22, 0xE0]) == .init(controlRegister: 4, generalRegister: 0, length: 3))      // mov %rax, %cr4
    #expect(decode([0x0F, 0x22, 0xE7]) == .init(controlRegister: 4, generalRegister: 7, length: 3))      // mov %rdi, %cr4
    #expect(decode([0x41, 0x0F, 0x22, 0xE1]) == .init(controlRegister: 4, generalRegister: 9, length: 4)) // mov %r9, %cr4
    #expect(decode([0x44, 0x0F, 0x22, 0xE0]) == .init(controlRegister: 12, generalRegister: 0, length: 4)) // REX.R: CR12
    #expect(decode([0x0F, 0x22, 0xD8]) == .init(controlRegister: 3, generalRegister: 0, length: 3))      // mov %rax, %cr3
    // The mod field is ignored, as the CPU ignores it.
    #expect(decode([0x0F, 0x22, 0x20]) == .init(controlRegister: 4, generalRegister: 0, length: 3))
    // Legacy prefixes count in the length; a REX before one is ignored.
    #expect(decode([0x66, 0x2E, 0x0F, 0x22, 0xE3]) == .init(controlRegister: 4, generalRegister: 3, length: 5))
    #expect(decode([0x41, 0x66, 0x0F, 0x22, 0xE1]) == .init(controlRegister: 4, generalRegister: 1, length: 5))
    // AMD's LOCK MOV CR0 is CR8.
    #expect(decode([0xF0, 0x0F, 0x22, 0xC0]) == .init(controlRegister: 8, generalRegister: 0, length: 4))
    // Outside 64-bit code 0x41 is INC ECX, not a prefix.
    #expect(decode([0x41, 0x0F, 0x22, 0xE1], is64BitCode: false) == nil)
    #expect(decode([0x0F, 0x22, 0xE1], is64BitCode: false) == .init(controlRegister: 4, generalRegister: 1, length: 3))
  }

  @Test func refusesWhatIsNotAMovToCR() {
    #expect(decode([0x0F, 0x20, 0xE0]) == nil)             // MOV from CR4
    #expect(decode([0x90]) == nil)
    #expect(decode([0x0F, 0x22]) == nil)                   // cut short (the next byte unreadable)
    #expect(decode([]) == nil)
    // Fifteen bytes is the limit: 13 prefixes leave no room for the 3-byte instruction.
    #expect(decode([UInt8](repeating: 0x66, count: 13) + [0x0F, 0x22, 0xE0]) == nil)
    #expect(decode([UInt8](repeating: 0x66, count: 12) + [0x0F, 0x22, 0xE0]) == .init(controlRegister: 4, generalRegister: 0, length: 15))
    #expect(decode([UInt8](repeating: 0x66, count: 40)) == nil)
  }
}
