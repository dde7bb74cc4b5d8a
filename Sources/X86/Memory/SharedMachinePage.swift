#if os(none)
import Hypervisor

/// A page the hypervisor shares with a guest (a console or xenstore ring), as `SharedPage`,
/// over the identity map: `base` is its machine address, which its backend holds a reference on
/// for as long as it keeps the address.
struct SharedMachinePage: SharedPage {
  let base: UInt64
  // The word accessors are inlined: each is a bounds check and one access, and a ring's fast
  // path (XenstoreService.answerLoneRead) makes a dozen of them.
  @inline(__always) func load32(at offset: Int) -> UInt32 { PhysicalMemory.read32(base + UInt64(offset)) ?? 0 }
  @inline(__always) func store32(_ value: UInt32, at offset: Int) { _ = PhysicalMemory.write32(base + UInt64(offset), value) }
  @inline(__always) func load8(at offset: Int) -> UInt8 { PhysicalMemory.ownRead8(base + UInt64(offset)) }
  @inline(__always) func store8(_ value: UInt8, at offset: Int) { PhysicalMemory.ownWrite8(base + UInt64(offset), value) }
  func appendBytes(at offset: Int, count: Int, to bytes: inout [UInt8]) {
    if !PhysicalMemory.append(from: base + UInt64(offset), count: count, to: &bytes) {
      bytes.append(contentsOf: repeatElement(0, count: count))
    }
  }
  func copyBytes(at offset: Int, count: Int, into bytes: inout [UInt8], at index: Int) -> Bool {
    PhysicalMemory.copy(from: base + UInt64(offset), count: count, into: &bytes, at: index)
  }
  @inline(__always) func load128(at offset: Int) -> (UInt64, UInt64) { PhysicalMemory.readUnaligned128(base + UInt64(offset)) ?? (0, 0) }
  @inline(__always) func store128(_ words: (UInt64, UInt64), at offset: Int) { PhysicalMemory.writeUnaligned128(base + UInt64(offset), words) }
  func storeBytes(_ bytes: ArraySlice<UInt8>, at offset: Int) {
    _ = PhysicalMemory.write(bytes, to: base + UInt64(offset))
  }
}
#endif
