#if os(none)
import Hypervisor
import Support

/// The general registers of a vcpu, wherever they live: RAX and RSP in the VMCB (the CPU saves
/// them there), the rest in the vcpu's context page (vmrun.S saves them there).
public struct GuestRegisters {
  public enum Name {
    case rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15

    var contextOffset: UInt64? {
      switch self {
      case .rax, .rsp: nil
      case .rbx: UInt64(GC_RBX)
      case .rcx: UInt64(GC_RCX)
      case .rdx: UInt64(GC_RDX)
      case .rsi: UInt64(GC_RSI)
      case .rdi: UInt64(GC_RDI)
      case .rbp: UInt64(GC_RBP)
      case .r8: UInt64(GC_R8)
      case .r9: UInt64(GC_R9)
      case .r10: UInt64(GC_R10)
      case .r11: UInt64(GC_R11)
      case .r12: UInt64(GC_R12)
      case .r13: UInt64(GC_R13)
      case .r14: UInt64(GC_R14)
      case .r15: UInt64(GC_R15)
      }
    }
  }

  public let vmcb: VMCB
  public let context: UInt64

  public init(_ vcpu: VCPU) {
    vmcb = VMCB(address: vcpu.vmcb)
    context = vcpu.context
  }

  public subscript(_ name: Name) -> UInt64 {
    get {
      switch name {
      case .rax: return vmcb.rax
      case .rsp: return vmcb.rsp
      default: return PhysicalMemory.ownRead64(context &+ name.contextOffset!)
      }
    }
    nonmutating set {
      switch name {
      case .rax: vmcb.rax = newValue
      case .rsp: vmcb.rsp = newValue
      default: PhysicalMemory.ownWrite64(context &+ name.contextOffset!, newValue)
      }
    }
  }
}
#endif
