#if os(none)
import Hypervisor
import Synchronization

/// MOV to CR4 from a guest (exit VMEXIT_CR4_WRITE), handled as Xen's SVM code does: the new value
/// is checked against the guest's CPUID policy (`CR4Write`), a refused one is #GP(0) with RIP
/// left on the instruction, an accepted one goes into the VMCB and RIP moves past it.
///
/// With DecodeAssists the CPU names the general register (EXITINFO1 bit 63 set, the register in
/// bits 3-0) and with NRIP_SAVE the next RIP; without them (QEMU's TCG offers neither) the
/// instruction is read from the guest's memory and decoded. One that cannot be read or is not a
/// MOV to CR4 any more (another vcpu rewrote it) is #GP(0), as Xen's emulator gives.
enum ControlRegisterExits {
  /// The general register with this number in the instruction encoding (0-15: RAX RCX RDX RBX
  /// RSP RBP RSI RDI R8-R15).
  static func register(encoded number: Int) -> GuestRegisters.Name {
    switch number & 0xF {
    case 0: .rax
    case 1: .rcx
    case 2: .rdx
    case 3: .rbx
    case 4: .rsp
    case 5: .rbp
    case 6: .rsi
    case 7: .rdi
    case 8: .r8
    case 9: .r9
    case 10: .r10
    case 11: .r11
    case 12: .r12
    case 13: .r13
    case 14: .r14
    default: .r15
    }
  }

  static func cr4Write(_ vcpu: VCPU, _ vmcb: VMCB) -> Exits.Next {
    let is64BitCode = vmcb.is64BitCode
    let info = vmcb.exitInfo1
    let generalRegister: Int
    let length: UInt64
    let nextRIP = vmcb.read64(VMCB.Control.nextRIP)
    if unsafe SVM.hasDecodeAssists && SVM.hasNextRIP && info & (1 << 63) != 0 {
      generalRegister = Int(info & 0xF)
      length = nextRIP &- vmcb.rip
    } else {
      guard let decoded = decode(vcpu, vmcb, is64BitCode: is64BitCode), decoded.controlRegister == 4 else {
        return generalProtection(vmcb)
      }
      generalRegister = decoded.generalRegister
      length = UInt64(decoded.length)
    }
    // Only CPL 0 gets here (the CPU raises #GP itself first), outside 64-bit code the operand
    // is 32 bits.
    let raw = GuestRegisters(vcpu)[register(encoded: generalRegister)]
    let value = is64BitCode ? raw : raw & 0xFFFF_FFFF
    let old = vmcb.cr4
    let longModeActive = vmcb.efer & InstructionPointer.eferLongModeActive != 0
    if CR4Write.refusal(value: value, old: old, valid: guestValidBits(vcpu), longModeActive: longModeActive,
                        cr0: vmcb.cr0, cr3: vmcb.cr3) != nil {
      return generalProtection(vmcb)
    }
    // Nothing of CR4 is the hypervisor's: the VMCB holds the guest's value as it is (EFER is
    // where the hypervisor forces a bit, SVME).
    vmcb.cr4 = value
    if CR4Write.flushesTLB(old: old, new: value) { vcpu.needsTLBFlush.store(true, ordering: .relaxed) }
    vmcb.advanceRIP(by: length, is64BitCode: is64BitCode)
    return .resume
  }

  /// The CR4 bits this vcpu's CPUID answers allow (`CPUIDPolicy`, leaves 1 and 7).
  static func guestValidBits(_ vcpu: VCPU) -> UInt64 {
    let leaf1 = CPUIDPolicy.answer(leaf: 1, subleaf: 0, vcpu: vcpu)
    let leaf7 = CPUIDPolicy.answer(leaf: 7, subleaf: 0, vcpu: vcpu)
    return CR4Write.validBits(.init(leaf1ECX: leaf1.ecx, leaf1EDX: leaf1.edx,
                                    leaf7EBX: leaf7.ebx, leaf7ECX: leaf7.ecx, leaf7EDX: leaf7.edx))
  }

  /// The instruction at CS:RIP, read through the guest's page tables (`VMCB.codeAddress`).
  static func decode(_ vcpu: VCPU, _ vmcb: VMCB, is64BitCode: Bool) -> CR4Write.MovToCR? {
    let memory = GuestMemory(vcpu)
    return CR4Write.decodeMovToCR(is64BitCode: is64BitCode) { index in
      memory.readLE(UInt8.self, at: vmcb.codeAddress(plus: UInt64(index), is64BitCode: is64BitCode))
    }
  }

  static func generalProtection(_ vmcb: VMCB) -> Exits.Next {
    vmcb.inject(vector: 13, type: .exception, errorCode: 0)
    return .resume
  }
}
#endif
