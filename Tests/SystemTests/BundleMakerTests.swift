import Foundation
import Hypervisor
import Testing
import VisorKit

/// The boot bundle `BundleMaker` writes on the host (no QEMU): a kernel or ramdisk that several
/// domains use is stored once, whatever path names it.
@Suite("Boot bundles on the host") struct BundleMakerTests {
  /// Packs the configuration texts as `visor run` would and parses the bundle back.
  private func pack(_ configs: [(name: String, text: String)], in folder: TemporaryFolder) throws -> (bytes: [UInt8], bundle: BootBundle) {
    let url = try BundleMaker.make(configs: configs, in: folder.url, bundleName: "bundle.bin")
    let bytes = Array(try Data(contentsOf: url))
    return (bytes, try BootBundle.parse(bytes))
  }

  private func config(_ name: String, kernel: String, ramdisk: String? = nil) -> (name: String, text: String) {
    var text = """
      name = "\(name)"
      type = "pvh"
      memory = 32
      kernel = "\(kernel)"

      """
    if let ramdisk { text += "ramdisk = \"\(ramdisk)\"\n" }
    return (name, text)
  }

  @Test("One kernel named by two paths, and a copy of it, is one blob; so is one ramdisk in two files")
  func identicalFilesAreStoredOnce() throws {
    let hello = try SystemGuests.path("guest-hello")
    let spin = try SystemGuests.path("guest-spin")
    let folder = try TemporaryFolder("swiftvisor-shared-bundle")
    defer { folder.remove() }
    try FileManager.default.copyItem(atPath: hello, toPath: folder.url.appendingPathComponent("hello-copy").path)
    let initrd = String(repeating: "ramdisk bytes ", count: 1000)
    try folder.write("initrd-a", initrd)
    try folder.write("initrd-b", initrd)
    let helloFolder = URL(fileURLWithPath: hello).deletingLastPathComponent().path
    let (bytes, bundle) = try pack([
      config("a", kernel: hello, ramdisk: "initrd-a"),
      config("b", kernel: "\(helloFolder)/../\(URL(fileURLWithPath: helloFolder).lastPathComponent)/guest-hello"),
      config("c", kernel: "hello-copy", ramdisk: "\(folder.url.path)/initrd-b"),
      config("d", kernel: spin),
    ], in: folder)
    #expect(bundle.problems.isEmpty)
    #expect(bundle.domains.count == 4)
    // guest-hello, the ramdisk, guest-spin.
    #expect(bundle.blobCount == 3)
    let a = bundle.domains[0], b = bundle.domains[1], c = bundle.domains[2], d = bundle.domains[3]
    #expect(b.kernel == a.kernel && c.kernel == a.kernel)
    #expect(c.ramdisk == a.ramdisk && b.ramdisk == nil)
    #expect(d.kernel != a.kernel && !d.kernel.overlaps(a.kernel))
    #expect(Array(bytes[a.kernel]) == Array(try Data(contentsOf: URL(fileURLWithPath: hello))))
    #expect(Array(bytes[d.kernel]) == Array(try Data(contentsOf: URL(fileURLWithPath: spin))))
    #expect(Array(bytes[try #require(a.ramdisk)]) == Array(initrd.utf8))
  }

  @Test("Ramdisks of the same size but different bytes stay two blobs")
  func sameSizeDifferentBytes() throws {
    let hello = try SystemGuests.path("guest-hello")
    let folder = try TemporaryFolder("swiftvisor-shared-bundle")
    defer { folder.remove() }
    try folder.write("ramdisk-1", String(repeating: "x", count: 8192))
    try folder.write("ramdisk-2", String(repeating: "x", count: 8191) + "y")
    let (bytes, bundle) = try pack([
      config("a", kernel: hello, ramdisk: "ramdisk-1"), config("b", kernel: hello, ramdisk: "ramdisk-2"),
    ], in: folder)
    #expect(bundle.problems.isEmpty)
    #expect(bundle.blobCount == 3)
    let first = try #require(bundle.domains[0].ramdisk), second = try #require(bundle.domains[1].ramdisk)
    #expect(first != second)
    #expect(bytes[second].last == UInt8(ascii: "y") && bytes[first].last == UInt8(ascii: "x"))
  }

  /// The demo (`visor demo`): two Linux domains with one bzImage (unpacked for each) and one
  /// initramfs, and guest-spin. Before blobs were shared the bundle held the 50 MiB kernel twice.
  @Test("The demo's two Linux domains share one kernel blob and one initramfs blob")
  func demoBundle() throws {
    let linux = try Serialized.Linux.folder()
    let spin = try SystemGuests.path("guest-spin")
    let folder = try TemporaryFolder("swiftvisor-demo-bundle")
    defer { folder.remove() }
    let domains = Demo.domains(kernel: "\(linux)/vmlinuz", initramfs: "\(linux)/initrd.cpio", guest: spin)
    let (bytes, bundle) = try pack(domains.map { ($0.name, $0.config) }, in: folder)
    print("demo bundle: \(bytes.count) bytes (\(bytes.count >> 20) MiB), \(bundle.domains.count) domains, \(bundle.blobCount) blobs")
    #expect(bundle.problems.isEmpty)
    #expect(bundle.domains.map { String(decoding: $0.config.name, as: UTF8.self) } == ["linux-a", "linux-b", "spin"])
    #expect(bundle.blobCount == 3)
    let linuxA = bundle.domains[0], linuxB = bundle.domains[1], guest = bundle.domains[2]
    #expect(linuxA.kernel == linuxB.kernel && linuxA.ramdisk == linuxB.ramdisk)
    // Every blob once, each rounded up to a page, after one page or so of metadata.
    let blobs = [linuxA.kernel, try #require(linuxA.ramdisk), guest.kernel]
    let pages = blobs.map { ($0.count + 4095) / 4096 }.reduce(0, +)
    #expect(bytes.count <= (pages + 1) * 4096, "\(bytes.count) bytes for \(pages) pages of blobs")
  }
}
