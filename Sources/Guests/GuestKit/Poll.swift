#if os(none)
import GuestSupport

extension Xen {
  /// sched_op(SCHEDOP_poll, {ports, nr_ports, timeout}): blocks until one of `ports` is pending
  /// or system time reaches `timeout` (absolute ns; 0 = no timeout). Works with interrupts off
  /// (the pending bit is what it waits for, not the upcall). 0 when a port is pending or the
  /// timeout passed.
  @discardableResult
  public static func poll(ports: [UInt32], timeout: UInt64 = 0) -> Int64 {
    ports.withUnsafeBufferPointer { buffer in
      var arg = gs_sched_poll(ports: handle(buffer.baseAddress), nr_ports: UInt32(buffer.count), timeout: timeout)
      return withArgument(&arg) { schedOp(UInt64(GS_SCHEDOP_poll), $0) }
    }
  }
}
#endif
