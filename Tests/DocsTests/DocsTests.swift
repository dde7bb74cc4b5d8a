import Foundation
import Testing

// docs/ is checked against the code, so that a renamed type, a moved file or a dead link fails a
// test instead of misleading the next reader.
//
// What is checked, in every docs/*.md page:
// - every backticked source path (`X86/Domain/Exits.swift`, `Sources/Support/vmrun.S`,
//   `Hypervisor/Scheduler/`) names a file or folder of the repository;
// - every backticked Swift name: an UpperCamelCase type (`SchedulerPolicy`), or a type and its
//   members (`RunLoop.leave`, `VMCB.Control.tlbControl`, `Events.upcallVector(for:)`). The type
//   must be declared in Sources/ or Tests/, and each member declared in that type's body, its
//   extensions, or a protocol it conforms to;
// - every project C or assembly symbol (`hv_…`, `gs_…`, `guest_…`, `HV_…`, `GS_…`, `GC_…`),
//   backticked or in a code block;
// - in code blocks (pictures, pseudo code), the `Type.member` names and source paths.
// Backticked text that does not look like a Swift name (shell commands, `memory = 32`,
// `EVTCHNOP_send`, `struct xencons_interface`, numbers, flags) is left alone.
//
// In docs/*.md, README.md and SUPPORT.md: every relative link resolves to a file of the
// repository and none leaves it, and every *.md or *.swift file named in the text exists. In
// those pages and in Sources/, nothing names a place outside the repository, and a file a code
// comment points to exists.

/// Backticked names that are not in the repository's code, each with the reason it may stay.
/// Prefer rephrasing a page to adding an entry here.
let allowlist: [String: String] = {
  var names: [String: String] = [:]
  // architecture.md and test-guests.md say which parts of Swift the image may use.
  let swift = "Swift's own (standard library, Synchronization): named where the Embedded Swift rules are"
  for name in ["Any", "Atomic", "Codable", "Dictionary", "Mirror", "Mutex", "Set", "StaticString", "String"] {
    names[name] = swift
  }
  return names
}()

// MARK: - The repository

/// Tests/DocsTests/DocsTests.swift → the package root.
let repositoryRoot = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct Repository {
  /// Every file and folder, relative to the root ("Sources/X86/Domain/Exits.swift"), without
  /// hidden folders (.build, .git) and without the download cache.
  let files: [String]
  let folders: [String]

  static let shared = Repository()

  init() {
    var files: [String] = []
    var folders: [String] = []
    let manager = FileManager.default
    let rootPath = repositoryRoot.standardizedFileURL.path
    if let walker = manager.enumerator(at: repositoryRoot, includingPropertiesForKeys: [.isDirectoryKey],
                                       options: [.skipsHiddenFiles]) {
      for case let url as URL in walker {
        let path = url.standardizedFileURL.path
        guard path.hasPrefix(rootPath + "/") else { continue }
        let relative = String(path.dropFirst(rootPath.count + 1))
        if relative == "cache" || relative.hasPrefix("cache/") {
          walker.skipDescendants()
          continue
        }
        let isFolder = (try? url.resourceValues(forKeys: [.isDirectoryKey]))?.isDirectory ?? false
        if isFolder { folders.append(relative) } else { files.append(relative) }
      }
    }
    self.files = files.sorted()
    self.folders = folders.sorted()
  }

  /// True if some file (or, with `folder`, some folder) is `path` or ends with "/" + `path`.
  func resolves(_ path: String, folder: Bool = false) -> Bool {
    var wanted = path
    while wanted.hasPrefix("./") { wanted.removeFirst(2) }
    while wanted.hasSuffix("/") { wanted.removeLast() }
    guard !wanted.isEmpty else { return false }
    let candidates = folder ? folders : files
    return candidates.contains { $0 == wanted || $0.hasSuffix("/" + wanted) }
  }

  func text(_ relative: String) -> String {
    (try? String(contentsOf: repositoryRoot.appendingPathComponent(relative), encoding: .utf8)) ?? ""
  }

  var docPages: [String] { files.filter { $0.hasPrefix("docs/") && $0.hasSuffix(".md") && !$0.dropFirst(5).contains("/") } }
  var sourceFiles: [String] { files.filter { $0.hasPrefix("Sources/") } }
}

// MARK: - The code: declared types and their members

/// Every type, extension and member declared in the Swift code of Sources/ and Tests/, found by
/// reading the source text (comments and string literals removed first).
struct CodeIndex {
  struct TypeDeclaration {
    var file: Int
    /// The body, as offsets into the stripped text; nil for a typealias.
    var body: Range<Int>?
    /// The type whose body holds this declaration (or `A` for `extension A.B`).
    var parent: String?
    /// Names after the `:` of the declaration: conformances and superclasses.
    var inherits: [String]
  }

  var types: [String: [TypeDeclaration]] = [:]
  /// Member declarations (func, var, let, case, init, subscript, typealias), per file.
  var members: [[(name: String, offset: Int)]] = []
  var allMembers: Set<String> = []
  /// Target (module) names from Package.swift.
  var modules: Set<String> = []
  /// The text of every source file, C and assembly included, for symbol look-ups.
  var symbolText = ""

  static let shared = CodeIndex(Repository.shared)

  init(_ repository: Repository) {
    let swiftFiles = repository.files.filter {
      ($0.hasPrefix("Sources/") || $0.hasPrefix("Tests/")) && $0.hasSuffix(".swift") && !$0.hasPrefix("Tests/DocsTests/")
    }
    for (index, path) in swiftFiles.enumerated() {
      let stripped = Self.stripCommentsAndStrings(Array(repository.text(path).utf8))
      indexTypes(stripped, file: index)
      let found = Self.memberDeclarations(stripped)
      members.append(found)
      for member in found { allMembers.insert(member.name) }
    }
    let manifest = repository.text("Package.swift")
    for match in Self.matches(#"\.(?:target|executableTarget|testTarget)\(\s*name:\s*"([A-Za-z0-9_]+)""#, in: manifest) {
      modules.insert(match[1])
    }
    symbolText = repository.sourceFiles.map { repository.text($0) }.joined(separator: "\n")
  }

  // MARK: Reading Swift

  static let keywords: Set<String> = ["func", "var", "let", "init", "case", "static", "class", "final", "public", "private"]

  mutating func indexTypes(_ text: [UInt8], file: Int) {
    let string = String(decoding: text, as: UTF8.self)
    let pattern = #"\b(struct|enum|class|protocol|actor|extension|typealias|associatedtype)\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"#
    var found: [(name: String, qualifier: String?, keyword: String, start: Int, end: Int)] = []
    for match in Self.matchRanges(pattern, in: string) {
      let keyword = match.groups[1], dotted = match.groups[2]
      let parts = dotted.split(separator: ".").map(String.init)
      guard let name = parts.last, !Self.keywords.contains(name) else { continue }
      found.append((name, parts.count > 1 ? parts[parts.count - 2] : nil, keyword, match.start, match.end))
    }
    // Bodies first, so that each declaration can find the body it sits in.
    var bodies: [(name: String, body: Range<Int>)] = []
    var declarations: [(name: String, qualifier: String?, start: Int, body: Range<Int>?, inherits: [String])] = []
    for entry in found {
      var body: Range<Int>?
      var inherits: [String] = []
      if entry.keyword != "typealias" && entry.keyword != "associatedtype" {
        var i = entry.end
        while i < text.count && text[i] != UInt8(ascii: "{") && text[i] != UInt8(ascii: "}") { i += 1 }
        if i < text.count && text[i] == UInt8(ascii: "{") {
          let header = String(decoding: text[entry.end..<i], as: UTF8.self)
          inherits = Self.matches(#"[A-Z][A-Za-z0-9_]*"#, in: header).map { $0[0] }
          var depth = 0
          var j = i
          while j < text.count {
            if text[j] == UInt8(ascii: "{") { depth += 1 }
            if text[j] == UInt8(ascii: "}") {
              depth -= 1
              if depth == 0 { break }
            }
            j += 1
          }
          body = (i + 1)..<j
          bodies.append((entry.name, (i + 1)..<j))
        }
      }
      declarations.append((entry.name, entry.qualifier, entry.start, body, inherits))
    }
    for declaration in declarations {
      // The innermost body around the declaration.
      let around = bodies.filter { $0.body.contains(declaration.start) }.min { $0.body.count < $1.body.count }
      let parent = declaration.qualifier ?? around?.name
      types[declaration.name, default: []].append(
        TypeDeclaration(file: file, body: declaration.body, parent: parent, inherits: declaration.inherits))
    }
  }

  static func memberDeclarations(_ text: [UInt8]) -> [(name: String, offset: Int)] {
    let string = String(decoding: text, as: UTF8.self)
    var found: [(name: String, offset: Int)] = []
    for match in matchRanges(#"\b(func|var|let|typealias|associatedtype)\s+([A-Za-z_][A-Za-z0-9_]*)"#, in: string) {
      found.append((match.groups[2], match.start))
    }
    for match in matchRanges(#"\b(init|subscript)\s*[?!]?\s*[(<]"#, in: string) {
      found.append((match.groups[1], match.start))
    }
    // `case a, b = 2, c(x: Int)`: every element of the list.
    for match in matchRanges(#"\bcase\s+([^\n:]*)"#, in: string) {
      var depth = 0
      var element = ""
      for character in match.groups[1] + "," {
        switch character {
        case "(", "[": depth += 1; element.append(character)
        case ")", "]": depth -= 1; element.append(character)
        case "," where depth == 0:
          if let name = matches(#"^\s*([A-Za-z_][A-Za-z0-9_]*)"#, in: element).first?[1] {
            found.append((name, match.start))
          }
          element = ""
        default: element.append(character)
        }
      }
    }
    return found
  }

  /// Replaces comments and the contents of string literals with spaces (newlines kept), so
  /// that nothing in them is read as a declaration or a brace. Interpolations stay code.
  static func stripCommentsAndStrings(_ s: [UInt8]) -> [UInt8] {
    enum Context {
      /// Code; `parentheses` counts open ones inside a string interpolation (-1: not one).
      case code(parentheses: Int)
      case string(multiline: Bool, hashes: Int)
    }
    let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*"), quote = UInt8(ascii: "\""), hash = UInt8(ascii: "#")
    let backslash = UInt8(ascii: "\\"), open = UInt8(ascii: "("), close = UInt8(ascii: ")"), newline = UInt8(ascii: "\n")
    var out = s
    var stack: [Context] = [.code(parentheses: -1)]
    var i = 0
    func blank(_ range: Range<Int>) {
      for j in range where j < out.count && out[j] != newline { out[j] = UInt8(ascii: " ") }
    }
    func at(_ j: Int) -> UInt8 { j < s.count ? s[j] : 0 }
    while i < s.count {
      switch stack[stack.count - 1] {
      case .code(let parentheses):
        let c = s[i]
        if c == slash && at(i + 1) == slash {
          var j = i
          while j < s.count && s[j] != newline { j += 1 }
          blank(i..<j)
          i = j
          continue
        }
        if c == slash && at(i + 1) == star {
          var depth = 0
          var j = i
          repeat {
            if at(j) == slash && at(j + 1) == star { depth += 1; j += 2; continue }
            if at(j) == star && at(j + 1) == slash { depth -= 1; j += 2; continue }
            j += 1
          } while depth > 0 && j < s.count
          blank(i..<j)
          i = j
          continue
        }
        var hashes = 0
        while at(i + hashes) == hash { hashes += 1 }
        if at(i + hashes) == quote {
          let multiline = at(i + hashes + 1) == quote && at(i + hashes + 2) == quote
          let length = hashes + (multiline ? 3 : 1)
          blank(i..<(i + length))
          stack.append(.string(multiline: multiline, hashes: hashes))
          i += length
          continue
        }
        if parentheses >= 0 {
          if c == open { stack[stack.count - 1] = .code(parentheses: parentheses + 1) }
          if c == close {
            if parentheses == 0 {
              stack.removeLast()
              blank(i..<(i + 1))
              i += 1
              continue
            }
            stack[stack.count - 1] = .code(parentheses: parentheses - 1)
          }
        }
        i += 1
      case .string(let multiline, let hashes):
        let c = s[i]
        if c == backslash {
          var j = i + 1
          var seen = 0
          while seen < hashes && at(j) == hash { seen += 1; j += 1 }
          if seen == hashes {
            if at(j) == open {
              blank(i..<(j + 1))
              stack.append(.code(parentheses: 0))
              i = j + 1
              continue
            }
            blank(i..<(j + 1))
            i = j + 1
            continue
          }
        }
        if c == quote {
          let quotes = multiline ? 3 : 1
          var closing = true
          for k in 0..<quotes where at(i + k) != quote { closing = false }
          for k in 0..<hashes where at(i + quotes + k) != hash { closing = false }
          if closing {
            blank(i..<(i + quotes + hashes))
            stack.removeLast()
            i += quotes + hashes
            continue
          }
        }
        if c == newline && !multiline {
          stack.removeLast()     // an unterminated literal: give up on it at the line's end
          i += 1
          continue
        }
        blank(i..<(i + 1))
        i += 1
      }
    }
    return out
  }

  // MARK: Questions

  func isType(_ name: String) -> Bool { types[name] != nil }

  /// True if `child` is declared inside a body of `parent` (or as `extension parent.child`).
  func isNested(_ child: String, in parent: String) -> Bool {
    types[child]?.contains { $0.parent == parent } ?? false
  }

  /// The members declared in the bodies of `type` (its extensions included), and, failing that,
  /// in the types it conforms to or inherits from.
  func hasMember(_ member: String, in type: String) -> Bool {
    var seen: Set<String> = []
    var pending = [type]
    while let next = pending.popLast() {
      guard seen.insert(next).inserted, let declarations = types[next] else { continue }
      for declaration in declarations {
        if let body = declaration.body,
           members[declaration.file].contains(where: { $0.name == member && body.contains($0.offset) }) {
          return true
        }
        pending += declaration.inherits
      }
    }
    return false
  }

  func hasSymbol(_ symbol: String) -> Bool {
    !Self.matches(#"(?<![A-Za-z0-9_])"# + NSRegularExpression.escapedPattern(for: symbol) + #"(?![A-Za-z0-9_])"#, in: symbolText).isEmpty
  }

  // MARK: Regular expressions

  static func matches(_ pattern: String, in text: String) -> [[String]] {
    matchRanges(pattern, in: text).map(\.groups)
  }

  static func matchRanges(_ pattern: String, in text: String) -> [(groups: [String], start: Int, end: Int)] {
    guard let expression = try? NSRegularExpression(pattern: pattern) else {
      Issue.record("bad pattern \(pattern)")
      return []
    }
    let nsText = text as NSString
    return expression.matches(in: text, range: NSRange(location: 0, length: nsText.length)).map { match in
      let groups = (0..<match.numberOfRanges).map { index -> String in
        let range = match.range(at: index)
        return range.location == NSNotFound ? "" : nsText.substring(with: range)
      }
      return (groups, match.range.location, match.range.location + match.range.length)
    }
  }
}

// MARK: - The pages

/// A name a page mentions: where, and what.
struct Mention {
  var page: String
  var line: Int
  var text: String
  /// From a fenced code block rather than a backticked span.
  var inCodeBlock: Bool
}

struct Page {
  let path: String
  let text: String

  init(_ path: String) {
    self.path = path
    text = Repository.shared.text(path)
  }

  /// The page's lines, with the lines of fenced code blocks in `fenced` and blanked in `prose`.
  var split: (prose: [String], fenced: [(line: Int, text: String)]) {
    var prose: [String] = []
    var fenced: [(line: Int, text: String)] = []
    var inFence = false
    for (index, line) in text.components(separatedBy: "\n").enumerated() {
      if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
        inFence.toggle()
        prose.append("")
        continue
      }
      if inFence {
        fenced.append((index + 1, line))
        prose.append("")
      } else {
        prose.append(line)
      }
    }
    return (prose, fenced)
  }

  /// Every backticked span outside code blocks (a span may continue onto the next line).
  var spans: [Mention] {
    let prose = split.prose.joined(separator: "\n")
    let characters = Array(prose)
    var found: [Mention] = []
    var line = 1
    var i = 0
    while i < characters.count {
      if characters[i] == "\n" { line += 1; i += 1; continue }
      guard characters[i] == "`" else { i += 1; continue }
      var ticks = 0
      while i + ticks < characters.count && characters[i + ticks] == "`" { ticks += 1 }
      // The closing run of exactly as many backticks.
      var j = i + ticks
      var end: Int?
      while j < characters.count {
        if characters[j] == "`" {
          var run = 0
          while j + run < characters.count && characters[j + run] == "`" { run += 1 }
          if run == ticks { end = j; break }
          j += run
        } else {
          j += 1
        }
      }
      guard let end else { i += ticks; continue }
      let content = String(characters[(i + ticks)..<end]).replacingOccurrences(of: "\n", with: " ")
        .trimmingCharacters(in: .whitespaces)
      found.append(Mention(page: path, line: line, text: content, inCodeBlock: false))
      line += characters[i..<end].filter { $0 == "\n" }.count
      i = end + ticks
    }
    return found
  }

  /// The page's text outside backticks and code blocks, line by line.
  var plainLines: [(line: Int, text: String)] {
    split.prose.enumerated().map { index, line in
      var plain = ""
      var inSpan = false
      for character in line {
        if character == "`" { inSpan.toggle(); plain.append(" "); continue }
        plain.append(inSpan ? " " : character)
      }
      return (index + 1, plain)
    }
  }
}

// MARK: - The checker

struct Checker {
  let repository = Repository.shared
  let code = CodeIndex.shared
  var problems: [String] = []
  var checked = 0

  static let sourceExtensions = ["swift", "S", "c", "h", "ld", "json", "md"]
  /// Members every Swift type has without declaring them.
  static let implicitMembers: Set<String> = ["self", "init", "rawValue", "allCases", "Type"]

  mutating func problem(_ mention: Mention, _ what: String) {
    let name = mention.text
    if allowlist[name] != nil { return }
    problems.append("\(mention.page):\(mention.line): `\(name)`: \(what)")
  }

  var topLevelFolders: Set<String> {
    Set(repository.folders.filter { !$0.contains("/") })
      .union(repository.folders.filter { $0.hasPrefix("Sources/") || $0.hasPrefix("Tests/") }
        .map { String($0.split(separator: "/")[1]) })
  }

  /// A backticked span: a path, a Swift name, or something else (left alone).
  mutating func checkSpan(_ mention: Mention) {
    let text = mention.text
    checkSymbols(mention)
    guard !text.isEmpty, !text.contains(" "), !text.contains("*"), !text.contains("…"), !text.contains("<") else { return }
    if isPathLike(text) {
      checkPath(mention)
      return
    }
    guard let chain = Self.nameChain(text) else { return }
    checkChain(chain, mention)
  }

  func isPathLike(_ text: String) -> Bool {
    if text.contains("/") { return !text.contains("(") && !text.contains("=") }
    guard let dot = text.lastIndex(of: ".") else { return false }
    return Self.sourceExtensions.contains(String(text[text.index(after: dot)...]))
      && text.first.map { $0.isLetter || $0.isNumber || $0 == "_" } == true
  }

  mutating func checkPath(_ mention: Mention) {
    var path = mention.text
    while path.hasPrefix("./") { path.removeFirst(2) }
    let last = path.split(separator: "/").last.map(String.init) ?? path
    let isFile = last.contains(".") && Self.sourceExtensions.contains(String(last.split(separator: ".").last ?? ""))
    if isFile {
      checked += 1
      if !repository.resolves(path) { problem(mention, "no such file in the repository") }
      return
    }
    // A folder, or a file without a source extension: checked when it starts in the repository.
    guard let first = path.split(separator: "/").first.map(String.init), topLevelFolders.contains(first) else { return }
    checked += 1
    if !repository.resolves(path, folder: true) && !repository.resolves(path) {
      problem(mention, "no such file or folder in the repository")
    }
  }

  /// `Type.member(args)` → ["Type", "member"]; nil when the text is not an identifier chain.
  static func nameChain(_ text: String) -> [String]? {
    var body = Substring(text)
    // One trailing call, subscript or argument-label list: `f(x:)`, `all[i]`, `g()`.
    if let last = body.last, last == ")" || last == "]" {
      let opening: Character = last == ")" ? "(" : "["
      var depth = 0
      var index = body.endIndex
      while index > body.startIndex {
        index = body.index(before: index)
        if body[index] == last { depth += 1 }
        if body[index] == opening {
          depth -= 1
          if depth == 0 { break }
        }
      }
      guard depth == 0 else { return nil }
      body = body[..<index]
    }
    while let last = body.last, last == "?" || last == "!" { body.removeLast() }
    let parts = body.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard !parts.isEmpty, parts.allSatisfy(isIdentifier) else { return nil }
    return parts
  }

  static func isIdentifier(_ text: String) -> Bool {
    guard let first = text.first, first.isASCII, first.isLetter || first == "_" else { return false }
    return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
  }

  static func isUpperCamel(_ text: String) -> Bool {
    guard let first = text.first, first.isUppercase, !text.contains("_") else { return false }
    return text.contains { $0.isLowercase }
  }

  mutating func checkChain(_ chain: [String], _ mention: Mention) {
    let head = chain[0]
    guard let first = head.first, first.isUppercase, !head.contains("_") else { return }
    var context: String
    var index = 1
    if code.isType(head) {
      context = head
    } else if code.modules.contains(head) {
      guard chain.count > 1 else { checked += 1; return }
      context = chain[1]
      checked += 1
      guard code.isType(context) else {
        problem(mention, "no type \(context) is declared in Sources/ or Tests/")
        return
      }
      index = 2
    } else {
      // An all-capitals word that is no Swift type (`RFLAGS.IF`, `GS.base`) is a register or a
      // constant, not a code name; an UpperCamel one must be a type.
      guard Self.isUpperCamel(head) else { return }
      checked += 1
      if allowlist[head] != nil { return }
      problem(mention, chain.count == 1 && !mention.inCodeBlock
        ? "no type \(head) is declared in Sources/ or Tests/"
        : "no type \(head) is declared in Sources/ or Tests/ (for \(chain.joined(separator: ".")))")
      return
    }
    checked += 1
    while index < chain.count {
      let part = chain[index]
      checked += 1
      if let first = part.first, first.isUppercase, code.isNested(part, in: context) {
        context = part
        index += 1
        continue
      }
      if Self.implicitMembers.contains(part) || code.hasMember(part, in: context) { return }
      problem(mention, "\(context) declares no member or nested type \(part)")
      return
    }
  }

  /// Project C and assembly symbols (`hv_vmrun`, `gs_start32`) must exist in Sources/.
  mutating func checkSymbols(_ mention: Mention) {
    for match in CodeIndex.matches(#"(?<![A-Za-z0-9_])((?:hv|gs|guest|GS|GC|HV)_[A-Za-z0-9_]+)"#, in: mention.text) {
      let symbol = match[1]
      checked += 1
      if !code.hasSymbol(symbol) && allowlist[symbol] == nil {
        problems.append("\(mention.page):\(mention.line): `\(symbol)`: no such symbol in Sources/")
      }
    }
  }

  /// A fenced code block line: only `Type.member` chains, source paths and project symbols.
  mutating func checkCodeBlockLine(_ mention: Mention) {
    checkSymbols(mention)
    for match in CodeIndex.matches(#"(?<![A-Za-z0-9_./-])([A-Za-z0-9_][A-Za-z0-9_./+-]*\.(?:swift|S|c|h|ld|json))(?![A-Za-z0-9_])"#, in: mention.text) {
      var path = mention
      path.text = match[1]
      checkPath(path)
    }
    for match in CodeIndex.matches(#"(?<![A-Za-z0-9_.])([A-Z][A-Za-z0-9]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)"#, in: mention.text) {
      let text = match[1]
      if isPathLike(text) { continue }
      var chain = mention
      chain.text = text
      checkChain(text.split(separator: ".").map(String.init), chain)
    }
  }

  /// Plain text (outside backticks): every *.md and *.swift file named must exist.
  mutating func checkFileMentions(page: String, line: Int, text: String) {
    for match in CodeIndex.matches(#"(?<![A-Za-z0-9_./-])([A-Za-z0-9_][A-Za-z0-9_./-]*\.(?:md|swift))(?![A-Za-z0-9_])"#, in: text) {
      let path = match[1]
      checked += 1
      if !repository.resolves(path) {
        problems.append("\(page):\(line): \(path): no such file in the repository")
      }
    }
  }

  /// Guest and host system paths a page may name (a guest's /dev/hvc0, /proc/cpuinfo, /init).
  /// Paths every reader has (a guest's or a Linux machine's), and xenstore's names (`/local/domain/…`, `/vm/…`).
  static let systemPaths = ["/dev/", "/proc/", "/sys/", "/init", "/bin/", "/sbin/", "/usr/", "/etc/", "/boot/", "/lib/", "/local/domain/", "/vm/",
                            "/images/",   // where a driver domain's initramfs carries disk images (docs/pv-devices.md)
                            "/mnt/"]      // where a guest mounts its PV disk

  /// A relative path that climbs out of the repository, or an absolute path on the machine
  /// that is not a system path, points at something a reader of the repository does not have.
  mutating func checkOutsidePaths(page: String, line: Int, text: String, relative: Bool = true) {
    let root = repositoryRoot.standardizedFileURL.path
    let base = repositoryRoot.appendingPathComponent(page).deletingLastPathComponent()
    for match in CodeIndex.matches(#"(?<![A-Za-z0-9_.])((?:\.\./)+[A-Za-z0-9_.-][A-Za-z0-9_./-]*)"#, in: text) where relative {
      checked += 1
      let resolved = base.appendingPathComponent(match[1]).standardizedFileURL.path
      if !resolved.hasPrefix(root + "/") {
        problems.append("\(page):\(line): \(match[1]) is outside the repository")
      }
    }
    for match in CodeIndex.matches(#"(?<![A-Za-z0-9_.~/-])(/[a-z][A-Za-z0-9_.-]*/[A-Za-z0-9_./-]*)"#, in: text) {
      let path = match[1]
      checked += 1
      if !Self.systemPaths.contains(where: { path.hasPrefix($0) }) {
        problems.append("\(page):\(line): \(path) is a path on one machine, outside the repository")
      }
    }
  }

  /// Relative links must resolve to a file inside the repository.
  mutating func checkLinks(page: String, line: Int, text: String) {
    for match in CodeIndex.matches(#"\]\(([^)\s]+)\)"#, in: text) {
      var target = match[1]
      if target.contains("://") || target.hasPrefix("mailto:") || target.hasPrefix("#") { continue }
      if let hash = target.firstIndex(of: "#") { target = String(target[..<hash]) }
      checked += 1
      let base = repositoryRoot.appendingPathComponent(page).deletingLastPathComponent()
      let resolved = base.appendingPathComponent(target).standardizedFileURL.path
      let root = repositoryRoot.standardizedFileURL.path
      guard resolved.hasPrefix(root + "/") else {
        problems.append("\(page):\(line): link \(match[1]) leaves the repository")
        continue
      }
      if !FileManager.default.fileExists(atPath: resolved) {
        problems.append("\(page):\(line): link \(match[1]) names no file of the repository")
      }
    }
  }
}

// MARK: - Tests

@Suite("docs/ against the code")
struct DocsTests {
  @Test("Every backticked code name and source path in docs/ exists")
  func codeNamesExist() {
    var checker = Checker()
    let pages = checker.repository.docPages
    #expect(pages.count >= 10, "docs/ pages found: \(pages) (root \(repositoryRoot.path))")
    for path in pages {
      let page = Page(path)
      for span in page.spans { checker.checkSpan(span) }
      for (line, text) in page.split.fenced {
        checker.checkCodeBlockLine(Mention(page: path, line: line, text: text, inCodeBlock: true))
      }
    }
    print("DocsTests: \(checker.checked) code names and paths checked in \(pages.count) pages")
    // A checker that finds nothing to check is broken, not passing.
    #expect(checker.checked > 500, "only \(checker.checked) names checked")
    for problem in checker.problems { Issue.record(Comment(rawValue: problem)) }
  }

  @Test("Links and file mentions in docs/, README.md and SUPPORT.md stay inside the repository")
  func linksResolve() {
    var checker = Checker()
    let pages = checker.repository.docPages + ["README.md", "SUPPORT.md"]
    for path in pages {
      let page = Page(path)
      for (line, text) in page.plainLines {
        checker.checkLinks(page: path, line: line, text: text)
        checker.checkFileMentions(page: path, line: line, text: text)
      }
    }
    print("DocsTests: \(checker.checked) links and file mentions checked")
    #expect(checker.checked > 50, "only \(checker.checked) links checked")
    for problem in checker.problems { Issue.record(Comment(rawValue: problem)) }
  }

  @Test("Nothing in docs/, README.md, SUPPORT.md or Sources/ points outside the repository")
  func nothingPointsOutside() {
    var checker = Checker()
    let repository = checker.repository
    let files = repository.docPages + ["README.md", "SUPPORT.md"] + repository.sourceFiles
    for path in files {
      // A code block in a page may show a file that lives elsewhere (a domain configuration's
      // `kernel = "../…"` is relative to its own folder): only machine paths count there.
      let fenced = path.hasSuffix(".md") ? Set(Page(path).split.fenced.map(\.line)) : []
      for (index, line) in repository.text(path).components(separatedBy: "\n").enumerated() {
        checker.checkOutsidePaths(page: path, line: index + 1, text: line, relative: !fenced.contains(index + 1))
        // In code, only comments: a file a comment points a reader to must exist.
        if path.hasPrefix("Sources/"), let comment = line.range(of: "//") {
          checker.checkFileMentions(page: path, line: index + 1, text: String(line[comment.upperBound...]))
        }
      }
    }
    for problem in checker.problems { Issue.record(Comment(rawValue: problem)) }
  }

  @Test("The checker reads names as intended")
  func checkerRules() {
    #expect(Checker.nameChain("Events.upcallVector(for:)") == ["Events", "upcallVector"])
    #expect(Checker.nameChain("PCPUs.all[index]") == ["PCPUs", "all"])
    #expect(Checker.nameChain("memory = 32") == nil)
    #expect(Checker.nameChain("Ctrl-A") == nil)
    let code = CodeIndex.shared
    #expect(code.isType("RunLoop") && code.hasMember("leave", in: "RunLoop"))
    #expect(code.isType("Scheduler") && !code.hasMember("wake", in: "Scheduler"))
    #expect(code.hasMember("wake", in: "SchedulerPolicy") && code.hasMember("wake", in: "CreditScheduler"))
    #expect(code.isNested("Control", in: "VMCB"))
    #expect(code.hasMember("down", in: "HypercallOutcome"))
    #expect(code.hasSymbol("hv_vmrun") && !code.hasSymbol("hv_no_such_symbol"))
    var checker = Checker()
    for (text, fails) in [("Scheduler.wake", true), ("Scheduler.kickPCPU", false), ("NoSuchType", true),
                          ("X86/Domain/Exits.swift", false), ("X86/Domain/Gone.swift", true), ("RFLAGS.IF", false),
                          ("XenABI.Hypercall", false), ("EVTCHNOP_send", false), ("struct xencons_interface", false)] {
      let before = checker.problems.count
      checker.checkSpan(Mention(page: "test", line: 1, text: text, inCodeBlock: false))
      #expect((checker.problems.count > before) == fails, "\(text)")
    }
    for (text, fails) in [("see ../../elsewhere/notes.md", true), ("in /elsewhere/design/notes.md", true),
                          ("../SUPPORT.md", false), ("/dev/hvc0 and /proc/cpuinfo", false)] {
      let before = checker.problems.count
      checker.checkOutsidePaths(page: "docs/test.md", line: 1, text: text)
      #expect((checker.problems.count > before) == fails, "\(text)")
    }
  }
}
