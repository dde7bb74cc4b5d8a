import Foundation
import Testing
import VisorKit

/// Every test that starts a process lives under this suite: `.serialized` applies to all nested
/// suites, so only one QEMU runs at a time (TCG is heavy on a 2-core machine).
@Suite("Tests that start processes, one at a time", .serialized) struct Serialized {}

/// The image under test, built by scripts/test and named by `SWIFTVISOR_IMAGE`.
enum SystemImage {
  static let variable = "SWIFTVISOR_IMAGE"

  struct Missing: Error, CustomStringConvertible {
    var description: String
  }

  /// The image's path, or a failure that says how to provide it (never a silent skip).
  static func path() throws -> String {
    let hint = "build it and export its path: `swift run visor build` prints it, and scripts/test does both"
    guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else {
      throw Missing(description: "\(variable) is not set; \(hint)")
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw Missing(description: "\(variable)=\(path) does not exist; \(hint)")
    }
    guard !isDirectory.boolValue else {
      throw Missing(description: "\(variable)=\(path) is a folder, not the image file; \(hint)")
    }
    return path
  }

  /// Boots the image under QEMU and returns how it ended.
  static func boot(smp: Int, cmdline: String = "", timeout: Double = 120) throws -> RunResult {
    var configuration = RunConfiguration(kernel: try path())
    configuration.smp = smp
    configuration.cmdline = cmdline
    configuration.timeout = timeout
    return try QEMURunner.locate().run(configuration)
  }
}

/// What a failed expectation shows: the QEMU command, its outcome and the console's end.
func context(_ result: RunResult) -> Comment {
  """
  \(result.summary)
  command: \(result.command.joined(separator: " "))
  console (last lines):
  \(result.tail())
  \(result.qemuErrors.isEmpty ? "" : "QEMU stderr:\n" + result.qemuErrors)
  """
}

func expectLines(
  _ result: RunResult, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation
) {
  let missing = expected.filter { !result.contains($0) }
  #expect(missing.isEmpty, "missing console lines: \(missing)\n\(context(result))", sourceLocation: sourceLocation)
}

func expectExit(_ result: RunResult, _ exit: VisorExit, sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(result.exit == exit, "expected \(exit), got \(result.exit)\n\(context(result))", sourceLocation: sourceLocation)
}
