import XenABI
import XenPublic

/// HYPERVISOR_xen_version: who the hypervisor says it is, and which optional features it offers.
enum XenVersion {
  static let major: Int64 = 4
  static let minor: Int64 = 17

  /// XENFEAT_* bits that are really true of a PVH domain here: its page tables are its own
  /// (writable_page_tables), the hypervisor translates its physical addresses
  /// (auto_translated_physmap), events arrive on the vector set with HVM_PARAM_CALLBACK_IRQ
  /// (hvm_callback_vector), and pvclock and the vcpu timers are there (hvm_safe_pvclock: Linux
  /// then takes its clock and timers from Xen instead of calibrating against a PIT it lacks).
  static let features: UInt32 = XenABI.Feature.writablePageTables.submapBit | XenABI.Feature.autoTranslatedPhysmap.submapBit
    | XenABI.Feature.hvmCallbackVector.submapBit | XenABI.Feature.hvmSafePVClock.submapBit

  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    // XENVER_version first: it is the null hypercall guests (and benchmarks) call most.
    if command == UInt64(XenABI.VersionCommand.version.rawValue) { return .result((major << 16) | minor) }
    guard command <= UInt64(UInt32.max), let op = XenABI.VersionCommand(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    switch op {
    case .version:
      return .result((major << 16) | minor)
    case .extraversion:
      try env.copyOut(bytes: text("-swiftvisor", sizedAs: xen_extraversion.self), to: argument)
    case .compileInfo:
      var bytes = paddedString("swiftc (Embedded Swift)", size: 64)           // compiler
      bytes += paddedString("swiftvisor", size: 16)                          // compile_by
      bytes += paddedString("", size: 32) + paddedString("", size: 32)       // compile_domain, _date
      try env.copyOut(bytes: bytes, to: argument)
    case .capabilities:
      try env.copyOut(bytes: text("hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p", sizedAs: xen_capabilities_info.self), to: argument)
    case .changeset:
      try env.copyOut(bytes: text("unavailable", sizedAs: xen_changeset_info.self), to: argument)
    case .platformParameters:
      // HYPERVISOR_VIRT_START for 64-bit guests: meaningful to PV guests only, reported as Xen does.
      // As Xen for an HVM/PVH vcpu: a 32-bit caller hears 0.
      try env.copyOut(xen_platform_parameters(virt_start: env.abi == .native ? 0xFFFF_8000_0000_0000 : 0), to: argument)
    case .getFeatures:
      // The whole structure is copied in first, as Xen copies it: one that would run past 2^64
      // is -EFAULT before anything else happens.
      var info = try env.copyIn(xen_feature_info.self, from: argument)
      guard info.submap_idx == 0 else { throw .EINVAL }          // one submap exists, as in Xen
      info.submap = features
      try env.copyOut(info, to: argument)
    case .pagesize:
      return .result(4096)
    case .guestHandle:
      // The domain's uuid (the toolstack's /vm/<uuid>), as Xen answers from d->handle.
      try env.copyOut(bytes: env.domain.handle, to: argument)
    case .commandline:
      // The hypervisor's command line is for the control domain only; Xen answers others so.
      try env.copyOut(bytes: text("<denied>", sizedAs: xen_commandline.self), to: argument)
    case .buildID:
      throw .EPERM          // as Xen, for any domain but the control domain
    }
    return .result(0)
  }

  /// `string` NUL-padded to the size of the version.h structure that carries it.
  private static func text<T>(_ string: StaticString, sizedAs type: T.Type) -> [UInt8] {
    paddedString(string, size: MemoryLayout<T>.size)
  }
}
