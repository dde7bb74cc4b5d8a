// The xenstore tree: nodes by absolute name, each with a value, permissions, its children's
// names and a generation. Operations follow xenstored's (tools/xenstored/core.c): what they
// check, in which order, and which error they give, so that a guest sees what it would see
// under Xen. Transactions (a private overlay checked by generation at commit) are in
// XenstoreTransaction.swift.

/// One node. Names are not stored here: the store is keyed by them.
public struct XenstoreNode: Sendable, Equatable {
  public var value: [UInt8]
  public var permissions: XenstorePermissions
  /// In creation order, as xenstored lists them.
  public var children: [[UInt8]]
  /// The children's names with a NUL each: what XS_DIRECTORY sends.
  public private(set) var childrenBytes: Int
  /// The store's generation when the node was last changed.
  public var generation: UInt64

  init(value: [UInt8], permissions: XenstorePermissions, generation: UInt64) {
    self.value = value
    self.permissions = permissions
    self.children = []
    self.childrenBytes = 0
    self.generation = generation
  }

  mutating func addChild(_ name: [UInt8]) {
    children.append(name)
    childrenBytes += name.count + 1
  }

  mutating func removeChild(_ name: [UInt8]) {
    guard let index = children.firstIndex(of: name) else { return }
    children.remove(at: index)
    childrenBytes -= name.count + 1
  }

  /// xenstored's calc_node_acc_size: what the node-size quota limits.
  public var accountedSize: Int { 16 + permissions.accountedSize + value.count + childrenBytes }

  /// XS_DIRECTORY's payload.
  public var directoryListing: [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(childrenBytes)
    for child in children {
      bytes.append(contentsOf: child)
      bytes.append(0)
    }
    return bytes
  }
}

/// A change watches may fire for. `exact` changes (nodes removed below the one an XS_RM
/// named) fire only watches on that very node; others fire watches on the node and above.
/// `permissions` are the node's when it changed (before, for a removal or XS_SET_PERMS): a
/// watcher who could read the node then hears of the change.
public struct XenstoreChange: Sendable, Equatable {
  public var path: [UInt8]
  public var exact: Bool
  public var permissions: XenstorePermissions?
}

/// What a caller needs on a node.
struct XenstoreNeed: OptionSet, Sendable {
  let rawValue: UInt8
  static let read = XenstoreNeed(rawValue: 1)
  static let write = XenstoreNeed(rawValue: 2)
  static let owner = XenstoreNeed(rawValue: 8)
}

/// The store: the tree, its transactions and its accounting.
public struct XenstoreStore: Sendable {
  public let limits: XenstoreLimits
  var nodes: [XenstoreKey: XenstoreNode] = [:]
  /// Bumped before every change to the tree; a node records it when it changes.
  public private(set) var generation: UInt64 = 0
  /// Nodes each domain owns in the tree (a transaction's are added at commit).
  var nodeCounts: [UInt32: Int] = [:]
  /// Bytes of the tree: each node's accounted size plus its name, plus `nodeOverhead`.
  public private(set) var treeBytes = 0
  /// What a node costs the heap beyond its accounted bytes (its name, value, permission and
  /// children arrays' headers and its dictionary slot; measured about 160 bytes). Counted against
  /// the store's total cap only, so that the cap bounds what the tree takes from the hypervisor's
  /// heap (docs/xenstore.md, "Quotas"); the per-domain quotas stay xenstored's.
  static let nodeOverhead = 192
  /// Bytes held outside the tree, per domain: transactions' private nodes here, watches and
  /// queued messages in `XenstoreServer`. What the memory quota limits.
  var domainMemory: [UInt32: Int] = [:]
  public private(set) var heldOutsideTree = 0
  var transactions: [XenstoreTransactionKey: XenstoreTransaction] = [:]
  var nextTransactionID: [UInt32: UInt32] = [:]

  /// A tree with the root and the two special nodes, owned by domain 0 and closed to others
  /// (xenstored's setup_structure).
  public init(limits: XenstoreLimits = .xenDefaults) {
    self.limits = limits
    let closed = XenstorePermissions(owner: 0, others: .none)
    for name in [XenstorePath.root, XenstorePath.releaseDomain, XenstorePath.introduceDomain] {
      putLive(name, XenstoreNode(value: [], permissions: closed, generation: 0))
    }
  }

  /// Everything the store holds, against `limits.totalBytes`.
  public var totalBytes: Int { treeBytes + heldOutsideTree }

  public func nodeCount(ownedBy domid: UInt32) -> Int { nodeCounts[domid] ?? 0 }

  public func memory(of domid: UInt32) -> Int { domainMemory[domid] ?? 0 }

  /// The tree's node at `name`, outside any transaction (for the hypervisor and tests).
  public func node(at name: [UInt8]) -> XenstoreNode? { nodes[XenstoreKey(name)] }

  /// Every name in the tree, special nodes included.
  public var names: [[UInt8]] { nodes.keys.map { Array($0.bytes) } }

  // MARK: Accounting

  /// Takes `bytes` for `caller` out of the memory quota and the total cap, or refuses with
  /// ENOMEM. Privileged callers have no memory quota.
  mutating func charge(_ bytes: Int, to caller: XenstoreCaller) throws(XenstoreError) {
    guard bytes > 0 else { return }
    guard totalBytes + bytes <= limits.totalBytes else { throw .ENOMEM }
    let held = memory(of: caller.domid)
    if !caller.privileged, held + bytes > limits.memoryPerDomain { throw .ENOMEM }
    domainMemory[caller.domid] = held + bytes
    heldOutsideTree += bytes
  }

  /// Gives back what `charge` took.
  mutating func uncharge(_ bytes: Int, from domid: UInt32) {
    guard bytes > 0 else { return }
    let held = memory(of: domid) - bytes
    domainMemory[domid] = held > 0 ? held : nil
    heldOutsideTree -= bytes
  }

  /// Public form for the server: bytes held outside the tree for a domain.
  public mutating func reserve(_ bytes: Int, for caller: XenstoreCaller) throws(XenstoreError) {
    try charge(bytes, to: caller)
  }

  /// Holds bytes for a domain past its quota and the cap: a reply, which the domain must get.
  public mutating func hold(_ bytes: Int, for domid: UInt32) {
    domainMemory[domid, default: 0] += bytes
    heldOutsideTree += bytes
  }

  public mutating func unreserve(_ bytes: Int, for domid: UInt32) { uncharge(bytes, from: domid) }

  static func cost(_ name: [UInt8], _ node: XenstoreNode) -> Int { name.count + node.accountedSize }

  /// Replaces (or with nil removes) a node of the tree, keeping the counts and bytes, and
  /// stamps a new generation on what is written.
  mutating func putLive(_ name: [UInt8], _ node: XenstoreNode?) {
    let key = XenstoreKey(name)
    if let old = nodes[key] {
      treeBytes -= Self.cost(name, old) + Self.nodeOverhead
      adjustCount(old.permissions.owner, -1)
    }
    generation &+= 1
    if var node {
      node.generation = generation
      treeBytes += Self.cost(name, node) + Self.nodeOverhead
      adjustCount(node.permissions.owner, 1)
      nodes[key] = node
    } else {
      nodes[key] = nil
    }
  }

  mutating func adjustCount(_ domid: UInt32, _ delta: Int) {
    let count = nodeCount(ownedBy: domid) + delta
    nodeCounts[domid] = count != 0 ? count : nil
  }

  // MARK: Views: the tree, or a transaction's overlay on it

  /// The node a caller sees at `name`: its transaction's own copy, else the tree's. In a
  /// transaction the first look at a name records the tree's generation there, for the check at
  /// commit; an unprivileged transaction may look at `nodesPerTransaction` names at most.
  mutating func lookup(_ name: [UInt8], _ context: XenstoreContext) throws(XenstoreError) -> XenstoreNode? {
    guard let key = context.transaction else { return nodes[XenstoreKey(name)] }
    try record(name, key, context.caller)
    if let own = transactions[key]?.overlay[name] { return own }
    return nodes[XenstoreKey(name)]
  }

  mutating func record(_ name: [UInt8], _ key: XenstoreTransactionKey, _ caller: XenstoreCaller) throws(XenstoreError) {
    guard let seen = transactions[key]?.seen, seen[name] == nil else { return }
    if !caller.privileged, seen.count >= limits.nodesPerTransaction { throw .ENOSPC }
    // What remembering the name (and a private copy of its node, if one comes) costs the heap,
    // charged to the domain like the copies' bytes: more than xenstored counts, so that the
    // memory quota and the whole-store cap bound what transactions hold.
    let bookkeeping = name.count + Self.nodeOverhead
    try charge(bookkeeping, to: caller)
    transactions[key]?.bytes += bookkeeping
    transactions[key]?.seen[name] = nodes[XenstoreKey(name)]?.generation ?? XenstoreTransaction.absent
  }

  /// Writes a node in the caller's view; the bytes a transaction holds are charged to it.
  mutating func put(_ name: [UInt8], _ node: XenstoreNode?, _ context: XenstoreContext) throws(XenstoreError) {
    guard let key = context.transaction, var transaction = transactions[key] else {
      putLive(name, node)
      return
    }
    try record(name, key, context.caller)
    transaction = transactions[key] ?? transaction
    let oldOwn: XenstoreNode?? = transaction.overlay[name]
    let before: XenstoreNode? = oldOwn ?? nodes[XenstoreKey(name)]
    let oldBytes = oldOwn.flatMap { $0 }.map { Self.cost(name, $0) } ?? 0
    let newBytes = node.map { Self.cost(name, $0) } ?? 0
    if newBytes > oldBytes { try charge(newBytes - oldBytes, to: context.caller) }
    if newBytes < oldBytes { uncharge(oldBytes - newBytes, from: context.caller.domid) }
    transaction.bytes += newBytes - oldBytes
    if let before { transaction.countDelta[before.permissions.owner, default: 0] -= 1 }
    if let node { transaction.countDelta[node.permissions.owner, default: 0] += 1 }
    transaction.overlay[name] = .some(node)
    transactions[key] = transaction
  }

  /// Nodes `domid` owns in the caller's view.
  func ownedCount(_ domid: UInt32, _ context: XenstoreContext) -> Int {
    var count = nodeCount(ownedBy: domid)
    if let key = context.transaction, let delta = transactions[key]?.countDelta[domid] { count += delta }
    return count
  }

  /// Changes go to the watchers now, or for a transaction at its commit.
  mutating func publish(_ changes: [XenstoreChange], _ context: XenstoreContext) -> [XenstoreChange] {
    guard let key = context.transaction else { return changes }
    for change in changes {
      if let queued = transactions[key]?.changes[change.path] {
        transactions[key]?.changes[change.path] = XenstoreChange(
          path: change.path, exact: queued.exact && change.exact, permissions: queued.permissions)
      } else {
        transactions[key]?.changes[change.path] = change
        transactions[key]?.changeOrder.append(change.path)
      }
    }
    return []
  }

  // MARK: Permission checks

  static func granted(_ node: XenstoreNode, _ caller: XenstoreCaller) -> XenstoreNeed {
    let access = node.permissions.access(for: caller.domid, privileged: caller.privileged)
    var granted: XenstoreNeed = []
    if access.canRead { granted.insert(.read) }
    if access.canWrite { granted.insert(.write) }
    if node.permissions.isOwned(by: caller.domid, privileged: caller.privileged) { granted.insert(.owner) }
    return granted
  }

  /// The node at `name` if the caller has `need` on it. A missing node is ENOENT only if the
  /// closest existing ancestor grants some of `need`, else EACCES, so that a domain learns
  /// nothing of where it may not look (xenstored's errno_from_parents).
  mutating func checkedNode(
    _ name: [UInt8], _ need: XenstoreNeed, _ context: XenstoreContext
  ) throws(XenstoreError) -> XenstoreNode {
    if let node = try lookup(name, context) {
      guard Self.granted(node, context.caller).isSuperset(of: need) else { throw .EACCES }
      return node
    }
    var ancestor = name
    while ancestor != XenstorePath.root {
      ancestor = XenstorePath.parent(of: ancestor)
      if let node = try lookup(ancestor, context) {
        throw Self.granted(node, context.caller).isDisjoint(with: need) ? .EACCES : .ENOENT
      }
    }
    throw .EACCES
  }

  // These two are static, as helpers called from mutating operations should be: a method of
  // `self` called there made the compiler copy the whole store (136 bytes, a byte at a time)
  // for each call.
  static func canonical(_ name: ArraySlice<UInt8>, _ caller: XenstoreCaller, special: Bool) throws(XenstoreError) -> [UInt8] {
    try XenstorePath.canonical(name, domid: caller.domid, privileged: caller.privileged, allowSpecial: special)
  }

  static func context(
    _ caller: XenstoreCaller, _ transaction: UInt32, in transactions: [XenstoreTransactionKey: XenstoreTransaction]
  ) throws(XenstoreError) -> XenstoreContext {
    guard transaction != 0 else { return XenstoreContext(caller: caller, transaction: nil) }
    let key = XenstoreTransactionKey(domid: caller.domid, id: transaction)
    guard transactions[key] != nil else { throw .ENOENT }
    return XenstoreContext(caller: caller, transaction: key)
  }

  // MARK: Operations

  /// XS_READ: the value.
  public mutating func read(
    _ name: ArraySlice<UInt8>, by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> [UInt8] {
    let context = try Self.context(caller, transaction, in: transactions)
    return try checkedNode(Self.canonical(name, caller, special: false), .read, context).value
  }

  /// XS_DIRECTORY: the children's names, each ending in NUL.
  public mutating func directory(
    _ name: ArraySlice<UInt8>, by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> [UInt8] {
    let context = try Self.context(caller, transaction, in: transactions)
    return try checkedNode(Self.canonical(name, caller, special: false), .read, context).directoryListing
  }

  /// XS_DIRECTORY_PART: the node's generation and NUL, then the children's names from byte
  /// `offset` of the listing on, as many whole names as fit in a payload; an empty name (a
  /// second NUL) marks the end (xenstored's send_directory_part).
  public mutating func directoryPart(
    _ name: ArraySlice<UInt8>, offset: Int, by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> [UInt8] {
    let context = try Self.context(caller, transaction, in: transactions)
    let node = try checkedNode(Self.canonical(name, caller, special: false), .read, context)
    var reply = XenstorePath.decimal(node.generation)
    reply.append(0)
    let listing = node.directoryListing
    guard offset >= 0, offset < listing.count else {
      reply.append(0)
      return reply
    }
    let room = XenstoreMessage.payloadMax - reply.count - 1
    var end = offset
    while end < listing.count {
      guard let nul = listing[end...].firstIndex(of: 0) else { break }
      guard nul + 1 - offset <= room else { break }
      end = nul + 1
    }
    reply.append(contentsOf: listing[offset..<end])
    if end == listing.count { reply.append(0) }
    return reply
  }

  /// XS_GET_PERMS (special nodes too).
  public mutating func permissions(
    _ name: ArraySlice<UInt8>, by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> XenstorePermissions {
    let context = try Self.context(caller, transaction, in: transactions)
    return try checkedNode(Self.canonical(name, caller, special: true), .read, context).permissions
  }

  /// XS_WRITE: sets the value, creating the node and any missing ancestors.
  public mutating func write(
    _ name: ArraySlice<UInt8>, _ value: [UInt8], by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> [XenstoreChange] {
    let context = try Self.context(caller, transaction, in: transactions)
    let path = try Self.canonical(name, caller, special: false)
    do throws(XenstoreError) {
      var node = try checkedNode(path, .write, context)
      let size = node.accountedSize - node.value.count + value.count
      if !caller.privileged, size > limits.nodeSize { throw .ENOSPC }
      try ensureRoom(value.count - node.value.count, Self.cost(path, node) + value.count, context)
      node.value = value
      try put(path, node, context)
      return publish([XenstoreChange(path: path, exact: false, permissions: node.permissions)], context)
    } catch .ENOENT {
      let node = try create(path, value, context)
      return publish([XenstoreChange(path: path, exact: false, permissions: node.permissions)], context)
    }
  }

  /// XS_MKDIR: creates an empty node and any missing ancestors; an existing node is fine.
  public mutating func mkdir(
    _ name: ArraySlice<UInt8>, by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> [XenstoreChange] {
    let context = try Self.context(caller, transaction, in: transactions)
    let path = try Self.canonical(name, caller, special: false)
    do throws(XenstoreError) {
      _ = try checkedNode(path, .write, context)
      return []
    } catch .ENOENT {
      let node = try create(path, [], context)
      return publish([XenstoreChange(path: path, exact: false, permissions: node.permissions)], context)
    }
  }

  /// Checks, before an operation changes anything, that what it will write fits: outside a
  /// transaction the tree's growth within the total cap; in a transaction the private copies it
  /// will write (at most `privateBytes`) within the caller's memory quota and the total cap, so
  /// that no charge fails halfway through.
  func ensureRoom(_ treeGrowth: Int, _ privateBytes: Int, _ context: XenstoreContext) throws(XenstoreError) {
    let bytes = context.transaction == nil ? treeGrowth : privateBytes
    guard bytes > 0 else { return }
    if totalBytes + bytes > limits.totalBytes { throw .ENOMEM }
    if context.transaction != nil, !context.caller.privileged,
      memory(of: context.caller.domid) + bytes > limits.memoryPerDomain
    {
      throw .ENOMEM
    }
  }

  /// xenstored's create_node: the missing names from `path` up to the closest existing
  /// ancestor are created with the ancestor's permissions, owned by an unprivileged creator.
  /// Every quota is checked before anything changes.
  mutating func create(_ path: [UInt8], _ value: [UInt8], _ context: XenstoreContext) throws(XenstoreError) -> XenstoreNode {
    let caller = context.caller
    var missing = [path]
    var parentName = XenstorePath.parent(of: path)
    var parentNode = try lookup(parentName, context)
    while parentNode == nil {
      missing.append(parentName)
      parentName = XenstorePath.parent(of: parentName)
      parentNode = try lookup(parentName, context)
    }
    guard var parent = parentNode else { throw .ENOENT }
    let permissions = caller.privileged ? parent.permissions : parent.permissions.ownedBy(caller.domid)
    if !caller.privileged {
      if ownedCount(caller.domid, context) + missing.count > limits.nodesPerDomain { throw .ENOSPC }
      let top = XenstorePath.baseName(of: missing[missing.count - 1])
      if parent.accountedSize + top.count + 1 > limits.nodeSize { throw .ENOSPC }
      for index in missing.indices {
        let childBytes = index == 0 ? 0 : XenstorePath.baseName(of: missing[index - 1]).count + 1
        let size = 16 + permissions.accountedSize + childBytes + (index == 0 ? value.count : 0)
        if size > limits.nodeSize { throw .ENOSPC }
      }
    }
    // An upper bound of what the new nodes cost (a child's name is shorter than its parent's).
    var growth = value.count + XenstorePath.baseName(of: missing[missing.count - 1]).count + 1
    for name in missing { growth += 16 + permissions.accountedSize + 2 * name.count + 1 }
    try ensureRoom(growth, growth + Self.cost(parentName, parent), context)

    parent.addChild(XenstorePath.baseName(of: missing[missing.count - 1]))
    try put(parentName, parent, context)
    var created = XenstoreNode(value: [], permissions: permissions, generation: 0)
    for index in stride(from: missing.count - 1, through: 0, by: -1) {
      var node = XenstoreNode(value: index == 0 ? value : [], permissions: permissions, generation: 0)
      if index > 0 { node.addChild(XenstorePath.baseName(of: missing[index - 1])) }
      try put(missing[index], node, context)
      created = node
    }
    return created
  }

  /// XS_RM: removes the node and everything below it. A missing node whose parent exists is
  /// fine; the root cannot go.
  public mutating func rm(
    _ name: ArraySlice<UInt8>, by caller: XenstoreCaller, transaction: UInt32 = 0
  ) throws(XenstoreError) -> [XenstoreChange] {
    let context = try Self.context(caller, transaction, in: transactions)
    let path = try Self.canonical(name, caller, special: false)
    do throws(XenstoreError) {
      _ = try checkedNode(path, .write, context)
    } catch .ENOENT {
      if try lookup(XenstorePath.parent(of: path), context) != nil { return [] }
      throw .ENOENT
    }
    if path == XenstorePath.root { throw .EINVAL }
    return publish(try remove(path, context), context)
  }

  /// Removes `path` and its subtree (which exists), children before parents, and takes it off
  /// its parent's list. No permission is checked below `path`, as in xenstored.
  mutating func remove(_ path: [UInt8], _ context: XenstoreContext) throws(XenstoreError) -> [XenstoreChange] {
    // Collect first: in a transaction every removed name counts against its quota, and the
    // check must come before the first change.
    var order: [([UInt8], XenstoreNode)] = []
    var stack = [path]
    while let name = stack.popLast() {
      guard let node = try lookup(name, context) else { continue }
      order.append((name, node))
      for child in node.children { stack.append(XenstorePath.child(child, of: name)) }
    }
    let parentName = XenstorePath.parent(of: path)
    guard var parent = try lookup(parentName, context) else { throw .EIO }
    try ensureRoom(0, Self.cost(parentName, parent), context)
    var changes: [XenstoreChange] = []
    for (name, node) in order.reversed() {
      try put(name, nil, context)
      changes.append(XenstoreChange(path: name, exact: name != path, permissions: node.permissions))
    }
    parent.removeChild(XenstorePath.baseName(of: path))
    try put(parentName, parent, context)
    return changes
  }

  /// XS_SET_PERMS: only the owner or a privileged caller; an unprivileged owner may not give
  /// the node away, nor list more than `permissionsPerNode` entries.
  public mutating func setPermissions(
    _ name: ArraySlice<UInt8>, _ permissions: XenstorePermissions, by caller: XenstoreCaller,
    transaction: UInt32 = 0
  ) throws(XenstoreError) -> [XenstoreChange] {
    if !caller.privileged, permissions.entries.count > limits.permissionsPerNode { throw .ENOSPC }
    let context = try Self.context(caller, transaction, in: transactions)
    let path = try Self.canonical(name, caller, special: true)
    var node = try checkedNode(path, [.write, .owner], context)
    if !caller.privileged, permissions.owner != node.permissions.owner { throw .EPERM }
    let old = node.permissions
    let growth = permissions.accountedSize - old.accountedSize
    if !caller.privileged, node.accountedSize + growth > limits.nodeSize { throw .ENOSPC }
    if permissions.owner != old.owner, !caller.privileged,
      ownedCount(permissions.owner, context) + 1 > limits.nodesPerDomain
    {
      throw .ENOSPC
    }
    try ensureRoom(growth, Self.cost(path, node) + max(growth, 0), context)
    node.permissions = permissions
    try put(path, node, context)
    return publish([XenstoreChange(path: path, exact: false, permissions: old)], context)
  }

  // MARK: Domains

  /// A domain is gone: its transactions end, the nodes it owns go (with what is below them,
  /// as xenstored removes a dead domain's orphans), and permission entries naming it are
  /// dropped. Returns the removals, for watches.
  public mutating func release(domain domid: UInt32) -> [XenstoreChange] {
    for key in transactions.keys where key.domid == domid { abort(key) }
    nextTransactionID[domid] = nil
    let live = XenstoreContext(caller: .toolstack, transaction: nil)
    var changes: [XenstoreChange] = []
    if domid != 0, nodeCount(ownedBy: domid) > 0 {
      // Shortest names first, so a removed subtree is not visited again.
      let owned = nodes.filter { $0.value.permissions.owner == domid }.keys.map { Array($0.bytes) }.sorted { $0.count < $1.count }
      for name in owned where nodes[XenstoreKey(name)] != nil && name != XenstorePath.root && name.first != UInt8(ascii: "@") {
        if let removed = try? remove(name, live) { changes += removed }
      }
    }
    for (key, node) in nodes where node.permissions.entries.dropFirst().contains(where: { $0.domid == domid }) {
      var changed = node
      changed.permissions = node.permissions.dropping(domid)
      putLive(Array(key.bytes), changed)
    }
    return changes
  }
}

/// Who asks, and in which transaction (nil: the tree itself).
struct XenstoreContext {
  var caller: XenstoreCaller
  var transaction: XenstoreTransactionKey?
}
