#if os(none)
import Hypervisor
import Support
import Synchronization

/// Creating a vcpu's architecture state (VMCB and context page) and setting its registers.
public enum ArchVCPU {
  /// The next ASID to hand out.
  static let nextASID = Locked<UInt32>(1)

  /// The PVH boot state, as Xen gives it (docs/misc/pvh.rst): 32-bit protected mode, paging
  /// off, flat 4 GiB code and data segments, EBX = the start info's guest-physical address.
  public struct PVHStart {
    public var entry: UInt64
    public var startInfo: UInt64
    public init(entry: UInt64, startInfo: UInt64) { self.entry = entry; self.startInfo = startInfo }
  }

  /// Allocates and fills the VMCB and context page. Returns false if memory ran out.
  public static func create(_ vcpu: VCPU) -> Bool {
    guard let vmcbPage = Frames.allocate(order: 0) else { return false }
    guard let contextPage = Frames.allocate(order: 0) else {
      Frames.release(vmcbPage)
      return false
    }
    PhysicalMemory.zero(vmcbPage, count: 4096)
    PhysicalMemory.zero(contextPage, count: 4096)
    // The guest's FPU starts in the hypervisor's clean default state.
    if let clean = PhysicalMemory().read(hostFPUStateAddress(), count: 512) {
      PhysicalMemory.write(clean, to: contextPage + UInt64(GC_FPU))
    }
    vcpu.vmcb = vmcbPage
    vcpu.context = contextPage
    // The domain's frame count changes under its p2m lock (a vcpu may be started while another
    // vcpu of the domain populates memory).
    let domain = unsafe vcpu.domain
    domain.p2mLock.withLock { domain.framesInUse += 2 }
    let maximumASID = unsafe SVM.maximumASID
    nextASID.withLock { next in
      vcpu.asid = next
      next = next + 1 >= max(maximumASID, 2) ? 1 : next + 1
    }
    let vmcb = VMCB(address: vmcbPage)
    // CR4 writes are checked against the guest's CPUID policy (ControlRegisterExits), as Xen
    // does: the CPU would let through a bit it supports that the guest was not offered.
    vmcb.write32(VMCB.Control.interceptCRReads, VMCB.InterceptCR.cr4Write)
    vmcb.write32(VMCB.Control.interceptMisc1,
      VMCB.Intercept1.intr | VMCB.Intercept1.nmi | VMCB.Intercept1.smi | VMCB.Intercept1.initSignal
      | VMCB.Intercept1.cpuid | VMCB.Intercept1.invd | VMCB.Intercept1.hlt | VMCB.Intercept1.ioio
      | VMCB.Intercept1.msr | VMCB.Intercept1.taskSwitch | VMCB.Intercept1.shutdown
      | VMCB.Intercept1.rdpmc | VMCB.Intercept1.invlpga)
    vmcb.write32(VMCB.Control.interceptMisc2,
      VMCB.Intercept2.vmrun | VMCB.Intercept2.vmmcall | VMCB.Intercept2.vmload | VMCB.Intercept2.vmsave
      | VMCB.Intercept2.stgi | VMCB.Intercept2.clgi | VMCB.Intercept2.skinit | VMCB.Intercept2.monitor
      | VMCB.Intercept2.mwait | VMCB.Intercept2.xsetbv | VMCB.Intercept2.icebp | VMCB.Intercept2.wbinvd)
    // #DB and #AC always (XSA-156: a guest can make their delivery fault again forever, which
    // would keep the pcpu in the guest with no exit); #MC as Xen does (a real machine check is
    // the host's: `Exits.handle` stops the machine). docs/security.md has the table.
    vmcb.write32(VMCB.Control.interceptExceptions, 1 << 1 | 1 << 17 | 1 << 18)
    unsafe vmcb.write64(VMCB.Control.iopmBase, SVM.ioPermissionMap)
    unsafe vmcb.write64(VMCB.Control.msrpmBase, SVM.msrPermissionMap)
    vmcb.write32(VMCB.Control.guestASID, vcpu.asid)
    vmcb.write64(VMCB.Control.virtualInterrupt, 1 << 24)          // V_INTR_MASKING
    vmcb.write64(VMCB.Control.nestedPagingEnable, 1)
    unsafe vmcb.write64(VMCB.Control.nestedCR3, vcpu.domain.p2mRoot)
    vmcb.write64(VMCB.Save.guestPAT, 0x0007_0406_0007_0406)
    vmcb.write64(VMCB.Save.dr6, 0xFFFF_0FF0)
    vmcb.write64(VMCB.Save.dr7, 0x400)
    return true
  }

  /// Frees the VMCB and context page.
  public static func destroy(_ vcpu: VCPU) {
    if vcpu.vmcb != 0 { Frames.release(vcpu.vmcb); vcpu.vmcb = 0 }
    if vcpu.context != 0 { Frames.release(vcpu.context); vcpu.context = 0 }
  }

  public static func setPVHStart(_ vcpu: VCPU, _ start: PVHStart) {
    let vmcb = VMCB(address: vcpu.vmcb)
    let code = VMCB.SegmentValue(selector: 0x10, attributes: 0xC9B, limit: 0xFFFF_FFFF, base: 0)
    let data = VMCB.SegmentValue(selector: 0x18, attributes: 0xC93, limit: 0xFFFF_FFFF, base: 0)
    vmcb.setSegment(.cs, code)
    for segment in [VMCB.Segment.ds, .es, .ss, .fs, .gs] { vmcb.setSegment(segment, data) }
    vmcb.setSegment(.tr, VMCB.SegmentValue(selector: 0x20, attributes: 0x8B, limit: 0x67, base: 0))
    vmcb.setSegment(.ldtr, VMCB.SegmentValue(selector: 0, attributes: 0x82, limit: 0, base: 0))
    vmcb.setSegment(.gdtr, VMCB.SegmentValue(selector: 0, attributes: 0, limit: 0xFFFF, base: 0))
    vmcb.setSegment(.idtr, VMCB.SegmentValue(selector: 0, attributes: 0, limit: 0xFFFF, base: 0))
    vmcb.cr0 = 0x11                        // PE | ET
    vmcb.cr4 = 0
    vmcb.cr3 = 0
    vmcb.efer = SVM.eferSVME               // VMRUN requires SVME in the guest's EFER
    vmcb.rflags = 0x2
    vmcb.setRIP(start.entry)
    vmcb.rsp = 0
    vmcb.rax = 0
    let registers = GuestRegisters(vcpu)
    for name in [GuestRegisters.Name.rbx, .rcx, .rdx, .rsi, .rdi, .rbp, .r8, .r9, .r10, .r11, .r12, .r13, .r14, .r15] {
      registers[name] = 0
    }
    registers[.rbx] = start.startInfo
  }

  /// The state after INIT and STARTUP with vector `page`: real mode, CS = page << 8 (base
  /// page << 12), IP 0, everything else at its reset value. With nested paging the guest runs
  /// real mode directly; Linux's trampoline takes it to long mode from there.
  public static func setRealModeStart(_ vcpu: VCPU, page: UInt8) {
    let vmcb = VMCB(address: vcpu.vmcb)
    let segment = UInt64(page) << 12
    vmcb.setSegment(.cs, VMCB.SegmentValue(selector: UInt16(page) << 8, attributes: 0x9B, limit: 0xFFFF, base: segment))
    let data = VMCB.SegmentValue(selector: 0, attributes: 0x93, limit: 0xFFFF, base: 0)
    for segment in [VMCB.Segment.ds, .es, .ss, .fs, .gs] { vmcb.setSegment(segment, data) }
    vmcb.setSegment(.tr, VMCB.SegmentValue(selector: 0, attributes: 0x8B, limit: 0xFFFF, base: 0))
    vmcb.setSegment(.ldtr, VMCB.SegmentValue(selector: 0, attributes: 0x82, limit: 0xFFFF, base: 0))
    vmcb.setSegment(.gdtr, VMCB.SegmentValue(selector: 0, attributes: 0, limit: 0xFFFF, base: 0))
    vmcb.setSegment(.idtr, VMCB.SegmentValue(selector: 0, attributes: 0, limit: 0xFFFF, base: 0))
    vmcb.cr0 = 0x10                        // ET
    vmcb.cr3 = 0
    vmcb.cr4 = 0
    vmcb.efer = SVM.eferSVME
    vmcb.rflags = 0x2
    vmcb.setRIP(0)
    vmcb.rsp = 0
    vmcb.rax = 0
    let registers = GuestRegisters(vcpu)
    for name in [GuestRegisters.Name.rbx, .rcx, .rdx, .rsi, .rdi, .rbp, .r8, .r9, .r10, .r11, .r12, .r13, .r14, .r15] {
      registers[name] = 0
    }
  }

  /// Sets a 64-bit start state (VCPUOP_initialise with a 64-bit vcpu_hvm_context).
  public static func set64BitStart(_ vcpu: VCPU, rip: UInt64, rsp: UInt64, cr0: UInt64, cr3: UInt64, cr4: UInt64,
                                   efer: UInt64, rflags: UInt64, gprs: [(GuestRegisters.Name, UInt64)]) {
    let vmcb = VMCB(address: vcpu.vmcb)
    vmcb.setSegment(.cs, VMCB.SegmentValue(selector: 0x8, attributes: 0xA9B, limit: 0xFFFF_FFFF, base: 0))
    let data = VMCB.SegmentValue(selector: 0x10, attributes: 0xC93, limit: 0xFFFF_FFFF, base: 0)
    for segment in [VMCB.Segment.ds, .es, .ss, .fs, .gs] { vmcb.setSegment(segment, data) }
    vmcb.setSegment(.tr, VMCB.SegmentValue(selector: 0x18, attributes: 0x8B, limit: 0x67, base: 0))
    vmcb.setSegment(.ldtr, VMCB.SegmentValue(selector: 0, attributes: 0x82, limit: 0, base: 0))
    vmcb.cr0 = cr0
    vmcb.cr3 = cr3
    vmcb.cr4 = cr4
    vmcb.efer = efer | SVM.eferSVME | (1 << 10)     // LMA follows LME with paging on
    vmcb.rflags = rflags | 0x2
    vmcb.setRIP(rip)
    vmcb.rsp = rsp
    let registers = GuestRegisters(vcpu)
    for (name, value) in gprs { registers[name] = value }
  }

  /// A 32-bit start state (VCPUOP_initialise, VCPU_HVM_MODE_32B), already checked: the
  /// segments as given (selectors 0, as Xen loads them), FS and GS as DS, an empty LDT.
  public static func set32BitStart(_ vcpu: VCPU, cs: VMCB.SegmentValue, ds: VMCB.SegmentValue, ss: VMCB.SegmentValue,
                                   es: VMCB.SegmentValue, tr: VMCB.SegmentValue, eip: UInt32, esp: UInt32,
                                   cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, eflags: UInt32,
                                   gprs: [(GuestRegisters.Name, UInt64)]) {
    let vmcb = VMCB(address: vcpu.vmcb)
    vmcb.setSegment(.cs, cs)
    vmcb.setSegment(.ds, ds)
    vmcb.setSegment(.ss, ss)
    vmcb.setSegment(.es, es)
    vmcb.setSegment(.fs, ds)
    vmcb.setSegment(.gs, ds)
    vmcb.setSegment(.tr, tr)
    vmcb.setSegment(.ldtr, VMCB.SegmentValue(selector: 0, attributes: 0x82, limit: 0, base: 0))
    vmcb.write8(VMCB.Save.cpl, UInt8((ss.attributes >> 5) & 3))   // SVM takes the CPL from here: SS.DPL
    vmcb.cr0 = cr0
    vmcb.cr3 = cr3
    vmcb.cr4 = cr4
    vmcb.efer = efer | SVM.eferSVME
    vmcb.rflags = UInt64(eflags) | 0x2
    vmcb.setRIP(UInt64(eip))
    vmcb.rsp = UInt64(esp)
    let registers = GuestRegisters(vcpu)
    for (name, value) in gprs { registers[name] = value }
  }
}

@inline(__always) func hostFPUStateAddress() -> UInt64 { hv_host_fpu_state_address() }
#endif
