// Node names and permissions as xenstored has them (tools/xenstored/core.c canonicalize,
// tools/include/xen-tools/xenstore-common.h).

/// Node names: absolute (starting with `/`), relative to the caller's home (`name` is
/// `name` below local/domain/<domid> from the root), or special (`@releaseDomain`).
public enum XenstorePath {
  /// XENSTORE_ABS_PATH_MAX: no name is longer, whoever asks.
  public static let absoluteMax = 3072
  /// XENSTORE_REL_PATH_MAX, xenstored's path-max quota: for an unprivileged caller, the part
  /// of a name after a domain's home prefix (all of it elsewhere) may not be longer.
  public static let relativeMax = 2048

  public static let root: [UInt8] = [0x2F]
  /// The root's local/domain/, under which each domain has its home.
  static let localDomain: [UInt8] = root + Array("local/domain/".utf8)
  public static let releaseDomain: [UInt8] = Array("@releaseDomain".utf8)
  public static let introduceDomain: [UInt8] = Array("@introduceDomain".utf8)

  /// "/" + "local/domain/<domid>": what XS_GET_DOMAIN_PATH answers and relative names hang from.
  public static func domainPath(_ domid: UInt32) -> [UInt8] {
    var path = localDomain
    path.append(contentsOf: decimal(domid))
    return path
  }

  /// The absolute name `name` stands for when `domid` says it, or EINVAL (xenstored's
  /// canonicalize): only valid characters; `@` names only where special nodes are allowed;
  /// relative names resolved against the caller's home; no trailing `/` except the root, no
  /// `//`; at most `absoluteMax` bytes, and for an unprivileged caller at most `relativeMax`
  /// after a domain's home prefix (`localPrefixLength`).
  public static func canonical(
    _ name: ArraySlice<UInt8>, domid: UInt32, privileged: Bool, allowSpecial: Bool
  ) throws(XenstoreError) -> [UInt8] {
    var full: [UInt8] = []
    try canonical(name, domid: domid, privileged: privileged, allowSpecial: allowSpecial, into: &full)
    return full
  }

  /// `canonical`, built in `full` (emptied first, its capacity kept): the fast read path
  /// (`XenstoreService`) makes every name in one buffer this way, without allocating.
  static func canonical(
    _ name: ArraySlice<UInt8>, domid: UInt32, privileged: Bool, allowSpecial: Bool, into full: inout [UInt8]
  ) throws(XenstoreError) {
    let home = isAbsolute(name.first) ? [] : home(of: domid)
    _ = try canonical(name, home: home, privileged: privileged, allowSpecial: allowSpecial, into: &full)
  }

  /// "/" + "local/domain/<domid>/": what a relative name is appended to.
  static func home(of domid: UInt32) -> [UInt8] {
    var home = domainPath(domid)
    home.append(UInt8(ascii: "/"))
    return home
  }

  /// `canonical` with the caller's `home` (`home(of:)`) given, so that it is not made again for
  /// every name. Returns the whole name's hash (`XenstoreKey.hash`), for its `XenstoreKey`.
  @discardableResult
  static func canonical(
    _ name: ArraySlice<UInt8>, home: [UInt8], privileged: Bool, allowSpecial: Bool,
    into full: inout [UInt8]
  ) throws(XenstoreError) -> UInt64 {
    // The longest name accepted is 3072 bytes; a longer one is refused before it is copied.
    guard name.count <= absoluteMax else { throw .EINVAL }
    let relative = !isAbsolute(name.first)
    full.removeAll(keepingCapacity: true)
    if relative { full.append(contentsOf: home) }
    full.append(contentsOf: name)
    return try check(full[...], nameStart: relative ? home.count : 0, privileged: privileged,
                     allowSpecial: allowSpecial)
  }

  /// Whether a name starting with `first` is absolute (`/`) or special (`@`), not relative.
  static func isAbsolute(_ first: UInt8?) -> Bool { first == UInt8(ascii: "/") || first == UInt8(ascii: "@") }

  /// `canonical`'s checks on a name already in place: `full` is the home prefix (its first
  /// `nameStart` bytes, none for an absolute name) followed by the name as the caller gave it.
  /// The home prefix is known to be well formed and to end in `/`, so the name's characters and
  /// slashes are all that is looked at (`charactersAreValid`); then the whole name is hashed.
  /// Returns that hash (`XenstoreKey.hash`). A name placed as relative that starts like an
  /// absolute one, or the other way round, is refused (a caller's mistake, never a name's).
  /// Every name a request carries goes through here, except a lone read's (`XenstoreServer.fastRead`).
  static func check(
    _ full: ArraySlice<UInt8>, nameStart: Int, privileged: Bool, allowSpecial: Bool
  ) throws(XenstoreError) -> UInt64 {
    guard nameStart >= 0, nameStart <= full.count, full.count <= absoluteMax else { throw .EINVAL }
    let name = full[(full.startIndex + nameStart)...]
    guard let first = name.first, let last = name.last else {
      // Nothing after the home: its `/` would end the name, which no name may.
      throw .EINVAL
    }
    let absolute = isAbsolute(first)
    guard absolute == (nameStart == 0), charactersAreValid(name) else { throw .EINVAL }
    if absolute {
      if first == UInt8(ascii: "@"), !allowSpecial { throw .EINVAL }
      if name.count > 1, last == UInt8(ascii: "/") { throw .EINVAL }
      if !privileged, name.count - localPrefixLength(name) > relativeMax { throw .EINVAL }
    } else {
      guard last != UInt8(ascii: "/") else { throw .EINVAL }
      // The part after the home prefix is `name` when the domid has at most 5 digits (as
      // every domid has: they end at DOMID_FIRST_RESERVED).
      let afterHome = nameStart <= localDomainLength + 6 ? name.count : full.count - localPrefixLength(full)
      if !privileged, afterHome > relativeMax { throw .EINVAL }
    }
    return XenstoreKey.hash(full)
  }

  /// `localDomain.count`, without the one-time initialization of `localDomain` on every check.
  static let localDomainLength = 14

  /// Whether every byte of `name` is one of xenstored's valid_chars (letters, digits and `-/_@`)
  /// and no `/` follows another.
  static func charactersAreValid(_ name: ArraySlice<UInt8>) -> Bool {
    var previous: UInt8 = 0
    for byte in name {
      guard isValidCharacter(byte), byte != UInt8(ascii: "/") || previous != UInt8(ascii: "/") else { return false }
      previous = byte
    }
    return true
  }

  /// xenstored's valid_chars. A bit per ASCII character, tested with a shift where a range test
  /// costs a compare and a branch each: `-`, `/` and the digits in the first word (bytes 0–63),
  /// `@`, the letters and `_` in the second (64–127).
  static func isValidCharacter(_ byte: UInt8) -> Bool {
    let mask: UInt64 = byte < 64 ? 0x03FF_A000_0000_0000 : 0x07FF_FFFE_87FF_FFFF
    return byte < 128 && (mask >> (UInt64(byte) & 63)) & 1 != 0
  }

  /// The length of a domain's home prefix, "/" + "local/domain/<n>/" (n of 1 to 5 digits, as xenstored's sscanf
  /// "%5u" reads it), or 0.
  static func localPrefixLength(_ name: [UInt8]) -> Int { localPrefixLength(name[...]) }

  static func localPrefixLength(_ name: ArraySlice<UInt8>) -> Int {
    let prefix = localDomain
    guard name.count > prefix.count, name.starts(with: prefix) else { return 0 }
    let base = name.startIndex
    var index = prefix.count
    while index < name.count, index - prefix.count < 5, isDigit(name[base + index]) { index += 1 }
    guard index > prefix.count, index < name.count, name[base + index] == UInt8(ascii: "/") else { return 0 }
    return index + 1
  }

  /// The parent's name: `/A` for `/A/B`, `/` for `/A` and for special names.
  static func parent(of name: [UInt8]) -> [UInt8] {
    guard let slash = name.dropFirst().lastIndex(of: UInt8(ascii: "/")) else { return root }
    return Array(name[..<slash])
  }

  /// The last component: `B` for `/A/B`.
  static func baseName(of name: [UInt8]) -> [UInt8] {
    guard let slash = name.lastIndex(of: UInt8(ascii: "/")) else { return name }
    return Array(name[(slash + 1)...])
  }

  static func child(_ name: [UInt8], of parent: [UInt8]) -> [UInt8] {
    parent == root ? root + name : parent + [UInt8(ascii: "/")] + name
  }

  /// Whether `name` is `ancestor` or below it (xenstored's is_child; everything is below `/`).
  static func isAtOrBelow(_ name: [UInt8], _ ancestor: [UInt8]) -> Bool {
    if ancestor == root { return true }
    guard name.starts(with: ancestor) else { return false }
    return name.count == ancestor.count || name[ancestor.count] == UInt8(ascii: "/")
  }

  static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

  static func decimal(_ value: UInt32) -> [UInt8] { decimal(UInt64(value)) }

  static func decimal(_ value: UInt64) -> [UInt8] {
    var digits: [UInt8] = []
    appendDecimal(value, to: &digits)
    return digits
  }

  /// Appends `value`'s decimal digits to `bytes`.
  static func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
    let start = bytes.count
    var rest = value
    repeat {
      bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10))
      rest /= 10
    } while rest > 0
    bytes[start...].reverse()
  }

  /// A decimal number of at most 10 digits that fits in 32 bits, or nil.
  static func parseDecimal(_ bytes: ArraySlice<UInt8>) -> UInt32? {
    guard !bytes.isEmpty, bytes.count <= 10 else { return nil }
    var value: UInt64 = 0
    for byte in bytes {
      guard isDigit(byte) else { return nil }
      value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
    }
    return value <= UInt64(UInt32.max) ? UInt32(value) : nil
  }
}

/// What a permission entry grants: xenstored's n, r, w and b.
public enum XenstoreAccess: UInt8, Sendable, Equatable, CaseIterable {
  case none = 0
  case read = 1
  case write = 2
  case both = 3

  public var letter: UInt8 {
    switch self {
    case .none: UInt8(ascii: "n")
    case .read: UInt8(ascii: "r")
    case .write: UInt8(ascii: "w")
    case .both: UInt8(ascii: "b")
    }
  }

  public init?(letter: UInt8) {
    switch letter {
    case UInt8(ascii: "n"): self = .none
    case UInt8(ascii: "r"): self = .read
    case UInt8(ascii: "w"): self = .write
    case UInt8(ascii: "b"): self = .both
    default: return nil
    }
  }

  public var canRead: Bool { self == .read || self == .both }
  public var canWrite: Bool { self == .write || self == .both }
}

/// A node's permissions: the first entry names the owner and what every domain not listed
/// later may do; each later entry gives one domain its access. The owner and privileged
/// callers may always read and write, and only they may change the permissions.
public struct XenstorePermissions: Sendable, Equatable {
  public struct Entry: Sendable, Equatable {
    public var domid: UInt32
    public var access: XenstoreAccess

    public init(_ access: XenstoreAccess, _ domid: UInt32) {
      self.domid = domid
      self.access = access
    }
  }

  /// Never empty.
  public private(set) var entries: [Entry]

  public init(owner: UInt32, others: XenstoreAccess, _ more: [Entry] = []) {
    entries = [Entry(others, owner)] + more
  }

  public var owner: UInt32 { entries[0].domid }

  /// xenstored's perm_for_conn without the owner bit: the first later entry for `domid`
  /// decides, else the first entry's default.
  @inline(__always) public func access(for domid: UInt32, privileged: Bool) -> XenstoreAccess {
    if privileged || domid == owner { return .both }
    for entry in entries.dropFirst() where entry.domid == domid { return entry.access }
    return entries[0].access
  }

  public func isOwned(by domid: UInt32, privileged: Bool) -> Bool { privileged || domid == owner }

  /// The same permissions with `domid` as owner (what a node created by `domid` gets).
  func ownedBy(_ domid: UInt32) -> XenstorePermissions {
    var copy = self
    copy.entries[0].domid = domid
    return copy
  }

  /// Without the later entries naming `domid` (a domain that is gone).
  func dropping(_ domid: UInt32) -> XenstorePermissions {
    var copy = self
    copy.entries = [entries[0]] + entries.dropFirst().filter { $0.domid != domid }
    return copy
  }

  /// The XS_GET_PERMS payload: "b0\0r3\0".
  public var wireForm: [UInt8] {
    var bytes: [UInt8] = []
    for entry in entries {
      bytes.append(entry.access.letter)
      bytes.append(contentsOf: XenstorePath.decimal(entry.domid))
      bytes.append(0)
    }
    return bytes
  }

  /// Parses XS_SET_PERMS strings, each a letter and a decimal domain id; at least one.
  public init(strings: [ArraySlice<UInt8>]) throws(XenstoreError) {
    guard !strings.isEmpty else { throw .EINVAL }
    var parsed: [Entry] = []
    for string in strings {
      guard let letter = string.first, let access = XenstoreAccess(letter: letter),
        let domid = XenstorePath.parseDecimal(string.dropFirst())
      else { throw .EINVAL }
      parsed.append(Entry(access, domid))
    }
    entries = parsed
  }

  /// Bytes in xenstored's node accounting: each entry is a struct xs_permissions of 8 bytes.
  var accountedSize: Int { entries.count * 8 }
}
