#if os(none)
import Hypervisor
import XenABI
import Support
import Synchronization

/// Builds a PVH domain from one entry of the boot bundle: memory, kernel, ramdisk, start info,
/// vcpus. docs/domain-building.md walks through it.
///
/// Guest-physical layout (modelled on libxl's PVH domains; docs/linux-pvh-facts.md says why):
/// ```
/// 0x0000_0000 – 0x0009_FFFF   RAM (Linux needs low memory for its real-mode trampoline)
/// 0x0000_1000                 start info, module list, memory map    (in that low RAM)
/// 0x0000_2000                 command line (up to 4 KiB)
/// 0x000A_0000 – 0x000F_FFFF   legacy VGA/BIOS area: reserved in the memory map, zeroed memory behind it
/// 0x0010_0000 – low top       RAM: the kernel at its ELF physical addresses, then the ramdisk
/// 0xFC00_0000 – 0xFFFF_FFFF   hole (MMIO; special pages at 0xFEFF_8000 are reserved here)
/// 4 GiB –                     RAM beyond what fits below the hole
/// ```
public enum DomainBuilder {
  static let lowRAMEnd: UInt64 = 0xA_0000
  static let highRAMStart: UInt64 = 0x10_0000
  static let holeStart: UInt64 = 0xFC00_0000
  static let fourGiB: UInt64 = 1 << 32
  static let specialPages: Range<UInt64> = 0xFEFF_8000..<0xFF00_0000
  static let startInfoAddress: UInt64 = 0x1000
  static let moduleListAddress: UInt64 = 0x1040
  static let memoryMapAddress: UInt64 = 0x1080
  static let commandLineAddress: UInt64 = 0x2000
  static let maximumCommandLine = 4095

  public struct BuildError: Error {
    public var message: String
    init(_ message: String) { self.message = message }
  }

  /// The guest's RAM ranges (guest-physical), as the guest is told about them.
  static func ramRanges(memoryBytes: UInt64) -> [Range<UInt64>] {
    var ranges: [Range<UInt64>] = [0..<lowRAMEnd]
    let below = min(memoryBytes, holeStart)
    if below > highRAMStart { ranges.append(highRAMStart..<below) }
    if memoryBytes > holeStart { ranges.append(fourGiB..<(fourGiB + memoryBytes - holeStart)) }
    return ranges
  }

  /// What is populated: the RAM ranges, plus the legacy hole 0xA0000-0xFFFFF, which the memory
  /// map calls reserved but which is backed by zeroed memory. Linux reads it while it looks for
  /// option ROMs and DMI tables; on a PC that is ROM, here it reads as empty.
  static func populatedRanges(memoryBytes: UInt64) -> [Range<UInt64>] {
    var ranges = ramRanges(memoryBytes: memoryBytes)
    ranges[0] = 0..<highRAMStart
    return ranges
  }

  /// The memory map the guest is told about (start info, XENMEM_memory_map): e820 types.
  static func memoryMap(for domain: Domain) -> [(address: UInt64, size: UInt64, type: UInt32)] {
    var map: [(address: UInt64, size: UInt64, type: UInt32)] = []
    for range in ramRanges(memoryBytes: domain.memoryBytes) {
      map.append((range.lowerBound, range.upperBound - range.lowerBound, 1))
    }
    map.append((lowRAMEnd, highRAMStart - lowRAMEnd, 2))
    map.append((specialPages.lowerBound, UInt64(specialPages.count), 2))
    map.sort { $0.address < $1.address }
    return map
  }

  /// True if [gpa, gpa+bytes) touches neither the legacy hole nor the MMIO hole.
  static func isOutsideReservedAreas(_ gpa: UInt64, bytes: UInt64) -> Bool {
    let end = gpa &+ bytes
    guard end > gpa else { return false }
    let reserved: [Range<UInt64>] = [lowRAMEnd..<highRAMStart, holeStart..<fourGiB]
    return reserved.allSatisfy { end <= $0.lowerBound || gpa >= $0.upperBound }
  }

  /// Builds domain `entry` whose kernel and ramdisk live in the bundle at physical `bundleBase`.
  /// With `start` false the domain is built but its vcpu 0 is not made runnable.
  ///
  /// The bundle is only read: the kernel's segments and the ramdisk are copied into the domain's
  /// own RAM, never mapped into it. So a blob that several domains share (BootBundle.swift) is
  /// never seen, let alone written, by a guest, and a restart (`on_reboot = "restart"`) or a
  /// `buildloop=` round builds from the same intact bytes.
  /// `restartHistory`: the restarts of the domains this one is restarted from (`RestartThrottle`).
  public static func build(_ entry: BootBundle.BundledDomain, bundleBase: UInt64, start: Bool = true,
                           restartHistory: RestartThrottle = RestartThrottle()) -> Result<Domain, BuildError> {
    let config = entry.config
    let startedAt = Clock.now()
    let memoryBytes = UInt64(config.memoryMiB) << 20
    // Parse the kernel in place, inside the bundle.
    // unsafe: the view of the bundle is used only inside the closure.
    let parsed: Result<ELFImage, ELFError>? = unsafe PhysicalMemory.withBytes(bundleBase + UInt64(entry.kernel.lowerBound), count: entry.kernel.count) { bytes in
      do throws(ELFError) {
        let image = try unsafe ELFImage.parse(bytes)
        try image.checkFits(guestMemoryBytes: min(memoryBytes, holeStart),
                            reserved: [0..<0x2000 + UInt64(maximumCommandLine + 1), lowRAMEnd..<highRAMStart])
        return .success(image)
      } catch {
        return .failure(error)
      }
    }
    guard let parsed else { return .failure(BuildError("the kernel is outside the hypervisor's memory map")) }
    let image: ELFImage
    switch parsed {
    case .success(let value): image = value
    case .failure(let error): return .failure(BuildError("kernel: " + String(decoding: error.message(), as: UTF8.self)))
    }

    // Hard affinity (`cpus`), limited to the pcpus that are online; none of them left is an
    // error in the config, not a domain that never runs.
    var online = CPUAffinity(bits: 0)
    for cpu in PCPUs.online where unsafe PCPUs.forGuests.contains(cpu.index) { online.insert(cpu.index) }
    var affinity = online
    if let cpus = config.cpus {
      do throws(CPUAffinity.ParseError) {
        affinity = CPUAffinity(bits: try CPUAffinity.parse(cpus).bits & online.bits)
      } catch {
        return .failure(BuildError("cpus = \"\(String(decoding: cpus, as: UTF8.self))\" is not a cpu list"))
      }
      if affinity.isEmpty {
        return .failure(BuildError("cpus = \"\(String(decoding: cpus, as: UTF8.self))\" names no pcpu that runs guests (online: 0-\(PCPUs.count - 1)\(unsafe PCPUs.forGuests.contains(0) ? "" : "; pcpu 0 runs none"))"))
      }
    }

    guard let domain = Domains.create(name: config.name, memoryBytes: memoryBytes) else {
      return .failure(BuildError("no free domain id: \(Domains.ids.count) domains exist already"))
    }
    domain.origin = (entry, bundleBase)
    domain.restartHistory = restartHistory
    domain.maximumPages = (config.maxMemoryMiB ?? config.memoryMiB) << 8
    // Before anything binds a port (the console's and the store's below): the event state takes
    // its limit from here when it is first made.
    domain.maxEventChannels = config.maxEventChannels ?? Events.defaultMaximumPort
    // The p2m's table pages come from a pool sized as Xen sizes its paging pool.
    domain.p2mPoolLimit = 256 * config.vcpus + Int(memoryBytes >> 20) + 16

    // RAM: 2 MiB blocks where the range allows, 4 KiB pages elsewhere. All of it zeroed.
    let built = domain.changeP2M(by: nil) { p2m -> Bool in
      guard p2m.createRoot() else { return false }
      for range in populatedRanges(memoryBytes: memoryBytes) {
        var gpa = range.lowerBound
        while gpa < range.upperBound {
          let large: UInt64 = 2 << 20
          if gpa % large == 0, gpa + large <= range.upperBound, let block = p2m.newFrames(order: 9, as: .guestRAM) {
            do throws(P2M.Failure) { try p2m.mapLarge(gpa >> 12, block) } catch {
              p2m.discardFrames(block, count: 512)
              return false
            }
            gpa += large
            continue
          }
          guard let frame = p2m.newFrames(order: 0, as: .guestRAM) else { return false }
          do throws(P2M.Failure) { try p2m.map(gpa >> 12, frame, .ram) } catch {
            p2m.discardFrames(frame, count: 1)
            return false
          }
          gpa += 4096
        }
      }
      return true
    }
    guard built else {
      return fail(domain, "out of memory: \(config.memoryMiB) MiB asked, \(Frames.freeFrames / 256) MiB free")
    }
    let npt = NestedPageTable(root: domain.p2mRoot)
    let memory = GuestPhysicalWriter(npt: npt)
    guard GuestConsoles.create(for: domain) else { return fail(domain, "no memory or port for the console ring") }
    guard GuestXenstore.create(for: domain) else { return fail(domain, "no memory or port for the xenstore ring") }

    // Kernel segments at their physical addresses; BSS is already zero.
    let kernelBase = bundleBase + UInt64(entry.kernel.lowerBound)
    for segment in image.segments where segment.fileSize > 0 {
      guard memory.copy(fromMachine: kernelBase + UInt64(segment.fileOffset), to: segment.physicalAddress, count: segment.fileSize) else {
        return fail(domain, "kernel segment at \(hex(segment.physicalAddress)) does not fit in guest RAM")
      }
    }

    // Ramdisk: copied (the blob may be another domain's too), page-aligned, 2 MiB after the kernel.
    var modules: [(address: UInt64, size: UInt64)] = []
    if let ramdisk = entry.ramdisk, ramdisk.count > 0 {
      let address = (image.highestAddress + (2 << 20) + 0xFFF) & ~0xFFF
      guard address + UInt64(ramdisk.count) <= min(memoryBytes, holeStart),
            memory.copy(fromMachine: bundleBase + UInt64(ramdisk.lowerBound), to: address, count: ramdisk.count) else {
        return fail(domain, "the ramdisk (\(ramdisk.count >> 10) KiB) does not fit in \(config.memoryMiB) MiB after the kernel")
      }
      modules.append((address, UInt64(ramdisk.count)))
    }

    // Start info (hvm_start_info v1), module list, memory map, command line.
    let map = memoryMap(for: domain)
    var cmdline = config.cmdline
    if cmdline.count > maximumCommandLine { cmdline.removeLast(cmdline.count - maximumCommandLine) }
    var startInfo: [UInt8] = []
    startInfo += littleEndianBytes(UInt32(0x336E_C578))                   // magic
    startInfo += littleEndianBytes(UInt32(1))                             // version
    startInfo += littleEndianBytes(UInt32(0))                             // flags
    startInfo += littleEndianBytes(UInt32(modules.count))                 // nr_modules
    startInfo += littleEndianBytes(modules.isEmpty ? UInt64(0) : moduleListAddress)
    startInfo += littleEndianBytes(commandLineAddress)
    startInfo += littleEndianBytes(GuestACPITables.rsdpAddress)           // rsdp_paddr
    startInfo += littleEndianBytes(memoryMapAddress)
    startInfo += littleEndianBytes(UInt32(map.count))
    startInfo += littleEndianBytes(UInt32(0))
    var moduleList: [UInt8] = []
    for module in modules {
      moduleList += littleEndianBytes(module.address) + littleEndianBytes(module.size)
      moduleList += littleEndianBytes(UInt64(0)) + littleEndianBytes(UInt64(0))
    }
    var memoryMapBytes: [UInt8] = []
    for entry in map {
      memoryMapBytes += littleEndianBytes(entry.address) + littleEndianBytes(entry.size)
      memoryMapBytes += littleEndianBytes(entry.type) + littleEndianBytes(UInt32(0))
    }
    guard memory.write(GuestACPITables.build(vcpus: config.vcpus), at: GuestACPITables.base) else {
      return fail(domain, "cannot write the ACPI tables")
    }
    guard memory.write(startInfo, at: startInfoAddress), memory.write(moduleList, at: moduleListAddress),
          memory.write(memoryMapBytes, at: memoryMapAddress), memory.write(cmdline + [0], at: commandLineAddress)
    else { return fail(domain, "cannot write the start info") }

    // Vcpus: all created now; vcpu 0 starts at the PVH entry, the others wait for VCPUOP_up.
    for id in 0..<config.vcpus {
      let vcpu = VCPU(id: id, domain: domain)
      domain.vcpus.append(vcpu)
      guard ArchVCPU.create(vcpu) else { return fail(domain, "no memory for vcpu \(id)") }
    }
    ArchVCPU.setPVHStart(domain.vcpus[0], .init(entry: image.pvhEntry, startInfo: startInfoAddress))
    domain.vcpus[0].initialised = true
    guard GuestXenstore.introduce(domain, vcpus: config.vcpus, maxVCPUs: config.maxVCPUs ?? config.vcpus,
                                  maxMemoryMiB: config.maxMemoryMiB ?? config.memoryMiB)
    else { return fail(domain, "the store is full: no room for its xenstore nodes") }
    domain.state = .running
    guard start else { return .success(domain) }
    Log.info("domain \(domain.id) (\(domain.nameString)): built: \(config.memoryMiB) MiB, \(config.vcpus) vcpu(s), entry \(hex(image.pvhEntry)), \(domain.framesInUse) frames, in \((Clock.now() - startedAt) / 1000) us, at \(Clock.now() / 1000) us")
    Domains.created.wrappingAdd(1, ordering: .relaxed)
    domain.maxGrantFrames = config.maxGrantFrames ?? XenABI.GrantLayout.defaultMaxGrantFrames
    domain.maxMaptrackFrames = config.maxMaptrackFrames ?? XenABI.GrantLayout.defaultMaxMaptrackFrames
    unsafe Scheduler.policy?.setParameters(domain: domain, weight: config.weight ?? 256, cap: config.cap ?? 0, affinity: affinity)
    domain.startedAt = Clock.now()
    unsafe Scheduler.policy?.wake(domain.vcpus[0])
    return .success(domain)
  }

  private static func fail(_ domain: Domain, _ message: String) -> Result<Domain, BuildError> {
    domain.shutDown(.crash)
    destroy(domain, quietly: true)
    return .failure(BuildError(message))
  }

  /// Returns every frame of the domain to the allocator and forgets it.
  /// `failed`: it counts as a domain that did not end cleanly, whatever its shutdown reason.
  public static func destroy(_ domain: Domain, quietly: Bool = false, failed: Bool = false) {
    for vcpu in domain.vcpus {
      VCPUTimers.cancelAll(vcpu)
      unsafe Scheduler.policy?.remove(vcpu)
      ArchVCPU.destroy(vcpu)
    }
    // Ports closed (peers notified) while shared_info still exists; then nothing may reach it.
    GuestConsoles.ended(domain)
    let hadStore = GuestXenstore.detach(domain)
    Events.domainDestroyed(domain)
    // The hypervisor's references go with the p2m's (nothing reaches those pages any more); a
    // frame is freed by whichever drops its last reference.
    for vcpu in domain.vcpus { vcpu.vcpuInfoAddress = 0 }
    // Its mappings of others' grants go first; its own granted frames that others still map
    // stay (referenced) until they unmap them (GrantTables).
    let returned = 2 * domain.vcpus.count + GrantTables.domainDestroyed(domain) {
      domain.changeP2M(by: nil) { $0.destroyWithHolds() }
    }
    // Its nodes go last (GuestXenstore.ended says why).
    if hadStore { GuestXenstore.ended(domain) }
    if let rest = domain.console.flush() { Log.domain(domain.id, rest) }
    domain.state = .dead
    let clean = domain.shutdownReason?.isClean ?? false
    if !quietly {
      var ran: UInt64 = 0
      for vcpu in domain.vcpus { ran &+= vcpu.runstate.times.0 }
      Log.info("domain \(domain.id) (\(domain.nameString)): destroyed, \(returned) frames returned, \(domain.continuations) hypercall continuations, ran \(ran / 1_000_000) ms")
      if domain.startedAt != 0 {
        Log.info("domain \(domain.id) (\(domain.nameString)): " + ExitClass.summary(domain, lifetimeNanoseconds: Clock.now() - domain.startedAt))
      }
    }
    Domains.remove(domain, cleanly: (clean || quietly) && !failed)
    checkIsolation(after: "domain \(domain.id) (\(domain.nameString)) was destroyed")
  }

  /// `isolationcheck`: the frame table against every p2m (`IsolationCheck`); a disagreement
  /// is a hypervisor bug, and the run stops with the frames named.
  public static func checkIsolation(after event: String, quietly: Bool = true) {
    guard unsafe IsolationCheck.enabled else { return }
    let domains = Domains.all.filter { $0.state != .dead }
    let (problems, frames) = IsolationCheck.run(domains)
    if problems.isEmpty {
      if !quietly { Log.info("isolation check: \(frames) frames of \(domains.count) domain(s) agree with the frame table (\(event))") }
      return
    }
    for problem in problems { Log.error("isolation check: \(problem)") }
    Log.error("isolation check failed after \(event)")
    Power.exit(.panic)
  }
}

/// Writes into a domain's guest-physical memory through its nested page table (the builder's
/// view: no vcpu, no guest page tables yet).
struct GuestPhysicalWriter {
  let npt: NestedPageTable

  func write(_ bytes: [UInt8], at gpa: UInt64) -> Bool {
    GuestMemory.eachPage(from: gpa, count: bytes.count) { address, done, chunk in
      guard let (machine, _) = npt.translate(address) else { return false }
      return PhysicalMemory.write(Array(bytes[done..<(done + chunk)]), to: machine)
    }
  }

  func copy(fromMachine source: UInt64, to gpa: UInt64, count: Int) -> Bool {
    GuestMemory.eachPage(from: gpa, count: count) { address, done, chunk in
      guard let (machine, _) = npt.translate(address) else { return false }
      return PhysicalMemory.copy(from: source + UInt64(done), to: machine, count: chunk)
    }
  }
}
#endif
