#if os(none)
import Hypervisor
import XenABI
import Support

/// #VMEXIT handling: why the guest stopped, and what to do about it. Each handler runs to
/// completion on the pcpu's stack and says what the vcpu does next; none of them waits.
enum Exits {
  enum Next {
    /// Re-enter the same vcpu.
    case resume
    /// Give the pcpu to someone else; the vcpu stays runnable.
    case yield
    /// The vcpu waits for an event.
    case block
    /// The vcpu goes offline until VCPUOP_up (VCPUOP_down).
    case down
    /// The vcpu stops for good (its domain shut down or crashed).
    case stop
  }

  static func handle(_ vcpu: VCPU, on pcpu: PerCPU) -> Next {
    let vmcb = VMCB(address: vcpu.vmcb)
    let code = vmcb.exitCode
    switch code {
    case ExitCode.intr, ExitCode.nmi, ExitCode.smi, ExitCode.initSignal:
      return .resume                                    // the host interrupt was taken already
    case ExitCode.virtualInterrupt:
      return .resume                                    // an interrupt window: Upcall injects now
    case ExitCode.cpuid:
      let registers = GuestRegisters(vcpu)
      let r = CPUIDPolicy.answer(leaf: UInt32(truncatingIfNeeded: registers[.rax]),
                                 subleaf: UInt32(truncatingIfNeeded: registers[.rcx]), vcpu: vcpu)
      registers[.rax] = UInt64(r.eax); registers[.rbx] = UInt64(r.ebx)
      registers[.rcx] = UInt64(r.ecx); registers[.rdx] = UInt64(r.edx)
      vmcb.advanceRIP(by: 2)
      return .resume
    case ExitCode.msr:
      return MSRs.handle(vcpu, vmcb)
    case ExitCode.ioio:
      return IOPorts.handle(vcpu, vmcb)
    case ExitCode.hlt:
      vmcb.advanceRIP(by: 1)
      // `cli; hlt` waits for nothing this hypervisor can send (no NMIs, no INIT yet): it is how
      // a guest parks a cpu for good (Linux's poweroff ends every cpu this way), so the vcpu goes
      // down, and the domain powers off when its last vcpu does.
      if vmcb.rflags & (1 << 9) == 0 {
        // VCPUOP_up brings the vcpu back, so a guest can make this line again and again.
        unsafe GuestMessages.info(vcpu.domain, "domain \(vcpu.domain.id) (\(vcpu.domain.nameString)) vcpu \(vcpu.id): halted with interrupts off")
        return .down
      }
      // An upcall already pending ends the halt at once (Xen's hvm_hlt does the same).
      if Upcall.pending(vcpu) { return .resume }
      return .block
    case ExitCode.vmmcall:
      return hypercall(vcpu, vmcb, on: pcpu)
    case ExitCode.cr4Write:
      return ControlRegisterExits.cr4Write(vcpu, vmcb)
    case ExitCode.shutdown:
      crash(vcpu, "triple fault")
      return .stop
    case ExitCode.invalid:
      crash(vcpu, "invalid guest state (VMRUN refused the VMCB)")
      return .stop
    case ExitCode.nestedPageFault:
      return MMIOEmulation.nestedPageFault(vcpu, vmcb)     // not RAM: the access is emulated
    case ExitCode.vmrun, ExitCode.vmload, ExitCode.vmsave, ExitCode.stgi, ExitCode.clgi, ExitCode.skinit,
         ExitCode.monitor, ExitCode.mwait, ExitCode.xsetbv, ExitCode.invlpga:
      vmcb.inject(vector: 6, type: .exception)         // #UD: not offered to guests
      return .resume
    case ExitCode.debugException:
      // Reflected as it came (Xen's svm_vmexit_handler); intercepted only so that a #DB whose
      // delivery raises #DB again exits each time instead of holding the pcpu (XSA-156).
      vmcb.inject(vector: 1, type: .exception)
      return .resume
    case ExitCode.icebp:
      // INT1: a trap, so the guest's handler sees the instruction after it.
      vmcb.advanceRIP(by: 1)
      vmcb.inject(vector: 1, type: .exception)
      return .resume
    case ExitCode.alignmentCheck:
      vmcb.inject(vector: 17, type: .exception, errorCode: UInt32(truncatingIfNeeded: vmcb.exitInfo1))
      return .resume
    case ExitCode.machineCheck:
      // An intercepted #MC is not delivered to the host: the exit is all there is (KVM calls
      // its handler from here). The hypervisor recovers from no machine check, in guest mode
      // or its own (`CrashReport.exception`): it stops, saying where it was.
      CrashReport.panic("machine check (#MC) in guest mode, domain", value: UInt64(vcpu.domainID))
    case ExitCode.wbinvd, ExitCode.invd:
      // Nothing to flush for a domain without devices: a no-op, as Xen without passthrough
      // (INVD too: it is never executed for real, which would drop the hypervisor's writes).
      vmcb.advanceRIP(by: 2)
      return .resume
    case ExitCode.rdpmc:
      // No performance counters are offered (CPUID shows none): #GP, and no host counter leaks.
      vmcb.inject(vector: 13, type: .exception, errorCode: 0)
      return .resume
    case ExitCode.taskSwitch:
      crash(vcpu, "hardware task switch (not supported)")
      return .stop
    default:
      crash(vcpu, "unexpected exit \(hex(code))")
      return .stop
    }
  }

  /// VMMCALL: the guest's system call into the hypervisor.
  static func hypercall(_ vcpu: VCPU, _ vmcb: VMCB, on pcpu: PerCPU) -> Next {
    let registers = GuestRegisters(vcpu)
    vcpu.hypercalls &+= 1                       // a statistic: wraps, never traps
    // The calling convention follows the guest's mode: 64-bit code uses RDI RSI RDX R10 R8,
    // 32-bit code EBX ECX EDX ESI EDI.
    let longMode = vmcb.is64BitCode
    let frame: HypercallFrame
    if longMode {
      frame = HypercallFrame(number: registers[.rax], registers[.rdi], registers[.rsi], registers[.rdx], registers[.r10], registers[.r8])
    } else {
      func low(_ name: GuestRegisters.Name) -> UInt64 { registers[name] & 0xFFFF_FFFF }
      frame = HypercallFrame(number: low(.rax), low(.rbx), low(.rcx), low(.rdx), low(.rsi), low(.rdi))
    }
    func finish(_ value: Int64) {
      registers[.rax] = longMode ? UInt64(bitPattern: value) : UInt64(UInt32(truncatingIfNeeded: value))
      vmcb.advanceRIP(by: 3, is64BitCode: longMode)
    }
    // Only the guest kernel may make hypercalls.
    guard vmcb.cpl == 0 else {
      finish(-XenABI.Errno.EPERM.rawValue)
      return .resume
    }
    let outcome = Hypercalls.dispatch(frame, X86HypercallEnvironment(vcpu, on: pcpu, abi: GuestABI(is64BitCode: longMode)))
    unowned(unsafe) let domain = unsafe vcpu.domain      // the vcpu keeps it: no reference counting
    if unsafe domain.sharedInfoGFN != domain.timePublishedAtGFN {
      // shared_info just appeared or moved: the guest's time is valid from this moment on.
      unsafe GuestTime.publishAll(domain)
      unsafe domain.timePublishedAtGFN = domain.sharedInfoGFN
    }
    switch outcome {
    case .result(let value):
      finish(value)
      return .resume
    case .yield(let value):
      finish(value)
      return .yield
    case .block(let value):
      finish(value)
      return .block
    case .down(let value):
      finish(value)
      return .down
    case .continuation(let next):
      // RIP stays on the VMMCALL: the guest issues it again, with the progress in its arguments.
      let (a0, a1, a2, a3, a4) = next.arguments
      if longMode {
        registers[.rdi] = a0; registers[.rsi] = a1; registers[.rdx] = a2; registers[.r10] = a3; registers[.r8] = a4
      } else {
        registers[.rbx] = a0; registers[.rcx] = a1; registers[.rdx] = a2; registers[.rsi] = a3; registers[.rdi] = a4
      }
      return .yield
    case .shutdown:
      // Which vcpu asked, and from where: a guest that shuts itself down by mistake (a reason
      // read from the wrong memory) is found from this line.
      unsafe Log.info("domain \(domain.id) (\(domain.nameString)): shutdown: \(domain.shutdownReason?.name ?? "?") (SCHEDOP_shutdown from vcpu \(vcpu.id) at RIP \(hex(vmcb.rip, digits: 16)))")
      return .stop
    }
  }

  /// Ends the vcpu's domain because of something the guest did, with a register dump. Nothing
  /// else is affected.
  static func crash(_ vcpu: VCPU, _ why: String) {
    let vmcb = VMCB(address: vcpu.vmcb)
    let registers = GuestRegisters(vcpu)
    let domain = unsafe vcpu.domain
    // The report is one message to the domain's limiter: all of its lines, or none.
    guard GuestMessages.admit(domain) else {
      domain.shutDown(.crash)
      return
    }
    Log.error("domain \(domain.id) (\(domain.nameString)) vcpu \(vcpu.id) crashed: \(why)")
    Log.error("  RIP=\(hex(vmcb.rip, digits: 16)) RSP=\(hex(vmcb.rsp, digits: 16)) RFLAGS=\(hex(vmcb.rflags, digits: 8)) CPL=\(vmcb.cpl)")
    Log.error("  CR0=\(hex(vmcb.cr0, digits: 8)) CR3=\(hex(vmcb.cr3, digits: 16)) CR4=\(hex(vmcb.cr4, digits: 8)) EFER=\(hex(vmcb.efer, digits: 8))")
    Log.error("  RAX=\(hex(registers[.rax], digits: 16)) RBX=\(hex(registers[.rbx], digits: 16)) RCX=\(hex(registers[.rcx], digits: 16)) RDX=\(hex(registers[.rdx], digits: 16))")
    Log.error("  RSI=\(hex(registers[.rsi], digits: 16)) RDI=\(hex(registers[.rdi], digits: 16)) RBP=\(hex(registers[.rbp], digits: 16))")
    // What the CPU was delivering when it stopped, the posted virtual interrupt, and where
    // the guest's descriptor tables are: what a triple fault is usually about.
    let idt = vmcb.segment(.idtr), gdt = vmcb.segment(.gdtr)
    Log.error("  EXITINTINFO=\(hex(vmcb.read64(VMCB.Control.exitInterruptInfo), digits: 16)) VINTR=\(hex(vmcb.read64(VMCB.Control.virtualInterrupt), digits: 16)) SHADOW=\(hex(vmcb.read64(VMCB.Control.interruptShadow)))")
    Log.error("  IDTR=\(hex(idt.base, digits: 16))/\(hex(UInt64(idt.limit))) GDTR=\(hex(gdt.base, digits: 16))/\(hex(UInt64(gdt.limit))) CR2=\(hex(vmcb.read64(VMCB.Save.cr2), digits: 16))")
    // The gate of the vector being delivered, as the guest's memory holds it now. IDTR.base is
    // the guest's: the gate's address wraps at 2^64 as the CPU's would.
    let info = vmcb.read64(VMCB.Control.exitInterruptInfo)
    if info & (1 << 31) != 0, let gate = GuestMemory(vcpu).read(idt.base &+ (info & 0xFF) * 16, count: 16),
       let low = gate.littleEndian(UInt64.self, at: 0), let high = gate.littleEndian(UInt64.self, at: 8) {
      Log.error("  gate \(hex(info & 0xFF)): \(hex(high, digits: 16)) \(hex(low, digits: 16))")
    }
    domain.shutDown(.crash)
  }
}
#endif
