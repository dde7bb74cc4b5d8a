/// guest-fuzz: calls every hypercall and sub-operation, and executes the intercepted instructions,
/// with arguments drawn from a seeded generator, on two vcpus at once, for a time or call budget.
/// The hypervisor must answer all of it without crashing, hanging or letting it reach another
/// domain; the guest itself must survive too, so it keeps away from what legitimately ends it
/// (docs/security.md, "The fuzzer", lists what it leaves out and why).
///
/// Options: `seed=<n>` (default 1), `seconds=<n>` of system time (default 60), `calls=<n>` (stop
/// after this many on each vcpu; default no limit), `instructions=1` (also the intercepted
/// instructions), `mmio=0` (without the memory accesses aimed at addresses with no RAM, which
/// vcpu 0 makes in one call in ten), `trace` (print every call before making it, to find the
/// last one before a hypervisor crash). Output:
///
///     guest-fuzz: seed <s>, 2 vcpus, <n> s
///     guest-fuzz: <calls> calls after <t> s          (every 5 s)
///     guest-fuzz: xenstore: <n> operations through its ring[, until its port was closed]
///     guest-fuzz: survived <calls> calls in <t> ms (<h> hypercalls, <i> instructions; vcpu 0 <a>, vcpu 1 <b>)
///     guest-fuzz: done
@main
struct GuestFuzz {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-fuzz is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

/// splitmix64: one 64-bit word of state, every seed (0 too) gives a full-period sequence.
struct Random {
  var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// 0..<n (n > 0).
  mutating func below(_ n: UInt64) -> UInt64 { next() % n }
  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
  mutating func percent(_ p: Int) -> Bool { below(100) < p }
  mutating func pick(_ values: [UInt64]) -> UInt64 { values[below(values.count)] }
  mutating func pick32(_ values: [UInt32]) -> UInt32 { values[below(values.count)] }
}

/// What both vcpus share: set up by vcpu 0 before vcpu 1 starts, read-only afterwards.
struct Layout {
  /// This domain's id (CPUID leaf 0x40000004), and the ids the other domains may have.
  var domain: UInt16 = 0
  /// Where shared_info lives (Events.setUp put it there); only vcpu 0 moves it, and always back.
  var sharedHome: UInt64 = 0
  /// Unpopulated guest frames above RAM, still inside the guest's 4 GiB identity map: what
  /// populate_physmap, decrease_reservation and the shared_info moves use.
  var fresh: UInt64 = 0
  static let freshCount: UInt64 = 2048
  /// The 1 MiB scratch area's frames: RAM the guest never touches once the fuzzing starts.
  var scratch: UInt64 = 0
  static let scratchCount: UInt64 = 256
  /// Where vcpu 0 placed grant frame 0 to write its grants to itself (refs 8-15, scratch
  /// frames, the odd ones read-only) before the fuzzing, never named afterwards; the frame may
  /// move, the entries stay.
  var grantHome: UInt64 = 0
  /// The gfns map_grant_ref and unmap_grant_ref aim at half the time, so unmaps find mappings.
  static let grantWindow: UInt64 = 16
  /// A page of RAM that stays populated: the one place a vcpu_info may be registered (the
  /// hypervisor keeps writing to it).
  var vcpuInfoPage: UInt64 = 0
  /// The console ring's frame (HVM_PARAM_CONSOLE_PFN).
  var consoleRing: UInt64 = 0
  /// TSC ticks per ms, and system time and TSC when the fuzzing started: the clock both vcpus
  /// read without touching shared_info (vcpu 0 moves it).
  var tscPerMs: UInt64 = 1_000_000
  var startTime: UInt64 = 0
  var startTSC: UInt64 = 0
  var endTSC: UInt64 = 0
  var callLimit: UInt64 = 0
  var seed: UInt64 = 1
  var trace = false
  /// `instructions=1` adds the intercepted instructions on vcpu 0. Off by default for now:
  /// with them, QEMU 7.2's TCG aborts within a second of seed 1
  /// (`tcg_handle_interrupt: assertion failed: (qemu_mutex_iothread_locked())`), and which
  /// instruction sets it off is not yet known.
  var instructions = false
  /// `classes=<mask>`: which kinds of instruction `instructions=1` executes (bit n: case n of
  /// `Fuzzer.instruction`: CPUID, RDMSR, WRMSR, IN/OUT, VMMCALL, MOV to CR0/3/4, CR8/CR2 and CR
  /// reads, DR moves, HLT). Default all.
  var instructionClasses: UInt64 = 0x1FF
  /// `mmio=0` leaves out the memory accesses aimed at addresses with no RAM (`Fuzzer.mmioAccess`),
  /// which are on by default.
  var mmio = true
}

nonisolated(unsafe) var layout = Layout()
/// [0]: calls by vcpu 0, [1]: by vcpu 1, [2]: vcpu 1 finished, [3]: hypercalls, [4]: instructions,
/// [5]: vcpu 0 asks vcpu 1 to pause, [6]: vcpu 1 has paused.
nonisolated(unsafe) var counters = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)

let ms: UInt64 = 1_000_000

extension Layout {
  /// System time now, from the TSC (the pvclock formula's own source).
  func now() -> UInt64 {
    startTime &+ (CPU.rdtsc() &- startTSC) / max(1, tscPerMs) &* ms
  }
}

/// Per-vcpu places for arguments: a page of RAM (valid pointers) and four edge pages, each
/// mapped with nothing mapped after it (so an argument placed near its end straddles into an
/// unmapped or non-canonical page, and a huge count runs off into a fault, not into the guest's
/// own memory).
struct Places {
  let ram: UnsafeMutableRawPointer
  /// Virtual addresses of the edge pages.
  let edges: [UInt64]
  /// The physical pages behind them (identity-mapped too, for filling).
  let edgeBacking: [UnsafeMutableRawPointer]
  /// An edge page of its own for the areas the hypervisor keeps writing (runstate, vcpu time):
  /// nothing else is placed there, so those writes cannot turn into arguments.
  let areaEdge: UInt64
  let areaBacking: UnsafeMutableRawPointer

  init(vcpu: UInt32) {
    ram = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
    ram.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
    let step = UInt64(vcpu) * 0x2000
    // The top of the lower half (next page non-canonical), the bottom of the upper half, the top of
    // the address space (vcpu 0 only: the next byte is address 0) and a page at 512 GiB.
    let top: UInt64 = vcpu == 0 ? GS_TOP_PAGE : 0xFFFF_FFFF_FFFF_D000 - step
    edges = [0x7FFF_FFFF_F000 - step, 0xFFFF_8000_0000_0000 + step, top, 0x80_0000_0000 + step]
    var backing: [UnsafeMutableRawPointer] = []
    for va in edges {
      let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
      page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
      gs_map_page(va, UInt64(UInt(bitPattern: page)))
      backing.append(page)
    }
    edgeBacking = backing
    areaEdge = 0x100_0000_0000 + step
    areaBacking = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
    areaBacking.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
    gs_map_page(areaEdge, UInt64(UInt(bitPattern: areaBacking)))
  }
}

func run() -> Never {
  Console.print("guest-fuzz: start")
  Guest.requireHypervisor("guest-fuzz")
  let options = StartInfo.options
  layout.seed = UInt64(options.integer("seed", default: 1))
  let seconds = UInt64(options.integer("seconds", default: 60))
  layout.callLimit = UInt64(options.integer("calls", default: 0))
  layout.trace = options.value("trace") != nil
  layout.instructions = options.integer("instructions", default: 0) != 0
  layout.instructionClasses = UInt64(options.integer("classes", default: 0x1FF))
  layout.mmio = options.integer("mmio", default: 1) != 0
  for i in 0..<8 { counters[i] = 0 }

  let setUp = Events.setUp()
  guard setUp == 0, let ramEnd = StartInfo.ramEnd, ramEnd <= 0xC000_0000 else {
    Console.print("guest-fuzz: FAIL: no shared_info (\(setUp)) or no RAM end below 3 GiB")
    Xen.shutdown(.crash)
  }
  CPU.disableInterrupts()
  layout.domain = Xen.domainID ?? 0
  layout.sharedHome = SharedInfo.address >> 12
  layout.fresh = ((ramEnd + 0x3F_FFFF) & ~0x1F_FFFF) >> 12
  layout.scratch = UInt64(UInt(bitPattern: gs_scratch())) >> 12
  layout.grantHome = layout.fresh &+ Layout.freshCount &+ 16
  let placed = Grants.placeTable(at: layout.grantHome)
  if placed == 0 {
    for ref in UInt32(8)..<16 {
      Grants.grant(layout.grantHome, ref: ref, gfn: layout.scratch &+ UInt64(ref - 8), to: layout.domain, readOnly: ref & 1 == 1)
    }
  }
  // One map and unmap of its own grant, so the run shows the grants work before fuzzing them.
  let probe = Grants.map(8, of: Xen.domidSelf, at: layout.fresh &+ Layout.freshCount &+ 17)
  let unmapped = Grants.unmap(probe.handle, at: layout.fresh &+ Layout.freshCount &+ 17)
  Console.print("guest-fuzz: grants to itself: table placed \(placed), map status \(probe.status), unmap status \(unmapped.status)")
  let vcpuInfo = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
  vcpuInfo.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
  layout.vcpuInfoPage = UInt64(UInt(bitPattern: vcpuInfo)) >> 12
  var ring = gs_xen_hvm_param(domid: Xen.domidSelf, pad: 0, index: 17, value: 0)
  if Xen.withArgument(&ring, { Xen.hvmOp(1, $0) }) == 0 { layout.consoleRing = ring.value }
  calibrateClock()
  layout.endTSC = layout.startTSC &+ seconds &* 1000 &* layout.tscPerMs
  gs_put_ret_at_zero()
  Console.print("guest-fuzz: seed \(layout.seed), 2 vcpus, \(seconds) s\(layout.callLimit > 0 ? ", at most \(layout.callLimit) calls per vcpu" : "")")

  let places0 = Places(vcpu: 0)
  let places1 = Places(vcpu: 1)
  secondPlaces = places1
  var fuzzer = Fuzzer(vcpu: 0, places: places0)
  // The xenstore generator's first, long burst before vcpu 1 starts: vcpu 1's event-channel
  // calls close random low ports, the store's among them, and once it is closed nothing
  // reaches the store again.
  fuzzer.xenstoreRing()
  xenstoreSecondVCPUMayRun = true
  startSecondVCPU()
  fuzzer.loop()

  // vcpu 1 may be down (it takes itself down now and then): bring it up until it has finished.
  let patience = CPU.rdtsc() &+ 30_000 &* layout.tscPerMs
  while gs_atomic_load(counters + 2) == 0 {
    if CPU.rdtsc() > patience {
      Console.print("guest-fuzz: FAIL: vcpu 1 did not finish within 30 s of vcpu 0 (\(gs_atomic_load(counters + 1)) calls)")
      Xen.shutdown(.crash)
    }
    _ = Xen.vcpuOp(1, vcpu: 1)
    Xen.yield()
  }
  let elapsed = (CPU.rdtsc() &- layout.startTSC) / max(1, layout.tscPerMs)
  let first = gs_atomic_load(counters), second = gs_atomic_load(counters + 1)
  Console.print("\nguest-fuzz: xenstore: \(xenstoreOperations) operations through its ring\(xenstorePortGone ? ", until its port was closed" : "")")
  // On a line of its own: the fuzz's one-byte console writes (~) leave a partial line, and the
  // hypervisor cuts long lines, which could cut this one (FuzzRun looks for it whole).
  Console.print("\nguest-fuzz: survived \(first &+ second) calls in \(elapsed) ms (\(gs_atomic_load(counters + 3)) hypercalls, \(gs_atomic_load(counters + 4)) instructions; vcpu 0 \(first), vcpu 1 \(second))")
  Console.print("guest-fuzz: done")
  Xen.shutdown(.poweroff)
}

/// TSC ticks per ms of system time, measured over 20 ms while shared_info is where GuestKit
/// reads it.
func calibrateClock() {
  let start = SystemTime.now(), tsc = CPU.rdtsc()
  var spins = 0
  while SystemTime.now() < start &+ 20 * ms && spins < 100_000_000 {
    CPU.pause()
    spins += 1
  }
  let end = SystemTime.now(), endTSC = CPU.rdtsc()
  let perMs = (endTSC &- tsc) / max(1, (end &- start) / ms)
  layout.tscPerMs = max(1, perMs)
  layout.startTime = end
  layout.startTSC = endTSC
}

nonisolated(unsafe) var secondPlaces: Places? = nil

func startSecondVCPU() {
  if let failed = Xen.startSecondVCPU() {
    Console.print("guest-fuzz: FAIL: vcpu 1 could not be started: \(failed.call) returned \(failed.result)")
    Xen.shutdown(.crash)
  }
}

/// vcpu 1 starts here (guest_ap_start64), interrupts off, and stays so.
@c(guest_secondary_main)
public func secondaryMain(_ vcpuID: UInt64) {
  CurrentVCPU.record(UInt32(truncatingIfNeeded: vcpuID))
  var fuzzer = Fuzzer(vcpu: 1, places: secondPlaces!)
  fuzzer.loop()
  gs_atomic_store(counters + 2, 1)
  while true { Xen.yield() }
}
#endif
