// HYPERVISOR_sched_op, from xen/include/public/sched.h.
//
// sched_op(cmd, arg): yield, block until an event arrives, shut the domain down, or poll a set
// of event channels. Only the low 32 bits of `cmd` count (Xen takes an int).

extension XenABI {
  /// `SCHEDOP_*`: the command in the first argument of sched_op.
  public enum SchedOp: UInt32, Sendable, CaseIterable {
    /// arg unused.
    case yield = 0
    /// arg unused. Re-enables event delivery and blocks until an event is pending.
    case block = 1
    /// arg: `sched_shutdown` with a `ShutdownReason`.
    case shutdown = 2
    /// arg: `sched_poll`.
    case poll = 3
    /// arg: `sched_remote_shutdown` (privileged).
    case remoteShutdown = 4
    /// arg: `sched_shutdown`; records the reason without shutting down (used before suspend).
    case shutdownCode = 5
    /// arg: `sched_watchdog`.
    case watchdog = 6
    /// arg: `sched_pin_override` (hardware domain only).
    case pinOverride = 7
  }

  /// `SHUTDOWN_*`: why a domain shut down. The toolstack picks the action (on_poweroff, ...).
  public enum ShutdownReason: UInt32, Sendable, CaseIterable {
    case poweroff = 0
    case reboot = 1
    case suspend = 2
    case crash = 3
    case watchdog = 4
    case softReset = 5
  }

}
