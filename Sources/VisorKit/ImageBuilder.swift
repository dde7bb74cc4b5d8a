import Foundation

/// Builds the bare-metal image with SwiftPM:
/// `swift build --build-system native --triple x86_64-unknown-none-elf --toolset Toolsets/x86_64-hv.json
/// [--toolset Toolsets/osize.json] -c release --product swiftvisor`.
public struct ImageBuilder: Sendable {
  public enum Configuration: String, Sendable, CaseIterable {
    case debug, release
  }

  public static let triple = "x86_64-unknown-none-elf"
  public static let imageProduct = "swiftvisor"
  /// The bare-metal toolset: Embedded Swift, freestanding, the linker script.
  public static let imageToolset = "Toolsets/x86_64-hv.json"
  /// Added for release builds only (`-Osize` in the base toolset would override `-Onone` in debug).
  public static let releaseToolset = "Toolsets/osize.json"

  public var packageRoot: URL
  public var scratchPath: URL
  public var configuration: Configuration
  /// `swift`, found on PATH unless a path is given.
  public var swift: String
  /// What to build: the hypervisor image by default, or a test guest (`forGuest`).
  public var product: String = ImageBuilder.imageProduct
  public var baseToolset: String = ImageBuilder.imageToolset

  /// A builder for one of the PVH test guests (docs/test-guests.md), in their own scratch folder
  /// (both are bare-metal builds, with different toolsets).
  public static func forGuest(_ product: String, packageRoot: URL, scratchPath: URL? = nil) -> ImageBuilder {
    var builder = ImageBuilder(packageRoot: packageRoot,
                               scratchPath: scratchPath ?? packageRoot.appendingPathComponent(".build-guests"))
    builder.product = product
    builder.baseToolset = "Toolsets/x86_64-guest.json"
    return builder
  }

  /// - Parameter scratchPath: SwiftPM's build folder; default `<packageRoot>/.build`.
  public init(packageRoot: URL, scratchPath: URL? = nil, configuration: Configuration = .release, swift: String = "swift") {
    self.packageRoot = packageRoot.standardizedFileURL
    self.scratchPath = (scratchPath ?? packageRoot.appendingPathComponent(".build")).standardizedFileURL
    self.configuration = configuration
    self.swift = swift
  }

  /// The arguments after `swift`.
  public var arguments: [String] {
    var args = [
      "build", "--build-system", "native",
      "--package-path", packageRoot.path,
      "--scratch-path", scratchPath.path,
      "--triple", Self.triple,
      "--toolset", packageRoot.appendingPathComponent(baseToolset).path,
    ]
    if configuration == .release {
      args += ["--toolset", packageRoot.appendingPathComponent(Self.releaseToolset).path]
    }
    // --product is mandatory: without it SwiftPM builds every target (ArgumentParser too) in Embedded mode.
    return args + ["-c", configuration.rawValue, "--product", product]
  }

  /// Where the ELF lands. Always the full triple path: `<scratch>/release` is a symlink to
  /// whichever triple built last.
  public var imagePath: URL {
    scratchPath.appendingPathComponent(Self.triple).appendingPathComponent(configuration.rawValue)
      .appendingPathComponent(product)
  }

  /// Runs the build and returns the image's path.
  /// - Parameter echo: stream SwiftPM's output to stderr while it runs.
  /// - Throws: `.toolMissing` without `swift`, `.buildFailed` (with the compiler's output as `detail`).
  @discardableResult
  public func build(echo: Bool = false) throws(VisorError) -> URL {
    for toolset in [baseToolset, Self.releaseToolset] {
      let path = packageRoot.appendingPathComponent(toolset).path
      guard FileManager.default.fileExists(atPath: path) else {
        throw VisorError(.usage, "\(path) is missing: \(packageRoot.path) is not the Swiftvisor package root (use --package-path)")
      }
    }
    guard let swiftPath = HostTools.find(swift) else {
      throw VisorError(.toolMissing, "\(swift) not found on PATH: install the Swift 6.3 toolchain")
    }
    let (status, output) = try HostTools.run(swiftPath, arguments, in: packageRoot, echo: echo)
    guard status == 0 else {
      throw VisorError(
        .buildFailed,
        "image build failed (swift build exited with status \(status))"
          + (echo ? "; the compiler output is above" : ":"),
        detail: echo ? nil : output)
    }
    guard FileManager.default.fileExists(atPath: imagePath.path) else {
      throw VisorError(
        .buildFailed, "swift build succeeded but \(imagePath.path) does not exist", detail: echo ? nil : output)
    }
    return imagePath
  }
}

/// Finds the Swiftvisor package root.
public enum PackageLocator {
  /// The nearest folder at or above `start` that holds `Package.swift` and `Toolsets/x86_64-hv.json`.
  public static func root(from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> URL? {
    var dir = start.standardizedFileURL
    while true {
      let fm = FileManager.default
      if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
         fm.fileExists(atPath: dir.appendingPathComponent(ImageBuilder.imageToolset).path) {
        return dir
      }
      let parent = dir.deletingLastPathComponent().standardizedFileURL
      if parent.path == dir.path { return nil }
      dir = parent
    }
  }
}
