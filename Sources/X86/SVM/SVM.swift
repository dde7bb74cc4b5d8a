#if os(none)
import Hypervisor
import Support

/// Turning AMD-V on, per pcpu, and the resources all VMCBs share.
///
/// Each pcpu sets EFER.SVME, gives the CPU a host save area (where VMRUN stores host state) and
/// keeps a "host VMCB" holding its own hidden segment state (GS base, TR, …), which vmrun.S
/// reloads after every exit with VMLOAD. All vcpus share one I/O permission map (intercept every
/// port) and one MSR permission map (intercept every MSR except the few the VMCB itself holds).
public enum SVM {
  static let msrEFER: UInt32 = 0xC000_0080
  static let msrHostSaveArea: UInt32 = 0xC001_0117
  static let eferSVME: UInt64 = 1 << 12

  // What `setUpShared` finds and makes, on the boot pcpu before any other pcpu starts; only read
  // afterwards, and each read is marked `unsafe` for that reason.
  nonisolated(unsafe) public private(set) static var ioPermissionMap: UInt64 = 0
  nonisolated(unsafe) public private(set) static var msrPermissionMap: UInt64 = 0
  nonisolated(unsafe) public private(set) static var maximumASID: UInt32 = 0
  /// NRIP_SAVE (CPUID 0x8000000A EDX bit 3): the VMCB gives the next RIP of an intercepted
  /// instruction. QEMU's TCG does not offer it.
  nonisolated(unsafe) public private(set) static var hasNextRIP = false
  /// DecodeAssists (EDX bit 7): a MOV-CR exit names its general register in EXITINFO1. QEMU's
  /// TCG does not offer it either, so `ControlRegisterExits` decodes the instruction itself.
  nonisolated(unsafe) public private(set) static var hasDecodeAssists = false
  /// Each pcpu's host save VMCB, by pcpu: each pcpu writes and reads only its own entry.
  nonisolated(unsafe) static var hostVMCB = InlineArray<64, UInt64>(repeating: 0)

  /// MSRs whose state lives in the VMCB (loaded by VMLOAD/VMRUN, saved by VMSAVE/#VMEXIT), so
  /// the guest may read and write them directly.
  static let passThroughMSRs: [UInt32] = [
    0xC000_0100, 0xC000_0101, 0xC000_0102,          // FS.base, GS.base, KernelGSBase
    0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084,  // STAR, LSTAR, CSTAR, SFMASK
    0x174, 0x175, 0x176,                             // SYSENTER_CS/ESP/EIP
  ]

  /// Shared maps; called once on the BSP. Returns false (and says why) if SVM cannot be used.
  public static func setUpShared() -> Bool {
    guard CPU.hasSVM else { Log.warning("svm: this CPU has no AMD-V; domains cannot run"); return false }
    guard CPU.hasNPT else { Log.warning("svm: this CPU has no nested paging; domains cannot run"); return false }
    let features = CPU.cpuid(0x8000_000A)
    unsafe maximumASID = features.ebx
    unsafe hasNextRIP = features.edx & (1 << 3) != 0
    unsafe hasDecodeAssists = features.edx & (1 << 7) != 0
    // I/O permission map: 12 KiB (3 pages, order 2 allocates 4), all ones = intercept every port.
    guard let iopm = Frames.allocate(order: 2), let msrpm = Frames.allocate(order: 1) else {
      Log.error("svm: no memory for the permission maps")
      return false
    }
    PhysicalMemory.fill(iopm, byte: 0xFF, count: 4 * 4096)
    PhysicalMemory.fill(msrpm, byte: 0xFF, count: 2 * 4096)
    for msr in passThroughMSRs { allow(msr: msr, in: msrpm) }
    unsafe ioPermissionMap = iopm
    unsafe msrPermissionMap = msrpm
    hv_capture_host_fpu_state()
    return true
  }

  /// Clears the read and write intercept bits of one MSR (two bits per MSR, three 2 KiB ranges).
  private static func allow(msr: UInt32, in map: UInt64) {
    let rangeBase: UInt64
    let index: UInt64
    switch msr {
    case 0..<0x2000: rangeBase = 0x000; index = UInt64(msr)
    case 0xC000_0000..<0xC000_2000: rangeBase = 0x800; index = UInt64(msr - 0xC000_0000)
    case 0xC001_0000..<0xC001_2000: rangeBase = 0x1000; index = UInt64(msr - 0xC001_0000)
    default: return
    }
    let bit = index * 2
    let byte = map + rangeBase + bit / 8
    let value = PhysicalMemory.read8(byte) ?? 0xFF
    PhysicalMemory.write8(byte, value & ~(UInt8(0b11) << UInt8(bit % 8)))
  }

  /// Enables SVM on this pcpu. Called by every pcpu during its bring-up.
  public static func enableOnThisCPU() -> Bool {
    guard unsafe ioPermissionMap != 0 else { return false }
    guard let hostSave = Frames.allocate(order: 0), let hostState = Frames.allocate(order: 0) else { return false }
    PhysicalMemory.zero(hostSave, count: 4096)
    PhysicalMemory.zero(hostState, count: 4096)
    CPU.wrmsr(msrEFER, CPU.rdmsr(msrEFER) | eferSVME)
    CPU.wrmsr(msrHostSaveArea, hostSave)
    hv_vmsave(hostState)
    unsafe hostVMCB[CPU.current] = hostState
    return true
  }

  public static var hostVMCBForThisCPU: UInt64 { unsafe hostVMCB[CPU.current] }
}
#endif
