import Foundation
import Testing
import VisorKit

extension Serialized {
  /// The image under QEMU TCG: boot, SMP bring-up, timers, IPIs, poweroff, command line.
  @Suite("Image boots under QEMU") struct ImageBoot {
    @Test("The image is an x86_64 ELF with a PVH entry note")
    func imageIsBootableELF() throws {
      // ImageFile parses with the hypervisor's own loader, which refuses an ELF without the
      // Xen PHYS32_ENTRY note (QEMU -kernel could not boot it).
      let image = try ImageFile(path: try SystemImage.path())
      #expect(image.elf.is64Bit)
      #expect(image.elf.machine == 62, "e_machine \(image.elf.machine), want 62 (x86_64)")
      #expect(image.elf.pvhEntry >= 0x100000)
      #expect(!image.elf.segments.isEmpty)
    }

    @Test("Boots, brings every pcpu online, checks timers and IPIs, powers off", arguments: [1, 2, 4])
    func bootsAndPowersOff(smp: Int) throws {
      let result = try SystemImage.boot(smp: smp)
      var expected = ["boot: loader pvh", "pcpus online: \(smp)"]
      expected += (0..<smp).map { "timer: pcpu \($0) ok" }
      expected += (1..<smp).map { "ipi: pcpu 0 -> pcpu \($0) round trip ok" }
      expected.append("poweroff: clean")
      expectLines(result, expected)
      expectExit(result, .clean)
      #expect(CrashReport.first(in: result.lines.map(\.text)) == nil, "unexpected crash report\n\(context(result))")
    }

    @Test("An unknown command-line option is reported and boot goes on")
    func unknownOptionIsReported() throws {
      let result = try SystemImage.boot(smp: 1, cmdline: "frobnicate=1")
      // The contract names the option: `cmdline: unknown option 'frobnicate'`.
      expectLines(result, ["cmdline: unknown option 'frobnicate", "poweroff: clean"])
      expectExit(result, .clean)
    }

    @Test("smp=1 on the command line limits a 2-pcpu machine to one pcpu")
    func smpOptionLimitsPCPUs() throws {
      let result = try SystemImage.boot(smp: 2, cmdline: "smp=1")
      expectLines(result, ["pcpus online: 1", "timer: pcpu 0 ok", "poweroff: clean"])
      #expect(!result.contains("pcpus online: 2"), "both pcpus came online despite smp=1\n\(context(result))")
      expectExit(result, .clean)
    }

    @Test(
      "GRUB boots the ISO with multiboot2",
      .enabled(if: ISOBuilder.grubMkrescueInstalled, "grub-mkrescue is not installed (scripts/setup installs it)"))
    func grubISOBoots() throws {
      let image = URL(fileURLWithPath: try SystemImage.path())
      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvisor-test-\(UUID().uuidString)")
      defer { try? FileManager.default.removeItem(at: folder) }
      let iso = try ISOBuilder().build(image: image, output: folder.appendingPathComponent("swiftvisor.iso"))
      var configuration = RunConfiguration(boot: .cdrom(path: iso.path))
      configuration.smp = 2
      let result = try QEMURunner.locate().run(configuration)
      expectLines(result, ["boot: loader multiboot2", "pcpus online: 2", "poweroff: clean"])
      expectExit(result, .clean)
    }
  }

  /// The `crash=` switch: each mode must end in a complete, readable crash report and status 35.
  @Suite("Crash reports") struct Crashes {
    static let generalRegisters = [
      "RAX=", "RBX=", "RCX=", "RDX=", "RSI=", "RDI=", "RBP=",
      "R8=", "R9=", "R10=", "R11=", "R12=", "R13=", "R14=", "R15=",
    ]

    /// Checks the report's shape and returns it.
    @discardableResult
    func expectReport(
      _ result: RunResult, headerContains: [String], pcpu: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) -> CrashReport? {
      expectExit(result, .crash, sourceLocation: sourceLocation)
      expectLines(
        result, [CrashReport.startMarker, "RIP=", "CR2=", "backtrace:", CrashReport.endMarker],
        sourceLocation: sourceLocation)
      let reports = CrashReport.all(in: result.lines.map(\.text))
      #expect(reports.count == 1, "want exactly one crash report, got \(reports.count)\n\(context(result))", sourceLocation: sourceLocation)
      guard let report = reports.first else { return nil }
      #expect(report.complete, "the report has no end marker\n\(context(result))", sourceLocation: sourceLocation)
      #expect(report.pcpu == pcpu, "report names pcpu \(report.pcpu.map(String.init) ?? "?"), want \(pcpu): \(report.header)", sourceLocation: sourceLocation)
      for text in headerContains {
        #expect(report.header.contains(text), "header lacks \"\(text)\": \(report.header)", sourceLocation: sourceLocation)
      }
      let body = report.body.joined(separator: "\n")
      let missing = (["RIP=", "RSP=", "RFLAGS=", "CR2=", "CR3=", "backtrace:", "#0 0x"] + Self.generalRegisters)
        .filter { !body.contains($0) }
      #expect(missing.isEmpty, "report lacks \(missing)\n\(context(result))", sourceLocation: sourceLocation)
      #expect(
        report.foreignLines.isEmpty,
        "lines inside the report without its indentation \"\(report.indentation)\": \(report.foreignLines)\n\(context(result))",
        sourceLocation: sourceLocation)
      return report
    }

    @Test("crash=<mode> on the bootstrap pcpu", arguments: [
      // A ud2 is also how Swift traps, so the header may name either; the vector is certain.
      ("ud2", ["(vector 6)"]),
      ("pagefault", ["#PF", "(vector 14)"]),
      ("divide", ["#DE", "(vector 0)"]),
      ("trap", ["Swift runtime trap"]),
    ])
    func crashOnBSP(mode: String, header: [String]) throws {
      let result = try SystemImage.boot(smp: 1, cmdline: "crash=\(mode)")
      expectReport(result, headerContains: header, pcpu: 0)
    }

    @Test("crash=ap-pagefault: the last AP reports, not interleaved with other output", arguments: [2, 4])
    func crashOnLastAP(smp: Int) throws {
      let result = try SystemImage.boot(smp: smp, cmdline: "crash=ap-pagefault")
      expectReport(result, headerContains: ["#PF", "(vector 14)"], pcpu: smp - 1)
    }
  }
}
