import XenABI

/// What the hypervisor console's `vcpus` command prints of a domain's events (docs/events.md,
/// "Looking at a stalled domain"): which ports are bound, which are pending, and under FIFO
/// what each vcpu's control block and the hypervisor's queue tails say. It answers the first
/// question about a domain that stopped: is an event waiting that the guest never took, or did
/// none come?
extension Events {
  /// One line per fact, read under the domain's event lock. The guest changes its own words
  /// meanwhile, so this is a snapshot, never a proof; it writes nothing.
  public static func describe(_ domain: Domain) -> [String] {
    guard let events = DomainEvents.existing(domain) else { return ["events: none bound yet"] }
    return events.lock.withLock { () -> [String] in
      var lines: [String] = []
      var bound = 0
      var pending: [String] = []
      for port in 1..<events.channels.count {
        let channel = events.channels[port]
        if case .free = channel.state { continue }
        if case .reserved = channel.state { continue }
        bound += 1
        guard events.abi.isPending(events, port: UInt32(port)) else { continue }
        var entry = "\(port) (\(portKind(channel.state)), vcpu \(channel.notifyVCPU)"
        if events.abi.isMasked(events, port: UInt32(port)) { entry += ", masked" }
        if let word = events.fifo?.word(UInt32(port)) { entry += ", word \(hex(SharedWords.load32(at: word)))" }
        pending.append(entry + ")")
      }
      let abi = events.fifo == nil ? "2-level" : "FIFO"
      lines.append("events: \(abi), \(bound) port(s) bound, pending: " + (pending.isEmpty ? "none" : pending.joined(separator: ", ")))
      if let fifo = events.fifo {
        for (vcpu, block) in fifo.controlBlocks.enumerated() {
          guard block != 0 else {
            lines.append("events: vcpu \(vcpu): no FIFO control block")
            continue
          }
          let ready = SharedWords.load32(at: block &+ UInt64(XenABI.FIFO.ControlBlock.Offset.ready))
          var queues: [String] = []
          for priority in 0..<XenABI.FIFO.queueCount {
            let head = SharedWords.load32(at: block &+ UInt64(XenABI.FIFO.ControlBlock.Offset.head) &+ UInt64(priority) &* 4)
            let tail = fifo.tails[vcpu * XenABI.FIFO.queueCount + priority]
            if head != 0 || tail != 0 { queues.append("\(priority): head \(head), tail \(tail)") }
          }
          lines.append("events: vcpu \(vcpu): READY \(hex(ready)), queues " + (queues.isEmpty ? "empty" : queues.joined(separator: "; ")))
        }
      }
      return lines
    }
  }

  private static func portKind(_ state: EventChannel.State) -> String {
    switch state {
    case .free: "free"
    case .reserved: "reserved"
    case .unbound(let remote): "unbound, for domain \(remote)"
    case .interdomain(let peer, let port): "to domain \(peer.domain.id) port \(port)"
    case .virq(let virq): "virq \(virq)"
    case .ipi: "ipi"
    case .backend(.console): "console"
    case .backend(.xenstore): "xenstore"
    }
  }

  /// `vcpu`'s side: its vcpu_info's upcall_pending and upcall_mask, the 2-level selector, and
  /// the vector the upcall is delivered on (a guest that asked for none gets no upcall).
  public static func describe(_ vcpu: VCPU) -> String {
    guard let info = vcpuInfo(of: vcpu) else { return "no vcpu_info" }
    let flags = SharedWords.load(at: info)
    let pending = (flags >> (UInt64(XenABI.VCPUInfo.Offset.upcallPending) * 8)) & 0xFF
    let mask = (flags >> (UInt64(XenABI.VCPUInfo.Offset.upcallMask) * 8)) & 0xFF
    var text = "upcall_pending \(pending), upcall_mask \(mask)"
    let domain = unsafe vcpu.domain
    // The selector means something under 2-level only (64-bit layout here).
    let twoLevel = DomainEvents.existing(domain).map { events in events.lock.withLock { events.fifo == nil } } ?? true
    if twoLevel, !domain.has32BitSharedInfo {
      text += ", pending_sel \(hex(SharedWords.load(at: info &+ UInt64(XenABI.VCPUInfo.Offset.pendingSelector))))"
    }
    if let vector = callbackVector(for: vcpu) { text += ", vector \(hex(vector))" } else { text += ", no callback vector" }
    return text
  }
}
