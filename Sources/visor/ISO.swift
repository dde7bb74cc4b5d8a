import ArgumentParser
import Foundation
import VisorKit

struct ISO: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "iso",
    abstract: "Make a bootable ISO: GRUB loads the image with multiboot2, console on COM1.",
    discussion: "Boot it with `visor run --iso`, write it to a USB stick, or give it to any BIOS machine.")

  @OptionGroup var image: ImageOptions

  @Option(help: ArgumentHelp("Where to write the ISO (default: swiftvisor.iso in the package root).", valueName: "path"))
  var output: String?

  @Option(help: ArgumentHelp("The hypervisor's command line, written into grub.cfg.", valueName: "options"))
  var cmdline = ""

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      guard ISOBuilder.grubMkrescueInstalled else {
        throw VisorError(.toolMissing, "\(ISOBuilder.grubMkrescue) not found on PATH; \(ISOBuilder.installHint)")
      }
      let elf = try image.resolveImage()
      let destination: URL
      if let output {
        destination = URL(fileURLWithPath: output).standardizedFileURL
      } else {
        let folder = (try? image.build.builder().packageRoot)
          ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        destination = folder.appendingPathComponent("swiftvisor.iso")
      }
      try ISOBuilder().build(image: elf, cmdline: cmdline, output: destination)
      print(destination.path)
    }
  }
}
