/// Everything that describes one QEMU run of the hypervisor.
public struct RunConfiguration: Sendable, Equatable {
  /// What QEMU boots.
  public enum Boot: Sendable, Equatable {
    /// The ELF image, loaded directly through its PVH entry note (`-kernel`).
    case kernel(path: String)
    /// A bootable ISO (GRUB, multiboot2), from `ISOBuilder` (`-cdrom`). Its command line is in its grub.cfg.
    case cdrom(path: String)
  }

  /// The emulated chipset. Both boot the image; q35 is the default (PCIe, like current hardware).
  public enum Machine: String, Sendable, CaseIterable {
    case q35, pc
  }

  /// QEMU's `-cpu`: AMD-V with nested paging. QEMU 7.2's TCG refuses `tsc-deadline` and `invtsc`
  /// ("TCG doesn't support requested feature"), so they are not requested.
  public static let defaultCPU = "qemu64,+svm,+npt"
  /// TCP port of QEMU's gdb stub with `-s`.
  public static let gdbPort = 1234

  public var boot: Boot
  /// Number of physical CPUs (`-smp`). Three: under QEMU's TCG pcpu 0 runs no guests
  /// (`cpu0guests=auto`, docs/known-issues.md), which leaves two for them.
  public var smp: Int = 3
  /// Memory of the emulated machine, in MiB (`-m`); nil: what the boot bundle's domains need
  /// (`sizeMemory()`, `MachineMemory`), which `QEMURunner.run` works out before QEMU starts.
  public var memoryMiB: Int?
  /// Seconds after which QEMU is killed; nil for no limit.
  public var timeout: Double? = 120
  /// Start QEMU's gdb stub on port 1234 and wait for the debugger before the first instruction (`-s -S`).
  public var gdb = false
  /// The hypervisor's command line (`-append`); only for `.kernel`.
  public var cmdline = ""
  /// A module handed to the hypervisor (`-initrd`), e.g. the boot bundle; only for `.kernel`.
  public var initrd: String?
  /// Deterministic time: the guest's TSC counts executed instructions (`-icount shift=0,sleep=off -rtc clock=vm`).
  public var icount = false
  public var machine: Machine = .q35
  public var cpu: String = RunConfiguration.defaultCPU
  /// The serial console is a terminal a person types into (`visor demo`): Ctrl-C goes to the
  /// guest as a byte instead of ending QEMU (`-chardev stdio,signal=off`).
  public var interactiveConsole = false
  /// Appended verbatim after everything else.
  public var extraQEMUArguments: [String] = []
  /// What to type on the serial line, each chunk once a console line containing its `after`
  /// text has appeared (`SerialInput`). Empty: QEMU's stdin is /dev/null.
  public var input: [SerialInput] = []

  public init(boot: Boot) {
    self.boot = boot
  }

  public init(kernel path: String) {
    self.boot = .kernel(path: path)
  }

  /// A benchmark's boot: `image` with the boot bundle `bundle` on one pcpu, so that what is
  /// measured shares it with nothing but its own partners; under `icount` the TSC counts
  /// instructions. At most ten minutes.
  public static func benchmark(image: String, bundle: String, icount: Bool) -> RunConfiguration {
    var configuration = RunConfiguration(kernel: image)
    configuration.smp = 1
    configuration.initrd = bundle
    configuration.icount = icount
    configuration.timeout = 600
    return configuration
  }

  /// Checks values that QEMU would reject or misread.
  public func validate() throws(VisorError) {
    guard (1...255).contains(smp) else {
      throw VisorError(.usage, "smp must be between 1 and 255 (got \(smp))")
    }
    if let memoryMiB, memoryMiB < 32 {
      throw VisorError(.usage, "memory must be at least 32 MiB (got \(memoryMiB))")
    }
    if let timeout, !(timeout > 0) {
      throw VisorError(.usage, "timeout must be positive (got \(timeout))")
    }
    if case .cdrom = boot {
      if !cmdline.isEmpty {
        throw VisorError(.usage, "an ISO boot takes its command line from grub.cfg: pass it when the ISO is built")
      }
      if initrd != nil {
        throw VisorError(.usage, "an ISO boot cannot take an initrd")
      }
    }
  }
}
