import Testing
import XenABI
import XenPublic

@testable import Hypervisor

/// VCPUOP_initialise with a 32-bit vcpu_hvm_context, checked as Xen's arch_set_info_hvm_guest
/// checks it (xen/arch/x86/hvm/domain.c).
@Suite struct StartState32Tests {
  /// A flat 32-bit protected-mode start: 4 GiB code and data segments, a busy TSS, paging off.
  func flat(_ change: (inout vcpu_hvm_x86_32) -> Void = { _ in }) -> vcpu_hvm_context {
    var context = vcpu_hvm_context()
    context.mode = 0
    var r = vcpu_hvm_x86_32()
    r.eip = 0x10_0000
    r.esp = 0x9_0000
    r.ebx = 0x1234
    r.eflags = 0x2
    r.cr0 = 0x11
    r.cs_ar = 0xC9B; r.cs_limit = 0xF_FFFF
    r.ds_ar = 0xC93; r.ds_limit = 0xF_FFFF
    r.ss_ar = 0xC93; r.ss_limit = 0xF_FFFF
    r.es_ar = 0xC93; r.es_limit = 0xF_FFFF
    r.tr_ar = 0x8B; r.tr_limit = 0x67
    change(&r)
    context.cpu_regs.x86_32 = r
    return context
  }

  @Test func aFlatStartDecodes() throws {
    let start = try StartState32(flat())
    #expect(start.eip == 0x10_0000)
    #expect(start.esp == 0x9_0000)
    #expect(start.ebx == 0x1234)
    #expect(start.cs == .init(attributes: 0xC9B, limit: 0xF_FFFF, base: 0))
    #expect(start.ss.attributes == 0xC93)
    #expect(start.tr.attributes == 0x8B)
    // The accessed bit is set on present segments, the busy bit on TR.
    #expect(try StartState32(flat { $0.ds_ar = 0xC92 }).ds.attributes == 0xC93)
    #expect(try StartState32(flat { $0.tr_ar = 0x89 }).tr.attributes == 0x8B)
    // Null DS and ES are allowed.
    #expect(try StartState32(flat { $0.ds_ar = 0; $0.es_ar = 0 }).ds.attributes == 0)
  }

  @Test func whatXenRefusesIsEINVAL() {
    func refused(_ context: vcpu_hvm_context) -> Bool {
      do throws(XenABI.Errno) { _ = try StartState32(context); return false } catch { return error == .EINVAL }
    }
    var padded = flat()
    padded.pad = 1
    #expect(refused(padded))
    var sixtyFour = flat()
    sixtyFour.mode = 1
    #expect(refused(sixtyFour))
    #expect(refused(flat { $0.pad1 = 1 }))
    #expect(refused(flat { $0.pad2.2 = 1 }))
    #expect(refused(flat { $0.cs_ar = 0 }), "null CS")
    #expect(refused(flat { $0.ss_ar = 0 }), "null SS")
    #expect(refused(flat { $0.tr_ar = 0 }), "null TR")
    #expect(refused(flat { $0.cs_ar = 0x1C9B }), "attribute bits 12-15")
    #expect(refused(flat { $0.cs_ar = 0xC93 }), "data segment as CS")
    #expect(refused(flat { $0.ss_ar = 0xC9B }), "code segment as SS")
    #expect(refused(flat { $0.ss_ar = 0xC91 }), "read-only SS")
    #expect(refused(flat { $0.ds_ar = 0xC99 }), "execute-only DS")
    #expect(refused(flat { $0.es_ar = 0xC13 }), "non-present ES")
    #expect(refused(flat { $0.ds_ar = 0xC83 }), "system segment as DS")
    #expect(refused(flat { $0.tr_ar = 0x93 }), "data segment as TR")
    #expect(refused(flat { $0.tr_ar = 0x83 }), "16-bit TSS as TR")
    #expect(refused(flat { $0.cs_ar = 0x49B; $0.cs_limit = 0xFFFF; $0.eip = 0x1_0000 }), "EIP past a byte-granular limit")
    #expect(!refused(flat { $0.cs_ar = 0x49B; $0.cs_limit = 0xFFFF; $0.eip = 0xFFFF }))
    #expect(refused(flat { $0.ss_ar = 0xCF3 }), "SS.DPL 3 with CS.DPL 0")
    #expect(refused(flat { $0.cs_ar = 0xCFB; $0.ss_ar = 0xCF3 ; $0.ds_ar = 0xC93; $0.es_ar = 0xCF3 }) == false)
    #expect(refused(flat { $0.ds_ar = 0xCF3; $0.cs_ar = 0xCBB; $0.ss_ar = 0xCB3 }), "DS less privileged is fine, more is not")
    #expect(refused(flat { $0.efer = 1 << 10 }), "LMA without LME")
  }

  /// Any bytes as a context: an answer, never a trap.
  @Test func randomContextsNeverTrap() {
    var random = SplitMix64(seed: 0x32B)
    for _ in 0..<2000 {
      var bytes = (0..<vcpu_hvm_context.guestSize).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      bytes[0...7] = [0, 0, 0, 0, 0, 0, 0, 0]
      guard let context = vcpu_hvm_context(bytes: bytes) else { continue }
      do throws(XenABI.Errno) { _ = try StartState32(context) } catch { #expect(error == .EINVAL) }
    }
  }
}
