// HYPERVISOR_hvm_op and the HVM parameters, from xen/include/public/hvm/hvm_op.h and
// hvm/params.h.
//
// A PVH or HVM guest learns where its special pages are (xenstore, console) and tells the
// hypervisor how to deliver event upcalls through these parameters.

extension XenABI {
  /// `HVMOP_*`: the command in the first argument of hvm_op.
  public enum HVMOp: UInt32, Sendable, CaseIterable {
    /// arg: `xen_hvm_param`.
    case setParam = 0
    /// arg: `xen_hvm_param`.
    case getParam = 1
    /// Obsolete for guests since interface 0x00040900 (moved to dm_op).
    case setPCIINTxLevel = 2
    case setISAIRQLevel = 3
    case setPCILinkRoute = 4
    /// arg must be NULL.
    case flushTLBs = 5
    /// arg: `xen_hvm_pagetable_dying`; a hint only.
    case pagetableDying = 9
    /// arg: `xen_hvm_get_time`.
    case getTime = 10
    case xentrace = 11
    case setMemAccess = 12
    case getMemAccess = 13
    /// arg: `xen_hvm_get_mem_type`.
    case getMemType = 15
    /// arg: `xen_hvm_evtchn_upcall_vector`; per-vcpu upcall vector (x86).
    case setEvtchnUpcallVector = 23
    case guestRequestVMEvent = 24
    case altp2m = 25
  }

  /// `HVM_PARAM_*`: the index in `xen_hvm_param`.
  public enum HVMParam: UInt32, Sendable, CaseIterable {
    /// How vcpu 0's event upcalls are delivered; see `HVMCallbackVia`.
    case callbackIRQ = 0
    /// Guest frame of the xenstore ring.
    case storePFN = 1
    /// Event channel of xenstore.
    case storeEvtchn = 2
    case paeEnabled = 4
    case ioreqPFN = 5
    case bufioreqPFN = 6
    case viridian = 9
    case timerMode = 10
    case hpetEnabled = 11
    case identPT = 12
    case dmDomain = 13
    case acpiSState = 14
    case vm86TSS = 15
    case vptAlign = 16
    /// Guest frame of the console ring.
    case consolePFN = 17
    /// Event channel of the console.
    case consoleEvtchn = 18
    case acpiIOPortsLocation = 19
    case memoryEventCR0 = 20
    case memoryEventCR3 = 21
    case memoryEventCR4 = 22
    case memoryEventINT3 = 23
    case nestedHVM = 24
    case memoryEventSingleStep = 25
    case bufioreqEvtchn = 26
    case pagingRingPFN = 27
    case monitorRingPFN = 28
    case sharingRingPFN = 29
    case memoryEventMSR = 30
    case tripleFaultReason = 31
    case ioreqServerPFN = 32
    case ioreqServerPageCount = 33
    case vmGenerationIDAddr = 34
    case altp2m = 35
    case x87FIPWidth = 36
    case vm86TSSSized = 37
    case mcaCap = 38

    /// HVM_NR_PARAMS: indices are below this.
    public static let count: UInt32 = 39
  }

  /// The value of HVM_PARAM_CALLBACK_IRQ: a delivery type in bits 63:56 and its argument below.
  public enum HVMCallbackVia {
    public static let typeShift: UInt64 = 56
    /// Type 0: bits 55:0 are a GSI.
    public static let typeGSI: UInt64 = 0
    /// Type 1: bits 55:0 are a PCI INTx line (domain 47:32, bus 31:16, devfn 15:8, intx 1:0).
    public static let typePCIINTx: UInt64 = 1
    /// Type 2: bits 7:0 are an interrupt vector (needs XENFEAT_hvm_callback_vector).
    public static let typeVector: UInt64 = 2
    /// Type 3: an Arm PPI.
    public static let typePPI: UInt64 = 3
  }

}
