import XenABI

// The protocol engine: one connection per domain, requests in, replies and watch events out.
// The ring code moves bytes: `receive` takes what a guest wrote to its request ring, and
// `takeOutput` gives what fits in its response ring. Everything between is here:
//
//   bytes → XenstoreMessageReader → handle → permission check and op (XenstoreStore)
//         → reply queued; the op's changes → fire → events queued for every watcher allowed
//
// A connection whose bytes are no protocol (a payload longer than XENSTORE_PAYLOAD_MAX) is
// broken: nothing more is read from it, as xenstored ignores such a connection.

/// A registered watch: the absolute name watched, the caller's token, and how much of an
/// event's name to drop so a relative watch hears relative names.
public struct XenstoreWatch: Sendable, Equatable {
  public var path: [UInt8]
  public var token: [UInt8]
  public var relativePrefix: Int

  var bytes: Int { path.count + token.count }
}

/// A class, not a struct: a request finds its connection once and changes it in place, where a
/// struct in the server's dictionary was copied out and back (a dozen references counted each
/// way) for every change. Only touched with the store's lock held (`GuestXenstore.lock`).
final class XenstoreConnection: @unchecked Sendable {
  var reader = XenstoreMessageReader()
  var watches: [XenstoreWatch] = []
  /// Encoded replies and events, oldest first; `sent` bytes of the first are already taken.
  var queue: [XenstoreQueued] = []
  var sent = 0
  /// Replies in `queue`: what the outstanding-requests quota counts.
  var replies = 0
  /// Events in `queue` by payload, so an identical pending event is not queued twice.
  var pendingEvents: [[UInt8]: Int] = [:]
  /// "/local/domain/<domid>/", which the domain's relative names hang from (built once).
  let home: [UInt8]
  /// Where the fast read (`XenstoreServer.fastRead`) puts a name: `home`, never overwritten,
  /// and then room for a ring's worth of bytes, where every name is copied. A relative name is
  /// then looked up with the prefix before it, an absolute one from where it starts: either way
  /// in one copy from the ring, and nothing is allocated.
  var nameBuffer: [UInt8]

  init(domid: UInt32) {
    home = XenstorePath.home(of: domid)
    nameBuffer = home + [UInt8](repeating: 0, count: XenABI.XenstoreRing.size)
  }
}

struct XenstoreQueued: Sendable {
  var bytes: [UInt8]
  var isReply: Bool
  var eventPayload: [UInt8]?
  /// What it is charged: its bytes, and an event's payload once more (kept as the key that
  /// stops a duplicate), so the quota and the cap bound what the heap holds.
  var charged: Int { bytes.count + (eventPayload?.count ?? 0) }
}

/// The connections by domid. Not a `[UInt32: XenstoreConnection]`: the standard library
/// hashes an integer key with SipHash, about a hundred instructions on every request. A domid
/// is no secret and a domain chooses none, so a multiplicative mix is enough (consecutive
/// domids land in distinct buckets).
// @safe: its unsafe storage (`last`) is the table's own entry, unretained (see there).
@safe struct XenstoreConnections: Sequence, Sendable {
  struct Key: Hashable, Sendable {
    let domid: UInt32
    func hash(into hasher: inout Hasher) { hasher.combine(domid) }
    /// What `Dictionary` asks for: this hash directly, without a `Hasher` around it.
    func _rawHashValue(seed: Int) -> Int {
      Int(truncatingIfNeeded: (UInt64(domid) ^ UInt64(bitPattern: Int64(seed))) &* 0x9E37_79B9_7F4A_7C15)
    }
  }

  private var table: [Key: XenstoreConnection] = [:]
  /// The connection `find` found last: a domain's requests come one after another, and the
  /// table's lookup is then one compare. Every change below keeps it in step with the table.
  /// Unretained: the table holds it for as long as it is here, and `lastFound` lends it out
  /// without a retain and a release.
  private var last: (domid: UInt32, connection: Unmanaged<XenstoreConnection>)?

  subscript(domid: UInt32) -> XenstoreConnection? {
    get { table[Key(domid: domid)] }
    set {
      table[Key(domid: domid)] = newValue
      if unsafe last?.domid == domid { unsafe last = nil }   // unsafe: the domid compared, the entry dropped
    }
  }

  /// `self[domid]`, remembered for the next call.
  mutating func find(_ domid: UInt32) -> XenstoreConnection? {
    if let last = unsafe last, unsafe last.domid == domid { return unsafe last.connection.takeUnretainedValue() }   // unsafe: the table keeps it (see `last`)
    let found = table[Key(domid: domid)]
    unsafe last = found.map { unsafe (domid, Unmanaged.passUnretained($0)) }   // unsafe: the table keeps it (see `last`)
    return found
  }

  /// `domid`'s connection if `find` found it last, unretained: to be lent out
  /// (`_withUnsafeGuaranteedRef`) while nothing changes the table.
  @inline(__always) func lastFound(_ domid: UInt32) -> Unmanaged<XenstoreConnection>? {
    guard let last = unsafe last, unsafe last.domid == domid else { return nil }   // unsafe: the domid compared
    return unsafe last.connection   // unsafe: handed on unretained, as this says
  }

  mutating func removeValue(forKey domid: UInt32) -> XenstoreConnection? {
    if unsafe last?.domid == domid { unsafe last = nil }   // unsafe: the domid compared, the entry dropped
    return table.removeValue(forKey: Key(domid: domid))
  }

  var keys: [UInt32] { table.keys.map { $0.domid } }

  struct Iterator: IteratorProtocol {
    var inner: Dictionary<Key, XenstoreConnection>.Iterator
    mutating func next() -> (domid: UInt32, connection: XenstoreConnection)? {
      inner.next().map { ($0.key.domid, $0.value) }
    }
  }

  func makeIterator() -> Iterator { Iterator(inner: table.makeIterator()) }
}

public struct XenstoreServer: Sendable {
  public private(set) var store: XenstoreStore
  var connections = XenstoreConnections()

  public init(limits: XenstoreLimits = .xenDefaults) {
    store = XenstoreStore(limits: limits)
  }

  /// Only domain 0's connection is privileged: the hypervisor acting as toolstack
  /// (`XenstoreCaller.toolstack`); no guest has id 0.
  public func caller(_ domid: UInt32) -> XenstoreCaller { Self.caller(domid) }

  /// `caller(domid)`, for the static fast read.
  static func caller(_ domid: UInt32) -> XenstoreCaller {
    XenstoreCaller(domid: domid, privileged: domid == XenstoreCaller.toolstack.domid)
  }

  // MARK: Bytes (the ring side)

  /// Takes request bytes from `domid`'s ring, handling each whole message and queueing its
  /// reply. Returns how many bytes it took: it stops at a broken stream and while the domain
  /// has `outstandingPerDomain` replies it has not taken (leave the rest in the ring).
  public mutating func receive(_ bytes: ArraySlice<UInt8>, from domid: UInt32) -> Int {
    var consumed = 0
    var rest = bytes
    let who = caller(domid)
    let connection = connection(of: domid)
    while !rest.isEmpty {
      let stop = connection.reader.broken != nil
        || (!who.privileged && connection.replies >= store.limits.outstandingPerDomain)
      if stop { break }
      let (count, message) = connection.reader.take(rest)
      consumed += count
      rest = rest.dropFirst(count)
      if let message {
        // The reply goes before the events the request itself caused (a new watch's first
        // event), as xenstored acks before it fires.
        let queued = connection.queue.count
        enqueue(handle(message, from: who), to: domid, isReply: true, at: queued)
      }
      if count == 0 { break }
    }
    return consumed
  }

  /// XS_READ by `domid` outside a transaction, of the name in `page` at `offset` (`count`
  /// bytes, without its NUL), for the ring's fast path (`XenstoreService.answerLoneRead`): the
  /// node's value when the read succeeds and the reply may go out at once (nothing queued for
  /// the domain before it, no message half read). Nil otherwise: the request then takes the
  /// general path, which asks the same store and so gives the same answer, or the error. The
  /// name is copied from the page once, after the home prefix in the connection's
  /// `nameBuffer`, and only that copy is looked at.
  @_optimize(speed) mutating func fastRead(_ page: some SharedPage, nameAt offset: Int, count: Int, from domid: UInt32) -> [UInt8]? {
    // The usual case, the connection found last, lent without a retain and a release: only
    // the store is looked at below, the connections table is not changed.
    if let found = unsafe connections.lastFound(domid) {   // unsafe: see below
      return unsafe found._withUnsafeGuaranteedRef { Self.fastRead(page, nameAt: offset, count: count, from: domid, $0, store.nodes) }   // unsafe: the table keeps it, and nothing below changes the table
    }
    guard let connection = connections.find(domid) else { return nil }
    return Self.fastRead(page, nameAt: offset, count: count, from: domid, connection, store.nodes)
  }

  /// Static, with the store's table as an argument: as a method, called from the closure
  /// above, it copied the whole server, and with the whole store, the store (a byte at a time).
  @_optimize(speed) private static func fastRead(_ page: some SharedPage, nameAt offset: Int, count: Int, from domid: UInt32,
                                                 _ connection: XenstoreConnection, _ nodes: [XenstoreKey: XenstoreNode]) -> [UInt8]? {
    guard connection.queue.isEmpty, connection.reader.isIdle, count >= 0 else { return nil }
    let home = connection.home.count
    guard count <= connection.nameBuffer.count - home,
          page.copyBytes(at: offset, count: count, into: &connection.nameBuffer, at: home) else { return nil }
    // No `XenstorePath.check` here: every name in the store passed it when its node was made
    // (the root and the special nodes are the store's own), and a name that fits in one ring
    // is under every length limit, so a name found by its bytes is one the check would pass.
    // A name not found takes the general path, which checks it and answers the error. Only
    // the special names, which a read may not ask for, and a relative name that is empty
    // (the home with its `/`) are left to it here.
    guard count > 0, count <= XenstorePath.relativeMax else { return nil }
    let first = connection.nameBuffer[home]
    guard first != UInt8(ascii: "@") else { return nil }
    // A relative name with the home prefix before it; an absolute one alone.
    let absolute = first == UInt8(ascii: "/")
    let full = connection.nameBuffer[(absolute ? home : 0)..<(home + count)]
    let who = caller(domid)
    let hash = XenstoreKey.hash(full)
    guard let node = nodes[XenstoreKey(full, nameHash: hash)],
          node.permissions.access(for: who.domid, privileged: who.privileged).canRead else { return nil }
    return node.value
  }

  /// Whether `domid`'s stream broke the protocol; the ring code then sets the ring's error
  /// field (XENSTORE_ERROR_PROTO) and stops moving its bytes.
  public func isBroken(_ domid: UInt32) -> Bool { connections[domid]?.reader.broken != nil }

  /// Up to `limit` bytes of `domid`'s queued replies and events, in order.
  public mutating func takeOutput(for domid: UInt32, upTo limit: Int) -> [UInt8] {
    guard let connection = connections[domid] else { return [] }
    var out: [UInt8] = []
    while out.count < limit, let first = connection.queue.first {
      let count = min(limit - out.count, first.bytes.count - connection.sent)
      out.append(contentsOf: first.bytes[connection.sent..<(connection.sent + count)])
      connection.sent += count
      if connection.sent == first.bytes.count {
        connection.queue.removeFirst()
        connection.sent = 0
        dequeued(first, from: connection, domid: domid)
      }
    }
    return out
  }

  /// The queued messages of `domid`, whole, oldest first (for the hypervisor's own
  /// connection and for tests); a message already partly taken by `takeOutput` stays.
  public mutating func takeMessages(for domid: UInt32) -> [XenstoreMessage] {
    guard let connection = connections[domid] else { return [] }
    var messages: [XenstoreMessage] = []
    while connection.sent == 0, let first = connection.queue.first {
      connection.queue.removeFirst()
      dequeued(first, from: connection, domid: domid)
      if let message = try? XenstoreMessage.parse(first.bytes) { messages.append(message) }
    }
    return messages
  }

  public func queuedCount(for domid: UInt32) -> Int { connections[domid]?.queue.count ?? 0 }

  /// The domains with replies or events waiting for room in their rings.
  /// Mutating though it changes nothing: called on the hypervisor's global store, it then
  /// works in place, where a non-mutating call copied the whole server out first.
  public mutating func domainsWithQueuedOutput() -> [UInt32] {
    var domains: [UInt32] = []
    for (domid, connection) in connections where !connection.queue.isEmpty { domains.append(domid) }
    return domains
  }

  /// `domid`'s connection, made if it has none yet.
  mutating func connection(of domid: UInt32) -> XenstoreConnection {
    if let connection = connections[domid] { return connection }
    let connection = XenstoreConnection(domid: domid)
    connections[domid] = connection
    return connection
  }

  mutating func dequeued(_ item: XenstoreQueued, from connection: XenstoreConnection, domid: UInt32) {
    if item.isReply { connection.replies -= 1 }
    if let payload = item.eventPayload {
      let count = (connection.pendingEvents[payload] ?? 1) - 1
      connection.pendingEvents[payload] = count > 0 ? count : nil
    }
    store.unreserve(item.charged, for: domid)
  }

  /// Queues a message for `domid`, charged to it. A reply is always queued, past the quotas
  /// (it is at most one payload, and at most `outstandingPerDomain` wait); an event that does not
  /// fit the domain's memory quota or the total cap is dropped.
  mutating func enqueue(_ message: XenstoreMessage, to domid: UInt32, isReply: Bool, at position: Int? = nil) {
    let payload = isReply ? nil : message.payload
    let item = XenstoreQueued(bytes: message.encoded(), isReply: isReply, eventPayload: payload)
    if isReply {
      store.hold(item.charged, for: domid)
    } else {
      do throws(XenstoreError) {
        try store.reserve(item.charged, for: caller(domid))
      } catch {
        return
      }
    }
    let connection = connection(of: domid)
    if let position, position < connection.queue.count {
      connection.queue.insert(item, at: max(position, connection.sent > 0 ? 1 : 0))
    } else {
      connection.queue.append(item)
    }
    if isReply { connection.replies += 1 }
    if let payload { connection.pendingEvents[payload, default: 0] += 1 }
  }

  // MARK: Messages

  /// Handles one request from `caller` and returns its reply (echoing the request and
  /// transaction ids). Watch events the request causes are queued for their watchers,
  /// the caller's own connection included.
  public mutating func handle(_ request: XenstoreMessage, from caller: XenstoreCaller) -> XenstoreMessage {
    do throws(XenstoreError) {
      let (op, payload) = try dispatch(request, caller)
      guard payload.count <= XenstoreMessage.payloadMax else { return error(.E2BIG, request) }
      return XenstoreMessage(op: op, requestID: request.requestID, transactionID: request.transactionID, payload: payload)
    } catch {
      return self.error(error, request)
    }
  }

  func error(_ failure: XenstoreError, _ request: XenstoreMessage) -> XenstoreMessage {
    XenstoreMessage(
      op: .error, requestID: request.requestID, transactionID: request.transactionID, payload: failure.name + [0])
  }

  static let ok: [UInt8] = [UInt8(ascii: "O"), UInt8(ascii: "K"), 0]

  mutating func dispatch(_ request: XenstoreMessage, _ caller: XenstoreCaller) throws(XenstoreError) -> (XenstoreOp, [UInt8]) {
    guard let op = request.op else { throw .ENOSYS }
    let tx = request.transactionID
    switch op {
    case .read:
      return (op, try store.read(try argument(request), by: caller, transaction: tx))
    case .directory:
      return (op, try store.directory(try argument(request), by: caller, transaction: tx))
    case .directoryPart:
      let strings = request.strings
      guard strings.count == 2 else { throw .EINVAL }
      let offset = Int(Self.leadingNumber(strings[1]) ?? 0)
      return (op, try store.directoryPart(strings[0], offset: offset, by: caller, transaction: tx))
    case .getPerms:
      return (op, try store.permissions(try argument(request), by: caller, transaction: tx).wireForm)
    case .write:
      let strings = request.strings
      guard let name = strings.first else { throw .EINVAL }
      let value = Array(request.payload[(name.count + 1)...])
      fire(try store.write(name, value, by: caller, transaction: tx), by: caller)
      return (op, Self.ok)
    case .mkdir:
      fire(try store.mkdir(try argument(request), by: caller, transaction: tx), by: caller)
      return (op, Self.ok)
    case .rm:
      fire(try store.rm(try argument(request), by: caller, transaction: tx), by: caller)
      return (op, Self.ok)
    case .setPerms:
      let strings = request.strings
      guard strings.count >= 2 else { throw .EINVAL }
      if !caller.privileged, strings.count - 1 > store.limits.permissionsPerNode { throw .ENOSPC }
      let permissions = try XenstorePermissions(strings: Array(strings.dropFirst()))
      fire(try store.setPermissions(strings[0], permissions, by: caller, transaction: tx), by: caller)
      return (op, Self.ok)
    case .transactionStart:
      let id = try store.startTransaction(by: caller, within: tx)
      return (op, XenstorePath.decimal(id) + [0])
    case .transactionEnd:
      let argument = try argument(request)
      let commit: Bool
      if argument.elementsEqual([UInt8(ascii: "T")]) {
        commit = true
      } else if argument.elementsEqual([UInt8(ascii: "F")]) {
        commit = false
      } else {
        throw .EINVAL
      }
      fire(try store.endTransaction(tx, commit: commit, by: caller), by: caller)
      return (op, Self.ok)
    case .getDomainPath:
      guard let domid = Self.leadingNumber(try argument(request)) else { throw .EINVAL }
      return (op, XenstorePath.domainPath(domid) + [0])
    case .watch:
      let strings = request.strings
      guard strings.count == 2 else { throw .EINVAL }
      try watch(strings[0], token: Array(strings[1]), by: caller)
      return (op, Self.ok)
    case .unwatch:
      let strings = request.strings
      guard strings.count == 2 else { throw .EINVAL }
      try unwatch(strings[0], token: Array(strings[1]), by: caller)
      return (op, Self.ok)
    case .resetWatches:
      resetWatches(of: caller.domid)
      return (op, Self.ok)
    case .release:
      guard caller.privileged else { throw .EACCES }
      guard let domid = Self.leadingNumber(try argument(request)) else { throw .EINVAL }
      release(domain: domid)
      return (op, Self.ok)
    case .introduce:
      guard caller.privileged else { throw .EACCES }
      fireSpecial(XenstorePath.introduceDomain)
      return (op, Self.ok)
    case .control, .isDomainIntroduced, .resume, .setTarget:
      guard caller.privileged else { throw .EACCES }
      throw .ENOSYS
    case .watchEvent, .error:
      throw .ENOSYS
    }
  }

  /// The one argument of a request (exactly one NUL, at the end), or EINVAL.
  func argument(_ request: XenstoreMessage) throws(XenstoreError) -> ArraySlice<UInt8> {
    guard let argument = request.singleArgument else { throw .EINVAL }
    return argument
  }

  /// The decimal number at the start of `bytes` (as atoi reads it), nil if there is none or
  /// it does not fit 32 bits.
  static func leadingNumber(_ bytes: ArraySlice<UInt8>) -> UInt32? {
    let digits = bytes.prefix { XenstorePath.isDigit($0) }
    return XenstorePath.parseDecimal(digits)
  }

  // MARK: Watches

  /// XS_WATCH: EEXIST for the same name and token twice, E2BIG past `watchesPerDomain`,
  /// ENOMEM past the memory quota. The watch fires once at once, as xenstored's does.
  mutating func watch(_ name: ArraySlice<UInt8>, token: [UInt8], by caller: XenstoreCaller) throws(XenstoreError) {
    let path = try XenstorePath.canonical(name, domid: caller.domid, privileged: caller.privileged, allowSpecial: true)
    let relative = name.first != UInt8(ascii: "/") && name.first != UInt8(ascii: "@")
    let connection = connection(of: caller.domid)
    if connection.watches.contains(where: { $0.path == path && $0.token == token }) { throw .EEXIST }
    if !caller.privileged, connection.watches.count >= store.limits.watchesPerDomain { throw .E2BIG }
    let watch = XenstoreWatch(
      path: path, token: token,
      relativePrefix: relative ? XenstorePath.domainPath(caller.domid).count + 1 : 0)
    try store.reserve(watch.bytes, for: caller)
    connection.watches.append(watch)
    send(event: path, to: watch, of: caller.domid)
  }

  /// XS_UNWATCH: ENOENT if there is no such watch.
  mutating func unwatch(_ name: ArraySlice<UInt8>, token: [UInt8], by caller: XenstoreCaller) throws(XenstoreError) {
    let path = try XenstorePath.canonical(name, domid: caller.domid, privileged: caller.privileged, allowSpecial: true)
    guard let connection = connections[caller.domid],
      let index = connection.watches.firstIndex(where: { $0.path == path && $0.token == token })
    else { throw .ENOENT }
    let watch = connection.watches.remove(at: index)
    store.unreserve(watch.bytes, for: caller.domid)
  }

  /// XS_RESET_WATCHES: every watch and transaction of the domain goes.
  public mutating func resetWatches(of domid: UInt32) {
    if let connection = connections[domid] {
      for watch in connection.watches { store.unreserve(watch.bytes, for: domid) }
      connection.watches = []
    }
    store.abortTransactions(of: domid)
  }

  public func watches(of domid: UInt32) -> [XenstoreWatch] { connections[domid]?.watches ?? [] }

  /// Queues the events `changes` cause. A connection hears of a change if it may read the
  /// node as it was, or as it is, or its parent (xenstored's watch_permitted); then each of its
  /// watches at or above the node (only on the node, for an exact change) gets one event.
  mutating func fire(_ changes: [XenstoreChange], by caller: XenstoreCaller) {
    guard !changes.isEmpty else { return }
    for domid in connections.keys.sorted() {
      guard let watches = connections[domid]?.watches, !watches.isEmpty else { continue }
      let watcher = self.caller(domid)
      for change in changes where mayHear(change, watcher) {
        for watch in watches {
          let matches = change.exact ? change.path == watch.path : XenstorePath.isAtOrBelow(change.path, watch.path)
          if matches { send(event: change.path, to: watch, of: domid) }
        }
      }
    }
  }

  func mayHear(_ change: XenstoreChange, _ watcher: XenstoreCaller) -> Bool {
    if watcher.privileged { return true }
    if let permissions = change.permissions, permissions.access(for: watcher.domid, privileged: false).canRead {
      return true
    }
    if let node = store.node(at: change.path), node.permissions.access(for: watcher.domid, privileged: false).canRead {
      return true
    }
    if let parent = store.node(at: XenstorePath.parent(of: change.path)),
      parent.permissions.access(for: watcher.domid, privileged: false).canRead
    {
      return true
    }
    return false
  }

  /// Queues "path\0token\0" for a watch; an identical event already waiting is enough
  /// (special names excepted, as in xenstored), and an event longer than a payload is not sent.
  mutating func send(event path: [UInt8], to watch: XenstoreWatch, of domid: UInt32) {
    let name = path.count > watch.relativePrefix ? Array(path[watch.relativePrefix...]) : path
    let payload = name + [0] + watch.token + [0]
    guard payload.count <= XenstoreMessage.payloadMax else { return }
    if path.first != UInt8(ascii: "@"), connections[domid]?.pendingEvents[payload] != nil { return }
    enqueue(XenstoreMessage(op: .watchEvent, payload: payload), to: domid, isReply: false)
  }

  /// Fires watches on a special name (@introduceDomain, @releaseDomain) for those who may
  /// read its node.
  mutating func fireSpecial(_ name: [UInt8]) {
    let permissions = store.node(at: name)?.permissions
    fire([XenstoreChange(path: name, exact: true, permissions: permissions)], by: .toolstack)
  }

  // MARK: Domains

  /// A new domain's connection exists: @introduceDomain fires.
  public mutating func introduce(domain domid: UInt32) {
    if connections[domid] == nil { connections[domid] = XenstoreConnection(domid: domid) }
    fireSpecial(XenstorePath.introduceDomain)
  }

  /// A domain is gone: its connection (watches, queued messages), transactions and the nodes
  /// it owns go, and its memory is freed; watchers of the removed nodes and of
  /// @releaseDomain hear of it.
  public mutating func release(domain domid: UInt32) {
    if let connection = connections.removeValue(forKey: domid) {
      for watch in connection.watches { store.unreserve(watch.bytes, for: domid) }
      for item in connection.queue { store.unreserve(item.charged, for: domid) }
    }
    fire(store.release(domain: domid), by: .toolstack)
    fireSpecial(XenstorePath.releaseDomain)
  }
}
