import Foundation
import Hypervisor

/// Where a PV disk's bytes come from for now: the image a frontend's `target=` names, on the
/// machine where `visor` runs, travels in the bundle inside its driver domain's ramdisk. Each
/// image is appended to the backend domain's initramfs as one more newc archive (Linux unpacks
/// concatenated archives one after the other), under /images/<frontend>-<vdev>.img, and the
/// disk's `target` becomes that path, which the toolstack writes as the backend's `params`
/// (XenstoreDevices) and the driver domain's xen-hotplug puts on a loop device. The driver
/// domain serves the disk from its memory, so writes last as long as that domain runs
/// (docs/pv-devices.md, "Where a disk's bytes come from").
enum DiskImages {
  /// Packs every disk's image into its backend's ramdisk and points the disk at it. Problems
  /// name the frontend's file, the entry's line and `disk`.
  static func pack(_ domains: inout [BundleMaker.Domain]) throws(VisorError) {
    let configs = domains.map(\.config)
    var archives: [Int: NewcArchive] = [:]
    for frontend in domains.indices {
      for entry in domains[frontend].config.disks.indices {
        let disk = domains[frontend].config.disks[entry]
        guard !disk.target.isEmpty else { continue }          // an empty CD-ROM drive
        let domain = domains[frontend]
        let line = entry < domain.diskLines.count ? ":\(domain.diskLines[entry])" : ""
        let place = "\(domain.fileName)\(line): disk: entry \(entry + 1)"
        guard case .named(let name)? = try? DeviceBackends.backend(disk.backend, among: configs),
              let backend = domains.firstIndex(where: { $0.config.name == name }) else {
          throw VisorError(.badConfig, "\(place): its backend is not one of the domains given, so the image has no way there")
        }
        guard domains[backend].ramdisk != nil else {
          throw VisorError(.badConfig, "\(place): its backend \"\(String(decoding: name, as: UTF8.self))\" has no ramdisk to carry the image (the driver domain's initramfs: scripts/fetch-linux)")
        }
        let text = String(decoding: disk.target, as: UTF8.self)
        let url = text.hasPrefix("/") ? URL(fileURLWithPath: text) : domain.folder.appendingPathComponent(text)
        guard let data = try? Data(contentsOf: url) else {
          throw VisorError(.badConfig, "\(place): target \(url.path): cannot read the file")
        }
        let file = fileName(frontend: domain.config.name, vdev: disk.vdev)
        archives[backend, default: NewcArchive()].add(directory: "images")
        archives[backend, default: NewcArchive()].add(file: "images/\(file)", bytes: Array(data))
        domains[frontend].config.disks[entry].target = Array("/images/\(file)".utf8)
      }
    }
    for (backend, archive) in archives {
      var ramdisk = domains[backend].ramdisk ?? []
      // Each archive starts on a 4-byte boundary, as the kernel's unpacker expects.
      while ramdisk.count % 4 != 0 { ramdisk.append(0) }
      ramdisk.append(contentsOf: archive.finished())
      domains[backend].ramdisk = ramdisk
    }
  }

  /// "<frontend>-<vdev>.img", with any byte that is not a letter, digit, '-' or '_' as '_'.
  static func fileName(frontend: [UInt8], vdev: [UInt8]) -> String {
    let kept = (frontend + [UInt8(ascii: "-")] + vdev).map { byte -> UInt8 in
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
        byte
      default: UInt8(ascii: "_")
      }
    }
    return String(decoding: kept, as: UTF8.self) + ".img"
  }
}

/// A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it: a 110-byte
/// ASCII header per entry, the name with its NUL padded to 4 bytes, the data padded to 4 bytes,
/// and a TRAILER!!! entry at the end. Everything is owned by root.
struct NewcArchive {
  private(set) var bytes: [UInt8] = []
  private var names: Set<String> = []
  private var inode: UInt32 = 1

  mutating func add(directory name: String) {
    guard names.insert(name).inserted else { return }
    entry(name, mode: 0o040755, links: 2, data: [])
  }

  mutating func add(file name: String, bytes data: [UInt8]) {
    names.insert(name)
    entry(name, mode: 0o100644, links: 1, data: data)
  }

  func finished() -> [UInt8] {
    var archive = self
    archive.entry("TRAILER!!!", mode: 0, links: 1, data: [], inode: 0)
    return archive.bytes
  }

  private mutating func entry(_ name: String, mode: UInt32, links: UInt32, data: [UInt8], inode given: UInt32? = nil) {
    let nameBytes = Array(name.utf8)
    let fields: [UInt32] = [
      given ?? inode, mode, 0, 0, links, 0, UInt32(data.count), 0, 0, 0, 0, UInt32(nameBytes.count + 1), 0,
    ]
    if given == nil { inode += 1 }
    bytes.append(contentsOf: Array("070701".utf8))
    for field in fields { bytes.append(contentsOf: Array(String(format: "%08X", field).utf8)) }
    bytes.append(contentsOf: nameBytes)
    bytes.append(0)
    while bytes.count % 4 != 0 { bytes.append(0) }
    bytes.append(contentsOf: data)
    while bytes.count % 4 != 0 { bytes.append(0) }
  }
}
