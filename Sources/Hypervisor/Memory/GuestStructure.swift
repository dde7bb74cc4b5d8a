import XenPublic

/// A structure a guest hands the hypervisor by address: one of xen_public.h's (or a plain
/// integer, for the elements of a guest array). It is copied whole, in one go, into a value of
/// this type, and only the copy is looked at: what the guest changes afterwards cannot reach a
/// check already made (no double fetch).
///
/// Only C structs of plain integers (and integers) conform: they have `init()` (all zeroes), no
/// references, and any bit pattern is a valid value of them, which is what makes a copy from
/// bytes meaningful.
public protocol GuestStructure {
  init()
}

extension GuestStructure {
  /// The bytes a guest's copy spans: C's `sizeof`, tail padding included, which is what Xen's
  /// copy_from_guest / copy_to_guest move (xen_hvm_evtchn_upcall_vector is 5 bytes of fields
  /// in 8), so a structure whose padding runs into an unmapped page fails here as it does under
  /// Xen. Swift's stride is that for any type (for an imported C struct, its size is too).
  @inline(__always) public static var guestSize: Int { MemoryLayout<Self>.stride }

  /// The structure from the `guestSize` bytes a guest laid out (little-endian, Xen's layout);
  /// nil when the count is not that.
  public init?(bytes: [UInt8]) {
    guard bytes.count == Self.guestSize else { return nil }
    self.init()
    unsafe withUnsafeMutableBytes(of: &self) { target in        // unsafe: this value's own bytes, at most guestSize of them
      unsafe bytes.withUnsafeBytes { unsafe target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(target.count))) }
    }
  }

  /// Its `guestSize` bytes, to copy out to a guest (tail padding as zeroes).
  public var bytes: [UInt8] {
    var out = unsafe withUnsafeBytes(of: self) { unsafe [UInt8]($0) }    // unsafe: this value's own bytes
    while out.count < Self.guestSize { out.append(0) }
    return out
  }
}

extension UInt8: GuestStructure {}
extension UInt16: GuestStructure {}
extension UInt32: GuestStructure {}
extension UInt64: GuestStructure {}

extension xen_memory_reservation: GuestStructure {}
extension xen_add_to_physmap: GuestStructure {}
extension xen_memory_map: GuestStructure {}
extension e820entry: GuestStructure {}
extension xen_feature_info: GuestStructure {}
extension xen_platform_parameters: GuestStructure {}
extension sched_shutdown: GuestStructure {}
extension sched_poll: GuestStructure {}
extension vcpu_runstate_info: GuestStructure {}
extension vcpu_register_runstate_memory_area: GuestStructure {}
extension vcpu_set_periodic_timer: GuestStructure {}
extension vcpu_set_singleshot_timer: GuestStructure {}
extension vcpu_register_vcpu_info: GuestStructure {}
extension vcpu_hvm_context: GuestStructure {}
extension xen_hvm_param: GuestStructure {}
extension xen_hvm_evtchn_upcall_vector: GuestStructure {}
extension evtchn_alloc_unbound: GuestStructure {}
extension evtchn_bind_interdomain: GuestStructure {}
extension evtchn_bind_virq: GuestStructure {}
extension evtchn_bind_ipi: GuestStructure {}
extension evtchn_close: GuestStructure {}
extension evtchn_send: GuestStructure {}
extension evtchn_unmask: GuestStructure {}
extension evtchn_status: GuestStructure {}
extension evtchn_bind_vcpu: GuestStructure {}
extension evtchn_reset: GuestStructure {}
extension evtchn_init_control: GuestStructure {}
extension evtchn_expand_array: GuestStructure {}
extension evtchn_set_priority: GuestStructure {}
extension gnttab_query_size: GuestStructure {}
extension gnttab_setup_table: GuestStructure {}
extension gnttab_set_version: GuestStructure {}
extension gnttab_get_version: GuestStructure {}
extension gnttab_map_grant_ref: GuestStructure {}
extension gnttab_unmap_grant_ref: GuestStructure {}
extension gnttab_copy: GuestStructure {}
