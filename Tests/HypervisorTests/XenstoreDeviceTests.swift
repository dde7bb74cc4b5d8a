import Testing

@testable import Hypervisor

/// A PVH domain configuration with the given devices.
private func domainConfig(_ name: String, driverDomain: Bool = false, disks: [DiskConfig] = [], nics: [NICConfig] = []) -> DomainConfig {
  var config = DomainConfig(name: xs(name), memoryMiB: 64, kernelPath: xs("k"))
  config.isDriverDomain = driverDomain
  config.disks = disks
  config.nics = nics
  return config
}

private let rootDisk = DiskConfig(target: xs("/srv/web.img"), vdev: xs("xvda"))
private let webNIC = NICConfig(devid: 0, mac: [0x00, 0x16, 0x3E, 0x0A, 0x0B, 0x0C])

/// A store and device table over boot domains "dd" (driver domain) and "web" (a disk and a vif
/// served by dd).
private struct DeviceWorld {
  var service = XenstoreService()
  var devices = XenstoreDevices()
  var problems: [DeviceBackendProblem]

  init(_ configs: [DomainConfig] = [domainConfig("dd", driverDomain: true), domainConfig("web", disks: [rootDisk], nics: [webNIC])]) {
    problems = devices.setBootDomains(configs)
  }

  /// What the builder and GuestXenstore do when a domain is built.
  mutating func build(_ domid: UInt32, _ name: String) {
    let home = service.server.addDomain(xsDomainInfo(domid, name: name))
    let devicesRefused = devices.added(domid, name: xs(name), in: &service.server)
    #expect(home == nil)
    #expect(devicesRefused == nil)
  }

  /// What GuestXenstore does when a domain ends.
  mutating func destroy(_ domid: UInt32) {
    devices.removing(domid, in: &service.server)
    service.server.removeDomain(domid, uuid: XenstoreDomainInfo.uuid(domid: domid, boot: 0x1234_5678_9ABC_DEF1))
    devices.removed(domid, in: &service.server)
  }

  mutating func read(_ path: String) -> String? {
    service.server.toolstackRead(xs(path)).map { String(decoding: $0, as: UTF8.self) }
  }

  mutating func perms(_ path: String) -> [UInt8] {
    service.server.request(.getPerms, xsPayload(path), from: .toolstack).payload
  }

  mutating func exists(_ path: String) -> Bool {
    service.server.request(.directory, xsPayload(path), from: .toolstack).op == .directory
  }
}

@Suite struct XenstoreDeviceTests {
  @Test func backendsResolveByNameOrToTheOneDriverDomain() throws {
    let dd = domainConfig("dd", driverDomain: true)
    let other = domainConfig("net")
    #expect(try DeviceBackends.backend(nil, among: [dd, other]) == .named(xs("dd")))
    #expect(try DeviceBackends.backend(xs("net"), among: [dd, other]) == .named(xs("net")))
    #expect(try DeviceBackends.backend(xs("7"), among: [dd, other]) == .id(7))
    #expect(throws: DeviceBackendProblem.Kind.noDriverDomain) { try DeviceBackends.backend(nil, among: [other]) }
    let dd2 = domainConfig("dd2", driverDomain: true)
    #expect(throws: DeviceBackendProblem.Kind.severalDriverDomains([xs("dd"), xs("dd2")])) { try DeviceBackends.backend(nil, among: [dd, dd2]) }
    #expect(throws: DeviceBackendProblem.Kind.unknownDomain(xs("nope"))) { try DeviceBackends.backend(xs("nope"), among: [dd]) }
    #expect(throws: DeviceBackendProblem.Kind.unknownDomain(xs("99999999999"))) { try DeviceBackends.backend(xs("99999999999"), among: [dd]) }

    // A device without a backend is left out; the domain's other devices stay.
    let web = domainConfig("web", disks: [rootDisk, DiskConfig(target: xs("/x"), vdev: xs("xvdb"), backend: xs("ghost"))])
    let (devices, problems) = DeviceBackends.resolve([dd, web])
    #expect(devices[1] == [XenstoreDevice(.disk(rootDisk), backend: .named(xs("dd")))])
    #expect(problems == [DeviceBackendProblem(domainIndex: 1, isDisk: true, entry: 1, kind: .unknownDomain(xs("ghost")))])
    #expect(problems.first?.message() == xs("entry 2: backend \"ghost\" names no domain"))
    #expect(DeviceBackendProblem(domainIndex: 0, isDisk: false, entry: 0, kind: .noDriverDomain).message()
      == xs("entry 1: no backend= given and no domain has driver_domain = 1 (there is no dom0 to serve it)"))
  }

  @Test func aDiskAndAVifGetLibxlsNodesAndPermissions() {
    var world = DeviceWorld()
    #expect(world.problems.isEmpty)
    world.build(1, "dd")
    world.build(2, "web")

    let vbdFront = "/local/domain/2/device/vbd/51712"
    let vbdBack = "/local/domain/1/backend/vbd/2/51712"
    #expect(world.read("\(vbdFront)/state") == "1")
    #expect(world.read("\(vbdFront)/backend") == vbdBack)
    #expect(world.read("\(vbdFront)/backend-id") == "1")
    #expect(world.read("\(vbdFront)/virtual-device") == "51712")
    #expect(world.read("\(vbdFront)/device-type") == "disk")
    #expect(world.read("\(vbdFront)/trusted") == "1")
    let back: [(String, String)] = [
      ("state", "1"), ("frontend", vbdFront), ("frontend-id", "2"), ("online", "1"), ("params", "/srv/web.img"),
      ("script", "/etc/xen/scripts/block"), ("removable", "0"), ("bootable", "1"), ("dev", "xvda"), ("type", "phy"),
      ("mode", "w"), ("device-type", "disk"), ("discard-enable", "1"), ("specification", "xen"),
    ]
    for (key, value) in back { #expect(world.read("\(vbdBack)/\(key)") == value, "\(key)") }
    // Owned by its side, readable by the other; the keys inherit it.
    #expect(world.perms(vbdFront) == xsPayload("n2", "r1"))
    #expect(world.perms("\(vbdFront)/state") == xsPayload("n2", "r1"))
    #expect(world.perms(vbdBack) == xsPayload("n1", "r2"))
    #expect(world.perms("\(vbdBack)/params") == xsPayload("n1", "r2"))

    let vifFront = "/local/domain/2/device/vif/0"
    let vifBack = "/local/domain/1/backend/vif/2/0"
    let front: [(String, String)] = [
      ("state", "1"), ("backend", vifBack), ("backend-id", "1"), ("handle", "0"), ("mac", "00:16:3e:0a:0b:0c"),
      ("trusted", "1"), ("mtu", "1500"),
    ]
    for (key, value) in front { #expect(world.read("\(vifFront)/\(key)") == value, "\(key)") }
    #expect(world.perms("\(vifFront)/mtu") == xsPayload("n1", "r2"), "read-only for the frontend")
    let vifBackEntries: [(String, String)] = [
      ("state", "1"), ("frontend", vifFront), ("frontend-id", "2"), ("online", "1"), ("script", "/etc/xen/scripts/vif-bridge"),
      ("mac", "00:16:3e:0a:0b:0c"), ("bridge", "xenbr0"), ("handle", "0"), ("type", "vif"), ("hotplug-status", ""),
    ]
    for (key, value) in vifBackEntries { #expect(world.read("\(vifBack)/\(key)") == value, "\(key)") }
    #expect(world.read("\(vifBack)/ip") == nil)

    // What each side may do: the frontend writes its own state, reads the backend's; the
    // backend the other way round; a third domain neither.
    var server = world.service.server
    #expect(server.errorOf(.write, xsPayload("\(vbdFront)/state") + xs("3"), from: dom2) == nil)
    #expect(server.errorOf(.read, xsPayload("\(vbdBack)/state"), from: dom2) == nil)
    #expect(server.errorOf(.directory, xsPayload(vbdBack), from: dom2) == nil)
    #expect(server.errorOf(.write, xsPayload("\(vbdBack)/state") + xs("4"), from: dom2) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("\(vbdBack)/physical-device") + xs("7:0"), from: dom1) == nil)
    #expect(server.errorOf(.read, xsPayload("\(vbdFront)/state"), from: dom1) == nil)
    #expect(server.errorOf(.write, xsPayload("\(vbdFront)/state") + xs("6"), from: dom1) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("\(vifFront)/mtu") + xs("9000"), from: dom2) == "EACCES")
    #expect(server.errorOf(.directory, xsPayload("backend/vbd/2"), from: dom1) == nil, "relative to the driver domain's home")
    #expect(server.errorOf(.read, xsPayload("\(vbdBack)/state"), from: dom3) == "EACCES")
  }

  @Test func optionsReachTheNodes() {
    let cd = DiskConfig(target: xs("/srv/cd.iso"), vdev: xs("hdc"), readOnly: true, isCDROM: true, trusted: false)
    let nic = NICConfig(devid: 0, mac: [0x00, 0x16, 0x3E, 0, 0, 1], bridge: xs("br1"), ip: xs("10.0.0.2"),
                        script: xs("/usr/local/vif-route"), trusted: false)
    var world = DeviceWorld([domainConfig("dd", driverDomain: true), domainConfig("web", disks: [cd], nics: [nic])])
    world.build(1, "dd")
    world.build(2, "web")
    let back = "/local/domain/1/backend/vbd/2/\(22 << 8)"
    #expect(world.read("\(back)/mode") == "r")
    #expect(world.read("\(back)/device-type") == "cdrom")
    #expect(world.read("\(back)/removable") == "1")
    #expect(world.read("\(back)/discard-enable") == "0")
    #expect(world.read("/local/domain/2/device/vbd/\(22 << 8)/device-type") == "cdrom")
    #expect(world.read("/local/domain/2/device/vbd/\(22 << 8)/trusted") == "0")
    #expect(world.read("/local/domain/1/backend/vif/2/0/bridge") == "br1")
    #expect(world.read("/local/domain/1/backend/vif/2/0/ip") == "10.0.0.2")
    #expect(world.read("/local/domain/1/backend/vif/2/0/script") == "/usr/local/vif-route")
    #expect(world.read("/local/domain/2/device/vif/0/trusted") == "0")
  }

  @Test func theFrontendMayComeFirstAndEachStateIsWrittenLast() {
    var world = DeviceWorld()
    world.build(2, "web")
    #expect(world.exists("/local/domain/2/device/vbd") == false, "no nodes before the backend exists")
    #expect(world.devices.pairs.isEmpty)
    // The frontend watches its device directory as Linux does; the nodes come when dd is built.
    world.service.server.handleOK(.watch, xsPayload("device", "t"), from: dom2)
    _ = world.service.server.events(for: 2)
    world.build(1, "dd")
    #expect(world.read("/local/domain/2/device/vbd/51712/state") == "1")
    #expect(world.devices.pairs.count == 2)
    let events = world.service.server.events(for: 2)
    // Backend state before frontend state, and the frontend's state after all its other keys.
    #expect(events.last == "device/vif/0/state t")
    let vbdEvents = events.filter { $0.hasPrefix("device/vbd/51712/") }
    #expect(vbdEvents.count > 5)
    #expect(vbdEvents.last == "device/vbd/51712/state t")
    // A second `added` for the same domain writes nothing twice.
    let again = world.devices.added(1, name: xs("dd"), in: &world.service.server)
    let eventsAgain = world.service.server.events(for: 2)
    #expect(again == nil)
    #expect(eventsAgain.isEmpty)
  }

  @Test func theFrontendGoingTakesTheBackendNodes() {
    var world = DeviceWorld()
    world.build(1, "dd")
    world.build(2, "web")
    world.destroy(2)
    #expect(world.exists("/local/domain/1/backend/vbd/2") == false)
    #expect(world.exists("/local/domain/1/backend/vif/2") == false)
    #expect(world.exists("/local/domain/1/backend/vbd") == true)
    #expect(world.devices.pairs.isEmpty)
    // Restarted under a new id: new nodes on both sides.
    world.build(3, "web")
    #expect(world.read("/local/domain/1/backend/vbd/3/51712/frontend") == "/local/domain/3/device/vbd/51712")
    #expect(world.read("/local/domain/3/device/vbd/51712/backend-id") == "1")
  }

  @Test func theDriverDomainGoingClosesItsBackendsAndLeavesTheFrontends() {
    var world = DeviceWorld()
    world.build(1, "dd")
    world.build(2, "web")
    world.service.server.handleOK(.watch, xsPayload("/local/domain/1/backend/vbd/2/51712/state", "be"), from: dom2)
    _ = world.service.server.events(for: 2)
    // First the backend says Closed (what `removing` does before the home goes) ...
    world.devices.removing(1, in: &world.service.server)
    #expect(world.read("/local/domain/1/backend/vbd/2/51712/state") == "6")
    #expect(world.read("/local/domain/1/backend/vif/2/0/state") == "6")
    world.destroy(1)
    // ... then the home goes, and the backend directories come back holding only Closed, so a
    // frontend that reads late still finds Closed (Linux takes a missing state for Unknown and
    // would never close). The watch fires for each change; the store queues the identical
    // pending events once.
    let closing = world.service.server.events(for: 2)
    #expect(closing == ["/local/domain/1/backend/vbd/2/51712/state be"])
    #expect(world.read("/local/domain/1/backend/vbd/2/51712/state") == "6")
    #expect(world.read("/local/domain/1/backend/vif/2/0/state") == "6")
    #expect(world.read("/local/domain/1/backend/vbd/2/51712/frontend") == nil)
    #expect(world.perms("/local/domain/1/backend/vbd/2/51712") == xsPayload("n0", "r2"))
    #expect(world.read("/local/domain/2/device/vbd/51712/state") == "1")
    #expect(world.read("/local/domain/2/device/vbd/51712/backend") == "/local/domain/1/backend/vbd/2/51712")
    #expect(world.perms("/local/domain/2/device/vbd/51712") == xsPayload("n2"), "the dead backend's read permission went")
    #expect(world.devices.pairs.isEmpty)
    // A driver domain of the same name comes back: both sides are written afresh.
    world.build(4, "dd")
    #expect(world.read("/local/domain/2/device/vbd/51712/backend") == "/local/domain/4/backend/vbd/2/51712")
    #expect(world.read("/local/domain/4/backend/vbd/2/51712/state") == "1")
    #expect(world.perms("/local/domain/2/device/vbd/51712") == xsPayload("n2", "r4"))
    // The closed directories of the ended one went when the devices got their new backend.
    #expect(world.read("/local/domain/1/backend/vbd/2/51712/state") == nil)
    #expect(world.read("/local/domain/1/backend/vif/2/0/state") == nil)
  }

  /// A frontend that ends while its backend's directories say Closed takes them with it.
  @Test func aFrontendEndingTakesItsClosedBackendDirectories() {
    var world = DeviceWorld()
    world.build(1, "dd")
    world.build(2, "web")
    world.destroy(1)
    #expect(world.read("/local/domain/1/backend/vbd/2/51712/state") == "6")
    world.destroy(2)
    #expect(world.exists("/local/domain/1/backend/vbd/2") != true)
    #expect(world.exists("/local/domain/1/backend/vif/2") != true)
  }

  @Test func aBackendByIdAndADriverDomainServingItself() {
    let selfDisk = DiskConfig(target: xs("/dev/ram0"), vdev: xs("xvdb"))
    let byID = DiskConfig(target: xs("/x"), vdev: xs("xvda"), backend: xs("1"))
    var world = DeviceWorld([domainConfig("dd", driverDomain: true, disks: [selfDisk]), domainConfig("web", disks: [byID])])
    world.build(1, "dd")
    world.build(2, "web")
    #expect(world.read("/local/domain/1/device/vbd/51728/backend") == "/local/domain/1/backend/vbd/1/51728")
    #expect(world.read("/local/domain/2/device/vbd/51712/backend-id") == "1")
    world.destroy(1)
    #expect(world.devices.pairs.isEmpty)
  }

  @Test func aFullStoreRefusesAndNothingTraps() {
    // Room for the two homes and a little more, not for the devices.
    var sizing = DeviceWorld()
    _ = sizing.service.server.addDomain(xsDomainInfo(1, name: "dd"))
    _ = sizing.service.server.addDomain(xsDomainInfo(2, name: "web"))
    var limits = XenstoreLimits.xenDefaults
    limits.totalBytes = sizing.service.server.store.totalBytes + 600
    var world = DeviceWorld()
    world.service = XenstoreService(limits: limits)
    let homes = [world.service.server.addDomain(xsDomainInfo(1, name: "dd")), world.service.server.addDomain(xsDomainInfo(2, name: "web"))]
    #expect(homes == [nil, nil])
    _ = world.devices.added(1, name: xs("dd"), in: &world.service.server)
    let refused = world.devices.added(2, name: xs("web"), in: &world.service.server)
    #expect(refused == .ENOMEM)
    world.destroy(2)
    world.destroy(1)
  }
}
