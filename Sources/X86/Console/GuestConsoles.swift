#if os(none)
import Hypervisor
import XenABI
import Support
import Synchronization

/// The hypervisor's console backend for its domains (docs/console.md): each domain gets a
/// console ring page and an event channel to the hypervisor (HVM_PARAM_CONSOLE_PFN and
/// HVM_PARAM_CONSOLE_EVTCHN), which Linux uses as hvc0. Output is drained when the guest
/// notifies and printed line by line as `(dN) …`; serial input goes to the domain that has the
/// focus, which Ctrl-A three times moves on, as in Xen.
public enum GuestConsoles {
  /// Guest frame of the ring: the last of the special pages (reserved in the guest's memory map).
  static let ringGFN: UInt64 = 0xFEFFF

  // Console input: `focus`, `inputSwitch`, `backlog` and `commandLine` are changed under
  // `inputLock` (`inputSwitch` only on pcpu 0's tick), and `focus` is read without it where a
  // moment-old value does no harm; each use is marked `unsafe` for that reason.
  /// The domain serial input goes to (0: the hypervisor, which ignores it).
  nonisolated(unsafe) static var focus: UInt16 = 0
  /// Whether the hypervisor has the input because the user switched to it (Ctrl-A three
  /// times), not because no domain had it yet: a domain built then (a restart, a reboot) does
  /// not take the input away from the hypervisor's command line.
  nonisolated(unsafe) static var hypervisorChosen = false
  nonisolated(unsafe) static var inputSwitch = ConsoleInputSwitch()
  /// Input for the focused domain that did not fit in its ring yet.
  nonisolated(unsafe) static var backlog: [UInt8] = []
  static let inputLock = SpinLock()

  /// Called once at boot: sends on console ports come here.
  public static func install() {
    unsafe Events.backendNotified = { domain, backend, platform in
      switch backend {
      case .console: outputReady(domain)
      case .xenstore: GuestXenstore.requestsReady(domain, platform)
      }
    }
  }

  /// The builder's part: the ring page mapped at `ringGFN`, the port bound to this backend, and
  /// both published as HVM parameters. False if there is no memory or no port.
  /// The backend keeps the ring's machine address, so it holds a reference on the frame: the
  /// guest may give the page back, and the frame stays until the domain ends (`ended`).
  static func create(for domain: Domain) -> Bool {
    let frame = domain.changeP2M(by: nil) { p2m -> UInt64? in
      do throws(P2M.Failure) {
        domain.consoleRingFrame = try p2m.newRingPage(at: ringGFN, as: .consoleRing)
        return domain.consoleRingFrame
      } catch {
        return nil
      }
    }
    guard let frame else { return false }
    domain.consoleRingMachine = frame
    guard case .ok(let port) = Events.bindBackend(domain, .console) else { return false }
    domain.consolePort = port
    domain.hvmParams[Int(XenABI.HVMParam.consolePFN.rawValue)] = ringGFN
    domain.hvmParams[Int(XenABI.HVMParam.consoleEvtchn.rawValue)] = UInt64(port)
    if unsafe focus == 0 && !hypervisorChosen { setFocus(domain.id, announce: true) }
    return true
  }

  /// The guest sent on its console port: print what it wrote, as far as its console budget
  /// allows, and tell it there is room again. What the budget does not allow stays in the ring,
  /// and the tick takes it as the budget grows (`drainHeldBack`): the guest waits for room, as a
  /// guest of Xen whose console daemon reads its ring no faster waits.
  static func outputReady(_ domain: Domain) {
    drainRing(domain)
    // The guest may be waiting for input room too: this is a good moment to retry.
    flushBacklog()
  }

  /// Takes what the budget allows from the domain's ring and prints it; notifies the guest if
  /// anything was taken. Returns whether output is still held back in the ring.
  @discardableResult
  static func drainRing(_ domain: Domain) -> Bool {
    domain.consoleDrainLock.lock()
    defer { domain.consoleDrainLock.unlock() }
    let ring = domain.consoleRingMachine
    guard ring != 0 else {
      domain.consoleRingHeldBack = false
      return false
    }
    let page = SharedMachinePage(base: ring)
    let pending = ConsoleRingBackend.pendingOutput(page)
    let allowed = pending > 0 ? ConsoleOutput.takeBudget(pending, for: domain, now: Clock.now()) : 0
    let bytes = ConsoleRingBackend.drainOutput(page, maximum: allowed)
    if !bytes.isEmpty { ConsoleOutput.write(bytes, for: domain, from: .ring, showPartial: hasFocus(domain)) }
    domain.consoleRingHeldBack = allowed < pending
    if !bytes.isEmpty || pending == 0 { Events.notify(domain, port: domain.consolePort) }
    return domain.consoleRingHeldBack
  }

  /// At every tick on pcpu 0: the rings whose output waits for budget give what they may now,
  /// and the domains that dropped console output say so (one line a second at most each).
  static func drainHeldBack() {
    let now = Clock.now()
    for domain in Domains.all where domain.isAlive {
      if domain.consoleRingHeldBack { drainRing(domain) }
      ConsoleOutput.reportDrops(domain, now: now)
    }
  }

  /// Called on pcpu 0 at every tick: reads what arrived on the serial line.
  static func pollInput() {
    var received: [UInt8] = []
    // The limit is checked before a byte is taken from the UART: a byte read is never dropped.
    while received.count < 256, let byte = Serial.receive() { received.append(byte) }
    guard unsafe !received.isEmpty || !backlog.isEmpty else { return }
    inputLock.lock()
    for byte in received {
      switch unsafe inputSwitch.feed(byte) {
      case .switchFocus?:
        // What was typed before the switch belongs to the old focus: deliver it first.
        inputLock.unlock()
        flushBacklog()
        let live = Domains.all.filter { $0.isAlive && $0.consoleRingMachine != 0 }.map { $0.id }
        unsafe setFocus(ConsoleInputSwitch.next(after: focus, among: live), announce: true, chosen: true)
        inputLock.lock()
        unsafe backlog.removeAll()
      case .deliver(let bytes)?:
        if unsafe focus != 0 {
          unsafe backlog += bytes
        } else {
          inputLock.unlock()
          for key in bytes { hypervisorKey(key) }
          inputLock.lock()
        }
      case nil:
        break
      }
    }
    inputLock.unlock()
    flushBacklog()
  }

  /// A key typed while the hypervisor has the input (Xen has its debug keys there): `q` powers
  /// the machine off at once, whatever the domains are doing (the way out of `visor demo`,
  /// where Ctrl-C goes to the guests); a line it does not know gets one saying what it takes. A quit while
  /// domains still run has its own status; one after every domain ended (`ondone=stay`) has the
  /// status the domains earned.
  ///
  /// Other keys make a command line, run at Enter (`HypervisorCommand`): `shutdown D` and
  /// `reboot D` ask domain D (its id or name) to power off or reboot through its
  /// control/shutdown node in xenstore, as `xl shutdown` and `xl reboot` do; `stats` and
  /// `vcpus` print what each domain did and where its vcpus are (`VCPUDump`).
  static func hypervisorKey(_ key: UInt8) {
    // The line is edited under the input lock: `setFocus` clears it from whichever pcpu a
    // domain starts or ends on. A command runs, and `q` powers off, with the lock released.
    enum Action { case quit, run([UInt8]), nothing }
    let action = inputLock.withLock { () -> Action in
      switch key {
      case UInt8(ascii: "q") where unsafe commandLine.isEmpty:
        return .quit
      case UInt8(ascii: "\r"), UInt8(ascii: "\n"):
        let line = unsafe commandLine
        unsafe commandLine.removeAll()
        return line.isEmpty ? .nothing : .run(line)
      case 0x08, 0x7F:
        if unsafe !commandLine.isEmpty { unsafe commandLine.removeLast() }
        return .nothing
      case 0x20...0x7E:
        if unsafe commandLine.count < 80 { unsafe commandLine.append(key) }
        return .nothing
      default:
        return .nothing
      }
    }
    switch action {
    case .quit:
      let running = Domains.all.filter { $0.isAlive }.count
      let failed = Domains.failed.load(ordering: .acquiring) + Domains.unbuilt.load(ordering: .acquiring)
      Log.info("console: q: powering off now, with \(running) domain(s) still running")
      if running > 0 && failed == 0 {
        Log.info("poweroff: quit from the console")
        Power.exit(.quit)
      }
      RunLoop.powerOff()
    case .run(let line):
      runCommand(line)
    case .nothing:
      break
    }
  }

  /// What was typed for the hypervisor since the last Enter (not echoed: the console is shared
  /// with every domain's output; the line is printed when it runs).
  nonisolated(unsafe) static var commandLine: [UInt8] = []

  static func runCommand(_ line: [UInt8]) {
    // Bytes, not Strings: comparing Strings needs Unicode tables the image does not carry.
    let words = line.split(separator: UInt8(ascii: " ")).map { Array($0) }
    let verb = words.first ?? []
    if verb == Array("stats".utf8), words.count == 1 {
      // As xentop shows them: each live domain's exits so far. Read while its vcpus run: each
      // count is one aligned 64-bit word, so a figure may be a moment old, never torn.
      for domain in Domains.all where domain.isAlive {
        Log.info("console: stats: domain \(domain.id) (\(domain.nameString)): " + ExitClass.summary(domain, lifetimeNanoseconds: Clock.now() - domain.startedAt))
      }
      return
    }
    if verb == Array("vcpus".utf8), words.count == 1 {
      VCPUDump.printAll()
      return
    }
    let request: String
    if verb == Array("shutdown".utf8) || verb == Array("poweroff".utf8) {
      request = "poweroff"
    } else if verb == Array("reboot".utf8) {
      request = "reboot"
    } else if verb == Array("mem-set".utf8) {
      request = "mem-set"
    } else {
      Log.info("console: the hypervisor has the input: q powers off at once; shutdown <domain>, reboot <domain> and mem-set <domain> <MiB> (a domain id or name) and Enter ask a domain through xenstore, as xl does; stats shows each domain's exits so far, vcpus where each vcpu is and what it waits for; Ctrl-A three times moves the input on")
      return
    }
    let verbText = String(decoding: verb, as: UTF8.self)
    let wanted = request == "mem-set" ? 3 : 2
    guard words.count == wanted else {
      Log.info("console: \(verbText) <domain>\(wanted == 3 ? " <MiB>" : ""): a domain id or name")
      return
    }
    let named = words[1]
    let target = Domains.all.first { domain in
      domain.isAlive && (domain.name == named || Array(String(domain.id).utf8) == named)
    }
    guard let target else {
      Log.info("console: \(verbText) \(String(decoding: named, as: UTF8.self)): no such domain running")
      return
    }
    if request == "mem-set" {
      // A target above maxmem is cut to it, as xl refuses one; below 16 MiB no kernel lives.
      var mib: UInt64 = 0
      for digit in words[2] where mib < 1 << 40 {
        guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { mib = 0; break }
        mib = mib * 10 + UInt64(digit - UInt8(ascii: "0"))
      }
      guard mib >= 16 else {
        Log.info("console: mem-set: \(String(decoding: words[2], as: UTF8.self)) is not a size in MiB (16 or more)")
        return
      }
      let kib = min(mib << 10, UInt64(target.maximumPages) << 2)
      if let refused = GuestXenstore.setMemoryTarget(target, kib: kib) {
        Log.info("console: mem-set: domain \(target.id) (\(target.nameString)) cannot be asked: \(refused)")
      } else {
        Log.info("console: mem-set: domain \(target.id) (\(target.nameString)): memory/target = \(kib) KiB (its balloon driver follows)")
      }
      return
    }
    if let refused = GuestXenstore.requestShutdown(target, request) {
      Log.info("console: \(verbText): domain \(target.id) (\(target.nameString)) cannot be asked: \(refused)")
    } else {
      Log.info("console: \(verbText): asked domain \(target.id) (\(target.nameString)) to \(request) (control/shutdown)")
    }
  }

  static func flushBacklog() {
    inputLock.lock()
    defer { inputLock.unlock() }
    guard unsafe !backlog.isEmpty else { return }
    let focus = unsafe Self.focus
    guard focus != 0, let domain = Domains.find(id: focus), domain.isAlive, domain.consoleRingMachine != 0 else {
      unsafe backlog.removeAll()
      return
    }
    let taken = unsafe ConsoleRingBackend.deliverInput(backlog, to: SharedMachinePage(base: domain.consoleRingMachine))
    if taken > 0 {
      unsafe backlog.removeFirst(taken)
      Events.notify(domain, port: domain.consolePort)
    }
    // A guest that never reads its input must not make the hypervisor hold it forever.
    if unsafe backlog.count > 4096 { unsafe backlog.removeFirst(backlog.count - 4096) }
  }

  /// True if serial input goes to `domain` now.
  static func hasFocus(_ domain: Domain) -> Bool { unsafe focus == domain.id }

  /// Called with the input lock released (it takes it): from pcpu 0's input (`chosen`: the
  /// user switched), and from whichever pcpu a domain is built or ends on.
  static func setFocus(_ id: UInt16, announce: Bool, chosen: Bool = false) {
    inputLock.withLock {
      unsafe focus = id
      unsafe hypervisorChosen = chosen && id == 0
      unsafe commandLine.removeAll()
    }
    guard announce else { return }
    if id == 0 {
      Log.info("console input: the hypervisor (Ctrl-A three times to switch)")
    } else if let domain = Domains.find(id: id) {
      Log.info("console input: domain \(id) (\(domain.nameString)) (Ctrl-A three times to switch)")
    }
  }

  /// The domain no longer runs (it is destroyed or preserved): nothing reaches its ring from now
  /// on, and if it had the input, the next live domain gets it.
  static func ended(_ domain: Domain) {
    ConsoleOutput.reportDrops(domain, now: Clock.now(), final: true)
    // Under the drain lock too: the tick may be draining this ring on pcpu 0 right now, and the
    // frame must not go before it is done.
    domain.consoleDrainLock.lock()
    domain.consoleRingHeldBack = false
    inputLock.lock()
    domain.consoleRingMachine = 0
    let hadFocus = unsafe focus == domain.id
    if hadFocus { unsafe backlog.removeAll() }
    inputLock.unlock()
    domain.consoleDrainLock.unlock()
    // The backend's last use of the ring was under the input lock or in this domain's own
    // sends, which are over: its reference can go.
    domain.changeP2M(by: nil) { p2m in
      p2m.dropHold(domain.consoleRingFrame)
      domain.consoleRingFrame = 0
    }
    guard hadFocus else { return }
    let live = Domains.all.filter { $0 !== domain && $0.isAlive && $0.consoleRingMachine != 0 }.map { $0.id }
    let next = ConsoleInputSwitch.next(after: domain.id, among: live)
    setFocus(next != 0 ? next : (live.first ?? 0), announce: next != 0 || !live.isEmpty)
  }
}
#endif
