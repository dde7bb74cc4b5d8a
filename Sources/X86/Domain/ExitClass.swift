#if os(none)
import Hypervisor

/// The kinds of #VMEXIT the hypervisor counts per vcpu (`VCPU.exitsByClass`), and reports per
/// domain when it is destroyed: how much of a guest's time went to the hypervisor, and why.
/// `visor bench linux` reads that line.
enum ExitClass: Int, CaseIterable {
  /// A host interrupt (timer, IPI) or NMI/SMI/INIT arrived while the guest ran.
  case interrupt
  /// The guest opened an interrupt window we asked for (an upcall was waiting).
  case window
  case cpuid
  case msr
  case io
  case hlt
  case hypercall
  case nestedPageFault
  /// Everything else (#UD for SVM instructions, task switches, triple faults …).
  case other

  @inline(__always) init(code: UInt64) {
    switch code {
    case ExitCode.intr, ExitCode.nmi, ExitCode.smi, ExitCode.initSignal: self = .interrupt
    case ExitCode.virtualInterrupt: self = .window
    case ExitCode.cpuid: self = .cpuid
    case ExitCode.msr: self = .msr
    case ExitCode.ioio: self = .io
    case ExitCode.hlt: self = .hlt
    case ExitCode.vmmcall: self = .hypercall
    case ExitCode.nestedPageFault: self = .nestedPageFault
    default: self = .other
    }
  }

  var name: StaticString {
    switch self {
    case .interrupt: "interrupt"
    case .window: "window"
    case .cpuid: "cpuid"
    case .msr: "msr"
    case .io: "io"
    case .hlt: "hlt"
    case .hypercall: "hypercall"
    case .nestedPageFault: "npf"
    case .other: "other"
    }
  }

  /// The domain's exits, summed over its vcpus, as one console line:
  /// `exits: 123456 in 4200 ms (29394 per s): interrupt 1000, cpuid 20, io 3000, …` (zero
  /// classes left out).
  static func summary(_ domain: Domain, lifetimeNanoseconds: UInt64) -> String {
    var total: UInt64 = 0
    var parts: [String] = []
    for kind in ExitClass.allCases {
      var count: UInt64 = 0
      for vcpu in domain.vcpus { count &+= vcpu.exitsByClass[kind.rawValue] }
      total &+= count
      if count > 0 { parts.append("\(kind.name) \(count)") }
    }
    let milliseconds = lifetimeNanoseconds / 1_000_000
    let perSecond = milliseconds > 0 ? total * 1000 / milliseconds : 0
    var line = "exits: \(total) in \(milliseconds) ms (\(perSecond) per s)"
    if !parts.isEmpty {
      line += ": "
      for (index, part) in parts.enumerated() { line += (index > 0 ? ", " : "") + part }
    }
    return line
  }
}
#endif
