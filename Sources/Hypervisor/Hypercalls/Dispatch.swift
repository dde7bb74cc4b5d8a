import XenABI

/// The hypercall table: Xen's numbering, one handler per hypercall. Anything not named here,
/// and any subop a handler does not know, answers -ENOSYS: guests probe optional interfaces
/// that way, and an honest "not implemented" is what lets them fall back.
public enum Hypercalls {
  /// Hypercalls with a handler (SUPPORT.md lists the subops).
  public static let implemented: [XenABI.Hypercall] = [.setTimerOp, .memoryOp, .xenVersion, .consoleIO, .grantTableOp, .vcpuOp, .schedOp, .eventChannelOp, .hvmOp]

  public static func dispatch<Environment: HypercallEnvironment>(_ frame: HypercallFrame, _ environment: Environment) -> HypercallOutcome {
    let (a0, a1, a2, _, _) = frame.arguments
    // Every handler throws its error (XenABI.Errno), and it becomes the guest's -errno here: one
    // error type on every path, and no handler can forget to answer.
    do throws(XenABI.Errno) {
      // A switch on the raw number compiles to a jump table; this is every hypercall's path.
      switch frame.number {
      case XenABI.Hypercall.xenVersion.rawValue: return try XenVersion.handle(command: a0, argument: a1, environment)
      case XenABI.Hypercall.consoleIO.rawValue: return try ConsoleIO.handle(frame, environment)
      case XenABI.Hypercall.schedOp.rawValue: return try SchedOp.handle(command: a0, argument: a1, environment)
      case XenABI.Hypercall.memoryOp.rawValue: return try MemoryOp.handle(frame, environment)
      case XenABI.Hypercall.hvmOp.rawValue: return try HVMOp.handle(command: a0, argument: a1, environment)
      case XenABI.Hypercall.setTimerOp.rawValue: return SetTimerOp.handle(deadline: a0, environment)
      case XenABI.Hypercall.grantTableOp.rawValue: return try GrantTableOp.handle(command: a0, argument: a1, count: a2, environment)
      case XenABI.Hypercall.vcpuOp.rawValue: return try VCPUOp.handle(command: a0, target: a1, argument: a2, environment)
      // -ENOSYS until the arch layer installs Events.platform (shared_info access, vcpu kicks).
      case XenABI.Hypercall.eventChannelOp.rawValue: return try EventChannelOp.handle(command: a0, argument: a1, environment)
      default: return .error(.ENOSYS)
      }
    } catch {
      return .error(error)
    }
  }

  /// The address of element `index` of a guest array of `size`-byte elements at `base`, or
  /// -EFAULT when it (or its last byte) would lie past 2^64: a guest may put an array anywhere,
  /// including across the top of its address space, and a Swift overflow trap here would end
  /// the whole machine (docs/hypercalls.md, "Guest input never traps the hypervisor").
  public static func elementAddress(_ base: UInt64, index: UInt64, size: Int) throws(XenABI.Errno) -> UInt64 {
    let (offset, overflow) = index.multipliedReportingOverflow(by: UInt64(size))
    let (address, carry) = base.addingReportingOverflow(offset)
    guard !overflow, !carry else { throw .EFAULT }
    return address
  }

  /// `domid` as a guest may name itself: DOMID_SELF or its own id.
  static func isSelf(_ domid: UInt16, _ domain: Domain) -> Bool {
    domid == XenABI.DomainID.selfDomain || domid == domain.id
  }
}
