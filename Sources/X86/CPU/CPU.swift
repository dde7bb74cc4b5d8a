#if os(none)
import Support

/// Named access to the CPU instructions the Support layer wraps.
public enum CPU {
  public struct CPUIDResult { public var eax, ebx, ecx, edx: UInt32 }

  public static func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> CPUIDResult {
    let r = hv_cpuid(leaf, subleaf)
    return CPUIDResult(eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx)
  }

  @inline(__always) public static func rdtsc() -> UInt64 { hv_rdtsc() }

  /// True when this machine is QEMU's TCG (its hypervisor CPUID leaf says "TCGTCGTCGTCG").
  public static var isQEMUTCG: Bool {
    guard cpuid(1).ecx & (1 << 31) != 0 else { return false }     // the hypervisor bit
    let leaf = cpuid(0x4000_0000)
    return leaf.ebx == 0x5447_4354 && leaf.ecx == 0x4354_4743 && leaf.edx == 0x4743_5447   // "TCGT" "CGTC" "GTCG"
  }
  @inline(__always) public static func rdmsr(_ msr: UInt32) -> UInt64 { hv_rdmsr(msr) }
  @inline(__always) public static func wrmsr(_ msr: UInt32, _ value: UInt64) { hv_wrmsr(msr, value) }
  @inline(__always) public static func pause() { hv_pause() }

  /// Which pcpu runs this code (an index, not an APIC ID). 0 until the BSP sets up its slot.
  @inline(__always) public static var current: Int { Int(hv_this_cpu()) }

  public static var hasTSCDeadline: Bool { cpuid(1).ecx & (1 << 24) != 0 }
  public static var hasSVM: Bool { cpuid(0x8000_0000).eax >= 0x8000_0001 && cpuid(0x8000_0001).ecx & (1 << 2) != 0 }
  public static var hasNPT: Bool { cpuid(0x8000_0000).eax >= 0x8000_000A && cpuid(0x8000_000A).edx & 1 != 0 }
  public static var hasGigabytePages: Bool { cpuid(0x8000_0001).edx & (1 << 26) != 0 }

  /// The 12-byte vendor string, e.g. "AuthenticAMD".
  public static var vendor: String {
    let r = cpuid(0)
    var bytes: [UInt8] = []
    for word in [r.ebx, r.edx, r.ecx] {
      for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

/// Busy-waits for `ticks` TSC cycles.
public func spinDelay(tscTicks ticks: UInt64) {
  let start = CPU.rdtsc()
  while CPU.rdtsc() &- start < ticks { CPU.pause() }
}
#endif
