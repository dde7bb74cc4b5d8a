import Synchronization

/// A virtual CPU: one thread of a domain. The scheduler runs vcpus, not domains.
///
/// A vcpu has no hypervisor stack. Its whole state is data: the VMCB and the context page
/// (general registers, FPU) the architecture layer allocates, plus the fields below. That is what
/// lets a blocked vcpu, or one in the middle of a long hypercall, wait without holding anything.
public final class VCPU: @unchecked Sendable {
  public enum RunState: UInt8, Sendable {
    /// On a pcpu right now.
    case running
    /// Ready, waiting for a pcpu.
    case runnable
    /// Waiting for an event (HLT, SCHEDOP_block).
    case blocked
    /// Stopped by the hypervisor or the toolstack; not scheduled until unpaused.
    case paused
    /// Not started (secondary vcpus before VCPUOP_up), or stopped for good.
    case down
  }

  public let id: Int
  public unowned(unsafe) let domain: Domain
  /// Guarded by the scheduler's lock.
  public var runState: RunState = .down
  /// What the vcpu was when it was paused (runnable or blocked), to return to it on unpause.
  public var pausedFrom: RunState = .runnable
  /// Has a start state (vcpu 0 from the domain builder, others from VCPUOP_initialise).
  public var initialised = false
  /// Set when the vcpu must stop at its next exit (domain shutdown or pause).
  public let stopRequested = Atomic<Bool>(false)

  /// Architecture state: machine addresses of the VMCB and the context page (X86/SVM).
  public var vmcb: UInt64 = 0
  public var context: UInt64 = 0
  /// The address-space identifier its TLB entries are tagged with, and where it last ran
  /// (a vcpu that moves to another pcpu must flush its ASID there).
  public var asid: UInt32 = 0
  public var lastPCPU: Int = -1
  public var needsTLBFlush = true
  /// Model-specific registers the arch layer keeps as plain storage (MTRRs on x86).
  public var archMSRs: [UInt64] = []

  /// Accounting.
  public var exits: UInt64 = 0
  public var hypercalls: UInt64 = 0

  public init(id: Int, domain: Domain) {
    self.id = id
    self.domain = domain
  }

  public func stop() { stopRequested.store(true, ordering: .releasing) }
  public var mustStop: Bool { stopRequested.load(ordering: .acquiring) }
}
