// Error numbers, from xen/include/public/errno.h.
//
// Xen's values are Linux's x86 values. A failing hypercall returns the negated number in RAX, so
// -ENOSYS (-38) is 0xFFFF_FFFF_FFFF_FFDA in the register.

extension XenABI {
  /// `XEN_E*`: the errors a hypercall can return (negated, in RAX).
  public enum Errno: Int64, Error, Sendable, CaseIterable {
    case EPERM = 1
    case ENOENT = 2
    case ESRCH = 3
    /// Internal to Xen (`__XEN__` only): never returned to a guest.
    case EINTR = 4
    case EIO = 5
    case ENXIO = 6
    case E2BIG = 7
    case ENOEXEC = 8
    case EBADF = 9
    case ECHILD = 10
    /// Also `EWOULDBLOCK`.
    case EAGAIN = 11
    case ENOMEM = 12
    case EACCES = 13
    case EFAULT = 14
    case EBUSY = 16
    case EEXIST = 17
    case EXDEV = 18
    case ENODEV = 19
    case EINVAL = 22
    case ENFILE = 23
    case EMFILE = 24
    case ENOSPC = 28
    case EMLINK = 31
    case EDOM = 33
    case ERANGE = 34
    /// Also `EDEADLOCK`.
    case EDEADLK = 35
    case ENAMETOOLONG = 36
    case ENOLCK = 37
    case ENOSYS = 38
    case EBADRQC = 56
    case EBADSLT = 57
    case ENODATA = 61
    case ETIME = 62
    case EBADMSG = 74
    case EOVERFLOW = 75
    case EILSEQ = 84
    /// Internal to Xen (`__XEN__` only): a preempted hypercall that will be restarted.
    case ERESTART = 85
    case EUSERS = 87
    case ENOTSOCK = 88
    case EOPNOTSUPP = 95
    case EADDRINUSE = 98
    case EADDRNOTAVAIL = 99
    case ENOBUFS = 105
    case EISCONN = 106
    case ENOTCONN = 107
    case ESHUTDOWN = 108
    case ETOOMANYREFS = 109
    case ETIMEDOUT = 110

    /// The value to put in RAX for this error: the two's complement of the number.
    public var returnValue: UInt64 {
      UInt64(bitPattern: -rawValue)
    }

    /// The error a RAX value encodes, or nil when it is not a negated error number.
    public init?(returnValue: UInt64) {
      let signed = Int64(bitPattern: returnValue)
      guard signed < 0, signed != Int64.min else { return nil }
      self.init(rawValue: -signed)
    }
  }
}
