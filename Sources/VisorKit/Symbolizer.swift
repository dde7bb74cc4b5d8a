import Foundation

/// Turns code addresses from a crash report into function names and source lines, using the
/// image's symbols and DWARF (`addr2line` from binutils, names demangled by `swift-demangle`).
public enum Symbolizer {
  public struct Location: Sendable, Equatable {
    public var address: UInt64
    /// The function (demangled), or nil when unknown.
    public var function: String?
    /// `file:line`, or nil when unknown.
    public var source: String?
  }

  /// Symbolizes `addresses` in `image`; nil when `addr2line` is not installed or fails.
  /// - Parameter relativeTo: source paths under this folder are shown relative to it.
  public static func symbolize(_ addresses: [UInt64], image: String, relativeTo root: String? = nil) -> [Location]? {
    guard !addresses.isEmpty, let addr2line = HostTools.find("addr2line") else { return nil }
    let hex = addresses.map { "0x" + String($0, radix: 16) }
    guard let (status, output) = try? HostTools.run(addr2line, ["-f", "-e", image] + hex), status == 0 else {
      return nil
    }
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard lines.count >= 2 * addresses.count else { return nil }
    var functions: [String?] = [], sources: [String?] = []
    for index in addresses.indices {
      let function = lines[2 * index], source = lines[2 * index + 1]
      functions.append(function == "??" ? nil : function)
      if source.hasPrefix("??") {
        sources.append(nil)
      } else if let root, source.hasPrefix(root.hasSuffix("/") ? root : root + "/") {
        sources.append(String(source.dropFirst(root.count).drop { $0 == "/" }))
      } else {
        sources.append(source)
      }
    }
    let demangled = demangle(functions.compactMap { $0 })
    var names = demangled.makeIterator()
    return addresses.indices.map { index in
      Location(address: addresses[index], function: functions[index].map { names.next() ?? $0 }, source: sources[index])
    }
  }

  /// Demangles Swift symbols (Embedded `$e…` too); other names come back unchanged.
  static func demangle(_ names: [String]) -> [String] {
    guard !names.isEmpty, let tool = HostTools.find("swift-demangle"),
          let (status, output) = try? HostTools.run(tool, ["--simplified", "--compact"] + names), status == 0
    else { return names }
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    return lines.count >= names.count ? Array(lines.prefix(names.count)) : names
  }

  /// The symbolized backtrace of `report`, one line per frame, or nil when nothing could be resolved.
  public static func describe(_ report: CrashReport, image: String, relativeTo root: String? = nil) -> String? {
    let frames = report.backtrace
    guard let locations = symbolize(frames.map(\.address), image: image, relativeTo: root),
          locations.contains(where: { $0.function != nil }) else { return nil }
    return zip(frames, locations).map { frame, location in
      let address = "0x" + String(location.address, radix: 16)
      let name = location.function ?? "??"
      return "  #\(frame.index) \(address)  \(name)" + (location.source.map { "  " + $0 } ?? "")
    }.joined(separator: "\n")
  }
}

extension CrashReport {
  /// The `#N 0x…` frames listed after `backtrace:`.
  public var backtrace: [(index: Int, address: UInt64)] {
    var frames: [(index: Int, address: UInt64)] = []
    for line in body {
      let trimmed = line.drop { $0 == " " || $0 == "\t" }
      guard trimmed.hasPrefix("#") else { continue }
      let parts = trimmed.dropFirst().split(separator: " ", omittingEmptySubsequences: true)
      guard parts.count >= 2, let index = Int(parts[0]), parts[1].hasPrefix("0x"),
            let address = UInt64(parts[1].dropFirst(2), radix: 16) else { continue }
      frames.append((index, address))
    }
    return frames
  }
}
