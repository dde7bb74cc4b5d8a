// The toolstack's part of PV devices: the xenstore nodes libxl writes for each disk (vbd) and
// NIC (vif) of a domain (libxl__device_generic_add, libxl_disk.c, libxl_nic.c), which a
// frontend in the domain and a backend in the serving domain (a Linux driver domain) then use
// to find each other. docs/pv-devices.md has the whole path from xl.cfg to these nodes.
//
// With no dom0, which domain serves a device is decided among the boot bundle's domains
// (`DeviceBackends`), and the nodes are written when both domains exist, whichever is built
// first. When the frontend's domain goes, the backend's nodes for it go too (libxl removes both
// sides). When the backend's domain goes, its backend nodes say Closed (state 6) and then go
// with its home, as they would under a dead driver domain in Xen; the frontend's nodes stay, so
// the frontend sees its backend close and vanish. When a domain of the backend's name is built
// again, both sides are written afresh and the frontend finds a new device.

/// Which domain serves a device.
public enum DeviceBackend: Equatable, Sendable {
  /// The boot domain of this name (whichever id it has now: restarts change ids).
  case named([UInt8])
  /// `backend=<number>` naming no boot domain: the domain with this id, when there is one.
  case id(UInt32)
}

/// Why a device has no backend.
public struct DeviceBackendProblem: Error, Equatable, Sendable {
  public enum Kind: Error, Equatable, Sendable {
    /// No `backend=`, and no boot domain has `driver_domain = 1`.
    case noDriverDomain
    /// No `backend=`, and several boot domains have `driver_domain = 1` (their names).
    case severalDriverDomains([[UInt8]])
    /// `backend=` names no boot domain and is not a domain id.
    case unknownDomain([UInt8])
  }

  /// The frontend's position among the boot domains.
  public var domainIndex: Int
  /// True for a `disk` entry, false for a `vif` entry.
  public var isDisk: Bool
  /// The entry's position in its list (0-based).
  public var entry: Int
  public var kind: Kind

  public init(domainIndex: Int, isDisk: Bool, entry: Int, kind: Kind) {
    self.domainIndex = domainIndex
    self.isDisk = isDisk
    self.entry = entry
    self.kind = kind
  }

  /// The xl.cfg key of the entry.
  public var key: [UInt8] { Array((isDisk ? "disk" : "vif").utf8) }

  /// "entry 2: no backend= and no domain has driver_domain = 1", without the key.
  public func message() -> [UInt8] {
    var text = MessageText()
    text.add("entry ")
    text.add(entry + 1)
    text.add(": ")
    switch kind {
    case .noDriverDomain:
      text.add("no backend= given and no domain has driver_domain = 1 (there is no dom0 to serve it)")
    case .severalDriverDomains(let names):
      text.add("no backend= given and several domains have driver_domain = 1 (")
      for (i, name) in names.enumerated() {
        if i > 0 { text.add(", ") }
        text.add(name)
      }
      text.add("); name one")
    case .unknownDomain(let name):
      text.add("backend \"")
      text.add(name)
      text.add("\" names no domain")
    }
    return text.bytes
  }
}

/// Resolves `backend=` among the boot domains. Xen's default backend is domain 0; here there is
/// no domain 0, so a device without `backend=` is served by the one boot domain with
/// `driver_domain = 1`, and is an error if there is none or more than one. `backend=` is a
/// domain name (as libxl resolves it first), else a number taken as a domain id at run time.
public enum DeviceBackends {
  /// The backend of a device whose entry says `written` (nil: no `backend=`).
  public static func backend(_ written: [UInt8]?, among domains: [DomainConfig]) throws(DeviceBackendProblem.Kind) -> DeviceBackend {
    guard let written else {
      var names: [[UInt8]] = []
      for domain in domains where domain.isDriverDomain { names.append(domain.name) }
      guard let first = names.first else { throw .noDriverDomain }
      guard names.count == 1 else { throw .severalDriverDomains(names) }
      return .named(first)
    }
    if domains.contains(where: { $0.name == written }) { return .named(written) }
    let isDigits = !written.isEmpty && written.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    if isDigits, let value = XLConfigBuilder.integer(written), let id = UInt32(exactly: value) { return .id(id) }
    throw .unknownDomain(written)
  }

  /// The devices of every boot domain with their backends, by domain; a device whose backend
  /// cannot be resolved is left out and described in `problems`.
  public static func resolve(_ domains: [DomainConfig]) -> (devices: [[XenstoreDevice]], problems: [DeviceBackendProblem]) {
    var devices: [[XenstoreDevice]] = []
    var problems: [DeviceBackendProblem] = []
    for (index, domain) in domains.enumerated() {
      var own: [XenstoreDevice] = []
      for (entry, disk) in domain.disks.enumerated() {
        do throws(DeviceBackendProblem.Kind) {
          own.append(XenstoreDevice(.disk(disk), backend: try backend(disk.backend, among: domains)))
        } catch {
          problems.append(DeviceBackendProblem(domainIndex: index, isDisk: true, entry: entry, kind: error))
        }
      }
      for (entry, nic) in domain.nics.enumerated() {
        do throws(DeviceBackendProblem.Kind) {
          own.append(XenstoreDevice(.vif(nic), backend: try backend(nic.backend, among: domains)))
        } catch {
          problems.append(DeviceBackendProblem(domainIndex: index, isDisk: false, entry: entry, kind: error))
        }
      }
      devices.append(own)
    }
    return (devices, problems)
  }
}

/// One PV device of a domain and the domain that serves it.
public struct XenstoreDevice: Equatable, Sendable {
  public enum Spec: Equatable, Sendable {
    case disk(DiskConfig)
    case vif(NICConfig)
  }

  public var spec: Spec
  public var backend: DeviceBackend

  public init(_ spec: Spec, backend: DeviceBackend) {
    self.spec = spec
    self.backend = backend
  }

  /// The device kind in xenstore paths: "vbd" or "vif".
  public var kind: [UInt8] {
    switch spec {
    case .disk: Array("vbd".utf8)
    case .vif: Array("vif".utf8)
    }
  }

  /// The device id in xenstore paths: a disk's device number, a vif's handle.
  public var devid: Int {
    switch spec {
    case .disk(let disk): disk.devid
    case .vif(let nic): nic.devid
    }
  }
}

/// The boot domains' devices, and which of them have their nodes written. Held beside the store
/// and changed under the same lock: `added` after a domain's own nodes are written,
/// `removing` before they go.
public struct XenstoreDevices: Sendable {
  /// Where libxl's hotplug scripts live (libxl__xen_script_dir_path on Debian): a relative
  /// `script=` is taken from here, as libxl__abs_path does.
  public static let scriptDirectory: [UInt8] = Array("/etc/xen/scripts".utf8)
  /// libxl's defaults (libxl_nic.c, libxl_disk.c).
  public static let defaultBridge: [UInt8] = Array("xenbr0".utf8)
  public static let defaultVIFScript: [UInt8] = Array("vif-bridge".utf8)
  public static let blockScript: [UInt8] = Array("block".utf8)
  /// LIBXL_DEVICE_NIC_MTU_DEFAULT.
  public static let defaultMTU = 1500

  /// Each boot domain's devices, by name.
  private var devicesByName: [(name: [UInt8], devices: [XenstoreDevice])] = []
  /// The domains that exist: id and name.
  private var live: [(domid: UInt32, name: [UInt8])] = []
  /// Devices whose nodes are written: frontend id, the device's index among its domain's
  /// devices, and the backend's id.
  private var paired: [(frontend: UInt32, device: Int, backend: UInt32)] = []
  /// Backend directories of a driver domain that ended, kept with `state` = 6 (Closed) until
  /// their frontend goes or gets a new backend: the frontend id, the device, and the ended
  /// backend's id. Removed with the driver domain's home, the node would be gone before the
  /// frontend's xenbus read it, and Linux takes a missing `state` for Unknown and ignores it.
  private var closed: [(frontend: UInt32, device: XenstoreDevice, backend: UInt32)] = []

  public init() {}

  /// Takes the boot domains' configurations; returns the devices left out because they have no
  /// backend (the domain is still built, without them).
  public mutating func setBootDomains(_ domains: [DomainConfig]) -> [DeviceBackendProblem] {
    let (devices, problems) = DeviceBackends.resolve(domains)
    devicesByName = []
    for (domain, own) in zip(domains, devices) { devicesByName.append((domain.name, own)) }
    return problems
  }

  /// The devices whose nodes are written now, as (frontend, backend, device) (for tests and
  /// the console).
  public var pairs: [(frontend: UInt32, backend: UInt32, device: XenstoreDevice)] {
    var result: [(frontend: UInt32, backend: UInt32, device: XenstoreDevice)] = []
    for pair in paired {
      if let device = devices(of: pair.frontend).dropFirst(pair.device).first {
        result.append((pair.frontend, pair.backend, device))
      }
    }
    return result
  }

  private func name(of domid: UInt32) -> [UInt8]? {
    live.first { $0.domid == domid }?.name
  }

  private func devices(of domid: UInt32) -> [XenstoreDevice] {
    guard let name = name(of: domid) else { return [] }
    return devicesByName.first { $0.name == name }?.devices ?? []
  }

  /// The live domain that serves `backend`, if it exists.
  private func domid(of backend: DeviceBackend) -> UInt32? {
    switch backend {
    case .named(let name): live.first { $0.name == name }?.domid
    case .id(let id): live.first { $0.domid == id }?.domid
    }
  }

  /// Domain `domid` named `name` exists and its home is written: writes the nodes of its own
  /// devices whose backend exists, and of the devices it serves for domains that exist.
  /// Returns the first refusal (only a full store refuses).
  public mutating func added(_ domid: UInt32, name: [UInt8], in server: inout XenstoreServer) -> XenstoreError? {
    live.removeAll { $0.domid == domid }
    live.append((domid, name))
    var failure: XenstoreError? = nil
    for frontend in live {
      for (index, device) in devices(of: frontend.domid).enumerated() {
        guard let backend = self.domid(of: device.backend), frontend.domid == domid || backend == domid else { continue }
        guard !paired.contains(where: { $0.frontend == frontend.domid && $0.device == index }) else { continue }
        paired.append((frontend.domid, index, backend))
        forgetClosed(frontend: frontend.domid, device: device, in: &server)
        if let refused = server.writeDeviceNodes(device, frontend: frontend.domid, backend: backend) {
          failure = failure ?? refused
        }
      }
    }
    return failure
  }

  /// Domain `domid` is about to go (its home is removed next). Its devices' backend nodes go;
  /// the backend nodes it serves say Closed, and their frontends' nodes stay. Call `removed`
  /// once its home is gone.
  public mutating func removing(_ domid: UInt32, in server: inout XenstoreServer) {
    let mine = devices(of: domid)
    for pair in paired where pair.frontend == domid {
      if let device = mine.dropFirst(pair.device).first {
        server.removeBackendNodes(device, frontend: domid, backend: pair.backend)
      }
    }
    for entry in closed where entry.frontend == domid {
      server.removeBackendNodes(entry.device, frontend: domid, backend: entry.backend)
    }
    closed.removeAll { $0.frontend == domid }
    for pair in paired where pair.backend == domid && pair.frontend != domid {
      if let device = devices(of: pair.frontend).dropFirst(pair.device).first {
        _ = server.toolstack(.write, XenstoreServer.backendPath(device, frontend: pair.frontend, backend: domid) + Array("/state".utf8),
                             Array("6".utf8))
        closed.append((pair.frontend, device, domid))
      }
    }
    paired.removeAll { $0.frontend == domid || $0.backend == domid }
    live.removeAll { $0.domid == domid }
  }

  /// Domain `domid`'s home is gone: the backend directories it served come back holding only
  /// `state` = 6, owned by the toolstack and readable by their frontend, so that each frontend
  /// reads Closed and closes its device (a watch event merged with the removal's, or one more).
  public mutating func removed(_ domid: UInt32, in server: inout XenstoreServer) {
    for entry in closed where entry.backend == domid {
      let path = XenstoreServer.backendPath(entry.device, frontend: entry.frontend, backend: domid)
      let permissions = XenstorePermissions(owner: 0, others: .none, [.init(.read, entry.frontend)])
      _ = server.toolstack(.mkdir, path)
      _ = server.toolstack(.setPerms, path, permissions.wireForm)
      _ = server.toolstack(.write, path + Array("/state".utf8), Array("6".utf8))
    }
  }

  /// A frontend's device got a new backend: the closed directory of its old one goes.
  private mutating func forgetClosed(frontend: UInt32, device: XenstoreDevice, in server: inout XenstoreServer) {
    for entry in closed where entry.frontend == frontend && entry.device == device {
      server.removeBackendNodes(entry.device, frontend: frontend, backend: entry.backend)
    }
    closed.removeAll { $0.frontend == frontend && $0.device == device }
  }
}

extension XenstoreServer {
  /// /local/domain/FE/device/KIND/ID: the frontend's directory.
  public static func frontendPath(_ device: XenstoreDevice, frontend: UInt32) -> [UInt8] {
    XenstorePath.domainPath(frontend) + [UInt8(ascii: "/")] + Array("device/".utf8) + device.kind + [UInt8(ascii: "/")] + decimal(device.devid)
  }

  /// /local/domain/BE/backend/KIND/FE/ID: the backend's directory.
  public static func backendPath(_ device: XenstoreDevice, frontend: UInt32, backend: UInt32) -> [UInt8] {
    XenstorePath.domainPath(backend) + [UInt8(ascii: "/")] + Array("backend/".utf8) + device.kind + [UInt8(ascii: "/")] + decimal(frontend)
      + [UInt8(ascii: "/")] + decimal(device.devid)
  }

  private static func decimal<T: BinaryInteger>(_ value: T) -> [UInt8] { Array(String(value).utf8) }

  /// Writes both sides of `device` as libxl__device_generic_add does, with libxl's permissions:
  /// the frontend directory owned by the frontend and readable by the backend, the backend
  /// directory owned by the backend and readable by the frontend, and the frontend's read-only
  /// entries (a vif's mtu) owned by the backend. Each side's `state` is written last, backend
  /// first: Linux probes a device when its `state` reads 1 and then needs the other side's
  /// directory to exist (xenbus_probe.c, talk_to_otherend); libxl gets the same from one
  /// transaction.
  mutating func writeDeviceNodes(_ device: XenstoreDevice, frontend: UInt32, backend: UInt32) -> XenstoreError? {
    let frontPath = Self.frontendPath(device, frontend: frontend)
    let backPath = Self.backendPath(device, frontend: frontend, backend: backend)
    let (back, front, readOnlyFront) = Self.deviceEntries(device, frontend: frontend, frontPath: frontPath, backend: backend, backPath: backPath)
    let frontPermissions = XenstorePermissions(owner: frontend, others: .none, [.init(.read, backend)])
    let backPermissions = XenstorePermissions(owner: backend, others: .none, [.init(.read, frontend)])
    func at(_ directory: [UInt8], _ key: String) -> [UInt8] { directory + Array("/\(key)".utf8) }

    _ = toolstack(.rm, frontPath)
    _ = toolstack(.rm, backPath)
    var requests: [(op: XenstoreOp, path: [UInt8], data: [UInt8])] = [
      (.mkdir, backPath, []), (.setPerms, backPath, backPermissions.wireForm),
      (.mkdir, frontPath, []), (.setPerms, frontPath, frontPermissions.wireForm),
    ]
    for (key, value) in back { requests.append((.write, at(backPath, key), value)) }
    for (key, value) in front { requests.append((.write, at(frontPath, key), value)) }
    for (key, value) in readOnlyFront {
      requests.append((.write, at(frontPath, key), value))
      requests.append((.setPerms, at(frontPath, key), backPermissions.wireForm))
    }
    requests.append((.write, at(backPath, "state"), Array("1".utf8)))
    requests.append((.write, at(frontPath, "state"), Array("1".utf8)))
    for request in requests {
      if let failure = toolstack(request.op, request.path, request.data) { return failure }
    }
    return nil
  }

  /// The backend's directory for `device` goes, and its frontend's directory under the backend
  /// when that is now empty (libxl__xs_path_cleanup).
  mutating func removeBackendNodes(_ device: XenstoreDevice, frontend: UInt32, backend: UInt32) {
    let path = Self.backendPath(device, frontend: frontend, backend: backend)
    _ = toolstack(.rm, path)
    let parent = XenstorePath.parent(of: path)
    let listing = handle(XenstoreMessage(op: .directory, payload: parent + [0]), from: .toolstack)
    if listing.op == .directory, listing.payload.isEmpty { _ = toolstack(.rm, parent) }
  }

  /// The entries libxl writes, without `state`: the backend's, the frontend's, and the
  /// frontend's read-only ones.
  static func deviceEntries(
    _ device: XenstoreDevice, frontend: UInt32, frontPath: [UInt8], backend: UInt32, backPath: [UInt8]
  ) -> (back: [(String, [UInt8])], front: [(String, [UInt8])], readOnlyFront: [(String, [UInt8])]) {
    func flag(_ value: Bool) -> [UInt8] { Array((value ? "1" : "0").utf8) }
    var back: [(String, [UInt8])] = [
      ("frontend", frontPath), ("frontend-id", decimal(frontend)), ("online", Array("1".utf8)),
    ]
    var front: [(String, [UInt8])] = [("backend", backPath), ("backend-id", decimal(backend))]
    var readOnlyFront: [(String, [UInt8])] = []
    switch device.spec {
    case .disk(let disk):
      back += [
        ("params", disk.target),
        ("script", absoluteScript(XenstoreDevices.blockScript)),
        ("removable", flag(disk.isCDROM)),  // libxlu makes a cdrom removable
        ("bootable", Array("1".utf8)),
        ("dev", disk.vdev),
        ("type", Array("phy".utf8)),
        ("mode", Array((disk.readOnly ? "r" : "w").utf8)),
        ("device-type", Array((disk.isCDROM ? "cdrom" : "disk").utf8)),
        ("discard-enable", flag(disk.discardEnabled)),
        ("specification", Array("xen".utf8)),
      ]
      front += [
        ("virtual-device", decimal(disk.devid)),
        // blkfront on PVH refuses a disk without it (blkfront_probe).
        ("device-type", Array((disk.isCDROM ? "cdrom" : "disk").utf8)),
        ("trusted", flag(disk.trusted)),
      ]
    case .vif(let nic):
      let mac = NICConfig.macText(nic.mac)
      // netback fails without `script`, and waits for `hotplug-status` to read "connected"
      // before it connects: "" makes it wait for whoever plays the hotplug script.
      back += [("script", absoluteScript(nic.script ?? XenstoreDevices.defaultVIFScript)), ("mac", mac)]
      if let ip = nic.ip { back.append(("ip", ip)) }
      back += [
        ("bridge", nic.bridge ?? XenstoreDevices.defaultBridge),
        ("handle", decimal(nic.devid)),
        ("type", Array("vif".utf8)),
        ("hotplug-status", []),
      ]
      front += [("handle", decimal(nic.devid)), ("mac", mac), ("trusted", flag(nic.trusted))]
      readOnlyFront.append(("mtu", decimal(XenstoreDevices.defaultMTU)))
    }
    return (back, front, readOnlyFront)
  }

  /// libxl__abs_path: a script name without a leading "/" is in the script directory.
  private static func absoluteScript(_ script: [UInt8]) -> [UInt8] {
    if script.first == UInt8(ascii: "/") { return script }
    return XenstoreDevices.scriptDirectory + [UInt8(ascii: "/")] + script
  }
}
