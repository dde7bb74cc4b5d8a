#if os(none)
import GuestSupport

/// Xen hypercall numbers used by the test guests (xen/include/public/xen.h).
public enum Hypercall {
  public static let memoryOp = 12
  public static let setTimerOp = 15
  public static let xenVersion = 17
  public static let consoleIO = 18
  public static let vcpuOp = 24
  public static let schedOp = 29
  public static let eventChannelOp = 32
  public static let hvmOp = 34
}

/// Negative errno values as hypercalls return them (Xen uses Linux's numbering).
public enum Errno {
  public static let EPERM: Int64 = -1
  public static let ENOENT: Int64 = -2
  public static let ESRCH: Int64 = -3
  public static let EFAULT: Int64 = -14
  public static let EEXIST: Int64 = -17
  public static let EINVAL: Int64 = -22
  public static let ENOSPC: Int64 = -28
  public static let ENOSYS: Int64 = -38
  public static let ETIME: Int64 = -62
}

/// SCHEDOP_shutdown reasons (sched.h).
public enum ShutdownReason: UInt32 {
  case poweroff = 0
  case reboot = 1
  case suspend = 2
  case crash = 3
}

/// Xen's guest ABI as seen from a PVH guest: `vmmcall` with RAX = number, arguments in
/// RDI, RSI, RDX, R10, R8, result in RAX (a 32-bit guest: EAX, then EBX, ECX, EDX, ESI, EDI).
/// Arguments are 64-bit here for both; a 32-bit guest passes their low halves, which hold
/// everything it can name (its addresses, frame numbers and counts fit in 32 bits).
public enum Xen {
  /// DOMID_SELF: "the calling domain" wherever a hypercall takes a domain id.
  public static let domidSelf: UInt16 = 0x7FF0

  /// Whether boot-time detection found "XenVMMXenVMM" at CPUID 0x40000000 (or 0x40000100).
  public static var present: Bool { gs_xen_present_get() != 0 }

  /// Checks the hypervisor CPUID signature now (EBX/ECX/EDX of leaf 0x40000000 or 0x40000100).
  public static func detect() -> Bool {
    for base: UInt32 in [0x4000_0000, 0x4000_0100] {
      let r = gs_cpuid(base, 0)
      if r.ebx == 0x566e_6558 && r.ecx == 0x6558_4d4d && r.edx == 0x4d4d_566e { return true }
    }
    return false
  }

  /// This domain's id, from Xen's CPUID leaf 4 (ECX, when EAX bit 4 says it is there); nil
  /// without a hypervisor or without the bit.
  public static var domainID: UInt16? {
    guard present else { return nil }
    let leaf = gs_cpuid(0x4000_0004, 0)
    guard leaf.eax & (1 << 4) != 0 else { return nil }
    return UInt16(truncatingIfNeeded: leaf.ecx)
  }

  /// A raw hypercall. Without a hypervisor (plain QEMU) `vmmcall` would fault, so it returns
  /// -ENOSYS instead of executing it.
  @discardableResult
  public static func hypercall(
    _ number: Int, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0, _ a4: UInt64 = 0, _ a5: UInt64 = 0
  ) -> Int64 {
    guard present else { return Errno.ENOSYS }
    return Int64(hv_hypercall5(
      UInt(number), UInt(truncatingIfNeeded: a1), UInt(truncatingIfNeeded: a2), UInt(truncatingIfNeeded: a3),
      UInt(truncatingIfNeeded: a4), UInt(truncatingIfNeeded: a5)))
  }

  /// HYPERVISOR_console_io(CONSOLEIO_write, count, buffer). Xen returns 0 on success.
  @discardableResult
  public static func consoleWrite(_ bytes: UnsafeRawBufferPointer) -> Int64 {
    hypercall(Hypercall.consoleIO, 0, UInt64(bytes.count), address(bytes.baseAddress))
  }

  @discardableResult
  public static func consoleWrite(_ bytes: [UInt8]) -> Int64 {
    bytes.withUnsafeBytes { consoleWrite($0) }
  }

  /// xen_version(XENVER_version): major << 16 | minor.
  public static func version() -> (major: Int, minor: Int) {
    let v = hypercall(Hypercall.xenVersion, 0, 0)
    if v < 0 { return (0, 0) }
    return (Int(v >> 16), Int(v & 0xffff))
  }

  /// xen_version(cmd, arg).
  @discardableResult
  public static func xenVersion(_ cmd: UInt64, _ arg: UInt64 = 0) -> Int64 {
    hypercall(Hypercall.xenVersion, cmd, arg)
  }

  /// sched_op(SCHEDOP_shutdown, &{reason}); never returns (halts if the hypervisor does return).
  /// Without a hypervisor: isa-debug-exit (0x10 poweroff, 0x11 crash).
  public static func shutdown(_ reason: ShutdownReason) -> Never {
    gs_shutdown(reason.rawValue)
  }

  /// sched_op(SCHEDOP_yield). A no-op without a hypervisor.
  public static func yield() {
    if present { _ = hv_hypercall2(UInt(Hypercall.schedOp), 0, 0) }
  }

  /// sched_op(SCHEDOP_block): sleep until an event is pending. Without a hypervisor: `hlt`.
  public static func block() {
    if present { _ = hv_hypercall2(UInt(Hypercall.schedOp), 1, 0) } else { gs_hlt() }
  }

  /// sched_op(cmd, arg).
  @discardableResult
  public static func schedOp(_ cmd: UInt64, _ arg: UInt64 = 0) -> Int64 {
    hypercall(Hypercall.schedOp, cmd, arg)
  }

  /// vcpu_op(cmd, vcpuid, arg).
  @discardableResult
  public static func vcpuOp(_ cmd: UInt64, vcpu: UInt64, _ arg: UInt64 = 0) -> Int64 {
    hypercall(Hypercall.vcpuOp, cmd, vcpu, arg)
  }

  /// memory_op(cmd, arg).
  @discardableResult
  public static func memoryOp(_ cmd: UInt64, _ arg: UInt64 = 0) -> Int64 {
    hypercall(Hypercall.memoryOp, cmd, arg)
  }

  /// event_channel_op(cmd, arg).
  @discardableResult
  public static func eventChannelOp(_ cmd: UInt64, _ arg: UInt64) -> Int64 {
    hypercall(Hypercall.eventChannelOp, cmd, arg)
  }

  /// hvm_op(cmd, arg).
  @discardableResult
  public static func hvmOp(_ cmd: UInt64, _ arg: UInt64) -> Int64 {
    hypercall(Hypercall.hvmOp, cmd, arg)
  }

  /// The bytes of `value` as a hypercall argument: calls `body` with their address and returns
  /// what it returns, leaving in `value` whatever the hypervisor wrote back.
  public static func withArgument<T>(_ value: inout T, _ body: (UInt64) -> Int64) -> Int64 {
    withUnsafeMutableBytes(of: &value) { body(address($0.baseAddress)) }
  }

  /// Brings vcpu 1 up as a PVH kernel brings up a secondary cpu: VCPUOP_initialise with
  /// `secondVCPUContext()`, then VCPUOP_up. Nil when both succeed; otherwise the call that
  /// failed and what it returned.
  public static func startSecondVCPU() -> (call: StaticString, result: Int64)? {
    var context = secondVCPUContext()
    let initialised = withArgument(&context) { vcpuOp(UInt64(GS_VCPUOP_initialise), vcpu: 1, $0) }
    if initialised != 0 { return ("VCPUOP_initialise", initialised) }
    let up = vcpuOp(UInt64(GS_VCPUOP_up), vcpu: 1)
    return up != 0 ? ("VCPUOP_up", up) : nil
  }

  #if arch(x86_64)
  /// vcpu 1's start state for VCPUOP_initialise (VCPU_HVM_MODE_64B): GuestSupport's AP entry on
  /// the first secondary stack with RDI = 1 (the vcpu id its entry passes on), interrupts off
  /// (RFLAGS has only its reserved bit 1), and the boot vcpu's control registers and EFER, so it
  /// runs on the same page tables.
  public static func secondVCPUContext() -> gs_vcpu_hvm_context {
    var context = gs_vcpu_hvm_context()   // zeroed, all 128 bytes
    context.mode = 1
    context.cpu_regs.x86_64.rip = gs_ap_entry_address()
    context.cpu_regs.x86_64.rsp = gs_secondary_stack_top(0)
    context.cpu_regs.x86_64.rdi = 1
    context.cpu_regs.x86_64.rflags = 0x2
    context.cpu_regs.x86_64.cr0 = CPU.cr0
    context.cpu_regs.x86_64.cr3 = CPU.cr3
    context.cpu_regs.x86_64.cr4 = CPU.cr4
    context.cpu_regs.x86_64.efer = CPU.efer
    return context
  }
  #else
  /// vcpu 1's start state in a 32-bit guest (VCPU_HVM_MODE_32B): GuestSupport's 32-bit AP entry
  /// on the first secondary stack with EBX = 1, interrupts off, the boot vcpu's CR0/CR3/CR4 and
  /// EFER, and flat 4 GiB segments (attributes in Xen's packed format: type, S, DPL, P, then
  /// AVL, L, D/B, G; limits in 4 KiB units with G) and a busy 32-bit TSS, as Xen's
  /// arch_set_info_hvm_guest requires. The entry loads the guest's own GDT and selectors.
  public static func secondVCPUContext() -> gs_vcpu_hvm_context {
    var context = gs_vcpu_hvm_context()   // zeroed, all 128 bytes
    context.mode = UInt32(GS_VCPU_HVM_MODE_32B)
    context.cpu_regs.x86_32.eip = UInt32(truncatingIfNeeded: gs_ap_entry_address())
    context.cpu_regs.x86_32.esp = UInt32(truncatingIfNeeded: gs_secondary_stack_top(0))
    context.cpu_regs.x86_32.ebx = 1
    context.cpu_regs.x86_32.eflags = 0x2
    context.cpu_regs.x86_32.cr0 = UInt32(truncatingIfNeeded: CPU.cr0)
    context.cpu_regs.x86_32.cr3 = UInt32(truncatingIfNeeded: CPU.cr3)
    context.cpu_regs.x86_32.cr4 = UInt32(truncatingIfNeeded: CPU.cr4)
    context.cpu_regs.x86_32.efer = CPU.efer
    let code: UInt16 = 0xC9B, data: UInt16 = 0xC93, flat: UInt32 = 0xF_FFFF
    context.cpu_regs.x86_32.cs_ar = code
    context.cpu_regs.x86_32.cs_limit = flat
    context.cpu_regs.x86_32.ds_ar = data
    context.cpu_regs.x86_32.ds_limit = flat
    context.cpu_regs.x86_32.ss_ar = data
    context.cpu_regs.x86_32.ss_limit = flat
    context.cpu_regs.x86_32.es_ar = data
    context.cpu_regs.x86_32.es_limit = flat
    context.cpu_regs.x86_32.tr_ar = 0x8B          // present, busy 32-bit TSS (never used)
    context.cpu_regs.x86_32.tr_limit = 0x67
    return context
  }
  #endif

  /// A pointer as the integer a hypercall argument register carries (guest virtual = physical).
  public static func address(_ pointer: UnsafeRawPointer?) -> UInt64 {
    UInt64(UInt(bitPattern: pointer))
  }

  /// A pointer as a guest handle or xen_ulong_t field of a structure (native width).
  public static func handle(_ pointer: UnsafeRawPointer?) -> UInt {
    UInt(bitPattern: pointer)
  }
}
#endif
