#if os(none)
import Hypervisor

/// A nested page fault on a guest-physical address that is not the guest's RAM: the instruction
/// is emulated, as Xen's hvm_hap_nested_page_fault hands an access to p2m_mmio_dm (which every
/// unpopulated gfn is) to handle_mmio. The instruction is read through the guest's page tables
/// and decoded (`InstructionEmulator`, in Hypervisor/Emulation); its access goes to RAM where the
/// guest's address is RAM and to `MMIODevices` where it is not, and RIP moves past it. One
/// instruction per exit, or one chunk of a REP (docs/emulation.md).
///
/// What the guest gets instead when the instruction cannot be completed is the exception the CPU
/// would raise: #PF (with CR2) for a fetch or an access through a page its tables do not map,
/// #GP(0) for a non-canonical address or an instruction longer than 15 bytes, #UD for an
/// instruction the emulator does not know. Never a hypervisor fault, and never a crash of its
/// domain, except when the fault came while the CPU was delivering an event (its IDT, GDT or
/// stack is not RAM): there is no instruction to emulate then.
enum MMIOEmulation {
  static func nestedPageFault(_ vcpu: VCPU, _ vmcb: VMCB) -> Exits.Next {
    let gpa = vmcb.exitInfo2
    let info = vmcb.exitInfo1
    // The p2m maps the address now, with the access the guest made (a populate or a grant map
    // on another vcpu came in between): the guest executes the instruction again.
    let write = info & (1 << 1) != 0
    if let (_, writable) = unsafe NestedPageTable(root: vcpu.domain.p2mRoot).translate(gpa), !write || writable {
      return .resume
    }
    let interrupted = vmcb.read64(VMCB.Control.exitInterruptInfo)
    if interrupted & (1 << 31) != 0 {
      Exits.crash(vcpu, "delivering vector \(interrupted & 0xFF) touched guest-physical \(hex(gpa)), which is not RAM (error \(hex(info)))")
      return .stop
    }
    var target = EmulatedVCPU(vcpu, vmcb)
    do throws(GuestException) {
      switch try InstructionEmulator.emulate(&target) {
      case .completed(let length):
        vmcb.advanceRIP(by: UInt64(length), is64BitCode: target.codeSize == .bits64)
        if target.rflags & (1 << 8) != 0 {
          // RFLAGS.TF: the single-step trap the CPU raises after an instruction it completes,
          // with DR6.BS (as Xen's emulator raises it after one it emulated).
          vmcb.write64(VMCB.Save.dr6, vmcb.read64(VMCB.Save.dr6) | (1 << 14))
          vmcb.inject(vector: 1, type: .exception)
        }
      case .restart:
        break                                       // RIP stays: the guest runs the REP again
      }
    } catch {
      inject(error, vmcb)
    }
    return .resume
  }

  static func inject(_ exception: GuestException, _ vmcb: VMCB) {
    switch exception {
    case .invalidOpcode: vmcb.inject(vector: 6, type: .exception)
    case .generalProtection: vmcb.inject(vector: 13, type: .exception, errorCode: 0)
    case .stackFault: vmcb.inject(vector: 12, type: .exception, errorCode: 0)
    case .pageFault(let address, let errorCode): vmcb.injectPageFault(address: address, errorCode: errorCode)
    }
  }

  /// The vcpu as the emulator sees it: registers from the VMCB and the context page, memory by
  /// linear address through `GuestMemory` (the guest's page tables, then the p2m).
  struct EmulatedVCPU: EmulationTarget {
    let vcpu: VCPU
    let vmcb: VMCB
    let memory: GuestMemory
    let registers: GuestRegisters
    let codeSize: CodeSize
    let rip: UInt64
    let rflags: UInt64
    let user: Bool

    init(_ vcpu: VCPU, _ vmcb: VMCB) {
      self.vcpu = vcpu
      self.vmcb = vmcb
      memory = GuestMemory(vcpu)
      registers = GuestRegisters(vcpu)
      // CS.D (bit 10 of the attributes) makes protected-mode code 32-bit; real mode is 16-bit.
      codeSize = vmcb.is64BitCode ? .bits64 : vmcb.codeSegmentAttributes & (1 << 10) != 0 && vmcb.cr0 & 1 != 0 ? .bits32 : .bits16
      rip = vmcb.rip
      rflags = vmcb.rflags
      user = vmcb.cpl == 3
    }

    func register(_ number: Int) -> UInt64 { registers[ControlRegisterExits.register(encoded: number)] }
    func setRegister(_ number: Int, _ value: UInt64) { registers[ControlRegisterExits.register(encoded: number)] = value }

    func segmentBase(_ segment: SegmentRegister) -> UInt64 {
      switch segment {
      case .es: vmcb.segment(.es).base
      case .cs: vmcb.segment(.cs).base
      case .ss: vmcb.segment(.ss).base
      case .ds: vmcb.segment(.ds).base
      case .fs: vmcb.segment(.fs).base
      case .gs: vmcb.segment(.gs).base
      }
    }

    /// The #PF the CPU raises for `linear`: present (P) when only a write was refused, the
    /// access's kind, and user mode.
    func pageFault(_ linear: UInt64, write: Bool = false, fetch: Bool = false) -> GuestException {
      var code: UInt32 = 0
      if write {
        code |= GuestException.pageFaultWrite
        if memory.translateVirtual(linear, write: false) != nil { code |= GuestException.pageFaultPresent }
      }
      if fetch { code |= GuestException.pageFaultInstructionFetch }
      if user { code |= GuestException.pageFaultUser }
      return .pageFault(address: linear, errorCode: code)
    }

    func fetchCode(_ linear: UInt64, count: Int) throws(GuestException) -> [UInt8] {
      if let bytes = memory.read(linear, count: count) { return bytes }
      guard memory.translateVirtual(linear, write: false) != nil else { throw pageFault(linear, fetch: true) }
      // Code where the guest has no RAM: the CPU would fetch all ones there, FF FF …, which is #UD.
      throw .invalidOpcode
    }

    func read(_ linear: UInt64, size: Int) throws(GuestException) -> UInt64 {
      guard let gpa = memory.translateVirtual(linear, write: false) else { throw pageFault(linear) }
      if let bytes = memory.readPhysical(gpa, count: size) {
        var value: UInt64 = 0
        for (i, b) in bytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i & 7)) }
        return value
      }
      return MMIODevices.read(vcpu, gpa, size: size)
    }

    func write(_ linear: UInt64, size: Int, value: UInt64) throws(GuestException) {
      guard let gpa = memory.translateVirtual(linear, write: true) else { throw pageFault(linear, write: true) }
      var bytes: [UInt8] = []
      bytes.reserveCapacity(size)
      for i in 0..<size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i & 7)))) }
      if memory.writePhysical(gpa, bytes) { return }
      // RAM the p2m maps read-only (a read-only grant): the write is dropped, as Xen drops writes
      // to its discard-write types.
      if memory.readPhysical(gpa, count: 1) != nil { return }
      MMIODevices.write(vcpu, gpa, size: size, value: value)
    }
  }
}
#endif
