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

  /// Argument layouts of sched_op (x86_64).
  public enum SchedLayout {
    /// `struct sched_shutdown`.
    public enum Shutdown {
      public static let size = 4
      public enum Offset {
        public static let reason = 0  // u32, ShutdownReason
      }
    }

    /// `struct sched_poll`.
    public enum Poll {
      public static let size = 24
      public enum Offset {
        public static let ports = 0    // guest handle: evtchn_port_t[]
        public static let portCount = 8  // u32 nr_ports
        public static let timeout = 16   // u64, absolute system time in ns, 0 = none
      }
    }

    /// `struct sched_remote_shutdown`.
    public enum RemoteShutdown {
      public static let size = 8
      public enum Offset {
        public static let domainID = 0  // domid_t
        public static let reason = 4    // u32
      }
    }

    /// `struct sched_watchdog`.
    public enum Watchdog {
      public static let size = 8
      public enum Offset {
        public static let id = 0       // u32
        public static let timeout = 4  // u32, seconds
      }
    }

    /// `struct sched_pin_override`.
    public enum PinOverride {
      public static let size = 4
      public enum Offset {
        public static let pcpu = 0  // i32, negative = undo
      }
    }
  }
}
