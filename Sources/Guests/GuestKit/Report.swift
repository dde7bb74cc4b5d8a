#if os(none)
/// The result lines of a guest that runs several checks: one line each,
/// "<guest>: <check> ok[ <detail>]" or "<guest>: <check> FAIL (<detail>)", then
/// "<guest>: <n> checks failed" if any did, and "<guest>: done" last.
public struct Report {
  public let guest: StaticString
  public private(set) var failures = 0

  public init(_ guest: StaticString) { self.guest = guest }

  /// A line "<guest>: <text>".
  public func line(_ text: String) {
    Console.print("\(guest): \(text)")
  }

  public func pass(_ check: StaticString, _ detail: String = "") {
    line(detail.isEmpty ? "\(check) ok" : "\(check) ok \(detail)")
  }

  public mutating func fail(_ check: StaticString, _ detail: String) {
    failures += 1
    line("\(check) FAIL (\(detail))")
  }

  /// `pass` if `ok`, else `fail` with `detail`.
  @discardableResult
  public mutating func check(_ check: StaticString, _ ok: Bool, ok detail: String = "", fail reason: String) -> Bool {
    if ok { pass(check, detail) } else { fail(check, reason) }
    return ok
  }

  /// One hypercall result that must be `want`.
  @discardableResult
  public mutating func expect(_ check: StaticString, _ got: Int64, want: Int64) -> Bool {
    self.check(check, got == want, fail: "got \(got), want \(want)")
  }

  /// The closing lines; powers off either way (the lines say what failed).
  public func finish() -> Never {
    if failures > 0 { line("\(failures) checks failed") }
    line("done")
    Xen.shutdown(.poweroff)
  }

  /// A failure that leaves nothing to test: the line, then shutdown with reason crash.
  public func abort(_ why: String) -> Never {
    line("FAIL: \(why)")
    Xen.shutdown(.crash)
  }
}
#endif
