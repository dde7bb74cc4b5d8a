import Foundation
import Hypervisor

/// An ELF image on the host (the hypervisor, a guest kernel), described the way the boot
/// benchmark and `visor build` report it: its file size and what it loads. Parsing is the
/// hypervisor's own ELF loader (`Hypervisor.ELFImage`), so the host judges a file exactly as the
/// domain builder will.
public struct ImageFile: Sendable {
  public var fileSize: Int
  public var elf: Hypervisor.ELFImage

  /// Bytes the loader places in memory: the sum of PT_LOAD memsz (code, data and .bss).
  public var loadedMemorySize: UInt64 { elf.segments.reduce(0) { $0 + $1.memorySize } }
  /// Of those, the bytes that come from the file (code and data).
  public var loadedFileSize: UInt64 { elf.segments.reduce(0) { $0 + UInt64($1.fileSize) } }

  public init(path: String) throws(VisorError) {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw VisorError(.usage, "\(path): cannot read the file")
    }
    do {
      try self.init(bytes: Array(data))
    } catch {
      throw VisorError(error.exit, "\(path): \(error.message)")
    }
  }

  public init(bytes: [UInt8]) throws(VisorError) {
    fileSize = bytes.count
    do throws(ELFError) {
      elf = try Hypervisor.ELFImage.parse(bytes)
    } catch {
      throw VisorError(.badConfig, String(decoding: error.message(), as: UTF8.self))
    }
  }
}
