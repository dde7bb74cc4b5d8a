#if os(none)
import Hypervisor
import Synchronization

/// The hypervisor console's `vcpus` command (Xen's debug keys `q` and `e` in one): where every
/// pcpu and every live vcpu is, what each vcpu waits for, and the events its domain has
/// pending (docs/events.md, "Looking at a stalled domain"). A test run that reaches its time
/// limit types it before QEMU is killed, so a stall leaves this behind in the log.
///
/// Nothing here takes a vcpu's or a pcpu's lock: a vcpu that runs keeps changing, and a stuck
/// lock must not stop the dump. Each figure is one aligned word, so it may be a moment old,
/// never torn. Only the event part takes the domain's event lock (`Events.describe`).
enum VCPUDump {
  static func printAll() {
    let now = Clock.now()
    for cpu in unsafe PCPUs.all where cpu.online.load(ordering: .relaxed) {
      // By the numbers it keeps: the last vcpu's domain may have been destroyed since.
      let last = cpu.lastVCPU.map { "d\($0.domainID)v\($0.id)" } ?? "none"
      // Its hardware timer's deadline is in TSC ticks.
      let timer = relative(Clock.systemTime(atTSC: cpu.programmedDeadline), now)
      Log.info("console: vcpus: pcpu \(cpu.index): \(cpu.idle.load(ordering: .relaxed) ? "idle" : "busy"), last vcpu \(last), "
        + "timer interrupts \(cpu.timerInterrupts.load(ordering: .relaxed)), timer \(timer), "
        + "softirqs pending \(hex(cpu.softirqPending.load(ordering: .relaxed))), reschedule \(cpu.rescheduleRequested.load(ordering: .relaxed))")
    }
    for domain in Domains.all where domain.isAlive {
      Log.info("console: vcpus: domain \(domain.id) (\(domain.nameString)): \(name(domain.state)), \(domain.vcpus.count) vcpu(s)")
      for vcpu in domain.vcpus {
        let vmcb = VMCB(address: vcpu.vmcb)
        let inGuest = vcpu.inGuestOn.load(ordering: .relaxed)
        let since = now >= vcpu.runstate.entryTime ? (now - vcpu.runstate.entryTime) / 1_000_000 : 0
        var text = "d\(domain.id)v\(vcpu.id): \(name(vcpu.runState)) for \(since) ms, "
          + (inGuest >= 0 ? "in the guest on pcpu \(inGuest)" : "last on pcpu \(vcpu.lastPCPU)")
          + ", RIP \(hex(vmcb.rip)), IF \((vmcb.rflags >> 9) & 1), shadow \(vmcb.read64(VMCB.Control.interruptShadow) & 1)"
          + ", V_IRQ \((vmcb.read64(VMCB.Control.virtualInterrupt) >> 8) & 1)"
        text += "; singleshot \(relative(vcpu.singleshotDeadline, now)), periodic "
          + (vcpu.periodicPeriod == 0 ? "off" : "every \(vcpu.periodicPeriod / 1000) us, next \(relative(vcpu.periodicNext, now))")
          + ", LAPIC timer \(relative(vcpu.lapicTimerNext, now))"
        if vcpu.polling { text += ", polling ports \(vcpu.pollPorts) until \(relative(vcpu.pollDeadline, now))" }
        text += "; \(Events.describe(vcpu)); hypercalls \(vcpu.hypercalls)"
        Log.info("console: vcpus: " + text)
        Log.info("console: vcpus: d\(domain.id)v\(vcpu.id) " + registers(vcpu, vmcb))
        Log.info("console: vcpus: d\(domain.id)v\(vcpu.id) " + stack(vcpu, vmcb))
      }
      for line in Events.describe(domain) { Log.info("console: vcpus: d\(domain.id) " + line) }
    }
    // The end, for whoever reads the dump (a test run at its time limit waits for it).
    Log.info("console: vcpus: done")
  }

  /// The general registers as the vcpu's last exit left them (a vcpu in the guest has moved
  /// on since): with RIP, what a stalled guest's code was working on (a spinning lock's
  /// address is in one of them).
  private static func registers(_ vcpu: VCPU, _ vmcb: VMCB) -> String {
    let registers = GuestRegisters(vcpu)
    let names: [(String, GuestRegisters.Name)] = [
      ("RAX", .rax), ("RBX", .rbx), ("RCX", .rcx), ("RDX", .rdx), ("RSI", .rsi), ("RDI", .rdi), ("RBP", .rbp),
      ("R8", .r8), ("R9", .r9), ("R10", .r10), ("R11", .r11), ("R12", .r12), ("R13", .r13), ("R14", .r14), ("R15", .r15),
    ]
    var text = "registers: RSP \(hex(vmcb.rsp))"
    for (name, register) in names { text += " \(name) \(hex(registers[register]))" }
    return text + " CR3 \(hex(vmcb.cr3))"
  }

  /// The 16 words at the vcpu's RSP, read through its page tables and p2m as they are now,
  /// without the vcpu's translation caches (another pcpu may be using them): the return
  /// addresses among them say how a stalled guest got where it is. Then the last word of the
  /// 16 KiB-aligned stack RSP is in, and 24 words where it points: an interrupt stack keeps the
  /// stack pointer it was entered from there (Linux's `call_on_irqstack` does), and the
  /// interrupted context's saved RIP, CS and RFLAGS are near it. A vcpu stalled in an interrupt
  /// handler shows that way whether the context it interrupted had interrupts on.
  private static func stack(_ vcpu: VCPU, _ vmcb: VMCB) -> String {
    let walk = GuestPageWalk(cr0: vmcb.cr0, cr3: vmcb.cr3, cr4: vmcb.cr4, efer: vmcb.efer)
    let npt = unsafe NestedPageTable(root: vcpu.domain.p2mRoot)
    func machine(_ gpa: UInt64) -> UInt64? { npt.translate(gpa).map { $0.0 } }
    func word(at address: UInt64) -> UInt64? {
      guard case .success(let gpa) = walk.translate(address, access: .read, readEntry: { gpa, size in
              guard let entry = machine(gpa) else { return nil }
              return size == 4 ? PhysicalMemory.read32(entry).map { UInt64($0) } : PhysicalMemory.read64(entry)
            }) else { return nil }
      return machine(gpa).flatMap { PhysicalMemory.read64($0) }
    }
    func words(at start: UInt64, count: UInt64) -> String {
      var text = ""
      for index in 0..<count {
        guard let value = word(at: start &+ index &* 8) else { return text + (index == 0 ? " unreadable" : " (then unreadable)") }
        text += " \(hex(value))"
      }
      return text
    }
    let rsp = vmcb.rsp & ~7                 // words, as the stack holds them
    var text = "stack at RSP:" + words(at: rsp, count: 16)
    let top = (rsp | 0x3FFF) &- 7
    if let previous = word(at: top), previous & 7 == 0, previous != 0 {
      text += "; the top of its 16 KiB stack (\(hex(top))) holds \(hex(previous)), where:" + words(at: previous, count: 24)
    }
    return text
  }

  // Embedded Swift prints no enum case by itself.
  private static func name(_ state: VCPU.RunState) -> String {
    switch state {
    case .running: "running"
    case .runnable: "runnable"
    case .blocked: "blocked"
    case .paused: "paused"
    case .down: "down"
    }
  }

  private static func name(_ state: Domain.State) -> String {
    switch state {
    case .building: "building"
    case .running: "running"
    case .paused: "paused"
    case .shutdown: "shut down"
    case .dead: "dead"
    }
  }

  /// A deadline (system time in nanoseconds, as `now`; 0: none) as the time from `now`: "in 3 ms", "2 ms ago", "off".
  private static func relative(_ deadline: UInt64, _ now: UInt64) -> String {
    if deadline == 0 || deadline == .max { return "off" }
    return deadline >= now ? "in \((deadline - now) / 1_000_000) ms" : "\((now - deadline) / 1_000_000) ms ago"
  }
}
#endif
