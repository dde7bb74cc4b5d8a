import Foundation

/// Makes a bootable ISO with GRUB (BIOS, multiboot2) around the image, for the boot path that real
/// machines use: `grub-mkrescue` with a grub.cfg that boots `/boot/swiftvisor` at once and puts
/// GRUB's own messages on the same serial port as the hypervisor's.
public struct ISOBuilder: Sendable {
  public static let grubMkrescue = "grub-mkrescue"
  /// GRUB's BIOS modules (Debian's grub-pc-bin); grub-mkrescue needs them for a BIOS-bootable ISO.
  public static let grubBIOSModules = "/usr/lib/grub/i386-pc"
  public static let installHint = "install them: apt-get install grub-pc-bin grub-common xorriso mtools (or run scripts/setup)"

  public init() {}

  /// Whether `grub-mkrescue` is on PATH.
  public static var grubMkrescueInstalled: Bool { HostTools.find(grubMkrescue) != nil }

  /// grub.cfg: no menu delay, console on COM1, multiboot2 boot of the image with `cmdline`.
  public static func grubConfig(cmdline: String) -> String {
    let words = cmdline.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map { grubQuote(String($0)) }
    return """
      set timeout=0
      set default=0
      serial --unit=0 --speed=115200
      terminal_input serial
      terminal_output serial
      menuentry "Swiftvisor" {
        multiboot2 /boot/swiftvisor\(words.isEmpty ? "" : " " + words.joined(separator: " "))
        boot
      }

      """
  }

  /// Quotes one word for GRUB's shell-like script syntax when it contains special characters.
  public static func grubQuote(_ word: String) -> String {
    let plain = word.unicodeScalars.allSatisfy {
      CharacterSet.alphanumerics.contains($0) || "=,.:/_-+@%".unicodeScalars.contains($0)
    }
    if plain && !word.isEmpty { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }

  /// Builds `output` from `image` (an ELF with a multiboot2 header) and returns its URL.
  @discardableResult
  public func build(image: URL, cmdline: String = "", output: URL) throws(VisorError) -> URL {
    let fm = FileManager.default
    guard let mkrescue = HostTools.find(Self.grubMkrescue) else {
      throw VisorError(.toolMissing, "\(Self.grubMkrescue) not found on PATH; \(Self.installHint)")
    }
    guard HostTools.find("xorriso") != nil else {
      throw VisorError(.toolMissing, "xorriso not found on PATH (grub-mkrescue needs it); \(Self.installHint)")
    }
    guard fm.fileExists(atPath: Self.grubBIOSModules) else {
      throw VisorError(.toolMissing, "GRUB's BIOS modules (\(Self.grubBIOSModules)) are missing; \(Self.installHint)")
    }
    guard fm.isReadableFile(atPath: image.path) else {
      throw VisorError(.usage, "cannot read \(image.path): build the image first (visor build)")
    }
    let staging = fm.temporaryDirectory.appendingPathComponent("swiftvisor-iso-\(UUID().uuidString)")
    defer { try? fm.removeItem(at: staging) }
    do {
      let grubDir = staging.appendingPathComponent("boot/grub")
      try fm.createDirectory(at: grubDir, withIntermediateDirectories: true)
      try fm.copyItem(at: image, to: staging.appendingPathComponent("boot/swiftvisor"))
      try Self.grubConfig(cmdline: cmdline).write(
        to: grubDir.appendingPathComponent("grub.cfg"), atomically: true, encoding: .utf8)
      try fm.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
      if fm.fileExists(atPath: output.path) { try fm.removeItem(at: output) }
    } catch {
      throw VisorError(.buildFailed, "cannot prepare the ISO files: \(error.localizedDescription)")
    }
    let (status, log) = try HostTools.run(mkrescue, ["-o", output.path, staging.path])
    guard status == 0, fm.fileExists(atPath: output.path) else {
      throw VisorError(.buildFailed, "grub-mkrescue failed with status \(status):", detail: log)
    }
    return output
  }
}
