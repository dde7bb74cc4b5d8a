import XenPublic

/// A structure a guest hands the hypervisor by address: one of xen_public.h's (or a plain
/// integer, for the elements of a guest array). It is copied whole, in one go, into a value of
/// this type, and only the copy is looked at: what the guest changes afterwards cannot reach a
/// check already made (no double fetch).
///
/// Only C structs of plain integers (and integers) conform: they have `init()` (all zeroes), no
/// references, and any bit pattern is a valid value of them, which is what makes a copy from
/// bytes meaningful.
///
/// Each has two layouts, the 64-bit guest's (native: the C struct itself) and the 32-bit
/// guest's (compat): `compatSize` and the conversions below say how the compat one maps to the
/// native value. A structure conforms through one of the two lists at the end of this file:
/// `SameLayoutInBothABIs` (the conversions are the identity) or `CompatTranslated` (a
/// `compat_*` struct of xen_public.h, converted field by field), so none can be missed.
public protocol GuestStructure {
  init()
  /// The bytes a 32-bit guest's copy spans.
  static var compatSize: Int { get }
  /// The value a 32-bit guest's `compatSize` bytes stand for; nil when the count is not that.
  init?(compatBytes: [UInt8])
  /// Its bytes as a 32-bit guest lays them out.
  var compatBytes: [UInt8] { get }
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

/// A structure laid out the same way for 32- and 64-bit guests (Xen's xlat.lst marks these "?":
/// checked, not translated): the compat copy is the native one.
public protocol SameLayoutInBothABIs: GuestStructure {}

extension SameLayoutInBothABIs {
  public static var compatSize: Int { guestSize }
  public init?(compatBytes: [UInt8]) { self.init(bytes: compatBytes) }
  public var compatBytes: [UInt8] { bytes }
}

/// A structure whose 32-bit layout differs (xlat.lst's "!"): `Compat` is its xen_public.h
/// `compat_*` struct, converted to the native value at copy-in and back at copy-out. A value
/// that does not fit the compat field (an address or frame above 4 GiB written back to a
/// 32-bit guest) is truncated, as Xen's XLAT_* macros assign it.
public protocol CompatTranslated: GuestStructure {
  associatedtype Compat: SameLayoutInBothABIs
  init(compat: Compat)
  var compat: Compat { get }
}

extension CompatTranslated {
  public static var compatSize: Int { Compat.guestSize }
  public init?(compatBytes: [UInt8]) {
    guard let compat = Compat(bytes: compatBytes) else { return nil }
    self.init(compat: compat)
  }
  public var compatBytes: [UInt8] { compat.bytes }
}

/// One element of a guest array of xen_pfn_t or xen_ulong_t (XENMEM_populate_physmap's
/// extent_start, GNTTABOP_setup_table's frame_list): 8 bytes from a 64-bit guest, 4 from a
/// 32-bit one.
public struct GuestULong: CompatTranslated, Equatable {
  public var value: UInt64
  public init() { value = 0 }
  public init(_ value: UInt64) { self.value = value }
  public init(compat: UInt32) { value = UInt64(compat) }
  public var compat: UInt32 { UInt32(truncatingIfNeeded: value) }
}

// ---- Same in both ABIs (xlat.lst "?"; XenABILayoutTests.compatIdenticalStructures) ----

extension UInt8: SameLayoutInBothABIs {}
extension UInt16: SameLayoutInBothABIs {}
extension UInt32: SameLayoutInBothABIs {}
extension UInt64: SameLayoutInBothABIs {}

extension e820entry: SameLayoutInBothABIs {}
extension xen_feature_info: SameLayoutInBothABIs {}
extension sched_shutdown: SameLayoutInBothABIs {}
extension vcpu_set_periodic_timer: SameLayoutInBothABIs {}
extension vcpu_register_vcpu_info: SameLayoutInBothABIs {}
extension vcpu_hvm_context: SameLayoutInBothABIs {}
extension xen_hvm_param: SameLayoutInBothABIs {}
extension xen_hvm_evtchn_upcall_vector: SameLayoutInBothABIs {}
extension evtchn_alloc_unbound: SameLayoutInBothABIs {}
extension evtchn_bind_interdomain: SameLayoutInBothABIs {}
extension evtchn_bind_virq: SameLayoutInBothABIs {}
extension evtchn_bind_ipi: SameLayoutInBothABIs {}
extension evtchn_close: SameLayoutInBothABIs {}
extension evtchn_send: SameLayoutInBothABIs {}
extension evtchn_unmask: SameLayoutInBothABIs {}
extension evtchn_status: SameLayoutInBothABIs {}
extension evtchn_bind_vcpu: SameLayoutInBothABIs {}
extension evtchn_reset: SameLayoutInBothABIs {}
extension gnttab_query_size: SameLayoutInBothABIs {}
extension gnttab_set_version: SameLayoutInBothABIs {}
extension gnttab_get_version: SameLayoutInBothABIs {}
extension gnttab_map_grant_ref: SameLayoutInBothABIs {}
extension gnttab_unmap_grant_ref: SameLayoutInBothABIs {}

// The compat structs themselves are plain copies.
extension compat_memory_reservation: SameLayoutInBothABIs {}
extension compat_add_to_physmap: SameLayoutInBothABIs {}
extension compat_memory_map: SameLayoutInBothABIs {}
extension compat_platform_parameters: SameLayoutInBothABIs {}
extension compat_sched_poll: SameLayoutInBothABIs {}
extension compat_vcpu_runstate_info: SameLayoutInBothABIs {}
extension compat_vcpu_register_runstate_memory_area: SameLayoutInBothABIs {}
extension compat_vcpu_set_singleshot_timer: SameLayoutInBothABIs {}
extension compat_gnttab_setup_table: SameLayoutInBothABIs {}
extension compat_gnttab_copy: SameLayoutInBothABIs {}

// ---- Translated (xlat.lst "!"): handles, xen_ulong_t, xen_pfn_t, 4-byte-aligned uint64_t ----

extension xen_memory_reservation: CompatTranslated {
  public init(compat: compat_memory_reservation) {
    self.init(extent_start: UInt64(compat.extent_start), nr_extents: UInt64(compat.nr_extents),
              extent_order: compat.extent_order, mem_flags: compat.mem_flags, domid: compat.domid)
  }
  public var compat: compat_memory_reservation {
    compat_memory_reservation(extent_start: UInt32(truncatingIfNeeded: extent_start), nr_extents: UInt32(truncatingIfNeeded: nr_extents),
                              extent_order: extent_order, mem_flags: mem_flags, domid: domid)
  }
}

extension xen_add_to_physmap: CompatTranslated {
  public init(compat: compat_add_to_physmap) {
    self.init(domid: compat.domid, size: compat.size, space: compat.space, idx: UInt64(compat.idx), gpfn: UInt64(compat.gpfn))
  }
  public var compat: compat_add_to_physmap {
    compat_add_to_physmap(domid: domid, size: size, space: space,
                          idx: UInt32(truncatingIfNeeded: idx), gpfn: UInt32(truncatingIfNeeded: gpfn))
  }
}

extension xen_memory_map: CompatTranslated {
  public init(compat: compat_memory_map) {
    self.init(nr_entries: compat.nr_entries, buffer: UInt64(compat.buffer))
  }
  public var compat: compat_memory_map {
    compat_memory_map(nr_entries: nr_entries, buffer: UInt32(truncatingIfNeeded: buffer))
  }
}

extension xen_platform_parameters: CompatTranslated {
  public init(compat: compat_platform_parameters) { self.init(virt_start: UInt64(compat.virt_start)) }
  public var compat: compat_platform_parameters {
    compat_platform_parameters(virt_start: UInt32(truncatingIfNeeded: virt_start))
  }
}

extension sched_poll: CompatTranslated {
  public init(compat: compat_sched_poll) {
    self.init(ports: UInt64(compat.ports), nr_ports: compat.nr_ports, timeout: compat.timeout)
  }
  public var compat: compat_sched_poll {
    compat_sched_poll(ports: UInt32(truncatingIfNeeded: ports), nr_ports: nr_ports, timeout: timeout)
  }
}

extension vcpu_runstate_info: CompatTranslated {
  public init(compat: compat_vcpu_runstate_info) {
    self.init(state: compat.state, state_entry_time: compat.state_entry_time, time: compat.time)
  }
  public var compat: compat_vcpu_runstate_info {
    compat_vcpu_runstate_info(state: state, state_entry_time: state_entry_time, time: time)
  }
}

extension vcpu_register_runstate_memory_area: CompatTranslated {
  public init(compat: compat_vcpu_register_runstate_memory_area) { self.init(addr: UInt64(compat.addr)) }
  public var compat: compat_vcpu_register_runstate_memory_area {
    compat_vcpu_register_runstate_memory_area(addr: UInt32(truncatingIfNeeded: addr), addr_high: 0)
  }
}

extension vcpu_set_singleshot_timer: CompatTranslated {
  public init(compat: compat_vcpu_set_singleshot_timer) {
    self.init(timeout_abs_ns: compat.timeout_abs_ns, flags: compat.flags)
  }
  public var compat: compat_vcpu_set_singleshot_timer {
    compat_vcpu_set_singleshot_timer(timeout_abs_ns: timeout_abs_ns, flags: flags)
  }
}

extension gnttab_setup_table: CompatTranslated {
  public init(compat: compat_gnttab_setup_table) {
    self.init(dom: compat.dom, nr_frames: compat.nr_frames, status: compat.status, frame_list: UInt64(compat.frame_list))
  }
  public var compat: compat_gnttab_setup_table {
    compat_gnttab_setup_table(dom: dom, nr_frames: nr_frames, status: status, frame_list: UInt32(truncatingIfNeeded: frame_list))
  }
}

extension gnttab_copy: CompatTranslated {
  /// The union `u` (a grant reference or a frame) is 32 bits in the compat layout: either way
  /// its value is the native union's low bits, zero-extended.
  public init(compat: compat_gnttab_copy) {
    func pointer(_ p: compat_gnttab_copy_ptr) -> gnttab_copy_ptr {
      var native = gnttab_copy_ptr()
      unsafe native.u.gmfn = UInt64(p.u.gmfn)   // unsafe: the C union moved whole through its widest member
      native.domid = p.domid
      native.offset = p.offset
      return native
    }
    self.init()
    source = pointer(compat.source)
    dest = pointer(compat.dest)
    len = compat.len
    flags = compat.flags
    status = compat.status
  }
  public var compat: compat_gnttab_copy {
    func pointer(_ p: gnttab_copy_ptr) -> compat_gnttab_copy_ptr {
      var compat = compat_gnttab_copy_ptr()
      unsafe compat.u.gmfn = UInt32(truncatingIfNeeded: p.u.gmfn)   // unsafe: as above
      compat.domid = p.domid
      compat.offset = p.offset
      return compat
    }
    var value = compat_gnttab_copy()
    value.source = pointer(source)
    value.dest = pointer(dest)
    value.len = len
    value.flags = flags
    value.status = status
    return value
  }
}
extension evtchn_init_control: SameLayoutInBothABIs {}
extension evtchn_expand_array: SameLayoutInBothABIs {}
extension evtchn_set_priority: SameLayoutInBothABIs {}
