#if os(none)
import GuestSupport

/// The shared_info page (xen/include/public/xen.h): the first 32 vcpus' vcpu_info (event
/// selector, upcall flag, time), the 2-level event bitmaps and the wallclock. The guest places it
/// with XENMEM_add_to_physmap(XENMAPSPACE_shared_info) on a page of its own (GuestSupport's
/// page-aligned gs_shared_info_page); guest virtual = guest physical, so the address is also the
/// pointer.
public enum SharedInfo {
  /// Where the page is once `map()` succeeded, else 0.
  nonisolated(unsafe) public private(set) static var address: UInt64 = 0
  /// vcpu_info addresses given to VCPUOP_register_vcpu_info (0 = still in shared_info).
  nonisolated(unsafe) static var registeredVCPUInfo: UnsafeMutablePointer<UInt64>? = nil
  public static let maxVCPUs = 8

  public static var isMapped: Bool { address != 0 }

  /// XENMEM_add_to_physmap {domid DOMID_SELF, size 0, space XENMAPSPACE_shared_info, idx 0,
  /// gpfn}: 0 on success. Mapping again is a no-op.
  @discardableResult
  public static func map() -> Int64 {
    if address != 0 { return 0 }
    if registeredVCPUInfo == nil {
      let table = UnsafeMutablePointer<UInt64>.allocate(capacity: maxVCPUs)
      table.initialize(repeating: 0, count: maxVCPUs)
      registeredVCPUInfo = table
    }
    let page = gs_shared_info_page_address()
    var xatp = gs_xen_add_to_physmap(
      domid: Xen.domidSelf, size: 0, space: UInt32(GS_XENMAPSPACE_shared_info), idx: 0,
      gpfn: XenPFN(truncatingIfNeeded: page >> 12))
    let r = Xen.withArgument(&xatp) { Xen.memoryOp(UInt64(GS_XENMEM_add_to_physmap), $0) }
    if r == 0 { address = page }
    return r
  }

  /// The address of vcpu `vcpu`'s vcpu_info: where VCPUOP_register_vcpu_info put it, else
  /// shared_info + 64 × vcpu.
  @inline(__always)
  public static func vcpuInfo(_ vcpu: UInt32) -> UInt64 {
    if Int(vcpu) < maxVCPUs, let table = registeredVCPUInfo, table[Int(vcpu)] != 0 { return table[Int(vcpu)] }
    return address &+ UInt64(vcpu) &* UInt64(GS_SHARED_INFO_VCPU_INFO_SIZE)
  }

  static func recordVCPUInfo(_ vcpu: UInt32, at place: UInt64) {
    guard Int(vcpu) < maxVCPUs, let table = registeredVCPUInfo else { return }
    table[Int(vcpu)] = place
  }

  /// `evtchn_upcall_pending` (u8 at 0) of vcpu `vcpu`.
  @inline(__always)
  public static func upcallPending(_ vcpu: UInt32) -> UnsafeMutablePointer<UInt8> {
    UnsafeMutablePointer<UInt8>(bitPattern: UInt(vcpuInfo(vcpu) + UInt64(GS_VCPU_INFO_UPCALL_PENDING)))!
  }

  /// The event words (selector and bitmaps) are xen_ulong_t: UInt, 64 bits in a 64-bit guest and
  /// 32 in a 32-bit one, which has 32 words of 32 ports (xen.h).
  public static let wordBits = UInt.bitWidth
  static let wordBytes = UInt64(MemoryLayout<UInt>.size)

  /// `evtchn_pending_sel` (a word at 8; 4 in a 32-bit guest) of vcpu `vcpu`: bit w = word w of
  /// evtchn_pending may have something for this vcpu.
  @inline(__always)
  public static func pendingSelector(_ vcpu: UInt32) -> UnsafeMutablePointer<UInt> {
    UnsafeMutablePointer<UInt>(bitPattern: UInt(truncatingIfNeeded: vcpuInfo(vcpu) + UInt64(GS_VCPU_INFO_PENDING_SEL)))!
  }

  /// Word `index` (below `wordBits`) of `evtchn_pending` (at 0x800): port p is bit p % wordBits
  /// of word p / wordBits.
  @inline(__always)
  public static func pendingWord(_ index: Int) -> UnsafeMutablePointer<UInt> {
    let offset = UInt64(GS_SHARED_INFO_EVTCHN_PENDING) + UInt64(index & (wordBits - 1)) * wordBytes
    return UnsafeMutablePointer<UInt>(bitPattern: UInt(truncatingIfNeeded: address + offset))!
  }

  /// Word `index` of `evtchn_mask` (at 0xA00; 0x880 in a 32-bit guest).
  @inline(__always)
  public static func maskWord(_ index: Int) -> UnsafeMutablePointer<UInt> {
    let offset = UInt64(GS_SHARED_INFO_EVTCHN_MASK) + UInt64(index & (wordBits - 1)) * wordBytes
    return UnsafeMutablePointer<UInt>(bitPattern: UInt(truncatingIfNeeded: address + offset))!
  }
}
#endif
