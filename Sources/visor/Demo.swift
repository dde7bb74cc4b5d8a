import ArgumentParser
import Foundation
import VisorKit

struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Boot the hypervisor with two Linux domains, a Linux driver domain serving them a PV disk and network, and a test guest, on an interactive console.",
    discussion: """
      Installs what is missing (scripts/setup), fetches Debian's kernel and builds the busybox \
      initramfs (scripts/fetch-linux, cached in cache/linux), builds the image and guest-spin, \
      then runs QEMU with the serial console on this terminal (visor relays it, in raw mode, and \
      restores the terminal however the demo ends). Ctrl-A three times switches the console \
      between domains and the hypervisor; q on the hypervisor ends the demo (status 0).
      """)

  @OptionGroup var image: ImageOptions

  func run() throws {
    try reportingErrors { () throws(VisorError) in
      let root = try image.build.builder().packageRoot
      try runScript("scripts/setup", in: root)
      let linux = try fetchLinux(in: root)
      let runner = try QEMURunner.locate()
      let elf = try image.resolveImage()
      let guestBuilder = ImageBuilder.forGuest("guest-spin", packageRoot: root)
      note("building guest-spin: swift \(shellQuoted(guestBuilder.arguments))")
      let guest = try guestBuilder.build()

      let folder = FileManager.default.temporaryDirectory.appendingPathComponent("visor-demo-\(getpid())")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: folder) }
      let domains = Demo.domains(Demo.Files(kernel: linux.kernel, initramfs: linux.initramfs,
                                            driverInitramfs: linux.driverInitramfs, disk: linux.disk, guest: guest.path))
      let bundle = try BundleMaker.make(configs: domains.map { ($0.name, $0.config) }, in: folder, bundleName: "bundle.bin")

      var configuration = RunConfiguration(kernel: elf.path)
      configuration.smp = Demo.pcpus
      configuration.cmdline = Demo.cmdline
      configuration.initrd = bundle.path
      configuration.timeout = nil
      configuration.interactiveConsole = true
      try configuration.sizeMemory()
      try configuration.validate()
      let command = InteractiveConsole.command(qemu: runner.qemuPath, arguments: QEMURunner.arguments(for: configuration))
      note(Demo.banner)
      note(shellQuoted(command))
      // visor keeps the terminal and relays it to QEMU's stdin and stdout (InteractiveConsole).
      let end = try InteractiveConsole.run(command)
      let exit = VisorExit.classify(qemuStatus: end.status, signaled: end.signaled)
      let (success, message) = Demo.ending(exit)
      guard success else { throw VisorError(exit, message) }
      note(message)
    }
  }

  /// scripts/fetch-linux: downloads what is missing, and names the cached kernel, the two
  /// initramfs images and the demo's disk image.
  func fetchLinux(in root: URL) throws(VisorError) -> (kernel: String, initramfs: String, driverInitramfs: String, disk: String) {
    let linux = try runScript("scripts/fetch-linux", in: root)
    let files = linux.split(separator: "\n").map(String.init)
    guard let kernel = files.first(where: { $0.hasSuffix("/vmlinuz") }),
          let initramfs = files.first(where: { $0.hasSuffix("/initrd.cpio") }),
          let driverInitramfs = files.first(where: { $0.hasSuffix("/driver-initrd.cpio") }),
          let disk = files.first(where: { $0.hasSuffix("/demo-disk.img") }) else {
      throw VisorError(.checkFailed, "scripts/fetch-linux did not name a kernel, the two initramfs images and the demo's disk (it printed: \(linux))")
    }
    return (kernel, initramfs, driverInitramfs, disk)
  }

  /// Runs a script of the package and returns its standard output (its standard error goes to
  /// the terminal, so its progress shows).
  @discardableResult
  func runScript(_ script: String, in root: URL) throws(VisorError) -> String {
    let process = Process()
    process.executableURL = root.appendingPathComponent(script)
    process.currentDirectoryURL = root
    let output = Pipe()
    process.standardOutput = output
    do { try process.run() } catch { throw VisorError(.checkFailed, "cannot run \(script): \(error)") }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw VisorError(.checkFailed, "\(script) failed (status \(process.terminationStatus))") }
    return String(decoding: data, as: UTF8.self)
  }
}
