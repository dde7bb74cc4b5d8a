// Transactions as xenstored has them (tools/xenstored/transaction.c): a transaction keeps its
// own copies of the nodes it writes; every name it looks at records the tree's generation there
// (or that nothing was there) at the first look. The commit succeeds only if every one of those
// names still has that generation in the tree; otherwise the caller gets EAGAIN and retries the
// whole transaction. Reads see the tree as it is at the first look, which with the check at
// commit makes the transaction's view the tree's at the moment of its commit.

/// A transaction is named by its domain and an id unique within that domain's connection.
public struct XenstoreTransactionKey: Sendable, Hashable {
  public var domid: UInt32
  public var id: UInt32
}

struct XenstoreTransaction: Sendable {
  /// What `seen` records for a name with no node.
  static let absent = UInt64.max

  /// The tree's generation at each name looked at, at the first look.
  var seen: [[UInt8]: UInt64] = [:]
  /// The transaction's own nodes; `.some(nil)` is a node it removed.
  var overlay: [[UInt8]: XenstoreNode?] = [:]
  /// How the nodes each domain owns change at commit.
  var countDelta: [UInt32: Int] = [:]
  /// Bytes of `overlay`, charged to the transaction's domain.
  var bytes = 0
  /// Changes for watches, fired at commit, one per name (the first order kept).
  var changes: [[UInt8]: XenstoreChange] = [:]
  var changeOrder: [[UInt8]] = []
}

extension XenstoreStore {
  public func transactionCount(of domid: UInt32) -> Int {
    transactions.keys.reduce(0) { $0 + ($1.domid == domid ? 1 : 0) }
  }

  /// XS_TRANSACTION_START: a new id (never 0, never one in use). Not inside a transaction
  /// (EBUSY); at most `transactionsPerDomain` open for an unprivileged domain (ENOSPC).
  public mutating func startTransaction(
    by caller: XenstoreCaller, within transaction: UInt32 = 0
  ) throws(XenstoreError) -> UInt32 {
    guard transaction == 0 else { throw .EBUSY }
    if !caller.privileged, transactionCount(of: caller.domid) >= limits.transactionsPerDomain { throw .ENOSPC }
    var id = nextTransactionID[caller.domid] ?? 1
    // Bounded: a domain has far fewer than 2^32 transactions open.
    while id == 0 || transactions[XenstoreTransactionKey(domid: caller.domid, id: id)] != nil { id &+= 1 }
    nextTransactionID[caller.domid] = id &+ 1
    transactions[XenstoreTransactionKey(domid: caller.domid, id: id)] = XenstoreTransaction()
    return id
  }

  /// XS_TRANSACTION_END: commits (EAGAIN if a name the transaction looked at changed since,
  /// ENOSPC if a domain would own too many nodes) or, with `commit` false, discards. Either
  /// way the transaction is over. Returns the committed changes, for watches.
  public mutating func endTransaction(
    _ id: UInt32, commit: Bool, by caller: XenstoreCaller
  ) throws(XenstoreError) -> [XenstoreChange] {
    let key = XenstoreTransactionKey(domid: caller.domid, id: id)
    guard id != 0, let transaction = transactions[key] else { throw .ENOENT }
    abort(key)
    guard commit else { return [] }
    for (name, generation) in transaction.seen where (nodes[XenstoreKey(name)]?.generation ?? XenstoreTransaction.absent) != generation {
      throw .EAGAIN
    }
    for (domid, delta) in transaction.countDelta where delta > 0 && domid != 0 {
      // Only unprivileged creators are held to the quota, as during the transaction.
      if !caller.privileged, nodeCount(ownedBy: domid) + delta > limits.nodesPerDomain { throw .ENOSPC }
    }
    // The private copies become the tree's; the bytes they held were charged already, and the
    // tree cannot grow by more than they hold.
    for (name, node) in transaction.overlay { putLive(name, node) }
    return transaction.changeOrder.compactMap { transaction.changes[$0] }
  }

  /// Drops a transaction and gives back what it held.
  mutating func abort(_ key: XenstoreTransactionKey) {
    guard let transaction = transactions.removeValue(forKey: key) else { return }
    uncharge(transaction.bytes, from: key.domid)
  }

  /// Ends every transaction of a domain (XS_RESET_WATCHES does this too).
  public mutating func abortTransactions(of domid: UInt32) {
    for key in transactions.keys where key.domid == domid { abort(key) }
  }
}
