import XenABI

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

  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) -> HypercallOutcome {
    // XENVER_version first: it is the null hypercall guests (and benchmarks) call most.
    if command == UInt64(XenABI.VersionCommand.version.rawValue) { return .result((major << 16) | minor) }
    guard command <= UInt64(UInt32.max), let op = XenABI.VersionCommand(rawValue: UInt32(command)) else {
      return .error(.ENOSYS)
    }
    switch op {
    case .version:
      return .result((major << 16) | minor)
    case .extraversion:
      return copyOut(paddedString("-swiftvisor", size: XenABI.VersionLayout.extraversionSize), to: argument, env)
    case .compileInfo:
      let info = XenABI.VersionLayout.CompileInfo.self
      var bytes = paddedString("swiftc (Embedded Swift)", size: info.compilerSize)
      bytes += paddedString("swiftvisor", size: info.compileBySize)
      bytes += paddedString("", size: info.compileDomainSize)
      bytes += paddedString("", size: info.compileDateSize)
      return copyOut(bytes, to: argument, env)
    case .capabilities:
      return copyOut(paddedString("hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p", size: XenABI.VersionLayout.capabilitiesSize), to: argument, env)
    case .changeset:
      return copyOut(paddedString("unavailable", size: XenABI.VersionLayout.changesetSize), to: argument, env)
    case .platformParameters:
      // HYPERVISOR_VIRT_START for 64-bit guests: meaningful to PV guests only, reported as Xen does.
      return copyOut(littleEndianBytes(UInt64(0xFFFF_8000_0000_0000)), to: argument, env)
    case .getFeatures:
      // The whole structure is read first, as Xen copies it: one that would run past 2^64 is
      // -EFAULT before anything else happens.
      typealias Layout = XenABI.VersionLayout.FeatureInfo
      guard let bytes = env.read(argument, count: Layout.size),
            let index = bytes.littleEndian(UInt32.self, at: Layout.Offset.submapIndex) else { return .error(.EFAULT) }
      guard index == 0 else { return .error(.EINVAL) }          // one submap exists, as in Xen
      guard env.writeLE(features, at: argument, offset: Layout.Offset.submap) else { return .error(.EFAULT) }
      return .result(0)
    case .pagesize:
      return .result(4096)
    case .guestHandle:
      return copyOut([UInt8](repeating: 0, count: XenABI.VersionLayout.domainHandleSize), to: argument, env)
    case .commandline:
      // The hypervisor's command line is for the control domain only; Xen answers others so.
      return copyOut(paddedString("<denied>", size: XenABI.VersionLayout.commandlineSize), to: argument, env)
    case .buildID:
      return .error(.EPERM)          // as Xen, for any domain but the control domain
    default:
      return .error(.ENOSYS)
    }
  }

  private static func copyOut<E: HypercallEnvironment>(_ bytes: [UInt8], to address: UInt64, _ env: E) -> HypercallOutcome {
    env.write(address, bytes) ? .result(0) : .error(.EFAULT)
  }
}
