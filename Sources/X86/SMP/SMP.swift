#if os(none)
import Support
import Hypervisor
import Synchronization

/// Starting the application processors (APs).
///
/// The BSP copies the real-mode trampoline (entry.S) below 1 MiB, fills its parameter block
/// (page tables, stack, pcpu index, Swift entry point) and sends INIT, then STARTUP twice, as the
/// Intel/AMD multiprocessor start-up protocol asks. The AP climbs to long mode and calls
/// `apEntry`, which sets up its descriptor tables, APIC and timer and marks itself online. APs
/// start one at a time because they share the parameter block; their PerCPU objects all exist
/// before the first one starts.
public enum SMP {
  static let stackBytes: UInt64 = 64 << 10

  /// Starts every AP in `apicIDs` (the BSP excluded); returns how many came online.
  public static func startAPs(apicIDs: [UInt32]) -> Int {
    let trampoline = UInt64(AP_TRAMPOLINE_BASE)
    let size = Int(hv_ap_trampoline_size())
    guard let code = PhysicalMemory().read(hv_ap_trampoline_address(), count: size),
          PhysicalMemory.write(code, to: trampoline)
    else {
      Log.error("smp: cannot place the AP trampoline")
      return 0
    }
    // Every PerCPU object exists before the first AP runs: APs read `PCPUs.all` without a lock,
    // so it must never change (or reallocate) once one of them is up.
    var cpus: [PerCPU] = []
    for apicID in apicIDs {
      guard PCPUs.count < Int(HV_MAX_PCPUS) else {
        Log.warning("smp: more than \(HV_MAX_PCPUS) pcpus; the rest stay offline")
        break
      }
      cpus.append(PCPUs.add(apicID: apicID))
    }
    var started = 0
    for cpu in cpus {
      guard let stack = Frames.allocate(order: Frames.order(forBytes: stackBytes)) else {
        Log.error("smp: no memory for pcpu \(cpu.index)'s stack; it stays offline")
        continue
      }
      PCPUs.setStack(cpu, bottom: stack, top: stack + stackBytes)
      PhysicalMemory.write64(trampoline + UInt64(AP_PARAM_CR3), hv_read_cr3())
      PhysicalMemory.write64(trampoline + UInt64(AP_PARAM_STACK), stack + stackBytes)
      PhysicalMemory.write64(trampoline + UInt64(AP_PARAM_INDEX), UInt64(cpu.index))
      PhysicalMemory.write64(trampoline + UInt64(AP_PARAM_ENTRY), unsafe unsafeBitCast(apEntryPointer, to: UInt64.self))

      LocalAPIC.sendINIT(to: cpu.apicID)
      spinDelay(tscTicks: Clock.ticks(fromNanoseconds: 10_000_000))
      for _ in 0..<2 {
        LocalAPIC.sendStartup(to: cpu.apicID, page: trampoline)
        spinDelay(tscTicks: Clock.ticks(fromNanoseconds: 200_000))
      }
      // Under emulation an AP can take a while; give it up to 5 s before giving up on it.
      let deadline = CPU.rdtsc() &+ Clock.ticks(fromNanoseconds: 5_000_000_000)
      while !cpu.online.load(ordering: .acquiring) && CPU.rdtsc() < deadline { hv_pause() }
      if cpu.online.load(ordering: .acquiring) {
        started += 1
      } else {
        // It keeps its PerCPU entry (offline) and is never scheduled; stop here, since an AP
        // that wakes up late would find the trampoline's parameters changed under it.
        Log.error("smp: pcpu \(cpu.index) (APIC ID \(cpu.apicID)) did not come online; no more APs are started")
        break
      }
    }
    return started
  }

  static let apEntryPointer: @convention(c) (UInt64) -> Void = apEntry
}

/// First Swift code on an AP: long mode, its own stack, interrupts off.
@c(hv_ap_entry)
public func apEntry(_ index: UInt64) {
  hv_set_this_cpu(UInt32(index))
  DescriptorTables.loadGDTAndTSS()
  DescriptorTables.loadIDT()
  LocalAPIC.enable()
  let cpu = PCPUs.current
  Timers.startOnThisCPU()
  if unsafe SVM.ioPermissionMap != 0 && !SVM.enableOnThisCPU() {
    Log.error("smp: pcpu \(cpu.index) could not enable SVM")
  }
  Log.info("smp: pcpu \(cpu.index) online (APIC ID \(cpu.apicID))")
  cpu.online.store(true, ordering: .releasing)
  RunLoop.enter()
}
#endif
