// The xenstore wire protocol (xen/include/public/io/xs_wire.h): a 16-byte header, struct
// xsd_sockmsg { u32 type; u32 req_id; u32 tx_id; u32 len; }, little-endian, followed by `len`
// bytes of payload, usually NUL-terminated strings. Replies echo the request's req_id and tx_id;
// a failure is an XS_ERROR reply whose payload is the errno's name ("ENOENT\0").

/// The message types of xs_wire.h's enum xsd_sockmsg_type.
public enum XenstoreOp: UInt32, Sendable, Equatable, CaseIterable {
  case control = 0
  case directory = 1
  case read = 2
  case getPerms = 3
  case watch = 4
  case unwatch = 5
  case transactionStart = 6
  case transactionEnd = 7
  case introduce = 8
  case release = 9
  case getDomainPath = 10
  case write = 11
  case mkdir = 12
  case rm = 13
  case setPerms = 14
  case watchEvent = 15
  case error = 16
  case isDomainIntroduced = 17
  case resume = 18
  case setTarget = 19
  // 20 was XS_RESTRICT, removed from Xen; the number stays unused.
  case resetWatches = 21
  case directoryPart = 22
}

/// The errors a reply can carry, with xs_wire.h's xsd_errors names. Anything xenstored cannot
/// translate goes out as EINVAL; so does anything here.
public enum XenstoreError: Error, Sendable, Equatable, CaseIterable {
  case EINVAL, EACCES, EEXIST, EISDIR, ENOENT, ENOMEM, ENOSPC, EIO, ENOTEMPTY, ENOSYS, EROFS
  case EBUSY, EAGAIN, EISCONN, E2BIG, EPERM

  /// The name as it travels in an XS_ERROR payload, without the NUL.
  public var name: [UInt8] {
    switch self {
    case .EINVAL: Array("EINVAL".utf8)
    case .EACCES: Array("EACCES".utf8)
    case .EEXIST: Array("EEXIST".utf8)
    case .EISDIR: Array("EISDIR".utf8)
    case .ENOENT: Array("ENOENT".utf8)
    case .ENOMEM: Array("ENOMEM".utf8)
    case .ENOSPC: Array("ENOSPC".utf8)
    case .EIO: Array("EIO".utf8)
    case .ENOTEMPTY: Array("ENOTEMPTY".utf8)
    case .ENOSYS: Array("ENOSYS".utf8)
    case .EROFS: Array("EROFS".utf8)
    case .EBUSY: Array("EBUSY".utf8)
    case .EAGAIN: Array("EAGAIN".utf8)
    case .EISCONN: Array("EISCONN".utf8)
    case .E2BIG: Array("E2BIG".utf8)
    case .EPERM: Array("EPERM".utf8)
    }
  }
}

/// One xenstore message: the header's fields and the payload.
public struct XenstoreMessage: Sendable, Equatable {
  public static let headerSize = 16
  /// XENSTORE_PAYLOAD_MAX: a longer payload is a protocol violation.
  public static let payloadMax = 4096

  /// The raw type: requests with a number that is no `XenstoreOp` are answered with ENOSYS.
  public var type: UInt32
  public var requestID: UInt32
  public var transactionID: UInt32
  public var payload: [UInt8]

  public init(type: UInt32, requestID: UInt32, transactionID: UInt32, payload: [UInt8]) {
    self.type = type
    self.requestID = requestID
    self.transactionID = transactionID
    self.payload = payload
  }

  public init(op: XenstoreOp, requestID: UInt32 = 0, transactionID: UInt32 = 0, payload: [UInt8]) {
    self.init(type: op.rawValue, requestID: requestID, transactionID: transactionID, payload: payload)
  }

  public var op: XenstoreOp? { XenstoreOp(rawValue: type) }

  /// The header and payload as they go on the ring.
  public func encoded() -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Self.headerSize + payload.count)
    XenstoreHeader(type: type, requestID: requestID, transactionID: transactionID,
                   length: UInt32(truncatingIfNeeded: payload.count)).append(to: &bytes)
    bytes.append(contentsOf: payload)
    return bytes
  }

  /// Parses exactly one message occupying all of `bytes`.
  public static func parse(_ bytes: [UInt8]) throws(XenstoreProtocolError) -> XenstoreMessage {
    guard bytes.count >= headerSize else { throw .truncated }
    let header = XenstoreHeader(bytes, at: 0)
    guard header.length <= UInt32(payloadMax) else { throw .payloadTooLong(header.length) }
    guard bytes.count - headerSize == Int(header.length) else {
      throw bytes.count - headerSize < Int(header.length) ? .truncated : .trailingBytes
    }
    return XenstoreMessage(
      type: header.type, requestID: header.requestID, transactionID: header.transactionID,
      payload: Array(bytes[headerSize...]))
  }

  /// The NUL-terminated strings of the payload, as xenstored's get_strings counts them: bytes
  /// after the last NUL are not a string.
  public var strings: [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var start = 0
    for index in payload.indices where payload[index] == 0 {
      result.append(payload[start..<index])
      start = index + 1
    }
    return result
  }

  /// The payload's single argument: it must hold exactly one NUL, at its end (xenstored's onearg).
  public var singleArgument: ArraySlice<UInt8>? {
    guard let last = payload.last, last == 0 else { return nil }
    let body = payload[..<(payload.count - 1)]
    guard !body.contains(0) else { return nil }
    return body
  }
}

/// The 16-byte header, read little-endian from any byte offset.
public struct XenstoreHeader: Sendable, Equatable {
  public var type: UInt32
  public var requestID: UInt32
  public var transactionID: UInt32
  public var length: UInt32

  init(type: UInt32, requestID: UInt32, transactionID: UInt32, length: UInt32) {
    self.type = type
    self.requestID = requestID
    self.transactionID = transactionID
    self.length = length
  }

  /// The header from its 16 bytes read as two little-endian words (`SharedPage.load128`).
  init(words: (UInt64, UInt64)) {
    type = UInt32(truncatingIfNeeded: words.0)
    requestID = UInt32(truncatingIfNeeded: words.0 >> 32)
    transactionID = UInt32(truncatingIfNeeded: words.1)
    length = UInt32(truncatingIfNeeded: words.1 >> 32)
  }

  /// Its 16 bytes as two little-endian words (`SharedPage.store128`).
  var words: (UInt64, UInt64) {
    (UInt64(type) | UInt64(requestID) << 32, UInt64(transactionID) | UInt64(length) << 32)
  }

  /// Appends the header's 16 bytes, little-endian, to `bytes`.
  func append(to bytes: inout [UInt8]) {
    func put(_ word: UInt32) {
      bytes.append(UInt8(truncatingIfNeeded: word))
      bytes.append(UInt8(truncatingIfNeeded: word >> 8))
      bytes.append(UInt8(truncatingIfNeeded: word >> 16))
      bytes.append(UInt8(truncatingIfNeeded: word >> 24))
    }
    put(type); put(requestID); put(transactionID); put(length)
  }

  /// Reads the header at `offset`; the caller has checked that 16 bytes are there.
  init(_ bytes: [UInt8], at offset: Int) {
    func word(_ at: Int) -> UInt32 {
      UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
    type = word(offset)
    requestID = word(offset + 4)
    transactionID = word(offset + 8)
    length = word(offset + 12)
  }
}

/// Why a byte stream is no longer a xenstore conversation. xenstored stops reading from such a
/// connection (XENSTORE_ERROR_PROTO); so does `XenstoreServer`.
public enum XenstoreProtocolError: Error, Sendable, Equatable {
  /// A header announces more than XENSTORE_PAYLOAD_MAX bytes.
  case payloadTooLong(UInt32)
  /// Fewer bytes than the header and its announced payload.
  case truncated
  /// More bytes than one message.
  case trailingBytes
}

/// Cuts a byte stream into messages, however the bytes arrive (a ring delivers them in any
/// pieces). It holds at most one header and one payload of XENSTORE_PAYLOAD_MAX bytes.
public struct XenstoreMessageReader: Sendable {
  private var pending: [UInt8] = []
  public private(set) var broken: XenstoreProtocolError?

  public init() {}

  /// Between messages, and not broken: a whole message that comes next is read from its first
  /// byte.
  public var isIdle: Bool { pending.isEmpty && broken == nil }

  /// How many bytes the reader takes before it has a whole message: the rest of the header,
  /// then the rest of the payload. Zero once broken.
  public var wanted: Int {
    if broken != nil { return 0 }
    if pending.count < XenstoreMessage.headerSize { return XenstoreMessage.headerSize - pending.count }
    let length = Int(XenstoreHeader(pending, at: 0).length)
    return XenstoreMessage.headerSize + length - pending.count
  }

  /// Appends up to `wanted` bytes from the front of `bytes`; returns how many it took and the
  /// message they completed, if any. A header announcing too long a payload breaks the reader.
  public mutating func take(_ bytes: ArraySlice<UInt8>) -> (consumed: Int, message: XenstoreMessage?) {
    var consumed = 0
    var rest = bytes
    while broken == nil, !rest.isEmpty {
      let count = min(wanted, rest.count)
      pending.append(contentsOf: rest.prefix(count))
      rest = rest.dropFirst(count)
      consumed += count
      if pending.count == XenstoreMessage.headerSize {
        let length = XenstoreHeader(pending, at: 0).length
        if length > UInt32(XenstoreMessage.payloadMax) {
          broken = .payloadTooLong(length)
          pending = []
          return (consumed, nil)
        }
      }
      if pending.count >= XenstoreMessage.headerSize, wanted == 0 {
        let header = XenstoreHeader(pending, at: 0)
        let message = XenstoreMessage(
          type: header.type, requestID: header.requestID, transactionID: header.transactionID,
          payload: Array(pending[XenstoreMessage.headerSize...]))
        pending = []
        return (consumed, message)
      }
    }
    return (consumed, nil)
  }
}
