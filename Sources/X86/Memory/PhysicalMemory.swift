#if os(none)
import Support
import Hypervisor

/// The unsafe layer for the hypervisor's own view of physical memory.
///
/// Physical memory is identity mapped (virtual address == physical address) up to `mappedLimit`.
/// Every access outside that range is refused here, so a bad address from a table or a boot loader
/// becomes a nil/false, never a page fault in the hypervisor. This file and the Support header's
/// hv_*_physical functions are the only places that turn numbers into memory.
public struct PhysicalMemory: PhysicalMemoryReader {
  /// End of the identity map built at boot (boot.S maps 4 GiB; nothing extends it yet). Never
  /// written after boot.
  nonisolated(unsafe) public static var mappedLimit: UInt64 = 4 << 30

  public init() {}

  public static func isMapped(_ address: UInt64, count: Int) -> Bool {
    guard count >= 0 else { return false }
    let (end, overflow) = address.addingReportingOverflow(UInt64(count))
    return unsafe !overflow && end <= mappedLimit
  }

  public func read(_ address: UInt64, count: Int) -> [UInt8]? {
    guard Self.isMapped(address, count: count) else { return nil }
    var bytes = [UInt8](repeating: 0, count: count)
    unsafe bytes.withUnsafeMutableBytes { buffer in
      if let base = buffer.baseAddress { unsafe hv_copy_from_physical(base, address, count) }
    }
    return bytes
  }

  @discardableResult
  public static func write(_ bytes: [UInt8], to address: UInt64) -> Bool { write(bytes[...], to: address) }

  /// `write` of a slice, without copying it into an array first.
  @discardableResult
  public static func write(_ bytes: ArraySlice<UInt8>, to address: UInt64) -> Bool {
    guard isMapped(address, count: bytes.count) else { return false }
    unsafe bytes.withUnsafeBytes { buffer in
      if let base = buffer.baseAddress { unsafe hv_copy_to_physical(address, base, buffer.count) }
    }
    return true
  }

  /// Copies `count` bytes at `address` over `bytes[index...]` in one copy, so each is read
  /// once; false, changing nothing, if they are not all mapped or do not fit there.
  @discardableResult
  public static func copy(from address: UInt64, count: Int, into bytes: inout [UInt8], at index: Int) -> Bool {
    guard isMapped(address, count: count), index >= 0, index <= bytes.count, count <= bytes.count - index else { return false }
    unsafe bytes.withUnsafeMutableBytes { buffer in   // unsafe: index + count is inside the buffer (checked above)
      if let base = buffer.baseAddress { unsafe hv_copy_from_physical(base + index, address, count) }
    }
    return true
  }

  /// Appends `count` bytes at `address` to `bytes` in one copy, so each is read once (a ring
  /// the guest writes at the same time); false, appending nothing, if they are not all mapped.
  @discardableResult
  public static func append(from address: UInt64, count: Int, to bytes: inout [UInt8]) -> Bool {
    guard isMapped(address, count: count), let base = unsafe UnsafePointer<UInt8>(bitPattern: UInt(address)) else { return count == 0 }
    unsafe bytes.append(contentsOf: UnsafeBufferPointer(start: base, count: count))   // unsafe: the range is mapped (checked above)
    return true
  }

  @discardableResult
  public static func zero(_ address: UInt64, count: Int) -> Bool {
    guard isMapped(address, count: count) else { return false }
    hv_zero_physical(address, count)
    return true
  }

  @discardableResult
  public static func fill(_ address: UInt64, byte: UInt8, count: Int) -> Bool {
    guard isMapped(address, count: count) else { return false }
    hv_fill_physical(address, byte, count)
    return true
  }

  /// Naturally aligned accesses of one width. Misaligned or unmapped addresses are refused.
  public static func read32(_ address: UInt64) -> UInt32? {
    guard isMapped(address, count: 4), address & 3 == 0 else { return nil }
    return hv_read_physical32(address)
  }
  @discardableResult
  public static func write32(_ address: UInt64, _ value: UInt32) -> Bool {
    guard isMapped(address, count: 4), address & 3 == 0 else { return false }
    hv_write_physical32(address, value)
    return true
  }
  public static func read16(_ address: UInt64) -> UInt16? {
    guard isMapped(address, count: 2), address & 1 == 0 else { return nil }
    return hv_read_physical16(address)
  }
  @discardableResult
  public static func write16(_ address: UInt64, _ value: UInt16) -> Bool {
    guard isMapped(address, count: 2), address & 1 == 0 else { return false }
    hv_write_physical16(address, value)
    return true
  }
  public static func read8(_ address: UInt64) -> UInt8? {
    guard isMapped(address, count: 1) else { return nil }
    return hv_read_physical8(address)
  }
  @discardableResult
  public static func write8(_ address: UInt64, _ value: UInt8) -> Bool {
    guard isMapped(address, count: 1) else { return false }
    hv_write_physical8(address, value)
    return true
  }

  /// A guest structure copied whole from `address` (one opaque copy, so nothing the guest
  /// changes afterwards is read again); nil when its `guestSize` bytes are not all mapped.
  public static func read<T: GuestStructure>(_ type: T.Type, at address: UInt64) -> T? {
    let size = MemoryLayout<T>.size                               // its fields; the tail padding is not kept
    guard isMapped(address, count: T.guestSize) else { return nil }
    var value = T()
    unsafe withUnsafeMutableBytes(of: &value) { buffer in      // unsafe: value's own bytes, `size` of them
      let target = unsafe buffer.baseAddress.unsafelyUnwrapped
      // One volatile load for a structure of one word (EVTCHNOP_send's port: the hot path), one
      // per word for an aligned structure of up to eight words (a grant map: memcpy spent about
      // 60 instructions on its 32 bytes); memcpy, a call, otherwise. Either way the guest's
      // memory is read once.
      switch size {
      case 4 where address & 3 == 0: unsafe target.storeBytes(of: hv_read_physical32(address), as: UInt32.self)
      case 8 where address & 7 == 0: unsafe target.storeBytes(of: hv_read_physical64(address), as: UInt64.self)
      case 16...64 where size & 7 == 0 && address & 7 == 0:
        for offset in stride(from: 0, to: size, by: 8) {
          unsafe target.storeBytes(of: hv_read_physical64(address + UInt64(offset)), toByteOffset: offset, as: UInt64.self)
        }
      default: unsafe hv_copy_from_physical(target, address, size)
      }
    }
    return value
  }

  /// Writes a guest structure's fields at `address` (its tail padding is left as it was);
  /// false when its `guestSize` bytes are not all mapped.
  @discardableResult
  public static func write<T: GuestStructure>(_ value: T, at address: UInt64) -> Bool {
    let size = MemoryLayout<T>.size
    guard isMapped(address, count: T.guestSize) else { return false }
    unsafe withUnsafeBytes(of: value) { buffer in              // unsafe: value's own bytes, `size` of them
      let source = unsafe buffer.baseAddress.unsafelyUnwrapped
      // As `read`: a word at a time for an aligned structure of up to eight words.
      if size >= 16, size <= 64, size & 7 == 0, address & 7 == 0 {
        for offset in stride(from: 0, to: size, by: 8) {
          hv_write_physical64(address + UInt64(offset), unsafe source.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
      } else {
        unsafe hv_copy_to_physical(address, source, size)
      }
    }
    return true
  }

  /// Lends `body` a read-only view of `count` bytes at `address` (a boot module, say), without
  /// copying. The view must not escape `body`.
  public static func withBytes<R>(_ address: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
    guard isMapped(address, count: count), let base = unsafe UnsafeRawPointer(bitPattern: UInt(address)) else { return nil }
    return unsafe body(UnsafeRawBufferPointer(start: base, count: count))
  }

  /// Copies between two physical ranges (which must not overlap).
  @discardableResult
  public static func copy(from source: UInt64, to destination: UInt64, count: Int) -> Bool {
    guard isMapped(source, count: count), isMapped(destination, count: count),
          let from = unsafe UnsafeRawPointer(bitPattern: UInt(source)) else { return count == 0 }
    unsafe hv_copy_to_physical(destination, from, count)
    return true
  }

  /// Unchecked accesses for the hypervisor's own pages on the exit path (VMCBs, vcpu context
  /// pages): their addresses come from the frame allocator, never from a guest or firmware, so
  /// the bounds check is skipped to keep every exit short. Nothing else may use these.
  /// They are plain loads and stores the compiler inlines: the C accessors are calls at
  /// `-Osize`, and the exit path makes dozens of these. No value is cached across VMRUN, an
  /// opaque call that may write any memory.
  @inline(__always) public static func ownRead64(_ address: UInt64) -> UInt64 {
    unsafe own(address).load(as: UInt64.self)          // unsafe: an own page, see above
  }
  @inline(__always) public static func ownWrite64(_ address: UInt64, _ value: UInt64) {
    unsafe own(address).storeBytes(of: value, as: UInt64.self)   // unsafe: an own page
  }
  @inline(__always) public static func ownRead32(_ address: UInt64) -> UInt32 {
    unsafe own(address).load(as: UInt32.self)          // unsafe: an own page
  }
  @inline(__always) public static func ownWrite32(_ address: UInt64, _ value: UInt32) {
    unsafe own(address).storeBytes(of: value, as: UInt32.self)   // unsafe: an own page
  }
  @inline(__always) public static func ownRead16(_ address: UInt64) -> UInt16 {
    unsafe own(address).load(as: UInt16.self)          // unsafe: an own page
  }
  // Bytes stay volatile C accesses: the console backend also uses them on a ring the guest
  // writes at the same time, where each byte must be read exactly once.
  @inline(__always) public static func ownRead8(_ address: UInt64) -> UInt8 { hv_read_physical8(address) }
  @inline(__always) public static func ownWrite8(_ address: UInt64, _ value: UInt8) { hv_write_physical8(address, value) }
  /// The identity-mapped pointer to an own page's field (never address 0: no frame there).
  @inline(__always) static func own(_ address: UInt64) -> UnsafeMutableRawPointer {
    unsafe UnsafeMutableRawPointer(bitPattern: UInt(address)).unsafelyUnwrapped
  }

  /// 16 bytes at `address`, any alignment, as two little-endian words: one load each, so
  /// each byte is read once (a message header in a ring the guest writes at the same time).
  public static func readUnaligned128(_ address: UInt64) -> (UInt64, UInt64)? {
    guard isMapped(address, count: 16) else { return nil }
    return (hv_read_physical_unaligned64(address), hv_read_physical_unaligned64(address + 8))
  }

  @discardableResult
  public static func writeUnaligned128(_ address: UInt64, _ words: (UInt64, UInt64)) -> Bool {
    guard isMapped(address, count: 16) else { return false }
    hv_write_physical_unaligned64(address, words.0)
    hv_write_physical_unaligned64(address + 8, words.1)
    return true
  }

  public static func read64(_ address: UInt64) -> UInt64? {
    guard isMapped(address, count: 8), address & 7 == 0 else { return nil }
    return hv_read_physical64(address)
  }

  @discardableResult
  public static func write64(_ address: UInt64, _ value: UInt64) -> Bool {
    guard isMapped(address, count: 8), address & 7 == 0 else { return false }
    hv_write_physical64(address, value)
    return true
  }
}
#endif
