/// guest-hello: the smallest useful guest. Prints a greeting, asks the hypervisor for its version,
/// extra version and feature bits, prints its command line, and powers off. With `crash=pagefault`,
/// `crash=trap`, `crash=msr` (an unknown MSR: the hypervisor injects #GP), `crash=vmrun` (the
/// hypervisor injects #UD), `crash=rdpmc` (#GP) or `crash=invlpga` (#UD) on its command line it
/// ends in that exception instead. With
/// `shutdown=reboot|crash|suspend` (and `shutdown-below-domid=N`, `shutdown-at-ms=T`) it shuts
/// down for that reason.
/// With `debug-registers=N` it puts its own addresses in DR0-DR3 and checks, across N yields of
/// its pcpu, that it finds them there each time (another domain on the same pcpu does the same
/// with its own).
@main
struct GuestHello {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-hello is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

/// Where shared_info is mapped: in the MMIO hole, where nothing else is.
let sharedInfo: UInt64 = 0xFEFF_0000

func run() -> Never {
  Console.print("hello from guest-hello")
  #if arch(i386)
  // The 32-bit build: which paging mode boot asked for (`paging=`), as the CPU has it now.
  let names: [StaticString] = ["off", "pae", "legacy 4 MiB pages", "legacy 4 KiB pages"]
  let mode = Int(gs_paging_mode())
  Console.print("guest-hello: 32-bit, paging \(mode < names.count ? names[mode] : "?") (cr0 \(hex(CPU.cr0)), cr4 \(hex(CPU.cr4)))")
  #endif
  if Xen.present {
    let (major, minor) = Xen.version()
    Console.print("xen version \(major).\(minor)")

    // XENVER_extraversion (1): a 16-byte, NUL-terminated string.
    var extra = [UInt8](repeating: 0, count: 16)
    let r = extra.withUnsafeMutableBytes { Xen.xenVersion(1, Xen.address($0.baseAddress)) }
    if r < 0 {
      Console.print("xen extraversion: error \(r)")
    } else {
      Console.print("xen extraversion: ", bytes: extra.prefix { $0 != 0 })
    }

    // XENVER_get_features (6): struct xen_feature_info { u32 submap_idx; u32 submap; }.
    var features: (UInt32, UInt32) = (0, 0)
    let f = withUnsafeMutableBytes(of: &features) { Xen.xenVersion(6, Xen.address($0.baseAddress)) }
    if f < 0 {
      Console.print("xen features[0]: error \(f)")
    } else {
      Console.print("xen features[0]: \(hex(UInt64(features.1), digits: 8))")
    }
    // AMD's memory-configuration MSRs, which Linux reads at every boot: Xen answers guests
    // without a #GP (MtrrFixDramEn in SYSCFG, zero tops of memory).
    Console.print("amd msrs: syscfg \(hex(gs_rdmsr(0xC001_0010))) top_mem1 \(hex(gs_rdmsr(0xC001_001A))) top_mem2 \(hex(gs_rdmsr(0xC001_001D)))")
  } else {
    Console.print("no hypervisor: skipping the Xen calls")
  }
  let cmdline = StartInfo.commandLine
  if cmdline.isEmpty {
    Console.print("cmdline: (none)")
  } else {
    Console.print("cmdline: ", bytes: cmdline)
  }
  // shared_info and the time in it: map the page (in the MMIO hole, where nothing else is), then
  // read this vcpu's system time twice through the pvclock formula: it must be sane and advance.
  var sharedInfoMapped = false
  if Xen.present {
    #if arch(i386)
    // Xen lays shared_info out for 32- or 64-bit guests by the caller's mode when the guest sets
    // HVM_PARAM_CALLBACK_IRQ (hvm_latch_shinfo_size), and until then a 32-bit guest sees the
    // 64-bit layout. So set the callback vector first, as a 32-bit Linux does before it reads
    // the wallclock: with the upcall entry in the IDT and interrupts off, nothing arrives.
    gs_install_upcall_vector(Events.callbackVector)
    var callback = gs_xen_hvm_param(
      domid: Xen.domidSelf, pad: 0, index: UInt32(GS_HVM_PARAM_CALLBACK_IRQ),
      value: (UInt64(GS_HVM_CALLBACK_TYPE_VECTOR) << 56) | UInt64(Events.callbackVector))
    let latched = Xen.withArgument(&callback) { Xen.hvmOp(UInt64(GS_HVMOP_set_param), $0) }
    if latched != 0 { Console.print("guest-hello: HVM_PARAM_CALLBACK_IRQ: FAIL (\(latched))") }
    #endif
    var xatp = gs_xen_add_to_physmap(domid: UInt16(GS_DOMID_SELF), size: 0, space: UInt32(GS_XENMAPSPACE_shared_info), idx: 0, gpfn: XenPFN(sharedInfo >> 12))
    let mapped = withUnsafeMutableBytes(of: &xatp) { Xen.memoryOp(UInt64(GS_XENMEM_add_to_physmap), Xen.address($0.baseAddress)) }
    sharedInfoMapped = mapped == 0
    var first = gs_vcpu_time_info(), second = gs_vcpu_time_info()
    if mapped == 0 && gs_read_time_info(sharedInfo, 0, &first) != 0 {
      let t1 = gs_pvclock_ns(&first, CPU.rdtsc())
      for _ in 0..<100_000 { gs_barrier() }
      _ = gs_read_time_info(sharedInfo, 0, &second)
      let t2 = gs_pvclock_ns(&second, CPU.rdtsc())
      let wallclock = UInt64(UnsafePointer<UInt32>(bitPattern: UInt(sharedInfo + UInt64(GS_SHARED_INFO_WC_SEC)))!.pointee)
      let ok = first.tsc_to_system_mul != 0 && t1 > 0 && t2 > t1 && wallclock > 1_600_000_000
      Console.print("pvclock: system time \(t1 / 1_000_000) ms then \(t2 / 1_000_000) ms, wallclock \(wallclock) s: \(ok ? "ok" : "FAIL")")
    } else {
      Console.print("pvclock: FAIL (add_to_physmap returned \(mapped))")
    }
  }
  // debug-registers=N: DR0-DR3 are this vcpu's. A pattern of its own (its domain id in the top
  // bits of a canonical lower-half address), then N yields, each followed by a look.
  let yields = StartInfo.options.integer("debug-registers", default: 0)
  if yields > 0 && Xen.present {
    let id = UInt64(Xen.domainID ?? 0)
    func pattern(_ n: Int) -> UInt64 { (id << 40) | (UInt64(n + 1) << 12) | 0x5A0 }
    for n in 0..<4 { gs_write_dr(Int32(n), pattern(n)) }
    var lost = 0, firstLost = ""
    for round in 0..<yields {
      Xen.yield()
      for n in 0..<4 where gs_read_dr(Int32(n)) != pattern(n) {
        if lost == 0 { firstLost = "round \(round): DR\(n) \(hex(gs_read_dr(Int32(n))))" }
        lost += 1
      }
    }
    Console.print("debug registers: \(yields) yields, own DR0-DR3 \(lost == 0 ? "kept: ok" : "lost \(lost) times (first \(firstLost)): FAIL")")
  }
  // crash=pagefault | crash=trap: end in an exception instead (tests the guest's exception report
  // "guest: exception N at RIP ..." and that a crashing guest ends only itself).
  if let how = StartInfo.options.value("crash") {
    if how.elementsEqual("pagefault".utf8) {
      Console.print("guest-hello: crashing with a page fault")
      #if arch(x86_64)
      let p = UnsafeMutablePointer<UInt64>(bitPattern: 0x7fff_ffff_f000)!
      p.pointee = 1
      #else
      Console.print("guest-hello: no unmapped address in a 32-bit guest (all 4 GiB are mapped)")
      #endif
    } else if how.elementsEqual("msr".utf8) {
      // An MSR nobody implements: the hypervisor must inject #GP (vector 13) into this guest.
      Console.print("guest-hello: reading an unknown MSR")
      Console.print("guest-hello: MSR read returned \(gs_rdmsr(0xDEAD_0000))")
    } else if how.elementsEqual("vmrun".utf8) {
      // A nested VMRUN: the hypervisor must inject #UD (vector 6) into this guest.
      Console.print("guest-hello: executing vmrun")
      gs_vmrun()
    } else if how.elementsEqual("rdpmc".utf8) {
      // RDPMC of counter 0: no performance counters are offered, the hypervisor injects #GP.
      Console.print("guest-hello: executing rdpmc")
      _ = gs_rdpmc_probe(0)
    } else if how.elementsEqual("invlpga".utf8) {
      // INVLPGA (an SVM instruction): the hypervisor injects #UD.
      Console.print("guest-hello: executing invlpga")
      _ = gs_invlpga_probe()
    } else if how.elementsEqual("trap".utf8) {
      Console.print("guest-hello: crashing with a Swift runtime trap")
      let zero = StartInfo.options.integer("crash-divisor", default: 0)
      Console.print("guest-hello: 1 / 0 = \(1 / zero)")
    }
  }
  // shutdown=reboot|crash|suspend: end with that reason instead of poweroff, while this domain's
  // id is below `shutdown-below-domid` (default: always). A restarted domain gets a new id, so
  // "reboot below 3" reboots twice and then powers off (tests on_reboot = "restart").
  if let how = StartInfo.options.value("shutdown") {
    let reasons: [(String, ShutdownReason)] = [("reboot", .reboot), ("crash", .crash), ("suspend", .suspend)]
    let below = StartInfo.options.integer("shutdown-below-domid", default: Int(UInt16.max) + 1)
    let domid = Int(Xen.domainID ?? 0)
    // shutdown-at-ms=T: not before system time T (yielding meanwhile), so that a test can act
    // first (switch the console input) while the domain still runs.
    let at = UInt64(max(0, StartInfo.options.integer("shutdown-at-ms", default: 0))) &* 1_000_000
    var time = gs_vcpu_time_info()
    while at > 0, sharedInfoMapped, gs_read_time_info(sharedInfo, 0, &time) != 0, gs_pvclock_ns(&time, CPU.rdtsc()) < at {
      Xen.yield()
    }
    if let reason = reasons.first(where: { how.elementsEqual($0.0.utf8) })?.1, domid < below {
      Console.print("guest-hello: domain \(domid): shutdown(\(String(decoding: how, as: UTF8.self)))")
      Xen.shutdown(reason)
    }
  }
  Console.print("guest-hello: done")
  Xen.shutdown(.poweroff)
}
#endif
