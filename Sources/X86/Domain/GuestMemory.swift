#if os(none)
import Hypervisor
import Synchronization

/// The one safe way to touch a guest's memory: copies to and from guest-physical and
/// guest-virtual addresses, with every step checked.
///
/// Guest-physical → machine goes through the domain's nested page table; guest-virtual →
/// guest-physical walks the guest's own page tables from its CR3, as the CPU would, in every
/// paging mode (`GuestPageWalk`: legacy 32-bit, PAE, 4-level long mode, large pages, present,
/// write and reserved-bit rules), or is the identity when the guest runs with paging off. A bad
/// address anywhere makes the copy fail as a whole (callers turn that into -EFAULT): it never
/// faults the hypervisor.
public struct GuestMemory {
  /// Unowned: a GuestMemory lives for one exit's copies and is never stored, and its vcpu
  /// outlives the exit.
  public unowned(unsafe) let vcpu: VCPU
  let npt: NestedPageTable
  let vmcb: VMCB

  public init(_ vcpu: __shared VCPU) {       // borrowed: stored unowned, no retain needed
    unsafe self.vcpu = vcpu
    npt = unsafe NestedPageTable(root: vcpu.domain.p2mRoot)
    vmcb = VMCB(address: vcpu.vmcb)
  }

  /// The largest single copy accepted (a bound on work done in one exit).
  public static let maximumCopy = 1 << 20

  // ---- Guest-physical ----
  public func readPhysical(_ gpa: UInt64, count: Int) -> [UInt8]? {
    copy(count: count, translate: { physical($0, write: false) }, start: gpa, into: nil)
  }

  public func writePhysical(_ gpa: UInt64, _ bytes: [UInt8]) -> Bool {
    copy(count: bytes.count, translate: { physical($0, write: true) }, start: gpa, into: bytes) != nil
  }

  // ---- Guest-virtual ----
  public func read(_ gva: UInt64, count: Int) -> [UInt8]? {
    copy(count: count, translate: { virtualToMachine($0, write: false) }, start: gva, into: nil)
  }

  public func write(_ gva: UInt64, _ bytes: [UInt8]) -> Bool {
    copy(count: bytes.count, translate: { virtualToMachine($0, write: true) }, start: gva, into: bytes) != nil
  }

  /// A small value (1, 2, 4 or 8 bytes): one translation and one load when it does not cross a
  /// page, with no buffer (every hypercall argument structure field comes this way).
  public func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at gva: UInt64) -> T? {
    let size = MemoryLayout<T>.size
    if gva & 0xFFF <= UInt64(4096 - size), let machine = virtualToMachine(gva, write: false) {
      switch size {
      case 1: return PhysicalMemory.read8(machine).map { T(truncatingIfNeeded: $0) }
      case 2: return PhysicalMemory.read16(machine).map { T(truncatingIfNeeded: $0) }
      case 4: return PhysicalMemory.read32(machine).map { T(truncatingIfNeeded: $0) }
      case 8: return PhysicalMemory.read64(machine).map { T(truncatingIfNeeded: $0) }
      default: break
      }
    }
    return read(gva, count: size)?.littleEndian(T.self, at: 0)
  }

  /// A guest structure, copied whole: one translation and one copy when it lies in one page
  /// (every hypercall argument comes this way), page by page otherwise. Optimized for speed,
  /// not size as the rest of the image, as `writeStructure` and `virtualToMachine`, for that.
  @_optimize(speed)
  public func readStructure<T: GuestStructure>(_ type: T.Type, at gva: UInt64) -> T? {
    let size = T.guestSize
    if gva & 0xFFF <= UInt64(4096 - size) {
      guard let machine = virtualToMachine(gva, write: false) else { return nil }
      return PhysicalMemory.read(type, at: machine)
    }
    return read(gva, count: size).flatMap { T(bytes: $0) }
  }

  /// Optimized for speed (see `readStructure`).
  @_optimize(speed)
  public func writeStructure<T: GuestStructure>(_ value: T, at gva: UInt64) -> Bool {
    let size = T.guestSize
    if gva & 0xFFF <= UInt64(4096 - size) {
      guard let machine = virtualToMachine(gva, write: true) else { return false }
      return PhysicalMemory.write(value, at: machine)
    }
    return write(gva, value.bytes)
  }


  /// Splits `count` bytes from `start` at 4 KiB page boundaries and calls `body(address, done,
  /// chunk)` for each piece in order (`done`: bytes before it); false as soon as `body` is. Guest
  /// memory is copied this way everywhere: each page's machine address is found separately, so a
  /// buffer that crosses into an unmapped or read-only page fails instead of overrunning.
  static func eachPage(from start: UInt64, count: Int, _ body: (_ address: UInt64, _ done: Int, _ chunk: Int) -> Bool) -> Bool {
    var done = 0
    while done < count {
      let address = start + UInt64(done)
      let chunk = min(count - done, Int(4096 - (address & 0xFFF)))
      guard body(address, done, chunk) else { return false }
      done += chunk
    }
    return true
  }

  /// A copy may end exactly at 2^64 (a structure in the last bytes of the address space, which
  /// `readLE` reads too) but not run past it.
  private func copy(count: Int, translate: (UInt64) -> UInt64?, start: UInt64, into source: [UInt8]?) -> [UInt8]? {
    guard count >= 0, count <= Self.maximumCopy else { return nil }
    let (end, overflow) = start.addingReportingOverflow(UInt64(count))
    guard !overflow || end == 0 else { return nil }
    var result: [UInt8] = []
    if source == nil { result.reserveCapacity(count) }
    let copied = Self.eachPage(from: start, count: count) { address, done, chunk in
      guard let machine = translate(address) else { return false }
      if let source { return PhysicalMemory.write(Array(source[done..<(done + chunk)]), to: machine) }
      guard let bytes = PhysicalMemory().read(machine, count: chunk) else { return false }
      result.append(contentsOf: bytes)
      return true
    }
    return copied ? result : nil
  }

  /// Through the vcpu's `P2MCache` first. GuestMemory is only made for the vcpu this pcpu
  /// runs, so nothing else touches that cache meanwhile.
  private func physical(_ gpa: UInt64, write: Bool) -> UInt64? {
    // Read before the walk: a table changed after this makes what is filled below stale.
    let generation = unsafe vcpu.cacheVersion()
    if let machine = unsafe vcpu.p2mCache.lookup(gpa, write: write, generation: generation) { return machine }
    guard let (machine, writable) = npt.translate(gpa), !write || writable else { return nil }
    unsafe vcpu.p2mCache.fill(gpa, machine: machine, writable: writable, generation: generation)
    return machine
  }

  /// Through the vcpu's `GuestWalkCache` first: a hit reads the entries the last walk of the
  /// same page read, not the p2m. Only long mode is cached: the cache compares 8-byte entries,
  /// and a 32-bit guest's 4-byte entries (legacy mode) would be read with their neighbours,
  /// past the table's end for the last one; PAE's 8-byte entries would fit, but a 32-bit
  /// guest is not on the paths the cache is for. Those modes walk every time. EFER.NXE is not
  /// in the key (it costs the hit path): a walk cached while NXE was set, through an entry with
  /// bit 63 set, still answers after the guest clears NXE, where the CPU would fault on the
  /// reserved bit; only that guest's own copy succeeds, and the next change of the entry or of
  /// CR3 ends it.
  /// Optimized for speed (see `readStructure`).
  @_optimize(speed)
  private func virtualToMachine(_ gva: UInt64, write: Bool) -> UInt64? {
    let cr0 = vmcb.cr0
    guard cr0 & (1 << 31) != 0 else { return physical(gva & 0xFFFF_FFFF, write: write) }
    guard vmcb.efer & (1 << 10) != 0 else { return walkUncached(gva, write: write, cr0: cr0) }   // not LMA: 32-bit
    let generation = unsafe vcpu.cacheVersion()
    let root = vmcb.cr3 & Self.addressMask
    let writeProtect = cr0 & (1 << 16) != 0
    // The vcpu borrowed, not retained (it outlives its exit): through the unowned property the
    // access to its cache was bracketed by a retain and a release.
    let hit = unsafe Unmanaged.passUnretained(vcpu)._withUnsafeGuaranteedRef {   // unsafe: see above
      $0.walkCache.lookup(gva, root: root, write: write, writeProtect: writeProtect, generation: generation, PhysicalMemory.self)
    }
    if let hit { return hit }
    return walkAndRemember(gva, write: write, cr0: cr0, root: root, generation: generation)
  }

  /// One byte of the guest's code at `gva`, read as data (what `Upcall.haltsNext` asks before
  /// every injection), through the vcpu's own cache of code walks (`VCPU.codeWalkCache`): with
  /// one cache for both, each injection's look at the code evicted the walk of the page the
  /// next hypercall's arguments are read from, and both were walked again on every round of
  /// an event ping-pong. Outside long mode, as any read.
  public func readCodeByte(at gva: UInt64) -> UInt8? {
    let cr0 = vmcb.cr0
    guard cr0 & (1 << 31) != 0, vmcb.efer & (1 << 10) != 0 else {
      return virtualToMachine(gva, write: false).flatMap { PhysicalMemory.read8($0) }
    }
    let generation = unsafe vcpu.cacheVersion()
    let root = vmcb.cr3 & Self.addressMask
    let writeProtect = cr0 & (1 << 16) != 0
    let hit = unsafe Unmanaged.passUnretained(vcpu)._withUnsafeGuaranteedRef {   // unsafe: see virtualToMachine
      $0.codeWalkCache.lookup(gva, root: root, write: false, writeProtect: writeProtect, generation: generation, PhysicalMemory.self)
    }
    if let machine = hit { return PhysicalMemory.read8(machine) }
    // `walkAndRemember`'s steps, for the other cache: with a parameter saying which cache to
    // fill, every hypercall's argument read (the hit path that calls it) cost 7 instructions
    // more (EVTCHNOP_send to an own port 846 -> 853, visor bench hypercall --icount).
    var record = GuestWalkCache()
    record.begin(gva, root: root, generation: generation)
    guard case .success(let gpa) = walk(gva, access: .read, cr0: cr0, efer: vmcb.efer, record: &record, recording: true),
          let machine = physical(gpa, write: false) else { return nil }
    record.finish(machine: machine, writable: false)
    unsafe vcpu.codeWalkCache = record
    return PhysicalMemory.read8(machine)
  }

  /// A 32-bit mode (legacy or PAE): walks, caching nothing. Out of line, as the long-mode miss,
  /// so the hit path stays small.
  @inline(never)
  private func walkUncached(_ gva: UInt64, write: Bool, cr0: UInt64) -> UInt64? {
    var unused = GuestWalkCache()
    guard case .success(let gpa) = walk(gva, access: write ? .write : .read, cr0: cr0, efer: vmcb.efer, record: &unused, recording: false) else { return nil }
    return physical(gpa, write: write)
  }

  /// A long-mode miss: walks, and caches the walk if it ends on a page. Apart from the hit
  /// path, which then only reads the vcpu's cache and takes no reference to the vcpu.
  @inline(never)
  private func walkAndRemember(_ gva: UInt64, write: Bool, cr0: UInt64, root: UInt64, generation: UInt64) -> UInt64? {
    var record = GuestWalkCache()
    record.begin(gva, root: root, generation: generation)
    guard case .success(let gpa) = walk(gva, access: write ? .write : .read, cr0: cr0, efer: vmcb.efer, record: &record, recording: true),
          let machine = physical(gpa, write: write) else { return nil }
    record.finish(machine: machine, writable: write)
    unsafe vcpu.walkCache = record
    return machine
  }

  /// Bits 51:12 of CR3 (`GuestPageWalk.addressMask`; a constant of this module, as the hit
  /// path reads it on every copy).
  static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000

  /// The guest-physical address `gva` reaches for a supervisor read or write, walking the
  /// guest's page tables in whatever paging mode it is in (identity with paging off).
  public func translateVirtual(_ gva: UInt64, write: Bool) -> UInt64? {
    guard case .success(let gpa) = translateVirtual(gva, access: write ? .write : .read) else { return nil }
    return gpa
  }

  /// The guest-physical address `gva` reaches for `access`, or the fault the CPU would raise
  /// (its kind, level and error code: enough to inject the #PF, with CR2 = `gva`).
  public func translateVirtual(_ gva: UInt64, access: GuestAccess) -> Result<UInt64, PageFault> {
    var unused = GuestWalkCache()
    return walk(gva, access: access, cr0: vmcb.cr0, efer: vmcb.efer, record: &unused, recording: false)
  }

  /// What the walk needs from the guest's CPUID (the host's, passed through), read on the
  /// first walk and stored in one word, so a pcpu sees all of it or none: MAXPHYADDR (leaf
  /// 0x80000008 EAX[7:0]; entry address bits from there up are reserved) in bits 7:0, PSE-36
  /// (leaf 1 EDX bit 17) in bit 8, bit 9 set once read.
  static let pagingFeatures = Atomic<Int>(0)

  /// The walk of the guest's page tables for the vcpu's CR0/CR3/CR4/EFER (GuestPageWalk does
  /// the rules), reading each entry through the p2m and recording it in `record` if given
  /// (long mode only: see `virtualToMachine`).
  private func walk(_ gva: UInt64, access: GuestAccess, cr0: UInt64, efer: UInt64, record: inout GuestWalkCache, recording: Bool) -> Result<UInt64, PageFault> {
    var features = Self.pagingFeatures.load(ordering: .relaxed)
    if features == 0 {
      features = Int(CPU.cpuid(0x8000_0008).eax & 0xFF) | (CPU.cpuid(1).edx & (1 << 17) != 0 ? 1 << 8 : 0) | (1 << 9)
      Self.pagingFeatures.store(features, ordering: .relaxed)
    }
    let walk = GuestPageWalk(cr0: cr0, cr3: vmcb.cr3, cr4: vmcb.cr4, efer: efer,
                             physicalAddressBits: features & 0xFF, pse36: features & (1 << 8) != 0)
    return walk.translate(gva, access: access) { gpa, size in
      guard let machine = physical(gpa, write: false) else { return nil }
      if size == 4 { return PhysicalMemory.read32(machine).map { UInt64($0) } }
      guard let entry = PhysicalMemory.read64(machine) else { return nil }
      if recording { record.record(entry: entry, at: machine, allowsWrite: entry & 2 != 0) }
      return entry
    }
  }
}
extension PhysicalMemory: EntryReader {
  /// An entry the walk read with `read64` before, so inside the identity map, which never
  /// shrinks: a plain Swift load. (A call to the C accessor here made the hit path retain and
  /// release the vcpu: Swift cannot see that such a call releases nothing.)
  @inline(__always) public static func readEntry(_ machine: UInt64) -> UInt64? {
    unsafe own(machine).load(as: UInt64.self)          // unsafe: read with read64 before
  }
}
#endif
