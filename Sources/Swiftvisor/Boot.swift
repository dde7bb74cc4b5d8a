#if os(none)
import X86
import Hypervisor
import Support
import Synchronization

/// The bootstrap processor's path from `main` to every pcpu idling (docs/boot.md walks it).
enum Boot {
  static let version: StaticString = "0.1.0"

  static func bootstrapProcessor() -> Never {
    hv_set_this_cpu(0)
    Clock.bootTSC = CPU.rdtsc()
    Serial.initialize()
    Log.sink = { byte in Serial.put(byte) }
    Log.sinkDrain = { Serial.drain() }
    Log.currentCPU = { hv_this_cpu() }

    let info = readBootInfo()
    let options = BootOptions.parse(info.commandLine)
    Log.level = options.logLevel
    if options.console == .none { Log.sink = nil }
    ConsoleLimits.bytesPerSecond = UInt64(options.guestConsoleBytesPerSecond)
    ConsoleLimits.burstBytes = UInt64(options.guestConsoleBurstBytes)
    ConsoleLimits.messageIntervalMilliseconds = UInt64(options.messageIntervalMilliseconds)
    ConsoleLimits.messageBurst = UInt64(options.messageBurst)
    Log.info("Swiftvisor \(version) booting")
    Log.info("boot: loader \(info.loader == .pvh ? "pvh" : "multiboot2")")
    Log.info("cmdline: \(String(decoding: info.commandLine, as: UTF8.self))")
    for problem in options.problems {
      let text = String(decoding: problem.option, as: UTF8.self)
      switch problem.kind {
      case .unknownOption: Log.warning("cmdline: unknown option '\(text)' (ignored)")
      case .badValue: Log.warning("cmdline: bad value in '\(text)' (default kept)")
      }
    }
    Log.info("console: each domain may print \(options.guestConsoleBytesPerSecond) bytes/s (0: unlimited), \(options.guestConsoleBurstBytes) at once; its messages: \(options.messageBurst), then one per \(options.messageIntervalMilliseconds) ms")

    SpinLock.relax = { hv_pause() }
    setUpMemory(info)
    LegacyPIC.remapAndMask()
    DescriptorTables.buildIDT()
    DescriptorTables.loadGDTAndTSS()
    DescriptorTables.loadIDT()
    LocalAPIC.enable()
    let bsp = PCPUs.add(apicID: LocalAPIC.id)
    PCPUs.setStack(bsp, bottom: hv_boot_stack_bottom(), top: hv_boot_stack_top())

    let platform = readACPI(info)
    calibrateTime(reference: platform.clock, options: options)
    GuestTime.setUp()
    Timers.startOnThisCPU()
    bsp.online.store(true, ordering: .releasing)

    // Domains need SVM on every pcpu: the shared maps first, then this pcpu; APs enable their own.
    let svmReady = !info.modules.isEmpty && SVM.setUpShared() && SVM.enableOnThisCPU()
    SystemTime.platform = X86TimePlatform()

    var others = platform.apicIDs.filter { $0 != bsp.apicID }
    if let maxCPUs = options.maxCPUs, others.count > maxCPUs - 1 { others.removeLast(others.count - (maxCPUs - 1)) }
    let started = SMP.startAPs(apicIDs: others)
    // Before the scheduler: it hands out only the time of the pcpus that run guests.
    choosePCPUsForGuests(options.cpu0Guests)
    if svmReady { startScheduler(options) }
    let bootMicroseconds = Clock.now() / 1000
    Log.info("pcpus online: \(1 + started) (\(bootMicroseconds) us after entry)")
    Log.info("svm: \(CPU.hasSVM ? "available" : "not available"), nested paging: \(CPU.hasNPT ? "available" : "not available")")

    if let crash = options.crash { CrashTests.trigger(crash) }
    let healthy = SelfTest.run()
    Log.info("memory: \(Frames.freeFrames / 256) MiB free, heap \(heapBytesInUse() / 1024) KiB in use")
    if !healthy {
      Log.error("self-test failed: powering off with the failure status")
      Power.exit(.panic)
    }
    guard let bundle = info.modules.first else {
      Log.info("no boot bundle: no domains to run")
      Log.info("poweroff: clean")
      Power.exit(.clean)
    }
    guard svmReady else {
      Log.error("domains: SVM with nested paging is not available on this machine")
      Power.exit(.panic)
    }
    if options.vmrunFloorSamples > 0 {
      if let median = VMRunFloor.measure(samples: options.vmrunFloorSamples) {
        Log.info("bench: bare VMRUN/#VMEXIT round trip median \(median) TSC cycles (\(options.vmrunFloorSamples) samples)")
      } else {
        Log.error("bench: the VMRUN floor could not be measured")
      }
    }
    RunLoop.onDone = options.onDone
    IsolationCheck.enabled = options.isolationCheck
    startDomains(bundle, buildLoop: options.buildLoop)
    RunLoop.enter()
  }

  /// `cpu0guests=`: under QEMU's TCG, pcpu 0 runs no vcpus when there are others. QEMU clears
  /// a bit of pcpu 0's state from whichever thread executes an FXRSTOR (cpu_clear_ignne), with
  /// a plain read-modify-write of the flags that also hold pcpu 0's "nested paging on" bit: a
  /// pcpu 0 that switches worlds meanwhile gets a stale bit back, and its next page walk fails
  /// (docs/known-issues.md). A pcpu 0 that never enters guest mode never changes that bit.
  static func choosePCPUsForGuests(_ option: CPU0GuestsOption) {
    let others = PCPUs.onlineCount > 1
    let tcg = CPU.isQEMUTCG
    let keepFree: Bool
    switch option {
    case .yes: keepFree = false
    case .no: keepFree = others
    case .auto: keepFree = others && tcg
    }
    if option == .no && !others { Log.warning("cpu0guests=no: pcpu 0 is the only pcpu, so it runs guests") }
    guard keepFree else { return }
    PCPUs.forGuests.remove(0)
    Log.info("pcpus for guests: 1-\(PCPUs.count - 1); pcpu 0 runs none (cpu0guests=\(option == .no ? "no" : "auto")\(tcg ? ": QEMU TCG, docs/known-issues.md" : ""))")
  }

  // ---- Scheduler and events ------------------------------------------------------------------
  /// Chooses the policy (`sched=`) once every pcpu that will come up is up (the credit
  /// scheduler has a run queue per pcpu), installs the event-channel platform, and lets the
  /// pcpus' loops start picking vcpus.
  static func startScheduler(_ options: BootOptions) {
    Scheduler.kickIdlePCPUs = RunLoop.kickIdle
    Scheduler.kickPCPU = RunLoop.kickPCPU
    let pcpus = PCPUs.count
    // Only pcpus that came online and may run guests have time to hand out as credit.
    var guests = CPUAffinity(bits: 0)
    for cpu in PCPUs.online where PCPUs.forGuests.contains(cpu.index) { guests.insert(cpu.index) }
    switch options.scheduler {
    case .credit:
      let slice = UInt64(options.creditTimesliceMilliseconds) * 1_000_000
      let rateLimit = UInt64(options.rateLimitMicroseconds) * 1_000
      Scheduler.policy = CreditScheduler(pcpus: pcpus, guestPCPUs: guests, timeslice: slice, rateLimit: rateLimit)
      Log.info("scheduler: credit, \(pcpus) run queues, \(guests.count) for guests, slice \(options.creditTimesliceMilliseconds) ms, rate limit \(min(options.rateLimitMicroseconds, options.creditTimesliceMilliseconds * 1000)) us")
    case .roundRobin:
      Scheduler.policy = RoundRobinScheduler(pcpus: pcpus)
      Log.info("scheduler: round robin, one queue, slice 10 ms")
    }
    Events.platform = X86EventPlatform()
    GuestConsoles.install()
    TLBShootdown.install()
    Scheduler.started.store(true, ordering: .releasing)
  }

  // ---- Domains -------------------------------------------------------------------------------
  /// Builds every domain of the boot bundle (dom0less: no control domain, the hypervisor does
  /// it). A domain that cannot be built is reported by name and skipped; the others start.
  static func startDomains(_ module: BootModule, buildLoop: Int) {
    let parsed: Result<BootBundle, BundleError>? = PhysicalMemory.withBytes(module.start, count: Int(module.size)) { bytes in
      do throws(BundleError) { return .success(try BootBundle.parse(bytes)) } catch { return .failure(error) }
    }
    let bundle: BootBundle
    switch parsed {
    case .success(let value)?: bundle = value
    case .failure(let error)?:
      Log.error(String(decoding: error.message(), as: UTF8.self))
      Power.exit(.domainFailed)
    case nil:
      Log.error("boot bundle: the module at \(hex(module.start)) is outside mapped memory")
      Power.exit(.domainFailed)
    }
    Log.info("boot bundle: \(bundle.domains.count + bundle.problems.count) domain(s), \(bundle.blobCount) kernel/ramdisk blob(s), \(module.size >> 10) KiB")
    for problem in bundle.problems {
      Log.error(String(decoding: problem.message, as: UTF8.self))
    }
    GuestXenstore.setBootDomains(bundle.domains.map { $0.config })
    if buildLoop > 0 { churn(bundle, base: module.start, rounds: buildLoop) }
    RunLoop.framesBeforeDomains = Frames.freeFrames
    var built = 0
    for entry in bundle.domains {
      switch DomainBuilder.build(entry, bundleBase: module.start) {
      case .success: built += 1
      case .failure(let error):
        Log.error("domain \(String(decoding: entry.config.name, as: UTF8.self)) (bundle entry \(entry.index)): not started: \(error.message)")
      }
    }
    if built == 0 {
      Log.error("domains: none could be started")
      Power.exit(.domainFailed)
    }
    Domains.unbuilt.store(bundle.domains.count + bundle.problems.count - built, ordering: .relaxed)
    Domains.bootComplete.store(true, ordering: .releasing)
  }

  /// `buildloop=N`: builds and destroys every domain of the bundle N times without running it,
  /// and checks that the frame allocator gets back exactly what it gave.
  static func churn(_ bundle: BootBundle, base: UInt64, rounds: Int) {
    let before = Frames.freeFrames
    var builds = 0
    for _ in 0..<rounds {
      for entry in bundle.domains {
        guard case .success(let domain) = DomainBuilder.build(entry, bundleBase: base, start: false) else { continue }
        domain.shutDown(.poweroff)
        DomainBuilder.destroy(domain, quietly: true)
        builds += 1
      }
    }
    let after = Frames.freeFrames
    let verdict = before == after ? "ok" : "LEAK of \(before - after) frames"
    Log.info("buildloop: \(builds) builds and destroys: free frames \(before) before, \(after) after: \(verdict)")
    if before != after { Power.exit(.panic) }
  }

  // ---- Boot information ----------------------------------------------------------------------
  static func readBootInfo() -> BootInfo {
    let memory = PhysicalMemory()
    do throws(BootInfoError) {
      switch hv_boot_protocol_get() {
      case UInt32(BOOT_PROTOCOL_PVH):
        return try BootInfo.parsePVH(startInfo: hv_boot_info_get(), memory: memory)
      case UInt32(BOOT_PROTOCOL_MULTIBOOT2):
        return try BootInfo.parseMultiboot2(magic: hv_boot_magic_get(), info: hv_boot_info_get(), memory: memory)
      default:
        CrashReport.panic("boot: entered through an unknown boot protocol")
      }
    } catch {
      Log.error("boot: the boot loader's information is unusable: \(describe(error))")
      CrashReport.panic("boot: no usable boot information")
    }
  }

  static func describe(_ error: BootInfoError) -> String {
    switch error {
    case .badMagic(let magic): "bad magic \(hex(magic))"
    case .unreadable(let address): "unreadable at \(hex(address))"
    case .truncated: "truncated"
    case .tooManyEntries(let n): "too many entries (\(n))"
    }
  }

  // ---- Memory --------------------------------------------------------------------------------
  /// 8 MiB for the hypervisor's own objects, and 24 MiB for xenstore, whose total cap
  /// (`XenstoreLimits.totalBytes`, 16 MiB of accounted bytes) is what guests can make the heap
  /// hold, with the allocations' own overhead.
  static let heapGrowthBytes: UInt64 = 32 << 20

  /// The frame allocator gets all RAM except: the first MiB (firmware, the AP trampoline), the
  /// image, the boot modules and a multiboot2 loader's boot information. RAM above the identity
  /// map is not used yet.
  static func setUpMemory(_ info: BootInfo) {
    let map = info.memoryMap
    var excluded: [Range<UInt64>] = [0..<(1 << 20), hv_image_start()..<hv_image_end()]
    for module in info.modules where module.size > 0 {
      excluded.append(module.start..<(module.start &+ module.size))
    }
    // GRUB's boot information holds the RSDP copy that ACPI parsing reads later: keep it.
    if info.loader == .multiboot2, let size = PhysicalMemory().readLE(UInt32.self, at: hv_boot_info_get()) {
      excluded.append(hv_boot_info_get()..<(hv_boot_info_get() + UInt64(size)))
    }
    let limit = PhysicalMemory.mappedLimit
    excluded.append(limit..<UInt64.max)

    // The buddy allocator keeps its bookkeeping on the heap (about 320 KiB per GiB), so the heap
    // grows first, straight from the memory map, and that region is kept out of the allocator.
    var usable = map.usableRanges(excluding: excluded)
    if let home = usable.first(where: { $0.count >= heapGrowthBytes }) {
      growHeap(physical: home.lowerBound, bytes: Int(heapGrowthBytes))
      excluded.append(home.lowerBound..<(home.lowerBound + heapGrowthBytes))
      usable = map.usableRanges(excluding: excluded)
    } else {
      Log.warning("memory: the heap stays on its static arena (no \(heapGrowthBytes >> 20) MiB range free)")
    }
    // The frame table: 8 bytes for each frame of the allocator's span, also straight from the
    // memory map and kept out of the allocator.
    let span: Range<UInt64> = 0..<min(max(map.highestRAMAddress, 1 << 20), limit)
    let tableBytes = (FrameTable.bytes(for: span) + 4095) & ~4095
    guard let tableHome = usable.first(where: { $0.count >= tableBytes }) else {
      Log.error("memory: no \(tableBytes >> 10) KiB range for the frame table")
      CrashReport.panic("memory: no room for the frame table")
    }
    FrameTable.setUp(span: span, storage: tableHome.lowerBound)
    excluded.append(tableHome.lowerBound..<(tableHome.lowerBound + tableBytes))
    usable = map.usableRanges(excluding: excluded)
    Frames.setUp(span: span, free: usable)
    Log.info("memory: \(map.totalRAM >> 20) MiB RAM in \(map.regions.count) map entries, \(Frames.freeFrames / 256) MiB to the frame allocator, \(heapGrowthBytes >> 20) MiB to the heap, \(tableBytes >> 10) KiB to the frame table")
    var unmappedRAM: UInt64 = 0
    for region in map.regions where region.kind == .ram && region.end > limit {
      unmappedRAM += region.end - max(region.base, limit)
    }
    if unmappedRAM > 0 {
      Log.warning("memory: \(unmappedRAM >> 20) MiB of RAM above \(limit >> 30) GiB is not mapped yet and stays unused")
    }
  }

  // ---- ACPI ----------------------------------------------------------------------------------
  struct Platform {
    var apicIDs: [UInt32]
    var clock: ReferenceClock
  }

  static func readACPI(_ info: BootInfo) -> Platform {
    let memory = PhysicalMemory()
    var platform = Platform(apicIDs: [], clock: .pit)
    let tables: ACPITables
    do throws(ACPIError) {
      let (address, rsdp) = try ACPI.findRSDP(hint: info.rsdpAddress, memory: memory)
      tables = try ACPITables.load(rsdp: rsdp, memory: memory)
      Log.info("acpi: RSDP at \(hex(address)), tables: \(tables.signatures.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))")
    } catch {
      Log.warning("acpi: no usable tables; running on the boot pcpu only, PIT as reference clock")
      return platform
    }
    if let bytes = tables.table(ACPI.Signature.madt) {
      do throws(ACPIError) {
        let madt = try MADT.parse(bytes)
        platform.apicIDs = madt.usableProcessors.map { $0.apicID }
        Log.info("acpi: MADT lists \(madt.processors.count) processors, \(platform.apicIDs.count) usable")
      } catch {
        Log.warning("acpi: MADT unusable; running on the boot pcpu only")
      }
    }
    if let bytes = tables.table(ACPI.Signature.hpet) {
      do throws(ACPIError) {
        let hpet = try HPETTable.parse(bytes)
        if hpet.baseAddress != 0 && PhysicalMemory.isMapped(hpet.baseAddress, count: 0x100) {
          platform.clock = .hpet(base: hpet.baseAddress)
        }
      } catch {}
    }
    if let bytes = tables.table(ACPI.Signature.fadt) {
      do throws(ACPIError) {
        let fadt = try FADT.parse(bytes)
        if let dsdt = tables.table(ACPI.Signature.dsdt), let s5 = ACPI.s5SleepTypes(dsdt: dsdt), fadt.pm1aControlBlock <= 0xFFFF {
          Power.acpiPM1aControl = UInt16(fadt.pm1aControlBlock)
          Power.acpiSleepTypeS5 = UInt16(s5.a)
        }
      } catch {}
    }
    return platform
  }

  // ---- Time ----------------------------------------------------------------------------------
  /// Measures the TSC and the APIC timer against the reference clock over 20 ms.
  static func calibrateTime(reference: ReferenceClock, options: BootOptions) {
    let windowMilliseconds: UInt64 = 20
    var clock = reference
    LocalAPIC.configureTimer(mode: .oneShot)
    LocalAPIC.maskTimer()
    LocalAPIC.startOneShot(count: UInt32.max)
    var tscStart = CPU.rdtsc()
    var apicStart = LocalAPIC.timerCount
    if !clock.wait(milliseconds: windowMilliseconds) {
      Log.warning("time: \(reference.name) did not advance; calibrating against the PIT")
      clock = .pit
      tscStart = CPU.rdtsc()
      apicStart = LocalAPIC.timerCount
      if !clock.wait(milliseconds: windowMilliseconds) { CrashReport.panic("time: no working reference clock") }
    }
    let tscEnd = CPU.rdtsc()
    let apicEnd = LocalAPIC.timerCount
    LocalAPIC.maskTimer()
    Clock.setTSCRate((tscEnd &- tscStart) * 1000 / windowMilliseconds)
    Timers.setAPICTimerRate(UInt64(apicStart &- apicEnd) * 1000 / windowMilliseconds)
    switch options.timerMode {
    case .tscDeadline where CPU.hasTSCDeadline, .auto where CPU.hasTSCDeadline:
      Timers.mode = .tscDeadline
    case .tscDeadline:
      Log.warning("time: TSC-deadline mode requested but not available; using one-shot")
      Timers.mode = .oneShot
    default:
      Timers.mode = .oneShot
    }
    Timers.tickTSC = Clock.tscHz / UInt64(max(options.tickHz, 1))
    Log.info("time: TSC \(Clock.tscHz / 1000) kHz, APIC timer \(Timers.apicTimerHz / 1000) kHz (against \(clock.name)), timer mode \(Timers.modeName), tick \(options.tickHz) Hz")
  }
}
#endif
