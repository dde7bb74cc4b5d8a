#if os(none)
import GuestSupport

/// One vcpu's runstate (struct vcpu_runstate_info): its state and the ns it has spent in each.
public struct Runstate {
  public var state: Int32
  public var stateEntryTime: UInt64
  public var running: UInt64
  public var runnable: UInt64
  public var blocked: UInt64
  public var offline: UInt64

  public static let stateRunning = Int32(GS_RUNSTATE_running)
  public static let stateRunnable = Int32(GS_RUNSTATE_runnable)
  public static let stateBlocked = Int32(GS_RUNSTATE_blocked)
  public static let stateOffline = Int32(GS_RUNSTATE_offline)
}

/// Areas a vcpu registers so the hypervisor keeps them up to date (xen/include/public/vcpu.h).
public enum VCPUAreas {
  /// VCPUOP_register_vcpu_info {mfn (a gfn for PVH), offset, rsvd}: moves vcpu `vcpu`'s
  /// vcpu_info (64 bytes, not crossing a page) to `address`. On success the event and time code
  /// use the new place.
  @discardableResult
  public static func registerVCPUInfo(vcpu: UInt32, at address: UInt64) -> Int64 {
    var arg = gs_vcpu_register_vcpu_info(mfn: address >> 12, offset: UInt32(address & 0xFFF), rsvd: 0)
    let r = Xen.withArgument(&arg) { Xen.vcpuOp(UInt64(GS_VCPUOP_register_vcpu_info), vcpu: UInt64(vcpu), $0) }
    if r == 0 { SharedInfo.recordVCPUInfo(vcpu, at: address) }
    return r
  }

  /// VCPUOP_register_runstate_memory_area {addr}: the hypervisor writes vcpu `vcpu`'s
  /// vcpu_runstate_info (48 bytes; 44 in a 32-bit guest) at `area` (a guest virtual address) whenever it changes.
  @discardableResult
  public static func registerRunstate(vcpu: UInt32, at area: UnsafeMutablePointer<gs_vcpu_runstate_info>) -> Int64 {
    var arg = gs_vcpu_register_runstate_memory_area(addr: Xen.address(area))
    return Xen.withArgument(&arg) {
      Xen.vcpuOp(UInt64(GS_VCPUOP_register_runstate_memory_area), vcpu: UInt64(vcpu), $0)
    }
  }

  /// A consistent copy of a registered runstate area (Linux's xen_get_runstate_snapshot): read
  /// state_entry_time, the whole area, state_entry_time again; retry while they differ or the
  /// XEN_RUNSTATE_UPDATE bit says an update is in progress.
  public static func read(_ area: UnsafeMutablePointer<gs_vcpu_runstate_info>) -> Runstate {
    // state_entry_time at 8 and time[] at 16; at 4 and 12 in a 32-bit guest (uint64_t is 4-byte
    // aligned in i386 structures).
    let raw = UnsafeMutableRawPointer(area)
    let entry = (raw + Int(gs_runstate_entry_time_offset())).assumingMemoryBound(to: UInt64.self)
    let times = (raw + Int(gs_runstate_time_offset())).assumingMemoryBound(to: UInt64.self)
    let state = raw.assumingMemoryBound(to: UInt32.self)
    var snapshot = Runstate(state: 0, stateEntryTime: 0, running: 0, runnable: 0, blocked: 0, offline: 0)
    for _ in 0..<1000 {
      let before = gs_load64(entry)
      snapshot = Runstate(
        state: Int32(bitPattern: gs_load32(state)), stateEntryTime: before,
        running: gs_load64(times), runnable: gs_load64(times + 1),
        blocked: gs_load64(times + 2), offline: gs_load64(times + 3))
      if gs_load64(entry) == before && before & GS_RUNSTATE_UPDATE == 0 { break }
    }
    snapshot.stateEntryTime &= ~GS_RUNSTATE_UPDATE
    return snapshot
  }
}
#endif
