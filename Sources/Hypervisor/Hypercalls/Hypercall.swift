import XenABI

/// One hypercall as the dispatcher sees it: the number and up to five arguments, already taken
/// from the guest's registers by the arch layer (64-bit: RDI RSI RDX R10 R8; 32-bit: EBX ECX EDX
/// ESI EDI).
public struct HypercallFrame: Sendable {
  public var number: UInt64
  public var arguments: (UInt64, UInt64, UInt64, UInt64, UInt64)

  public init(number: UInt64, _ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0, _ a4: UInt64 = 0) {
    self.number = number
    arguments = (a0, a1, a2, a3, a4)
  }
}

/// What the vcpu does after a hypercall handler returns.
public enum HypercallOutcome: Sendable {
  /// Put the value in RAX and resume the guest after the VMMCALL.
  case result(Int64)
  /// The call stopped at a preemption point. Its progress is in the (rewritten) arguments: the
  /// arch layer stores them back in the guest's registers and does NOT advance RIP, so the guest
  /// re-issues the VMMCALL when it next runs; meanwhile the pcpu runs someone else.
  case continuation(HypercallFrame)
  /// Put the value in RAX, advance RIP, and give up the pcpu (SCHEDOP_yield).
  case yield(Int64)
  /// Put the value in RAX, advance RIP, and block until an event (SCHEDOP_block).
  case block(Int64)
  /// Put the value in RAX, advance RIP, and take the vcpu offline (VCPUOP_down): it stays
  /// initialised, and VCPUOP_up brings it back where it left off.
  case down(Int64)
  /// The domain has been shut down by this call; the vcpu does not return to the guest.
  case shutdown

  public static func error(_ errno: XenABI.Errno) -> HypercallOutcome { .result(-errno.rawValue) }
}

/// What a handler may do to the calling guest and its domain. The arch layer implements it
/// (X86/Domain/X86HypercallEnvironment.swift); host tests implement it with fakes.
public protocol HypercallEnvironment {
  var vcpu: VCPU { get }
  /// Copies from / to the guest's virtual address space; nil / false on any bad address.
  func read(_ guestVirtual: UInt64, count: Int) -> [UInt8]?
  func write(_ guestVirtual: UInt64, _ bytes: [UInt8]) -> Bool
  /// Puts the domain's shared_info page at `gfn` (made on first use), giving back what was
  /// there and taking it from where it was; nil on success. Nothing changes when it fails.
  func placeSharedInfo(gfn: UInt64) -> XenABI.Errno?
  /// Gives the domain RAM for 2^order pages at `gfn` within its `memory=` (and
  /// `Domain.ramPages` counts them); false, with nothing changed, if it is over its allotment,
  /// nothing is free, or a page there is taken.
  func populate(gfn: UInt64, order: Int) -> Bool
  /// Takes the 2^order pages at `gfn` out of the domain's memory (its RAM count drops by the
  /// RAM among them); false, with nothing changed, if one of them is not mapped.
  func release(gfn: UInt64, order: Int) -> Bool
  /// The guest's memory map, as its start info gave it.
  var memoryMap: [(address: UInt64, size: UInt64, type: UInt32)] { get }
  /// Starts vcpu `target` from a vcpu_hvm_context structure; nil on success.
  func initialiseVCPU(_ target: VCPU, context: [UInt8]) -> XenABI.Errno?
  /// True when the current hypercall should stop at its next preemption point.
  func preemptionRequested() -> Bool
  /// A small little-endian value from guest-virtual memory (a default reads through `read`).
  func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at address: UInt64) -> T?
  /// VCPUOP_register_vcpu_info's claim: if `target` has no vcpu_info page yet, sets its
  /// `vcpuInfoGFN` and returns the machine address of the RAM page at `gfn`, on which the
  /// hypervisor now holds a reference (if the guest gives the page back, the frame stays until
  /// the domain is destroyed). Nil if `gfn` is not RAM or `target` has one already.
  func pinVCPUInfo(_ target: VCPU, gfn: UInt64) -> UInt64?
}

extension HypercallEnvironment {
  public var domain: Domain { vcpu.domain }

  public func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at address: UInt64) -> T? {
    read(address, count: MemoryLayout<T>.size)?.littleEndian(T.self, at: 0)
  }

  public func writeLE<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at address: UInt64) -> Bool {
    write(address, littleEndianBytes(value))
  }

  /// The field `offset` bytes into the guest structure at `base`; nil when the field would lie
  /// past 2^64 (the handler answers -EFAULT). A guest pointer is any 64-bit value, so this is
  /// how handlers reach a field: never `base + offset`, which traps.
  public func readLE<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at base: UInt64, offset: Int) -> T? {
    guard let address = Hypercalls.fieldAddress(base, offset: offset) else { return nil }
    return readLE(type, at: address)
  }

  /// Writes the field `offset` bytes into the guest structure at `base`; false (-EFAULT) when
  /// the field would lie past 2^64 or cannot be written.
  public func writeLE<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at base: UInt64, offset: Int) -> Bool {
    guard let address = Hypercalls.fieldAddress(base, offset: offset) else { return false }
    return writeLE(value, at: address)
  }
}

public func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
  var bytes: [UInt8] = []
  for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
  return bytes
}

/// Fixed-size, NUL-padded copy of `text` (for the string fields of Xen's structures).
func paddedString(_ text: StaticString, size: Int) -> [UInt8] {
  var bytes = [UInt8](repeating: 0, count: size)
  text.withUTF8Buffer { buffer in
    for (i, byte) in buffer.enumerated() where i < size - 1 { bytes[i] = byte }
  }
  return bytes
}
