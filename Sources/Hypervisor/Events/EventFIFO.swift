import XenABI

/// What the FIFO ABI keeps per port (`FIFOEvents.ports`, beside the port table rather than in
/// `EventChannel`, which the 2-level send path copies), as Xen's struct evtchn does.
public struct FIFOPortState: Sendable, Equatable {
  /// 0 (highest) … 15; EVTCHNOP_set_priority changes it.
  public var priority = UInt8(XenABI.FIFO.priorityDefault)
  /// The queue (vcpu × 16 + priority) the port was last linked on, Xen's fifo_lastq: if the
  /// port is that queue's tail when it is linked again elsewhere, that tail is forgotten, so a
  /// later event there does not link behind a port that has moved. Kept when the port is freed
  /// and allocated again: the guest may still have it linked there.
  public var lastQueue: UInt32 = 0
  /// Raised while its event word had no page yet (Xen's evtchn->pending): raised again when
  /// EVTCHNOP_expand_array adds the page. Also how 2-level pending ports carry over to FIFO.
  public var pendingWithoutWord = false

  public init() {}
}

/// One domain's FIFO event state (Xen's struct evtchn_fifo_domain and each vcpu's
/// evtchn_fifo_vcpu), guarded by the domain's event lock like the port table: every raise of
/// a port holds that lock, so one lock serialises the queues (Xen has a lock per queue because
/// its raises hold only the port's lock).
///
/// The pages are the guest's own RAM frames, each held by the hypervisor
/// (`HypercallEnvironment.holdEventFrame`, recorded in `Domain.eventFrames`): the control blocks
/// and the event array are reached at their machine addresses with `SharedWords`' atomics,
/// since the guest changes the same words concurrently (docs/events.md, "FIFO").
///
/// The guest owns the words and may write anything in them. The hypervisor only ever writes
/// the PENDING, LINKED and BUSY bits and the LINK field of a queue's tail, the HEAD of a queue,
/// and the READY bits; it never follows a LINK (the guest walks its queues), so a corrupted
/// word costs the guest its own events and nothing else: every loop here is bounded by a
/// constant or the port table.
public final class FIFOEvents: @unchecked Sendable {
  /// The event array's pages, in port order: port p's word is at page p / 1024, word p % 1024.
  public internal(set) var arrayPages: [UInt64] = []
  /// Each vcpu's control block (0: none registered yet).
  public internal(set) var controlBlocks: [UInt64]
  /// Each queue's tail port (vcpu × 16 + priority; 0: empty, as port 0 is never bound).
  var tails: [UInt32]
  /// Per port, as many as the port table has (`portsGrew`).
  public internal(set) var ports: [FIFOPortState]

  init(vcpuCount: Int, portCount: Int) {
    controlBlocks = [UInt64](repeating: 0, count: vcpuCount)
    tails = [UInt32](repeating: 0, count: vcpuCount * XenABI.FIFO.queueCount)
    ports = [FIFOPortState](repeating: FIFOPortState(), count: portCount)
  }

  /// The port table grew to `count` ports.
  func portsGrew(to count: Int) {
    if ports.count < count { ports += [FIFOPortState](repeating: FIFOPortState(), count: count - ports.count) }
  }

  /// `port` is handed out for a new binding: the default priority, nothing remembered pending
  /// (Xen's evtchn_fifo_init); its last queue stays.
  func portAllocated(_ port: UInt32) {
    guard Int(port) < ports.count else { return }
    ports[Int(port)].priority = UInt8(XenABI.FIFO.priorityDefault)
    ports[Int(port)].pendingWithoutWord = false
  }

  /// Ports with an event word (Xen's num_evtchns).
  var portsWithWords: Int { arrayPages.count * XenABI.FIFO.wordsPerPage }

  /// The frames behind the pages held, one entry per hold (a control block's page by its base).
  var heldFrames: [UInt64] {
    controlBlocks.filter { $0 != 0 }.map { $0 & ~0xFFF } + arrayPages
  }

  /// The address of `port`'s event word, nil if its page has not been added.
  @inline(__always) func word(_ port: UInt32) -> UInt64? {
    guard Int(port) < portsWithWords else { return nil }
    let page = arrayPages[Int(port) / XenABI.FIFO.wordsPerPage]
    return page &+ UInt64(Int(port) % XenABI.FIFO.wordsPerPage) &* 4   // inside the page
  }

  // MARK: The port operations (EventABI)

  /// evtchn_fifo_set_pending: PENDING; unless MASKED or LINKED already, link the port at the
  /// tail of queue (vcpu, its priority), or make it the queue's HEAD when the queue is empty,
  /// and set the queue's READY bit; a READY bit newly set raises the upcall and kicks the vcpu.
  func setPending(_ events: DomainEvents, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    let domain = events.domain
    guard let word = word(port) else {
      // No word yet: remembered for the page's arrival (expand_array).
      if Int(port) < ports.count { ports[Int(port)].pendingWithoutWord = true }
      return
    }
    // A vcpu without a control block: the guest must not unmask a port before registering
    // one, so the event is dropped (as Xen).
    guard vcpu >= 0, vcpu < controlBlocks.count, vcpu < domain.vcpus.count, controlBlocks[vcpu] != 0,
          Int(port) < ports.count else { return }
    let block = controlBlocks[vcpu]
    let state = ports[Int(port)]
    let priority = Int(state.priority)
    let queue = vcpu * XenABI.FIFO.queueCount + priority
    let wasPending = SharedWords.testAndSet32(bit: Int(XenABI.FIFO.pendingBit), at: word)

    var linked = true
    if !SharedWords.test32(bit: Int(XenABI.FIFO.maskedBit), at: word),
       !SharedWords.testAndSet32(bit: Int(XenABI.FIFO.linkedBit), at: word) {
      // It was the tail of the queue it was last on: that queue is empty now (the guest
      // unlinked it), and the tail must not be linked to again.
      let lastQueue = Int(state.lastQueue)
      if lastQueue < tails.count, tails[lastQueue] == port { tails[lastQueue] = 0 }
      ports[Int(port)].lastQueue = UInt32(queue)
      // Link behind the tail if the tail is still linked; otherwise the queue is empty and the
      // port is its head. A port that is its own queue's tail was cleared just above.
      linked = false
      let tail = tails[queue]
      if tail != 0, let tailWord = self.word(tail) { linked = Self.setLink(tailWord, to: port) }
      if !linked {
        SharedWords.store32(at: block &+ UInt64(XenABI.FIFO.ControlBlock.Offset.head) &+ UInt64(priority) &* 4, port)
      }
      tails[queue] = port
    }
    if !linked, !SharedWords.testAndSet32(bit: Int(priority), at: block &+ UInt64(XenABI.FIFO.ControlBlock.Offset.ready)) {
      let target = domain.vcpus[vcpu]
      if let info = Events.vcpuInfo(of: target) { Events.markEventsPending(target, info: info, platform) }
    }
    if !wasPending, domain.pollingVCPUs > 0 { Events.wakePollers(domain, port: port, platform) }
  }

  /// evtchn_fifo_clear_pending: only PENDING; the guest unlinks and skips a port that is not
  /// pending.
  func clearPending(port: UInt32) {
    guard let word = word(port) else { return }
    _ = SharedWords.testAndClear32(bit: Int(XenABI.FIFO.pendingBit), at: word)
  }

  /// evtchn_fifo_unmask: clears MASKED, and links the port again if it is pending.
  func unmask(_ events: DomainEvents, port: UInt32, vcpu: Int, _ platform: any EventPlatform) {
    guard let word = word(port) else { return }
    _ = SharedWords.testAndClear32(bit: Int(XenABI.FIFO.maskedBit), at: word)
    if SharedWords.test32(bit: Int(XenABI.FIFO.pendingBit), at: word) { setPending(events, port: port, vcpu: vcpu, platform) }
  }

  func isPending(port: UInt32) -> Bool {
    guard let word = word(port) else { return false }
    return SharedWords.test32(bit: Int(XenABI.FIFO.pendingBit), at: word)
  }

  /// No word: masked (nothing can be delivered).
  func isMasked(port: UInt32) -> Bool {
    guard let word = word(port) else { return true }
    return SharedWords.test32(bit: Int(XenABI.FIFO.maskedBit), at: word)
  }

  // MARK: The link protocol

  /// One try of Xen's try_set_link on the tail's word `word`, last read as `seen`.
  enum LinkAttempt { case linked, notLinked, raced }

  @inline(__always)
  static func trySetLink(_ word: UInt64, seen: inout UInt32, to link: UInt32) -> LinkAttempt {
    guard seen & (1 &<< XenABI.FIFO.linkedBit) != 0 else { return .notLinked }
    let wanted = (seen & ~((1 &<< XenABI.FIFO.busyBit) | XenABI.FIFO.linkMask)) | link
    let found = SharedWords.compareExchange32(at: word, expected: seen, desired: wanted)
    if found == seen { return .linked }
    seen = found
    return .raced
  }

  /// evtchn_fifo_set_link: sets the tail's LINK to `link` if the tail is still LINKED; false
  /// if it is not (the guest has consumed it: the queue is empty). While the tail is LINKED the
  /// guest may only set or clear MASKED, clear PENDING, or clear LINKED; BUSY stops it from
  /// unmasking meanwhile, so an honest guest lets the compare-exchange succeed within four
  /// tries. A guest that keeps changing the word anyway gets at most five tries and then its
  /// event is given up (reported linked, as Xen): bounded, whatever the guest does.
  static func setLink(_ word: UInt64, to link: UInt32) -> Bool {
    var seen = SharedWords.load32(at: word)
    switch trySetLink(word, seen: &seen, to: link) {
    case .linked: return true
    case .notLinked: return false
    case .raced: break
    }
    _ = SharedWords.testAndSet32(bit: Int(XenABI.FIFO.busyBit), at: word)
    seen = SharedWords.load32(at: word)
    for _ in 0..<4 {
      switch trySetLink(word, seen: &seen, to: link) {
      case .linked:
        return true
      case .notLinked:
        _ = SharedWords.testAndClear32(bit: Int(XenABI.FIFO.busyBit), at: word)
        return false
      case .raced:
        continue
      }
    }
    _ = SharedWords.testAndClear32(bit: Int(XenABI.FIFO.busyBit), at: word)
    return true
  }
}

// MARK: - The FIFO commands

extension Events {
  /// Whether `vcpu` of `domain` has a FIFO control block already (EVTCHNOP_init_control's
  /// early answer, before a frame is held for nothing).
  static func hasControlBlock(_ domain: Domain, vcpu: Int) -> Bool {
    let events = DomainEvents.of(domain)
    return events.lock.withLock {
      guard let fifo = events.fifo, vcpu < fifo.controlBlocks.count else { return false }
      return fifo.controlBlocks[vcpu] != 0
    }
  }

  /// EVTCHNOP_init_control with the control block's page held at `frame`: the control block of
  /// `vcpu` is at `frame + offset` (validated by the caller). The first one switches the domain
  /// to FIFO: every port keeps its binding, gets the default priority, and a port pending in
  /// shared_info is raised again once its event word's page is added (Xen's setup_ports).
  /// -EINVAL if the vcpu has one already (the caller then drops the hold).
  static func initControl(_ domain: Domain, vcpu: Int, frame: UInt64, offset: UInt32) -> XenABI.Errno? {
    let events = DomainEvents.of(domain)
    return events.lock.withLock { () -> XenABI.Errno? in
      if events.dying { return .EINVAL }
      let fifo: FIFOEvents
      if let existing = events.fifo {
        fifo = existing
      } else {
        fifo = FIFOEvents(vcpuCount: domain.vcpus.count, portCount: events.channels.count)
        for port in 1..<events.channels.count where !events.channels[port].isFree {
          if isPendingTwoLevel(domain, port: UInt32(port)) { fifo.ports[port].pendingWithoutWord = true }
        }
        events.useFIFO(fifo)
      }
      guard vcpu < fifo.controlBlocks.count, fifo.controlBlocks[vcpu] == 0 else { return .EINVAL }
      fifo.controlBlocks[vcpu] = frame &+ UInt64(offset)
      return nil
    }
  }

  /// Whether the domain uses FIFO and its event array may grow (EVTCHNOP_expand_array's early
  /// answer): nil, -EOPNOTSUPP under 2-level, -ENOSPC at 128 pages.
  static func canExpandArray(_ domain: Domain) -> XenABI.Errno? {
    let events = DomainEvents.of(domain)
    return events.lock.withLock { () -> XenABI.Errno? in
      guard let fifo = events.fifo else { return .EOPNOTSUPP }
      return fifo.arrayPages.count < XenABI.FIFO.maximumArrayPages ? nil : .ENOSPC
    }
  }

  /// EVTCHNOP_expand_array with the new page held at `frame`: 1,024 more ports have event
  /// words; ports among them raised meanwhile are raised now (Xen's add_page_to_event_array).
  static func expandArray(_ domain: Domain, frame: UInt64, _ platform: any EventPlatform) -> XenABI.Errno? {
    let events = DomainEvents.of(domain)
    return events.lock.withLock { () -> XenABI.Errno? in
      guard !events.dying, let fifo = events.fifo else { return .EOPNOTSUPP }
      guard fifo.arrayPages.count < XenABI.FIFO.maximumArrayPages else { return .ENOSPC }
      let first = fifo.portsWithWords
      fifo.arrayPages.append(frame)
      let end = min(fifo.portsWithWords, events.channels.count)
      if first < end {
        for port in first..<end where fifo.ports[port].pendingWithoutWord {
          fifo.ports[port].pendingWithoutWord = false
          fifo.setPending(events, port: UInt32(port), vcpu: events.channels[port].notifyVCPU, platform)
        }
      }
      return nil
    }
  }

  /// EVTCHNOP_set_priority: -EINVAL for a port beyond the table, then as the ABI says.
  static func setPriority(_ domain: Domain, port: UInt32, priority: UInt32) -> XenABI.Errno? {
    let events = DomainEvents.of(domain)
    return events.lock.withLock {
      guard events.isValid(port) else { return .EINVAL }
      return events.abi.setPriority(events, port: port, priority: priority)
    }
  }

  /// Back to 2-level (EVTCHNOP_reset, destruction): the FIFO state goes, and the frames it
  /// held are returned for the caller to release. Caller holds `events.lock`.
  static func leaveFIFO(_ events: DomainEvents) -> [UInt64] {
    guard let fifo = events.fifo else { return [] }
    events.useFIFO(nil)
    return fifo.heldFrames
  }
}
