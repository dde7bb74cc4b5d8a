import Synchronization

/// The words of frames the hypervisor allocated for itself: nested page tables and the frame
/// table. On the machine a frame's address is a pointer (the identity map); in host tests the
/// allocator's span is host memory, so the same code runs there. Nothing here takes an address
/// from a guest: every one comes from `Frames` or from a table the hypervisor filled.
///
/// This is the common layer's one door to machine memory (`SharedWords` is the other, for the
/// pages shared with guests); the arch layer's `PhysicalMemory` checks each address instead.
@usableFromInline
enum FrameMemory {
  @inlinable @inline(__always)
  static func read64(_ address: UInt64) -> UInt64 {
    unsafe UnsafePointer<UInt64>(bitPattern: UInt(address)).unsafelyUnwrapped.pointee   // unsafe: a word of a frame the hypervisor allocated
  }

  @inlinable @inline(__always)
  static func write64(_ address: UInt64, _ value: UInt64) {
    unsafe UnsafeMutablePointer<UInt64>(bitPattern: UInt(address)).unsafelyUnwrapped.pointee = value   // unsafe: a word of a frame the hypervisor allocated
  }

  /// Zeroes `count` bytes (a multiple of 8) at `address`.
  static func zero(_ address: UInt64, count: Int) {
    let words = unsafe UnsafeMutablePointer<UInt64>(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: frames the hypervisor allocated
    unsafe words.update(repeating: 0, count: count / 8)
  }

  /// The frame table's words, as atomics: owners and counts change on several pcpus at once.
  @inline(__always)
  static func atomicWord(_ address: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
    unsafe UnsafeMutablePointer(bitPattern: UInt(address)).unsafelyUnwrapped   // unsafe: a frame table word, inside the table set up at boot
  }

  /// Copies `count` bytes between two guest frames the caller keeps alive (GNTTABOP_copy: both
  /// translated and held under their p2m locks, each range inside its 4 KiB frame).
  static func copy(from source: UInt64, to destination: UInt64, count: Int) {
    let from = unsafe UnsafeRawPointer(bitPattern: UInt(source)).unsafelyUnwrapped   // unsafe: a guest frame held for the copy, see above
    let to = unsafe UnsafeMutableRawPointer(bitPattern: UInt(destination)).unsafelyUnwrapped   // unsafe: as `from`
    unsafe to.copyMemory(from: from, byteCount: count)
  }
}
