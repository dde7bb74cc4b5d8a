#if os(none)
import Hypervisor
import Synchronization

/// The one safe way to touch a guest's memory: copies to and from guest-physical and
/// guest-virtual addresses, with every step checked.
///
/// Guest-physical → machine goes through the domain's nested page table; guest-virtual →
/// guest-physical walks the guest's own page tables from its CR3, as the CPU would (4-level long
/// mode, 2 MiB and 1 GiB pages, present and write permissions), or is the identity when the
/// guest runs with paging off. A bad address anywhere makes the copy fail as a whole (callers turn
/// that into -EFAULT): it never faults the hypervisor. 32-bit paging modes (legacy and PAE) are
/// not walked yet and fail the same way.
public struct GuestMemory {
  /// Unowned: a GuestMemory lives for one exit's copies and is never stored, and its vcpu
  /// outlives the exit.
  public unowned(unsafe) let vcpu: VCPU
  let npt: NestedPageTable
  let vmcb: VMCB

  public init(_ vcpu: __shared VCPU) {       // borrowed: stored unowned, no retain needed
    self.vcpu = vcpu
    npt = NestedPageTable(root: vcpu.domain.p2mRoot)
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

  public func writeLE<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at gva: UInt64) -> Bool {
    var bytes: [UInt8] = []
    for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    return write(gva, bytes)
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

  /// One aligned 64-bit word of guest-physical memory (a page-table entry).
  func readPhysical64(_ gpa: UInt64) -> UInt64? {
    guard gpa & 7 == 0, let machine = physical(gpa, write: false) else { return nil }
    return PhysicalMemory.read64(machine)
  }

  /// Through the vcpu's `P2MCache` first. GuestMemory is only made for the vcpu this pcpu
  /// runs, so nothing else touches that cache meanwhile.
  private func physical(_ gpa: UInt64, write: Bool) -> UInt64? {
    // Read before the walk: a table changed after this makes what is filled below stale.
    let generation = NestedPageTable.generation.load(ordering: .acquiring)
    if let machine = vcpu.p2mCache.lookup(gpa, write: write, generation: generation) { return machine }
    guard let (machine, writable) = npt.translate(gpa), !write || writable else { return nil }
    vcpu.p2mCache.fill(gpa, machine: machine, writable: writable, generation: generation)
    return machine
  }

  private func virtualToMachine(_ gva: UInt64, write: Bool) -> UInt64? {
    guard let gpa = translateVirtual(gva, write: write) else { return nil }
    return physical(gpa, write: write)
  }

  /// Walks the guest's page tables. CR0.PG off: identity. Long mode: 4 levels.
  public func translateVirtual(_ gva: UInt64, write: Bool) -> UInt64? {
    let cr0 = vmcb.cr0
    if cr0 & (1 << 31) == 0 { return gva & 0xFFFF_FFFF }
    guard vmcb.efer & (1 << 10) != 0 else { return nil }               // LMA: only long mode is walked
    // Canonical check: bits 63..47 all equal.
    let top = gva >> 47
    guard top == 0 || top == 0x1FFFF else { return nil }
    let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
    var table = vmcb.cr3 & addressMask
    var level = 3
    while true {
      let index = (gva >> (12 + 9 * UInt64(level))) & 0x1FF
      guard let entry = readPhysical64(table + index * 8), entry & 1 != 0 else { return nil }
      if write && entry & 2 == 0 && cr0 & (1 << 16) != 0 { return nil }   // read-only, CR0.WP set
      let isLarge = entry & 0x80 != 0
      if level == 0 || (isLarge && (level == 1 || level == 2)) {
        let pageBits = UInt64(12 + 9 * level)
        let frame = entry & addressMask & ~((UInt64(1) << pageBits) - 1)
        return frame | (gva & ((UInt64(1) << pageBits) - 1))
      }
      table = entry & addressMask
      level -= 1
    }
  }
}
#endif
