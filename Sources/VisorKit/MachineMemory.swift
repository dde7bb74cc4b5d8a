import Foundation
import Hypervisor

/// How much memory the emulated machine needs for a boot bundle's domains, so that nobody has to
/// work it out by hand: `visor run`, `visor demo`, the benchmarks and the tests size QEMU's `-m`
/// with it unless a size is given, and a given size that is too small is refused before QEMU
/// starts.
///
/// What a boot needs, in MiB:
/// - **the hypervisor**: its image, its 32 MiB heap (8 MiB of its own objects, 24 MiB for
///   xenstore's data), per-pcpu stacks and tables, the firmware's first MiB and ACPI tables
///   (`hypervisorMiB`);
/// - **the bundle**: QEMU loads it into RAM and the hypervisor keeps it for the whole run (a
///   domain with `on_reboot = "restart"` is rebuilt from it);
/// - **each domain**: its `maxmem` (or `memory`), what it may populate; plus what the hypervisor
///   spends on it, sized as Xen sizes a domain's paging pool: 1 MiB per vcpu and 4 KiB per MiB of
///   its memory, and 1 MiB more for its special pages (console ring, start info, ACPI tables).
///
/// The machine gets that sum and an eighth more (buddy-allocator fragmentation: a domain's memory
/// comes in 2 MiB blocks), rounded up to a multiple of `granuleMiB`.
public struct MachineMemory: Sendable, Equatable, CustomStringConvertible {
  /// What the hypervisor needs before any domain.
  public static let hypervisorMiB = 40
  /// The machine's size is a multiple of this.
  public static let granuleMiB = 32
  /// A machine without a boot bundle (the hypervisor alone, or a module that is not a bundle).
  public static let withoutDomainsMiB = 512

  public var domainsMiB: Int
  public var perDomainMiB: Int
  public var bundleMiB: Int
  public var domainCount: Int

  /// The least that can work: every part, no slack.
  public var minimumMiB: Int { Self.hypervisorMiB + bundleMiB + domainsMiB + perDomainMiB }

  /// What the machine gets when no size is given.
  public var recommendedMiB: Int {
    let withSlack = minimumMiB + (minimumMiB + 7) / 8
    return (withSlack + Self.granuleMiB - 1) / Self.granuleMiB * Self.granuleMiB
  }

  public var description: String {
    "\(domainCount) domain(s) \(domainsMiB) MiB, the hypervisor's share for them \(perDomainMiB) MiB, "
      + "the bundle \(bundleMiB) MiB, the hypervisor \(Self.hypervisorMiB) MiB"
  }

  /// The need of the domains in `bundle` (a boot bundle's bytes). Domains the hypervisor would
  /// refuse (the parser's problems) are not counted.
  public static func need(bundle: [UInt8]) throws(VisorError) -> MachineMemory {
    let parsed: BootBundle
    do throws(BundleError) {
      parsed = try BootBundle.parse(bundle)
    } catch {
      throw VisorError(.badConfig, "the boot bundle is unusable: \(error)")
    }
    var need = MachineMemory(domainsMiB: 0, perDomainMiB: 0, bundleMiB: (bundle.count + (1 << 20) - 1) >> 20, domainCount: 0)
    for domain in parsed.domains {
      let config = domain.config
      let memory = max(config.memoryMiB, config.maxMemoryMiB ?? 0)
      let vcpus = max(config.vcpus, config.maxVCPUs ?? 0)
      need.domainsMiB += memory
      need.perDomainMiB += vcpus + (memory + 255) / 256 + 1
      need.domainCount += 1
    }
    return need
  }

  /// The need of the bundle in the file at `path`, or nil when the file is not a boot bundle
  /// (its first bytes are not the bundle's magic).
  public static func need(bundleAt path: String) throws(VisorError) -> MachineMemory? {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw VisorError(.usage, "cannot read \(path)")
    }
    guard data.count >= BootBundle.Layout.magic.count, Array(data.prefix(BootBundle.Layout.magic.count)) == BootBundle.Layout.magic else {
      return nil
    }
    return try need(bundle: Array(data))
  }
}

extension RunConfiguration {
  /// Sets `memoryMiB` when it is nil: what the boot bundle (`initrd`) needs
  /// (`MachineMemory.recommendedMiB`), or `MachineMemory.withoutDomainsMiB` without one. A size
  /// that was given must hold the bundle's domains (`MachineMemory.minimumMiB`); a smaller one is
  /// an error that says how much they need.
  /// Returns the bundle's need (nil without a bundle), for a caller that reports it.
  @discardableResult
  public mutating func sizeMemory() throws(VisorError) -> MachineMemory? {
    let need = try initrd.flatMap { path throws(VisorError) in try MachineMemory.need(bundleAt: path) }
    guard let given = memoryMiB else {
      memoryMiB = need?.recommendedMiB ?? MachineMemory.withoutDomainsMiB
      return need
    }
    if let need, given < need.minimumMiB {
      throw VisorError(.usage, "--memory \(given) MiB is too small for the boot bundle: it needs at least \(need.minimumMiB) MiB "
        + "(\(need)); \(need.recommendedMiB) MiB is what visor gives it without --memory")
    }
    return need
  }
}
