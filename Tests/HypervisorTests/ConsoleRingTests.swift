import Testing
import XenABI

@testable import Hypervisor

/// A console ring page in host memory.
final class FakePage: SharedPage {
  var bytes = [UInt8](repeating: 0, count: 4096)
  func load32(at offset: Int) -> UInt32 { bytes.littleEndian(UInt32.self, at: offset)! }
  func store32(_ value: UInt32, at offset: Int) { bytes.replaceSubrange(offset..<offset + 4, with: littleEndianBytes(value)) }
  func load8(at offset: Int) -> UInt8 { bytes[offset] }
  func store8(_ value: UInt8, at offset: Int) { bytes[offset] = value }
}

@Suite struct ConsoleRingTests {
  typealias Ring = XenABI.ConsoleRing

  /// The guest side of `out`: what Linux's hvc_xen does.
  func guestWrite(_ text: String, to page: FakePage) {
    var producer = page.load32(at: Ring.Offset.outputProducer)
    for byte in text.utf8 {
      page.store8(byte, at: Ring.Offset.output + Int(producer % UInt32(Ring.outSize)))
      producer &+= 1
    }
    page.store32(producer, at: Ring.Offset.outputProducer)
  }

  @Test func outputIsDrainedAcrossTheWrap() {
    let page = FakePage()
    // Start near the end of the ring and near the wrap of the 32-bit indices.
    let start = UInt32.max - 5
    page.store32(start, at: Ring.Offset.outputConsumer)
    page.store32(start, at: Ring.Offset.outputProducer)
    guestWrite("hello, world\n", to: page)
    #expect(String(decoding: ConsoleRingBackend.drainOutput(page), as: UTF8.self) == "hello, world\n")
    #expect(page.load32(at: Ring.Offset.outputConsumer) == start &+ 13)
    #expect(ConsoleRingBackend.drainOutput(page).isEmpty)
  }

  @Test func aProducerIndexFarAheadDrainsOneRingNotMore() {
    let page = FakePage()
    page.store32(1_000_000, at: Ring.Offset.outputProducer)
    #expect(ConsoleRingBackend.drainOutput(page).count == Ring.outSize)
  }

  @Test func inputFillsWhatIsFreeAndNoMore() {
    let page = FakePage()
    let input = [UInt8](repeating: 0x41, count: 1000)
    #expect(ConsoleRingBackend.deliverInput(input, to: page) == 1000)
    #expect(ConsoleRingBackend.deliverInput(input, to: page) == 24)        // 1024 in all
    #expect(page.load32(at: Ring.Offset.inputProducer) == 1024)
    page.store32(1000, at: Ring.Offset.inputConsumer)                       // the guest read 1000
    #expect(ConsoleRingBackend.deliverInput(Array("ok".utf8), to: page) == 2)
    #expect(page.load8(at: Ring.Offset.input + 0) == UInt8(ascii: "o"))     // wrapped to the start
    // A consumer ahead of the producer breaks the protocol: nothing is written.
    page.store32(5000, at: Ring.Offset.inputConsumer)
    #expect(ConsoleRingBackend.deliverInput([1], to: page) == 0)
  }

  @Test func ctrlAThreeTimesSwitchesAndFewerPassThrough() {
    var input = ConsoleInputSwitch()
    #expect(input.feed(0x61) == .deliver([0x61]))
    #expect(input.feed(0x01) == nil)
    #expect(input.feed(0x01) == nil)
    #expect(input.feed(0x01) == .switchFocus)
    #expect(input.feed(0x01) == nil)
    #expect(input.feed(0x62) == .deliver([0x01, 0x62]))
  }

  @Test func focusCyclesThroughTheDomainsAndTheHypervisor() {
    #expect(ConsoleInputSwitch.next(after: 0, among: [1, 3]) == 1)
    #expect(ConsoleInputSwitch.next(after: 1, among: [1, 3]) == 3)
    #expect(ConsoleInputSwitch.next(after: 3, among: [1, 3]) == 0)
    #expect(ConsoleInputSwitch.next(after: 2, among: []) == 0)
  }
}
