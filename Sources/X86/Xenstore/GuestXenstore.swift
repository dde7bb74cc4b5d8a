#if os(none)
import Hypervisor
import XenABI
import Support

/// The hypervisor's xenstore, served to its domains (docs/xenstore.md). Each domain gets a ring
/// page and an event channel to the hypervisor (HVM_PARAM_STORE_PFN and STORE_EVTCHN), which
/// Linux's xenbus uses; the domain builder writes the domain's nodes as libxl would. A send on a
/// store port runs the store on the sending vcpu's pcpu: requests in, replies out, and watch
/// events out to every domain they are for.
public enum GuestXenstore {
  /// Guest frame of the ring: the special page below the console's (reserved in the memory map).
  static let ringGFN: UInt64 = 0xFEFFE

  /// Guards `service` and every domain's xenstore ring address: a ring page is only touched
  /// under it, and its address is cleared (`detach`) only under it. Each use of `service` and
  /// `devices` is marked `unsafe` for that reason: they stay plain globals, as a wrapper object
  /// cost a read round trip 35 instructions.
  static let lock = SpinLock()
  nonisolated(unsafe) static var service = XenstoreService()
  /// The boot domains' PV devices and which have their nodes written; under `lock` too.
  nonisolated(unsafe) static var devices = XenstoreDevices()
  /// A per-boot value the made-up uuids start from: set by the first domain's build, at boot.
  nonisolated(unsafe) static var bootValue: UInt64 = 0

  /// The builder's part: the ring page mapped at `ringGFN`, the port bound to the store, both
  /// published as HVM parameters. False if there is no memory or no port. As with the console,
  /// the hypervisor holds a reference on the frame until the domain ends.
  static func create(for domain: Domain) -> Bool {
    let frame = domain.changeP2M(by: nil) { p2m -> UInt64? in
      do throws(P2M.Failure) {
        domain.xenstoreRingFrame = try p2m.newRingPage(at: ringGFN, as: .xenstoreRing)
        return domain.xenstoreRingFrame
      } catch {
        return nil
      }
    }
    guard let frame else { return false }
    guard case .ok(let port) = Events.bindBackend(domain, .xenstore) else { return false }
    lock.withLock { domain.xenstoreRingMachine = frame }
    domain.xenstorePort = port
    domain.hvmParams[Int(XenABI.HVMParam.storePFN.rawValue)] = ringGFN
    domain.hvmParams[Int(XenABI.HVMParam.storeEvtchn.rawValue)] = UInt64(port)
    return true
  }

  /// Takes the boot domains' configurations, so that devices find their backends by name
  /// whichever domain is built first. Called once, before any domain is built; a device whose
  /// backend cannot be resolved is logged and left out (`visor` refuses such a bundle, so only
  /// a bundle made otherwise has one).
  public static func setBootDomains(_ configs: [DomainConfig]) {
    let problems = lock.withLock { unsafe devices.setBootDomains(configs) }
    for problem in problems {
      let name = String(decoding: configs[problem.domainIndex].name, as: UTF8.self)
      Log.error("domain \(name): \(String(decoding: problem.key, as: UTF8.self)): \(String(decoding: problem.message(), as: UTF8.self)); the device is left out")
    }
  }

  /// Writes the domain's nodes (as libxl does when it makes a domain) and introduces it. Called
  /// once its console and store exist, before it runs. False if the store refused (it is full).
  static func introduce(_ domain: Domain, vcpus: Int, maxVCPUs: Int, maxMemoryMiB: Int) -> Bool {
    if unsafe bootValue == 0 { unsafe bootValue = CPU.rdtsc() | 1 }
    domain.uuid = unsafe XenstoreDomainInfo.uuid(domid: UInt32(domain.id), boot: bootValue)
    let info = XenstoreDomainInfo(
      domid: UInt32(domain.id), name: domain.name, uuid: domain.uuid,
      targetKiB: domain.memoryBytes >> 10, staticMaxKiB: UInt64(maxMemoryMiB) << 10,
      vcpus: vcpus, maxVCPUs: maxVCPUs, storePort: domain.xenstorePort, storeRingGFN: ringGFN,
      consolePort: domain.consolePort, consoleRingGFN: GuestConsoles.ringGFN)
    let refused = lock.withLock { unsafe service.server.addDomain(info) }
    if let refused {
      Log.error("domain \(domain.id) (\(domain.nameString)): xenstore refused its nodes: \(String(decoding: refused.name, as: UTF8.self))")
      return false
    }
    // Its devices' nodes, and those of the devices it serves: a domain without them still runs.
    if let refused = lock.withLock({ unsafe devices.added(info.domid, name: info.name, in: &service.server) }) {
      Log.error("domain \(domain.id) (\(domain.nameString)): xenstore refused device nodes: \(String(decoding: refused.name, as: UTF8.self))")
    }
    deliverQueued()
    return true
  }

  /// Called by the backends' notify hook: `domain` sent on its store port, and one of its
  /// vcpus is still in that EVTCHNOP_send.
  static func requestsReady(_ domain: Domain, _ platform: any EventPlatform) {
    var notify = false
    var queuedNothing = false
    lock.withLock {
      let ring = domain.xenstoreRingMachine
      guard ring != 0 else { return }
      let wasStopped = unsafe service.isStopped(UInt32(domain.id))
      notify = unsafe service.service(SharedMachinePage(base: ring), domid: UInt32(domain.id))
      queuedNothing = unsafe service.answeredLoneRead
      if !wasStopped, !queuedNothing, let why = unsafe service.stopped[UInt32(domain.id)] {
        GuestMessages.warning(domain, "xenstore: domain \(domain.id) (\(domain.nameString)) broke the ring protocol (\(why.name)); its ring is no longer served")
      }
    }
    if notify { Events.notifySender(domain, port: domain.xenstorePort, using: platform) }
    // A read the fast path answered queued nothing for anyone (the usual request).
    if !queuedNothing { deliverQueued() }
  }

  /// Puts queued replies and watch events into every domain's ring that has room, and notifies
  /// those that got something: a request of one domain can fire another's watch.
  static func deliverQueued() {
    var notified: [Domain] = []
    lock.withLock {
      // Usually none: a request's reply went straight into its sender's ring.
      let waiting = unsafe service.server.domainsWithQueuedOutput()
      guard !waiting.isEmpty else { return }
      for domain in Domains.all where domain.xenstoreRingMachine != 0 && waiting.contains(UInt32(domain.id)) {
        if unsafe service.flushOutput(SharedMachinePage(base: domain.xenstoreRingMachine), domid: UInt32(domain.id)) {
          notified.append(domain)
        }
      }
    }
    for domain in notified { Events.notify(domain, port: domain.xenstorePort) }
  }

  /// What `xl shutdown` and `xl reboot` do: `request` ("poweroff", "reboot") goes into the
  /// domain's control/shutdown, which its kernel watches. Nil if written, else why not.
  static func requestShutdown(_ domain: Domain, _ request: String) -> String? {
    guard domain.xenstoreRingMachine != 0 else { return "it has no xenstore" }
    let refused = lock.withLock { unsafe service.server.requestShutdown(UInt32(domain.id), Array(request.utf8)) }
    if let refused { return "xenstore: \(String(decoding: refused.name, as: UTF8.self))" }
    deliverQueued()
    return nil
  }

  /// What `xl mem-set` does: the domain's balloon target, in KiB. Nil if written, else why not.
  static func setMemoryTarget(_ domain: Domain, kib: UInt64) -> String? {
    guard domain.xenstoreRingMachine != 0 else { return "it has no xenstore" }
    let refused = lock.withLock { unsafe service.server.setMemoryTarget(UInt32(domain.id), kib: kib) }
    if let refused { return "xenstore: \(String(decoding: refused.name, as: UTF8.self))" }
    deliverQueued()
    return nil
  }

  /// The domain no longer runs; the first half of its end in the store: nothing touches its
  /// ring any more and the hypervisor's reference on the frame is dropped, before its p2m goes.
  /// Its nodes stay until `ended`. False if it had no store (a build that failed before it).
  static func detach(_ domain: Domain) -> Bool {
    let hadStore = lock.withLock { () -> Bool in
      guard domain.xenstoreRingMachine != 0 else { return false }
      domain.xenstoreRingMachine = 0
      unsafe service.forget(UInt32(domain.id))
      return true
    }
    guard hadStore else { return false }
    domain.changeP2M(by: nil) { p2m in
      p2m.dropHold(domain.xenstoreRingFrame)
      domain.xenstoreRingFrame = 0
    }
    return true
  }

  /// The second half, once its memory and grants are gone (or kept, if preserved): its nodes
  /// and store state go, and watchers of @releaseDomain and of its devices hear of it. Last, as
  /// the toolstack removes a dead domain's nodes: a backend that reacts (unmapping the
  /// domain's rings) does so after the domain's grant side was torn down, never during it.
  static func ended(_ domain: Domain) {
    lock.withLock {
      unsafe devices.removing(UInt32(domain.id), in: &service.server)
      unsafe service.server.removeDomain(UInt32(domain.id), uuid: domain.uuid)
      unsafe devices.removed(UInt32(domain.id), in: &service.server)
    }
    deliverQueued()
  }
}
#endif
