import XenABI
import XenPublic

/// HYPERVISOR_vcpu_op: bringing a domain's other vcpus up and down, and asking about them.
enum VCPUOp {
  static func handle<E: HypercallEnvironment>(command: UInt64, target: UInt64, argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.VCPUOp(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    let vcpus = env.domain.vcpus
    guard target < UInt64(vcpus.count) else { throw .ENOENT }
    let vcpu = vcpus[Int(target)]
    switch op {
    case .isUp:
      return .result(vcpu.runState == .down ? 0 : 1)
    case .initialise:
      guard vcpu.runState == .down, !vcpu.initialised else { throw .EEXIST }
      let context = try env.copyIn(vcpu_hvm_context.self, from: argument)
      if let errno = env.initialiseVCPU(vcpu, context: context) { throw errno }
      vcpu.initialised = true
      return .result(0)
    case .up:
      guard vcpu.initialised else { throw .EINVAL }
      if vcpu.runState == .down { unsafe Scheduler.policy?.wake(vcpu) }
      return .result(0)
    case .down:
      // Xen lets a guest take any of its vcpus down; here a vcpu takes itself down (Linux's
      // CPU hot-unplug does exactly that), and the others get -EPERM until remote down exists.
      guard vcpu === env.vcpu else { throw .EPERM }
      return .down(0)
    case .setSingleshotTimer:
      guard vcpu === env.vcpu else { throw .EINVAL }      // Xen: a vcpu's own only
      let timer = try env.copyIn(vcpu_set_singleshot_timer.self, from: argument)
      // A deadline already past fires at once (Linux 6.1 BUGs on any error here); only a guest
      // that asks with VCPU_SSHOTTMR_future hears -ETIME.
      let future = timer.flags & XenABI.singleshotTimerFuture != 0
      if future && timer.timeout_abs_ns < SystemTime.now() { throw .ETIME }
      VCPUTimers.setSingleshot(vcpu, deadline: timer.timeout_abs_ns)
      return .result(0)
    case .stopSingleshotTimer:
      guard vcpu === env.vcpu else { throw .EINVAL }
      VCPUTimers.stopSingleshot(vcpu)
      return .result(0)
    case .setPeriodicTimer:
      let period = try env.copyIn(vcpu_set_periodic_timer.self, from: argument).period_ns
      // Xen: at least 1 ms (MILLISECS(1)), at most STIME_DELTA_MAX (2^62 - 1 ns).
      guard period >= VCPUTimers.minimumPeriod, period <= VCPUTimers.maximumPeriod else { throw .EINVAL }
      VCPUTimers.setPeriodic(vcpu, period: period, now: SystemTime.now())
      return .result(0)
    case .stopPeriodicTimer:
      VCPUTimers.stopPeriodic(vcpu)
      return .result(0)
    case .registerRunstateMemoryArea:
      let address = try env.copyIn(vcpu_register_runstate_memory_area.self, from: argument).addr
      // Xen accepts any address (0 unregisters) and writes the current state at once if it can.
      // The area keeps the layout of the call that registered it (a 32-bit guest's is compat).
      vcpu.runstateArea = address == 0 ? nil : address
      vcpu.runstateAreaABI = env.abi
      if address != 0, vcpu === env.vcpu { try? env.copyOut(vcpu.runstate.info, to: address) }
      return .result(0)
    case .getRunstateInfo:
      try env.copyOut(vcpu.runstate.info, to: argument)
      return .result(0)
    case .registerVCPUInfo:
      let request = try env.copyIn(vcpu_register_vcpu_info.self, from: argument)
      let gfn = request.mfn, offset = request.offset
      // The structure must fit in the page; Xen allows registering once per vcpu.
      guard UInt64(offset) + UInt64(XenABI.VCPUInfo.size) <= 4096 else { throw .EINVAL }
      guard vcpu.vcpuInfoGFN == nil else { throw .EEXIST }
      // Guest frames are below 2^40 (as populate_physmap's): a larger number shifted into a
      // guest-physical address would lose its top bits and pin some other frame under this one's
      // name, leaving the real page free to be given back while the hypervisor writes to it.
      guard gfn < (1 << 40) else { throw .EINVAL }
      // Claimed and held in one step: two vcpus registering for this one at once must not
      // both take a reference (one would never be dropped).
      guard let page = env.pinVCPUInfo(vcpu, gfn: gfn) else { throw vcpu.vcpuInfoGFN == nil ? .EINVAL : .EEXIST }
      Events.moveVCPUInfo(vcpu, to: page + UInt64(offset))
      return .result(0)
    default:
      throw .ENOSYS       // send_nmi, get_physid, the time memory areas
    }
  }
}
