import Testing
import XenABI
import XenPublic

@testable import Hypervisor

// A 32-bit guest's hypercalls: the structures are laid out by hand below at the offsets Xen's
// public headers give an i386 guest (xen-x86_32.h: 32-bit xen_ulong_t, xen_pfn_t and handles,
// 4-byte-aligned uint64_t), and must reach the handlers as the native values.

/// 32-bit guest-virtual addresses.
private enum At {
  static let argument: UInt64 = 0x0010_0000
  static let list: UInt64 = 0x0020_0000
  static let hole: UInt64 = 0x0F00_0000
}

private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { littleEndianBytes(value) }

private func compatEnvironment() -> FakeHypercallEnvironment {
  let env = FakeHypercallEnvironment()
  env.abi = .compat
  return env
}

private func result(_ env: FakeHypercallEnvironment, _ hypercall: XenABI.Hypercall, _ a0: UInt64, _ a1: UInt64, _ a2: UInt64 = 0) -> Int64? {
  if case .result(let value) = Hypercalls.dispatch(HypercallFrame(number: hypercall.rawValue, a0, a1, a2), env) { return value }
  return nil
}

/// compat_add_to_physmap: domid, size, space, idx (4), gpfn (4): 16 bytes.
private func compatAddToPhysmap(space: XenABI.MapSpace, idx: UInt32, gpfn: UInt32) -> [UInt8] {
  le(XenABI.DomainID.selfDomain) + le(UInt16(0)) + le(space.rawValue) + le(idx) + le(gpfn)
}

@Suite struct CompatABITests {
  @Test func theCallersModePicksTheLayout() {
    #expect(GuestABI(is64BitCode: true) == .native)
    #expect(GuestABI(is64BitCode: false) == .compat)
  }

  /// The finding: read as the native layout, idx = 1 | 0x1234 << 32 and gpfn beyond the
  /// structure. Read as compat, the native value is idx 1, gpfn 0x1234.
  @Test func compatAddToPhysmapDecodesToTheNativeValue() throws {
    let bytes = compatAddToPhysmap(space: .grantTable, idx: 1, gpfn: 0x1234)
    #expect(bytes.count == xen_add_to_physmap.compatSize)
    let native = try #require(xen_add_to_physmap(compatBytes: bytes))
    #expect(native.domid == XenABI.DomainID.selfDomain)
    #expect(native.space == XenABI.MapSpace.grantTable.rawValue)
    #expect(native.idx == 1)
    #expect(native.gpfn == 0x1234)
    #expect(native.compatBytes == bytes)
    #expect(xen_add_to_physmap(compatBytes: Array(bytes.prefix(12))) == nil)
  }

  @Test func compatAddToPhysmapPlacesSharedInfo() {
    let env = compatEnvironment()
    env.populated = Set(0..<0x4000)
    env.domain.ramPages = 0x4000
    env.store(compatAddToPhysmap(space: .sharedInfo, idx: 0, gpfn: 0x1234), at: At.argument)
    #expect(result(env, .memoryOp, UInt64(XenABI.MemoryOp.addToPhysmap.rawValue), At.argument) == 0)
    #expect(env.placeCalls == [0x1234])
    #expect(env.domain.sharedInfoGFN == 0x1234)
    // The same bytes from 64-bit code are the failure the 32-bit guest saw.
    env.abi = .native
    env.store(compatAddToPhysmap(space: .sharedInfo, idx: 0, gpfn: 0x2345) + [UInt8](repeating: 0, count: 8), at: At.argument)
    #expect(result(env, .memoryOp, UInt64(XenABI.MemoryOp.addToPhysmap.rawValue), At.argument) == -22)
  }

  @Test func compatAddToPhysmapAtTheEndOfAPage() {
    let env = compatEnvironment()
    env.populated = Set(0..<0x4000)
    env.domain.ramPages = 0x4000
    let end = At.argument + 0x1000 - 16
    env.store(compatAddToPhysmap(space: .sharedInfo, idx: 0, gpfn: 0x1234), at: end)
    #expect(result(env, .memoryOp, UInt64(XenABI.MemoryOp.addToPhysmap.rawValue), end) == 0)
    #expect(result(env, .memoryOp, UInt64(XenABI.MemoryOp.addToPhysmap.rawValue), At.hole) == -14)
  }

  /// compat_memory_reservation: extent_start (a 32-bit handle), nr_extents (4), extent_order,
  /// mem_flags, domid: 20 bytes; the extents are 4-byte xen_pfn_t.
  @Test func compatReservationReadsFourByteExtentsThroughAThirtyTwoBitHandle() throws {
    let env = compatEnvironment()
    let gfns: [UInt32] = [0x100, 0x101, 0x2_0000, 0x3FF]
    env.store(gfns.flatMap { le($0) }, at: At.list)
    let reservation = le(UInt32(At.list)) + le(UInt32(gfns.count)) + le(UInt32(0)) + le(UInt32(0)) + le(XenABI.DomainID.selfDomain) + [0, 0]
    #expect(reservation.count == xen_memory_reservation.compatSize)
    let native = try #require(xen_memory_reservation(compatBytes: reservation))
    #expect(native.extent_start == At.list)
    #expect(native.nr_extents == 4)
    #expect(native.domid == XenABI.DomainID.selfDomain)
    env.store(reservation, at: At.argument)
    let populate = UInt64(XenABI.MemoryOp.populatePhysmap.rawValue)
    #expect(result(env, .memoryOp, populate, At.argument) == 4)
    #expect(env.populateCalls.map(\.gfn) == gfns.map(UInt64.init))
    #expect(env.populateCalls.allSatisfy { $0.order == 0 })
  }

  /// compat_gnttab_setup_table: dom, nr_frames, status, frame_list (a 32-bit handle): 16
  /// bytes; the frames written back are 4-byte xen_pfn_t.
  @Test func compatSetupTableWritesFourByteFrames() {
    let env = compatEnvironment()
    env.domain.maxGrantFrames = 4
    env.store(compatAddToPhysmap(space: .grantTable, idx: 1, gpfn: 0x8_0001), at: At.argument)
    #expect(result(env, .memoryOp, UInt64(XenABI.MemoryOp.addToPhysmap.rawValue), At.argument) == 0)
    #expect(env.domain.grantFrameGFNs[1] == 0x8_0001)
    env.map(At.list, count: 64)
    env.store(le(XenABI.DomainID.selfDomain) + [0, 0] + le(UInt32(3)) + [0xEE, 0xEE, 0, 0] + le(UInt32(At.list)), at: At.argument)
    let setup = UInt64(XenABI.GrantTableOp.setupTable.rawValue)
    #expect(result(env, .grantTableOp, setup, At.argument, 1) == 0)
    #expect(env.loadLE(UInt16.self, at: At.argument + 8) == 0)
    #expect(env.loadLE(UInt32.self, at: At.list) == UInt32.max)
    #expect(env.loadLE(UInt32.self, at: At.list + 4) == 0x8_0001)
    #expect(env.loadLE(UInt32.self, at: At.list + 8) == UInt32.max)
    #expect(env.loadLE(UInt32.self, at: At.list + 12) == 0, "nothing past the third 4-byte element")
    // The 32-bit handle is all of it: the word after it (the native handle's high half) is
    // not part of the structure.
    #expect(gnttab_setup_table.compatSize == 16)
  }

  /// VCPUOP_get_runstate_info to a 32-bit caller: 44 bytes, state_entry_time at 4.
  @Test func compatRunstateIsFortyFourBytes() {
    let env = compatEnvironment()
    env.map(At.argument, count: 64)
    env.store([UInt8](repeating: 0xAA, count: 64), at: At.argument)
    let get = UInt64(XenABI.VCPUOp.getRunstateInfo.rawValue)
    #expect(result(env, .vcpuOp, get, 0, At.argument) == 0)
    let info = env.vcpu.runstate.info
    #expect(env.loadLE(UInt32.self, at: At.argument) == UInt32(bitPattern: info.state))
    #expect(env.loadLE(UInt64.self, at: At.argument + 4) == info.state_entry_time)
    #expect(env.loadLE(UInt64.self, at: At.argument + 12) == info.time.0)
    #expect(env.loadLE(UInt64.self, at: At.argument + 36) == info.time.3)
    #expect(env.load(At.argument + 44, count: 4) == [0xAA, 0xAA, 0xAA, 0xAA], "nothing past 44 bytes")
  }

  /// compat_gnttab_copy: two 8-byte pointers (a 32-bit union of ref and gmfn), len, flags,
  /// status: 24 bytes, the stride of a compat batch.
  @Test func compatGrantCopyDecodesItsThirtyTwoBitUnion() throws {
    #expect(gnttab_copy.compatSize == 24)
    var bytes = [UInt8](repeating: 0, count: 24)
    bytes.replaceSubrange(0..<4, with: le(UInt32(7)))           // source.u.ref
    bytes.replaceSubrange(4..<6, with: le(UInt16(3)))           // source.domid
    bytes.replaceSubrange(6..<8, with: le(UInt16(0x10)))        // source.offset
    bytes.replaceSubrange(8..<12, with: le(UInt32(0x4_5678)))   // dest.u.gmfn
    bytes.replaceSubrange(12..<14, with: le(XenABI.DomainID.selfDomain))
    bytes.replaceSubrange(16..<18, with: le(UInt16(100)))       // len
    bytes.replaceSubrange(18..<20, with: le(UInt16(1)))         // flags
    let copy = try #require(gnttab_copy(compatBytes: bytes))
    #expect(copy.source.u.ref == 7)
    #expect(copy.source.domid == 3)
    #expect(copy.source.offset == 0x10)
    #expect(copy.dest.u.gmfn == 0x4_5678)
    #expect(copy.len == 100)
    #expect(copy.flags == 1)
    #expect(copy.compatBytes == bytes)
  }

  @Test func compatPollAndTimers() throws {
    // compat_sched_poll: ports (32-bit handle), nr_ports, timeout at 8 (4-byte aligned).
    let poll = try #require(sched_poll(compatBytes: le(UInt32(0x1234_5000)) + le(UInt32(2)) + le(UInt64(0x1_0000_0001))))
    #expect(poll.ports == 0x1234_5000)
    #expect(poll.nr_ports == 2)
    #expect(poll.timeout == 0x1_0000_0001)
    let timer = try #require(vcpu_set_singleshot_timer(compatBytes: le(UInt64(0xABCD_0000_1234)) + le(UInt32(1))))
    #expect(timer.timeout_abs_ns == 0xABCD_0000_1234)
    #expect(timer.flags == 1)
    let area = try #require(vcpu_register_runstate_memory_area(compatBytes: le(UInt32(0xC000_1000)) + le(UInt32(0xFFFF_FFFF))))
    #expect(area.addr == 0xC000_1000, "the compat handle is the low half only")
    let map = try #require(xen_memory_map(compatBytes: le(UInt32(8)) + le(UInt32(0x9000))))
    #expect(map.nr_entries == 8)
    #expect(map.buffer == 0x9000)
    #expect(xen_platform_parameters(virt_start: 0).compatBytes == [0, 0, 0, 0])
  }

  /// XENVER_platform_parameters: a 32-bit HVM/PVH caller gets 4 bytes of 0, as from Xen.
  @Test func compatPlatformParametersAreFourBytes() {
    let env = compatEnvironment()
    env.store([UInt8](repeating: 0xAA, count: 8), at: At.argument)
    #expect(result(env, .xenVersion, UInt64(XenABI.VersionCommand.platformParameters.rawValue), At.argument) == 0)
    #expect(env.load(At.argument, count: 8) == [0, 0, 0, 0, 0xAA, 0xAA, 0xAA, 0xAA])
  }

  /// Random compat bytes for every translated structure: decoding never traps, and writing the
  /// native value back gives the guest's fields again (the padding and the runstate handle's
  /// high half aside, which are not fields).
  @Test func randomCompatStructuresRoundTrip() {
    var random = SplitMix64(seed: 0xC0_4BA7)
    func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
    func check<T: GuestStructure>(_: T.Type, ignoring: Set<Int> = []) {
      let input = bytes(T.compatSize)
      guard let value = T(compatBytes: input) else { Issue.record("\(T.self) did not decode"); return }
      let output = value.compatBytes
      #expect(output.count == input.count)
      for i in 0..<min(input.count, output.count) where !ignoring.contains(i) {
        #expect(output[i] == input[i], "\(T.self) byte \(i)")
      }
    }
    for _ in 0..<50 {
      check(xen_memory_reservation.self, ignoring: [18, 19])
      check(xen_add_to_physmap.self)
      check(xen_memory_map.self)
      check(xen_platform_parameters.self)
      check(sched_poll.self)
      check(vcpu_runstate_info.self)
      check(vcpu_register_runstate_memory_area.self, ignoring: [4, 5, 6, 7])
      check(vcpu_set_singleshot_timer.self)
      check(gnttab_setup_table.self, ignoring: [2, 3, 10, 11])
      check(gnttab_copy.self, ignoring: [22, 23])
      check(GuestULong.self)
    }
  }
}
