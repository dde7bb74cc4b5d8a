#if os(none)
import Hypervisor

/// A Virtual Machine Control Block: the 4 KiB page the CPU reads on VMRUN and writes on #VMEXIT.
/// Its first 1 KiB says what to intercept and why the last exit happened (the control area); the
/// rest is the guest's saved registers (the state save area). Offsets are from the AMD64
/// Architecture Programmer's Manual, volume 2, appendix B. Every access goes through
/// PhysicalMemory, so a VMCB is just an address with named fields.
public struct VMCB {
  public let address: UInt64

  public init(address: UInt64) { self.address = address }

  // ---- Control area ----
  public enum Control {
    public static let interceptCRReads: UInt64 = 0x000       // u16, the writes' u16 at 0x002 (`InterceptCR`)
    public static let interceptExceptions: UInt64 = 0x008    // u32, one bit per vector
    public static let interceptMisc1: UInt64 = 0x00C         // u32 (Intercept1 bits)
    public static let interceptMisc2: UInt64 = 0x010         // u32 (Intercept2 bits)
    public static let iopmBase: UInt64 = 0x040
    public static let msrpmBase: UInt64 = 0x048
    public static let tscOffset: UInt64 = 0x050
    public static let guestASID: UInt64 = 0x058              // u32
    public static let tlbControl: UInt64 = 0x05C             // u8
    public static let virtualInterrupt: UInt64 = 0x060       // V_TPR, V_IRQ, V_INTR_MASKING …
    public static let interruptShadow: UInt64 = 0x068
    public static let exitCode: UInt64 = 0x070
    public static let exitInfo1: UInt64 = 0x078
    public static let exitInfo2: UInt64 = 0x080
    public static let exitInterruptInfo: UInt64 = 0x088
    public static let nestedPagingEnable: UInt64 = 0x090
    public static let eventInjection: UInt64 = 0x0A8
    public static let nestedCR3: UInt64 = 0x0B0
    public static let cleanBits: UInt64 = 0x0C0              // u32
    public static let nextRIP: UInt64 = 0x0C8
  }

  /// Bits of the CR intercepts (offset 0x000): reads of CRn in bit n, writes in bit 16 + n.
  public enum InterceptCR {
    public static let cr4Write: UInt32 = 1 << (16 + 4)
  }

  /// Intercept1 bits (offset 0x00C).
  public enum Intercept1 {
    public static let intr: UInt32 = 1 << 0
    public static let nmi: UInt32 = 1 << 1
    public static let smi: UInt32 = 1 << 2
    public static let initSignal: UInt32 = 1 << 3
    /// Exit when the guest could take a virtual interrupt (an interrupt window).
    public static let virtualInterrupt: UInt32 = 1 << 4
    public static let rdpmc: UInt32 = 1 << 15
    public static let cpuid: UInt32 = 1 << 18
    public static let invd: UInt32 = 1 << 22
    public static let hlt: UInt32 = 1 << 24
    public static let invlpga: UInt32 = 1 << 26
    public static let ioio: UInt32 = 1 << 27
    public static let msr: UInt32 = 1 << 28
    public static let taskSwitch: UInt32 = 1 << 29
    public static let shutdown: UInt32 = 1 << 31
  }

  /// Intercept2 bits (offset 0x010).
  public enum Intercept2 {
    public static let vmrun: UInt32 = 1 << 0
    public static let vmmcall: UInt32 = 1 << 1
    public static let vmload: UInt32 = 1 << 2
    public static let vmsave: UInt32 = 1 << 3
    public static let stgi: UInt32 = 1 << 4
    public static let clgi: UInt32 = 1 << 5
    public static let skinit: UInt32 = 1 << 6
    public static let icebp: UInt32 = 1 << 8
    public static let wbinvd: UInt32 = 1 << 9
    public static let monitor: UInt32 = 1 << 10
    public static let mwait: UInt32 = 1 << 11
    public static let xsetbv: UInt32 = 1 << 13
  }

  // ---- State save area ----
  public enum Segment: UInt64 {
    case es = 0x400, cs = 0x410, ss = 0x420, ds = 0x430, fs = 0x440, gs = 0x450
    case gdtr = 0x460, ldtr = 0x470, idtr = 0x480, tr = 0x490
  }
  public enum Save {
    public static let cpl: UInt64 = 0x4CB       // u8
    public static let efer: UInt64 = 0x4D0
    public static let cr4: UInt64 = 0x548
    public static let cr3: UInt64 = 0x550
    public static let cr0: UInt64 = 0x558
    public static let dr7: UInt64 = 0x560
    public static let dr6: UInt64 = 0x568
    public static let rflags: UInt64 = 0x570
    public static let rip: UInt64 = 0x578
    public static let rsp: UInt64 = 0x5D8
    public static let rax: UInt64 = 0x5F8
    public static let star: UInt64 = 0x600
    public static let lstar: UInt64 = 0x608
    public static let cstar: UInt64 = 0x610
    public static let sfmask: UInt64 = 0x618
    public static let kernelGSBase: UInt64 = 0x620
    public static let sysenterCS: UInt64 = 0x628
    public static let sysenterESP: UInt64 = 0x630
    public static let sysenterEIP: UInt64 = 0x638
    public static let cr2: UInt64 = 0x640
    public static let guestPAT: UInt64 = 0x668
  }

  // A VMCB is a hypervisor-owned page: its fields are read and written unchecked (exit path),
  // and the sum wraps on purpose (a frame address plus an offset below 4096 cannot overflow;
  // an overflow check here was two instructions on each of dozens of accesses per exit).
  @inline(__always) public func read64(_ offset: UInt64) -> UInt64 { PhysicalMemory.ownRead64(address &+ offset) }
  @inline(__always) public func write64(_ offset: UInt64, _ value: UInt64) { PhysicalMemory.ownWrite64(address &+ offset, value) }
  @inline(__always) public func read16(_ offset: UInt64) -> UInt16 { PhysicalMemory.ownRead16(address &+ offset) }
  @inline(__always) public func read32(_ offset: UInt64) -> UInt32 { PhysicalMemory.ownRead32(address &+ offset) }
  @inline(__always) public func write32(_ offset: UInt64, _ value: UInt32) { PhysicalMemory.ownWrite32(address &+ offset, value) }
  @inline(__always) public func read8(_ offset: UInt64) -> UInt8 { PhysicalMemory.ownRead8(address &+ offset) }
  @inline(__always) public func write8(_ offset: UInt64, _ value: UInt8) { PhysicalMemory.ownWrite8(address &+ offset, value) }

  /// A segment register in the save area: selector, attributes (the descriptor's access byte in
  /// bits 0-7 and its G/DB/L/AVL flags in bits 8-11), limit and base.
  public struct SegmentValue {
    public var selector: UInt16
    public var attributes: UInt16
    public var limit: UInt32
    public var base: UInt64
    public init(selector: UInt16, attributes: UInt16, limit: UInt32, base: UInt64) {
      self.selector = selector; self.attributes = attributes; self.limit = limit; self.base = base
    }
  }

  public func setSegment(_ segment: Segment, _ value: SegmentValue) {
    let at = address + segment.rawValue
    PhysicalMemory.write16(at, value.selector)
    PhysicalMemory.write16(at + 2, value.attributes)
    PhysicalMemory.write32(at + 4, value.limit)
    PhysicalMemory.write64(at + 8, value.base)
  }

  public func segment(_ segment: Segment) -> SegmentValue {
    let at = address + segment.rawValue
    return SegmentValue(
      selector: PhysicalMemory.read16(at) ?? 0, attributes: PhysicalMemory.read16(at + 2) ?? 0,
      limit: PhysicalMemory.read32(at + 4) ?? 0, base: PhysicalMemory.read64(at + 8) ?? 0)
  }

  // Frequently used fields, named.
  /// The guest's RIP. Read-only here on purpose: an exit handler that completes an instruction
  /// moves it with `advanceRIP(by:)`, which wraps as the CPU does; `setRIP` is for a new start
  /// state or a RIP the CPU computed (IOIO's next RIP).
  @inline(__always) public var rip: UInt64 { read64(Save.rip) }
  @inline(__always) public func setRIP(_ value: UInt64) { write64(Save.rip, value) }
  public var rsp: UInt64 { get { read64(Save.rsp) } nonmutating set { write64(Save.rsp, newValue) } }
  public var rax: UInt64 { get { read64(Save.rax) } nonmutating set { write64(Save.rax, newValue) } }
  @inline(__always) public var rflags: UInt64 { get { read64(Save.rflags) } nonmutating set { write64(Save.rflags, newValue) } }
  @inline(__always) public var cr0: UInt64 { get { read64(Save.cr0) } nonmutating set { write64(Save.cr0, newValue) } }
  @inline(__always) public var cr3: UInt64 { get { read64(Save.cr3) } nonmutating set { write64(Save.cr3, newValue) } }
  public var cr4: UInt64 { get { read64(Save.cr4) } nonmutating set { write64(Save.cr4, newValue) } }
  @inline(__always) public var efer: UInt64 { get { read64(Save.efer) } nonmutating set { write64(Save.efer, newValue) } }
  public var cpl: UInt8 { read8(Save.cpl) }
  /// The attribute bits of CS (bit 9: L, 64-bit code).
  @inline(__always) public var codeSegmentAttributes: UInt16 { read16(Segment.cs.rawValue + 2) }
  /// True when the guest runs 64-bit code (EFER.LMA and CS.L): its RIP is 64 bits wide, and a
  /// hypercall takes its arguments from the 64-bit registers.
  @inline(__always) public var is64BitCode: Bool {
    InstructionPointer.is64BitCode(efer: efer, codeSegmentAttributes: codeSegmentAttributes)
  }

  /// The linear address of byte `offset` of the guest's next instruction
  /// (`InstructionPointer.codeAddress`).
  public func codeAddress(plus offset: UInt64 = 0, is64BitCode: Bool) -> UInt64 {
    InstructionPointer.codeAddress(rip: rip, plus: offset, codeSegmentBase: is64BitCode ? 0 : segment(.cs).base,
                                   is64BitCode: is64BitCode)
  }

  /// Moves RIP past the `length`-byte instruction the hypervisor just completed for the guest,
  /// wrapping modulo 2^64 in 64-bit code and 2^32 otherwise (`InstructionPointer`). Never traps,
  /// wherever the guest put the instruction.
  @inline(__always) public func advanceRIP(by length: UInt64) {
    advanceRIP(by: length, is64BitCode: is64BitCode)
  }

  /// The same, for a handler that has already read the guest's mode (a hypercall decodes its
  /// arguments by it), so the exit path does not read EFER and CS twice.
  @inline(__always) public func advanceRIP(by length: UInt64, is64BitCode: Bool) {
    setRIP(InstructionPointer.advanced(rip, by: length, is64BitCode: is64BitCode))
  }
  @inline(__always) public var exitCode: UInt64 { read64(Control.exitCode) }
  public var exitInfo1: UInt64 { read64(Control.exitInfo1) }
  public var exitInfo2: UInt64 { read64(Control.exitInfo2) }

  /// Queues an event for delivery on the next VMRUN: an exception (with or without an error
  /// code), or an external interrupt.
  public func inject(vector: UInt8, type: EventType, errorCode: UInt32? = nil) {
    var value = UInt64(vector) | (UInt64(type.rawValue) << 8) | (1 << 31)
    if let errorCode { value |= (1 << 11) | (UInt64(errorCode) << 32) }
    write64(Control.eventInjection, value)
  }

  /// Queues a page fault for the guest: CR2 holds the faulting address, as the CPU would set it.
  /// (With nested paging the guest's own faults never reach the hypervisor; this is for the
  /// emulation paths that must fault on the guest's behalf.)
  public func injectPageFault(address: UInt64, errorCode: UInt32) {
    write64(Save.cr2, address)
    inject(vector: 14, type: .exception, errorCode: errorCode)
  }

  public enum EventType: UInt8 { case externalInterrupt = 0, nmi = 2, exception = 3, softwareInterrupt = 4 }
}

/// #VMEXIT codes (AMD APM vol. 2, appendix C) that Swiftvisor handles by name.
public enum ExitCode {
  public static let cr4Write: UInt64 = 0x14             // VMEXIT_CR4_WRITE (CRn writes: 0x10 + n)
  public static let exceptionBase: UInt64 = 0x40        // 0x40 + vector
  public static let debugException: UInt64 = 0x41       // #DB
  public static let alignmentCheck: UInt64 = 0x51       // #AC
  public static let machineCheck: UInt64 = 0x52         // #MC
  public static let rdpmc: UInt64 = 0x6F
  public static let intr: UInt64 = 0x60
  public static let nmi: UInt64 = 0x61
  public static let smi: UInt64 = 0x62
  public static let initSignal: UInt64 = 0x63
  public static let virtualInterrupt: UInt64 = 0x64
  public static let cpuid: UInt64 = 0x72
  public static let invd: UInt64 = 0x76
  public static let hlt: UInt64 = 0x78
  public static let invlpga: UInt64 = 0x7A
  public static let ioio: UInt64 = 0x7B
  public static let msr: UInt64 = 0x7C
  public static let taskSwitch: UInt64 = 0x7D
  public static let shutdown: UInt64 = 0x7F
  public static let vmrun: UInt64 = 0x80
  public static let vmmcall: UInt64 = 0x81
  public static let vmload: UInt64 = 0x82
  public static let vmsave: UInt64 = 0x83
  public static let stgi: UInt64 = 0x84
  public static let clgi: UInt64 = 0x85
  public static let skinit: UInt64 = 0x86
  public static let icebp: UInt64 = 0x88
  public static let wbinvd: UInt64 = 0x89
  public static let monitor: UInt64 = 0x8A
  public static let mwait: UInt64 = 0x8B
  public static let xsetbv: UInt64 = 0x8D
  public static let nestedPageFault: UInt64 = 0x400
  public static let invalid: UInt64 = UInt64.max        // VMEXIT_INVALID (-1): bad guest state
}
#endif
