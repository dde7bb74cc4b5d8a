// The console ring page, from xen/include/public/io/console.h (struct xencons_interface).

import XenPublic

extension XenABI {
  /// `struct xencons_interface`: one page shared by a guest's console frontend (hvc0) and its
  /// backend. `in` carries bytes to the guest, `out` bytes from it. The indices run free (they
  /// wrap at 2^32) and are taken modulo the array size; the producer writes the data, then (after
  /// a write barrier) its index; the consumer reads the index, then the data, then advances its
  /// own index.
  public enum ConsoleRing {
    public static let inSize = 1024
    public static let outSize = 2048
    public enum Offset {
      public static let input = Int(XEN_XENCONS_IN)          // char in[1024]
      public static let output = Int(XEN_XENCONS_OUT)      // char out[2048]
      public static let inputConsumer = Int(XEN_XENCONS_IN_CONS)   // XENCONS_RING_IDX in_cons
      public static let inputProducer = Int(XEN_XENCONS_IN_PROD)   // in_prod
      public static let outputConsumer = Int(XEN_XENCONS_OUT_CONS)  // out_cons
      public static let outputProducer = Int(XEN_XENCONS_OUT_PROD)  // out_prod
    }
  }
}
