// The console ring page, from xen/include/public/io/console.h (struct xencons_interface).

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
      public static let input = 0          // char in[1024]
      public static let output = 1024      // char out[2048]
      public static let inputConsumer = 3072   // XENCONS_RING_IDX in_cons
      public static let inputProducer = 3076   // in_prod
      public static let outputConsumer = 3080  // out_cons
      public static let outputProducer = 3084  // out_prod
    }
  }
}
