/// guest-triple: triple faults on purpose. It loads an IDT with limit 0 and executes int3: the
/// #BP cannot be delivered (#GP), neither can the #GP (#DF), nor the #DF: a triple fault, which a
/// hypervisor sees as a shutdown intercept and must turn into the end of this domain only.
/// Under plain QEMU with -no-reboot the triple fault ends QEMU with status 0.
@main
struct GuestTriple {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-triple is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

func run() -> Never {
  Console.print("guest-triple: about to triple fault")
  gs_lidt(0, 0)
  gs_int3()
  Console.print("guest-triple: still alive (bug)")
  Xen.shutdown(.crash)
}
#endif
