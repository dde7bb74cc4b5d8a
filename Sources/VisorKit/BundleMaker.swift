import Foundation
import Hypervisor

/// Turns xl.cfg-style domain configurations into one boot bundle (Hypervisor/Boot/BootBundle.swift),
/// the module the hypervisor builds its boot-time domains from.
///
/// Everything a user can get wrong is checked here first, with the file named in the message:
/// the configuration's syntax and values, the kernel (an ELF with a PVH entry note, or a bzImage
/// whose LZ4 payload holds one) and the ramdisk. Paths inside a configuration are relative to
/// the configuration file's folder.
///
/// A kernel or ramdisk that several domains use is stored once: blobs are compared by content
/// (the unpacked ELF for a bzImage), so the same file named by two paths is one blob too.
public enum BundleMaker {
  public struct Domain {
    public var config: DomainConfig
    public var kernel: [UInt8]
    public var ramdisk: [UInt8]?
    public var warnings: [String]
    /// The file's name and the line each `disk` and `vif` entry starts on, for problems found
    /// once every domain is known.
    public var fileName: String
    public var diskLines: [Int]
    public var vifLines: [Int]
    /// The configuration's folder, which relative paths in it start from.
    public var folder: URL
  }

  /// Reads and checks one configuration and the files it names.
  public static func load(configPath: String) throws(VisorError) -> Domain {
    let url = URL(fileURLWithPath: configPath)
    guard let text = try? Data(contentsOf: url) else {
      throw VisorError(.badConfig, "\(configPath): cannot read the file")
    }
    let fileName = Array(url.lastPathComponent.utf8)
    let config: DomainConfig
    let warnings: [XLConfigWarning]
    do throws(XLConfigError) {
      (config, warnings) = try XLConfig.parseWithWarnings(Array(text), fileName: fileName)
    } catch {
      throw VisorError(.badConfig, String(decoding: error.message(), as: UTF8.self))
    }
    let folder = url.deletingLastPathComponent()
    func resolve(_ path: [UInt8]) -> URL {
      let text = String(decoding: path, as: UTF8.self)
      return text.hasPrefix("/") ? URL(fileURLWithPath: text) : folder.appendingPathComponent(text)
    }
    let kernelURL = resolve(config.kernelPath)
    guard let kernelFile = try? Data(contentsOf: kernelURL) else {
      throw VisorError(.badConfig, "\(configPath): kernel \(kernelURL.path): cannot read the file")
    }
    var kernel = Array(kernelFile)
    if BzImage.isBzImage(kernel) {
      do throws(BzImageError) {
        kernel = try BzImage.extractELF(kernel)
      } catch {
        throw VisorError(.badConfig, "\(configPath): kernel \(kernelURL.path): \(String(decoding: error.message(), as: UTF8.self))")
      }
    }
    do throws(ELFError) {
      let image = try ELFImage.parse(kernel)
      try image.checkFits(guestMemoryBytes: UInt64(config.memoryMiB) << 20, reserved: [0xA_0000..<0x10_0000])
    } catch {
      throw VisorError(.badConfig, "\(configPath): kernel \(kernelURL.path): \(String(decoding: error.message(), as: UTF8.self))")
    }
    var ramdisk: [UInt8]?
    if let path = config.ramdiskPath {
      let ramdiskURL = resolve(path)
      guard let data = try? Data(contentsOf: ramdiskURL) else {
        throw VisorError(.badConfig, "\(configPath): ramdisk \(ramdiskURL.path): cannot read the file")
      }
      ramdisk = Array(data)
    }
    return Domain(config: config, kernel: kernel, ramdisk: ramdisk,
                  warnings: warnings.map { String(decoding: $0.message(fileName: fileName), as: UTF8.self) },
                  fileName: url.lastPathComponent, diskLines: XLConfig.listEntryLines(Array(text), key: "disk"),
                  vifLines: XLConfig.listEntryLines(Array(text), key: "vif"), folder: folder)
  }

  /// `make`, answering only what a command-line tool reports: how many domains, and the warnings.
  public static func makeBundle(configPaths: [String], output: URL) throws(VisorError) -> (domains: Int, warnings: [String]) {
    let domains = try make(configPaths: configPaths, output: output)
    return (domains.count, domains.flatMap(\.warnings))
  }

  /// For the commands that generate their domains' configurations (the demo, the benchmarks):
  /// writes each text to `<folder>/<name>.cfg`, packs them into `<folder>/<bundleName>` and
  /// returns where the bundle is.
  public static func make(configs: [(name: String, text: String)], in folder: URL, bundleName: String) throws(VisorError) -> URL {
    var paths: [String] = []
    for (name, text) in configs {
      let path = folder.appendingPathComponent("\(name).cfg")
      do { try text.write(to: path, atomically: true, encoding: .utf8) }
      catch { throw VisorError(.badConfig, "cannot write \(path.path)") }
      paths.append(path.path)
    }
    let bundle = folder.appendingPathComponent(bundleName)
    _ = try make(configPaths: paths, output: bundle)
    return bundle
  }

  /// Loads every configuration and writes the bundle to `output`. Domain names must be unique,
  /// and every device must have a backend among the domains (DeviceBackends).
  public static func make(configPaths: [String], output: URL) throws(VisorError) -> [Domain] {
    var domains: [Domain] = []
    for path in configPaths {
      let domain = try load(configPath: path)
      if domains.contains(where: { $0.config.name == domain.config.name }) {
        throw VisorError(.badConfig, "\(path): name \"\(String(decoding: domain.config.name, as: UTF8.self))\" is already used by another domain")
      }
      domains.append(domain)
    }
    if let problem = DeviceBackends.resolve(domains.map(\.config)).problems.first {
      let domain = domains[problem.domainIndex]
      let lines = problem.isDisk ? domain.diskLines : domain.vifLines
      let line = problem.entry < lines.count ? ":\(lines[problem.entry])" : ""
      throw VisorError(.badConfig, "\(domain.fileName)\(line): \(String(decoding: problem.key, as: UTF8.self)): \(String(decoding: problem.message(), as: UTF8.self))")
    }
    try DiskImages.pack(&domains)
    var store = BlobStore()
    let entries = domains.map { domain in
      (config: domain.config, kernel: store.add(domain.kernel),
       ramdisk: domain.ramdisk.flatMap { $0.isEmpty ? nil : store.add($0) })
    }
    let bytes = BootBundle.build(domains: entries, blobs: store.blobs)
    do {
      try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(bytes).write(to: output)
    } catch {
      throw VisorError(.badConfig, "cannot write the boot bundle \(output.path): \(error.localizedDescription)")
    }
    return domains
  }
}

/// The blobs of one bundle, each content once.
struct BlobStore {
  private(set) var blobs: [[UInt8]] = []
  /// Blob indices by a hash of their bytes; a match is then compared byte for byte.
  private var byHash: [Int: [Int]] = [:]

  /// The index of the blob holding exactly `bytes`, added if there is none yet.
  mutating func add(_ bytes: [UInt8]) -> Int {
    let hash = Self.hash(bytes)
    if let same = byHash[hash]?.first(where: { Self.equal(blobs[$0], bytes) }) { return same }
    blobs.append(bytes)
    byHash[hash, default: []].append(blobs.count - 1)
    return blobs.count - 1
  }

  private static func hash(_ bytes: [UInt8]) -> Int {
    var hasher = Hasher()
    bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    return hasher.finalize()
  }

  private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { a in
      b.withUnsafeBytes { b in
        guard let first = a.baseAddress, let second = b.baseAddress else { return true }
        return memcmp(first, second, a.count) == 0
      }
    }
  }
}
