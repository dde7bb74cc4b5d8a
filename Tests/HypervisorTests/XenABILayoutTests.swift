import Testing
import XenABI
import XenPublic
@testable import Hypervisor

// Every expected number below is copied from Xen's public headers (xen/include/public), with the
// header named beside it, so a typo in XenABI shows up as a mismatch here.

@Suite struct XenABILayoutTests {
  /// xen_public.h, the hypervisor's one declaration of each argument structure, against the
  /// sizes and offsets Xen's headers give a 64-bit guest (the C build checks them too).
  @Test func publicStructures() {
    // C's sizeof, as the copies use it (`GuestStructure.guestSize`).
    func size<T>(_: T.Type) -> Int { MemoryLayout<T>.stride }
    func at<T, F>(_ field: KeyPath<T, F>) -> Int? { MemoryLayout<T>.offset(of: field) }
    // memory.h
    #expect(size(xen_memory_reservation.self) == 32)
    #expect(at(\xen_memory_reservation.nr_extents) == 8)
    #expect(at(\xen_memory_reservation.extent_order) == 16)
    #expect(at(\xen_memory_reservation.mem_flags) == 20)
    #expect(at(\xen_memory_reservation.domid) == 24)
    #expect(size(xen_add_to_physmap.self) == 24)
    #expect(at(\xen_add_to_physmap.size) == 2)
    #expect(at(\xen_add_to_physmap.space) == 4)
    #expect(at(\xen_add_to_physmap.idx) == 8)
    #expect(at(\xen_add_to_physmap.gpfn) == 16)
    #expect(size(xen_add_to_physmap_batch.self) == 32)
    #expect(at(\xen_add_to_physmap_batch.idxs) == 8)
    #expect(at(\xen_add_to_physmap_batch.errs) == 24)
    #expect(size(xen_remove_from_physmap.self) == 16)
    #expect(at(\xen_remove_from_physmap.gpfn) == 8)
    #expect(size(xen_memory_map.self) == 16)
    #expect(at(\xen_memory_map.buffer) == 8)
    #expect(size(xen_foreign_memory_map.self) == 24)
    #expect(size(e820entry.self) == 20)                   // packed
    #expect(at(\e820entry.type) == 16)
    // version.h
    #expect(size(xen_extraversion.self) == 16)
    #expect(size(xen_compile_info.self) == 144)
    #expect(at(\xen_compile_info.compile_by) == 64)
    #expect(at(\xen_compile_info.compile_domain) == 80)
    #expect(at(\xen_compile_info.compile_date) == 112)
    #expect(size(xen_capabilities_info.self) == 1024)
    #expect(size(xen_changeset_info.self) == 64)
    #expect(size(xen_platform_parameters.self) == 8)
    #expect(size(xen_feature_info.self) == 8)
    #expect(at(\xen_feature_info.submap) == 4)
    #expect(size(xen_domain_handle.self) == 16)
    #expect(size(xen_commandline.self) == 1024)
    // sched.h
    #expect(size(sched_shutdown.self) == 4)
    #expect(size(sched_poll.self) == 24)
    #expect(at(\sched_poll.nr_ports) == 8)
    #expect(at(\sched_poll.timeout) == 16)
    #expect(size(sched_remote_shutdown.self) == 8)
    #expect(at(\sched_remote_shutdown.reason) == 4)
    #expect(size(sched_watchdog.self) == 8)
    #expect(size(sched_pin_override.self) == 4)
    // vcpu.h, hvm/hvm_vcpu.h
    #expect(size(vcpu_runstate_info.self) == 48)
    #expect(at(\vcpu_runstate_info.state_entry_time) == 8)
    #expect(at(\vcpu_runstate_info.time) == 16)
    #expect(size(vcpu_register_runstate_memory_area.self) == 8)
    #expect(size(vcpu_set_periodic_timer.self) == 8)
    #expect(size(vcpu_set_singleshot_timer.self) == 16)
    #expect(at(\vcpu_set_singleshot_timer.flags) == 8)
    #expect(size(vcpu_register_vcpu_info.self) == 16)
    #expect(at(\vcpu_register_vcpu_info.offset) == 8)
    #expect(size(vcpu_hvm_x86_32.self) == 120)
    #expect(at(\vcpu_hvm_x86_32.efer) == 56)
    #expect(at(\vcpu_hvm_x86_32.cs_ar) == 104)
    #expect(size(vcpu_hvm_x86_64.self) == 112)
    #expect(at(\vcpu_hvm_x86_64.rip) == 64)
    #expect(at(\vcpu_hvm_x86_64.efer) == 104)
    #expect(size(vcpu_hvm_context.self) == 128)
    #expect(at(\vcpu_hvm_context.cpu_regs) == 8)
    // hvm/hvm_op.h
    #expect(size(xen_hvm_param.self) == 16)
    #expect(at(\xen_hvm_param.index) == 4)
    #expect(at(\xen_hvm_param.value) == 8)
    #expect(size(xen_hvm_evtchn_upcall_vector.self) == 8)
    #expect(xen_hvm_evtchn_upcall_vector.guestSize == 8)
    #expect(at(\xen_hvm_evtchn_upcall_vector.vector) == 4)
    // event_channel.h
    #expect(size(evtchn_alloc_unbound.self) == 8)
    #expect(at(\evtchn_alloc_unbound.remote_dom) == 2)
    #expect(at(\evtchn_alloc_unbound.port) == 4)
    #expect(size(evtchn_bind_interdomain.self) == 12)
    #expect(at(\evtchn_bind_interdomain.remote_port) == 4)
    #expect(at(\evtchn_bind_interdomain.local_port) == 8)
    #expect(size(evtchn_bind_virq.self) == 12)
    #expect(at(\evtchn_bind_virq.port) == 8)
    #expect(size(evtchn_bind_ipi.self) == 8)
    #expect(at(\evtchn_bind_ipi.port) == 4)
    #expect(size(evtchn_close.self) == 4)
    #expect(size(evtchn_send.self) == 4)
    #expect(size(evtchn_unmask.self) == 4)
    #expect(size(evtchn_status.self) == 24)
    #expect(at(\evtchn_status.status) == 8)
    #expect(at(\evtchn_status.vcpu) == 12)
    #expect(at(\evtchn_status.u) == 16)
    #expect(size(evtchn_bind_vcpu.self) == 8)
    #expect(size(evtchn_reset.self) == 2)
    #expect(size(evtchn_init_control.self) == 24)
    #expect(at(\evtchn_init_control.link_bits) == 16)
    #expect(size(evtchn_expand_array.self) == 8)
    #expect(size(evtchn_set_priority.self) == 8)
    #expect(size(evtchn_fifo_control_block.self) == XenABI.FIFO.ControlBlock.size)
    #expect(at(\evtchn_fifo_control_block.ready) == XenABI.FIFO.ControlBlock.Offset.ready)
    #expect(at(\evtchn_fifo_control_block.head) == XenABI.FIFO.ControlBlock.Offset.head)
    #expect(XenABI.FIFO.maximumArrayPages * XenABI.FIFO.wordsPerPage == XenABI.FIFO.portCount)
  }

  /// The compat_* structures of xen_public.h against what Xen's public headers give a 32-bit
  /// (i386) guest: xen_ulong_t, xen_pfn_t and handles of 4 bytes, uint64_t 4-byte aligned
  /// (Xen's xen/include/compat headers, generated from the same headers with pack(4)).
  @Test func compatStructures() {
    func size<T>(_: T.Type) -> Int { MemoryLayout<T>.stride }
    func at<T, F>(_ field: KeyPath<T, F>) -> Int? { MemoryLayout<T>.offset(of: field) }
    // memory.h
    #expect(size(compat_memory_reservation.self) == 20)
    #expect(at(\compat_memory_reservation.nr_extents) == 4)
    #expect(at(\compat_memory_reservation.extent_order) == 8)
    #expect(at(\compat_memory_reservation.mem_flags) == 12)
    #expect(at(\compat_memory_reservation.domid) == 16)
    #expect(size(compat_add_to_physmap.self) == 16)
    #expect(at(\compat_add_to_physmap.space) == 4)
    #expect(at(\compat_add_to_physmap.idx) == 8)
    #expect(at(\compat_add_to_physmap.gpfn) == 12)
    #expect(size(compat_memory_map.self) == 8)
    #expect(at(\compat_memory_map.buffer) == 4)
    // version.h
    #expect(size(compat_platform_parameters.self) == 4)
    // sched.h
    #expect(size(compat_sched_poll.self) == 16)
    #expect(at(\compat_sched_poll.nr_ports) == 4)
    #expect(at(\compat_sched_poll.timeout) == 8)
    // vcpu.h
    #expect(size(compat_vcpu_runstate_info.self) == 44)
    #expect(at(\compat_vcpu_runstate_info.state_entry_time) == 4)
    #expect(at(\compat_vcpu_runstate_info.time) == 12)
    #expect(size(compat_vcpu_register_runstate_memory_area.self) == 8)
    #expect(size(compat_vcpu_set_singleshot_timer.self) == 12)
    #expect(at(\compat_vcpu_set_singleshot_timer.flags) == 8)
    // grant_table.h
    #expect(size(compat_gnttab_setup_table.self) == 16)
    #expect(at(\compat_gnttab_setup_table.status) == 8)
    #expect(at(\compat_gnttab_setup_table.frame_list) == 12)
    #expect(size(compat_gnttab_copy_ptr.self) == 8)
    #expect(at(\compat_gnttab_copy_ptr.domid) == 4)
    #expect(at(\compat_gnttab_copy_ptr.offset) == 6)
    #expect(size(compat_gnttab_copy.self) == 24)
    #expect(at(\compat_gnttab_copy.dest) == 8)
    #expect(at(\compat_gnttab_copy.len) == 16)
    #expect(at(\compat_gnttab_copy.flags) == 18)
    #expect(at(\compat_gnttab_copy.status) == 20)
    // What the copy layer moves for each translated structure is the compat size.
    #expect(xen_memory_reservation.compatSize == 20)
    #expect(xen_add_to_physmap.compatSize == 16)
    #expect(xen_memory_map.compatSize == 8)
    #expect(xen_platform_parameters.compatSize == 4)
    #expect(sched_poll.compatSize == 16)
    #expect(vcpu_runstate_info.compatSize == 44)
    #expect(vcpu_register_runstate_memory_area.compatSize == 8)
    #expect(vcpu_set_singleshot_timer.compatSize == 12)
    #expect(gnttab_setup_table.compatSize == 16)
    #expect(gnttab_copy.compatSize == 24)
    #expect(GuestULong.compatSize == 4)
    #expect(GuestULong.guestSize == 8)
    // xen.h's shared pages for a 32-bit shared_info (i386 offsets).
    #expect(size(compat_vcpu_info.self) == 64)
    #expect(at(\compat_vcpu_info.evtchn_pending_sel) == 4)
    #expect(at(\compat_vcpu_info.arch) == 8)
    #expect(at(\compat_vcpu_info.time) == 32)
    #expect(size(compat_arch_shared_info.self) == 28)
    #expect(at(\compat_arch_shared_info.wc_sec_hi) == 24)
    #expect(size(compat_shared_info.self) == 2344)
    #expect(at(\compat_shared_info.evtchn_pending) == 2048)
    #expect(at(\compat_shared_info.evtchn_mask) == 2176)
    #expect(at(\compat_shared_info.wc_version) == 2304)
    #expect(at(\compat_shared_info.wc_sec) == 2308)
    #expect(at(\compat_shared_info.wc_nsec) == 2312)
    #expect(at(\compat_shared_info.arch) == 2316)
    // The constants the event code and the wallclock use, and what the two layouts share: the
    // upcall bytes, the time info, vcpu_info's size and the pending bitmap's base.
    typealias Compat = XenABI.Compat
    #expect(Compat.eventWordBits == 32)
    #expect(Compat.eventChannelCount2Level == 1024)
    #expect(Compat.VCPUInfo.Offset.pendingSelector == 4)
    #expect(Compat.SharedInfo.Offset.evtchnPending == 2048)
    #expect(Compat.SharedInfo.Offset.evtchnMask == 2176)
    #expect(Compat.SharedInfo.Offset.wcVersion == 2304)
    #expect(Compat.SharedInfo.Offset.wcSec == 2308)
    #expect(Compat.SharedInfo.Offset.wcNsec == 2312)
    #expect(Compat.SharedInfo.Offset.wcSecHi == 2316 + 24)
    #expect(Compat.VCPUInfo.Offset.upcallPending == XenABI.VCPUInfo.Offset.upcallPending)
    #expect(Compat.VCPUInfo.Offset.upcallMask == XenABI.VCPUInfo.Offset.upcallMask)
    #expect(Compat.VCPUInfo.Offset.time == XenABI.VCPUInfo.Offset.time)
    #expect(Compat.VCPUInfo.size == XenABI.VCPUInfo.size)
    #expect(Compat.SharedInfo.Offset.vcpuInfo == XenABI.SharedInfo.Offset.vcpuInfo)
    #expect(Compat.SharedInfo.Offset.evtchnPending == XenABI.SharedInfo.Offset.evtchnPending)
  }

  /// The structures listed as the same in both ABIs (GuestStructure.swift, xlat.lst's "?"):
  /// the i386 size and offsets Xen's headers give are the x86_64 ones, so one declaration
  /// serves both (checked field by field where a uint64_t or a union could move).
  @Test func compatIdenticalStructures() {
    func same<T: SameLayoutInBothABIs>(_: T.Type, _ i386Size: Int) {
      #expect(MemoryLayout<T>.stride == i386Size, "\(T.self)")
      #expect(T.compatSize == T.guestSize, "\(T.self)")
    }
    func at<T, F>(_ field: KeyPath<T, F>) -> Int? { MemoryLayout<T>.offset(of: field) }
    same(e820entry.self, 20)
    same(xen_feature_info.self, 8)
    same(sched_shutdown.self, 4)
    same(vcpu_set_periodic_timer.self, 8)
    same(vcpu_register_vcpu_info.self, 16)
    same(vcpu_hvm_context.self, 128)
    #expect(at(\vcpu_hvm_context.cpu_regs) == 8)
    #expect(at(\vcpu_hvm_x86_32.efer) == 56)
    #expect(at(\vcpu_hvm_x86_32.cs_base) == 64)
    #expect(at(\vcpu_hvm_x86_32.cs_ar) == 104)
    #expect(MemoryLayout<vcpu_hvm_x86_32>.stride == 120)
    same(xen_hvm_param.self, 16)
    #expect(at(\xen_hvm_param.value) == 8)
    same(xen_hvm_evtchn_upcall_vector.self, 8)
    same(evtchn_alloc_unbound.self, 8)
    same(evtchn_bind_interdomain.self, 12)
    same(evtchn_bind_virq.self, 12)
    same(evtchn_bind_ipi.self, 8)
    same(evtchn_close.self, 4)
    same(evtchn_send.self, 4)
    same(evtchn_unmask.self, 4)
    same(evtchn_status.self, 24)
    same(evtchn_bind_vcpu.self, 8)
    same(evtchn_reset.self, 2)
    same(gnttab_query_size.self, 16)
    same(gnttab_set_version.self, 4)
    same(gnttab_get_version.self, 8)
    same(gnttab_map_grant_ref.self, 32)
    #expect(at(\gnttab_map_grant_ref.handle) == 20)
    #expect(at(\gnttab_map_grant_ref.dev_bus_addr) == 24)
    same(gnttab_unmap_grant_ref.self, 24)
    #expect(at(\gnttab_unmap_grant_ref.status) == 20)
  }

  @Test func hypercallNumbers() {
    // xen.h: __HYPERVISOR_*
    let expected: [(XenABI.Hypercall, UInt64)] = [
      (.setTrapTable, 0), (.mmuUpdate, 1), (.setGDT, 2), (.stackSwitch, 3), (.setCallbacks, 4),
      (.fpuTaskswitch, 5), (.schedOpCompat, 6), (.platformOp, 7), (.setDebugreg, 8), (.getDebugreg, 9),
      (.updateDescriptor, 10), (.memoryOp, 12), (.multicall, 13), (.updateVAMapping, 14),
      (.setTimerOp, 15), (.eventChannelOpCompat, 16), (.xenVersion, 17), (.consoleIO, 18),
      (.physdevOpCompat, 19), (.grantTableOp, 20), (.vmAssist, 21), (.updateVAMappingOtherdomain, 22),
      (.iret, 23), (.vcpuOp, 24), (.setSegmentBase, 25), (.mmuextOp, 26), (.xsmOp, 27), (.nmiOp, 28),
      (.schedOp, 29), (.callbackOp, 30), (.xenoprofOp, 31), (.eventChannelOp, 32), (.physdevOp, 33),
      (.hvmOp, 34), (.sysctl, 35), (.domctl, 36), (.kexecOp, 37), (.tmemOp, 38), (.argoOp, 39),
      (.xenpmuOp, 40), (.dmOp, 41), (.hypfsOp, 42), (.arch0, 48), (.arch1, 49), (.arch2, 50),
      (.arch3, 51), (.arch4, 52), (.arch5, 53), (.arch6, 54), (.arch7, 55),
    ]
    for (call, number) in expected {
      #expect(call.rawValue == number, "\(call)")
    }
    #expect(expected.count == XenABI.Hypercall.allCases.count)
    // Unassigned numbers are not hypercalls (the dispatcher answers -ENOSYS).
    for unassigned: UInt64 in [11, 43, 44, 45, 46, 47, 56, 63, 64] {
      #expect(XenABI.Hypercall(rawValue: unassigned) == nil)
    }
    // arch-x86/xen-x86_64.h: 32-byte stubs in one page.
    #expect(XenABI.HypercallPage.stubSize * XenABI.HypercallPage.stubCount == 4096)
  }

  @Test func errnoValues() {
    // errno.h: XEN_E*
    let expected: [(XenABI.Errno, Int64)] = [
      (.EPERM, 1), (.ENOENT, 2), (.ESRCH, 3), (.EINTR, 4), (.EIO, 5), (.ENXIO, 6), (.E2BIG, 7),
      (.ENOEXEC, 8), (.EBADF, 9), (.ECHILD, 10), (.EAGAIN, 11), (.ENOMEM, 12), (.EACCES, 13),
      (.EFAULT, 14), (.EBUSY, 16), (.EEXIST, 17), (.EXDEV, 18), (.ENODEV, 19), (.EINVAL, 22),
      (.ENFILE, 23), (.EMFILE, 24), (.ENOSPC, 28), (.EMLINK, 31), (.EDOM, 33), (.ERANGE, 34),
      (.EDEADLK, 35), (.ENAMETOOLONG, 36), (.ENOLCK, 37), (.ENOSYS, 38), (.EBADRQC, 56),
      (.EBADSLT, 57), (.ENODATA, 61), (.ETIME, 62), (.EBADMSG, 74), (.EOVERFLOW, 75), (.EILSEQ, 84),
      (.ERESTART, 85), (.EUSERS, 87), (.ENOTSOCK, 88), (.EOPNOTSUPP, 95), (.EADDRINUSE, 98),
      (.EADDRNOTAVAIL, 99), (.ENOBUFS, 105), (.EISCONN, 106), (.ENOTCONN, 107), (.ESHUTDOWN, 108),
      (.ETOOMANYREFS, 109), (.ETIMEDOUT, 110),
    ]
    for (errno, value) in expected {
      #expect(errno.rawValue == value, "\(errno)")
    }
    #expect(expected.count == XenABI.Errno.allCases.count)
  }

  @Test func errnoReturnValues() {
    #expect(XenABI.Errno.ENOSYS.returnValue == 0xFFFF_FFFF_FFFF_FFDA)
    #expect(XenABI.Errno.EPERM.returnValue == UInt64.max)
    #expect(XenABI.Errno.EINVAL.returnValue == UInt64(bitPattern: -22))
    for errno in XenABI.Errno.allCases {
      #expect(XenABI.Errno(returnValue: errno.returnValue) == errno)
    }
    #expect(XenABI.Errno(returnValue: 0) == nil)
    #expect(XenABI.Errno(returnValue: 38) == nil)
    #expect(XenABI.Errno(returnValue: UInt64(bitPattern: -20)) == nil)
    #expect(XenABI.Errno(returnValue: UInt64(bitPattern: Int64.min)) == nil)
  }

  @Test func domainIDs() {
    // xen.h: DOMID_*
    #expect(XenABI.DomainID.firstReserved == 0x7FF0)
    #expect(XenABI.DomainID.selfDomain == 0x7FF0)
    #expect(XenABI.DomainID.io == 0x7FF1)
    #expect(XenABI.DomainID.xen == 0x7FF2)
    #expect(XenABI.DomainID.cow == 0x7FF3)
    #expect(XenABI.DomainID.invalid == 0x7FF4)
    #expect(XenABI.DomainID.idle == 0x7FFF)
  }

  @Test func consoleIO() {
    // xen.h: CONSOLEIO_*
    #expect(XenABI.ConsoleIOCommand.write.rawValue == 0)
    #expect(XenABI.ConsoleIOCommand.read.rawValue == 1)
  }

  @Test func version() {
    // version.h: XENVER_*
    let commands: [(XenABI.VersionCommand, UInt32)] = [
      (.version, 0), (.extraversion, 1), (.compileInfo, 2), (.capabilities, 3), (.changeset, 4),
      (.platformParameters, 5), (.getFeatures, 6), (.pagesize, 7), (.guestHandle, 8),
      (.commandline, 9), (.buildID, 10),
    ]
    for (command, value) in commands { #expect(command.rawValue == value, "\(command)") }

    typealias V = GuestView.VersionLayout
    #expect(V.extraversionSize == 16)
    #expect(V.capabilitiesSize == 1024)
    #expect(V.changesetSize == 64)
    #expect(V.commandlineSize == 1024)
    #expect(V.domainHandleSize == 16)
    // struct xen_compile_info { char compiler[64], compile_by[16], compile_domain[32], compile_date[32]; }
    #expect(V.CompileInfo.size == 144)
    #expect(V.CompileInfo.Offset.compiler == 0)
    #expect(V.CompileInfo.Offset.compileBy == 64)
    #expect(V.CompileInfo.Offset.compileDomain == 80)
    #expect(V.CompileInfo.Offset.compileDate == 112)
    #expect(V.CompileInfo.compilerSize + V.CompileInfo.compileBySize + V.CompileInfo.compileDomainSize
      + V.CompileInfo.compileDateSize == 144)
    // struct xen_platform_parameters { unsigned long virt_start; }
    #expect(V.PlatformParameters.size == 8)
    // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
    #expect(V.FeatureInfo.size == 8)
    #expect(V.FeatureInfo.Offset.submapIndex == 0)
    #expect(V.FeatureInfo.Offset.submap == 4)
    // struct xen_build_id { uint32_t len; unsigned char buf[]; }
    #expect(V.BuildID.Offset.buffer == 4)
  }

  @Test func features() {
    // features.h: XENFEAT_*
    let expected: [(XenABI.Feature, UInt32)] = [
      (.writablePageTables, 0), (.writableDescriptorTables, 1), (.autoTranslatedPhysmap, 2),
      (.supervisorModeKernel, 3), (.paePgdirAbove4GB, 4), (.mmuPTUpdatePreserveAD, 5),
      (.highmemAssist, 6), (.gnttabMapAvailBits, 7), (.hvmCallbackVector, 8), (.hvmSafePVClock, 9),
      (.hvmPIRQs, 10), (.dom0, 11), (.grantMapIdentity, 12), (.memoryOpVnodeSupported, 13),
      (.armSMCCCSupported, 14), (.linuxRSDPUnrestricted, 15), (.notDirectMapped, 16),
      (.directMapped, 17), (.runstatePhysArea, 18), (.vcpuTimePhysArea, 19), (.dmMSIXAllWrites, 20),
    ]
    for (feature, bit) in expected { #expect(feature.rawValue == bit, "\(feature)") }
    #expect(XenABI.Feature.submapCount == 1)
    #expect(XenABI.Feature.hvmCallbackVector.submapIndex == 0)
    #expect(XenABI.Feature.hvmCallbackVector.submapBit == 0x100)
  }

  @Test func sched() {
    // sched.h: SCHEDOP_*, SHUTDOWN_*
    let ops: [(XenABI.SchedOp, UInt32)] = [
      (.yield, 0), (.block, 1), (.shutdown, 2), (.poll, 3), (.remoteShutdown, 4), (.shutdownCode, 5),
      (.watchdog, 6), (.pinOverride, 7),
    ]
    for (op, value) in ops { #expect(op.rawValue == value, "\(op)") }
    let reasons: [(XenABI.ShutdownReason, UInt32)] = [
      (.poweroff, 0), (.reboot, 1), (.suspend, 2), (.crash, 3), (.watchdog, 4), (.softReset, 5),
    ]
    for (reason, value) in reasons { #expect(reason.rawValue == value, "\(reason)") }

    typealias S = GuestView.SchedLayout
    #expect(S.Shutdown.size == 4)
    // struct sched_poll { XEN_GUEST_HANDLE(evtchn_port_t) ports; unsigned int nr_ports; uint64_t timeout; }
    #expect(S.Poll.size == 24)
    #expect(S.Poll.Offset.ports == 0)
    #expect(S.Poll.Offset.portCount == 8)
    #expect(S.Poll.Offset.timeout == 16)
    // struct sched_remote_shutdown { domid_t domain_id; unsigned int reason; }
    #expect(S.RemoteShutdown.size == 8)
    #expect(S.RemoteShutdown.Offset.reason == 4)
    #expect(S.Watchdog.size == 8)
    #expect(S.Watchdog.Offset.timeout == 4)
    #expect(S.PinOverride.size == 4)
  }

  @Test func memory() {
    // memory.h: XENMEM_*
    let ops: [(XenABI.MemoryOp, UInt32)] = [
      (.increaseReservation, 0), (.decreaseReservation, 1), (.maximumRAMPage, 2),
      (.currentReservation, 3), (.maximumReservation, 4), (.machphysMFNList, 5),
      (.populatePhysmap, 6), (.addToPhysmap, 7), (.memoryMap, 9), (.machineMemoryMap, 10),
      (.exchange, 11), (.machphysMapping, 12), (.setMemoryMap, 13), (.maximumGPFN, 14),
      (.removeFromPhysmap, 15), (.setPodTarget, 16), (.getPodTarget, 17),
      (.getSharingFreedPages, 18), (.getSharingSharedPages, 19), (.pagingOp, 20), (.accessOp, 21),
      (.sharingOp, 22), (.addToPhysmapBatch, 23), (.claimPages, 24), (.machphysCompatMFNList, 25),
      (.getVnumaInfo, 26), (.reservedDeviceMemoryMap, 27), (.acquireResource, 28),
    ]
    for (op, value) in ops { #expect(op.rawValue == value, "\(op)") }
    #expect(XenABI.MemoryOp.extentShift == 6)
    #expect(XenABI.MemoryOp.commandMask == 0x3F)

    let spaces: [(XenABI.MapSpace, UInt32)] = [
      (.sharedInfo, 0), (.grantTable, 1), (.gmfn, 2), (.gmfnRange, 3), (.gmfnForeign, 4), (.devMMIO, 5),
    ]
    for (space, value) in spaces { #expect(space.rawValue == value, "\(space)") }

    typealias M = GuestView.MemoryOpLayout
    #expect(XenABI.MemoryOpLayout.grantTableStatusIndexFlag == 0x8000_0000)
    // struct xen_memory_reservation { handle extent_start; xen_ulong_t nr_extents;
    //   unsigned int extent_order; unsigned int mem_flags; domid_t domid; }
    #expect(M.Reservation.size == 32)
    #expect(M.Reservation.Offset.extentStart == 0)
    #expect(M.Reservation.Offset.extentCount == 8)
    #expect(M.Reservation.Offset.extentOrder == 16)
    #expect(M.Reservation.Offset.memFlags == 20)
    #expect(M.Reservation.Offset.domid == 24)
    // struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space;
    //   xen_ulong_t idx; xen_pfn_t gpfn; }
    #expect(M.AddToPhysmap.size == 24)
    #expect(M.AddToPhysmap.Offset.domid == 0)
    #expect(M.AddToPhysmap.Offset.size == 2)
    #expect(M.AddToPhysmap.Offset.space == 4)
    #expect(M.AddToPhysmap.Offset.idx == 8)
    #expect(M.AddToPhysmap.Offset.gpfn == 16)
    // struct xen_add_to_physmap_batch
    #expect(M.AddToPhysmapBatch.size == 32)
    #expect(M.AddToPhysmapBatch.Offset.idxs == 8)
    #expect(M.AddToPhysmapBatch.Offset.gpfns == 16)
    #expect(M.AddToPhysmapBatch.Offset.errs == 24)
    // struct xen_remove_from_physmap { domid_t domid; xen_pfn_t gpfn; }
    #expect(M.RemoveFromPhysmap.size == 16)
    #expect(M.RemoveFromPhysmap.Offset.gpfn == 8)
    // struct xen_memory_map { unsigned int nr_entries; XEN_GUEST_HANDLE(void) buffer; }
    #expect(M.MemoryMap.size == 16)
    #expect(M.MemoryMap.Offset.entryCount == 0)
    #expect(M.MemoryMap.Offset.buffer == 8)
    // struct xen_foreign_memory_map { domid_t domid; struct xen_memory_map map; }
    #expect(M.ForeignMemoryMap.size == 24)
    #expect(M.ForeignMemoryMap.Offset.map == 8)
    // hvm/e820.h: struct e820entry { uint64_t addr, size; uint32_t type; } __attribute__((packed))
    #expect(M.E820Entry.size == 20)
    #expect(M.E820Entry.Offset.type == 16)
  }

  @Test func hvm() {
    // hvm/hvm_op.h: HVMOP_*
    let ops: [(XenABI.HVMOp, UInt32)] = [
      (.setParam, 0), (.getParam, 1), (.setPCIINTxLevel, 2), (.setISAIRQLevel, 3),
      (.setPCILinkRoute, 4), (.flushTLBs, 5), (.pagetableDying, 9), (.getTime, 10), (.xentrace, 11),
      (.setMemAccess, 12), (.getMemAccess, 13), (.getMemType, 15), (.setEvtchnUpcallVector, 23),
      (.guestRequestVMEvent, 24), (.altp2m, 25),
    ]
    for (op, value) in ops { #expect(op.rawValue == value, "\(op)") }

    // hvm/params.h: HVM_PARAM_*
    let params: [(XenABI.HVMParam, UInt32)] = [
      (.callbackIRQ, 0), (.storePFN, 1), (.storeEvtchn, 2), (.paeEnabled, 4), (.ioreqPFN, 5),
      (.bufioreqPFN, 6), (.viridian, 9), (.timerMode, 10), (.hpetEnabled, 11), (.identPT, 12),
      (.dmDomain, 13), (.acpiSState, 14), (.vm86TSS, 15), (.vptAlign, 16), (.consolePFN, 17),
      (.consoleEvtchn, 18), (.acpiIOPortsLocation, 19), (.memoryEventCR0, 20), (.memoryEventCR3, 21),
      (.memoryEventCR4, 22), (.memoryEventINT3, 23), (.nestedHVM, 24), (.memoryEventSingleStep, 25),
      (.bufioreqEvtchn, 26), (.pagingRingPFN, 27), (.monitorRingPFN, 28), (.sharingRingPFN, 29),
      (.memoryEventMSR, 30), (.tripleFaultReason, 31), (.ioreqServerPFN, 32),
      (.ioreqServerPageCount, 33), (.vmGenerationIDAddr, 34), (.altp2m, 35), (.x87FIPWidth, 36),
      (.vm86TSSSized, 37), (.mcaCap, 38),
    ]
    for (param, value) in params { #expect(param.rawValue == value, "\(param)") }
    #expect(XenABI.HVMParam.count == 39)  // HVM_NR_PARAMS
    #expect(XenABI.HVMParam.allCases.allSatisfy { $0.rawValue < XenABI.HVMParam.count })
    #expect(XenABI.HVMCallbackVia.typeShift == 56)
    #expect(XenABI.HVMCallbackVia.typeVector == 2)

    typealias H = GuestView.HVMLayout
    // struct xen_hvm_param { domid_t domid; uint16_t pad; uint32_t index; uint64_t value; }
    #expect(H.Param.size == 16)
    #expect(H.Param.Offset.domid == 0)
    #expect(H.Param.Offset.index == 4)
    #expect(H.Param.Offset.value == 8)
    // struct xen_hvm_evtchn_upcall_vector { uint32_t vcpu; uint8_t vector; }
    #expect(H.EvtchnUpcallVector.size == 8)
    #expect(H.EvtchnUpcallVector.Offset.vector == 4)
    #expect(H.GetTime.size == 8)
    // struct xen_hvm_pagetable_dying { domid_t domid; uint16_t pad[3]; uint64_t gpa; }
    #expect(H.PagetableDying.size == 16)
    #expect(H.PagetableDying.Offset.gpa == 8)
    // struct xen_hvm_get_mem_type { domid_t domid; uint16_t mem_type; uint16_t pad[2]; uint64_t pfn; }
    #expect(H.GetMemType.size == 16)
    #expect(H.GetMemType.Offset.memType == 2)
    #expect(H.GetMemType.Offset.pfn == 8)
  }

  @Test func vcpuOp() {
    // vcpu.h: VCPUOP_*
    let ops: [(XenABI.VCPUOp, UInt32)] = [
      (.initialise, 0), (.up, 1), (.down, 2), (.isUp, 3), (.getRunstateInfo, 4),
      (.registerRunstateMemoryArea, 5), (.setPeriodicTimer, 6), (.stopPeriodicTimer, 7),
      (.setSingleshotTimer, 8), (.stopSingleshotTimer, 9), (.registerVCPUInfo, 10), (.sendNMI, 11),
      (.getPhysID, 12), (.registerVCPUTimeMemoryArea, 13), (.registerRunstatePhysArea, 14),
      (.registerVCPUTimePhysArea, 15),
    ]
    for (op, value) in ops { #expect(op.rawValue == value, "\(op)") }
    let states: [(XenABI.RunState, Int32)] = [(.running, 0), (.runnable, 1), (.blocked, 2), (.offline, 3)]
    for (state, value) in states { #expect(state.rawValue == value) }

    typealias V = GuestView.VCPULayout
    // struct vcpu_runstate_info { int state; uint64_t state_entry_time; uint64_t time[4]; }
    #expect(V.RunstateInfo.size == 48)
    #expect(V.RunstateInfo.Offset.stateEntryTime == 8)
    #expect(V.RunstateInfo.Offset.time == 16)
    #expect(V.RunstateInfo.updateFlag == 0x8000_0000_0000_0000)
    #expect(V.RegisterMemoryArea.size == 8)
    #expect(V.SetPeriodicTimer.size == 8)
    // struct vcpu_set_singleshot_timer { uint64_t timeout_abs_ns; uint32_t flags; }
    #expect(V.SetSingleshotTimer.size == 16)
    #expect(V.SetSingleshotTimer.Offset.flags == 8)
    #expect(V.SetSingleshotTimer.futureFlag == 1)
    // struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset; uint32_t rsvd; }
    #expect(V.RegisterVCPUInfo.size == 16)
    #expect(V.RegisterVCPUInfo.Offset.offset == 8)
    #expect(V.RegisterVCPUInfo.Offset.reserved == 12)
    #expect(V.GetPhysID.size == 8)
  }

  @Test func sharedInfo() {
    // xen.h, struct vcpu_time_info: 32 bytes.
    #expect(XenABI.VCPUTimeInfo.size == 32)
    #expect(XenABI.VCPUTimeInfo.Offset.version == 0)
    #expect(XenABI.VCPUTimeInfo.Offset.tscTimestamp == 8)
    #expect(XenABI.VCPUTimeInfo.Offset.systemTime == 16)
    #expect(XenABI.VCPUTimeInfo.Offset.tscToSystemMul == 24)
    #expect(XenABI.VCPUTimeInfo.Offset.tscShift == 28)
    #expect(XenABI.VCPUTimeInfo.Offset.flags == 29)
    // arch-x86/xen-x86_64.h, struct arch_vcpu_info { unsigned long cr2; unsigned long pad; }
    #expect(XenABI.ArchVCPUInfo.size == 16)
    // xen.h, struct vcpu_info: 64 bytes on x86.
    #expect(XenABI.VCPUInfo.size == 64)
    #expect(XenABI.VCPUInfo.Offset.upcallPending == 0)
    #expect(XenABI.VCPUInfo.Offset.upcallMask == 1)
    #expect(XenABI.VCPUInfo.Offset.pendingSelector == 8)
    #expect(XenABI.VCPUInfo.Offset.arch == 16)
    #expect(XenABI.VCPUInfo.Offset.time == 32)
    #expect(XenABI.VCPUInfo.Offset.time + XenABI.VCPUTimeInfo.size == XenABI.VCPUInfo.size)
    // arch-x86/xen.h, struct arch_shared_info: six unsigned longs on x86_64.
    #expect(XenABI.ArchSharedInfo.size == 48)
    #expect(XenABI.ArchSharedInfo.Offset.p2mGeneration == 40)
    // xen.h, struct shared_info on x86_64 (MAX_VIRT_CPUS 32).
    #expect(XenABI.maxVirtualCPUsInSharedInfo == 32)
    #expect(XenABI.eventChannelCount2Level == 4096)
    #expect(XenABI.SharedInfo.Offset.vcpuInfo == 0)
    #expect(XenABI.SharedInfo.Offset.evtchnPending == 32 * 64)
    #expect(XenABI.SharedInfo.Offset.evtchnPending == 2048)
    #expect(XenABI.SharedInfo.Offset.evtchnMask == 2560)
    #expect(XenABI.SharedInfo.Offset.wcVersion == 3072)
    #expect(XenABI.SharedInfo.Offset.wcSec == 3076)
    #expect(XenABI.SharedInfo.Offset.wcNsec == 3080)
    #expect(XenABI.SharedInfo.Offset.wcSecHi == 3084)
    #expect(XenABI.SharedInfo.Offset.arch == 3088)
    #expect(XenABI.SharedInfo.size == 3136)
    #expect(XenABI.SharedInfo.Offset.arch + XenABI.ArchSharedInfo.size == XenABI.SharedInfo.size)
    #expect(XenABI.SharedInfo.size <= 4096)
    #expect(XenABI.SharedInfo.vcpuInfoOffset(3) == 192)
  }

  @Test func eventChannel() {
    // event_channel.h: EVTCHNOP_*
    let ops: [(XenABI.EventChannelOp, UInt32)] = [
      (.bindInterdomain, 0), (.bindVIRQ, 1), (.bindPIRQ, 2), (.close, 3), (.send, 4), (.status, 5),
      (.allocUnbound, 6), (.bindIPI, 7), (.bindVCPU, 8), (.unmask, 9), (.reset, 10),
      (.initControl, 11), (.expandArray, 12), (.setPriority, 13),
    ]
    for (op, value) in ops { #expect(op.rawValue == value, "\(op)") }
    let statuses: [(XenABI.EventChannelStatus, UInt32)] = [
      (.closed, 0), (.unbound, 1), (.interdomain, 2), (.pirq, 3), (.virq, 4), (.ipi, 5),
    ]
    for (status, value) in statuses { #expect(status.rawValue == value) }
    // xen.h: VIRQ_*
    #expect(XenABI.VIRQ.timer.rawValue == 0)
    #expect(XenABI.VIRQ.debug.rawValue == 1)
    #expect(XenABI.VIRQ.console.rawValue == 2)
    #expect(XenABI.VIRQ.domException.rawValue == 3)
    #expect(XenABI.VIRQ.arch0.rawValue == 16)
    #expect(XenABI.VIRQ.count == 24)

    typealias E = GuestView.EventChannelLayout
    // struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; }
    #expect(E.AllocUnbound.size == 8)
    #expect(E.AllocUnbound.Offset.remoteDom == 2)
    #expect(E.AllocUnbound.Offset.port == 4)
    // struct evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t remote_port, local_port; }
    #expect(E.BindInterdomain.size == 12)
    #expect(E.BindInterdomain.Offset.remotePort == 4)
    #expect(E.BindInterdomain.Offset.localPort == 8)
    #expect(E.BindVIRQ.size == 12)
    #expect(E.BindVIRQ.Offset.port == 8)
    #expect(E.BindIPI.size == 8)
    #expect(E.Port.size == 4)
    // struct evtchn_status: dom, port, status, vcpu, then a union of at most 8 bytes.
    #expect(E.Status.size == 24)
    #expect(E.Status.Offset.status == 8)
    #expect(E.Status.Offset.vcpu == 12)
    #expect(E.Status.Offset.u == 16)
    #expect(E.BindVCPU.size == 8)
    // struct evtchn_init_control { uint64_t control_gfn; uint32_t offset, vcpu; uint8_t link_bits; uint8_t _pad[7]; }
    #expect(E.InitControl.size == 24)
    #expect(E.InitControl.Offset.linkBits == 16)
    #expect(E.ExpandArray.size == 8)
    #expect(E.SetPriority.size == 8)
  }

  @Test func cpuid() {
    // arch-x86/cpuid.h
    typealias C = XenABI.XenCPUID
    #expect(C.base == 0x4000_0000)
    #expect(C.hypercallPageMSR == 0x4000_0000)
    #expect(C.Leaf.hvmFeatures == 4)
    // The signature registers spell "XenVMMXenVMM" in EBX, ECX, EDX order.
    var signature: [UInt8] = []
    for register in [C.signatureEBX, C.signatureECX, C.signatureEDX] {
      for shift in stride(from: 0, to: 32, by: 8) { signature.append(UInt8(truncatingIfNeeded: register >> UInt32(shift))) }
    }
    #expect(signature == Array("XenVMMXenVMM".utf8))
    #expect(C.signatureEBX == 0x566e_6558)
    #expect(C.signatureECX == 0x6558_4d4d)
    #expect(C.signatureEDX == 0x4d4d_566e)
    #expect(C.HVMFeature.vcpuIDPresent == 0x08)
    #expect(C.HVMFeature.domIDPresent == 0x10)
    #expect(C.HVMFeature.upcallVector == 0x40)
  }

  @Test func elfNotes() {
    // elfnote.h: XEN_ELFNOTE_*
    #expect(XenABI.ElfNote.entry.rawValue == 1)
    #expect(XenABI.ElfNote.hypercallPage.rawValue == 2)
    #expect(XenABI.ElfNote.features.rawValue == 10)
    #expect(XenABI.ElfNote.supportedFeatures.rawValue == 17)
    #expect(XenABI.ElfNote.phys32Entry.rawValue == 18)
    #expect(XenABI.ElfNote.phys32Reloc.rawValue == 19)
    #expect(XenABI.ElfNote.name == Array("Xen".utf8))
  }
}
