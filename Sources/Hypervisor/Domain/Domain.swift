import XenABI

/// A domain: one guest virtual machine, the hypervisor's equivalent of a process.
///
/// It owns memory (its guest-physical → machine map), vcpus (its threads), and its console.
/// The architecture layer builds it (X86/Domain/DomainBuilder.swift) and runs its vcpus; the
/// arch-neutral parts (lifecycle, console, hypercall bookkeeping) live here.
// @safe: its one unsafe stored property (`eventsReference`) is lent out only by
// `DomainEvents.withCaller`, under the rule given there.
@safe public final class Domain: @unchecked Sendable {
  public enum State: Equatable, Sendable {
    case building, running, paused
    /// Shut down (by itself or by the hypervisor); its vcpus no longer run; waiting to be destroyed.
    case shutdown
    /// Destroyed: every frame returned. Kept only so the last word about it can be printed.
    case dead
  }

  /// Why a domain stopped, with Xen's SHUTDOWN_* numbering.
  public enum ShutdownReason: UInt32, Sendable {
    case poweroff = 0, reboot = 1, suspend = 2, crash = 3, watchdog = 4, softReset = 5
    /// A deliberate end: the guest powered off or asked to be rebooted. Anything else (a crash,
    /// its watchdog, a suspend nobody saves) counts as a failure in the final summary.
    public var isClean: Bool { self == .poweroff || self == .reboot }

    public var name: StaticString {
      switch self {
      case .poweroff: "poweroff"
      case .reboot: "reboot"
      case .suspend: "suspend"
      case .crash: "crash"
      case .watchdog: "watchdog"
      case .softReset: "soft_reset"
      }
    }
  }

  public let id: UInt16
  public let name: [UInt8]
  public var state: State = .building
  public private(set) var shutdownReason: ShutdownReason?
  /// SCHEDOP_shutdown_code: the code a guest asked to be reported with its next shutdown.
  public var shutdownCode: UInt32?
  public var vcpus: [VCPU] = []
  public let memoryBytes: UInt64
  /// Machine address of the root of the p2m (the nested page table), set by the builder.
  public var p2mRoot: UInt64 = 0
  /// Frames taken from the allocator for this domain (RAM, special pages, p2m tables, vcpu
  /// pages) and not yet freed. Changed under `p2mLock` (the vcpu pages: before it runs, and
  /// when it is destroyed).
  public var framesInUse: Int = 0
  /// Guest RAM pages mapped now (RAM leaves of its p2m, under `p2mLock`), and the most it may
  /// have (its `memory=`).
  public var ramPages: Int = 0
  /// Held across every change to the p2m (`changeP2M`). Lock order: a domain's `lock`, then its
  /// `p2mLock`, then `Frames`' lock.
  public let p2mLock = SpinLock()
  /// Numbers each change, so it frees only what it retired (`P2M.finish`).
  var p2mTicket: UInt32 = 0
  /// Frames and table pages taken out of the p2m and not yet dropped: each waits for the
  /// flush of the change that retired it. The isolation check counts them as references.
  var p2mRetired: [(ticket: UInt32, frame: UInt64)] = []
  /// Table pages of its p2m, and the most it may have: Xen's paging pool size, 1 MiB per vcpu
  /// plus 4 KiB per MiB of RAM (set by the builder).
  public var p2mTablePages = 0
  public var p2mPoolLimit = 0
  public var maximumPages: Int = 0
  /// System time (ns) when its vcpu 0 was first made runnable; 0 before.
  public var startedAt: UInt64 = 0
  /// How often a long hypercall of this domain stopped at a preemption point.
  public var continuations: Int = 0
  /// Guest frame number where the guest placed shared_info (XENMEM_add_to_physmap), if any,
  /// and the machine frame behind it.
  public var sharedInfoGFN: UInt64?
  public var sharedInfoMachine: UInt64 = 0
  /// Whether shared_info and vcpu_info have the compat (32-bit) layout (Xen's
  /// has_32bit_shinfo): latched from the caller's mode when the guest sets
  /// HVM_PARAM_CALLBACK_IRQ or writes the hypercall page MSR (`Events.latchSharedInfoLayout`),
  /// as Xen's hvm_latch_shinfo_size. 32-bit event words, 1024 2-level ports, the wallclock at
  /// the compat offsets. Read on every send: one predictable branch.
  public internal(set) var has32BitSharedInfo = false
  /// Its grant table, version 1 (GNTTABOP_*): the frames, each held by the hypervisor
  /// (`P2M.hold(frame:)`, recorded here with the reference, under `p2mLock`), where the guest
  /// placed each (XENMEM_add_to_physmap, XENMAPSPACE_grant_table), and how many frames it may
  /// have (xl.cfg `max_grant_frames`, Xen's default 64).
  public var grantFrames: [UInt64] = []
  /// The guest RAM frames the FIFO event ABI uses (each vcpu's control block page, the event
  /// array's pages), one hypervisor reference each (a frame used twice is listed twice): taken
  /// by EVTCHNOP_init_control / expand_array, dropped at EVTCHNOP_reset and by
  /// `P2M.destroyWithHolds`. Changed under the p2m lock (docs/events.md, "FIFO").
  public var eventFrames: [UInt64] = []
  public var grantFrameGFNs: [UInt64?] = []
  public var maxGrantFrames = XenABI.GrantLayout.defaultMaxGrantFrames
  /// The highest event channel port it may allocate (xl.cfg `max_event_channels`, libxl's
  /// default 1023; Xen's d->max_evtchn_port): `DomainEvents.maximumPort` starts from it.
  public var maxEventChannels = Events.defaultMaximumPort
  /// The hypervisor's side of its grant table and of the grants it maps (`GrantTables`), under
  /// `GrantTables.lock`: the active entries (pins) of its own refs, one hypervisor frame per
  /// 512 refs; its maptrack (the grants it maps, one 16-byte entry each, 256 per hypervisor
  /// frame, at most `maxMaptrackFrames` frames: xl.cfg `max_maptrack_frames`, Xen's default
  /// 1024); the first free maptrack entry; how many of its refs' pins are held (maps and copies
  /// in progress); and whether it has ended (no new pins, its table gone).
  public var grantActiveFrames: [UInt64] = []
  public var maptrackFrames: [UInt64] = []
  public var maptrackFreeHead: UInt32 = GrantTables.noEntry
  public var maxMaptrackFrames = XenABI.GrantLayout.defaultMaxMaptrackFrames
  public var grantPins = 0
  public var grantsClosed = false
  /// Listed in `GrantTables`' pinned granters; destroyed while others still map its frames
  /// (its id held until the last of them goes). Under `GrantTables.lock`.
  public var grantPinned = false
  public var grantsOutlive = false
  /// Where shared_info was when the arch layer last published time into it (nil again when
  /// its layout changes, so time is published at the new offsets).
  public var timePublishedAtGFN: UInt64?
  /// Its event channels (Xen's `d->evtchn`), made on first use by `DomainEvents.of` and
  /// dropped when the domain is destroyed: every event operation starts here. Read and written
  /// only under `DomainEvents.referenceLock` (through `DomainEvents.of`).
  public internal(set) var events: DomainEvents? {
    didSet { unsafe eventsReference = events.map { unsafe Unmanaged.passUnretained($0) } }   // unsafe: kept by `events`, see below
  }
  /// `events`, unretained, for a vcpu of this domain in a hypercall (`DomainEvents.withCaller`):
  /// the state is dropped only when the domain is destroyed, once none of its vcpus is on a
  /// pcpu. Reading `events` is a retain and a release.
  public private(set) var eventsReference: Unmanaged<DomainEvents>?
  /// Its event state was dropped (the domain is being destroyed): `DomainEvents.of` makes no
  /// new one to keep. Under `DomainEvents.referenceLock`.
  public internal(set) var eventsForgotten = false
  /// HVM parameters the guest may read (HVMOP_get_param), indexed by HVM_PARAM_*.
  public var hvmParams = InlineArray<64, UInt64>(repeating: 0)
  /// The guest-physical address of its hypercall page, once the guest asked for one.
  public var hypercallPage: UInt64?
  /// How many of its vcpus wait in SCHEDOP_poll (non-empty `VCPU.pollPorts`), guarded by its
  /// event lock: every send asks, and nearly always the answer is none.
  public internal(set) var pollingVCPUs = 0
  public var console = DomainConsole()
  /// The console ring page (machine address; 0 = none) and the port of its event channel.
  public var consoleRingMachine: UInt64 = 0
  /// The console ring frame the hypervisor holds a reference on (`P2M.newRingPage`); set and
  /// cleared under `p2mLock`, with the reference.
  public var consoleRingFrame: UInt64 = 0
  public var consolePort: UInt32 = 0
  /// The xenstore ring page (machine address; 0 = none), the frame the hypervisor holds a
  /// reference on for it (set and cleared under `p2mLock`), and the port of its event channel
  /// (HVM_PARAM_STORE_PFN / STORE_EVTCHN; docs/xenstore.md).
  public var xenstoreRingMachine: UInt64 = 0
  public var xenstoreRingFrame: UInt64 = 0
  public var xenstorePort: UInt32 = 0
  /// Its uuid, text form: /vm/<uuid> in the store.
  public var uuid: [UInt8] = []
  /// The uuid's 16 bytes (Xen's xen_domain_handle_t, XENVER_guest_handle); zeros before it has one.
  public var handle: [UInt8] {
    var bytes: [UInt8] = []
    var high: UInt8? = nil
    for character in uuid {
      let nibble: UInt8
      switch character {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
      default: continue
      }
      if let first = high {
        bytes.append(first << 4 | nibble)
        high = nil
      } else {
        high = nibble
      }
    }
    return bytes.count == 16 ? bytes : [UInt8](repeating: 0, count: 16)
  }
  /// What it may print (`ConsoleLimits`), taken under `lock`: console_io and port 0xE9 output
  /// beyond it is dropped and counted, console ring output beyond it stays in the ring.
  public var consoleBudget = ConsoleLimits.consoleBudget(now: 0)
  /// Bytes dropped since the last `[domain N: … dropped]` line, and when that line was printed.
  public var consoleBytesDropped: UInt64 = 0
  public var consoleDropsReportedAt: UInt64 = 0
  /// Its console ring holds output the budget did not let out yet: the tick drains it as the
  /// budget grows. Written under `consoleDrainLock`; the tick reads it without, as a hint (the
  /// drain looks again under the lock).
  public var consoleRingHeldBack = false
  /// One drain of its console ring at a time (the guest's notification and the tick may race).
  public let consoleDrainLock = SpinLock()
  /// The hypervisor's messages this domain causes (`GuestMessages`), taken under `lock`.
  public var messageLimiter = ConsoleLimits.messageLimiter(now: 0)
  /// Set (under `lock`) by the one pcpu that carries out the end of the domain (destroy,
  /// preserve or restart).
  public var destroyClaimed = false
  /// The bundle entry it was built from and where the bundle is: what `on_reboot = "restart"`
  /// builds again. Nil for a domain not built from the boot bundle.
  public var origin: (entry: BootBundle.BundledDomain, bundleBase: UInt64)?
  /// Shut down and kept (`on_* = "preserve"`): its memory stays until the hypervisor ends. Its
  /// end is counted when it is preserved, not when it is finally destroyed.
  public var preserved = false
  /// Its restarts, and those of the domains it was restarted from (`RestartThrottle`).
  public var restartHistory = RestartThrottle()
  public let lock = SpinLock()

  public init(id: UInt16, name: [UInt8], memoryBytes: UInt64) {
    self.id = id
    self.name = name
    self.memoryBytes = memoryBytes
  }

  public var nameString: String { String(decoding: name, as: UTF8.self) }

  /// Records the first shutdown reason and stops every vcpu. Later calls keep the first reason
  /// (a crash while shutting down does not hide the poweroff that started it).
  public func shutDown(_ reason: ShutdownReason) {
    lock.lock()
    let first = shutdownReason == nil
    if first {
      shutdownReason = reason
      state = .shutdown
    }
    lock.unlock()
    for vcpu in vcpus { vcpu.stop() }
  }

  public var isAlive: Bool { state == .running || state == .paused || state == .building }

  /// Stops every vcpu of a running domain until `unpause`; its memory and state stay as they
  /// are. A vcpu in guest mode leaves it at its next exit (its pcpu is kicked).
  @discardableResult
  public func pause() -> Bool {
    lock.lock()
    guard state == .running else { lock.unlock(); return false }
    state = .paused
    lock.unlock()
    for vcpu in vcpus {
      let wasRunning = vcpu.runState == .running
      if !wasRunning { unsafe Scheduler.policy?.pause(vcpu) }
      if wasRunning, vcpu.lastPCPU >= 0 { unsafe Scheduler.kickPCPU?(vcpu.lastPCPU) }
    }
    return true
  }

  @discardableResult
  public func unpause() -> Bool {
    lock.lock()
    guard state == .paused else { lock.unlock(); return false }
    state = .running
    lock.unlock()
    for vcpu in vcpus { unsafe Scheduler.policy?.unpause(vcpu) }
    return true
  }
}

/// Where a guest's output bytes come from. A guest may write the same text through both (test
/// frameworks for Xen print every line through `console_io` and through the ring).
public enum ConsoleChannel: Int, Sendable {
  /// HYPERVISOR_console_io and port 0xE9: the debug channels.
  case debug = 0
  /// The console ring (hvc0).
  case ring = 1
}

/// What a domain's console shows for a batch of bytes, in order.
public enum ConsoleShow: Equatable, Sendable {
  /// A whole line, shown at once.
  case line([UInt8])
  /// More of an unfinished line of the domain with the console input (shown as it is typed).
  case partial([UInt8])
  /// The rest of a line whose start was shown as `partial`; the line ends here.
  case rest([UInt8])
}

/// A domain's console: bytes from each channel are collected into lines, and each whole line is
/// printed as `(dN) text`, so output from different domains (or channels) never mixes mid-line.
/// The ring of the domain with the console input is the exception: a person types there and
/// must see the prompt and the echo before the line ends, so its unfinished line is shown as it
/// comes (`showPartial`), and `Log` starts a new line when something else is printed meanwhile.
///
/// **A line shows once.** A line completed on one channel that equals a recent line of the other
/// channel not yet matched is the same line written twice, and is dropped; a line repeated on the
/// same channel is shown each time. "Recent" is among the last `recentLines` lines this console
/// showed, so an old line is never taken for the copy of a new one.
public struct DomainConsole: Sendable {
  public static let maximumLine = 256
  /// How many of the lines shown last may still meet their copy on the other channel.
  public static let recentLines = 8
  private var pending: [[UInt8]] = [[], []]
  /// Per channel: how many bytes of `pending` were already shown as `partial`.
  private var shownOfPending = [0, 0]
  /// Per channel: shown lines still waiting for their copy, with their number in `shown`.
  private var recent: [[(number: Int, line: [UInt8])]] = [[], []]
  /// Lines shown so far.
  private var shown = 0
  /// Lines dropped as copies of the other channel's.
  public private(set) var duplicatesDropped = 0

  public init() {}

  /// Appends bytes from `channel`; returns the whole lines to print (without the newline).
  public mutating func append(_ bytes: some Sequence<UInt8>, from channel: ConsoleChannel = .debug) -> [[UInt8]] {
    show(bytes, from: channel, showPartial: false).compactMap {
      if case .line(let line) = $0 { return line }
      return nil
    }
  }

  /// Appends bytes from `channel`; returns what to show. With `showPartial`, an unfinished line
  /// is shown as far as it goes.
  public mutating func show(_ bytes: some Sequence<UInt8>, from channel: ConsoleChannel, showPartial: Bool) -> [ConsoleShow] {
    var out: [ConsoleShow] = []
    let c = channel.rawValue
    for byte in bytes {
      if byte == UInt8(ascii: "\n") {
        complete(c, into: &out)
      } else if byte != UInt8(ascii: "\r") {
        pending[c].append(byte)
        if pending[c].count >= Self.maximumLine { complete(c, into: &out) }
      }
    }
    if showPartial && shownOfPending[c] < pending[c].count {
      out.append(.partial(Array(pending[c][shownOfPending[c]...])))
      shownOfPending[c] = pending[c].count
    }
    return out
  }

  private mutating func complete(_ c: Int, into out: inout [ConsoleShow]) {
    let line = pending[c]
    let alreadyShown = shownOfPending[c]
    pending[c].removeAll(keepingCapacity: true)
    shownOfPending[c] = 0
    let other = 1 - c
    recent[other].removeAll { shown &- $0.number > Self.recentLines }
    if alreadyShown == 0, let match = recent[other].firstIndex(where: { $0.line == line }) {
      // Earlier unmatched lines of the other channel can no longer pair up in order.
      recent[other].removeSubrange(0...match)
      duplicatesDropped &+= 1
      return
    }
    out.append(alreadyShown > 0 ? .rest(Array(line[alreadyShown...])) : .line(line))
    shown &+= 1
    recent[c].append((shown, line))
    if recent[c].count > Self.recentLines { recent[c].removeFirst() }
  }

  /// Whatever is left without a newline on either channel and not shown yet (printed when the
  /// domain ends).
  public mutating func flush() -> [UInt8]? {
    var rest: [UInt8] = []
    for c in 0..<2 where shownOfPending[c] < pending[c].count {
      if !rest.isEmpty { rest.append(UInt8(ascii: " ")) }
      rest += pending[c][shownOfPending[c]...]
    }
    pending = [[], []]
    shownOfPending = [0, 0]
    return rest.isEmpty ? nil : rest
  }
}

/// Where every byte a guest prints ends up (console_io, port 0xE9, the console ring): collected
/// into lines per domain and channel, each whole line printed once as `(dN) text`.
///
/// The domain's console budget (`Domain.consoleBudget`) is charged here for the debug channel
/// (console_io, port 0xE9), whose bytes cannot be held back: a write beyond it is dropped and
/// counted (`reportDrops` says how many). The ring's bytes were charged before they were taken
/// from the ring (`GuestConsoles`): what the budget did not allow is still in the ring.
public enum ConsoleOutput {
  /// - Parameter showPartial: show an unfinished line as it comes (the ring of the domain with
  ///   the console input).
  public static func write(_ bytes: [UInt8], for domain: Domain, from channel: ConsoleChannel = .debug, showPartial: Bool = false) {
    let now = channel == .debug ? SystemTime.now() : 0
    domain.lock.lock()
    var allowed = bytes.count
    if channel == .debug {
      // A write is shown whole or dropped whole (a guest's print is usually one line, and half
      // lines joined would make lines it never wrote), unless it is larger than the burst.
      let wanted = UInt64(bytes.count)
      let available = domain.consoleBudget.available(wanted, now: now)
      let granted = available == wanted || wanted > domain.consoleBudget.burst ? available : 0
      allowed = Int(domain.consoleBudget.take(granted, now: now))
      domain.consoleBytesDropped &+= UInt64(bytes.count - allowed)
    }
    let shows = allowed == 0 ? [] : domain.console.show(bytes[..<allowed], from: channel, showPartial: showPartial)
    domain.lock.unlock()
    for show in shows {
      switch show {
      case .line(let line): Log.domain(domain.id, line)
      case .partial(let bytes): Log.domainPartial(domain.id, bytes)
      case .rest(let bytes): Log.domain(domain.id, bytes, continuing: true)
      }
    }
  }

  /// Takes up to `wanted` bytes of the domain's console budget at `now` (the console ring's
  /// output, before it is taken from the ring).
  public static func takeBudget(_ wanted: Int, for domain: Domain, now: UInt64) -> Int {
    domain.lock.lock()
    defer { domain.lock.unlock() }
    return Int(domain.consoleBudget.take(UInt64(max(wanted, 0)), now: now))
  }

  /// One `[domain N: X bytes of console output dropped]` line if the domain dropped any since
  /// its last one and that was at least `ConsoleLimits.dropReportInterval` ago (or `final`: the
  /// domain ends).
  public static func reportDrops(_ domain: Domain, now: UInt64, final: Bool = false) {
    domain.lock.lock()
    let dropped = domain.consoleBytesDropped
    let due = dropped > 0 && (final || now &- domain.consoleDropsReportedAt >= ConsoleLimits.dropReportInterval)
    if due {
      domain.consoleBytesDropped = 0
      domain.consoleDropsReportedAt = now
    }
    domain.lock.unlock()
    if due { Log.warning("[domain \(domain.id): \(dropped) bytes of console output dropped]") }
  }
}

/// The hypervisor's messages a guest can cause again and again (a crash report, a vcpu halted
/// with interrupts off, an IPI the virtual APIC refuses) go through the domain's
/// `MessageLimiter`, as Xen's guest messages go through printk_ratelimit: the first of them
/// after some were held back says how many.
public enum GuestMessages {
  /// Whether the domain's next message (or group of lines, such as a crash report) is printed.
  public static func admit(_ domain: Domain) -> Bool {
    let now = SystemTime.now()
    domain.lock.lock()
    let (printed, suppressed) = domain.messageLimiter.admit(now: now)
    domain.lock.unlock()
    if suppressed > 0 { Log.warning("domain \(domain.id): \(suppressed) messages suppressed") }
    return printed
  }

  public static func warning(_ domain: Domain, _ message: @autoclosure () -> String) {
    if admit(domain) { Log.warning(message()) }
  }

  public static func info(_ domain: Domain, _ message: @autoclosure () -> String) {
    if admit(domain) { Log.info(message()) }
  }
}
