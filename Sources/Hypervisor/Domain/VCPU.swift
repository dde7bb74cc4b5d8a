import Synchronization
import XenABI
import XenPublic

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

    /// Running, or queued to run (`SchedulerPolicy.isOnPCPU` reads it under the policy's lock).
    public var isOnPCPU: Bool { self == .running || self == .runnable }
  }

  public let id: Int
  /// Unowned: the domain holds its vcpus and outlives them, and the exit path reads it without
  /// counting references. Each read is marked `unsafe` for that reason.
  public unowned(unsafe) let domain: Domain
  /// Its domain's id, kept as a number: what names a vcpu that may outlive its domain (a
  /// pcpu's `lastVCPU` keeps a destroyed domain's vcpu, whose `domain` is then gone).
  public let domainID: UInt16
  /// Guarded by the scheduler's lock. Every change is accounted in `runstate` (the times a
  /// guest reads through VCPUOP_register_runstate_memory_area).
  public var runState: RunState = .down {
    didSet { if runState != oldValue { runstate.enter(runState, at: SystemTime.now()) } }
  }
  /// Time spent in each Xen runstate, updated on every change of `runState`.
  public var runstate = RunstateAccounting()
  /// Guest-virtual address of the guest's copy of `runstate`, once registered.
  public var runstateArea: UInt64?
  /// The layout the runstate area was registered in (a 32-bit caller's: compat, 44 bytes).
  public var runstateAreaABI: GuestABI = .native
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
  /// The pcpu in guest mode with this vcpu right now, or -1. Claimed around every VMRUN: two
  /// pcpus running one vcpu at once would corrupt it, so a second claim is a hypervisor bug.
  public let inGuestOn = Atomic<Int>(-1)
  /// Set when its translations may be stale (a p2m change, a move between pcpus); the entry
  /// that reads it flushes the vcpu's TLB.
  public let needsTLBFlush = Atomic<Bool>(true)
  /// For the flush a p2m change waits for (`P2M.flushTranslations`): bit 0 is set while the
  /// vcpu may use its domain's p2m (on a pcpu, in the guest or handling one of its exits); the
  /// bits above count its entries into the guest and its departures from a pcpu. A waiter
  /// that saw bit 0 set waits until the value changes: by then the vcpu has re-entered the
  /// guest through the flush, or left.
  public let p2mSync = Atomic<UInt64>(0)

  /// Marks a p2m boundary (see `p2mSync`), before the entry reads `needsTLBFlush`.
  @inline(__always)
  public func p2mBoundary(busy: Bool) {
    let sequence = p2mSync.load(ordering: .relaxed) >> 1
    p2mSync.store((sequence &+ 1) << 1 | (busy ? 1 : 0), ordering: .sequentiallyConsistent)
  }
  /// Model-specific registers the arch layer keeps as plain storage (MTRRs on x86).
  public var archMSRs: [UInt64] = []

  /// Where the guest moved its vcpu_info (VCPUOP_register_vcpu_info): the guest frame, and the
  /// hypervisor's address of the structure (0: still in shared_info).
  public var vcpuInfoGFN: UInt64?
  public var vcpuInfoAddress: UInt64 = 0
  /// The frame of that vcpu_info, on which the hypervisor holds a reference (`P2M.hold(_:)`);
  /// set and cleared under the domain's `p2mLock`, with the reference.
  public var vcpuInfoFrame: UInt64 = 0
  /// Its debug address registers DR0-DR3 while it is off its pcpu (the arch layer saves them
  /// when it leaves and loads them when it arrives: they are the pcpu's, not the VMCB's).
  public var debugAddresses: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
  /// HVMOP_set_evtchn_upcall_vector: this vcpu's own upcall vector; 0 = none (the domain's
  /// HVM_PARAM_CALLBACK_IRQ applies). Read before every entry that has an upcall pending.
  public let upcallVector = Atomic<UInt8>(0)
  /// The arch must publish this vcpu's time again before it next runs (its vcpu_info moved).
  public var timeNeedsPublish = false
  /// Blocked in SCHEDOP_poll (its ports and timeout are cleared when it runs again).
  public var polling = false

  /// The vcpu's timers (VCPUOP_set_singleshot_timer, set_periodic_timer, set_timer_op and the
  /// SCHEDOP_poll timeout), in hypervisor system time; 0 = not set. Guarded by `timerLock`,
  /// with the arch's record of the one pcpu timer armed for the earliest of them.
  public let timerLock = SpinLock()
  public var singleshotDeadline: UInt64 = 0
  public var periodicPeriod: UInt64 = 0
  public var periodicNext: UInt64 = 0
  public var pollDeadline: UInt64 = 0
  /// The virtual local APIC's timer: its next expiry and its period (0: one-shot), set from
  /// the LAPIC registers (`LocalAPICRegisters.timerSchedule`); 0 = not running.
  public var lapicTimerNext: UInt64 = 0
  public var lapicTimerPeriod: UInt64 = 0
  /// How often the LAPIC timer expired (whether or not its LVT let the vector through).
  public var lapicTimerExpiries: UInt64 = 0
  public var armedTimerPCPU = -1
  public var armedTimerID: UInt64 = 0
  /// How often VIRQ_TIMER was raised for this vcpu.
  public var timerInterrupts: UInt64 = 0

  /// SCHEDOP_poll: the ports the blocked vcpu waits on (guarded by its domain's event lock;
  /// empty when not polling), and the flag that tells the run loop a wake came meanwhile.
  public internal(set) var pollPorts: [UInt32] = []
  public let pollWake = Atomic<Bool>(false)

  /// The virtual local APIC (xAPIC or x2APIC mode), and the lock other pcpus take to post an IPI.
  public var lapic: LocalAPICRegisters
  public let lapicLock = SpinLock()
  /// True while the request register (IRR) is not empty, written under `lapicLock` and read
  /// without it: the check before every entry skips the virtual LAPIC when it is false (nearly
  /// every exit). A poster sets it before kicking the vcpu, so the entry after the kick sees it.
  public let lapicHasRequests = Atomic<Bool>(false)

  /// GuestMemory's translations of the domain's p2m, kept across exits (`P2MCache`).
  public var p2mCache = P2MCache()
  /// GuestMemory's last walk of the guest's page tables (`GuestWalkCache`).
  public var walkCache = GuestWalkCache()
  /// Its last walk for a look at the guest's code (`GuestMemory.readCodeByte`: is the next
  /// instruction a HLT, before an interrupt is injected), kept apart so that it does not evict
  /// the walk of the page the next hypercall's arguments come from.
  public var codeWalkCache = GuestWalkCache()
  /// Bumped by another pcpu when a change to the domain's p2m makes both caches above stale
  /// without bumping the p2m generation for every domain (a grant unmap: `P2M.unmapGrant`). A
  /// cache entry is good under the sum of the generation and this count (`cacheVersion`):
  /// both only grow, so the sum moves whenever either does.
  public let cacheDiscards = Atomic<UInt64>(0)

  /// The version the caches' entries are filled and checked under.
  @inline(__always) public func cacheVersion() -> UInt64 {
    NestedPageTable.generation.load(ordering: .acquiring) &+ cacheDiscards.load(ordering: .acquiring)
  }

  /// Drops what the caches hold of guest frame `gfn`, which mapped machine page `frame`: the
  /// P2MCache entry of `gfn` and a walk that read an entry in, or ended on, `frame`. Only on
  /// the pcpu running this vcpu (the caches' owner).
  public func forgetTranslation(of gfn: UInt64, frame: UInt64) {
    p2mCache.forget(gfn)
    walkCache.forget(frame: frame)
    codeWalkCache.forget(frame: frame)
  }

  /// Accounting. Exits by kind, indexed by the architecture's exit classes (X86: `ExitClass`).
  public var exitsByClass = InlineArray<16, UInt64>(repeating: 0)
  public var hypercalls: UInt64 = 0

  public init(id: Int, domain: Domain) {
    self.id = id
    unsafe self.domain = domain
    domainID = domain.id
    lapic = LocalAPICRegisters(apicID: UInt32(truncatingIfNeeded: id))
  }

  public func stop() { stopRequested.store(true, ordering: .releasing) }
  public var mustStop: Bool { stopRequested.load(ordering: .acquiring) }
}

/// Xen's runstate accounting (struct vcpu_runstate_info): the current state, when it was
/// entered, and the total time spent in each of running, runnable, blocked and offline.
public struct RunstateAccounting: Sendable {
  public var state: XenABI.RunState = .offline
  public var entryTime: UInt64 = 0
  public var times: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

  public init() {}

  /// Xen's mapping: paused and down vcpus are "offline" (neither runnable nor blocked).
  public static func xenState(_ state: VCPU.RunState) -> XenABI.RunState {
    switch state {
    case .running: .running
    case .runnable: .runnable
    case .blocked: .blocked
    case .paused, .down: .offline
    }
  }

  public mutating func enter(_ state: VCPU.RunState, at now: UInt64) {
    let next = Self.xenState(state)
    guard next != self.state else { return }
    let spent = now >= entryTime ? now - entryTime : 0
    switch self.state {
    case .running: times.0 &+= spent
    case .runnable: times.1 &+= spent
    case .blocked: times.2 &+= spent
    case .offline: times.3 &+= spent
    }
    self.state = next
    entryTime = now
  }

  /// As the guest sees it: struct vcpu_runstate_info.
  public var info: vcpu_runstate_info {
    vcpu_runstate_info(state: state.rawValue, state_entry_time: entryTime, time: times)
  }
}
