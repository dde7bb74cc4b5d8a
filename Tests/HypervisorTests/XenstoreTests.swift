import Testing

@testable import Hypervisor

/// Bytes of an ASCII string, for names and values.
func xs(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Strings with a NUL after each: a request payload.
func xsPayload(_ strings: String...) -> [UInt8] { strings.flatMap { xs($0) + [0] } }

/// A server where the toolstack has made /local/domain/1, 2 and 3, each owned by its domain and
/// closed to others, as libxl makes a domain's home.
func xsServer(limits: XenstoreLimits = .xenDefaults) -> XenstoreServer {
  var server = XenstoreServer(limits: limits)
  for domid in UInt32(1)...3 {
    let home = XenstorePath.domainPath(domid)
    _ = server.request(.mkdir, home + [0], from: .toolstack)
    server.handleOK(.setPerms, xs(String(decoding: home, as: UTF8.self)) + [0] + xsPayload("n\(domid)"), from: .toolstack)
  }
  return server
}

extension XenstoreServer {
  /// Sends one request and returns the reply.
  mutating func request(
    _ op: XenstoreOp, _ payload: [UInt8], from caller: XenstoreCaller, transaction: UInt32 = 0, requestID: UInt32 = 7
  ) -> XenstoreMessage {
    handle(XenstoreMessage(op: op, requestID: requestID, transactionID: transaction, payload: payload), from: caller)
  }

  /// The reply's error name, or nil for a success.
  mutating func errorOf(
    _ op: XenstoreOp, _ payload: [UInt8], from caller: XenstoreCaller, transaction: UInt32 = 0
  ) -> String? {
    let reply = request(op, payload, from: caller, transaction: transaction)
    guard reply.op == .error else { return nil }
    return String(decoding: reply.payload.dropLast(), as: UTF8.self)
  }

  mutating func handleOK(_ op: XenstoreOp, _ payload: [UInt8], from caller: XenstoreCaller) {
    let reply = request(op, payload, from: caller)
    precondition(reply.op == op, "\(op) failed: \(String(decoding: reply.payload, as: UTF8.self))")
  }

  /// The watch events queued for a domain, as "path token" strings; takes them.
  mutating func events(for domid: UInt32) -> [String] {
    takeMessages(for: domid).filter { $0.op == .watchEvent }.map {
      $0.strings.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }
  }
}

let dom1 = XenstoreCaller.domain(1)
let dom2 = XenstoreCaller.domain(2)
let dom3 = XenstoreCaller.domain(3)

@Suite struct XenstoreMessageTests {
  @Test func theOpNumbersAndErrorNamesAreXensWire() {
    #expect(XenstoreOp.control.rawValue == 0)
    #expect(XenstoreOp.watchEvent.rawValue == 15)
    #expect(XenstoreOp.error.rawValue == 16)
    #expect(XenstoreOp.resetWatches.rawValue == 21)
    #expect(XenstoreOp.directoryPart.rawValue == 22)
    #expect(XenstoreOp(rawValue: 20) == nil, "20 was XS_RESTRICT")
    #expect(XenstoreError.allCases.map { String(decoding: $0.name, as: UTF8.self) } == [
      "EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO", "ENOTEMPTY",
      "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM",
    ])
  }

  @Test func aMessageEncodesLittleEndianAndParsesBack() throws {
    let message = XenstoreMessage(type: 2, requestID: 0x0102_0304, transactionID: 5, payload: xsPayload("name"))
    let bytes = message.encoded()
    #expect(Array(bytes[0..<16]) == [2, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 5, 0, 0, 0])
    #expect(try XenstoreMessage.parse(bytes) == message)
    #expect(throws: XenstoreProtocolError.truncated) { try XenstoreMessage.parse(Array(bytes.dropLast())) }
    #expect(throws: XenstoreProtocolError.trailingBytes) { try XenstoreMessage.parse(bytes + [0]) }
    #expect(throws: XenstoreProtocolError.truncated) { try XenstoreMessage.parse([1, 2, 3]) }
  }

  @Test func aPayloadLongerThan4096IsAProtocolError() {
    var header = XenstoreMessage(type: 2, requestID: 0, transactionID: 0, payload: []).encoded()
    header[12] = 0x01
    header[13] = 0x10  // 4097
    #expect(throws: XenstoreProtocolError.payloadTooLong(4097)) { try XenstoreMessage.parse(header + [UInt8](repeating: 0, count: 4097)) }
    var reader = XenstoreMessageReader()
    let (consumed, message) = reader.take(header[...])
    #expect(consumed == 16 && message == nil)
    #expect(reader.broken == .payloadTooLong(4097))
    #expect(reader.take([1, 2, 3][...]).consumed == 0, "a broken reader takes nothing more")
  }

  @Test func theReaderAssemblesMessagesFromAnyPieces() {
    let first = XenstoreMessage(op: .read, requestID: 1, payload: xsPayload("a"))
    let second = XenstoreMessage(op: .mkdir, requestID: 2, payload: [])
    let stream = first.encoded() + second.encoded()
    for piece in [1, 3, 7, 16, 100] {
      var reader = XenstoreMessageReader()
      var got: [XenstoreMessage] = []
      var offset = 0
      while offset < stream.count {
        let end = min(offset + piece, stream.count)
        var slice = stream[offset..<end]
        while !slice.isEmpty {
          let (consumed, message) = reader.take(slice)
          if let message { got.append(message) }
          slice = slice.dropFirst(consumed)
        }
        offset = end
      }
      #expect(got == [first, second], "pieces of \(piece)")
    }
  }

  @Test func randomBytesNeverTrapTheParserOrTheServer() {
    var random = SplitMix64(seed: 0x5EED)
    var server = xsServer()
    for round in 0..<3000 {
      let length = Int(random.next() % 64)
      var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      if round % 2 == 0, bytes.count >= 16 {
        // A plausible header: a known type and a small length, so the payload is reached.
        bytes[0] = UInt8(random.next() % 24)
        for index in 1..<4 { bytes[index] = 0 }
        bytes[12] = UInt8(bytes.count - 16)
        for index in 13..<16 { bytes[index] = 0 }
        for index in 16..<bytes.count where random.next() % 3 == 0 { bytes[index] = 0 }
      }
      _ = try? XenstoreMessage.parse(bytes)
      let domid = UInt32(1 + random.next() % 3)
      _ = server.receive(bytes[...], from: domid)
      _ = server.takeOutput(for: domid, upTo: Int(random.next() % 200))
    }
    // Domain 1's home is untouched by the other domains' noise.
    #expect(server.store.node(at: xs("/local/domain/1"))?.permissions.owner == 1)
  }
}

@Suite struct XenstorePathTests {
  @Test func theLocalDomainPrefixLengthIsItsLength() {
    #expect(XenstorePath.localDomainLength == XenstorePath.localDomain.count)
  }

  /// The word-at-a-time hash is a function of the bytes alone: the same name in another
  /// buffer, at another offset, hashes the same, and names that differ in one byte or in
  /// length (the last word overlapping) hash apart.
  @Test func aNameHashesTheSameWhereverItLies() {
    var random = SplitMix64(seed: 0x4A54)
    for count in 0...40 {
      let name = (0..<count).map { _ in UInt8(ascii: "a") &+ UInt8(truncatingIfNeeded: random.next() % 26) }
      for offset in 0..<9 {
        let buffer = [UInt8](repeating: 0x2F, count: offset) + name + [0x2F, 0x2F]
        #expect(XenstoreKey.hash(buffer[offset..<(offset + count)]) == XenstoreKey.hash(name[...]))
      }
      #expect(XenstoreKey.hash(name[...]) != XenstoreKey.hash((name + [UInt8(ascii: "a")])[...]))
      if count > 0 {
        var changed = name
        changed[Int(random.next() % UInt64(count))] &+= 1
        #expect(XenstoreKey.hash(changed[...]) != XenstoreKey.hash(name[...]))
      }
    }
  }

  func canonical(_ name: String, domid: UInt32 = 3, privileged: Bool = false, special: Bool = false) -> String? {
    (try? XenstorePath.canonical(xs(name)[...], domid: domid, privileged: privileged, allowSpecial: special))
      .map { String(decoding: $0, as: UTF8.self) }
  }

  @Test func relativeNamesHangFromTheCallersHome() {
    #expect(canonical("device/vif/0") == "/local/domain/3/device/vif/0")
    #expect(canonical("/local/domain/4/x") == "/local/domain/4/x")
    #expect(canonical("/") == "/")
  }

  @Test func badNamesAreRefused() {
    #expect(canonical("") == nil, "the home with a trailing slash")
    #expect(canonical("/a/") == nil)
    #expect(canonical("/a//b") == nil)
    #expect(canonical("/a b") == nil)
    #expect(canonical("/a.b") == nil)
    #expect(canonical("/a\u{0}b") == nil)
    #expect(canonical("@releaseDomain") == nil, "special names only where allowed")
    #expect(canonical("@releaseDomain", special: true) == "@releaseDomain")
    #expect(canonical("/a-b_c@d/E9") == "/a-b_c@d/E9")
  }

  @Test func lengthsAreXenstoredsLimits() {
    let long = String(repeating: "x", count: 2048)
    #expect(canonical("/local/domain/7/" + long) != nil, "2048 after a domain's prefix")
    #expect(canonical("/local/domain/7/" + long + "y") == nil)
    #expect(canonical("/" + String(repeating: "x", count: 2047)) != nil)
    #expect(canonical("/" + String(repeating: "x", count: 2048)) == nil, "2049 outside a domain's prefix")
    #expect(canonical("/" + String(repeating: "x", count: 3071), privileged: true) != nil)
    #expect(canonical("/" + String(repeating: "x", count: 3072), privileged: true) == nil, "3072 for everyone")
  }

  /// xenstored's canonicalize and is_valid_nodename, literally: build the whole name, then check
  /// it. `canonical` checks in one pass over the caller's bytes instead.
  static func reference(_ name: [UInt8], domid: UInt32, privileged: Bool, special: Bool) -> [UInt8]? {
    // xenstored's valid_chars.
    let valid = Set(xs("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_@"))
    guard name.count <= XenstorePath.absoluteMax, name.allSatisfy(valid.contains) else { return nil }
    var full: [UInt8]
    if name.first == UInt8(ascii: "/") || name.first == UInt8(ascii: "@") {
      if name.first == UInt8(ascii: "@"), !special { return nil }
      full = name
    } else {
      full = xs("/local/domain/\(domid)/") + name
    }
    guard full.count <= XenstorePath.absoluteMax, full.count == 1 || full.last != UInt8(ascii: "/") else { return nil }
    for i in full.indices.dropFirst() where full[i] == UInt8(ascii: "/") && full[i - 1] == UInt8(ascii: "/") { return nil }
    if !privileged, full.count - XenstorePath.localPrefixLength(full) > XenstorePath.relativeMax { return nil }
    return full
  }

  @Test func randomNamesGetXenstoredsAnswer() {
    var random = SplitMix64(seed: 0x0a11_4ead)
    // Every character class's edges, a byte with its high bit set, and enough slashes for `//`.
    let alphabet = xs("ab/@_-9 .AZaz09`{[^:") + [0, 0xAF, 0xC1, 0xFF] + xs("//")
    for _ in 0..<20_000 {
      // Short names, names of a few words (checked eight bytes at a time, the last word
      // overlapping), and names near the length limit.
      let length = [Int.random(in: 0...6, using: &random), Int.random(in: 7...40, using: &random),
                    Int.random(in: 2040...2060, using: &random)].randomElement(using: &random)!
      var name = (0..<length).map { _ in alphabet.randomElement(using: &random)! }
      if Bool.random(using: &random) { name = xs("/local/domain/\(Int.random(in: 0...12, using: &random))/") + name }
      let domid = UInt32.random(in: 0...70_000, using: &random)
      let privileged = Bool.random(using: &random), special = Bool.random(using: &random)
      let got = try? XenstorePath.canonical(name[...], domid: domid, privileged: privileged, allowSpecial: special)
      #expect(got == Self.reference(name, domid: domid, privileged: privileged, special: special),
              "\(String(decoding: name, as: UTF8.self)) from \(domid)")
      if got != Self.reference(name, domid: domid, privileged: privileged, special: special) { return }
      // The hash it returns is the key's: what the fast read looks the node up with.
      if let got {
        let home = XenstorePath.home(of: domid)
        var full: [UInt8] = []
        let hash = try? XenstorePath.canonical(name[...], home: home, privileged: privileged, allowSpecial: special,
                                               into: &full)
        #expect(full == got && hash == XenstoreKey(got).nameHash)
      }
    }
  }
}

@Suite struct XenstoreStoreTests {
  @Test func writeReadMkdirDirectoryAndRm() {
    var server = xsServer()
    #expect(server.errorOf(.write, xsPayload("data/a/b") + xs("hello"), from: dom1) == nil)
    #expect(server.request(.read, xsPayload("data/a/b"), from: dom1).payload == xs("hello"))
    #expect(server.request(.read, xsPayload("/local/domain/1/data/a"), from: dom1).payload == [], "made on the way")
    #expect(server.errorOf(.mkdir, xsPayload("data/c"), from: dom1) == nil)
    #expect(server.errorOf(.mkdir, xsPayload("data/c"), from: dom1) == nil, "an existing node is fine")
    #expect(server.request(.directory, xsPayload("data"), from: dom1).payload == xsPayload("a", "c"))
    #expect(server.errorOf(.read, xsPayload("data/zz"), from: dom1) == "ENOENT")
    #expect(server.errorOf(.rm, xsPayload("data"), from: dom1) == nil)
    #expect(server.errorOf(.read, xsPayload("data/a/b"), from: dom1) == "ENOENT")
    #expect(server.request(.directory, xsPayload(""), from: dom1).op == .error, "the home has no trailing slash")
    #expect(server.request(.directory, xsPayload("/local/domain/1"), from: dom1).payload == [])
    #expect(server.errorOf(.rm, xsPayload("data"), from: dom1) == nil, "missing, parent exists: fine")
    #expect(server.errorOf(.rm, xsPayload("data/x"), from: dom1) == "ENOENT", "missing parent")
    #expect(server.errorOf(.rm, xsPayload("/"), from: .toolstack) == "EINVAL")
    #expect(server.store.nodeCount(ownedBy: 1) == 1, "only the home is left")
  }

  @Test func valuesAreBytesAndMayHoldNuls() {
    var server = xsServer()
    let value: [UInt8] = [0, 1, 0, 255]
    #expect(server.errorOf(.write, xsPayload("bin") + value, from: dom1) == nil)
    #expect(server.request(.read, xsPayload("bin"), from: dom1).payload == value)
    #expect(server.errorOf(.write, xs("noNul"), from: dom1) == "EINVAL")
    #expect(server.errorOf(.read, xs("a") + [0, 0], from: dom1) == "EINVAL", "read takes exactly one argument")
  }

  @Test func domainsCannotSeeOrTouchEachOthersNodes() {
    var server = xsServer()
    server.handleOK(.write, xsPayload("secret") + xs("1"), from: dom1)
    #expect(server.errorOf(.read, xsPayload("/local/domain/1/secret"), from: dom2) == "EACCES")
    #expect(server.errorOf(.read, xsPayload("/local/domain/1/nothing"), from: dom2) == "EACCES",
      "a missing node where one may not look is EACCES, not ENOENT")
    #expect(server.errorOf(.write, xsPayload("/local/domain/1/secret") + xs("2"), from: dom2) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("/local/domain/1/new") + xs("2"), from: dom2) == "EACCES")
    #expect(server.errorOf(.rm, xsPayload("/local/domain/1/secret"), from: dom2) == "EACCES")
    #expect(server.errorOf(.directory, xsPayload("/local/domain"), from: dom2) == "EACCES")
    #expect(server.errorOf(.write, xsPayload("/x") + xs("2"), from: dom2) == "EACCES", "the root is closed")
    #expect(server.request(.read, xsPayload("/local/domain/1/secret"), from: .toolstack).payload == xs("1"))
  }

  @Test func permissionsFollowXen() {
    var server = xsServer()
    server.handleOK(.write, xsPayload("shared") + xs("v"), from: dom1)
    #expect(server.request(.getPerms, xsPayload("shared"), from: dom1).payload == xsPayload("n1"), "inherited, the creator owns")
    // Owner 1, others read, domain 2 nothing, domain 3 both.
    server.handleOK(.setPerms, xsPayload("shared", "r1", "n2", "b3"), from: dom1)
    #expect(server.request(.getPerms, xsPayload("shared"), from: dom1).payload == xsPayload("r1", "n2", "b3"))
    #expect(server.errorOf(.read, xsPayload("/local/domain/1/shared"), from: dom2) == "EACCES", "an entry overrides the default")
    #expect(server.errorOf(.write, xsPayload("/local/domain/1/shared") + xs("w"), from: dom3) == nil)
    // Domain 3 made a node under domain 1's: domain 3 owns it, with the parent's entries.
    #expect(server.errorOf(.write, xsPayload("/local/domain/1/shared/by3") + xs("w"), from: dom3) == nil)
    #expect(server.request(.getPerms, xsPayload("/local/domain/1/shared/by3"), from: dom3).payload == xsPayload("r3", "n2", "b3"))
    // Only the owner may change permissions, and it may not give the node away.
    #expect(server.errorOf(.setPerms, xsPayload("/local/domain/1/shared", "b3"), from: dom3) == "EACCES")
    #expect(server.errorOf(.setPerms, xsPayload("shared", "b3"), from: dom1) == "EPERM")
    #expect(server.errorOf(.setPerms, xsPayload("/local/domain/1/shared", "b3"), from: .toolstack) == nil)
    #expect(server.store.node(at: xs("/local/domain/1/shared"))?.permissions.owner == 3)
    // Malformed permission strings.
    #expect(server.errorOf(.setPerms, xsPayload("shared", "x1"), from: .toolstack) == "EINVAL")
    #expect(server.errorOf(.setPerms, xsPayload("shared", "r"), from: .toolstack) == "EINVAL")
    #expect(server.errorOf(.setPerms, xsPayload("shared"), from: .toolstack) == "EINVAL")
    #expect(server.errorOf(.setPerms, xsPayload("shared", "r99999999999"), from: .toolstack) == "EINVAL")
    // Special nodes: their permissions can be read by the privileged, not by a domain.
    #expect(server.request(.getPerms, xsPayload("@releaseDomain"), from: .toolstack).payload == xsPayload("n0"))
    #expect(server.errorOf(.getPerms, xsPayload("@releaseDomain"), from: dom1) == "EACCES")
    #expect(server.errorOf(.read, xsPayload("@releaseDomain"), from: .toolstack) == "EINVAL")
  }

  @Test func getDomainPathAndUnknownOps() {
    var server = xsServer()
    #expect(server.request(.getDomainPath, xsPayload("12"), from: dom1).payload == xsPayload("/local/domain/12"))
    #expect(server.errorOf(.getDomainPath, xsPayload("x"), from: dom1) == "EINVAL")
    #expect(server.errorOf(.getDomainPath, xsPayload("99999999999"), from: dom1) == "EINVAL")
    let unknown = server.handle(XenstoreMessage(type: 99, requestID: 4, transactionID: 0, payload: []), from: dom1)
    #expect(unknown.op == .error && unknown.payload == xsPayload("ENOSYS") && unknown.requestID == 4)
    #expect(server.errorOf(.watchEvent, [], from: dom1) == "ENOSYS")
    #expect(server.errorOf(.introduce, [], from: dom1) == "EACCES", "privileged only")
    #expect(server.errorOf(.release, xsPayload("2"), from: dom1) == "EACCES")
    #expect(server.errorOf(.control, xsPayload("print"), from: dom1) == "EACCES")
  }

  @Test func directoryPartPagesTheListing() {
    var server = xsServer()
    for index in 0..<600 { _ = server.request(.mkdir, xsPayload("/many/child\(index)"), from: .toolstack) }
    #expect(server.errorOf(.directory, xsPayload("/many"), from: .toolstack) == "E2BIG", "the listing is past one payload")
    var names: [String] = []
    var offset = 0
    var pages = 0
    while pages < 10 {
      let reply = server.request(.directoryPart, xsPayload("/many", "\(offset)"), from: .toolstack)
      #expect(reply.op == .directoryPart)
      var strings = reply.strings.map { String(decoding: $0, as: UTF8.self) }
      strings.removeFirst()  // the generation
      pages += 1
      if strings.last == "" {
        names += strings.dropLast()
        break
      }
      names += strings
      offset += strings.reduce(0) { $0 + $1.utf8.count + 1 }
    }
    #expect(pages > 1)
    #expect(names == (0..<600).map { "child\($0)" })
  }
}

@Suite struct XenstoreTransactionTests {
  func start(_ server: inout XenstoreServer, _ caller: XenstoreCaller) -> UInt32 {
    let reply = server.request(.transactionStart, xsPayload(""), from: caller)
    return XenstorePath.parseDecimal(reply.payload.dropLast()) ?? 0
  }

  @Test func aTransactionSeesItsOwnWritesAndOthersSeeThemAtCommit() {
    var server = xsServer()
    let tx = start(&server, dom1)
    #expect(tx != 0)
    server.handleOK(.write, xsPayload("a") + xs("1"), from: dom1)
    #expect(server.errorOf(.write, xsPayload("a") + xs("2"), from: dom1, transaction: tx) == nil)
    #expect(server.request(.read, xsPayload("a"), from: dom1, transaction: tx).payload == xs("2"))
    #expect(server.request(.read, xsPayload("a"), from: dom1).payload == xs("1"), "not yet")
    #expect(server.errorOf(.transactionEnd, xsPayload("T"), from: dom1, transaction: tx) == nil)
    #expect(server.request(.read, xsPayload("a"), from: dom1).payload == xs("2"))
    #expect(server.errorOf(.read, xsPayload("a"), from: dom1, transaction: tx) == "ENOENT", "the transaction is over")
  }

  @Test func aConflictEndsInEAGAINAndAnAbortDiscards() {
    var server = xsServer()
    server.handleOK(.write, xsPayload("a") + xs("1"), from: dom1)
    let tx = start(&server, dom1)
    _ = server.request(.read, xsPayload("a"), from: dom1, transaction: tx)
    server.handleOK(.write, xsPayload("b") + xs("x"), from: dom1)
    #expect(server.errorOf(.write, xsPayload("c") + xs("y"), from: dom1, transaction: tx) == nil)
    // Another write to what the transaction read.
    server.handleOK(.write, xsPayload("a") + xs("changed"), from: dom1)
    #expect(server.errorOf(.transactionEnd, xsPayload("T"), from: dom1, transaction: tx) == "EAGAIN")
    #expect(server.errorOf(.read, xsPayload("c"), from: dom1) == "ENOENT", "nothing of it was applied")

    let second = start(&server, dom1)
    server.handleOK(.write, xsPayload("d") + xs("z"), from: dom1)
    #expect(server.errorOf(.rm, xsPayload("d"), from: dom1, transaction: second) == nil)
    #expect(server.errorOf(.transactionEnd, xsPayload("F"), from: dom1, transaction: second) == nil)
    #expect(server.request(.read, xsPayload("d"), from: dom1).payload == xs("z"))
    #expect(server.store.transactionCount(of: 1) == 0)
    #expect(server.store.memory(of: 1) == server.store.memory(of: 1) && server.store.heldOutsideTree >= 0)
  }

  @Test func creatingTheSameNodeInTwoTransactionsConflicts() {
    var server = xsServer()
    let first = start(&server, dom1)
    let second = start(&server, dom1)
    #expect(server.errorOf(.write, xsPayload("n") + xs("1"), from: dom1, transaction: first) == nil)
    #expect(server.errorOf(.write, xsPayload("n") + xs("2"), from: dom1, transaction: second) == nil)
    #expect(server.errorOf(.transactionEnd, xsPayload("T"), from: dom1, transaction: first) == nil)
    #expect(server.errorOf(.transactionEnd, xsPayload("T"), from: dom1, transaction: second) == "EAGAIN")
    #expect(server.request(.read, xsPayload("n"), from: dom1).payload == xs("1"))
  }

  @Test func transactionRulesAndLimits() {
    var server = xsServer()
    #expect(server.errorOf(.read, xsPayload("a"), from: dom1, transaction: 42) == "ENOENT", "no such transaction")
    let tx = start(&server, dom1)
    #expect(server.errorOf(.transactionStart, xsPayload(""), from: dom1, transaction: tx) == "EBUSY")
    #expect(server.errorOf(.transactionEnd, xsPayload("X"), from: dom1, transaction: tx) == "EINVAL")
    #expect(server.errorOf(.transactionEnd, xsPayload("T"), from: dom1) == "ENOENT")
    #expect(server.errorOf(.read, xsPayload("a"), from: dom2, transaction: tx) == "ENOENT", "ids are per domain")
    for _ in 1..<10 { #expect(start(&server, dom1) != 0) }
    #expect(server.errorOf(.transactionStart, xsPayload(""), from: dom1) == "ENOSPC", "10 per domain")
    #expect(start(&server, dom2) != 0, "another domain is not affected")
    server.handleOK(.resetWatches, [], from: dom1)
    #expect(server.store.transactionCount(of: 1) == 0)
  }

  @Test func aTransactionTouchesAtMost1024Nodes() {
    var server = xsServer()
    let tx = start(&server, dom1)
    var refusal: String?
    for index in 0..<1100 where refusal == nil {
      refusal = server.errorOf(.read, xsPayload("n\(index)"), from: dom1, transaction: tx)
      if refusal == "ENOENT" { refusal = nil }
    }
    #expect(refusal == "ENOSPC")
  }
}

@Suite struct XenstoreWatchTests {
  @Test func aWatchFiresAtOnceThenOnChangesAtOrBelow() {
    var server = xsServer()
    server.handleOK(.watch, xsPayload("device", "tok"), from: dom1)
    #expect(server.events(for: 1) == ["device tok"], "once at once, relative as registered")
    server.handleOK(.write, xsPayload("device/vif/0") + xs("x"), from: dom1)
    server.handleOK(.write, xsPayload("devices") + xs("x"), from: dom1)
    server.handleOK(.write, xsPayload("device") + xs("y"), from: dom1)
    #expect(server.events(for: 1) == ["device/vif/0 tok", "device tok"], "not for a sibling sharing a prefix")
    server.handleOK(.watch, xsPayload("/local/domain/1/device/vif/0", "abs"), from: dom1)
    _ = server.events(for: 1)
    server.handleOK(.rm, xsPayload("device"), from: dom1)
    // The removed subtree: the watch below hears of its node, exactly; the one on the root of
    // the removal hears of that.
    #expect(server.events(for: 1).sorted() == ["/local/domain/1/device/vif/0 abs", "device tok"])
  }

  @Test func identicalPendingEventsAreQueuedOnce() {
    var server = xsServer()
    server.handleOK(.watch, xsPayload("a", "t"), from: dom1)
    _ = server.events(for: 1)
    for _ in 0..<50 { server.handleOK(.write, xsPayload("a") + xs("v"), from: dom1) }
    #expect(server.events(for: 1) == ["a t"])
  }

  @Test func aDomainHearsOnlyOfNodesItMayRead() {
    var server = xsServer()
    server.handleOK(.watch, xsPayload("/local/domain", "all"), from: dom2)
    server.handleOK(.watch, xsPayload("/local/domain", "all"), from: .toolstack)
    _ = server.events(for: 2)
    _ = server.events(for: 0)
    server.handleOK(.write, xsPayload("private") + xs("1"), from: dom1)
    #expect(server.events(for: 2) == [], "domain 1's node is closed to domain 2")
    #expect(server.events(for: 0) == ["/local/domain/1/private all"])
    server.handleOK(.write, xsPayload("open") + xs("1"), from: dom1)
    server.handleOK(.setPerms, xsPayload("open", "n1", "r2"), from: dom1)
    _ = server.events(for: 2)
    server.handleOK(.write, xsPayload("open") + xs("2"), from: dom1)
    #expect(server.events(for: 2) == ["/local/domain/1/open all"])
  }

  @Test func unwatchWatchLimitsAndReset() {
    var server = xsServer()
    server.handleOK(.watch, xsPayload("a", "t"), from: dom1)
    #expect(server.errorOf(.watch, xsPayload("a", "t"), from: dom1) == "EEXIST")
    #expect(server.errorOf(.watch, xsPayload("a"), from: dom1) == "EINVAL")
    #expect(server.errorOf(.watch, xsPayload("a b", "t"), from: dom1) == "EINVAL")
    #expect(server.errorOf(.unwatch, xsPayload("a", "other"), from: dom1) == "ENOENT")
    #expect(server.errorOf(.unwatch, xsPayload("/local/domain/1/a", "t"), from: dom1) == nil, "same node, either spelling")
    for index in 0..<128 { #expect(server.errorOf(.watch, xsPayload("w\(index)", "t"), from: dom1) == nil) }
    #expect(server.errorOf(.watch, xsPayload("w128", "t"), from: dom1) == "E2BIG")
    #expect(server.errorOf(.watch, xsPayload("w128", "t"), from: dom2) == nil)
    server.handleOK(.resetWatches, [], from: dom1)
    #expect(server.watches(of: 1).isEmpty)
    _ = server.events(for: 1)
    server.handleOK(.write, xsPayload("w1") + xs("v"), from: dom1)
    #expect(server.events(for: 1) == [])
  }

  @Test func aTransactionsEventsComeAtItsCommit() {
    var server = xsServer()
    server.handleOK(.watch, xsPayload("t", "tok"), from: dom1)
    _ = server.events(for: 1)
    let reply = server.request(.transactionStart, xsPayload(""), from: dom1)
    let tx = XenstorePath.parseDecimal(reply.payload.dropLast()) ?? 0
    #expect(server.errorOf(.write, xsPayload("t/a") + xs("1"), from: dom1, transaction: tx) == nil)
    #expect(server.errorOf(.write, xsPayload("t/a") + xs("2"), from: dom1, transaction: tx) == nil)
    #expect(server.events(for: 1) == [])
    #expect(server.errorOf(.transactionEnd, xsPayload("T"), from: dom1, transaction: tx) == nil)
    #expect(server.events(for: 1) == ["t/a tok"])
  }

  @Test func releaseFiresReleaseDomainForThoseAllowedAndFreesTheDomain() {
    var server = xsServer()
    server.handleOK(.watch, xsPayload("@releaseDomain", "rel"), from: .toolstack)
    server.handleOK(.watch, xsPayload("@releaseDomain", "rel"), from: dom1)
    #expect(server.events(for: 0) == ["@releaseDomain rel"])
    #expect(server.events(for: 1) == ["@releaseDomain rel"], "the first event goes to anyone")
    server.handleOK(.write, xsPayload("a/b/c") + xs("x"), from: dom2)
    server.handleOK(.watch, xsPayload("w", "t"), from: dom2)
    _ = server.request(.write, xsPayload("/local/domain/1/from2") + xs("v"), from: .toolstack)
    server.handleOK(.setPerms, xsPayload("/local/domain/1/from2", "n2", "b1"), from: .toolstack)
    let nodesBefore = server.store.names.count
    server.release(domain: 2)
    #expect(server.events(for: 0) == ["@releaseDomain rel"])
    #expect(server.events(for: 1) == [], "@releaseDomain is closed to domains")
    #expect(server.store.nodeCount(ownedBy: 2) == 0)
    #expect(server.store.names.count == nodesBefore - 5, "its home, a, a/b, a/b/c, and the node it owned in domain 1's")
    #expect(server.store.memory(of: 2) == 0)
    #expect(server.watches(of: 2).isEmpty)
    #expect(server.store.node(at: xs("/local/domain/2")) == nil)
  }
}

@Suite struct XenstoreQuotaTests {
  @Test func nodesPerDomain() {
    var limits = XenstoreLimits()
    limits.nodesPerDomain = 10
    var server = xsServer(limits: limits)
    // The home counts: 9 more.
    for index in 0..<9 { #expect(server.errorOf(.write, xsPayload("n\(index)") + xs("v"), from: dom1) == nil) }
    #expect(server.errorOf(.write, xsPayload("n9") + xs("v"), from: dom1) == "ENOSPC")
    #expect(server.errorOf(.mkdir, xsPayload("x/y"), from: dom1) == "ENOSPC")
    #expect(server.errorOf(.write, xsPayload("n0") + xs("changed"), from: dom1) == nil, "changing is not creating")
    #expect(server.errorOf(.rm, xsPayload("n0"), from: dom1) == nil)
    #expect(server.errorOf(.write, xsPayload("n9") + xs("v"), from: dom1) == nil)
    #expect(server.store.nodeCount(ownedBy: 1) == 10)
  }

  @Test func theDefaultNodesQuotaIs1000() {
    var server = xsServer()
    var created = 1
    while server.errorOf(.mkdir, xsPayload("d\(created / 100)/n\(created)"), from: dom1) == nil, created < 2000 {
      created += 1
    }
    #expect(server.store.nodeCount(ownedBy: 1) <= 1000)
    #expect(server.store.nodeCount(ownedBy: 1) >= 999)
  }

  @Test func nodeSizePermissionsAndPathLength() {
    var server = xsServer()
    // 16 + 8 + 2024 = 2048.
    #expect(server.errorOf(.write, xsPayload("big") + [UInt8](repeating: 65, count: 2024), from: dom1) == nil)
    #expect(server.errorOf(.write, xsPayload("big") + [UInt8](repeating: 65, count: 2025), from: dom1) == "ENOSPC")
    #expect(server.errorOf(.write, xsPayload("/local/domain/1/big") + [UInt8](repeating: 65, count: 4000), from: .toolstack) == nil,
      "the toolstack has no quota")
    #expect(server.errorOf(.setPerms, xsPayload("a", "n1", "r2", "r3", "r4", "r5", "r6"), from: dom1) == "ENOSPC")
    server.handleOK(.write, xsPayload("p") + xs("v"), from: dom1)
    #expect(server.errorOf(.setPerms, xsPayload("p", "n1", "r2", "r3", "r4", "r5"), from: dom1) == nil)
    #expect(server.errorOf(.write, xsPayload(String(repeating: "x", count: 2049)) + xs("v"), from: dom1) == "EINVAL")
  }

  @Test func outstandingRepliesStopReading() {
    var server = xsServer()
    var stream: [UInt8] = []
    for index in 0..<30 { stream += XenstoreMessage(op: .read, requestID: UInt32(index), payload: xsPayload("x")).encoded() }
    let consumed = server.receive(stream[...], from: 1)
    #expect(server.queuedCount(for: 1) == 20)
    #expect(consumed == 20 * stream.count / 30, "the rest stays in the ring")
    let out = server.takeOutput(for: 1, upTo: 10_000)
    #expect(out.count == 20 * (16 + 7), "20 ENOENT replies")
    #expect(server.receive(stream[consumed...], from: 1) == stream.count - consumed)
  }

  @Test func aLongPayloadBreaksOnlyThatConnection() {
    var server = xsServer()
    var bad = XenstoreMessage(op: .read, payload: []).encoded()
    bad[13] = 0x20
    _ = server.receive(bad[...], from: 2)
    #expect(server.isBroken(2))
    #expect(server.receive(XenstoreMessage(op: .read, payload: xsPayload("x")).encoded()[...], from: 2) == 0)
    let good = XenstoreMessage(op: .getDomainPath, requestID: 9, payload: xsPayload("1")).encoded()
    #expect(server.receive(good[...], from: 1) == good.count)
    let reply = try? XenstoreMessage.parse(server.takeOutput(for: 1, upTo: 4096))
    #expect(reply?.payload == xsPayload("/local/domain/1") && reply?.requestID == 9)
  }

  @Test func theTotalCapHoldsForEveryone() {
    var limits = XenstoreLimits()
    limits.totalBytes = 64 * 1024
    var server = xsServer(limits: limits)
    var refusal: String?
    var index = 0
    while refusal == nil, index < 1000 {
      refusal = server.errorOf(.write, xsPayload("/big/n\(index)") + [UInt8](repeating: 1, count: 1000), from: .toolstack)
      index += 1
    }
    #expect(refusal == "ENOMEM")
    #expect(server.store.totalBytes <= limits.totalBytes)
  }

  @Test func aTransactionsPrivateNodesCountAgainstMemory() {
    var limits = XenstoreLimits()
    limits.memoryPerDomain = 8 * 1024
    var server = xsServer(limits: limits)
    let reply = server.request(.transactionStart, xsPayload(""), from: dom1)
    let tx = XenstorePath.parseDecimal(reply.payload.dropLast()) ?? 0
    var refusal: String?
    var index = 0
    while refusal == nil, index < 100 {
      refusal = server.errorOf(.write, xsPayload("n\(index)") + [UInt8](repeating: 1, count: 1000), from: dom1, transaction: tx)
      index += 1
    }
    #expect(refusal == "ENOMEM")
    #expect(server.store.memory(of: 1) <= limits.memoryPerDomain)
    _ = server.request(.transactionEnd, xsPayload("F"), from: dom1, transaction: tx)
    #expect(server.store.memory(of: 1) == 0, "given back at the end")
  }
}
