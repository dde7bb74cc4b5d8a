// Domain identifiers, from xen/include/public/xen.h (`domid_t`, 16 bits).

extension XenABI {
  /// Reserved `domid_t` values. Ordinary domains use 0 up to (not including) `firstReserved`.
  public enum DomainID {
    /// DOMID_FIRST_RESERVED: ids from here up cannot name an ordinary domain.
    public static let firstReserved: UInt16 = 0x7FF0
    /// DOMID_SELF: "the calling domain", accepted wherever an unprivileged guest names a domain.
    public static let selfDomain: UInt16 = 0x7FF0
    /// DOMID_IO: restricts page-table updates to I/O memory (PV).
    public static let io: UInt16 = 0x7FF1
    /// DOMID_XEN: the hypervisor's own pages.
    public static let xen: UInt16 = 0x7FF2
    /// DOMID_COW: copy-on-write pages of memory sharing.
    public static let cow: UInt16 = 0x7FF3
    /// DOMID_INVALID.
    public static let invalid: UInt16 = 0x7FF4
    /// DOMID_IDLE: the idle domain (never visible to guests).
    public static let idle: UInt16 = 0x7FFF
  }
}
