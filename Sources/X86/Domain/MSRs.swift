#if os(none)
import Hypervisor

/// RDMSR/WRMSR from a guest. The MSRs whose state the VMCB holds (FS/GS bases, SYSCALL and
/// SYSENTER) never exit (SVM.passThroughMSRs); everything else arrives here. An MSR that is not
/// listed raises #GP in the guest, as on real hardware and in Xen.
enum MSRs {
  static let tsc: UInt32 = 0x10
  static let apicBase: UInt32 = 0x1B
  static let mtrrCapabilities: UInt32 = 0xFE
  static let miscEnable: UInt32 = 0x1A0
  static let pat: UInt32 = 0x277
  static let mtrrDefaultType: UInt32 = 0x2FF
  static let efer: UInt32 = 0xC000_0080
  static let hwcr: UInt32 = 0xC001_0015
  /// AMD's memory configuration: SYSCFG and the top-of-memory registers. Linux reads SYSCFG
  /// at every boot on an AMD CPU (the MTRR and TOM2 checks); Xen answers a guest that is not
  /// the hardware domain with MtrrFixDramEn only and zeros, and ignores writes. So does this.
  static let syscfg: UInt32 = 0xC001_0010
  static let topMem1: UInt32 = 0xC001_001A
  static let topMem2: UInt32 = 0xC001_001D
  static let syscfgMtrrFixDramEnable: UInt64 = 1 << 18
  /// AMD's decode configuration: Linux reads it for whether LFENCE serialises; Xen answers
  /// that it does (bit 1) and drops writes (a #GP there panicked OpenBSD 6.7).
  static let decodeConfig: UInt32 = 0xC001_1029
  static let decodeConfigLfenceSerialises: UInt64 = 1 << 1
  static let xenHypercallPage: UInt32 = 0x4000_0000

  /// MTRRs are plain storage (nested paging decides memory types): the variable pairs
  /// 0x200-0x20F, the fixed-range registers and the default type. Xen gives PVH guests
  /// "write-back, enabled" (0xC06) as the default.
  static let mtrrFixed: [UInt32] = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F]

  static func mtrrSlot(_ msr: UInt32) -> Int? {
    if msr >= 0x200 && msr <= 0x20F { return Int(msr - 0x200) }
    if let i = mtrrFixed.firstIndex(of: msr) { return 16 + i }
    if msr == mtrrDefaultType { return 27 }
    return nil
  }

  static func handle(_ vcpu: VCPU, _ vmcb: VMCB) -> Exits.Next {
    let registers = GuestRegisters(vcpu)
    let msr = UInt32(truncatingIfNeeded: registers[.rcx])
    let isWrite = vmcb.exitInfo1 == 1
    if vcpu.archMSRs.isEmpty {
      vcpu.archMSRs = [UInt64](repeating: 0, count: 28)
      vcpu.archMSRs[27] = 0xC06
    }
    if isWrite {
      let value = (registers[.rdx] << 32) | (registers[.rax] & 0xFFFF_FFFF)
      guard write(msr, value, vcpu, vmcb) else { return generalProtection(vmcb) }
    } else {
      guard let value = read(msr, vcpu, vmcb) else { return generalProtection(vmcb) }
      registers[.rax] = value & 0xFFFF_FFFF
      registers[.rdx] = value >> 32
    }
    vmcb.advanceRIP(by: 2)
    return .resume
  }

  static func read(_ msr: UInt32, _ vcpu: VCPU, _ vmcb: VMCB) -> UInt64? {
    switch msr {
    case tsc: return CPU.rdtsc() &+ vmcb.read64(VMCB.Control.tscOffset)
    case apicBase: return VirtualLAPIC.apicBase(vcpu)     // docs/vlapic.md: the mode rules
    case mtrrCapabilities: return 0x508            // 8 variable ranges, fixed ranges, write-combining
    case miscEnable: return 1                      // fast strings
    case pat: return vmcb.read64(VMCB.Save.guestPAT)
    case efer: return vmcb.efer & ~SVM.eferSVME    // SVME is ours, not the guest's
    case hwcr: return 0
    case syscfg: return syscfgMtrrFixDramEnable
    case topMem1, topMem2: return 0
    case decodeConfig: return decodeConfigLfenceSerialises
    case xenHypercallPage: return 0
    default:
      if let slot = mtrrSlot(msr) { return vcpu.archMSRs[slot] }
      if VirtualLAPIC.msrs.contains(msr) { return VirtualLAPIC.read(msr, vcpu) }
      return nil
    }
  }

  static func write(_ msr: UInt32, _ value: UInt64, _ vcpu: VCPU, _ vmcb: VMCB) -> Bool {
    switch msr {
    case efer:
      // SCE, LME, LMA, NXE, SVME(kept), FFXSR are the bits a guest may set.
      let allowed: UInt64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 14)
      guard value & ~allowed == 0 else { return false }
      vmcb.efer = value | SVM.eferSVME
      return true
    case pat:
      for byte in 0..<8 {
        let type = (value >> UInt64(byte * 8)) & 0xFF
        guard type == 0 || type == 1 || type == 4 || type == 5 || type == 6 || type == 7 else { return false }
      }
      vmcb.write64(VMCB.Save.guestPAT, value)
      return true
    case apicBase:
      return VirtualLAPIC.writeAPICBase(vcpu, value)
    case miscEnable, hwcr, syscfg, topMem1, topMem2, decodeConfig:
      return true                                     // ignored, as Xen does for guests
    case xenHypercallPage:
      return HypercallPage.install(at: value, vcpu)
    case tsc:
      vmcb.write64(VMCB.Control.tscOffset, value &- CPU.rdtsc())
      return true
    default:
      if let slot = mtrrSlot(msr) { vcpu.archMSRs[slot] = value; return true }
      if VirtualLAPIC.msrs.contains(msr) { return VirtualLAPIC.write(msr, value, vcpu) }
      return false
    }
  }

  static func generalProtection(_ vmcb: VMCB) -> Exits.Next {
    vmcb.inject(vector: 13, type: .exception, errorCode: 0)
    return .resume
  }
}

/// The Xen hypercall page: writing its guest-physical address to MSR 0x40000000 fills it with
/// 128 stubs of 32 bytes, stub i being `mov eax, i; vmmcall; ret`. Guests that call through the
/// page never need to know which vendor's instruction to use.
enum HypercallPage {
  static func install(at value: UInt64, _ vcpu: VCPU) -> Bool {
    guard value & 0xFFF == 0 else { return false }    // must be page aligned: #GP otherwise
    var page = [UInt8](repeating: 0xCC, count: 4096)
    for i in 0..<128 {
      let base = i * 32
      if i == 23 {                                     // __HYPERVISOR_iret: PV only; trap
        page[base] = 0x0F; page[base + 1] = 0x0B
        continue
      }
      page[base] = 0xB8                                // mov eax, imm32
      page[base + 1] = UInt8(i); page[base + 2] = 0; page[base + 3] = 0; page[base + 4] = 0
      page[base + 5] = 0x0F; page[base + 6] = 0x01; page[base + 7] = 0xD9   // vmmcall
      page[base + 8] = 0xC3                            // ret
    }
    guard GuestMemory(vcpu).writePhysical(value, page) else { return false }
    unsafe vcpu.domain.hypercallPage = value
    // Xen's hvm_init_hypercall_page latches the shared_info layout from the writer's mode.
    let abi = GuestABI(is64BitCode: VMCB(address: vcpu.vmcb).is64BitCode)
    let domain = unsafe vcpu.domain     // unsafe: the vcpu keeps its domain alive
    if Events.latchSharedInfoLayout(domain, abi: abi), domain.sharedInfoGFN != nil {
      GuestTime.publishAll(domain)
      domain.timePublishedAtGFN = domain.sharedInfoGFN
    }
    return true
  }
}

/// IN/OUT from a guest: port 0xE9 is a debug console (bytes go to the domain's console);
/// every other port reads as all ones and ignores writes, as on a machine with nothing there
/// (Xen's null handler for PVH domains does the same), except port 0x42.
enum IOPorts {
  static let debugConsole: UInt64 = 0xE9
  /// The PIT's channel 2 counter reads as 0, as a PIT whose channel 2 is stopped would, not as
  /// all ones. Linux's quick_pit_calibrate (arch/x86/kernel/tsc.c) programs channel 2 and polls
  /// this port until the counter's high byte moves off 0xFF, at most 50,000 times, reading it
  /// twice each time: with all ones it waits the whole 100,000 reads before giving up. That is
  /// cheap on hardware (Xen's PVH domains pay it) but 97 % of a Linux boot's exits here, where
  /// an exit costs tens of microseconds. With 0 it gives up at the first read, and takes the
  /// frequency from pvclock instead (docs/linux-guests.md).
  static let pitChannel2: UInt64 = 0x42

  static func handle(_ vcpu: VCPU, _ vmcb: VMCB) -> Exits.Next {
    let info = vmcb.exitInfo1
    let isIn = info & 1 != 0
    let isString = info & (1 << 2) != 0
    let port = info >> 16
    let size: UInt64 = info & (1 << 4) != 0 ? 1 : (info & (1 << 5) != 0 ? 2 : 4)
    guard !isString else {
      Exits.crash(vcpu, "string I/O (ins/outs) on port \(hex(port)) is not emulated")
      return .stop
    }
    let registers = GuestRegisters(vcpu)
    if isIn {
      let mask: UInt64 = size == 4 ? 0xFFFF_FFFF : (1 << (size * 8)) - 1
      let value: UInt64 = port == pitChannel2 ? 0 : mask
      registers[.rax] = (registers[.rax] & ~mask) | value
    } else if port == debugConsole {
      unsafe ConsoleOutput.write([UInt8(truncatingIfNeeded: registers[.rax])], for: vcpu.domain)
    }
    vmcb.setRIP(vmcb.exitInfo2)                        // the CPU gives the next RIP for IOIO exits
    return .resume
  }
}
#endif
