#if os(none)
import Support
import Hypervisor
import Synchronization

/// The hypervisor's own crash report, printed before anything else happens.
///
/// It allocates nothing and takes the console lock itself (breaking it after a bounded wait, since
/// the crash may have happened while the lock was held), so the report is readable even when the
/// heap or the console is what broke. Then it stops the machine with the crash exit code.
public enum CrashReport {
  private static let crashing = Atomic<Bool>(false)

  /// A CPU exception (vectors 0-31) or a Swift trap (ud2) in hypervisor code.
  static func exception(_ frame: UnsafeMutablePointer<hv_interrupt_frame>) -> Never {
    let f = unsafe frame.pointee
    begin()
    Log.writeUnlocked("*** SWIFTVISOR CRASH on pcpu ")
    Log.writeDecimalUnlocked(UInt64(CPU.current))
    Log.writeUnlocked(": ")
    if f.vector == 6 && isUD2(at: f.rip) {
      Log.writeUnlocked("Swift runtime trap (ud2: a failed precondition, overflow or force-unwrap)")
    } else {
      Log.writeUnlocked(Vector.exceptionName(f.vector))
    }
    Log.writeUnlocked(" (vector ")
    Log.writeDecimalUnlocked(f.vector)
    Log.writeUnlocked(")\n")
    field("    error=", f.error_code); field("  RIP=", f.rip); field("  RSP=", f.rsp)
    field("  RFLAGS=", f.rflags); field("  CS=", f.cs, digits: 4); Log.writeUnlocked("\n")
    field("    CR2=", hv_read_cr2()); field("  CR3=", hv_read_cr3()); field("  CR0=", hv_read_cr0())
    field("  CR4=", hv_read_cr4()); Log.writeUnlocked("\n")
    field("    RAX=", f.rax); field("  RBX=", f.rbx); field("  RCX=", f.rcx); field("  RDX=", f.rdx)
    Log.writeUnlocked("\n")
    field("    RSI=", f.rsi); field("  RDI=", f.rdi); field("  RBP=", f.rbp); field("  R8= ", f.r8)
    Log.writeUnlocked("\n")
    field("    R9= ", f.r9); field("  R10=", f.r10); field("  R11=", f.r11); field("  R12=", f.r12)
    Log.writeUnlocked("\n")
    field("    R13=", f.r13); field("  R14=", f.r14); field("  R15=", f.r15); Log.writeUnlocked("\n")
    backtrace(rip: f.rip, rbp: f.rbp)
    end()
  }

  /// A fatal error found by the hypervisor itself (not a CPU exception): report and stop.
  public static func panic(_ message: StaticString, value: UInt64? = nil) -> Never {
    begin()
    Log.writeUnlocked("*** SWIFTVISOR PANIC on pcpu ")
    Log.writeDecimalUnlocked(UInt64(CPU.current))
    Log.writeUnlocked(": ")
    Log.writeUnlocked(message)
    if let value { Log.writeUnlocked(" "); Log.writeHexUnlocked(value) }
    Log.writeUnlocked("\n")
    backtrace(rip: 0, rbp: hv_read_rbp())
    Log.writeUnlocked("*** end of crash report\n")
    Power.exit(.panic)
  }

  private static func begin() {
    // A second crash (on another pcpu, or inside this report) must not print over the first.
    if crashing.exchange(true, ordering: .acquiringAndReleasing) {
      while true { hv_halt_forever() }
    }
    // Wait a bounded time for whoever holds the console, then take it regardless.
    var spins = 0
    while !Log.lock.tryLock() && spins < 50_000_000 { spins += 1; hv_pause() }
    // What is queued goes out first, then every byte of the report waits for the line: the
    // machine may stop at any moment now.
    unsafe Serial.synchronous = true
    Log.writeUnlocked("\n")
  }

  private static func end() -> Never {
    Log.writeUnlocked("*** end of crash report\n")
    Power.exit(.crash)
  }

  private static func field(_ name: StaticString, _ value: UInt64, digits: Int = 16) {
    Log.writeUnlocked(name)
    Log.writeHexUnlocked(value, digits: digits)
  }

  /// True if the faulting instruction is `ud2` (0F 0B), byte by byte: the two bytes may straddle
  /// any boundary.
  private static func isUD2(at rip: UInt64) -> Bool {
    guard PhysicalMemory.isMapped(rip, count: 2) else { return false }
    return PhysicalMemory.ownRead8(rip) == 0x0F && PhysicalMemory.ownRead8(rip + 1) == 0x0B
  }

  /// Walks the frame-pointer chain on the crashing pcpu's stack. Every step is bounds-checked
  /// against that stack, so a corrupt chain ends the walk instead of faulting again.
  private static func backtrace(rip: UInt64, rbp: UInt64) {
    Log.writeUnlocked("    backtrace:\n")
    var frameNumber: UInt64 = 0
    if rip != 0 { line(frameNumber, rip); frameNumber += 1 }
    let cpu = CPU.current
    var (bottom, top) = unsafe cpu < 64 ? PCPUs.stackBounds[cpu] : (0, 0)
    if bottom == 0 { bottom = hv_boot_stack_bottom(); top = hv_boot_stack_top() }
    var framePointer = rbp
    while frameNumber < 24, framePointer & 7 == 0, framePointer >= bottom, framePointer + 16 <= top {
      let returnAddress = hv_read_physical64(framePointer + 8)
      let next = hv_read_physical64(framePointer)
      if returnAddress == 0 { break }
      line(frameNumber, returnAddress)
      frameNumber += 1
      if next <= framePointer { break }       // the chain must move up the stack
      framePointer = next
    }
  }

  private static func line(_ n: UInt64, _ address: UInt64) {
    Log.writeUnlocked("      #")
    Log.writeDecimalUnlocked(n)
    Log.writeUnlocked(" ")
    Log.writeHexUnlocked(address)
    Log.writeUnlocked("\n")
  }
}
#endif
