/// guest-smp: brings up a second vcpu with VCPUOP_initialise (64-bit mode, the boot vcpu's own
/// CR0/CR3/CR4/EFER, a second stack, RIP = guest_ap_start64, RDI = 1) and VCPUOP_up. Both vcpus
/// print three ticks, yielding between them. Then both race XENMEM_add_to_physmap(shared_info)
/// to different gfns, round after round ("guest-smp: shared-info-race ok …" or "… FAIL (…)").
/// vcpu 1 then sets a shared flag and takes itself down (VCPUOP_down). vcpu 0 waits for the flag
/// (bounded), prints "guest-smp: both vcpus ran" and powers off. A failure to start vcpu 1 or a
/// vcpu 1 that never finishes prints why and shuts down with reason crash.
///
/// `mode=stale-tlb` replaces the ticks and the race with an attack on the flush before reuse
/// (docs/memory.md): vcpu 1 writes a pattern to a RAM page for ever while vcpu 0 gives that page
/// back and populates fresh pages, looking for the pattern in them (docs/test-guests.md).
@main
struct GuestSMP {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-smp is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

/// Set to 1 by vcpu 1 when it has printed its ticks; touched only through gs_atomic_*. A lazily
/// initialised global: vcpu 0 touches it before vcpu 1 exists, so the initialiser runs once.
nonisolated(unsafe) let sharedFlag: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  p.initialize(to: 0)
  return p
}()

/// How many times vcpu 0 yields while waiting for vcpu 1 before it gives up.
let waitLimit = 200_000

// MARK: The shared_info race

/// Rounds of the race, and where they put shared_info: round r uses the gfns 8 GiB + 4r pages
/// and the two after it, unpopulated space the guest never touches.
let raceRounds: UInt64 = 32
let raceBase: UInt64 = 0x20_0000
/// How long (in PAUSEs, with a yield every 256) a vcpu waits for the other in the race.
let raceWaitLimit = 10_000_000

/// Words the two vcpus share in the race (touched only through gs_atomic_*): [0] the round vcpu 1
/// is to race in (0: none yet, UInt64.max: the race is over), [1] the last round vcpu 1 raced
/// in, [2] its add_to_physmap result in that round.
nonisolated(unsafe) let raceWords: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 3)
  p.initialize(repeating: 0, count: 3)
  return p
}()

/// Round `round`'s gfns: where vcpu 0 puts shared_info first, then where vcpu 0 and vcpu 1 move it.
func raceGFNs(_ round: UInt64) -> (start: UInt64, vcpu0: UInt64, vcpu1: UInt64) {
  let start = raceBase + round * 4
  return (start, start + 1, start + 2)
}

/// One wait step: PAUSE, and every 256th time SCHEDOP_yield (the other vcpu may share the pcpu).
func raceWaitStep(_ waited: Int) {
  if waited % 256 == 255 { Xen.yield() } else { CPU.pause() }
}

/// vcpu 1's side: as soon as it sees a new round, moves shared_info to its gfn of that round.
func raceOnVCPU1() {
  var last: UInt64 = 0
  var waited = 0
  while waited < raceWaitLimit {
    let round = gs_atomic_load(raceWords)
    if round == UInt64.max { return }
    if round != last {
      last = round
      let placed = Memory.placeSharedInfo(at: raceGFNs(round).vcpu1)
      gs_atomic_store(raceWords + 2, UInt64(bitPattern: placed))
      gs_atomic_store(raceWords + 1, round)
      waited = 0
      continue
    }
    raceWaitStep(waited)
    waited += 1
  }
}

/// vcpu 0's side. Each round: shared_info goes to the round's start gfn, vcpu 1 is told to go,
/// and vcpu 0 moves it too (a little later each round, from 0 to 60 PAUSEs, so the two calls
/// meet at different points). Both calls must answer 0, and afterwards the frame may be at one
/// gfn only: decrease_reservation (the one way to look at a gfn that may not be mapped without
/// faulting) must give back exactly one page at the two new gfns together, and none at the
/// start gfn. That also unmaps shared_info again for the next round. The reservation must not
/// change (no RAM is involved).
func raceOnVCPU0() {
  var report = Report("guest-smp")
  let reservation = Memory.currentReservation()
  var problem: String? = nil
  var won = (vcpu0: 0, vcpu1: 0)
  for round in 1...raceRounds {
    let gfns = raceGFNs(round)
    let first = Memory.placeSharedInfo(at: gfns.start)
    gs_atomic_store(raceWords, round)
    Guest.spin(Int(round % 4) * 20)
    let mine = Memory.placeSharedInfo(at: gfns.vcpu0)
    var waited = 0
    while gs_atomic_load(raceWords + 1) != round && waited < raceWaitLimit {
      raceWaitStep(waited)
      waited += 1
    }
    guard gs_atomic_load(raceWords + 1) == round else {
      problem = "round \(round): vcpu 1 did not move shared_info"
      break
    }
    let theirs = Int64(bitPattern: gs_atomic_load(raceWords + 2))
    let atStart = Memory.release(gfns.start)
    let at0 = Memory.release(gfns.vcpu0)
    let at1 = Memory.release(gfns.vcpu1)
    if at0 == 1 && at1 == 0 { won.vcpu0 += 1 }
    if at0 == 0 && at1 == 1 { won.vcpu1 += 1 }
    if first != 0 || mine != 0 || theirs != 0 || atStart != 0 || !((at0 == 1 && at1 == 0) || (at0 == 0 && at1 == 1)) {
      problem = "round \(round): placed \(first) at \(hex(gfns.start)), then \(mine) at \(hex(gfns.vcpu0)) (vcpu 0) and \(theirs) at \(hex(gfns.vcpu1)) (vcpu 1); pages given back there: \(atStart), \(at0), \(at1) (want 0 and exactly one 1)"
      break
    }
  }
  gs_atomic_store(raceWords, UInt64.max)
  let after = Memory.currentReservation()
  if problem == nil && after != reservation { problem = "reservation \(reservation) before the race, \(after) after" }
  report.check("shared-info-race", problem == nil,
               ok: "\(raceRounds) rounds, the last move was vcpu 0's \(won.vcpu0) times and vcpu 1's \(won.vcpu1) times",
               fail: problem ?? "")
}

// MARK: mode=stale-tlb

/// The page vcpu 1 writes and vcpu 0 gives back: in the first 2 MiB of RAM, which the domain
/// builder maps with 4 KiB pages, below the legacy area and unused by the guest.
let staleGFN: UInt64 = 0x90
let stalePattern: UInt64 = 0x4141_4141_4141_4141
/// How long vcpu 0 looks for the pattern in the new pages (system time; at most
/// `staleMaxPasses` passes over them if the clock does not advance). A stale write shows within
/// the first pass, and a correct hypervisor ends the domain within microseconds of the give-back;
/// the long bound keeps a slow vcpu 1 (a QEMU thread the host did not run for a while) from
/// looking like "no stale write seen".
let staleCheckNanoseconds: UInt64 = 500 * SystemTime.nanosecondsPerMillisecond
let staleMaxPasses = 10_000

/// Words the two vcpus share in the stale-tlb mode (touched only through gs_atomic_*): [0] 1 when
/// the mode is on (set before vcpu 1 starts), [1] 1 once vcpu 1 has written the page.
nonisolated(unsafe) let staleWords: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
  p.initialize(repeating: 0, count: 2)
  return p
}()

/// vcpu 1's side: writes the pattern to the first word of the page at `staleGFN`, for ever. It
/// never exits on its own (interrupts are off, no hypercalls), so its TLB keeps the page's
/// translation until the hypervisor makes it exit. Once the page is gone from the p2m and the
/// TLB, the next write is a nested page fault that ends the domain.
func staleWriterOnVCPU1() -> Never {
  let page = UnsafeMutablePointer<UInt64>(bitPattern: UInt(staleGFN << 12))!
  gs_atomic_store(page, stalePattern)
  gs_atomic_store(staleWords + 1, 1)
  while true { gs_atomic_store(page, stalePattern) }
}

/// vcpu 0's side. Maps shared_info (for system time) and populates the first page of a fresh
/// 2 MiB region above RAM, so that the p2m table for the new pages exists before the attack and
/// populating them allocates nothing but the pages. Waits until vcpu 1 writes, gives the page
/// back (XENMEM_decrease_reservation) and at once populates `pages=<n>` (default 64) fresh pages
/// after that first one, then reads every word of them for 500 ms: the pattern in one of them is
/// a write of vcpu 1 through a stale translation into a freed frame that came back as a new page
/// (the frame allocator hands out the lowest free frame first, so the freed one comes back soon).
/// The hypervisor must keep the frame until vcpu 1 has flushed its TLB; vcpu 1's next write is
/// then a nested page fault at the page's address, which ends the domain long before this check
/// is over.
func staleTLBOnVCPU0() -> Never {
  func fail(_ why: String) -> Never {
    Console.print("guest-smp: stale-tlb: FAIL \(why)")
    Xen.shutdown(.crash)
  }
  let pages = min(max(StartInfo.options.integer("pages", default: 64), 1), 256)
  let mapped = SharedInfo.map()
  if mapped != 0 { fail("shared_info could not be mapped: \(mapped)") }
  guard let ramEnd = StartInfo.ramEnd else { fail("no memory map") }
  let regionGFN = ((ramEnd + 0x1F_FFFF) & ~UInt64(0x1F_FFFF)) >> 12
  guard (regionGFN + UInt64(pages) + 1) << 12 <= 0xF000_0000 else { fail("RAM ends too high: \(hex(ramEnd))") }
  let prepared = Memory.populate(regionGFN)
  if prepared != 1 { fail("populating gfn \(hex(regionGFN)) returned \(prepared) (the domain needs maxmem of at least memory + 1 MiB)") }
  let gfns = UnsafeMutableBufferPointer<XenPFN>.allocate(capacity: pages)
  for i in 0..<pages { gfns[i] = XenPFN(regionGFN + 1 + UInt64(i)) }

  var waited = 0
  while gs_atomic_load(staleWords + 1) == 0 {
    if waited == raceWaitLimit { fail("vcpu 1 did not start writing") }
    raceWaitStep(waited)
    waited += 1
  }
  Guest.spin(10_000)   // vcpu 1 is in its loop by now
  Console.print("guest-smp: stale-tlb: giving back gfn \(hex(staleGFN)) while vcpu 1 writes \(hex(stalePattern)) to it; then \(pages) new pages at gfn \(hex(regionGFN + 1))")
  let released = Memory.release(staleGFN)
  let populated = Memory.populate(gfns)
  if released != 1 { fail("decrease_reservation of gfn \(hex(staleGFN)) returned \(released), want 1") }
  if populated != Int64(pages) { fail("populate_physmap returned \(populated), want \(pages)") }

  let start = SystemTime.now()
  var passes = 0
  while passes < staleMaxPasses {
    for i in 0..<pages {
      let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(gfns[i] << 12))!
      for w in 0..<512 where gs_load64(words + w) == stalePattern {
        fail("stale write landed in a new page: gfn \(hex(UInt64(gfns[i]))) word \(w) holds \(hex(stalePattern)) (pass \(passes + 1))")
      }
    }
    passes += 1
    if SystemTime.now() &- start >= staleCheckNanoseconds { break }
  }
  Console.print("guest-smp: stale-tlb: no stale write seen in \(pages) new pages (\(passes) passes)")
  Xen.shutdown(.poweroff)
}

func ticks(_ vcpu: UInt64) {
  for i in 1...3 {
    Console.print("vcpu \(vcpu): tick \(i)")
    Xen.yield()
    Guest.spin(2000)
  }
}

/// vcpu 1 starts here: guest_ap_start64 (boot.S) calls it with the vcpu id from RDI.
@c(guest_secondary_main)
public func secondaryMain(_ vcpuID: UInt64) {
  if gs_atomic_load(staleWords) == 1 { staleWriterOnVCPU1() }
  ticks(vcpuID)
  raceOnVCPU1()
  gs_atomic_store(sharedFlag, 1)
  let r = Xen.vcpuOp(2, vcpu: vcpuID)   // VCPUOP_down on itself
  Console.print("guest-smp: vcpu \(vcpuID): VCPUOP_down returned \(r), blocking")
  while true { Xen.block() }
}

func run() -> Never {
  Console.print("guest-smp: vcpu 0 starting")
  Guest.requireHypervisor("guest-smp")
  gs_atomic_store(sharedFlag, 0)   // initialise the globals before vcpu 1 can see them
  gs_atomic_store(raceWords, 0)
  let staleTLB = StartInfo.options.value("mode").map { $0.elementsEqual("stale-tlb".utf8) } ?? false
  gs_atomic_store(staleWords, staleTLB ? 1 : 0)
  gs_atomic_store(staleWords + 1, 0)

  let context = Xen.secondVCPUContext()
  Console.print("guest-smp: vcpu 1 context rip \(hex(context.cpu_regs.x86_64.rip)) rsp \(hex(context.cpu_regs.x86_64.rsp)) cr3 \(hex(context.cpu_regs.x86_64.cr3)) efer \(hex(context.cpu_regs.x86_64.efer))")

  if let failed = Xen.startSecondVCPU() {
    Console.print("guest-smp: \(failed.call) failed: \(failed.result)")
    Xen.shutdown(.crash)
  }
  Console.print("guest-smp: vcpu 1 is up")

  if staleTLB { staleTLBOnVCPU0() }
  ticks(0)
  raceOnVCPU0()

  var waited = 0
  while gs_atomic_load(sharedFlag) == 0 {
    if waited == waitLimit {
      Console.print("guest-smp: FAIL: vcpu 1 did not finish after \(waitLimit) yields")
      Xen.shutdown(.crash)
    }
    Xen.yield()
    CPU.pause()
    waited += 1
  }
  Console.print("guest-smp: both vcpus ran")
  Xen.shutdown(.poweroff)
}
#endif
