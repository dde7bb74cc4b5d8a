#if os(none)
import Hypervisor
import Support
import Synchronization

/// The allocation entry points Embedded Swift calls (posix_memalign and free in runtime.c forward
/// here), served by Hypervisor's Heap. The heap starts on a static arena (runtime.c) so Swift can allocate from the
/// very first line of `main`; Boot adds a larger region from the frame allocator later.
///
/// The lock is a bare atomic flag, not a SpinLock object: creating an object would allocate, and
/// this is the allocator.
nonisolated(unsafe) var hypervisorHeap = Heap()
nonisolated(unsafe) var heapReady = false
let heapLock = Atomic<Bool>(false)

@inline(__always) private func lockHeap() {
  while heapLock.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged == false {
    hv_pause()
  }
}
@inline(__always) private func unlockHeap() { heapLock.store(false, ordering: .releasing) }

@c(hv_heap_allocate)
public func heapAllocate(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ alignment: Int, _ size: Int) -> Int32 {
  lockHeap()
  if !heapReady {
    if let arena = UnsafeMutableRawPointer(bitPattern: UInt(hv_early_heap_start())) {
      unsafe hypervisorHeap.addRegion(start: arena, size: Int(hv_early_heap_size()))
    }
    heapReady = true
  }
  let pointer = unsafe hypervisorHeap.allocate(size: max(size, 1), alignment: max(alignment, 16))
  unlockHeap()
  guard let pointer else { return 12 }   // ENOMEM
  unsafe result.pointee = pointer
  return 0
}

@c(hv_heap_free)
public func heapFree(_ pointer: UnsafeMutableRawPointer?) {
  guard let pointer else { return }
  lockHeap()
  unsafe hypervisorHeap.free(pointer)
  unlockHeap()
}

/// Grows the heap with memory from the frame allocator.
func growHeap(physical address: UInt64, bytes: Int) {
  guard let start = UnsafeMutableRawPointer(bitPattern: UInt(address)) else { return }
  lockHeap()
  unsafe hypervisorHeap.addRegion(start: start, size: bytes)
  unlockHeap()
}

func heapBytesInUse() -> Int {
  lockHeap()
  defer { unlockHeap() }
  return hypervisorHeap.bytesInUse
}
#endif
