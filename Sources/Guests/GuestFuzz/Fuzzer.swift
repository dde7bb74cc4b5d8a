#if os(none)
import GuestKit
import GuestSupport

/// Boundary values for 64-bit fields.
let wide: [UInt64] = [
  0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
  0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0x4000_0000_0000_0000, 0x3FFF_FFFF_FFFF_FFFF,
  0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE, 0x7FFF_FFFF_F000, 0xFFFF_8000_0000_0000,
]
/// Boundary values for 32-bit fields.
let narrow: [UInt32] = [0, 1, 2, 3, 7, 8, 31, 32, 63, 64, 127, 128, 255, 4095, 4096, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]

/// DOMID_SELF, DOMID_IO/XEN/COW/INVALID/IDLE, dom0 and the first few domains (this one and the
/// bystanders among them), and nonsense.
let domainIDs: [UInt64] = [0x7FF0, 0x7FF1, 0x7FF2, 0x7FF3, 0x7FF4, 0x7FFF, 0, 1, 2, 3, 4, 0x7FEF, 0xFFFF, 0x8000]

/// The hypercalls that have structured arguments here; every other number gets random registers.
let structuredHypercalls: Set<UInt64> = [12, 15, 17, 18, 20, 24, 29, 32, 34]

/// One vcpu's fuzzing: its generator, its places for arguments and its counters.
struct Fuzzer {
  let vcpu: UInt32
  let places: Places
  var random: Random
  var calls: UInt64 = 0
  var nextProgress: UInt64 = 0
  /// Code pages for instructions at page ends (vcpu 0): two consecutive identity-mapped pages.
  let code: UnsafeMutableRawPointer?

  init(vcpu: UInt32, places: Places) {
    self.vcpu = vcpu
    self.places = places
    random = Random(seed: layout.seed ^ (UInt64(vcpu) &* 0xA5A5_5A5A_0000_0001))
    nextProgress = layout.startTSC &+ 5_000 &* layout.tscPerMs
    if vcpu == 0 {
      let pages = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 4096)
      pages.initializeMemory(as: UInt8.self, repeating: 0xCC, count: 8192)
      code = pages
    } else {
      code = nil
    }
  }

  mutating func loop() {
    while true {
      let now = CPU.rdtsc()
      if now >= layout.endTSC { break }
      if layout.callLimit > 0 && calls >= layout.callLimit { break }
      if vcpu == 0 && now >= nextProgress {
        let total = gs_atomic_load(counters) &+ gs_atomic_load(counters + 1)
        Console.print("\nguest-fuzz: \(total) calls after \((now &- layout.startTSC) / layout.tscPerMs / 1000) s")
        nextProgress = now &+ 5_000 &* layout.tscPerMs
      }
      if vcpu == 1 && gs_atomic_load(counters + 5) != 0 {
        gs_atomic_store(counters + 6, 1)
        while gs_atomic_load(counters + 5) != 0 { Xen.yield() }
        gs_atomic_store(counters + 6, 0)
      }
      step()
      calls &+= 1
      _ = gs_atomic_add(counters + Int(vcpu), 1)
    }
  }

  /// One call: mostly hypercalls; on vcpu 0 also instructions, shared_info moves and a HLT,
  /// and now and then its local APIC (vcpu 0 only: the caught-exception record is one for the
  /// guest).
  mutating func step() {
    let roll = random.below(100)
    if vcpu == 0 && roll == 26 {
      localAPIC()
      _ = gs_atomic_add(counters + 4, 1)
      return
    }
    if vcpu == 0 && roll < 25 && layout.instructions {
      instruction()
      _ = gs_atomic_add(counters + 4, 1)
      return
    }
    if vcpu == 0 && roll >= 90 && layout.mmio {
      mmioAccess()
      _ = gs_atomic_add(counters + 4, 1)
      return
    }
    if vcpu == 0 && roll == 25 {
      haltUntilTimer()
      _ = gs_atomic_add(counters + 4, 1)
      return
    }
    hypercall()
    _ = gs_atomic_add(counters + 3, 1)
  }

  func trace(_ what: String) {
    if layout.trace { Console.print("guest-fuzz: v\(vcpu) #\(calls) \(what)") }
  }

  // MARK: Values

  mutating func u64() -> UInt64 {
    switch random.below(4) {
    case 0: return random.next()
    case 1: return random.below(4096)
    default: return random.pick(wide) &+ (random.percent(20) ? random.below(3) &- 1 : 0)
    }
  }

  mutating func u32() -> UInt32 {
    random.percent(30) ? UInt32(truncatingIfNeeded: random.next()) : random.pick32(narrow)
  }

  mutating func domid() -> UInt16 {
    if random.percent(10) { return layout.domain }
    return UInt16(truncatingIfNeeded: random.percent(85) ? random.pick(domainIDs) : random.next())
  }

  /// A port: low ones (those in use), the 2-level limit and beyond.
  mutating func port() -> UInt32 {
    random.percent(70) ? UInt32(random.below(40)) : u32()
  }

  /// A vcpu id: the two that exist, the next one, the largest and nonsense.
  mutating func vcpuID() -> UInt32 {
    let any = UInt32(truncatingIfNeeded: random.next())
    return random.pick32([0, 1, 1, 0, 2, 3, 31, 32, 127, 4095, 0xFFFF_FFFF, any])
  }

  /// A guest frame this guest may lose without harm: unpopulated space above RAM, the scratch
  /// area, the console ring, or frames that cannot exist.
  mutating func safeGFN() -> UInt64 {
    switch random.below(10) {
    case 0...5: return layout.fresh &+ random.below(Layout.freshCount)
    case 6: return layout.scratch &+ random.below(Layout.scratchCount)
    case 7: return layout.consoleRing != 0 ? layout.consoleRing : layout.fresh
    // Not the frames behind `badPointer`'s 0xFEE0_0000 and 0xFFFF_F000: a grant frame placed
    // there makes them readable, and a shutdown reason read from it (zero: poweroff) would end
    // this domain.
    case 8: return random.pick([1 << 40, (1 << 40) - 1, 1 << 52, (1 << 36) - 1, 0xFFFF_FFFF_FFFF_FFFF, 1 << 63, 0xFEDFF, 0xFEFFF, 0xFFFFE])
    default: return (layout.fresh & ~511) &+ 512 &* (1 &+ random.below(2))   // 2 MiB-aligned, for order 9
    }
  }

  // MARK: Argument placement

  /// Writes `bytes` somewhere and returns the pointer a hypercall gets for it: most often this
  /// vcpu's RAM page; else the end of an edge page (exactly, or up to 7 bytes past it, straddling
  /// into the unmapped page); else a pointer that reaches no memory at all.
  mutating func place(_ bytes: [UInt8]) -> UInt64 {
    let roll = random.below(100)
    if roll < 55 {
      let offset = random.percent(80) ? 0 : Int(random.below(UInt64(4096 - bytes.count + 1)))
      for (i, b) in bytes.enumerated() { places.ram.storeBytes(of: b, toByteOffset: offset + i, as: UInt8.self) }
      return Xen.address(places.ram) &+ UInt64(offset)
    }
    if roll < 85 {
      let which = random.below(places.edges.count)
      // Past the top of the address space is page 0, which is mapped (it holds the RET the
      // code up there returns to): a structure run past the top edge would be read from there,
      // and a shutdown reason read as 0 powers this domain off. So the top edge is used whole.
      let wraps = places.edges[which] &+ 4096 == 0
      let past = random.percent(50) || wraps ? 0 : Int(random.below(7)) + 1
      let start = max(0, 4096 - bytes.count + past)
      for (i, b) in bytes.enumerated() where start + i < 4096 {
        places.edgeBacking[which].storeBytes(of: b, toByteOffset: start + i, as: UInt8.self)
      }
      return places.edges[which] &+ UInt64(start)
    }
    return badPointer()
  }

  /// Pointers no argument can be read through: unmapped, non-canonical, wrapping, or mapped by
  /// the guest with no RAM behind them. Page 0 is left out (it holds the RET the code at the top
  /// of the address space returns to), and so is every page the other vcpu uses.
  mutating func badPointer() -> UInt64 {
    random.pick([
      0xFFFF_FFFF_FFFF_FFFF, 1 << 63, 0x0000_8000_0000_0000, 0x0000_8000_0000_0008,
      0x0000_7FFF_0000_0000, 0xDEAD_BEEF_0000_0000, 0xFFFF_7FFF_FFFF_F000, 0x80_0000_1000,
      0xFFFF_8000_0000_0000 - 8, (layout.fresh &+ Layout.freshCount &+ 64) << 12, 0xFEE0_0000, 0xFFFF_F000,
    ])
  }

  /// A fresh page with `count` safe frame numbers at its end, at an edge: a count larger than
  /// `count` reads more safe frames up to the page end and then faults.
  mutating func placeFrameList(_ count: Int) -> UInt64 {
    if random.percent(8) { return badPointer() }
    let which = random.below(places.edges.count)
    let page = places.edgeBacking[which]
    let misalign = random.percent(10) ? Int(random.below(8)) : 0
    // A misaligned list is read across two entries at once, and two safe frames make an unsafe
    // one: 1 << 40 read 4 bytes late is 0x100, this guest's code (seed 1088686473 gave it back
    // with decrease_reservation). Only all-ones words read the same from every byte: a frame
    // that cannot exist.
    for i in 0..<512 { page.storeBytes(of: misalign == 0 ? safeGFN() : UInt64.max, toByteOffset: i * 8, as: UInt64.self) }
    let n = min(max(count, 1), 512)
    return places.edges[which] &+ UInt64(4096 - n * 8 + misalign)
  }
}

/// Little-endian bytes of a structure, field by field.
struct Bytes {
  var bytes: [UInt8] = []
  mutating func u8(_ v: UInt8) { bytes.append(v) }
  mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
  mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
  mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
  mutating func pad(to size: Int) { while bytes.count < size { bytes.append(0) } }
}
#endif
