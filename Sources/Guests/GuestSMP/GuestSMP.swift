/// guest-smp: brings up a second vcpu with VCPUOP_initialise (64-bit mode, the boot vcpu's own
/// CR0/CR3/CR4/EFER, a second stack, RIP = guest_ap_start64, RDI = 1) and VCPUOP_up. Both vcpus
/// print three ticks, yielding between them; vcpu 1 then sets a shared flag and takes itself down
/// (VCPUOP_down). vcpu 0 waits for the flag (bounded), prints "guest-smp: both vcpus ran" and
/// powers off. Any failure prints why and shuts down with reason crash.
@main
struct GuestSMP {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-smp is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

/// Set to 1 by vcpu 1 when it has printed its ticks; touched only through gs_atomic_*. A lazily
/// initialised global: vcpu 0 touches it before vcpu 1 exists, so the initialiser runs once.
nonisolated(unsafe) let sharedFlag: UnsafeMutablePointer<UInt64> = {
  let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  p.initialize(to: 0)
  return p
}()

/// How many times vcpu 0 yields while waiting for vcpu 1 before it gives up.
let waitLimit = 200_000

func ticks(_ vcpu: UInt64) {
  for i in 1...3 {
    Console.print("vcpu \(vcpu): tick \(i)")
    Xen.yield()
    Guest.spin(2000)
  }
}

/// vcpu 1 starts here: guest_ap_start64 (boot.S) calls it with the vcpu id from RDI.
@c(guest_secondary_main)
public func secondaryMain(_ vcpuID: UInt64) {
  ticks(vcpuID)
  gs_atomic_store(sharedFlag, 1)
  let r = Xen.vcpuOp(2, vcpu: vcpuID)   // VCPUOP_down on itself
  Console.print("guest-smp: vcpu \(vcpuID): VCPUOP_down returned \(r), blocking")
  while true { Xen.block() }
}

func run() -> Never {
  Console.print("guest-smp: vcpu 0 starting")
  Guest.requireHypervisor("guest-smp")
  gs_atomic_store(sharedFlag, 0)   // initialise the global before vcpu 1 can see it

  var context = gs_vcpu_hvm_context()   // zeroed, all 128 bytes
  context.mode = 1                       // VCPU_HVM_MODE_64B
  context.cpu_regs.x86_64.rip = gs_ap_entry_address()
  context.cpu_regs.x86_64.rsp = gs_secondary_stack_top(0)
  context.cpu_regs.x86_64.rdi = 1        // the vcpu id, passed on to secondaryMain
  context.cpu_regs.x86_64.rflags = 0x2   // reserved bit 1; interrupts off
  context.cpu_regs.x86_64.cr0 = CPU.cr0
  context.cpu_regs.x86_64.cr3 = CPU.cr3
  context.cpu_regs.x86_64.cr4 = CPU.cr4
  context.cpu_regs.x86_64.efer = CPU.efer
  Console.print("guest-smp: vcpu 1 context rip \(hex(context.cpu_regs.x86_64.rip)) rsp \(hex(context.cpu_regs.x86_64.rsp)) cr3 \(hex(context.cpu_regs.x86_64.cr3)) efer \(hex(context.cpu_regs.x86_64.efer))")

  let initialised = withUnsafeMutableBytes(of: &context) { Xen.vcpuOp(0, vcpu: 1, Xen.address($0.baseAddress)) }
  if initialised != 0 {
    Console.print("guest-smp: VCPUOP_initialise failed: \(initialised)")
    Xen.shutdown(.crash)
  }
  let up = Xen.vcpuOp(1, vcpu: 1)
  if up != 0 {
    Console.print("guest-smp: VCPUOP_up failed: \(up)")
    Xen.shutdown(.crash)
  }
  Console.print("guest-smp: vcpu 1 is up")

  ticks(0)

  var waited = 0
  while gs_atomic_load(sharedFlag) == 0 {
    if waited == waitLimit {
      Console.print("guest-smp: FAIL: vcpu 1 did not finish after \(waitLimit) yields")
      Xen.shutdown(.crash)
    }
    Xen.yield()
    CPU.pause()
    waited += 1
  }
  Console.print("guest-smp: both vcpus ran")
  Xen.shutdown(.poweroff)
}
#endif
