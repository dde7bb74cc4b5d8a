// The toolstack's part of the store. Under Xen, libxl writes a new domain's nodes
// (libxl__domain_make, libxl__build_post) and tells xenstored about it (XS_INTRODUCE); with no
// control domain here, the domain builder asks for the same through `addDomain`, and the
// console (or a test) asks a domain to shut down through `requestShutdown`, as `xl shutdown`
// does by writing control/shutdown.

/// What the toolstack writes about a domain.
public struct XenstoreDomainInfo: Sendable {
  public var domid: UInt32
  public var name: [UInt8]
  /// The text form, 36 characters; /vm/<uuid> is named by it.
  public var uuid: [UInt8]
  public var targetKiB: UInt64
  public var staticMaxKiB: UInt64
  public var vcpus: Int
  public var maxVCPUs: Int
  public var storePort: UInt32
  public var storeRingGFN: UInt64
  public var consolePort: UInt32
  public var consoleRingGFN: UInt64

  public init(domid: UInt32, name: [UInt8], uuid: [UInt8], targetKiB: UInt64, staticMaxKiB: UInt64, vcpus: Int,
              maxVCPUs: Int, storePort: UInt32, storeRingGFN: UInt64, consolePort: UInt32, consoleRingGFN: UInt64) {
    self.domid = domid
    self.name = name
    self.uuid = uuid
    self.targetKiB = targetKiB
    self.staticMaxKiB = staticMaxKiB
    self.vcpus = vcpus
    self.maxVCPUs = maxVCPUs
    self.storePort = storePort
    self.storeRingGFN = storeRingGFN
    self.consolePort = consolePort
    self.consoleRingGFN = consoleRingGFN
  }

  /// A uuid for a domain whose configuration names none: xl makes a random one; here it is made
  /// from the domain id (unique while the hypervisor runs, since ids are not reused at once) and
  /// a per-boot value, in the form of a version-4 uuid.
  public static func uuid(domid: UInt32, boot: UInt64) -> [UInt8] {
    func hex(_ value: UInt64, digits: Int) -> [UInt8] {
      let letters = Array("0123456789abcdef".utf8)
      var out: [UInt8] = []
      for i in stride(from: digits - 1, through: 0, by: -1) { out.append(letters[Int((value >> (UInt64(i) * 4)) & 0xF)]) }
      return out
    }
    // SplitMix64's finalizer spreads the boot value (a time stamp, small at boot) over all bits;
    // the domain id stays whole in the last group, so two domains of one boot never share one.
    var mixed = boot &+ 0x9E37_79B9_7F4A_7C15
    mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
    mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
    mixed ^= mixed >> 31
    let dash = UInt8(ascii: "-")
    return hex(mixed >> 32, digits: 8) + [dash] + hex(mixed >> 16, digits: 4) + [dash]
      + hex(0x4000 | (mixed & 0x0FFF), digits: 4) + [dash] + hex(0x8000 | (mixed >> 52 & 0x3FFF), digits: 4) + [dash]
      + hex(UInt64(domid & 0xFFFF) << 32 | (mixed & 0xFFFF_FFFF), digits: 12)
  }
}

extension XenstoreServer {
  /// Writes `info`'s nodes as libxl does for a PVH domain and introduces the domain
  /// (@introduceDomain fires). Nodes are the toolstack's (domain 0's); the domain may read its
  /// home and write only where libxl lets it (control/shutdown and the feature flags, data,
  /// drivers, feature, attr, error, device/suspend/event-channel).
  /// Returns the first refusal; the toolstack writes within the store's total cap, so only a
  /// full store refuses.
  @discardableResult
  public mutating func addDomain(_ info: XenstoreDomainInfo) -> XenstoreError? {
    let home = XenstorePath.domainPath(info.domid)
    let vm = Array("/vm/".utf8) + info.uuid
    let readOnly = XenstorePermissions(owner: 0, others: .none, [.init(.read, info.domid)])
    let writable = XenstorePermissions(owner: info.domid, others: .none)
    func at(_ relative: String) -> [UInt8] { home + Array("/\(relative)".utf8) }
    func decimal<T: BinaryInteger>(_ value: T) -> [UInt8] { Array(String(value).utf8) }

    var writes: [(path: [UInt8], value: [UInt8]?, permissions: XenstorePermissions?)] = [
      (home, nil, readOnly),
      (vm, nil, readOnly),
      (at("vm"), vm, nil),
      (at("name"), info.name, nil),
      (at("domid"), decimal(info.domid), nil),
      (at("cpu"), nil, readOnly),
      (at("memory"), nil, readOnly),
      (at("device"), nil, readOnly),
      (at("device/suspend/event-channel"), nil, writable),
      (at("control"), nil, readOnly),
      (at("control/shutdown"), nil, writable),
      (at("control/feature-poweroff"), nil, writable),
      (at("control/feature-reboot"), nil, writable),
      (at("control/feature-suspend"), nil, writable),
      (at("control/sysrq"), nil, writable),
      (at("data"), nil, writable),
      (at("drivers"), nil, writable),
      (at("feature"), nil, writable),
      (at("attr"), nil, writable),
      (at("error"), nil, writable),
      (vm + Array("/uuid".utf8), info.uuid, nil),
      (vm + Array("/name".utf8), info.name, nil),
      (at("control/platform-feature-multiprocessor-suspend"), Array("1".utf8), nil),
      (at("control/platform-feature-xs_reset_watches"), Array("1".utf8), nil),
      // libxl__build_post
      (at("memory/static-max"), decimal(info.staticMaxKiB), nil),
      (at("memory/target"), decimal(info.targetKiB), nil),
      (at("memory/videoram"), Array("0".utf8), nil),
      (at("store/port"), decimal(info.storePort), nil),
      (at("store/ring-ref"), decimal(info.storeRingGFN), nil),
      (at("console/port"), decimal(info.consolePort), nil),
      (at("console/ring-ref"), decimal(info.consoleRingGFN), nil),
      (at("console/limit"), decimal(1_048_576), nil),
      (at("console/type"), Array("xenconsoled".utf8), nil),
      (at("console/output"), Array("pty".utf8), nil),
    ]
    for cpu in 0..<max(info.maxVCPUs, info.vcpus) {
      writes.append((at("cpu/\(cpu)/availability"), Array((cpu < info.vcpus ? "online" : "offline").utf8), nil))
    }

    // A domain id is not reused while its old nodes could be there, but a restart (new id, same
    // uuid) finds the old /vm node: start both afresh, as libxl does.
    _ = toolstack(.rm, home)
    _ = toolstack(.rm, vm)
    for write in writes {
      if let failure = toolstack(write.value == nil ? .mkdir : .write, write.path, write.value ?? []) { return failure }
      if let permissions = write.permissions, let failure = toolstack(.setPerms, write.path, permissions.wireForm) {
        return failure
      }
    }
    introduce(domain: info.domid)
    return nil
  }

  /// Removes what `addDomain` wrote and what the domain itself wrote, and releases the domain
  /// (its watches, transactions, queued messages and owned nodes go; @releaseDomain fires).
  public mutating func removeDomain(_ domid: UInt32, uuid: [UInt8]) {
    release(domain: domid)
    _ = toolstack(.rm, XenstorePath.domainPath(domid))
    _ = toolstack(.rm, Array("/vm/".utf8) + uuid)
  }

  /// What `xl shutdown` / `xl reboot` do: write the request to the domain's control/shutdown,
  /// which its kernel watches ("poweroff", "reboot", "halt", "suspend").
  public mutating func requestShutdown(_ domid: UInt32, _ request: [UInt8]) -> XenstoreError? {
    toolstack(.write, XenstorePath.domainPath(domid) + [UInt8(ascii: "/")] + Array("control/shutdown".utf8), request)
  }

  /// What `xl mem-set` does: write the domain's memory/target (KiB), which its balloon driver
  /// watches and follows by giving pages back (XENMEM_decrease_reservation) or taking them
  /// (populate_physmap, up to its maxmem).
  public mutating func setMemoryTarget(_ domid: UInt32, kib: UInt64) -> XenstoreError? {
    toolstack(.write, XenstorePath.domainPath(domid) + [UInt8(ascii: "/")] + Array("memory/target".utf8), Array(String(kib).utf8))
  }

  /// The value of a node, read as the toolstack.
  public mutating func toolstackRead(_ path: [UInt8]) -> [UInt8]? {
    let reply = handle(XenstoreMessage(op: .read, payload: path + [0]), from: .toolstack)
    return reply.op == .read ? reply.payload : nil
  }

  /// One request as the toolstack; nil if it succeeded, else why not.
  mutating func toolstack(_ op: XenstoreOp, _ path: [UInt8], _ data: [UInt8] = []) -> XenstoreError? {
    var payload = path + [0]
    if op == .write { payload = path + [0] + data } else if op == .setPerms { payload += data }
    let reply = handle(XenstoreMessage(op: op, payload: payload), from: .toolstack)
    guard reply.op == .error else { return nil }
    let name = reply.payload.prefix { $0 != 0 }
    return XenstoreError.allCases.first { $0.name.elementsEqual(name) } ?? .EINVAL
  }
}
