#if os(none)
import Hypervisor
import Synchronization

/// What happens to a domain once it has shut down and its last vcpu has left the pcpus: the
/// action its configuration names for the reason (xl's `on_poweroff`, `on_reboot`, `on_crash`;
/// `DomainConfig.action(after:)`). Xen's toolstack does this when it sees the domain shut down;
/// with no control domain, the hypervisor does it itself, on the pcpu the last vcpu left.
enum DomainEnd {
  /// Only poweroff, reboot and crash can name restart or preserve, so `reason.name` is also the
  /// xl.cfg key (`on_<reason>`) the messages below cite.
  static func carryOut(_ domain: Domain) {
    let reason = domain.shutdownReason ?? .crash
    let action = domain.origin?.entry.config.action(after: reason) ?? .destroy
    switch action {
    case .destroy:
      DomainBuilder.destroy(domain)
    case .preserve:
      preserve(domain, after: reason)
    case .restart:
      restart(domain, after: reason)
    }
  }

  /// Keeps the domain's memory and state, for inspection, until the hypervisor ends (there is
  /// no toolstack to destroy it later). It never runs again: its vcpus are stopped for good, its
  /// timers are cancelled and its console no longer takes input. It no longer keeps the
  /// hypervisor running either: `RunLoop.finish` destroys it with the others' end.
  static func preserve(_ domain: Domain, after reason: Domain.ShutdownReason) {
    for vcpu in domain.vcpus { VCPUTimers.cancelAll(vcpu) }
    GuestConsoles.ended(domain)
    if GuestXenstore.detach(domain) { GuestXenstore.ended(domain) }
    if let rest = domain.console.flush() { Log.domain(domain.id, rest) }
    domain.preserved = true
    Log.info("domain \(domain.id) (\(domain.nameString)): \(reason.name): preserved (its on_\(reason.name) says so): \(domain.framesInUse) frames kept until the end")
    Domains.countEnd(cleanly: reason.isClean)
  }

  /// Destroys the domain and builds it again from its bundle entry, under a new domain id (as
  /// Xen does). The console input follows it if it had it.
  static func restart(_ domain: Domain, after reason: Domain.ShutdownReason) {
    guard let origin = domain.origin else {
      DomainBuilder.destroy(domain)
      return
    }
    var history = domain.restartHistory
    guard history.allow(at: Clock.now()) else {
      Log.error("domain \(domain.id) (\(domain.nameString)): \(reason.name): not restarted: \(RestartThrottle.limit) restarts in the last \(RestartThrottle.window / 1_000_000_000) s (a restart loop); destroyed")
      DomainBuilder.destroy(domain, failed: true)
      return
    }
    let hadFocus = GuestConsoles.hasFocus(domain)
    // One more live domain while the old one is gone and the new one not yet there: an idle
    // pcpu must not see zero and end the hypervisor in between.
    Domains.live.wrappingAdd(1, ordering: .relaxed)
    defer { Domains.live.wrappingSubtract(1, ordering: .releasing) }
    Log.info("domain \(domain.id) (\(domain.nameString)): \(reason.name): restarting (its on_\(reason.name) says so)")
    DomainBuilder.destroy(domain)
    switch DomainBuilder.build(origin.entry, bundleBase: origin.bundleBase, restartHistory: history) {
    case .success(let new):
      Domains.restarted.wrappingAdd(1, ordering: .relaxed)
      Log.info("domain \(domain.id) (\(domain.nameString)): restarted as domain \(new.id)")
      if hadFocus && !GuestConsoles.hasFocus(new) { GuestConsoles.setFocus(new.id, announce: true) }
    case .failure(let error):
      Log.error("domain \(domain.id) (\(domain.nameString)): restart failed: \(error.message)")
      Domains.unbuilt.wrappingAdd(1, ordering: .relaxed)
    }
  }
}
#endif
