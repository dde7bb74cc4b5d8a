import XenABI
import XenPublic

/// A vcpu's start state from a 32-bit `vcpu_hvm_context` (VCPU_HVM_MODE_32B), checked as Xen's
/// arch_set_info_hvm_guest checks it, before anything of the vcpu changes: the pads zero; CS,
/// SS, DS and ES code or data segments that are present (DS and ES may be null), CS a code
/// segment, SS a writable data one with CS's DPL, DS and ES readable and not more privileged
/// than CS; TR a 32-bit TSS (made busy); EIP inside CS's limit; EFER.LMA only with LME. Any
/// other value of a register is the guest's own business (the CPU checks the rest at VMRUN, and
/// the arch layer refuses what the hypervisor would not run).
///
/// The `ar` fields are the VMCB's 12-bit attribute format (type, S, DPL, P, AVL, L, D/B, G),
/// which is Xen's `segment_register.attr` too.
public struct StartState32: Equatable, Sendable {
  public struct Segment: Equatable, Sendable {
    public var attributes: UInt16
    public var limit: UInt32
    public var base: UInt32

    var type: UInt16 { attributes & 0xF }
    var isCodeOrData: Bool { attributes & (1 << 4) != 0 }
    var dpl: UInt16 { (attributes >> 5) & 3 }
    var present: Bool { attributes & (1 << 7) != 0 }
    var granular: Bool { attributes & (1 << 11) != 0 }
  }

  public var cs, ds, ss, es, tr: Segment
  public var eax, ecx, edx, ebx, esp, ebp, esi, edi, eip, eflags: UInt32
  public var cr0, cr3, cr4: UInt32
  public var efer: UInt64

  public enum Kind { case cs, ss, ds, es, tr }

  /// The checked start state, or -EINVAL.
  public init(_ context: vcpu_hvm_context) throws(XenABI.Errno) {
    guard context.mode == 0, context.pad == 0 else { throw .EINVAL }
    let r = unsafe context.cpu_regs.x86_32   // unsafe: a C union's member, the one `mode` (checked above) says was written
    guard r.pad1 == 0, r.pad2.0 == 0, r.pad2.1 == 0, r.pad2.2 == 0 else { throw .EINVAL }
    func segment(_ attributes: UInt16, _ limit: UInt32, _ base: UInt32, _ kind: Kind) throws(XenABI.Errno) -> Segment {
      var value = Segment(attributes: attributes, limit: limit, base: base)
      if kind == .tr { value.attributes |= 2 }                      // busy
      else if value.present { value.attributes |= 1 }                // accessed
      try Self.check(value, kind)
      return value
    }
    cs = try segment(r.cs_ar, r.cs_limit, r.cs_base, .cs)
    ds = try segment(r.ds_ar, r.ds_limit, r.ds_base, .ds)
    ss = try segment(r.ss_ar, r.ss_limit, r.ss_base, .ss)
    es = try segment(r.es_ar, r.es_limit, r.es_base, .es)
    tr = try segment(r.tr_ar, r.tr_limit, r.tr_base, .tr)
    let limit = cs.granular ? (cs.limit << 12) | 0xFFF : cs.limit    // wraps as in Xen: a 32-bit limit
    guard r.eip <= limit else { throw .EINVAL }
    guard ss.dpl == cs.dpl else { throw .EINVAL }
    guard !ds.present || ds.dpl <= cs.dpl, !es.present || es.dpl <= cs.dpl else { throw .EINVAL }
    guard r.efer & (1 << 10) == 0 || r.efer & (1 << 8) != 0 else { throw .EINVAL }
    (eax, ecx, edx, ebx, esp, ebp, esi, edi, eip) = (r.eax, r.ecx, r.edx, r.ebx, r.esp, r.ebp, r.esi, r.edi, r.eip)
    eflags = r.eflags
    (cr0, cr3, cr4, efer) = (r.cr0, r.cr3, r.cr4, r.efer)
  }

  /// Xen's check_segment.
  static func check(_ segment: Segment, _ kind: Kind) throws(XenABI.Errno) {
    guard segment.attributes & 0xF000 == 0 else { throw .EINVAL }
    if segment.attributes == 0 {
      guard kind == .ds || kind == .es else { throw .EINVAL }          // null: DS and ES only
      return
    }
    if kind == .tr {
      guard !segment.isCodeOrData, segment.type == 0xB else { throw .EINVAL }   // busy 32-bit TSS
    } else {
      guard segment.isCodeOrData else { throw .EINVAL }
    }
    guard segment.present else { throw .EINVAL }
    switch kind {
    case .cs: guard segment.type & 0x8 != 0 else { throw .EINVAL }
    case .ss: guard segment.type & 0x8 == 0, segment.type & 0x2 != 0 else { throw .EINVAL }
    case .ds, .es: guard segment.type & 0x8 == 0 || segment.type & 0x2 != 0 else { throw .EINVAL }
    case .tr: break
    }
  }
}
