import XenABI
import XenPublic

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

/// Which layout a hypercall's structures have: the caller's mode picks it per call, as Xen's
/// hvm_hypercall picks the compat table when hvm_guest_x86_mode != 8. A call from 64-bit code
/// is native; one from 32-bit or 16-bit code (paging off, legacy, PAE or compatibility mode)
/// is compat: xen_ulong_t, xen_pfn_t and handles are 32 bits, uint64_t is 4-byte aligned.
public enum GuestABI: Sendable, Equatable {
  case native
  case compat

  public init(is64BitCode: Bool) { self = is64BitCode ? .native : .compat }
}

/// What a handler may do to the calling guest and its domain. The arch layer implements it
/// (X86/Domain/X86HypercallEnvironment.swift); host tests implement it with fakes.
///
/// Handlers reach guest memory through `copyIn` and `copyOut` (below): a structure is copied in
/// whole, once, as the type xen_public.h declares, then validated and acted on; results are
/// copied out whole. A bad address is -EFAULT, thrown like every other error.
public protocol HypercallEnvironment {
  var vcpu: VCPU { get }
  /// The calling vcpu's domain (by default `vcpu.domain`).
  var domain: Domain { get }
  /// The same, unretained, for the hottest paths (`EVTCHNOP_send`): reading `domain` is a
  /// retain and a release. The domain outlives the call (its vcpu is in it).
  var borrowedDomain: Unmanaged<Domain> { get }
  /// The layout of this call's structures (the caller's mode): `copyIn` and `copyOut`
  /// translate a compat structure to and from its native value, so handlers see one type.
  var abi: GuestABI { get }
  /// Copies bytes from / to the guest's virtual address space; nil / false on any bad address.
  /// For byte strings and arrays; structures go through `readStructure` / `writeStructure`.
  func read(_ guestVirtual: UInt64, count: Int) -> [UInt8]?
  func write(_ guestVirtual: UInt64, _ bytes: [UInt8]) -> Bool
  /// The structure at `guestVirtual`, copied whole; nil on any bad address. (A default
  /// implementation copies through `read`; the arch layer's copies straight from the page.)
  func readStructure<T: GuestStructure>(_ type: T.Type, at guestVirtual: UInt64) -> T?
  /// Writes `value` whole at `guestVirtual`; false, with nothing written, on any bad address.
  func writeStructure<T: GuestStructure>(_ value: T, at guestVirtual: UInt64) -> Bool
  /// Puts the domain's shared_info page at `gfn` (made on first use), giving back what was
  /// there and taking it from where it was; nil on success. Nothing changes when it fails.
  func placeSharedInfo(gfn: UInt64) -> XenABI.Errno?
  /// Puts grant table frame `index` at `gfn`, growing the table to it (`P2M.placeGrantFrame`);
  /// nil on success. Nothing changes when it fails.
  func placeGrantFrame(_ index: Int, gfn: UInt64) -> XenABI.Errno?
  /// Grows the domain's grant table to `frames` frames (`P2M.growGrantTable`); nil on success.
  func growGrantTable(to frames: Int) -> XenABI.Errno?
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
  func initialiseVCPU(_ target: VCPU, context: vcpu_hvm_context) -> XenABI.Errno?
  /// True when the current hypercall should stop at its next preemption point.
  func preemptionRequested() -> Bool
  /// VCPUOP_register_vcpu_info's claim: if `target` has no vcpu_info page yet, sets its
  /// `vcpuInfoGFN` and returns the machine address of the RAM page at `gfn`, on which the
  /// hypervisor now holds a reference (if the guest gives the page back, the frame stays until
  /// the domain is destroyed). Nil if `gfn` is not RAM or `target` has one already.
  func pinVCPUInfo(_ target: VCPU, gfn: UInt64) -> UInt64?
  /// EVTCHNOP_init_control's and expand_array's claim: the machine address of the RAM page at
  /// `gfn`, on which the hypervisor now holds a reference, recorded in `Domain.eventFrames`
  /// (the page stays until `releaseEventFrames` or the domain's destruction, even if the guest
  /// gives it back). Nil if `gfn` is not RAM.
  func holdEventFrame(gfn: UInt64) -> UInt64?
  /// Drops one hold of each of `frames` (taken by `holdEventFrame`) and its record in
  /// `Domain.eventFrames`: the event code no longer reaches them.
  func releaseEventFrames(_ frames: [UInt64])
  /// The live domain `id` names, for grant operations on another domain's grants (the default:
  /// `Domains.find(id:)`); nil if there is none.
  func grantingDomain(_ id: UInt16) -> Domain?
}

extension HypercallEnvironment {
  public var domain: Domain { unsafe vcpu.domain }
  public var borrowedDomain: Unmanaged<Domain> { unsafe Unmanaged.passUnretained(domain) }   // unsafe: see the requirement

  public func grantingDomain(_ id: UInt16) -> Domain? { Domains.find(id: id) }

  public func readStructure<T: GuestStructure>(_ type: T.Type, at guestVirtual: UInt64) -> T? {
    read(guestVirtual, count: T.guestSize).flatMap { T(bytes: $0) }
  }

  public func writeStructure<T: GuestStructure>(_ value: T, at guestVirtual: UInt64) -> Bool {
    write(guestVirtual, value.bytes)
  }

  /// The bytes a `T` spans in this call's layout (the stride of a guest array of them).
  @inline(__always)
  public func guestSize<T: GuestStructure>(of _: T.Type) -> Int {
    abi == .native ? T.guestSize : T.compatSize
  }

  /// xv6's copyin: the guest's structure at `address`, whole, or -EFAULT. A compat caller's
  /// structure is read in its own layout, once, and translated to the native value here.
  @inline(__always)
  public func copyIn<T: GuestStructure>(_ type: T.Type, from address: UInt64) throws(XenABI.Errno) -> T {
    if abi == .compat { return try copyInCompat(type, from: address) }
    guard let value = readStructure(type, at: address) else { throw .EFAULT }
    return value
  }

  /// Out of line: a 64-bit caller's path, inlined into every handler, stays as small as it was.
  @inline(never)
  func copyInCompat<T: GuestStructure>(_ type: T.Type, from address: UInt64) throws(XenABI.Errno) -> T {
    guard let bytes = read(address, count: T.compatSize), let value = T(compatBytes: bytes) else { throw .EFAULT }
    return value
  }

  /// Element `index` of the guest's array of `T` at `base`, or -EFAULT (an element past 2^64
  /// included: the address is computed without wrapping). The stride is the caller's layout's.
  public func copyIn<T: GuestStructure>(_ type: T.Type, element index: UInt64, of base: UInt64) throws(XenABI.Errno) -> T {
    try copyIn(type, from: try Hypercalls.elementAddress(base, index: index, size: guestSize(of: T.self)))
  }

  /// xv6's copyout: `value` written whole at `address`, or -EFAULT; translated to the compat
  /// layout for a compat caller.
  @inline(__always)
  public func copyOut<T: GuestStructure>(_ value: T, to address: UInt64) throws(XenABI.Errno) {
    if abi == .compat { return try copyOutCompat(value, to: address) }
    guard writeStructure(value, at: address) else { throw .EFAULT }
  }

  /// Out of line, as `copyInCompat`: the native path, inlined into every handler, stays as small
  /// as it was (the exit budgets count it).
  @inline(never)
  func copyOutCompat<T: GuestStructure>(_ value: T, to address: UInt64) throws(XenABI.Errno) {
    guard write(address, value.compatBytes) else { throw .EFAULT }
  }

  /// `value` as element `index` of the guest's array of `T` at `base`, or -EFAULT.
  public func copyOut<T: GuestStructure>(_ value: T, element index: UInt64, of base: UInt64) throws(XenABI.Errno) {
    try copyOut(value, to: try Hypercalls.elementAddress(base, index: index, size: guestSize(of: T.self)))
  }

  /// `bytes` written at `address`, or -EFAULT.
  public func copyOut(bytes: [UInt8], to address: UInt64) throws(XenABI.Errno) {
    guard write(address, bytes) else { throw .EFAULT }
  }

  /// `count` bytes from `address`, or -EFAULT.
  public func copyIn(bytes count: Int, from address: UInt64) throws(XenABI.Errno) -> [UInt8] {
    guard let bytes = read(address, count: count) else { throw .EFAULT }
    return bytes
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
    for unsafe (i, byte) in unsafe buffer.enumerated() where i < size - 1 { bytes[i] = byte }   // unsafe: the string's own bytes, read inside the call
  }
  return bytes
}
