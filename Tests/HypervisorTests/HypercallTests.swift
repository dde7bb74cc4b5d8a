import Testing
import XenABI

@testable import Hypervisor

// The arch-neutral hypercall layer driven through `Hypercalls.dispatch` with a fake environment
// (FakeHypercallEnvironment.swift). Expected values follow Xen's public headers and, where the
// handler documents a choice of its own (docs/hypercalls.md), that choice.

// MARK: - Helpers

/// Guest-virtual addresses used by the tests: kernel-half addresses, so no handler can get away
/// with 32-bit arithmetic.
private enum At {
  static let argument: UInt64 = 0xFFFF_8880_0010_0000
  static let buffer: UInt64 = 0xFFFF_8880_0020_0000
  static let list: UInt64 = 0xFFFF_8880_0040_0000
  /// Never mapped.
  static let hole: UInt64 = 0xFFFF_8880_0F00_0000
}

private let ENOSYS: Int64 = -38

private func call(
  _ env: FakeHypercallEnvironment, _ hypercall: XenABI.Hypercall,
  _ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0
) -> HypercallOutcome {
  Hypercalls.dispatch(HypercallFrame(number: hypercall.rawValue, a0, a1, a2), env)
}

/// The value of a `.result`, nil for any other outcome.
private func resultValue(_ outcome: HypercallOutcome) -> Int64? {
  if case .result(let value) = outcome { return value }
  return nil
}

private func describe(_ outcome: HypercallOutcome) -> String {
  switch outcome {
  case .result(let value): "result(\(value))"
  case .yield(let value): "yield(\(value))"
  case .block(let value): "block(\(value))"
  case .down(let value): "down(\(value))"
  case .shutdown: "shutdown"
  case .continuation(let frame):
    "continuation(\(frame.number): \(hex(frame.arguments.0)), \(hex(frame.arguments.1)), \(hex(frame.arguments.2)))"
  }
}

/// Re-issues `frame` for as long as it continues itself, as a guest's vmmcall would be; returns
/// the final outcome and every continuation frame seen on the way.
private func runToCompletion(
  _ frame: HypercallFrame, _ env: FakeHypercallEnvironment, limit: Int = 10_000
) -> (outcome: HypercallOutcome, continuations: [HypercallFrame]) {
  var frame = frame
  var seen: [HypercallFrame] = []
  for _ in 0..<limit {
    let outcome = Hypercalls.dispatch(frame, env)
    guard case .continuation(let next) = outcome else { return (outcome, seen) }
    seen.append(next)
    frame = next
  }
  Issue.record("the call was still continuing after \(limit) steps")
  return (.result(Int64.min), seen)
}

private func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// `text` NUL-padded to `size` bytes.
private func padded(_ text: String, _ size: Int) -> [UInt8] {
  ascii(text) + [UInt8](repeating: 0, count: size - text.utf8.count)
}

// MARK: Console capture

nonisolated(unsafe) private var capturedConsoleBytes: [UInt8] = []

/// Runs `body` with `Log.sink` collecting into a buffer; returns the `(dN) ` lines of domain `id`.
private func consoleLines(ofDomain id: UInt16, during body: () throws -> Void) rethrows -> [String] {
  Log.lock.lock()
  let previous = Log.sink
  capturedConsoleBytes.removeAll()
  Log.sink = { byte in capturedConsoleBytes.append(byte) }
  Log.lock.unlock()
  defer {
    Log.lock.lock()
    Log.sink = previous
    Log.lock.unlock()
  }
  try body()
  Log.lock.lock()
  let text = String(decoding: capturedConsoleBytes, as: UTF8.self)
  Log.lock.unlock()
  // Other suites may log through the same sink meanwhile: keep only this domain's lines.
  return text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("(d\(id)) ") }
}

// MARK: Argument structures

private func reservation(extents: UInt64, count: UInt64, order: UInt32, domid: UInt16 = XenABI.DomainID.selfDomain) -> [UInt8] {
  typealias Layout = GuestView.MemoryOpLayout.Reservation
  var bytes = [UInt8](repeating: 0, count: Layout.size)
  bytes.replaceSubrange(Layout.Offset.extentStart..<Layout.Offset.extentStart + 8, with: littleEndianBytes(extents))
  bytes.replaceSubrange(Layout.Offset.extentCount..<Layout.Offset.extentCount + 8, with: littleEndianBytes(count))
  bytes.replaceSubrange(Layout.Offset.extentOrder..<Layout.Offset.extentOrder + 4, with: littleEndianBytes(order))
  bytes.replaceSubrange(Layout.Offset.domid..<Layout.Offset.domid + 2, with: littleEndianBytes(domid))
  return bytes
}

private func addToPhysmap(space: XenABI.MapSpace, index: UInt64 = 0, gpfn: UInt64, domid: UInt16 = XenABI.DomainID.selfDomain) -> [UInt8] {
  typealias Layout = GuestView.MemoryOpLayout.AddToPhysmap
  var bytes = [UInt8](repeating: 0, count: Layout.size)
  bytes.replaceSubrange(Layout.Offset.domid..<Layout.Offset.domid + 2, with: littleEndianBytes(domid))
  bytes.replaceSubrange(Layout.Offset.space..<Layout.Offset.space + 4, with: littleEndianBytes(space.rawValue))
  bytes.replaceSubrange(Layout.Offset.idx..<Layout.Offset.idx + 8, with: littleEndianBytes(index))
  bytes.replaceSubrange(Layout.Offset.gpfn..<Layout.Offset.gpfn + 8, with: littleEndianBytes(gpfn))
  return bytes
}

private func hvmParam(_ index: UInt32, value: UInt64 = 0, domid: UInt16 = XenABI.DomainID.selfDomain) -> [UInt8] {
  typealias Layout = GuestView.HVMLayout.Param
  var bytes = [UInt8](repeating: 0, count: Layout.size)
  bytes.replaceSubrange(Layout.Offset.domid..<Layout.Offset.domid + 2, with: littleEndianBytes(domid))
  bytes.replaceSubrange(Layout.Offset.index..<Layout.Offset.index + 4, with: littleEndianBytes(index))
  bytes.replaceSubrange(Layout.Offset.value..<Layout.Offset.value + 8, with: littleEndianBytes(value))
  return bytes
}

// MARK: - Tests

/// Serialized: the console tests swap `Log.sink` and the vcpu tests `Scheduler.policy`.
@Suite(.serialized) struct HypercallTests {

  // MARK: Dispatch

  @Test(arguments: [UInt64(11), 43, 47, 56, 63, 64, 127, 1000, 0x1_0000_0011, UInt64.max])
  func unknownHypercallNumbersAnswerENOSYS(number: UInt64) {
    let env = FakeHypercallEnvironment()
    let outcome = Hypercalls.dispatch(HypercallFrame(number: number, 0, At.argument, 0), env)
    #expect(resultValue(outcome) == ENOSYS, "hypercall \(number): \(describe(outcome))")
  }

  @Test func everyNamedButUnimplementedHypercallAnswersENOSYS() {
    let implemented = Set(Hypercalls.implemented.map(\.rawValue))
    for hypercall in XenABI.Hypercall.allCases where !implemented.contains(hypercall.rawValue) {
      let env = FakeHypercallEnvironment()
      let outcome = call(env, hypercall, 0, At.argument, 0)
      #expect(resultValue(outcome) == ENOSYS, "\(hypercall): \(describe(outcome))")
    }
  }

  @Test func everyImplementedHypercallIsReachable() {
    #expect(Set(Hypercalls.implemented.map(\.rawValue)) == [12, 15, 17, 18, 20, 24, 29, 32, 34])
    for hypercall in Hypercalls.implemented {
      let env = FakeHypercallEnvironment()
      env.store(hvmParam(XenABI.HVMParam.storePFN.rawValue), at: At.argument)
      env.domain.hvmParams[Int(XenABI.HVMParam.storePFN.rawValue)] = 0xFEFFE
      let outcome: HypercallOutcome
      switch hypercall {
      case .memoryOp: outcome = call(env, hypercall, UInt64(XenABI.MemoryOp.maximumRAMPage.rawValue))
      case .xenVersion: outcome = call(env, hypercall, UInt64(XenABI.VersionCommand.pagesize.rawValue))
      case .consoleIO: outcome = call(env, hypercall, UInt64(XenABI.ConsoleIOCommand.read.rawValue), 16, At.buffer)
      case .vcpuOp: outcome = call(env, hypercall, UInt64(XenABI.VCPUOp.isUp.rawValue), 0)
      case .schedOp: outcome = call(env, hypercall, UInt64(XenABI.SchedOp.yield.rawValue))
      case .hvmOp: outcome = call(env, hypercall, UInt64(XenABI.HVMOp.getParam.rawValue), At.argument)
      case .setTimerOp: outcome = call(env, hypercall, 0)
      case .eventChannelOp: outcome = call(env, hypercall, UInt64(XenABI.EventChannelOp.initControl.rawValue), At.argument)
      case .grantTableOp: outcome = call(env, hypercall, UInt64(XenABI.GrantTableOp.setVersion.rawValue), At.argument, 1)
      default:
        Issue.record("no probe for \(hypercall)")
        continue
      }
      switch hypercall {
      case .memoryOp: #expect(resultValue(outcome) == 16383)
      case .xenVersion: #expect(resultValue(outcome) == 4096)
      case .consoleIO: #expect(resultValue(outcome) == ENOSYS)      // CONSOLEIO_read is the handler's -ENOSYS
      case .vcpuOp: #expect(resultValue(outcome) == 1)
      case .schedOp:
        guard case .yield(0) = outcome else { Issue.record("sched_op: \(describe(outcome))"); break }
      case .hvmOp:
        #expect(resultValue(outcome) == 0)
        #expect(env.loadLE(UInt64.self, at: At.argument + 8) == 0xFEFFE)
      case .setTimerOp: #expect(resultValue(outcome) == 0)
      case .eventChannelOp: #expect(resultValue(outcome) == ENOSYS)    // FIFO ABI: 2-level only
      case .grantTableOp: #expect(resultValue(outcome) == -22)          // version 0 (the domid's bytes)
      default: break
      }
    }
  }

  @Test func unknownSubopsOfEveryHandlerAnswerENOSYS() {
    let cases: [(XenABI.Hypercall, [UInt64])] = [
      (.xenVersion, [11, 12, 0xFFFF, 1 << 32]),
      (.consoleIO, [2, 3, 0xFFFF, 1 << 32]),
      (.schedOp, [6, 7, 8, 0xFFFF, 1 << 32]),                               // watchdog, pin_override
      (.memoryOp, [5, 8, 10, 11, 12, 13, 14, 15, 23, 28, 29, 63]),           // machphys, exchange, remove_from_physmap, ...
      (.hvmOp, [2, 5, 9, 10, 25, 26, 0xFFFF, 1 << 32]),
      (.vcpuOp, [11, 12, 13, 14, 15, 16, 0xFFFF, 1 << 32]),                  // send_nmi, get_physid, time areas
    ]
    for (hypercall, subops) in cases {
      for subop in subops {
        let env = FakeHypercallEnvironment()
        env.map(At.argument, count: 4096)
        // vcpu_op takes (cmd, vcpuid, arg); the others (cmd, arg).
        let outcome = hypercall == .vcpuOp ? call(env, hypercall, subop, 0, At.argument) : call(env, hypercall, subop, At.argument)
        #expect(resultValue(outcome) == ENOSYS, "\(hypercall) subop \(subop): \(describe(outcome))")
      }
    }
  }

  // MARK: xen_version

  @Test func versionIs4_17() {
    let env = FakeHypercallEnvironment()
    let expected: Int64 = (4 << 16) | 17
    #expect(resultValue(call(env, .xenVersion, 0)) == expected)
    #expect(expected == 0x4_0011)
  }

  @Test func extraversionIsASixteenByteNULPaddedString() throws {
    let env = FakeHypercallEnvironment()
    env.store([UInt8](repeating: 0xEE, count: 32), at: At.buffer)
    #expect(resultValue(call(env, .xenVersion, 1, At.buffer)) == 0)
    let bytes = try #require(env.load(At.buffer, count: 32))
    #expect(Array(bytes[0..<16]) == padded("-swiftvisor", 16))
    #expect(bytes[16..<32].allSatisfy { $0 == 0xEE }, "wrote past the 16-byte field")
  }

  @Test func xenVersionBuffersInAHoleFault() throws {
    let env = FakeHypercallEnvironment()
    for command: UInt64 in [1, 2, 3, 4, 5, 8] {
      #expect(resultValue(call(env, .xenVersion, command, At.hole)) == -14, "command \(command)")
    }
    // The 16-byte field straddles the end of a mapped page: nothing is written.
    let pageEnd = At.buffer + 4096
    env.store([UInt8](repeating: 0xEE, count: 8), at: pageEnd - 8)
    #expect(resultValue(call(env, .xenVersion, 1, pageEnd - 8)) == -14)
    #expect(env.load(pageEnd - 8, count: 8) == [UInt8](repeating: 0xEE, count: 8))
  }

  @Test func otherStringCommandsFillTheirWholeFields() throws {
    let env = FakeHypercallEnvironment()
    let info = GuestView.VersionLayout.CompileInfo.self
    env.map(At.buffer, count: 4096)
    #expect(resultValue(call(env, .xenVersion, 2, At.buffer)) == 0)
    let compile = try #require(env.load(At.buffer, count: info.size))
    #expect(Array(compile[info.Offset.compiler..<info.Offset.compileBy]) == padded("swiftc (Embedded Swift)", info.compilerSize))
    #expect(Array(compile[info.Offset.compileBy..<info.Offset.compileDomain]) == padded("swiftvisor", info.compileBySize))

    #expect(resultValue(call(env, .xenVersion, 3, At.buffer)) == 0)
    let caps = try #require(env.load(At.buffer, count: GuestView.VersionLayout.capabilitiesSize))
    #expect(caps.starts(with: ascii("hvm-3.0-x86_64 ")))
    #expect(caps.last == 0)

    #expect(resultValue(call(env, .xenVersion, 5, At.buffer)) == 0)
    #expect(env.loadLE(UInt64.self, at: At.buffer) == 0xFFFF_8000_0000_0000)

    env.store([UInt8](repeating: 0xEE, count: 16), at: At.buffer)
    #expect(resultValue(call(env, .xenVersion, 8, At.buffer)) == 0)
    #expect(env.load(At.buffer, count: 16) == [UInt8](repeating: 0, count: 16))
  }

  @Test func getFeaturesReadsTheIndexAndWritesTheSubmap() throws {
    let env = FakeHypercallEnvironment()
    let offset = GuestView.VersionLayout.FeatureInfo.Offset.self
    env.storeLE(UInt32(0), at: At.argument + UInt64(offset.submapIndex))
    env.storeLE(UInt32.max, at: At.argument + UInt64(offset.submap))
    #expect(resultValue(call(env, .xenVersion, 6, At.argument)) == 0)
    #expect(env.loadLE(UInt32.self, at: At.argument + UInt64(offset.submapIndex)) == 0)
    // writable_page_tables (0), auto_translated_physmap (2), hvm_callback_vector (8) and
    // hvm_safe_pvclock (9): what a PVH domain here really has.
    #expect(env.loadLE(UInt32.self, at: At.argument + UInt64(offset.submap)) == 0b11_0000_0101)
    env.storeLE(UInt32(1), at: At.argument + UInt64(offset.submapIndex))
    #expect(resultValue(call(env, .xenVersion, 6, At.argument)) == -22)   // one submap, as Xen

    #expect(resultValue(call(env, .xenVersion, 6, At.hole)) == -14)
    // The index is readable but the submap word lies in a hole.
    let pageEnd = At.buffer + 4096
    env.storeLE(UInt32(0), at: pageEnd - 4)
    #expect(resultValue(call(env, .xenVersion, 6, pageEnd - 4)) == -14)
  }

  /// The guest-bad triggers: a structure across 2^64 whose first field is readable. The field
  /// after it was once found with a trapping `+`; now the call is -EFAULT. A structure that ends
  /// exactly at 2^64 is like any other.
  @Test func structuresAcrossTheTopOfTheAddressSpaceFault() throws {
    let env = FakeHypercallEnvironment()
    let top: UInt64 = 0xFFFF_FFFF_FFFF_F000
    env.map(top, count: 4096)
    // XENVER_get_features: submap_idx (0) at ...FFFC, the submap would be at 2^64.
    #expect(resultValue(call(env, .xenVersion, 6, top + 0xFFC)) == -14)
    #expect(resultValue(call(env, .xenVersion, 6, top + 0xFF8)) == 0)
    #expect(env.loadLE(UInt32.self, at: top + 0xFFC) == 0b11_0000_0101)
    // XENMEM_memory_map: nr_entries at ...FFF8, the buffer handle would be at 2^64.
    env.storeLE(UInt32(8), at: top + 0xFF8)
    #expect(resultValue(call(env, .memoryOp, 9, top + 0xFF8)) == -14)
    env.storeLE(UInt32(8), at: top + 0xFF0)
    env.storeLE(At.buffer, at: top + 0xFF8)
    env.map(At.buffer, count: 8 * 20)
    #expect(resultValue(call(env, .memoryOp, 9, top + 0xFF0)) == 0)
    #expect(env.loadLE(UInt32.self, at: top + 0xFF0) == 4)
  }

  @Test func elementAddressesNeverPass2To64() {
    func address(_ base: UInt64, _ index: UInt64, _ size: Int) -> UInt64? { try? Hypercalls.elementAddress(base, index: index, size: size) }
    #expect(address(0x1000, 1, 8) == 0x1008)
    #expect(address(0xFFFF_FFFF_FFFF_FFF0, 1, 8) == 0xFFFF_FFFF_FFFF_FFF8)
    #expect(address(0xFFFF_FFFF_FFFF_FFF8, 1, 8) == nil)
    #expect(address(0x1000, UInt64.max / 4, 8) == nil)         // the multiplication overflows
    #expect(address(.max, 1, 1) == nil)
  }

  @Test func pagesizeAndCommandline() {
    let env = FakeHypercallEnvironment()
    #expect(resultValue(call(env, .xenVersion, 7)) == 4096)
    env.map(At.buffer, count: 1024)
    // As Xen: a guest that is not the control domain reads "<denied>".
    #expect(resultValue(call(env, .xenVersion, 9, At.buffer)) == 0)
    #expect(env.load(At.buffer, count: 9) == Array("<denied>".utf8) + [0])
    #expect(resultValue(call(env, .xenVersion, 10, At.buffer)) == -1)    // build_id: EPERM, as Xen
  }

  // MARK: console_io

  @Test func consoleWritePrintsWholeLinesWithTheDomainPrefix() {
    let env = FakeHypercallEnvironment(domainID: 1)
    let first = ascii("hello, console\nwor")
    let second = ascii("ld\n\n")
    env.store(first, at: At.buffer)
    env.store(second, at: At.buffer + 0x800)
    var afterFirst: [String] = []
    let lines = consoleLines(ofDomain: 1) {
      #expect(resultValue(call(env, .consoleIO, 0, UInt64(first.count), At.buffer)) == 0)
      afterFirst = String(decoding: capturedConsoleBytesSnapshot(), as: UTF8.self)
        .split(separator: "\n").map(String.init).filter { $0.hasPrefix("(d1) ") }
      #expect(resultValue(call(env, .consoleIO, 0, UInt64(second.count), At.buffer + 0x800)) == 0)
    }
    // "wor" waited for its newline; the empty line is printed as an empty line.
    #expect(afterFirst == ["(d1) hello, console"])
    #expect(lines == ["(d1) hello, console", "(d1) world", "(d1) "])
    let raw = String(decoding: capturedConsoleBytesSnapshot(), as: UTF8.self)
    #expect(raw.contains("(d1) world\n(d1) \n"))
  }

  @Test func consoleWriteOfNothingAndOfBadBuffers() {
    let env = FakeHypercallEnvironment(domainID: 1)
    let lines = consoleLines(ofDomain: 1) {
      #expect(resultValue(call(env, .consoleIO, 0, 0, At.hole)) == 0)
      #expect(resultValue(call(env, .consoleIO, 0, 10, At.hole)) == -14)
      // A buffer that runs off its mapped page into a hole.
      env.store(ascii("partial\n"), at: At.buffer + 4096 - 8)
      #expect(resultValue(call(env, .consoleIO, 0, 9, At.buffer + 4096 - 8)) == -14)
    }
    #expect(lines.isEmpty)
  }

  @Test func consoleReadIsNotImplemented() {
    let env = FakeHypercallEnvironment()
    env.map(At.buffer, count: 64)
    #expect(resultValue(call(env, .consoleIO, 1, 64, At.buffer)) == ENOSYS)
  }

  @Test func aLongConsoleWriteContinuesItselfEvery16KiB() throws {
    let env = FakeHypercallEnvironment(domainID: 1)
    // 500 lines of 80 bytes (79 + newline): 40000 bytes, so two continuations and a tail; the
    // 1 KiB and 16 KiB step boundaries fall inside lines.
    var text: [UInt8] = []
    var expected: [String] = []
    for i in 0..<500 {
      var line = "line \(i) "
      line += String(repeating: Character(UnicodeScalar(UInt8(ascii: "a") + UInt8(i % 26))), count: 79 - line.utf8.count)
      text += ascii(line) + [UInt8(ascii: "\n")]
      expected.append("(d1) " + line)
    }
    #expect(text.count == 40_000)
    env.store(text, at: At.buffer)

    var continuations: [HypercallFrame] = []
    var final: HypercallOutcome = .result(Int64.min)
    let lines = consoleLines(ofDomain: 1) {
      (final, continuations) = runToCompletion(HypercallFrame(number: 18, 0, UInt64(text.count), At.buffer), env)
    }
    #expect(resultValue(final) == 0, "\(describe(final))")
    try #require(continuations.count == 2)
    for (k, next) in continuations.enumerated() {
      let done = UInt64(16_384 * (k + 1))
      #expect(next.number == 18)
      #expect(next.arguments.0 == 0)
      #expect(next.arguments.1 == UInt64(text.count) - done)
      #expect(next.arguments.2 == At.buffer + done)
    }
    #expect(lines == expected)
  }

  @Test func theFirstContinuationOfAConsoleWrite() {
    let env = FakeHypercallEnvironment(domainID: 1)
    env.map(At.buffer, count: 20_000)
    let count: UInt64 = 20_000
    _ = consoleLines(ofDomain: 1) {
      let outcome = call(env, .consoleIO, 0, count, At.buffer)
      guard case .continuation(let next) = outcome else {
        Issue.record("expected a continuation, got \(describe(outcome))")
        return
      }
      #expect(next.number == XenABI.Hypercall.consoleIO.rawValue)
      #expect(next.arguments.0 == 0)
      #expect(next.arguments.1 == count - 16_384)
      #expect(next.arguments.2 == At.buffer + 16_384)
      // Exactly 16 KiB is one step, no continuation.
      #expect(resultValue(call(env, .consoleIO, 0, 16_384, At.buffer)) == 0)
    }
  }

  // MARK: sched_op

  @Test func yieldAndBlock() {
    let env = FakeHypercallEnvironment()
    guard case .yield(0) = call(env, .schedOp, 0) else { Issue.record("yield"); return }
    guard case .block(0) = call(env, .schedOp, 1) else { Issue.record("block"); return }
    #expect(env.domain.state == .running)
  }

  @Test func shutdownRecordsTheReasonAndStopsEveryVCPU() {
    let env = FakeHypercallEnvironment()
    env.storeLE(UInt32(0), at: At.argument)
    let outcome = call(env, .schedOp, 2, At.argument)
    guard case .shutdown = outcome else { Issue.record("\(describe(outcome))"); return }
    #expect(env.domain.shutdownReason == .poweroff)
    #expect(env.domain.state == .shutdown)
    #expect(env.domain.vcpus.allSatisfy { $0.mustStop })
  }

  @Test func shutdownWithACrash() {
    let env = FakeHypercallEnvironment()
    env.storeLE(UInt32(3), at: At.argument)
    guard case .shutdown = call(env, .schedOp, 2, At.argument) else { Issue.record("not shut down"); return }
    #expect(env.domain.shutdownReason == .crash)
  }

  @Test func shutdownWithAnInvalidReasonOrABadPointerLeavesTheDomainRunning() {
    let env = FakeHypercallEnvironment()
    env.storeLE(UInt32(99), at: At.argument)
    #expect(resultValue(call(env, .schedOp, 2, At.argument)) == -22)
    #expect(resultValue(call(env, .schedOp, 2, At.hole)) == -14)
    #expect(env.domain.state == .running)
    #expect(env.domain.shutdownReason == nil)
    #expect(!env.domain.vcpus.contains { $0.mustStop })
  }

  @Test func shutdownCodeIsStoredWithoutShuttingDown() {
    let env = FakeHypercallEnvironment()
    env.storeLE(UInt32(1), at: At.argument)
    #expect(resultValue(call(env, .schedOp, 5, At.argument)) == 0)
    #expect(env.domain.shutdownCode == 1)
    #expect(env.domain.state == .running)
    #expect(env.domain.shutdownReason == nil)
    #expect(resultValue(call(env, .schedOp, 5, At.hole)) == -14)
    env.storeLE(UInt32(99), at: At.argument)
    #expect(resultValue(call(env, .schedOp, 5, At.argument)) == -22)
    #expect(env.domain.shutdownCode == 1)
    env.storeLE(UInt32(3), at: At.argument)
    #expect(resultValue(call(env, .schedOp, 5, At.argument)) == 0)
    #expect(env.domain.shutdownCode == 1)            // the first code sticks, as in Xen
  }

  @Test func aPresetShutdownCodeIsTheReasonReported() {
    let env = FakeHypercallEnvironment()
    env.storeLE(UInt32(1), at: At.argument)          // reboot
    #expect(resultValue(call(env, .schedOp, 5, At.argument)) == 0)
    env.storeLE(UInt32(0), at: At.argument)          // then: shutdown(poweroff)
    guard case .shutdown = call(env, .schedOp, 2, At.argument) else { Issue.record("not shut down"); return }
    #expect(env.domain.shutdownReason == .reboot)
  }

  @Test func remoteShutdownIsForTheControlDomain() {
    let env = FakeHypercallEnvironment()
    env.store([0xF0, 0x7F, 0, 0, 0, 0, 0, 0], at: At.argument)     // DOMID_SELF, poweroff
    #expect(resultValue(call(env, .schedOp, 4, At.argument)) == -1)
    #expect(env.domain.state == .running)
  }

  // MARK: memory_op: queries

  @Test func maximumRAMPageIsTheTopOfRAMInTheMemoryMap() {
    let env = FakeHypercallEnvironment()
    // RAM ends at 64 MiB; the reserved entry at 0xFC000000 does not count.
    #expect(resultValue(call(env, .memoryOp, 2)) == 16383)
    env.memoryMap = [(0, 0xA0000, 1), (0x10_0000, 0x7FF0_0000, 1), (0x1_0000_0000, 0x4000_0000, 1), (0xFEC0_0000, 0x1000, 2)]
    let top: Int64 = 0x1_4000_0000 / 4096 - 1
    #expect(resultValue(call(env, .memoryOp, 2)) == top)
  }

  @Test func currentAndMaximumReservationOfSelf() {
    let env = FakeHypercallEnvironment(domainID: 3, ramPages: 12345, maximumPages: 20000)
    env.storeLE(XenABI.DomainID.selfDomain, at: At.argument)
    #expect(resultValue(call(env, .memoryOp, 3, At.argument)) == 12345)
    #expect(resultValue(call(env, .memoryOp, 4, At.argument)) == 20000)
    env.storeLE(UInt16(3), at: At.argument)                                   // its own id
    #expect(resultValue(call(env, .memoryOp, 3, At.argument)) == 12345)
    env.storeLE(UInt16(4), at: At.argument)                                   // someone else
    #expect(resultValue(call(env, .memoryOp, 3, At.argument)) == -1)
    #expect(resultValue(call(env, .memoryOp, 4, At.argument)) == -1)
    env.storeLE(XenABI.DomainID.xen, at: At.argument)
    #expect(resultValue(call(env, .memoryOp, 3, At.argument)) == -1)
    #expect(resultValue(call(env, .memoryOp, 3, At.hole)) == -14)
  }

  @Test func memoryMapCopiesTheEntriesAndTheirCount() throws {
    let env = FakeHypercallEnvironment()
    typealias Layout = GuestView.MemoryOpLayout.MemoryMap
    env.storeLE(UInt32(8), at: At.argument + UInt64(Layout.Offset.entryCount))
    env.storeLE(At.buffer, at: At.argument + UInt64(Layout.Offset.buffer))
    env.store([UInt8](repeating: 0xEE, count: 8 * 20), at: At.buffer)
    #expect(resultValue(call(env, .memoryOp, 9, At.argument)) == 0)
    #expect(env.loadLE(UInt32.self, at: At.argument) == 4)
    let bytes = try #require(env.load(At.buffer, count: 8 * 20))
    for (i, entry) in env.memoryMap.enumerated() {
      let base = i * GuestView.MemoryOpLayout.E820Entry.size
      #expect(bytes.littleEndian(UInt64.self, at: base) == entry.address, "entry \(i)")
      #expect(bytes.littleEndian(UInt64.self, at: base + 8) == entry.size, "entry \(i)")
      #expect(bytes.littleEndian(UInt32.self, at: base + 16) == entry.type, "entry \(i)")
    }
    #expect(bytes[80...].allSatisfy { $0 == 0xEE }, "wrote past the 4 entries")
  }

  @Test func memoryMapWithTooSmallABufferOrBadPointers() {
    let env = FakeHypercallEnvironment()
    typealias Layout = GuestView.MemoryOpLayout.MemoryMap
    env.storeLE(UInt32(3), at: At.argument + UInt64(Layout.Offset.entryCount))
    env.storeLE(At.buffer, at: At.argument + UInt64(Layout.Offset.buffer))
    env.store([UInt8](repeating: 0xEE, count: 80), at: At.buffer)
    // As Xen: the map is cut to the buffer and nr_entries says how much was written.
    #expect(resultValue(call(env, .memoryOp, 9, At.argument)) == 0)
    #expect(env.loadLE(UInt32.self, at: At.argument) == 3)
    #expect(env.load(At.buffer + 60, count: 20) == [UInt8](repeating: 0xEE, count: 20))
    #expect(env.load(At.buffer, count: 8) == littleEndianBytes(env.memoryMap[0].address))

    #expect(resultValue(call(env, .memoryOp, 9, At.hole)) == -14)
    env.storeLE(UInt32(4), at: At.argument)
    env.storeLE(At.hole, at: At.argument + UInt64(Layout.Offset.buffer))
    #expect(resultValue(call(env, .memoryOp, 9, At.argument)) == -14)
  }

  // MARK: memory_op: add_to_physmap

  @Test func sharedInfoIsMappedOnceAndThenMoved() throws {
    let env = FakeHypercallEnvironment()
    env.populated = Set(0..<0x4000)
    env.domain.ramPages = 0x4000
    env.store(addToPhysmap(space: .sharedInfo, gpfn: 0x1234), at: At.argument)
    #expect(resultValue(call(env, .memoryOp, 7, At.argument)) == 0)
    #expect(env.placeCalls == [0x1234])
    #expect(env.domain.ramPages == 0x4000 - 1, "the RAM page under shared_info is gone")
    let machine = try #require(env.specialFrames[0x1234])
    #expect(env.domain.sharedInfoMachine == machine)
    #expect(env.domain.sharedInfoGFN == 0x1234)
    #expect(!env.populated.contains(0x1234))

    env.store(addToPhysmap(space: .sharedInfo, gpfn: 0x2345), at: At.argument)
    #expect(resultValue(call(env, .memoryOp, 7, At.argument)) == 0)
    #expect(env.placeCalls == [0x1234, 0x2345])
    #expect(env.sharedInfoFramesMade == 1, "moving must not make a second frame")
    #expect(env.domain.sharedInfoGFN == 0x2345)
    #expect(env.domain.sharedInfoMachine == machine)
    #expect(env.specialFrames == [0x2345: machine])
    #expect(env.domain.ramPages == 0x4000 - 2)
  }

  @Test func addToPhysmapRejectsWhatItCannotMap() {
    let env = FakeHypercallEnvironment(domainID: 2)
    func attempt(_ bytes: [UInt8]) -> Int64? {
      env.store(bytes, at: At.argument)
      return resultValue(call(env, .memoryOp, 7, At.argument))
    }
    #expect(attempt(addToPhysmap(space: .sharedInfo, index: 1, gpfn: 0x100)) == -22)
    #expect(attempt(addToPhysmap(space: .sharedInfo, gpfn: 1 << 40)) == -22)
    #expect(attempt(addToPhysmap(space: .sharedInfo, gpfn: 0x100, domid: 5)) == -1)
    #expect(attempt(addToPhysmap(space: .grantTable, gpfn: 0x100)) == 0)       // grantFramesArePlacedAndListed
    #expect(attempt(addToPhysmap(space: .gmfn, gpfn: 0x100)) == ENOSYS)
    var unknownSpace = addToPhysmap(space: .sharedInfo, gpfn: 0x100)
    unknownSpace[GuestView.MemoryOpLayout.AddToPhysmap.Offset.space] = 77
    #expect(attempt(unknownSpace) == -22)
    #expect(resultValue(call(env, .memoryOp, 7, At.hole)) == -14)
    #expect(env.placeCalls.isEmpty)
    #expect(env.domain.sharedInfoGFN == nil)

    env.placeFails = true
    #expect(attempt(addToPhysmap(space: .sharedInfo, gpfn: 0x100, domid: 2)) == -12)
    #expect(env.domain.sharedInfoGFN == nil)
    #expect(env.domain.sharedInfoMachine == 0)
  }

  // MARK: memory_op: reservations

  /// Stores a reservation at At.argument over `gfns` (the extent list at At.list).
  private func storeReservation(_ env: FakeHypercallEnvironment, gfns: [UInt64], order: UInt32 = 0, domid: UInt16 = XenABI.DomainID.selfDomain) {
    var list: [UInt8] = []
    for gfn in gfns { list += littleEndianBytes(gfn) }
    env.store(list, at: At.list)
    env.store(reservation(extents: At.list, count: UInt64(gfns.count), order: order, domid: domid), at: At.argument)
  }

  @Test(arguments: [1300, 1024, 512, 513, 1])
  func populatePhysmapContinuesEvery512Extents(count: Int) throws {
    let env = FakeHypercallEnvironment(ramPages: 16384, maximumPages: 32768)
    let gfns = (0..<UInt64(count)).map { 0x1_0000 + $0 * 3 }         // not contiguous
    storeReservation(env, gfns: gfns)

    let (final, continuations) = runToCompletion(HypercallFrame(number: 12, 6, At.argument), env)
    #expect(resultValue(final) == Int64(count), "\(describe(final))")
    let steps = (count + 511) / 512
    try #require(continuations.count == steps - 1)
    for (k, next) in continuations.enumerated() {
      #expect(next.number == 12)
      #expect(next.arguments.0 == 6 | (UInt64(512 * (k + 1)) << 6))
      #expect(next.arguments.1 == At.argument)
    }
    #expect(env.domain.continuations == steps - 1)
    #expect(env.domain.ramPages == 16384 + count)
    #expect(env.populated == Set(gfns))
    #expect(env.populateCalls.map(\.gfn) == gfns)
    #expect(env.populateCalls.allSatisfy { $0.order == 0 })
  }

  @Test func theFirstPopulateContinuationCarriesTheExtentsDone() {
    let env = FakeHypercallEnvironment()
    storeReservation(env, gfns: (0..<600).map { 0x2_0000 + $0 })
    let outcome = call(env, .memoryOp, 6, At.argument)
    guard case .continuation(let next) = outcome else { Issue.record("\(describe(outcome))"); return }
    #expect(next.arguments.0 == 6 | (512 << 6))
    #expect(next.arguments.0 == 0x8006)
    #expect(env.populated.count == 512)
    #expect(env.domain.continuations == 1)
  }

  @Test func aPendingPreemptionStopsAfterEachExtentButNeverBeforeTheFirst() {
    let env = FakeHypercallEnvironment()
    env.preemptionPending = true
    let gfns: [UInt64] = [0x3000, 0x3001, 0x3002]
    storeReservation(env, gfns: gfns)
    let (final, continuations) = runToCompletion(HypercallFrame(number: 12, 6, At.argument), env)
    #expect(resultValue(final) == 3)
    #expect(continuations.map { $0.arguments.0 >> 6 } == [1, 2])
    #expect(env.domain.continuations == 2)
    #expect(env.populated == Set(gfns))
  }

  @Test func populatingStopsAtTheDomainsMaximum() {
    let env = FakeHypercallEnvironment(ramPages: 100, maximumPages: 103)
    storeReservation(env, gfns: [0x5000, 0x5001, 0x5002, 0x5003, 0x5004])
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 3)
    #expect(env.domain.ramPages == 103)
    #expect(env.populated == [0x5000, 0x5001, 0x5002])
    #expect(env.populateCalls.count == 4, "the batch stops at the extent the environment refused")

    // A 2 MiB extent does not fit in the 0 pages left.
    storeReservation(env, gfns: [0x200], order: 9)
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 0)
    #expect(env.domain.ramPages == 103)
  }

  @Test func populatingStopsWhereTheEnvironmentFails() {
    let env = FakeHypercallEnvironment()
    env.freeFrames = 2
    env.populated = [0x7000]
    storeReservation(env, gfns: [0x6000, 0x7000, 0x6001])
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 1)          // 0x7000 is taken
    storeReservation(env, gfns: [0x6001, 0x6002, 0x6003])
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 1)          // out of frames after one
    #expect(env.domain.ramPages == 16384 + 2)
  }

  @Test func populatingLargeExtents() {
    let env = FakeHypercallEnvironment()
    storeReservation(env, gfns: [0x400, 0x600], order: 9)
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 2)
    #expect(env.domain.ramPages == 16384 + 1024)
    #expect(env.populateCalls.map(\.order) == [9, 9])
    // A misaligned 2 MiB extent is refused before the environment sees it.
    storeReservation(env, gfns: [0x801], order: 9)
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 0)
    #expect(env.populateCalls.count == 2)
  }

  @Test func extentOrdersAbove9AreInvalid() {
    let env = FakeHypercallEnvironment()
    env.populated = Set(0x8000..<0x8000 + 1024)
    for op: UInt64 in [6, 1] {
      storeReservation(env, gfns: [0x8000], order: 10)
      #expect(resultValue(call(env, .memoryOp, op, At.argument)) == -22, "op \(op)")
    }
    #expect(env.populateCalls.isEmpty && env.releaseCalls.isEmpty)
    #expect(env.domain.ramPages == 16384)
  }

  @Test func decreaseReservationReleasesAndShrinks() {
    let env = FakeHypercallEnvironment()
    env.populated = Set(0x5000..<0x5010)
    storeReservation(env, gfns: [0x5000, 0x5001, 0x5002, 0x5003])
    #expect(resultValue(call(env, .memoryOp, 1, At.argument)) == 4)
    #expect(env.releaseCalls.map(\.gfn) == [0x5000, 0x5001, 0x5002, 0x5003])
    #expect(env.domain.ramPages == 16384 - 4)
    #expect(env.populated == Set(0x5004..<0x5010))

    // Stops at the first frame that is not RAM.
    storeReservation(env, gfns: [0x5004, 0x5005, 0x9999, 0x5006])
    #expect(resultValue(call(env, .memoryOp, 1, At.argument)) == 2)
    #expect(env.domain.ramPages == 16384 - 6)
    #expect(env.populated.contains(0x5006))
  }

  @Test func reservationsNameOnlyTheCallingDomain() {
    let env = FakeHypercallEnvironment(domainID: 4)
    storeReservation(env, gfns: [0x5000], domid: 9)
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == -1)
    #expect(resultValue(call(env, .memoryOp, 1, At.argument)) == -1)
    storeReservation(env, gfns: [0x5000], domid: 4)
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 1)
  }

  @Test func increaseReservationIsForPVGuests() {
    let env = FakeHypercallEnvironment()
    storeReservation(env, gfns: [0x5000])
    #expect(resultValue(call(env, .memoryOp, 0, At.argument)) == ENOSYS)
    #expect(env.populateCalls.isEmpty)
  }

  @Test func reservationFaults() {
    let env = FakeHypercallEnvironment()
    #expect(resultValue(call(env, .memoryOp, 6, At.hole)) == -14)
    // The extent list runs into a hole after two extents: the two done are reported.
    env.store(littleEndianBytes(UInt64(0x5000)) + littleEndianBytes(UInt64(0x5001)), at: At.list + 4096 - 16)
    env.store(reservation(extents: At.list + 4096 - 16, count: 4, order: 0), at: At.argument)
    #expect(resultValue(call(env, .memoryOp, 6, At.argument)) == 2)
    #expect(env.populated == [0x5000, 0x5001])
  }

  // MARK: hvm_op

  @Test func getParamReturnsTheDomainsValue() {
    let env = FakeHypercallEnvironment(domainID: 6)
    env.domain.hvmParams[Int(XenABI.HVMParam.consolePFN.rawValue)] = 0xFEFFF
    env.domain.hvmParams[Int(XenABI.HVMParam.storeEvtchn.rawValue)] = 3
    env.store(hvmParam(XenABI.HVMParam.consolePFN.rawValue, value: 0xDEAD), at: At.argument)
    #expect(resultValue(call(env, .hvmOp, 1, At.argument)) == 0)
    #expect(env.loadLE(UInt64.self, at: At.argument + 8) == 0xFEFFF)
    env.store(hvmParam(XenABI.HVMParam.storeEvtchn.rawValue, domid: 6), at: At.argument)
    #expect(resultValue(call(env, .hvmOp, 1, At.argument)) == 0)
    #expect(env.loadLE(UInt64.self, at: At.argument + 8) == 3)
  }

  @Test func onlyTheCallbackIRQIsGuestWritable() {
    let env = FakeHypercallEnvironment()
    let via = (XenABI.HVMCallbackVia.typeVector << XenABI.HVMCallbackVia.typeShift) | 0xF3
    env.store(hvmParam(XenABI.HVMParam.callbackIRQ.rawValue, value: via), at: At.argument)
    #expect(resultValue(call(env, .hvmOp, 0, At.argument)) == 0)
    #expect(env.domain.hvmParams[0] == via)

    for param in XenABI.HVMParam.allCases where param != .callbackIRQ {
      env.store(hvmParam(param.rawValue, value: 0x1234), at: At.argument)
      #expect(resultValue(call(env, .hvmOp, 0, At.argument)) == -1, "\(param)")
      #expect(env.domain.hvmParams[Int(param.rawValue)] == 0, "\(param)")
    }
  }

  /// Setting HVM_PARAM_CALLBACK_IRQ latches the shared_info layout from the caller's mode (Xen's
  /// hvm_latch_shinfo_size); a refused set_param and get_param latch nothing.
  @Test func callbackIRQLatchesTheSharedInfoLayout() {
    let env = FakeHypercallEnvironment(domainID: 7)
    let via = (XenABI.HVMCallbackVia.typeVector << XenABI.HVMCallbackVia.typeShift) | 0xF3
    env.abi = .compat
    env.store(hvmParam(XenABI.HVMParam.storeEvtchn.rawValue, value: 1), at: At.argument)
    #expect(resultValue(call(env, .hvmOp, 0, At.argument)) == -1)
    #expect(resultValue(call(env, .hvmOp, 1, At.argument)) == 0)
    #expect(!env.domain.has32BitSharedInfo, "only a successful CALLBACK_IRQ set latches")
    env.store(hvmParam(XenABI.HVMParam.callbackIRQ.rawValue, value: via), at: At.argument)
    #expect(resultValue(call(env, .hvmOp, 0, At.argument)) == 0)
    #expect(env.domain.has32BitSharedInfo)
    #expect(Events.portCount(of: env.domain) == XenABI.Compat.eventChannelCount2Level)
    env.abi = .native
    env.store(hvmParam(XenABI.HVMParam.callbackIRQ.rawValue, value: via), at: At.argument)
    #expect(resultValue(call(env, .hvmOp, 0, At.argument)) == 0)
    #expect(!env.domain.has32BitSharedInfo)
    #expect(Events.portCount(of: env.domain) == Events.portCount)
  }

  @Test func hvmParamIndicesAndDomains() {
    let env = FakeHypercallEnvironment(domainID: 2)
    for index: UInt32 in [39, 40, 63, 64, 1000, .max] {
      for op: UInt64 in [0, 1] {
        env.store(hvmParam(index, value: 1), at: At.argument)
        #expect(resultValue(call(env, .hvmOp, op, At.argument)) == -22, "op \(op) index \(index)")
      }
    }
    for op: UInt64 in [0, 1] {
      env.store(hvmParam(0, value: 1, domid: 3), at: At.argument)
      #expect(resultValue(call(env, .hvmOp, op, At.argument)) == -1, "op \(op)")
      #expect(resultValue(call(env, .hvmOp, op, At.hole)) == -14, "op \(op)")
    }
    #expect(env.domain.hvmParams.indices.allSatisfy { env.domain.hvmParams[$0] == 0 })
  }

  // MARK: vcpu_op

  @Test func isUpFollowsTheRunState() {
    let env = FakeHypercallEnvironment(vcpuCount: 3)
    for state: VCPU.RunState in [.runnable, .running, .blocked, .paused] {
      env.domain.vcpus[0].runState = state
      #expect(resultValue(call(env, .vcpuOp, 3, 0)) == 1, "\(state)")
    }
    #expect(resultValue(call(env, .vcpuOp, 3, 1)) == 0)
    #expect(resultValue(call(env, .vcpuOp, 3, 2)) == 0)
  }

  @Test func vcpuIDsBeyondTheDomainAreENOENT() {
    let env = FakeHypercallEnvironment(vcpuCount: 2)
    env.map(At.argument, count: 128)
    for op: UInt64 in [0, 1, 2, 3] {
      for target: UInt64 in [2, 3, 64, 1 << 32, .max] {
        #expect(resultValue(call(env, .vcpuOp, op, target, At.argument)) == -2, "op \(op) vcpu \(target)")
      }
    }
    #expect(env.initialiseCalls.isEmpty)
  }

  @Test func initialiseReads128BytesAndStartsNothing() throws {
    let env = FakeHypercallEnvironment()
    let context = (0..<128).map { UInt8($0 ^ 0x5A) }
    // The context ends exactly at the end of its page; the next page is a hole.
    let address = At.buffer + 4096 - 128
    env.store(context, at: address)
    #expect(resultValue(call(env, .vcpuOp, 0, 1, address)) == 0)
    try #require(env.initialiseCalls.count == 1)
    #expect(env.initialiseCalls[0].target === env.domain.vcpus[1])
    #expect(env.initialiseCalls[0].context == context)
    #expect(env.domain.vcpus[1].initialised)
    #expect(env.domain.vcpus[1].runState == .down)
    #expect(resultValue(call(env, .vcpuOp, 3, 1)) == 0)
  }

  @Test func initialiseFaultsAndErrors() {
    let env = FakeHypercallEnvironment(vcpuCount: 3)
    env.store([UInt8](repeating: 1, count: 127), at: At.buffer + 4096 - 127)
    #expect(resultValue(call(env, .vcpuOp, 0, 1, At.buffer + 4096 - 127)) == -14)
    #expect(env.initialiseCalls.isEmpty)

    env.store([UInt8](repeating: 1, count: 128), at: At.argument)
    env.initialiseResult = .EINVAL
    #expect(resultValue(call(env, .vcpuOp, 0, 2, At.argument)) == -22)
    #expect(!env.domain.vcpus[2].initialised)
    env.initialiseResult = nil
    #expect(resultValue(call(env, .vcpuOp, 0, 2, At.argument)) == 0)
    #expect(env.domain.vcpus[2].initialised)
    #expect(env.initialiseCalls.count == 2)
  }

  @Test func initialiseTwiceOrOfARunningVCPUIsEEXIST() {
    let env = FakeHypercallEnvironment()
    env.store([UInt8](repeating: 7, count: 128), at: At.argument)
    #expect(resultValue(call(env, .vcpuOp, 0, 1, At.argument)) == 0)
    #expect(resultValue(call(env, .vcpuOp, 0, 1, At.argument)) == -17)
    #expect(resultValue(call(env, .vcpuOp, 0, 0, At.argument)) == -17)       // the caller itself
    #expect(env.initialiseCalls.count == 1)
  }

  @Test func upNeedsInitialiseAndThenWakesTheVCPU() {
    let env = FakeHypercallEnvironment()
    let target = env.domain.vcpus[1]
    let previous = Scheduler.policy
    defer { Scheduler.policy = previous }
    let scheduler = RoundRobinScheduler()

    Scheduler.policy = scheduler
    #expect(resultValue(call(env, .vcpuOp, 1, 1)) == -22)
    #expect(target.runState == .down)
    #expect(scheduler.queued == 0)

    env.store([UInt8](repeating: 7, count: 128), at: At.argument)
    #expect(resultValue(call(env, .vcpuOp, 0, 1, At.argument)) == 0)
    Scheduler.policy = scheduler
    #expect(resultValue(call(env, .vcpuOp, 1, 1)) == 0)
    #expect(target.runState == .runnable)
    #expect(scheduler.pick(pcpu: 0) === target)
    #expect(target.runState == .running)
    #expect(resultValue(call(env, .vcpuOp, 3, 1)) == 1)

    // Up again: already up, nothing queued twice.
    #expect(resultValue(call(env, .vcpuOp, 1, 1)) == 0)
    #expect(scheduler.queued == 0)
    #expect(scheduler.pick(pcpu: 0) == nil)
  }

  // MARK: grant_table_op

  /// GNTTABOP_query_size (count 1): the table's frames (the first exists from the start, as
  /// in Xen) and its limit; another domain's table is refused in the status.
  @Test func grantQuerySize() throws {
    let env = FakeHypercallEnvironment(domainID: 4)
    env.domain.maxGrantFrames = 32
    let op = UInt64(XenABI.GrantTableOp.querySize.rawValue)
    env.store(littleEndianBytes(XenABI.DomainID.selfDomain) + [UInt8](repeating: 0xEE, count: 14), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, op, At.argument, 1)) == 0)
    #expect(env.loadLE(UInt32.self, at: At.argument + 4) == 1)              // nr_frames
    #expect(env.loadLE(UInt32.self, at: At.argument + 8) == 32)             // max_nr_frames
    #expect(env.loadLE(UInt16.self, at: At.argument + 12) == 0)             // GNTST_okay
    // Another domain: GNTST_permission_denied (-8); an id that is no domain, reserved or not:
    // bad_domain (-2), as Xen answers.
    env.otherDomains[7] = Domain(id: 7, name: Array("other".utf8), memoryBytes: 1 << 20)
    env.store(littleEndianBytes(UInt16(7)), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, op, At.argument, 1)) == 0)
    #expect(env.loadLE(UInt16.self, at: At.argument + 12) == UInt16(bitPattern: -8))
    for absent in [XenABI.DomainID.invalid, 8] {
      env.store(littleEndianBytes(absent), at: At.argument)
      #expect(resultValue(call(env, .grantTableOp, op, At.argument, 1)) == 0)
      #expect(env.loadLE(UInt16.self, at: At.argument + 12) == UInt16(bitPattern: -2), "domain \(absent)")
    }
    // Only one at a time, and the structure must be readable.
    #expect(resultValue(call(env, .grantTableOp, op, At.argument, 2)) == -22)
    #expect(resultValue(call(env, .grantTableOp, op, At.hole, 1)) == -14)
  }

  /// Version 1 only: set_version(1) succeeds, 2 is -ENOSYS (Xen with gnttab_max_version=1),
  /// anything else -EINVAL; the version in force is written back either way.
  @Test func grantVersions() throws {
    let env = FakeHypercallEnvironment()
    let set = UInt64(XenABI.GrantTableOp.setVersion.rawValue)
    for (asked, expected): (UInt32, Int64) in [(1, 0), (2, ENOSYS), (0, -22), (3, -22), (.max, -22)] {
      env.storeLE(asked, at: At.argument)
      #expect(resultValue(call(env, .grantTableOp, set, At.argument, 1)) == expected, "version \(asked)")
      #expect(env.loadLE(UInt32.self, at: At.argument) == 1)
    }
    let get = UInt64(XenABI.GrantTableOp.getVersion.rawValue)
    env.store(littleEndianBytes(XenABI.DomainID.selfDomain) + [0, 0, 9, 9, 9, 9], at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, get, At.argument, 1)) == 0)
    #expect(env.loadLE(UInt32.self, at: At.argument + 4) == 1)
    env.otherDomains[9] = Domain(id: 9, name: Array("other".utf8), memoryBytes: 1 << 20)
    env.store(littleEndianBytes(UInt16(9)), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, get, At.argument, 1)) == -1)   // -EPERM
    env.store(littleEndianBytes(UInt16(10)), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, get, At.argument, 1)) == -3)   // -ESRCH: no such domain
  }

  /// XENMEM_add_to_physmap(grant_table) grows the table to the index and places the frame, a
  /// frame placed twice moves, and setup_table lists where each frame is (~0: nowhere).
  @Test func grantFramesArePlacedAndListed() throws {
    let env = FakeHypercallEnvironment()
    env.domain.maxGrantFrames = 4
    let add = UInt64(XenABI.MemoryOp.addToPhysmap.rawValue)
    env.store(addToPhysmap(space: .grantTable, index: 2, gpfn: 0x8_0002), at: At.argument)
    #expect(resultValue(call(env, .memoryOp, add, At.argument)) == 0)
    #expect(env.domain.grantFrames.count == 3)
    #expect(env.domain.grantFrameGFNs[2] == 0x8_0002)
    env.store(addToPhysmap(space: .grantTable, index: 0, gpfn: 0x8_0000), at: At.argument)
    #expect(resultValue(call(env, .memoryOp, add, At.argument)) == 0)
    env.store(addToPhysmap(space: .grantTable, index: 0, gpfn: 0x8_0010), at: At.argument)
    #expect(resultValue(call(env, .memoryOp, add, At.argument)) == 0)
    #expect(env.domain.grantFrameGFNs[0] == 0x8_0010)
    // Beyond the limit, a status frame (version 2), a frame number past 2^40: -EINVAL.
    for (index, gpfn) in [(UInt64(4), UInt64(0x8_0004)), (0x8000_0000, 0x8_0005), (1, 1 << 40)] {
      env.store(addToPhysmap(space: .grantTable, index: index, gpfn: gpfn), at: At.argument)
      #expect(resultValue(call(env, .memoryOp, add, At.argument)) == -22, "index \(index) at \(gpfn)")
    }
    #expect(env.domain.grantFrames.count == 3)

    // setup_table: {dom, nr_frames, status, frame_list}.
    let setup = UInt64(XenABI.GrantTableOp.setupTable.rawValue)
    func setupTable(frames: UInt32, list: UInt64) -> [UInt8] {
      littleEndianBytes(XenABI.DomainID.selfDomain) + [0, 0] + littleEndianBytes(frames) + [0xEE, 0xEE, 0, 0, 0, 0, 0, 0]
        + littleEndianBytes(list)
    }
    env.map(At.list, count: 64)
    env.store(setupTable(frames: 4, list: At.list), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, setup, At.argument, 1)) == 0)
    #expect(env.loadLE(UInt16.self, at: At.argument + 8) == 0)
    #expect(env.domain.grantFrames.count == 4)
    #expect(env.loadLE(UInt64.self, at: At.list) == 0x8_0010)
    #expect(env.loadLE(UInt64.self, at: At.list + 8) == UInt64.max)
    #expect(env.loadLE(UInt64.self, at: At.list + 16) == 0x8_0002)
    // More frames than allowed: general error (-1); a list in a hole: bad_virt_addr (-5).
    env.store(setupTable(frames: 5, list: At.list), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, setup, At.argument, 1)) == 0)
    #expect(env.loadLE(UInt16.self, at: At.argument + 8) == UInt16(bitPattern: -1))
    env.store(setupTable(frames: 2, list: At.hole), at: At.argument)
    #expect(resultValue(call(env, .grantTableOp, setup, At.argument, 1)) == 0)
    #expect(env.loadLE(UInt16.self, at: At.argument + 8) == UInt16(bitPattern: -5))
  }

  /// What an HVM/PVH guest may not do with grant_table_op answers -ENOSYS, as in Xen, and so
  /// does swap_grant_ref (not offered here).
  @Test func grantOpsNotOfferedAnswerENOSYS() {
    let env = FakeHypercallEnvironment()
    env.map(At.argument, count: 64)
    let offered: [XenABI.GrantTableOp] = [.querySize, .setupTable, .setVersion, .getVersion, .mapGrantRef, .unmapGrantRef, .copy]
    for op in XenABI.GrantTableOp.allCases where !offered.contains(op) {
      #expect(resultValue(call(env, .grantTableOp, UInt64(op.rawValue), At.argument, 1)) == ENOSYS, "\(op)")
    }
    #expect(resultValue(call(env, .grantTableOp, 13, At.argument, 1)) == ENOSYS)
  }

  /// Every handler copies its argument structure in once and works on the copy (xv6's copyin,
  /// Xen's copy_from_guest): a second read of the same guest memory is where a hostile guest
  /// slips in a value that was never checked.
  @Test func everyArgumentStructureIsReadOnce() throws {
    let calls: [(XenABI.Hypercall, UInt64, [UInt8], String)] = [
      (.memoryOp, UInt64(XenABI.MemoryOp.populatePhysmap.rawValue), reservation(extents: At.list, count: 1, order: 0), "populate_physmap"),
      (.memoryOp, UInt64(XenABI.MemoryOp.addToPhysmap.rawValue), addToPhysmap(space: .sharedInfo, gpfn: 0x3000), "add_to_physmap"),
      (.memoryOp, UInt64(XenABI.MemoryOp.memoryMap.rawValue), littleEndianBytes(UInt64(4)) + littleEndianBytes(At.buffer), "memory_map"),
      (.memoryOp, UInt64(XenABI.MemoryOp.currentReservation.rawValue), littleEndianBytes(XenABI.DomainID.selfDomain), "current_reservation"),
      (.hvmOp, 1, hvmParam(XenABI.HVMParam.consolePFN.rawValue), "get_param"),
      (.hvmOp, 0, hvmParam(XenABI.HVMParam.callbackIRQ.rawValue, value: 0), "set_param"),
      (.xenVersion, UInt64(XenABI.VersionCommand.getFeatures.rawValue), [UInt8](repeating: 0, count: 8), "get_features"),
      (.schedOp, UInt64(XenABI.SchedOp.shutdownCode.rawValue), littleEndianBytes(UInt32(0)), "shutdown_code"),
      (.vcpuOp, UInt64(XenABI.VCPUOp.setPeriodicTimer.rawValue), littleEndianBytes(UInt64(10_000_000)), "set_periodic_timer"),
      (.vcpuOp, UInt64(XenABI.VCPUOp.registerVCPUInfo.rawValue), littleEndianBytes(UInt64(0x3100)) + [UInt8](repeating: 0, count: 8), "register_vcpu_info"),
    ]
    for (hypercall, command, argument, name) in calls {
      let env = FakeHypercallEnvironment()
      env.populated.insert(0x3100)
      env.map(At.list, count: 8)
      env.map(At.buffer, count: 4096)
      env.store(argument, at: At.argument)
      env.resetReadCounts()
      let frame = hypercall == .vcpuOp
        ? HypercallFrame(number: hypercall.rawValue, command, 0, At.argument)
        : HypercallFrame(number: hypercall.rawValue, command, At.argument)
      let outcome = Hypercalls.dispatch(frame, env)
      #expect(resultValue(outcome).map { $0 >= 0 } == true, "\(name): \(describe(outcome))")
      #expect(env.readsAt[At.argument] == 1, "\(name) read its argument \(env.readsAt[At.argument] ?? 0) times")
    }
  }

  /// A copy spans C's sizeof, tail padding included, as Xen's copy_from_guest does: a
  /// xen_hvm_evtchn_upcall_vector (5 bytes of fields in 8) whose padding lies in an unmapped
  /// page is -EFAULT, and the same structure a page earlier is read.
  @Test func aCopySpansTheStructuresTailPadding() {
    let env = FakeHypercallEnvironment()
    let page: UInt64 = 0xFFFF_8880_0050_0000
    env.map(page, count: 4096)
    env.store([0, 0, 0, 0, 0xF3], at: page + 4096 - 5)
    let command = UInt64(XenABI.HVMOp.setEvtchnUpcallVector.rawValue)
    #expect(resultValue(call(env, .hvmOp, command, page + 4096 - 5)) == -14)
    // Within the page: the copy succeeds, and the call goes on to what it needs next (the event
    // platform, absent on the host).
    env.store([0, 0, 0, 0, 0xF3, 0, 0, 0], at: page + 4096 - 8)
    #expect(resultValue(call(env, .hvmOp, command, page + 4096 - 8)) == ENOSYS)
  }

  @Test func downIsOnlyForTheCallingVCPU() {
    let env = FakeHypercallEnvironment(vcpuCount: 3)
    env.domain.vcpus[1].runState = .runnable
    env.domain.vcpus[1].initialised = true
    #expect(resultValue(call(env, .vcpuOp, 2, 1)) == -1)
    #expect(resultValue(call(env, .vcpuOp, 2, 2)) == -1)
    #expect(env.domain.vcpus[1].runState == .runnable)
    #expect(env.domain.vcpus[1].initialised)
    let outcome = call(env, .vcpuOp, 2, 0)
    guard case .down(0) = outcome else { Issue.record("down of self: \(describe(outcome))"); return }
    #expect(env.domain.vcpus[0].initialised)          // stays initialised: VCPUOP_up restarts it
  }
}

/// The capture buffer as it is now (under the log lock, as the sink appends under it).
private func capturedConsoleBytesSnapshot() -> [UInt8] {
  Log.lock.lock()
  defer { Log.lock.unlock() }
  return capturedConsoleBytes
}
