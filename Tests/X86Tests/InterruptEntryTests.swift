import Testing

@testable import X86

/// What an entry does with a due interrupt (Upcall.deliver): inject, open a window, or complete
/// a HLT at RIP and inject, so that `sti; hlt` is woken by the interrupt and never sleeps
/// through it.
@Suite struct InterruptEntryTests {
  static func decide(_ enabled: Bool, shadow: Bool = false, injecting: Bool = false, halt: Bool) -> InterruptEntry {
    InterruptEntry.decide(interruptsEnabled: enabled, shadow: shadow, injecting: injecting, haltsNext: { halt })
  }

  @Test func injectsWhenTheGuestCanTakeIt() {
    #expect(Self.decide(true, halt: false) == .inject(completingHalt: false))
  }

  @Test func waitsForAWindowWhileInterruptsAreOffOrAnotherEventGoesIn() {
    #expect(Self.decide(false, halt: false) == .window)
    #expect(Self.decide(false, halt: true) == .window)        // `cli; hlt` is not woken
    #expect(Self.decide(true, injecting: true, halt: true) == .window)
    #expect(Self.decide(true, shadow: true, injecting: true, halt: false) == .window)
  }

  /// The lost wake-up: an exit between `sti` and `hlt` leaves RIP on the HLT with the shadow
  /// set. A window would open before the HLT under QEMU's TCG (its VMRUN drops the shadow) and
  /// the upcall's handler would return to the HLT and sleep; the HLT is completed instead.
  @Test func anExitBetweenSTIAndHLTCompletesTheHalt() {
    #expect(Self.decide(true, shadow: true, halt: true) == .inject(completingHalt: true))
  }

  /// The same when a second exit finds the shadow already gone: the HLT is still at RIP.
  @Test func aHaltAtRIPIsCompletedWithoutAShadowToo() {
    #expect(Self.decide(true, shadow: false, halt: true) == .inject(completingHalt: true))
  }

  @Test func anyOtherInstructionInTheShadowWaitsForTheWindow() {
    #expect(Self.decide(true, shadow: true, halt: false) == .window)
  }

  /// The guest's code is read only when the interrupt could go in now.
  @Test func readsTheInstructionOnlyWhenItCouldInject() {
    var reads = 0
    _ = InterruptEntry.decide(interruptsEnabled: false, shadow: false, injecting: false, haltsNext: { reads += 1; return true })
    _ = InterruptEntry.decide(interruptsEnabled: true, shadow: false, injecting: true, haltsNext: { reads += 1; return true })
    #expect(reads == 0)
    _ = InterruptEntry.decide(interruptsEnabled: true, shadow: true, injecting: false, haltsNext: { reads += 1; return true })
    #expect(reads == 1)
  }
}
