// The xenstore ring page, from xen/include/public/io/xs_wire.h (struct xenstore_domain_interface).

import XenPublic

extension XenABI {
  /// `struct xenstore_domain_interface`: one page shared by a domain's xenstore client (Linux's
  /// xenbus) and the store. `req` carries requests to the store, `rsp` replies and watch events
  /// back. The indices run free (they wrap at 2^32) and are taken modulo 1024, as the console
  /// ring's are. `connection` is XENSTORE_CONNECTED (0) from the start here: no reconnection.
  public enum XenstoreRing {
    public static let size = 1024
    public enum Offset {
      public static let request = Int(XEN_XENSTORE_REQ)                 // char req[1024]
      public static let response = Int(XEN_XENSTORE_RSP)                // char rsp[1024]
      public static let requestConsumer = Int(XEN_XENSTORE_REQ_CONS)    // req_cons
      public static let requestProducer = Int(XEN_XENSTORE_REQ_PROD)    // req_prod
      public static let responseConsumer = Int(XEN_XENSTORE_RSP_CONS)   // rsp_cons
      public static let responseProducer = Int(XEN_XENSTORE_RSP_PROD)   // rsp_prod
      public static let serverFeatures = Int(XEN_XENSTORE_SERVER_FEATURES)
      public static let connection = Int(XEN_XENSTORE_CONNECTION)
      public static let error = Int(XEN_XENSTORE_ERROR)
    }
    /// XENSTORE_ERROR_*: what the server writes to `error` when it stops serving the ring.
    public enum Error: UInt32, Sendable {
      case none = 0
      case communication = 1
      /// An index more than a ring ahead of the other (XENSTORE_ERROR_RINGIDX).
      case ringIndex = 2
      /// A message no protocol allows (XENSTORE_ERROR_PROTO).
      case proto = 3

      /// The constant's name in xs_wire.h, for log lines (Embedded Swift prints no enum case).
      public var name: String {
        switch self {
        case .none: "XENSTORE_ERROR_NONE"
        case .communication: "XENSTORE_ERROR_COMM"
        case .ringIndex: "XENSTORE_ERROR_RINGIDX"
        case .proto: "XENSTORE_ERROR_PROTO"
        }
      }
    }
  }
}
