import Testing

@testable import Hypervisor

/// A reference xenstore, written plainly from xenstored's rules: a dictionary of nodes, each
/// with a version bumped on every change, and transactions as a dictionary of private nodes
/// plus the versions of the names they looked at.
struct XenstoreReference {
  struct Node: Equatable {
    var value: [UInt8]
    var permissions: XenstorePermissions
    var children: [[UInt8]]
    var version: Int
  }

  struct Transaction {
    var id: UInt32
    var seen: [[UInt8]: Int] = [:]  // -1: no node
    var own: [[UInt8]: Node?] = [:]
    var changed: [[UInt8]: Bool] = [:]  // name → exact
    /// Nodes each domain gains or loses by the transaction's writes, at the time of each
    /// write. As in xenstored, a transaction counts a domain's nodes as the tree's count now
    /// plus these (a count that is off only when the transaction will fail with EAGAIN).
    var delta: [UInt32: Int] = [:]
  }

  var nodes: [[UInt8]: Node] = [:]
  var version = 0
  var nodeLimit: Int
  var transactions: [UInt32: Transaction] = [:]
  /// Names changed (not only below a removed node) since last taken: what a privileged watch
  /// on /local hears.
  var heard: Set<[UInt8]> = []

  init(nodeLimit: Int) {
    self.nodeLimit = nodeLimit
    let closed = XenstorePermissions(owner: 0, others: .none)
    for name in [xs("/"), xs("@releaseDomain"), xs("@introduceDomain")] {
      nodes[name] = Node(value: [], permissions: closed, children: [], version: 0)
    }
  }

  // A view: the caller's transaction's own nodes, else the tree; looking records the version.
  mutating func get(_ name: [UInt8], _ tx: UInt32?) -> Node? {
    guard let tx, var transaction = transactions[tx] else { return nodes[name] }
    if transaction.seen[name] == nil { transaction.seen[name] = nodes[name]?.version ?? -1 }
    transactions[tx] = transaction
    if let own = transaction.own[name] { return own }
    return nodes[name]
  }

  mutating func set(_ name: [UInt8], _ node: Node?, _ tx: UInt32?) {
    if let tx {
      _ = get(name, tx)
      let before: Node?
      if let own = transactions[tx]?.own[name] { before = own } else { before = nodes[name] }
      if let before { transactions[tx]?.delta[before.permissions.owner, default: 0] -= 1 }
      if let node { transactions[tx]?.delta[node.permissions.owner, default: 0] += 1 }
      transactions[tx]?.own[name] = .some(node)
    } else {
      version += 1
      if var node {
        node.version = version
        nodes[name] = node
      } else {
        nodes[name] = nil
      }
    }
  }

  mutating func changed(_ name: [UInt8], exact: Bool, _ tx: UInt32?) {
    if let tx {
      let before = transactions[tx]?.changed[name]
      transactions[tx]?.changed[name] = (before ?? true) && exact
    } else if !exact {
      heard.insert(name)
    }
  }

  static func parent(_ name: [UInt8]) -> [UInt8] {
    guard let slash = name.lastIndex(of: UInt8(ascii: "/")), slash > 0 else { return xs("/") }
    return Array(name[..<slash])
  }

  static func base(_ name: [UInt8]) -> [UInt8] {
    Array(name[(name.lastIndex(of: UInt8(ascii: "/"))! + 1)...])
  }

  static func rights(_ node: Node, _ caller: XenstoreCaller) -> (read: Bool, write: Bool, owner: Bool) {
    let entries = node.permissions.entries
    if caller.privileged || entries[0].domid == caller.domid { return (true, true, true) }
    let access = entries.dropFirst().first { $0.domid == caller.domid }?.access ?? entries[0].access
    return (access == .read || access == .both, access == .write || access == .both, false)
  }

  enum Need { case read, write, owner }

  static func allows(_ rights: (read: Bool, write: Bool, owner: Bool), _ need: Need) -> Bool {
    switch need {
    case .read: rights.read
    case .write: rights.write
    case .owner: rights.write && rights.owner
    }
  }

  /// The node, or EACCES; a missing node is ENOENT if its closest ancestor lets the caller in.
  mutating func check(_ name: [UInt8], _ need: Need, _ caller: XenstoreCaller, _ tx: UInt32?) -> Result<Node, XenstoreError> {
    if let node = get(name, tx) {
      return Self.allows(Self.rights(node, caller), need) ? .success(node) : .failure(.EACCES)
    }
    var up = name
    while up != xs("/") {
      up = Self.parent(up)
      if let node = get(up, tx) {
        let rights = Self.rights(node, caller)
        let some = need == .read ? rights.read : rights.write || rights.owner
        return .failure(some ? .ENOENT : .EACCES)
      }
    }
    return .failure(.EACCES)
  }

  func owned(by domid: UInt32, _ tx: UInt32?) -> Int {
    let count = nodes.values.filter { $0.permissions.owner == domid }.count
    return count + (tx.flatMap { transactions[$0]?.delta[domid] } ?? 0)
  }

  mutating func create(_ name: [UInt8], _ value: [UInt8], _ caller: XenstoreCaller, _ tx: UInt32?) -> XenstoreError? {
    var missing = [name]
    var parentName = Self.parent(name)
    while get(parentName, tx) == nil {
      missing.append(parentName)
      parentName = Self.parent(parentName)
    }
    var parent = get(parentName, tx)!
    var permissions = parent.permissions
    if !caller.privileged {
      permissions = XenstorePermissions(owner: caller.domid, others: permissions.entries[0].access, Array(permissions.entries.dropFirst()))
      if owned(by: caller.domid, tx) + missing.count > nodeLimit { return .ENOSPC }
    }
    parent.children.append(Self.base(missing.last!))
    set(parentName, parent, tx)
    for (index, path) in missing.enumerated().reversed() {
      let children = index > 0 ? [Self.base(missing[index - 1])] : []
      set(path, Node(value: index == 0 ? value : [], permissions: permissions, children: children, version: 0), tx)
    }
    changed(name, exact: false, tx)
    return nil
  }

  mutating func write(_ name: [UInt8], _ value: [UInt8], _ caller: XenstoreCaller, _ tx: UInt32?) -> XenstoreError? {
    switch check(name, .write, caller, tx) {
    case .success(var node):
      node.value = value
      set(name, node, tx)
      changed(name, exact: false, tx)
      return nil
    case .failure(.ENOENT): return create(name, value, caller, tx)
    case .failure(let error): return error
    }
  }

  mutating func mkdir(_ name: [UInt8], _ caller: XenstoreCaller, _ tx: UInt32?) -> XenstoreError? {
    switch check(name, .write, caller, tx) {
    case .success: return nil
    case .failure(.ENOENT): return create(name, [], caller, tx)
    case .failure(let error): return error
    }
  }

  mutating func rm(_ name: [UInt8], _ caller: XenstoreCaller, _ tx: UInt32?) -> XenstoreError? {
    switch check(name, .write, caller, tx) {
    case .success:
      if name == xs("/") { return .EINVAL }
      var doomed: [[UInt8]] = []
      var stack = [name]
      while let next = stack.popLast() {
        guard let node = get(next, tx) else { continue }
        doomed.append(next)
        stack += node.children.map { next + [UInt8(ascii: "/")] + $0 }
      }
      let parentName = Self.parent(name)
      var parent = get(parentName, tx)!
      for path in doomed.reversed() {
        set(path, nil, tx)
        changed(path, exact: path != name, tx)
      }
      parent.children.removeAll { $0 == Self.base(name) }
      set(parentName, parent, tx)
      return nil
    case .failure(.ENOENT):
      return get(Self.parent(name), tx) != nil ? nil : .ENOENT
    case .failure(let error): return error
    }
  }

  mutating func setPermissions(_ name: [UInt8], _ permissions: XenstorePermissions, _ caller: XenstoreCaller, _ tx: UInt32?) -> XenstoreError? {
    if !caller.privileged, permissions.entries.count > 5 { return .ENOSPC }
    switch check(name, .owner, caller, tx) {
    case .success(var node):
      if !caller.privileged, permissions.owner != node.permissions.owner { return .EPERM }
      node.permissions = permissions
      set(name, node, tx)
      changed(name, exact: false, tx)
      return nil
    case .failure(let error): return error
    }
  }

  mutating func commit(_ domid: UInt32, _ caller: XenstoreCaller) -> XenstoreError? {
    guard let transaction = transactions.removeValue(forKey: domid) else { return .ENOENT }
    for (name, seen) in transaction.seen where (nodes[name]?.version ?? -1) != seen { return .EAGAIN }
    if !caller.privileged {
      var after = nodes
      for (name, node) in transaction.own { after[name] = node }
      for domid in Set(after.values.map { $0.permissions.owner }) where domid != 0 {
        let before = nodes.values.filter { $0.permissions.owner == domid }.count
        let now = after.values.filter { $0.permissions.owner == domid }.count
        if now > before, now > nodeLimit { return .ENOSPC }
      }
    }
    for (name, node) in transaction.own { set(name, node, nil) }
    for (name, exact) in transaction.changed where !exact { heard.insert(name) }
    return nil
  }
}

@Suite struct XenstoreModelTests {
  /// A random name under some domain's home, absolute or (for the caller's own) relative.
  func randomName(_ random: inout SplitMix64, caller: XenstoreCaller) -> (wire: String, absolute: [UInt8]) {
    let target = caller.privileged || random.next() % 3 == 0 ? 1 + random.next() % 3 : UInt64(caller.domid)
    let parts = (0..<Int(random.next() % 4)).map { _ in ["a", "b", "c"][Int(random.next() % 3)] }
    let home = "/local/domain/\(target)"
    let absolute = ([home] + parts).joined(separator: "/")
    if !caller.privileged, target == UInt64(caller.domid), !parts.isEmpty, random.next() % 2 == 0 {
      return (parts.joined(separator: "/"), xs(absolute))
    }
    return (absolute, xs(absolute))
  }

  func randomPermissions(_ random: inout SplitMix64, owner: UInt32) -> XenstorePermissions {
    let accesses = XenstoreAccess.allCases
    let more = (0..<Int(random.next() % 3)).map { _ in
      XenstorePermissions.Entry(accesses[Int(random.next() % 4)], UInt32(1 + random.next() % 3))
    }
    var permissions = XenstorePermissions(owner: owner, others: accesses[Int(random.next() % 4)], more)
    if random.next() % 10 == 0 {
      permissions = XenstorePermissions(owner: owner, others: .read, (1...5).map { XenstorePermissions.Entry(.read, $0) })
    }
    return permissions
  }

  func describe(_ reply: XenstoreMessage) -> String {
    reply.op == .error ? String(decoding: reply.payload.dropLast(), as: UTF8.self) : "ok"
  }

  @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
  func randomOperationsMatchTheReference(seed: UInt64) {
    var random = SplitMix64(seed: seed)
    var limits = XenstoreLimits()
    limits.nodesPerDomain = 8
    var server = XenstoreServer(limits: limits)
    var model = XenstoreReference(nodeLimit: limits.nodesPerDomain)
    let callers = [XenstoreCaller.toolstack, .domain(1), .domain(2), .domain(3)]
    var open: [UInt32: UInt32] = [:]  // domid → transaction id
    var outcomes: [String: Int] = [:]

    // The homes, as the toolstack makes them.
    for domid in UInt32(1)...3 {
      let home = XenstorePath.domainPath(domid)
      _ = server.request(.mkdir, home + [0], from: .toolstack)
      _ = model.mkdir(home, .toolstack, nil)
      let permissions = XenstorePermissions(owner: domid, others: .none)
      _ = server.request(.setPerms, home + [0] + permissions.wireForm, from: .toolstack)
      _ = model.setPermissions(home, permissions, .toolstack, nil)
    }
    _ = server.request(.watch, xsPayload("/local", "w"), from: .toolstack)
    _ = server.takeMessages(for: 0)
    model.heard = []

    for step in 0..<500 {
      let caller = callers[Int(random.next() % 4)]
      let name = randomName(&random, caller: caller)
      var tx: UInt32?
      if let id = open[caller.domid], random.next() % 4 != 0 { tx = id }
      let wireTx = tx ?? 0
      let modelTx = tx.map { _ in caller.domid }
      let expected: XenstoreError?
      let reply: XenstoreMessage
      var label = ""
      switch random.next() % 12 {
      case 0, 1, 2:
        let value = xs("v\(random.next() % 100)")
        label = "write \(name.wire)"
        reply = server.request(.write, xsPayload(name.wire) + value, from: caller, transaction: wireTx)
        expected = model.write(name.absolute, value, caller, modelTx)
      case 3:
        label = "mkdir \(name.wire)"
        reply = server.request(.mkdir, xsPayload(name.wire), from: caller, transaction: wireTx)
        expected = model.mkdir(name.absolute, caller, modelTx)
      case 4:
        label = "rm \(name.wire)"
        reply = server.request(.rm, xsPayload(name.wire), from: caller, transaction: wireTx)
        expected = model.rm(name.absolute, caller, modelTx)
      case 5, 6:
        label = "read \(name.wire)"
        reply = server.request(.read, xsPayload(name.wire), from: caller, transaction: wireTx)
        switch model.check(name.absolute, .read, caller, modelTx) {
        case .success(let node):
          expected = nil
          #expect(reply.payload == node.value, "seed \(seed) step \(step): \(label)")
        case .failure(let error): expected = error
        }
      case 7:
        label = "directory \(name.wire)"
        reply = server.request(.directory, xsPayload(name.wire), from: caller, transaction: wireTx)
        switch model.check(name.absolute, .read, caller, modelTx) {
        case .success(let node):
          expected = nil
          #expect(reply.payload == node.children.flatMap { $0 + [0] }, "seed \(seed) step \(step): \(label)")
        case .failure(let error): expected = error
        }
      case 8:
        let current = model.nodes[name.absolute]?.permissions.owner ?? caller.domid
        let owner = caller.privileged || random.next() % 8 == 0 ? UInt32(random.next() % 4) : current
        let permissions = randomPermissions(&random, owner: owner)
        label = "set_perms \(name.wire) \(permissions.entries)"
        reply = server.request(.setPerms, xsPayload(name.wire) + permissions.wireForm, from: caller, transaction: wireTx)
        expected = model.setPermissions(name.absolute, permissions, caller, modelTx)
      case 9:
        if open[caller.domid] == nil {
          label = "transaction_start"
          reply = server.request(.transactionStart, xsPayload(""), from: caller)
          expected = nil
          let id = XenstorePath.parseDecimal(reply.payload.dropLast()) ?? 0
          open[caller.domid] = id
          model.transactions[caller.domid] = XenstoreReference.Transaction(id: id)
        } else {
          label = "get_domain_path"
          reply = server.request(.getDomainPath, xsPayload("\(caller.domid)"), from: caller)
          expected = nil
        }
      default:
        guard let id = open.removeValue(forKey: caller.domid) else { continue }
        let commit = random.next() % 4 != 0
        label = commit ? "commit" : "abort"
        reply = server.request(.transactionEnd, xsPayload(commit ? "T" : "F"), from: caller, transaction: id)
        if commit {
          expected = model.commit(caller.domid, caller)
        } else {
          model.transactions[caller.domid] = nil
          expected = nil
        }
      }
      outcomes[describe(reply), default: 0] += 1
      let context = "seed \(seed) step \(step): dom\(caller.domid) \(label) tx \(wireTx)"
      #expect(describe(reply) == (expected.map { String(decoding: $0.name, as: UTF8.self) } ?? "ok"), "\(context)")

      // The tree, node by node.
      #expect(Set(server.store.names) == Set(model.nodes.keys), "\(context): names")
      for (name, node) in model.nodes {
        let actual = server.store.node(at: name)
        #expect(actual?.value == node.value && actual?.permissions == node.permissions && actual?.children == node.children,
          "\(context): \(String(decoding: name, as: UTF8.self))")
      }
      // The privileged watch on /local heard of every change made at or below it.
      let heard = Set(server.takeMessages(for: 0).filter { $0.op == .watchEvent }.map { Array($0.strings[0]) })
      #expect(heard == model.heard.filter { XenstorePath.isAtOrBelow($0, xs("/local")) }, "\(context): events")
      model.heard = []
      // The accounting behind the nodes quota. (The toolstack may give a domain more nodes
      // than its quota, by creating below its nodes or by set_perms; only its own creations
      // are refused.)
      for domid in UInt32(0)...3 {
        #expect(server.store.nodeCount(ownedBy: domid) == model.nodes.values.filter { $0.permissions.owner == domid }.count,
          "\(context): nodes of \(domid)")
      }
    }
    // The sequence reached the refusals it is meant to compare.
    for outcome in ["ok", "EACCES", "ENOENT", "ENOSPC", "EAGAIN"] {
      #expect(outcomes[outcome, default: 0] > 0, "seed \(seed): no \(outcome) in \(outcomes)")
    }
  }
}
