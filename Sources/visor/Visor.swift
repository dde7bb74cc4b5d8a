import ArgumentParser
import Foundation
import VisorKit

@main
struct Visor: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "visor",
    abstract: "Build the Swiftvisor hypervisor image and boot it under QEMU.",
    discussion: """
      Run it from the package: swift run visor <subcommand>. Exit statuses:
        0   clean poweroff
        1   bench: an expected console line was missing; fuzz: a frame was not returned
        3   hypervisor crash (a crash report was printed)
        4   hypervisor panic or self-test failure (an error was printed); fuzz: an isolation check report
        5   timeout: QEMU was killed
        6   a host tool is missing (qemu-system-x86_64, swift, grub-mkrescue, xorriso)
        7   the image build failed (the compiler output was printed)
        8   QEMU stopped without a hypervisor exit code (triple fault?)
        9   QEMU itself failed
        10  every domain ended, not all cleanly (a crash, or one could not be built); fuzz: the
            bystander did not finish, or the fuzzer's domain did not survive
        11  a domain configuration, kernel or ramdisk is unusable
        12  q on the hypervisor's console while domains still ran (visor demo: 0)
        64  bad arguments
      """,
    subcommands: [Build.self, Run.self, DemoCommand.self, ISO.self, Bench.self, Fuzz.self])
}

// MARK: - Shared options

struct BuildOptions: ParsableArguments {
  @Option(help: ArgumentHelp("The Swiftvisor package root (default: found from the current folder).", valueName: "path"))
  var packagePath: String?

  @Option(help: ArgumentHelp("SwiftPM's scratch folder for the image build (default: <package>/.build).", valueName: "path"))
  var scratchPath: String?

  @Flag(help: "Build the debug configuration (-Onone: Swift trap messages are printed) instead of release.")
  var debug = false

  func builder() throws(VisorError) -> ImageBuilder {
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
    let root: URL
    if let packagePath {
      root = URL(fileURLWithPath: packagePath, isDirectory: true, relativeTo: cwd).standardizedFileURL
    } else {
      guard let found = PackageLocator.root(from: cwd) else {
        throw VisorError(.usage, "not inside the Swiftvisor package (no Package.swift with \(ImageBuilder.imageToolset) here or above \(cwd.path)): cd into it or pass --package-path")
      }
      root = found
    }
    // Relative scratch paths are relative to the current folder, as for swift build.
    let scratch = scratchPath.map { URL(fileURLWithPath: $0, isDirectory: true, relativeTo: cwd).standardizedFileURL }
    return ImageBuilder(packageRoot: root, scratchPath: scratch, configuration: debug ? .debug : .release)
  }
}

struct ImageOptions: ParsableArguments {
  @OptionGroup var build: BuildOptions

  @Option(help: ArgumentHelp("Boot this ELF image instead of building one.", valueName: "path"))
  var image: String?

  /// The image to boot: `--image`, or a fresh build (quiet unless it fails).
  func resolveImage() throws(VisorError) -> URL {
    if let image {
      let url = URL(fileURLWithPath: image).standardizedFileURL
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
        throw VisorError(.usage, "--image \(image): no such file")
      }
      return url
    }
    let builder = try build.builder()
    note("building the image (\(builder.configuration.rawValue)): swift \(shellQuoted(builder.arguments))")
    return try builder.build()
  }
}

// MARK: - Output helpers

/// A message from visor itself, on stderr (stdout carries the hypervisor's console).
func note(_ message: String) {
  FileHandle.standardError.write(Data(("visor: " + message + "\n").utf8))
}

func shellQuoted(_ args: [String]) -> String {
  args.map { arg in
    let safe = !arg.isEmpty && arg.unicodeScalars.allSatisfy {
      CharacterSet.alphanumerics.contains($0) || "-_=+.,:/@%".unicodeScalars.contains($0)
    }
    return safe ? arg : "'" + arg.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }.joined(separator: " ")
}

/// Runs `body`; a `VisorError` is printed (message, then its detail) and becomes visor's exit status.
func reportingErrors(_ body: () throws(VisorError) -> Void) throws {
  do {
    try body()
  } catch {
    note("error: " + error.message)
    if let detail = error.detail, !detail.isEmpty {
      FileHandle.standardError.write(Data((detail.hasSuffix("\n") ? detail : detail + "\n").utf8))
    }
    throw ExitCode(error.exit.rawValue)
  }
}

// MARK: - build

struct Build: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Build the hypervisor image (an ELF that QEMU and GRUB boot).",
    discussion: "Prints the image's path. The compiler's output is shown as it runs.")

  @OptionGroup var options: BuildOptions

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let builder = try options.builder()
      note("swift \(shellQuoted(builder.arguments))")
      let image = try builder.build(echo: true)
      let elf = try ImageFile(path: image.path)
      note("image: \(elf.fileSize) bytes, \(elf.loadedMemorySize) bytes loaded")
      print(image.path)
    }
  }
}
