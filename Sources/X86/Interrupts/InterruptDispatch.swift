#if os(none)
import Support
import Hypervisor
import Synchronization

/// Every interrupt and exception arrives here from entry.S with the saved registers.
///
/// Exceptions in hypervisor code are fatal: the crash report says where and why. Device and
/// inter-processor interrupts do their minimum, acknowledge the APIC, and leave the rest to the
/// softirqs, which run here on the way out (interrupts stay off, so they never nest).
@c(hv_interrupt)
public func handleInterrupt(_ frame: UnsafeMutablePointer<hv_interrupt_frame>) {
  let vector = unsafe frame.pointee.vector
  if vector < 32 {
    unsafe CrashReport.exception(frame)
  }
  switch vector {
  case Vector.timer:
    let cpu = PCPUs.current
    cpu.timerInterrupts.wrappingAdd(1, ordering: .relaxed)
    Softirq.raise(.timer, on: cpu)
    LocalAPIC.endOfInterrupt()
  case Vector.reschedule:
    LocalAPIC.endOfInterrupt()
  case Vector.callFunction:
    IPI.handleCall()
    LocalAPIC.endOfInterrupt()
  case Vector.spurious:
    return                               // spurious interrupts are not acknowledged
  default:
    Log.warning("interrupt: unexpected vector \(vector)")
    LocalAPIC.endOfInterrupt()
  }
  Softirq.run()
}
#endif
