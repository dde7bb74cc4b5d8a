// HYPERVISOR_vcpu_op, from xen/include/public/vcpu.h.
//
// vcpu_op(cmd, vcpuid, arg): bring vcpus up and down, register per-vcpu shared areas (vcpu_info,
// runstate, time) and program the per-vcpu timers Linux uses as its clock event device.

extension XenABI {
  /// `VCPUOP_*`: the command in the first argument of vcpu_op.
  public enum VCPUOp: UInt32, Sendable, CaseIterable {
    /// arg: the vcpu's initial context (`vcpu_hvm_context` for PVH/HVM).
    case initialise = 0
    case up = 1
    case down = 2
    /// Returns 1 if the vcpu is up, 0 otherwise.
    case isUp = 3
    /// arg: `vcpu_runstate_info` (out).
    case getRunstateInfo = 4
    /// arg: `vcpu_register_runstate_memory_area` (a guest-virtual address).
    case registerRunstateMemoryArea = 5
    /// arg: `vcpu_set_periodic_timer`.
    case setPeriodicTimer = 6
    case stopPeriodicTimer = 7
    /// arg: `vcpu_set_singleshot_timer`.
    case setSingleshotTimer = 8
    case stopSingleshotTimer = 9
    /// arg: `vcpu_register_vcpu_info`; moves vcpu_info out of shared_info.
    case registerVCPUInfo = 10
    case sendNMI = 11
    /// arg: `vcpu_get_physid` (privileged).
    case getPhysID = 12
    /// arg: `vcpu_register_time_memory_area` (a guest-virtual address).
    case registerVCPUTimeMemoryArea = 13
    /// As 5, but the argument is a guest-physical address.
    case registerRunstatePhysArea = 14
    /// As 13, but the argument is a guest-physical address.
    case registerVCPUTimePhysArea = 15
  }

  /// `RUNSTATE_*`: the states of `vcpu_runstate_info.state`.
  public enum RunState: Int32, Sendable, CaseIterable {
    case running = 0
    case runnable = 1
    case blocked = 2
    case offline = 3
  }

  /// VCPU_SSHOTTMR_future, in vcpu_set_singleshot_timer.flags: fail with -ETIME if the timeout
  /// is already in the past.
  public static let singleshotTimerFuture: UInt32 = 1 << 0
  /// XEN_RUNSTATE_UPDATE: set in vcpu_runstate_info.state_entry_time while the hypervisor
  /// updates the area (when VMASST_TYPE_runstate_update_flag is on).
  public static let runstateUpdateFlag: UInt64 = 1 << 63
}
