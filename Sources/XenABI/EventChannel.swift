// HYPERVISOR_event_channel_op and virtual IRQs, from xen/include/public/event_channel.h and
// xen.h.
//
// event_channel_op(cmd, arg): allocate, bind, send on and close event channels, the "signals"
// of Xen. A port is a 32-bit number local to a domain.

extension XenABI {
  /// `EVTCHNOP_*`: the command in the first argument of event_channel_op.
  public enum EventChannelOp: UInt32, Sendable, CaseIterable {
    /// arg: `evtchn_bind_interdomain`.
    case bindInterdomain = 0
    /// arg: `evtchn_bind_virq`.
    case bindVIRQ = 1
    /// arg: `evtchn_bind_pirq` (physical IRQs; privileged).
    case bindPIRQ = 2
    /// arg: `evtchn_close`.
    case close = 3
    /// arg: `evtchn_send`.
    case send = 4
    /// arg: `evtchn_status`.
    case status = 5
    /// arg: `evtchn_alloc_unbound`.
    case allocUnbound = 6
    /// arg: `evtchn_bind_ipi`.
    case bindIPI = 7
    /// arg: `evtchn_bind_vcpu`.
    case bindVCPU = 8
    /// arg: `evtchn_unmask`.
    case unmask = 9
    /// arg: `evtchn_reset`.
    case reset = 10
    /// arg: `evtchn_init_control` (FIFO ABI).
    case initControl = 11
    /// arg: `evtchn_expand_array` (FIFO ABI).
    case expandArray = 12
    /// arg: `evtchn_set_priority` (FIFO ABI).
    case setPriority = 13
  }

  /// `EVTCHNSTAT_*`: the `status` field of `evtchn_status`.
  public enum EventChannelStatus: UInt32, Sendable, CaseIterable {
    case closed = 0
    case unbound = 1
    case interdomain = 2
    case pirq = 3
    case virq = 4
    case ipi = 5
  }

  /// `VIRQ_*`: virtual interrupts a domain binds with EVTCHNOP_bind_virq. "Per vcpu" ones are
  /// bound once on each vcpu; global ones once per domain.
  public enum VIRQ: UInt32, Sendable, CaseIterable {
    /// Per vcpu: the timer (singleshot/periodic timers fire here).
    case timer = 0
    /// Per vcpu: dump debug information.
    case debug = 1
    /// Global: input on the hypervisor's emergency console (control domain).
    case console = 2
    /// Global: a domain changed state (control domain).
    case domException = 3
    case traceBuffer = 4
    case debugger = 6
    case xenoprof = 7
    case consoleRing = 8
    case pcpuState = 9
    case memEvent = 10
    case argo = 11
    case enomem = 12
    case xenpmu = 13
    /// VIRQ_ARCH_0 (x86: machine check).
    case arch0 = 16
    case arch1 = 17
    case arch2 = 18
    case arch3 = 19
    case arch4 = 20
    case arch5 = 21
    case arch6 = 22
    case arch7 = 23

    /// NR_VIRQS.
    public static let count: UInt32 = 24
  }


  /// The FIFO ABI's constants (event_channel.h, "FIFO ABI"): a 32-bit event word per port in
  /// guest pages of the event array, a control block per vcpu with a READY bitmap and one
  /// queue head per priority.
  public enum FIFO {
    /// EVTCHN_FIFO_PRIORITY_MAX: the highest priority (lower numbers are served first).
    public static let priorityMax: UInt32 = 0
    /// EVTCHN_FIFO_PRIORITY_DEFAULT: a port's priority until EVTCHNOP_set_priority.
    public static let priorityDefault: UInt32 = 7
    /// EVTCHN_FIFO_PRIORITY_MIN: the lowest priority.
    public static let priorityMin: UInt32 = 15
    /// EVTCHN_FIFO_MAX_QUEUES: one queue per priority per vcpu.
    public static let queueCount = 16
    /// Event word bits: EVTCHN_FIFO_PENDING, _MASKED, _LINKED, _BUSY.
    public static let pendingBit: UInt32 = 31
    public static let maskedBit: UInt32 = 30
    public static let linkedBit: UInt32 = 29
    public static let busyBit: UInt32 = 28
    /// EVTCHN_FIFO_LINK_BITS: the LINK field (the next port of the queue) is the word's low bits.
    public static let linkBits: UInt32 = 17
    /// EVTCHN_FIFO_LINK_MASK.
    public static let linkMask: UInt32 = (1 << 17) - 1
    /// EVTCHN_FIFO_NR_CHANNELS: ports the FIFO ABI can name.
    public static let portCount = 1 << 17
    /// Event words in one 4 KiB page of the event array.
    public static let wordsPerPage = 1024
    /// The event array's most pages (EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES).
    public static let maximumArrayPages = portCount / wordsPerPage
    /// struct evtchn_fifo_control_block: `ready` at 0, `head[16]` at 8; 72 bytes.
    public enum ControlBlock {
      public static let size = 72
      public enum Offset {
        public static let ready = 0
        public static let head = 8
      }
    }
  }
}
