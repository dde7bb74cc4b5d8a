#if os(none)
import GuestSupport

/// Odds and ends every test guest uses.
public enum Guest {
  /// For guests whose test means nothing without a Xen-ABI hypervisor: when booted directly by
  /// QEMU, print "no hypervisor: <name> needs Swiftvisor" and exit with the crash code (0x11).
  public static func requireHypervisor(_ name: StaticString) {
    if Xen.present { return }
    var line = Array("no hypervisor: ".utf8)
    name.withUTF8Buffer { line.append(contentsOf: $0) }
    line.append(contentsOf: " needs Swiftvisor\n".utf8)
    Console.write(line)
    Xen.shutdown(.crash)
  }

  /// Size of the static scratch area (GS_SCRATCH_SIZE, 1 MiB).
  public static var scratchBytes: Int { Int(GS_SCRATCH_SIZE) }

  /// The static scratch area as `count` elements of `T` (clamped to what fits). One area per
  /// guest: every call returns the same memory. Zeroed at boot (it is in .bss).
  public static func scratch<T>(_ type: T.Type, count: Int) -> UnsafeMutableBufferPointer<T> {
    let fits = scratchBytes / MemoryLayout<T>.stride
    let base = gs_scratch()!.bindMemory(to: T.self, capacity: fits)
    return UnsafeMutableBufferPointer(start: base, count: max(0, min(count, fits)))
  }

  /// Spins for about `iterations` PAUSE instructions.
  public static func spin(_ iterations: Int) {
    var i = 0
    while i < iterations {
      CPU.pause()
      i += 1
    }
  }
}
#endif
