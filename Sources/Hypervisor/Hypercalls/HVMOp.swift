import XenABI
import XenPublic

/// HYPERVISOR_hvm_op: HVM parameters (where the console and xenstore pages are, the event
/// callback) and other HVM controls: get_param, set_param and set_evtchn_upcall_vector exist;
/// every other sub-op answers -ENOSYS.
enum HVMOp {
  /// Parameters a guest may set on itself.
  static let guestWritable: [XenABI.HVMParam] = [.callbackIRQ]

  static func handle<E: HypercallEnvironment>(command: UInt64, argument: UInt64, _ env: E) throws(XenABI.Errno) -> HypercallOutcome {
    guard command <= UInt64(UInt32.max), let op = XenABI.HVMOp(rawValue: UInt32(command)) else {
      throw .ENOSYS
    }
    switch op {
    case .getParam, .setParam:
      var request = try env.copyIn(xen_hvm_param.self, from: argument)
      let index = request.index
      guard Hypercalls.isSelf(request.domid, env.domain) else { throw .EPERM }
      guard index < XenABI.HVMParam.count, Int(index) < env.domain.hvmParams.count else { throw .EINVAL }
      if op == .getParam {
        // Copied back whole, as Xen does.
        request.value = env.domain.hvmParams[Int(index)]
        try env.copyOut(request, to: argument)
        return .result(0)
      }
      guard let param = XenABI.HVMParam(rawValue: index), guestWritable.contains(param) else { throw .EPERM }
      env.domain.hvmParams[Int(index)] = request.value
      // One of the first calls of a guest's event setup: its mode picks the shared_info layout.
      if param == .callbackIRQ { Events.latchSharedInfoLayout(env.domain, abi: env.abi) }
      return .result(0)
    case .setEvtchnUpcallVector:
      let request = try env.copyIn(xen_hvm_evtchn_upcall_vector.self, from: argument)
      guard Int(request.vcpu) < env.domain.vcpus.count else { throw .ENOENT }
      guard unsafe Events.platform != nil else { throw .ENOSYS }
      if let errno = Events.setUpcallVector(request.vector, vcpu: env.domain.vcpus[Int(request.vcpu)]) { throw errno }
      return .result(0)
    default:
      throw .ENOSYS
    }
  }
}
