import XenABI

/// HYPERVISOR_hvm_op: HVM parameters (where the console and xenstore pages are, the event
/// callback) and other HVM controls: get_param, set_param and set_evtchn_upcall_vector exist;
/// every other sub-op answers -ENOSYS.
enum HVMOp {
  /// Parameters a guest may set on itself.
  static let guestWritable: [XenABI.HVMParam] = [.callbackIRQ]

  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.HVMOp(rawValue: UInt32(command)) else {
      return .error(.ENOSYS)
    }
    switch op {
    case .getParam, .setParam:
      guard let bytes = env.read(argument, count: 16),
            let domid = bytes.littleEndian(UInt16.self, at: 0),
            let index = bytes.littleEndian(UInt32.self, at: 4),
            let value = bytes.littleEndian(UInt64.self, at: 8) else { return .error(.EFAULT) }
      guard Hypercalls.isSelf(domid, env.domain) else { return .error(.EPERM) }
      guard index < XenABI.HVMParam.count, Int(index) < env.domain.hvmParams.count else { return .error(.EINVAL) }
      if op == .getParam {
        return env.writeLE(env.domain.hvmParams[Int(index)], at: argument, offset: 8) ? .result(0) : .error(.EFAULT)
      }
      guard let param = XenABI.HVMParam(rawValue: index), guestWritable.contains(param) else { return .error(.EPERM) }
      env.domain.hvmParams[Int(index)] = value
      return .result(0)
    case .setEvtchnUpcallVector:
      // struct xen_hvm_evtchn_upcall_vector: u32 vcpu, u8 vector.
      guard let bytes = env.read(argument, count: 5),
            let target = bytes.littleEndian(UInt32.self, at: 0) else { return .error(.EFAULT) }
      guard Int(target) < env.domain.vcpus.count else { return .error(.ENOENT) }
      guard unsafe Events.platform != nil else { return .error(.ENOSYS) }
      if let errno = Events.setUpcallVector(bytes[4], vcpu: env.domain.vcpus[Int(target)]) { return .error(errno) }
      return .result(0)
    default:
      return .error(.ENOSYS)
    }
  }
}
