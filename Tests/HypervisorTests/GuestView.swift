import XenABI

// The structures as a guest lays them out, spelled as offsets from Xen's public headers: the
// tests write their arguments with these, independently of xen_public.h (the hypervisor's one
// declaration of them), so a layout slip on either side shows up as a failing call.
enum GuestView {
  enum MemoryOpLayout {
    /// `struct xen_memory_reservation`.
    enum Reservation {
      static let size = 32
      enum Offset {
        static let extentStart = 0  // guest handle: xen_pfn_t[]
        static let extentCount = 8  // xen_ulong_t nr_extents
        static let extentOrder = 16 // u32, each extent is 2^order pages
        static let memFlags = 20    // u32 XENMEMF_* (address bits in 7:0, node in 15:8)
        static let domid = 24       // domid_t
      }
    }
    /// `struct xen_add_to_physmap`.
    enum AddToPhysmap {
      static let size = 24
      enum Offset {
        static let domid = 0  // domid_t
        static let size = 2   // u16, pages for gmfn_range
        static let space = 4  // u32, MapSpace
        static let idx = 8    // xen_ulong_t
        static let gpfn = 16  // xen_pfn_t
      }
    }
    /// `struct xen_add_to_physmap_batch`.
    enum AddToPhysmapBatch {
      static let size = 32
      enum Offset {
        static let domid = 0         // domid_t
        static let space = 2         // u16, MapSpace
        static let size = 4          // u16
        static let foreignDomid = 6  // domid_t (gmfn_foreign), else 0
        static let idxs = 8          // guest handle: xen_ulong_t[]
        static let gpfns = 16        // guest handle: xen_pfn_t[]
        static let errs = 24         // guest handle: int[]
      }
    }
    /// `struct xen_remove_from_physmap`.
    enum RemoveFromPhysmap {
      static let size = 16
      enum Offset {
        static let domid = 0  // domid_t
        static let gpfn = 8   // xen_pfn_t
      }
    }
    /// `struct xen_memory_map`.
    enum MemoryMap {
      static let size = 16
      enum Offset {
        /// u32, in: entries the buffer holds; out: entries written.
        static let entryCount = 0
        /// guest handle to an array of `E820Entry`.
        static let buffer = 8
      }
    }
    /// `struct xen_foreign_memory_map`.
    enum ForeignMemoryMap {
      static let size = 24
      enum Offset {
        static let domid = 0  // domid_t
        static let map = 8    // struct xen_memory_map
      }
    }
    /// `struct e820entry` (hvm/e820.h): the entries of XENMEM_memory_map's buffer. Packed, so
    /// 20 bytes, not 24.
    enum E820Entry {
      static let size = 20
      enum Offset {
        static let addr = 0   // u64
        static let size = 8   // u64
        static let type = 16  // u32, HVMMemmapType values 1...5
      }
    }
  }

  /// Argument layouts of event_channel_op.
  enum EventChannelLayout {
    /// `struct evtchn_alloc_unbound`.
    enum AllocUnbound {
      static let size = 8
      enum Offset {
        static let dom = 0        // domid_t, in
        static let remoteDom = 2  // domid_t, in
        static let port = 4       // u32, out
      }
    }

    /// `struct evtchn_bind_interdomain`.
    enum BindInterdomain {
      static let size = 12
      enum Offset {
        static let remoteDom = 0   // domid_t, in
        static let remotePort = 4  // u32, in
        static let localPort = 8   // u32, out
      }
    }

    /// `struct evtchn_bind_virq`.
    enum BindVIRQ {
      static let size = 12
      enum Offset {
        static let virq = 0  // u32, in
        static let vcpu = 4  // u32, in
        static let port = 8  // u32, out
      }
    }

    /// `struct evtchn_bind_ipi`.
    enum BindIPI {
      static let size = 8
      enum Offset {
        static let vcpu = 0  // u32, in
        static let port = 4  // u32, out
      }
    }

    /// `struct evtchn_close`, `evtchn_send` and `evtchn_unmask`: just a port.
    enum Port {
      static let size = 4
      enum Offset {
        static let port = 0  // u32
      }
    }

    /// `struct evtchn_status`.
    enum Status {
      static let size = 24
      enum Offset {
        static let dom = 0      // domid_t, in
        static let port = 4     // u32, in
        static let status = 8   // u32, out: EventChannelStatus
        static let vcpu = 12    // u32, out
        /// Union: unbound.dom (domid_t) / interdomain.dom (domid_t) + interdomain.port (u32 at
        /// +4) / pirq (u32) / virq (u32).
        static let u = 16
      }
    }

    /// `struct evtchn_bind_vcpu`.
    enum BindVCPU {
      static let size = 8
      enum Offset {
        static let port = 0  // u32
        static let vcpu = 4  // u32
      }
    }

    /// `struct evtchn_reset`.
    enum Reset {
      static let size = 2
      enum Offset {
        static let dom = 0  // domid_t
      }
    }

    /// `struct evtchn_init_control`.
    enum InitControl {
      static let size = 24
      enum Offset {
        static let controlGFN = 0  // u64, in
        static let offset = 8      // u32, in
        static let vcpu = 12       // u32, in
        static let linkBits = 16   // u8, out
      }
    }

    /// `struct evtchn_expand_array`.
    enum ExpandArray {
      static let size = 8
      enum Offset {
        static let arrayGFN = 0  // u64
      }
    }

    /// `struct evtchn_set_priority`.
    enum SetPriority {
      static let size = 8
      enum Offset {
        static let port = 0      // u32
        static let priority = 4  // u32
      }
    }
  }

  /// Argument layouts of sched_op (x86_64).
  enum SchedLayout {
    /// `struct sched_shutdown`.
    enum Shutdown {
      static let size = 4
      enum Offset {
        static let reason = 0  // u32, ShutdownReason
      }
    }

    /// `struct sched_poll`.
    enum Poll {
      static let size = 24
      enum Offset {
        static let ports = 0    // guest handle: evtchn_port_t[]
        static let portCount = 8  // u32 nr_ports
        static let timeout = 16   // u64, absolute system time in ns, 0 = none
      }
    }

    /// `struct sched_remote_shutdown`.
    enum RemoteShutdown {
      static let size = 8
      enum Offset {
        static let domainID = 0  // domid_t
        static let reason = 4    // u32
      }
    }

    /// `struct sched_watchdog`.
    enum Watchdog {
      static let size = 8
      enum Offset {
        static let id = 0       // u32
        static let timeout = 4  // u32, seconds
      }
    }

    /// `struct sched_pin_override`.
    enum PinOverride {
      static let size = 4
      enum Offset {
        static let pcpu = 0  // i32, negative = undo
      }
    }
  }

  /// Argument layouts of hvm_op (x86_64).
  enum HVMLayout {
    /// `struct xen_hvm_param`.
    enum Param {
      static let size = 16
      enum Offset {
        static let domid = 0  // domid_t
        static let pad = 2    // u16
        static let index = 4  // u32, HVMParam
        static let value = 8  // u64
      }
    }

    /// `struct xen_hvm_evtchn_upcall_vector`.
    enum EvtchnUpcallVector {
      static let size = 8
      enum Offset {
        static let vcpu = 0    // u32
        static let vector = 4  // u8
      }
    }

    /// `struct xen_hvm_get_time`.
    enum GetTime {
      static let size = 8
      enum Offset {
        static let now = 0  // u64, ns since boot
      }
    }

    /// `struct xen_hvm_pagetable_dying`.
    enum PagetableDying {
      static let size = 16
      enum Offset {
        static let domid = 0  // domid_t
        static let gpa = 8    // u64
      }
    }

    /// `struct xen_hvm_get_mem_type`.
    enum GetMemType {
      static let size = 16
      enum Offset {
        static let domid = 0    // domid_t
        static let memType = 2  // u16, out
        static let pfn = 8      // u64, in
      }
    }
  }

  /// Sizes and layouts of the xen_version buffers (x86_64).
  enum VersionLayout {
    /// `xen_extraversion_t`: char[16], NUL-terminated, e.g. ".0".
    static let extraversionSize = 16
    /// `xen_capabilities_info_t`: char[1024], e.g. "xen-3.0-x86_64 hvm-3.0-x86_64".
    static let capabilitiesSize = 1024
    /// `xen_changeset_info_t`: char[64].
    static let changesetSize = 64
    /// `xen_commandline_t`: char[1024].
    static let commandlineSize = 1024
    /// `xen_domain_handle_t`: uint8_t[16].
    static let domainHandleSize = 16

    /// `struct xen_compile_info`: four NUL-terminated strings.
    enum CompileInfo {
      static let size = 144
      enum Offset {
        static let compiler = 0        // char[64]
        static let compileBy = 64      // char[16]
        static let compileDomain = 80  // char[32]
        static let compileDate = 112   // char[32]
      }
      static let compilerSize = 64
      static let compileBySize = 16
      static let compileDomainSize = 32
      static let compileDateSize = 32
    }

    /// `struct xen_platform_parameters`.
    enum PlatformParameters {
      static let size = 8
      enum Offset {
        /// unsigned long: start of the hypervisor's part of the guest address space (PV).
        static let virtStart = 0
      }
    }

    /// `struct xen_feature_info`.
    enum FeatureInfo {
      static let size = 8
      enum Offset {
        static let submapIndex = 0  // u32, in: which 32-bit submap
        static let submap = 4       // u32, out: XENFEAT bits 32*idx ... 32*idx+31
      }
    }

    /// `struct xen_build_id`: a length followed by that many bytes.
    enum BuildID {
      enum Offset {
        static let length = 0  // u32, in: buffer size, out: id size
        static let buffer = 4  // u8[]
      }
    }
  }

  /// Argument layouts of vcpu_op (x86_64).
  enum VCPULayout {
    /// `struct vcpu_runstate_info`.
    enum RunstateInfo {
      static let size = 48
      enum Offset {
        static let state = 0           // i32, RunState
        static let stateEntryTime = 8  // u64, ns system time of the last change
        static let time = 16           // u64[4], ns spent in each RunState
      }
      /// XEN_RUNSTATE_UPDATE: set in state_entry_time while the hypervisor updates the area
      /// (when VMASST_TYPE_runstate_update_flag is on).
      static let updateFlag: UInt64 = 1 << 63
    }

    /// `struct vcpu_register_runstate_memory_area` and `vcpu_register_time_memory_area`.
    enum RegisterMemoryArea {
      static let size = 8
      enum Offset {
        static let address = 0  // u64, guest-virtual (or physical for the _phys_ ops)
      }
    }

    /// `struct vcpu_set_periodic_timer`.
    enum SetPeriodicTimer {
      static let size = 8
      enum Offset {
        static let periodNanoseconds = 0  // u64
      }
    }

    /// `struct vcpu_set_singleshot_timer`.
    enum SetSingleshotTimer {
      static let size = 16
      enum Offset {
        static let timeoutAbsoluteNanoseconds = 0  // u64, system time
        static let flags = 8                       // u32
      }
      /// VCPU_SSHOTTMR_future: fail with -ETIME if the timeout is already in the past.
      static let futureFlag: UInt32 = 1 << 0
    }

    /// `struct vcpu_register_vcpu_info`.
    enum RegisterVCPUInfo {
      static let size = 16
      enum Offset {
        static let mfn = 0     // u64, guest frame holding the vcpu_info
        static let offset = 8  // u32, offset in that frame
        static let reserved = 12  // u32
      }
    }

    /// `struct vcpu_get_physid`.
    enum GetPhysID {
      static let size = 8
      enum Offset {
        static let physID = 0  // u64: APIC id in 31:0, ACPI id in 63:32
      }
    }
  }

}
