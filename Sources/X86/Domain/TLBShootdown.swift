#if os(none)
import Hypervisor
import Synchronization
import Support

/// The flush a p2m change owes before it frees what it took out (`P2M.flushTranslations`).
///
/// A vcpu may hold a translation of its domain's p2m in two places: the TLB (tagged with its
/// ASID, kept across exits) while it runs in the guest, and the hypervisor's own copies
/// (`P2MCache`, a walk in progress) while it handles one of its exits. So every vcpu of the
/// domain is told to flush at its next entry, and the change then waits for each vcpu that was
/// on a pcpu to pass a boundary (`VCPU.p2mSync`): into the guest through that flush, or off the
/// pcpu. A vcpu in the guest is interrupted with an IPI so it exits. The wait holds no lock,
/// and a vcpu waiting in its own change counts as past the boundary, so two changes on two
/// vcpus never wait for each other.
public enum TLBShootdown {
  public static func install() {
    unsafe P2M.flushTranslations = { domain, caller in flush(domain, caller: caller) }
  }

  /// Optimized for speed, not size as the rest of the image: every grant unmap flushes.
  @_optimize(speed)
  static func flush(_ domain: Domain, caller: VCPU?) {
    let vcpus = domain.vcpus
    for vcpu in vcpus { vcpu.needsTLBFlush.store(true, ordering: .sequentiallyConsistent) }
    // The caller holds no translation from before the change while it waits.
    let callerSync = caller?.p2mSync.load(ordering: .relaxed) ?? 0
    caller?.p2mSync.store(callerSync & ~1, ordering: .sequentiallyConsistent)
    for vcpu in vcpus where vcpu !== caller {
      let seen = vcpu.p2mSync.load(ordering: .sequentiallyConsistent)
      guard seen & 1 != 0 else { continue }
      // Only here, where a wait starts: a flush with nothing to wait for (the caller the
      // domain's only vcpu on a pcpu, a grant unmap's usual case) skips the conversion.
      let kickEvery = Clock.ticks(fromNanoseconds: 100_000)
      var kickedAt: UInt64 = 0
      while vcpu.p2mSync.load(ordering: .acquiring) == seen {
        // In the guest: an interrupt makes it exit (the reschedule vector's handler does
        // nothing else). Sent again now and then, in case it re-entered before the first.
        let now = CPU.rdtsc()
        if now &- kickedAt > kickEvery {
          let pcpu = vcpu.inGuestOn.load(ordering: .acquiring)
          if unsafe pcpu >= 0 && pcpu < PCPUs.all.count {
            unsafe LocalAPIC.sendIPI(to: PCPUs.all[pcpu].apicID, vector: Vector.reschedule)
          }
          kickedAt = now
        }
        hv_pause()
      }
    }
    if let caller {
      caller.p2mSync.store(((callerSync >> 1) &+ 1) << 1 | 1, ordering: .sequentiallyConsistent)
    }
  }
}
#endif
