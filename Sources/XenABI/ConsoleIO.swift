// HYPERVISOR_console_io, from xen/include/public/xen.h.
//
// console_io(cmd, count, buffer): write `count` bytes from the guest-virtual `buffer` to the
// hypervisor console, or read up to `count` bytes of console input. Linux uses it for
// `earlyprintk=xen` and, in a domU, for hvc0 before the console ring is up.

extension XenABI {
  /// `CONSOLEIO_*`: the command in the first argument of console_io.
  public enum ConsoleIOCommand: UInt32, Sendable, CaseIterable {
    case write = 0
    case read = 1
  }
}
