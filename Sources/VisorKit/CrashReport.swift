/// The hypervisor's crash report, cut out of a console:
/// ```
/// *** SWIFTVISOR CRASH on pcpu 0: #PF page fault (vector 14)
///     error=0x...  RIP=0x...  RSP=0x...  RFLAGS=0x...
///     ...
/// *** end of crash report
/// ```
public struct CrashReport: Sendable, Equatable {
  public static let startMarker = "*** SWIFTVISOR CRASH on pcpu"
  public static let endMarker = "*** end of crash report"

  /// The line with the start marker (possibly after a log tag).
  public var header: String
  /// The lines strictly between the markers.
  public var body: [String]
  /// Whether the end marker was found.
  public var complete: Bool

  /// The pcpu number named in the header, if it parses.
  public var pcpu: Int? {
    guard let range = header.range(of: Self.startMarker) else { return nil }
    let digits = header[range.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }
    return Int(digits)
  }

  /// The leading whitespace of the first body line: every body line must start with it.
  public var indentation: Substring {
    body.first.map { $0.prefix { $0 == " " || $0 == "\t" } } ?? ""
  }

  /// Body lines that do not start with the report's indentation (output from elsewhere, mid-report).
  public var foreignLines: [String] {
    let indent = indentation
    guard !indent.isEmpty else { return body }
    return body.filter { !$0.hasPrefix(indent) }
  }

  /// The first crash report in `lines`, or nil.
  public static func first(in lines: [String]) -> CrashReport? {
    all(in: lines).first
  }

  /// Every crash report in `lines`, in order.
  public static func all(in lines: [String]) -> [CrashReport] {
    var reports: [CrashReport] = []
    var current: CrashReport?
    for line in lines {
      if line.contains(startMarker) {
        if let open = current { reports.append(open) }
        current = CrashReport(header: line, body: [], complete: false)
      } else if line.contains(endMarker), var open = current {
        open.complete = true
        reports.append(open)
        current = nil
      } else if current != nil {
        current!.body.append(line)
      }
    }
    if let open = current { reports.append(open) }
    return reports
  }
}
