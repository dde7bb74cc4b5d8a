import Foundation
import Testing
import VisorKit

extension Serialized {
  /// The fuzzer (docs/security.md, "The fuzzer"): guest-fuzz beside a guest-pingpong pair, as
  /// `visor fuzz` runs it, with a fresh seed each time. A failure names the seed; replay it with
  /// `SWIFTVISOR_FUZZ_SEED=<seed>` (or `visor fuzz --seed <seed> --seconds 75 --trace`).
  @Suite("The fuzzer beside a bystander") struct FuzzTests {
    static let seedVariable = "SWIFTVISOR_FUZZ_SEED"
    /// Long enough for a few hundred thousand calls, short enough for CI (the whole run, with
    /// domain builds and the bystander's tail, takes about 100 s).
    static let seconds = 75
    /// Calls the fuzzer must survive at least: runs make 5,000 to 13,000 a second under TCG on a
    /// loaded 2-core host; far fewer means it spent its time stuck, not calling.
    static let minimumCalls = seconds * 1_000

    static func seed() -> UInt64 {
      if let text = ProcessInfo.processInfo.environment[seedVariable], let seed = UInt64(text) { return seed }
      return FuzzRun.randomSeed()
    }

    @Test("guest-fuzz survives its seed's calls; the bystander finishes; the isolation check stays clean")
    func fuzzBesideABystander() throws {
      let seed = Self.seed()
      let seconds = Self.seconds
      let replay = "seed \(seed): replay with \(Self.seedVariable)=\(seed), or \(FuzzRun.replayCommand(seed: seed, seconds: seconds)) --trace"
      print("FuzzTests: \(replay)")
      let configs = FuzzRun.configs(
        fuzzer: try SystemGuests.path("guest-fuzz"), pingpong: try SystemGuests.path("guest-pingpong"), seed: seed, seconds: seconds)
      let result = try SystemImage.boot(
        configs: configs.map(\.text), smp: FuzzRun.pcpus, cmdline: FuzzRun.cmdline, timeout: FuzzRun.timeout(seconds: seconds))

      #expect(CrashReport.first(in: result.lines.map(\.text)) == nil, "hypervisor crash; \(replay)\n\(context(result))")
      let isolation = result.lines(containing: "isolation check").filter { !$0.contains(" agree with the frame table") }
      #expect(isolation.isEmpty, "isolation check report: \(isolation); \(replay)\n\(context(result))")
      expectLines(result, FuzzRun.bystanderLines(seconds: seconds) + FuzzRun.fuzzerLines + [
        "all domains have ended: 3 built, 3 ended cleanly, 0 did not",
        "memory: all ",
        "poweroff: clean",
      ])
      #expect(!result.contains("LEAK"), "a leak was reported; \(replay)\n\(context(result))")
      let verdict = FuzzRun.verdict(result, seconds: seconds)
      #expect(verdict.failure == nil, "\(verdict.failure?.reason ?? ""); \(replay)\n\(context(result))")
      let calls = verdict.calls ?? 0
      #expect(calls >= Self.minimumCalls, "survived only \(calls) calls, want at least \(Self.minimumCalls); \(replay)\n\(context(result))")
      print("FuzzTests: seed \(seed): \(verdict.survivedLine ?? "no survived line")")
      expectExit(result, .clean)
    }
  }
}
