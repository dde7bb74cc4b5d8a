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
    default:
      return .error(.ENOSYS)       // timers, runstate, vcpu_info: with the scheduler and events
    }
  }
}
