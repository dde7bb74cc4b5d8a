#if os(none)
import Hypervisor
import XenABI
import Support

/// The time a Xen guest reads without asking: each vcpu's vcpu_time_info (a TSC timestamp, the
/// system time in ns at that TSC, and the scale to get from one to the other) and the domain's
/// wallclock, both in its shared_info page.
///
/// Writers follow Xen's version protocol: make `version` odd, write the fields, make it even.
/// A guest that reads an odd version, or a different version after its read, retries.
public enum GuestTime {
  // Both set once at boot (`setUp`), before any other pcpu starts; each read is marked
  // `unsafe` for that reason.
  nonisolated(unsafe) static var scale = TimeScale(tscHz: 1)
  /// Wall-clock seconds and nanoseconds at system time zero (hypervisor boot).
  nonisolated(unsafe) static var bootWallclock: (seconds: UInt64, nanoseconds: UInt32) = (0, 0)

  /// Called once time is calibrated.
  public static func setUp() {
    unsafe scale = Clock.nanosecondsPerTick
    if let seconds = RTC.secondsSinceEpoch() {
      let sinceBoot = Clock.now()
      let total = seconds * 1_000_000_000 &- sinceBoot
      unsafe bootWallclock = (total / 1_000_000_000, UInt32(total % 1_000_000_000))
    }
  }

  /// Publishes `vcpu`'s time info in its vcpu_info: where VCPUOP_register_vcpu_info put it, or
  /// in shared_info (vcpus 0-31) once the domain has mapped that.
  public static func update(_ vcpu: VCPU) {
    guard let vcpuInfo = Events.vcpuInfo(of: vcpu) else { return }
    let info = vcpuInfo + UInt64(XenABI.VCPUInfo.Offset.time)
    typealias Field = XenABI.VCPUTimeInfo.Offset
    let version = beginUpdate(info + UInt64(Field.version))
    let tscOffset = VMCB(address: vcpu.vmcb).read64(VMCB.Control.tscOffset)
    let tsc = CPU.rdtsc()
    PhysicalMemory.write64(info + UInt64(Field.tscTimestamp), tsc &+ tscOffset)
    unsafe PhysicalMemory.write64(info + UInt64(Field.systemTime), Clock.nanoseconds(fromTicks: tsc &- Clock.bootTSC))
    unsafe PhysicalMemory.write32(info + UInt64(Field.tscToSystemMul), scale.mul)
    unsafe PhysicalMemory.write8(info + UInt64(Field.tscShift), UInt8(bitPattern: scale.shift))
    PhysicalMemory.write8(info + UInt64(Field.flags), XenABI.VCPUTimeInfo.tscStableFlag)
    endUpdate(info + UInt64(Field.version), version)
  }

  /// Publishes the wallclock (time at system time zero) in the domain's shared_info, at the
  /// offsets of its layout: a 32-bit shared_info has them elsewhere, wc_sec_hi in its arch part
  /// (Xen's update_domain_wallclock_time).
  public static func updateWallclock(_ domain: Domain) {
    let page = domain.sharedInfoMachine
    guard page != 0 else { return }
    typealias Native = XenABI.SharedInfo.Offset
    typealias Compat = XenABI.Compat.SharedInfo.Offset
    let compat = domain.has32BitSharedInfo
    let wcVersion = page + UInt64(compat ? Compat.wcVersion : Native.wcVersion)
    let version = beginUpdate(wcVersion)
    unsafe PhysicalMemory.write32(page + UInt64(compat ? Compat.wcSec : Native.wcSec), UInt32(truncatingIfNeeded: bootWallclock.seconds))
    unsafe PhysicalMemory.write32(page + UInt64(compat ? Compat.wcNsec : Native.wcNsec), bootWallclock.nanoseconds)
    unsafe PhysicalMemory.write32(page + UInt64(compat ? Compat.wcSecHi : Native.wcSecHi), UInt32(truncatingIfNeeded: bootWallclock.seconds >> 32))
    endUpdate(wcVersion, version)
  }

  /// Makes the version word odd (an update is in progress) and returns that odd value.
  private static func beginUpdate(_ address: UInt64) -> UInt32 {
    let current = PhysicalMemory.read32(address) ?? 0
    let odd = current & 1 == 0 ? current &+ 1 : current &+ 2
    PhysicalMemory.write32(address, odd)
    return odd
  }

  /// Makes it even again, one past the odd value: readers that saw either value retry.
  private static func endUpdate(_ address: UInt64, _ odd: UInt32) {
    PhysicalMemory.write32(address, odd &+ 1)
  }

  /// After shared_info appears (or moves): every vcpu's time and the wallclock, at once.
  public static func publishAll(_ domain: Domain) {
    updateWallclock(domain)
    for vcpu in domain.vcpus where vcpu.vmcb != 0 { update(vcpu) }
  }
}
#endif
