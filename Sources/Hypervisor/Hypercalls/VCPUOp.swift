import XenABI

/// HYPERVISOR_vcpu_op: bringing a domain's other vcpus up and down, and asking about them.
enum VCPUOp {
  static func handle<E: HypercallEnvironment>(command: UInt64, target: UInt64, argument: UInt64, _ env: E) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.VCPUOp(rawValue: UInt32(command)) else {
      return .error(.ENOSYS)
    }
    let vcpus = env.domain.vcpus
    guard target < UInt64(vcpus.count) else { return .error(.ENOENT) }
    let vcpu = vcpus[Int(target)]
    switch op {
    case .isUp:
      return .result(vcpu.runState == .down ? 0 : 1)
    case .initialise:
      guard vcpu.runState == .down, !vcpu.initialised else { return .error(.EEXIST) }
      // struct vcpu_hvm_context: mode u32, pad u32, then the larger of the 32/64-bit register sets
      // (120 bytes): 128 in all.
      guard let context = env.read(argument, count: 128) else { return .error(.EFAULT) }
      if let errno = env.initialiseVCPU(vcpu, context: context) { return .error(errno) }
      vcpu.initialised = true
      return .result(0)
    case .up:
      guard vcpu.initialised else { return .error(.EINVAL) }
      if vcpu.runState == .down { Scheduler.policy?.wake(vcpu) }
      return .result(0)
    case .down:
      // Xen lets a guest take any of its vcpus down; here a vcpu takes itself down (Linux's
      // CPU hot-unplug does exactly that), and the others get -EPERM until remote down exists.
      guard vcpu === env.vcpu else { return .error(.EPERM) }
      return .down(0)
    case .setSingleshotTimer:
      guard vcpu === env.vcpu else { return .error(.EINVAL) }      // Xen: a vcpu's own only
      typealias Layout = XenABI.VCPULayout.SetSingleshotTimer
      guard let bytes = env.read(argument, count: Layout.size),
            let deadline = bytes.littleEndian(UInt64.self, at: Layout.Offset.timeoutAbsoluteNanoseconds),
            let flags = bytes.littleEndian(UInt32.self, at: Layout.Offset.flags) else { return .error(.EFAULT) }
      // A deadline already past fires at once (Linux 6.1 BUGs on any error here); only a guest
      // that asks with VCPU_SSHOTTMR_future hears -ETIME.
      if flags & Layout.futureFlag != 0 && deadline < SystemTime.now() { return .error(.ETIME) }
      VCPUTimers.setSingleshot(vcpu, deadline: deadline)
      return .result(0)
    case .stopSingleshotTimer:
      guard vcpu === env.vcpu else { return .error(.EINVAL) }
      VCPUTimers.stopSingleshot(vcpu)
      return .result(0)
    case .setPeriodicTimer:
      guard let period = env.readLE(UInt64.self, at: argument) else { return .error(.EFAULT) }
      // Xen: at least 1 ms (MILLISECS(1)), at most STIME_DELTA_MAX (2^62 - 1 ns).
      guard period >= VCPUTimers.minimumPeriod, period <= VCPUTimers.maximumPeriod else { return .error(.EINVAL) }
      VCPUTimers.setPeriodic(vcpu, period: period, now: SystemTime.now())
      return .result(0)
    case .stopPeriodicTimer:
      VCPUTimers.stopPeriodic(vcpu)
      return .result(0)
    case .registerRunstateMemoryArea:
      guard let address = env.readLE(UInt64.self, at: argument) else { return .error(.EFAULT) }
      // Xen accepts any address (0 unregisters) and writes the current state at once if it can.
      vcpu.runstateArea = address == 0 ? nil : address
      if address != 0, vcpu === env.vcpu { _ = env.write(address, vcpu.runstate.bytes) }
      return .result(0)
    case .getRunstateInfo:
      return env.write(argument, vcpu.runstate.bytes) ? .result(0) : .error(.EFAULT)
    case .registerVCPUInfo:
      typealias Layout = XenABI.VCPULayout.RegisterVCPUInfo
      guard let bytes = env.read(argument, count: Layout.size),
            let gfn = bytes.littleEndian(UInt64.self, at: Layout.Offset.mfn),
            let offset = bytes.littleEndian(UInt32.self, at: Layout.Offset.offset) else { return .error(.EFAULT) }
      // The structure must fit in the page; Xen allows registering once per vcpu.
      guard UInt64(offset) + UInt64(XenABI.VCPUInfo.size) <= 4096 else { return .error(.EINVAL) }
      guard vcpu.vcpuInfoGFN == nil else { return .error(.EEXIST) }
      // Guest frames are below 2^40 (as populate_physmap's): a larger number shifted into a
      // guest-physical address would lose its top bits and pin some other frame under this one's
      // name, leaving the real page free to be given back while the hypervisor writes to it.
      guard gfn < (1 << 40) else { return .error(.EINVAL) }
      // Claimed and held in one step: two vcpus registering for this one at once must not
      // both take a reference (one would never be dropped).
      guard let page = env.pinVCPUInfo(vcpu, gfn: gfn) else { return .error(vcpu.vcpuInfoGFN == nil ? .EINVAL : .EEXIST) }
      Events.moveVCPUInfo(vcpu, to: page + UInt64(offset))
      return .result(0)
    default:
      return .error(.ENOSYS)       // send_nmi, get_physid, the time memory areas
    }
  }
}
