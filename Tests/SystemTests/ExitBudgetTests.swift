import Foundation
import Testing
import VisorKit

extension Serialized {
  /// What one exit costs, in instructions: under `-icount shift=0` the guest's TSC advances
  /// one per instruction executed, so guest-bench's medians are exact and the same on every
  /// run of the same image. No time is measured here.
  @Suite("Exit costs under -icount") struct ExitBudgetTests {
    @Test("A null hypercall and a CPUID exit stay under the guard (docs/exit-budget.md)")
    func exitCostsStayUnderTheGuard() throws {
      let config = HypercallBenchmark.config(guest: try SystemGuests.path("guest-bench"), samples: 1000)
      let folder = try TemporaryFolder("swiftvisor-exit-budget")
      defer { folder.remove() }
      let bundle = try BundleMaker.make(configs: [("bench", config)], in: folder.url, bundleName: "bundle.bin")
      var configuration = RunConfiguration(kernel: try SystemImage.path())
      configuration.smp = 1
      configuration.cmdline = "vmrunfloor=1000"
      configuration.initrd = bundle.path
      configuration.icount = true
      configuration.timeout = 300
      let result = try SystemImage.run(configuration)
      expectExit(result, .clean)
      let sample = try #require(HypercallBenchmark.sample(from: result.lines.map(\.text)), "no figures\n\(context(result))")
      #expect(sample.hypercall <= HypercallBenchmark.hypercallGuard,
              "a null hypercall costs \(sample.hypercall) instructions (guard \(HypercallBenchmark.hypercallGuard), budget \(HypercallBenchmark.hypercallBudget))")
      #expect(sample.cpuid <= HypercallBenchmark.cpuidGuard,
              "a CPUID exit costs \(sample.cpuid) instructions (guard \(HypercallBenchmark.cpuidGuard), budget \(HypercallBenchmark.cpuidBudget))")
      // The floor is the bare VMRUN/#VMEXIT round trip: it has been 76-79 instructions.
      #expect(sample.floor > 0 && sample.floor < 200, "floor \(sample.floor)")
    }
  }
}
