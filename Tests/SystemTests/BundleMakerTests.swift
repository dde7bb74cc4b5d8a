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

  /// A frontend's disk image travels in its driver domain's ramdisk: appended as a newc archive
  /// under /images, and the disk's target (the backend's `params`) points there.
  @Test("A disk's target= image is appended to its backend's ramdisk and the disk points at it")
  func diskImageGoesIntoTheDriverDomainsRamdisk() throws {
    let hello = try SystemGuests.path("guest-hello")
    let folder = try TemporaryFolder("swiftvisor-disk-bundle")
    defer { folder.remove() }
    let initrd = String(repeating: "driver initramfs ", count: 3) + "odd"   // not a multiple of 4
    try folder.write("driver-initrd", initrd)
    let image = String(repeating: "disk block ", count: 700)
    try folder.write("disk.img", image)
    var frontend = config("web", kernel: hello)
    frontend.text += "disk = [ 'vdev=xvda, format=raw, access=rw, backend=drv, target=disk.img' ]\n"
    var driver = config("drv", kernel: hello, ramdisk: "driver-initrd")
    driver.text += "driver_domain = 1\n"
    let (bytes, bundle) = try pack([driver, frontend], in: folder)
    #expect(bundle.problems.isEmpty)
    #expect(bundle.domains[1].config.disks.first?.target == Array("/images/web-xvda.img".utf8))
    let ramdisk = Array(bytes[try #require(bundle.domains[0].ramdisk)])
    #expect(Array(ramdisk.prefix(initrd.utf8.count)) == Array(initrd.utf8))
    // The archive starts on a 4-byte boundary: the driver's initramfs, zero padding, "070701".
    let start = (initrd.utf8.count + 3) / 4 * 4
    #expect(ramdisk[initrd.utf8.count..<start].allSatisfy { $0 == 0 })
    let archive = Array(ramdisk[start...])
    let entries = try #require(Self.newcEntries(archive))
    #expect(entries.map(\.name) == ["images", "images/web-xvda.img", "TRAILER!!!"])
    #expect(entries[1].data == Array(image.utf8))
  }

  @Test("A disk image that cannot be read, or a backend without a ramdisk, is an error naming the file, line and key")
  func diskImageProblems() throws {
    let hello = try SystemGuests.path("guest-hello")
    let folder = try TemporaryFolder("swiftvisor-disk-bundle")
    defer { folder.remove() }
    try folder.write("driver-initrd", "initramfs")
    var frontend = config("web", kernel: hello)
    frontend.text += "\ndisk = [ 'vdev=xvda, format=raw, backend=drv, target=missing.img' ]\n"
    var driver = config("drv", kernel: hello, ramdisk: "driver-initrd")
    driver.text += "driver_domain = 1\n"
    #expect {
      _ = try pack([driver, frontend], in: folder)
    } throws: { error in
      let message = (error as? VisorError)?.message ?? ""
      return message.hasPrefix("web.cfg:6: disk: entry 1: target ") && message.hasSuffix("missing.img: cannot read the file")
    }
    try folder.write("missing.img", "now it exists")
    var bare = config("drv", kernel: hello)
    bare.text += "driver_domain = 1\n"
    #expect {
      _ = try pack([bare, frontend], in: folder)
    } throws: { error in
      (error as? VisorError)?.message.hasPrefix("web.cfg:6: disk: entry 1: its backend \"drv\" has no ramdisk") == true
    }
  }

  /// The entries of a newc archive (name, data), or nil if it is not one.
  static func newcEntries(_ bytes: [UInt8]) -> [(name: String, data: [UInt8])]? {
    var entries: [(name: String, data: [UInt8])] = []
    var offset = 0
    func field(_ index: Int) -> Int? {
      let start = offset + 6 + index * 8
      guard start + 8 <= bytes.count else { return nil }
      return Int(String(decoding: bytes[start..<(start + 8)], as: UTF8.self), radix: 16)
    }
    while offset + 110 <= bytes.count {
      guard Array(bytes[offset..<(offset + 6)]) == Array("070701".utf8),
            let size = field(6), let nameSize = field(11), nameSize > 0 else { return nil }
      let nameStart = offset + 110
      guard nameStart + nameSize <= bytes.count else { return nil }
      let name = String(decoding: bytes[nameStart..<(nameStart + nameSize - 1)], as: UTF8.self)
      let dataStart = (nameStart + nameSize + 3) / 4 * 4
      guard dataStart + size <= bytes.count else { return nil }
      entries.append((name, Array(bytes[dataStart..<(dataStart + size)])))
      offset = (dataStart + size + 3) / 4 * 4
      if name == "TRAILER!!!" { return entries }
    }
    return nil
  }

  /// The demo (`visor demo`): three Linux domains with one bzImage (unpacked for each), the
  /// frontends' initramfs, the driver domain's (with the demo's disk appended) and guest-spin.
  /// Before blobs were shared the bundle held the 50 MiB kernel three times.
  @Test("The demo's Linux domains share one kernel blob; the two frontends share one initramfs blob")
  func demoBundle() throws {
    let linux = try Serialized.Linux.folder()
    let spin = try SystemGuests.path("guest-spin")
    let folder = try TemporaryFolder("swiftvisor-demo-bundle")
    defer { folder.remove() }
    let domains = Demo.domains(Demo.Files(kernel: "\(linux)/vmlinuz", initramfs: "\(linux)/initrd.cpio",
                                          driverInitramfs: "\(linux)/driver-initrd.cpio", disk: "\(linux)/demo-disk.img", guest: spin))
    let (bytes, bundle) = try pack(domains.map { ($0.name, $0.config) }, in: folder)
    print("demo bundle: \(bytes.count) bytes (\(bytes.count >> 20) MiB), \(bundle.domains.count) domains, \(bundle.blobCount) blobs")
    #expect(bundle.problems.isEmpty)
    #expect(bundle.domains.map { String(decoding: $0.config.name, as: UTF8.self) } == ["linux-a", "linux-b", "spin", "drv"])
    #expect(bundle.blobCount == 4)
    let linuxA = bundle.domains[0], linuxB = bundle.domains[1], guest = bundle.domains[2], driver = bundle.domains[3]
    #expect(linuxA.kernel == linuxB.kernel && linuxA.ramdisk == linuxB.ramdisk && driver.kernel == linuxA.kernel)
    #expect(linuxA.config.disks.first?.target == Array("/images/linux-a-xvda.img".utf8))
    // Every blob once, each rounded up to a page, after one page or so of metadata.
    let blobs = [linuxA.kernel, try #require(linuxA.ramdisk), guest.kernel, try #require(driver.ramdisk)]
    let pages = blobs.map { ($0.count + 4095) / 4096 }.reduce(0, +)
    #expect(bytes.count <= (pages + 1) * 4096, "\(bytes.count) bytes for \(pages) pages of blobs")
  }
}
