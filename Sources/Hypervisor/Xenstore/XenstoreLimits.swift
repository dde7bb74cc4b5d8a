/// Who is asking: a domain, and whether it is privileged (the hypervisor acting as toolstack,
/// or a domain it trusts as one). Privileged callers have full access to every node and no
/// per-domain quotas, as dom0 has with xenstored; the store's total cap still holds for them.
public struct XenstoreCaller: Sendable, Equatable, Hashable {
  public var domid: UInt32
  public var privileged: Bool

  public init(domid: UInt32, privileged: Bool) {
    self.domid = domid
    self.privileged = privileged
  }

  /// The hypervisor writing as the toolstack; nodes it creates are owned by domain 0, as
  /// xenstored's are by dom0.
  public static let toolstack = XenstoreCaller(domid: 0, privileged: true)

  public static func domain(_ domid: UInt32) -> XenstoreCaller {
    XenstoreCaller(domid: domid, privileged: false)
  }
}

/// The quotas, with the defaults of Xen 4.19's C xenstored (tools/xenstored/domain.c
/// hard_quotas), applied to unprivileged callers; and the store's own hard cap.
public struct XenstoreLimits: Sendable, Equatable {
  /// Nodes a domain may own ("nodes", -E): ENOSPC past it.
  public var nodesPerDomain = 1000
  /// A node's accounted size ("node-size", -S): 16 header bytes + 8 per permission entry + the
  /// value + the children's names with their NULs. ENOSPC past it.
  public var nodeSize = 2048
  /// Watches per domain ("watches", -W): E2BIG past it.
  public var watchesPerDomain = 128
  /// Open transactions per domain ("transactions", -t): ENOSPC past it.
  public var transactionsPerDomain = 10
  /// Nodes one transaction may touch ("transaction-nodes"): ENOSPC past it.
  public var nodesPerTransaction = 1024
  /// Permission entries per node ("node-permissions", -A): ENOSPC past it.
  public var permissionsPerNode = 5
  /// Replies queued for a domain that it has not taken yet ("outstanding"): past it the
  /// server reads no more requests from the domain until it takes some.
  public var outstandingPerDomain = 20
  /// Bytes a domain holds besides the nodes it owns ("memory", 2.5 MiB): its watches, its
  /// transactions' private nodes and its queued replies and events. A watch or transaction past
  /// it is refused with ENOMEM; a watch event past it is dropped, as xenstored drops it.
  public var memoryPerDomain = 2 * 1024 * 1024 + 512 * 1024
  /// The store's hard cap on all it holds: nodes, transactions, watches, queued messages, for
  /// every caller. xenstored has no such cap (it lives in dom0's memory); here the store lives in
  /// the hypervisor's heap. ENOMEM past it.
  public var totalBytes = 16 * 1024 * 1024

  public init() {}

  public static let xenDefaults = XenstoreLimits()
}
