import XenABI

/// Byte and 32-bit access to one shared page (a guest's console ring), as the arch provides it.
/// Every access may race with the guest writing the same page on another cpu: loads of an
/// index are single 32-bit loads, and the protocol below is what makes the data they guard safe
/// to read.
public protocol SharedPage {
  func load32(at offset: Int) -> UInt32
  func store32(_ value: UInt32, at offset: Int)
  func load8(at offset: Int) -> UInt8
  func store8(_ value: UInt8, at offset: Int)
  /// `count` bytes from `offset` appended to `bytes` in one copy (the range inside the page):
  /// into a buffer whose capacity the caller keeps, so nothing is allocated.
  func appendBytes(at offset: Int, count: Int, to bytes: inout [UInt8])
  /// `count` bytes from `offset` copied over `bytes[index...]` in one copy (the range inside
  /// the page). False, copying nothing, unless they fit there and could be read.
  func copyBytes(at offset: Int, count: Int, into bytes: inout [UInt8], at index: Int) -> Bool
  /// `bytes` to `offset` in one copy (the range inside the page).
  func storeBytes(_ bytes: ArraySlice<UInt8>, at offset: Int)
  /// The 16 bytes at `offset` (any alignment; inside the page) as two little-endian words, in
  /// one copy: a xenstore message header.
  func load128(at offset: Int) -> (UInt64, UInt64)
  func store128(_ words: (UInt64, UInt64), at offset: Int)
}

extension SharedPage {
  public func appendBytes(at offset: Int, count: Int, to bytes: inout [UInt8]) {
    for i in 0..<count { bytes.append(load8(at: offset + i)) }
  }

  public func copyBytes(at offset: Int, count: Int, into bytes: inout [UInt8], at index: Int) -> Bool {
    guard count >= 0, index >= 0, index <= bytes.count, count <= bytes.count - index else { return false }
    for i in 0..<count { bytes[index + i] = load8(at: offset + i) }
    return true
  }

  public func storeBytes(_ bytes: ArraySlice<UInt8>, at offset: Int) {
    for (i, byte) in bytes.enumerated() { store8(byte, at: offset + i) }
  }

  public func load128(at offset: Int) -> (UInt64, UInt64) {
    var low: UInt64 = 0, high: UInt64 = 0
    for i in 0..<8 {
      low |= UInt64(load8(at: offset + i)) << (8 * UInt64(i))
      high |= UInt64(load8(at: offset + 8 + i)) << (8 * UInt64(i))
    }
    return (low, high)
  }

  public func store128(_ words: (UInt64, UInt64), at offset: Int) {
    for i in 0..<8 {
      store8(UInt8(truncatingIfNeeded: words.0 >> (8 * UInt64(i))), at: offset + i)
      store8(UInt8(truncatingIfNeeded: words.1 >> (8 * UInt64(i))), at: offset + 8 + i)
    }
  }
}

/// The backend side of Xen's console ring (docs/console.md): drain what the guest wrote to
/// `out`, put input into `in`. The guest controls the indices, so nothing here trusts them: a
/// producer index more than a ring ahead of the consumer is treated as "a whole ring", never
/// as a count to copy.
public enum ConsoleRingBackend {
  typealias Ring = XenABI.ConsoleRing

  /// How many bytes the guest has produced on `out` and the backend not taken yet (at most one
  /// ring's worth, whatever the indices say).
  public static func pendingOutput(_ page: some SharedPage) -> Int {
    let consumer = page.load32(at: Ring.Offset.outputConsumer)
    let producer = page.load32(at: Ring.Offset.outputProducer)
    return min(Int(producer &- consumer), Ring.outSize)
  }

  /// Takes what the guest has produced on `out`, at most one ring's worth and at most `maximum`
  /// bytes, and advances out_cons past it. What is left stays for a later drain: the guest sees
  /// a ring that is not empty yet, and waits for room (the back-pressure of the console budget).
  public static func drainOutput(_ page: some SharedPage, maximum: Int = Int.max) -> [UInt8] {
    let consumer = page.load32(at: Ring.Offset.outputConsumer)
    let producer = page.load32(at: Ring.Offset.outputProducer)
    let available = min(Int(producer &- consumer), Ring.outSize, max(maximum, 0))
    guard available > 0 else { return [] }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(available)
    for i in 0..<available {
      let index = Int((consumer &+ UInt32(i)) % UInt32(Ring.outSize))
      bytes.append(page.load8(at: Ring.Offset.output + index))
    }
    page.store32(consumer &+ UInt32(available), at: Ring.Offset.outputConsumer)
    return bytes
  }

  /// Puts as many of `bytes` into `in` as there is room for, then advances in_prod; returns
  /// how many went in.
  public static func deliverInput(_ bytes: [UInt8], to page: some SharedPage) -> Int {
    let consumer = page.load32(at: Ring.Offset.inputConsumer)
    let producer = page.load32(at: Ring.Offset.inputProducer)
    let used = Int(producer &- consumer)
    // A consumer index ahead of the producer, or a ring fuller than full: the guest broke
    // the protocol; deliver nothing rather than overwrite what it may still read.
    guard used <= Ring.inSize else { return 0 }
    let count = min(bytes.count, Ring.inSize - used)
    for i in 0..<count {
      let index = Int((producer &+ UInt32(i)) % UInt32(Ring.inSize))
      page.store8(bytes[i], at: Ring.Offset.input + index)
    }
    if count > 0 { page.store32(producer &+ UInt32(count), at: Ring.Offset.inputProducer) }
    return count
  }
}
