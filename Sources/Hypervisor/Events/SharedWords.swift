import Synchronization

/// Atomic operations on the words of the pages a guest shares with the hypervisor for events
/// (shared_info's pending and mask bits, vcpu_info's selector and upcall flag), by address: on
/// the machine an identity-mapped machine address, in host tests a host address. The guest's
/// own handler changes the same words with LOCK-prefixed instructions on another pcpu, so
/// every read-modify-write here is atomic and sequentially consistent (x86: `lock bts`,
/// `lock btr`, `xchg`).
///
/// These are plain inlined instructions in common code, not calls through `EventPlatform`: a
/// send makes half a dozen of them, and as protocol calls they cost more than the send's work.
/// The addresses come only from `Events.sharedInfo(of:)` and `Events.vcpuInfo(of:)` plus
/// offsets inside the page, never from a guest.
enum SharedWords {
  @inline(__always)
  static func word(_ address: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
    unsafe UnsafeMutablePointer(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: a shared page's word, see above
  }

  /// Sets bit `bit` (0–63) of the word at `address`; true if it was set already.
  @inline(__always)
  static func testAndSet(bit: Int, at address: UInt64) -> Bool {
    let mask: UInt64 = 1 &<< UInt64(bit & 63)
    return unsafe word(address).pointee.bitwiseOr(mask, ordering: .sequentiallyConsistent).oldValue & mask != 0
  }

  /// Clears bit `bit` of the word at `address`; true if it was set.
  @inline(__always)
  static func testAndClear(bit: Int, at address: UInt64) -> Bool {
    let mask: UInt64 = 1 &<< UInt64(bit & 63)
    return unsafe word(address).pointee.bitwiseAnd(~mask, ordering: .sequentiallyConsistent).oldValue & mask != 0
  }

  @inline(__always)
  static func load(at address: UInt64) -> UInt64 {
    unsafe word(address).pointee.load(ordering: .sequentiallyConsistent)
  }

  @inline(__always)
  static func test(bit: Int, at address: UInt64) -> Bool {
    load(at: address) & (1 &<< UInt64(bit & 63)) != 0
  }

  // The same on the 32-bit words of a compat shared_info and vcpu_info: a 32-bit guest changes
  // them with 32-bit locked instructions, and locked accesses to one word must have one size.

  @inline(__always)
  static func word32(_ address: UInt64) -> UnsafeMutablePointer<Atomic<UInt32>> {
    unsafe UnsafeMutablePointer(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: a shared page's or held event page's 32-bit word, as `word`
  }

  /// Sets bit `bit` (0–31) of the 32-bit word at `address`; true if it was set already.
  @inline(__always)
  static func testAndSet32(bit: Int, at address: UInt64) -> Bool {
    let mask: UInt32 = 1 &<< UInt32(bit & 31)
    return unsafe word32(address).pointee.bitwiseOr(mask, ordering: .sequentiallyConsistent).oldValue & mask != 0
  }

  /// Clears bit `bit` of the 32-bit word at `address`; true if it was set.
  @inline(__always)
  static func testAndClear32(bit: Int, at address: UInt64) -> Bool {
    let mask: UInt32 = 1 &<< UInt32(bit & 31)
    return unsafe word32(address).pointee.bitwiseAnd(~mask, ordering: .sequentiallyConsistent).oldValue & mask != 0
  }

  @inline(__always)
  static func test32(bit: Int, at address: UInt64) -> Bool {
    unsafe word32(address).pointee.load(ordering: .sequentiallyConsistent) & (1 &<< UInt32(bit & 31)) != 0
  }

  /// Stores `value` in the byte at `address`; returns the byte it held.
  @inline(__always)
  static func exchangeByte(at address: UInt64, _ value: UInt8) -> UInt8 {
    let byte = unsafe UnsafeMutablePointer<Atomic<UInt8>>(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: as `word`
    return unsafe byte.pointee.exchange(value, ordering: .sequentiallyConsistent)
  }

  /// The 32-bit word at `address` (4-byte aligned): a grant entry's flags and domid, read once.
  @inline(__always)
  static func load32(at address: UInt64) -> UInt32 {
    unsafe UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: UInt(address)).unsafelyUnwrapped.pointee.load(ordering: .sequentiallyConsistent)   // unsafe: as `word`
  }

  /// Replaces the 32-bit word at `address` with `desired` if it still holds `expected` (x86:
  /// `lock cmpxchg`, as Xen's guest_cmpxchg on a grant entry); returns what it held.
  @inline(__always)
  static func compareExchange32(at address: UInt64, expected: UInt32, desired: UInt32) -> UInt32 {
    let word = unsafe UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: as `word`
    return unsafe word.pointee.compareExchange(expected: expected, desired: desired, ordering: .sequentiallyConsistent).original
  }

  /// Clears the bits of `mask` in the 16-bit word at `address` (x86: `lock and`), as Xen's
  /// gnttab_clear_flags does on a grant entry's flags.
  @inline(__always)
  static func clearBits16(_ mask: UInt16, at address: UInt64) {
    let word = unsafe UnsafeMutablePointer<Atomic<UInt16>>(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: as `word`
    _ = unsafe word.pointee.bitwiseAnd(~mask, ordering: .sequentiallyConsistent)
  }

  // MARK: 32-bit words (also the FIFO ABI's event words and control block)

  /// Stores `value` in the 32-bit word at `address` (a FIFO queue's HEAD: Xen's write_atomic).
  @inline(__always)
  static func store32(at address: UInt64, _ value: UInt32) {
    unsafe word32(address).pointee.store(value, ordering: .sequentiallyConsistent)
  }
}
