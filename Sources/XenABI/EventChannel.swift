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

}
