#if os(none)
import GuestKit
import GuestSupport

/// Every hypercall number the Xen ABI defines (XenABI.Hypercall, 0-55) and some it does not.
let unknownHypercalls: [UInt64] = [43, 44, 47, 56, 57, 63, 64, 100, 1000, 0xFFFF_FFFF, 1 << 32, 0xFFFF_FFFF_FFFF_FFFF]

extension Fuzzer {
  /// One hypercall: a structured one (memory, timers, version, console, vcpu, sched, event
  /// channels, HVM) most of the time, else any number with random registers.
  mutating func hypercall() {
    if xenstoreTurn() { return xenstoreRing() }
    switch random.below(40) {
    case 0...7: memoryOp()
    case 8...9: setTimerOp()
    case 10...11: xenVersion()
    case 12: if random.percent(25) { consoleIO() } else { xenVersion() }
    case 13...17: vcpuOp()
    case 18...21: schedOp()
    case 22...31: eventChannelOp()
    case 32...34: hvmOp()
    case 35...36: grantTableOp()
    default: unstructured()
    }
  }

  /// VMMCALL with RAX = `number` (any 64-bit value, unlike `Xen.hypercall`'s Int).
  @discardableResult
  mutating func call(_ number: UInt64, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0, _ a4: UInt64 = 0, _ a5: UInt64 = 0) -> Int64 {
    if layout.trace { trace("hypercall \(number) \(hex(a1)) \(hex(a2)) \(hex(a3)) \(hex(a4)) \(hex(a5))") }
    return Int64(hv_hypercall5(UInt(number), UInt(a1), UInt(a2), UInt(a3), UInt(a4), UInt(a5)))
  }

  /// A sub-op number: one of `known` mostly, else a few past them and the boundaries.
  mutating func subop(_ known: Int) -> UInt64 {
    if random.percent(90) { return random.below(UInt64(known)) }
    return random.pick([UInt64(known), UInt64(known) + 1, 63, 64, 99, 0xFFFF_FFFF, 1 << 32, 0xFFFF_FFFF_FFFF_FFFF])
  }

  /// An argument whose layout is not known here: eight words, each a safe frame, a pointer to a
  /// safe frame list at an edge, a count or a boundary. What a handler might make of it cannot
  /// reach the guest's own memory.
  mutating func opaqueArgument() -> UInt64 {
    var b = Bytes()
    for _ in 0..<8 {
      switch random.below(4) {
      case 0: b.u64(safeGFN())
      case 1: b.u64(placeFrameList(Int(random.below(16))))
      case 2: b.u64(random.below(16))
      default: b.u64(0xFFFF_C000_0000_0000 | (u64() & 0x1FFF_FFFF_F000))   // upper half, unmapped
      }
    }
    return place(b.bytes)
  }

  // MARK: memory_op (12)

  mutating func memoryOp() {
    let op = subop(29)
    // The continuation's start extent rides in the command's upper bits (MEMOP_EXTENT_SHIFT 6).
    // For the reservation ops a small one only: the hypervisor reads extent `start` at
    // list + 8 * start, and a start of thousands would take its frame numbers from anywhere in
    // this guest's memory, its code's frame among them (seed 2373311337 gave gfn 0x100 back).
    let reservationOp = op == 0 || op == 1 || op == 6
    let command = random.percent(10) ? op | ((reservationOp ? random.below(17) : u64()) << 6) : op
    switch op {
    case 0, 1, 6:                        // increase_reservation, decrease_reservation, populate_physmap
      call(12, command, reservation())
    case 2:                              // maximum_ram_page
      call(12, command, u64())
    case 3, 4:                           // current_reservation, maximum_reservation: a domid
      var b = Bytes(); b.u16(domid())
      call(12, command, place(b.bytes))
    case 7:                              // add_to_physmap
      call(12, command, addToPhysmap())
      if vcpu == 0 { Memory.placeSharedInfo(at: layout.sharedHome) }
    case 9, 10:                          // memory_map, machine_memory_map
      var b = Bytes()
      b.u32(random.percent(70) ? UInt32(random.below(40)) : u32()); b.u32(0)
      b.u64(random.percent(80) ? placeFrameList(Int(random.below(64))) : badPointer())
      call(12, command, place(b.bytes))
    case 11:                             // exchange: two reservations and nr_exchanged
      var b = Bytes()
      for _ in 0..<2 {
        b.u64(placeFrameList(4)); b.u64(random.below(8)); b.u32(UInt32(random.below(3))); b.u32(0); b.u16(domid()); b.pad(to: b.bytes.count + 6)
      }
      b.u64(u64())
      call(12, command, place(b.bytes))
    case 15:                             // remove_from_physmap {domid, gpfn}
      var b = Bytes(); b.u16(domid()); b.pad(to: 8); b.u64(safeGFN())
      call(12, command, place(b.bytes))
    case 23:                             // add_to_physmap_batch
      var b = Bytes()
      let count = random.percent(80) ? UInt16(random.below(8)) : UInt16(truncatingIfNeeded: u32())
      b.u16(domid()); b.u16(UInt16(random.below(6))); b.u16(count); b.u16(domid())
      b.u64(placeFrameList(Int(count))); b.u64(placeFrameList(Int(count))); b.u64(placeFrameList(Int(count)))
      call(12, command, place(b.bytes))
    default:
      call(12, command, opaqueArgument())
    }
  }

  /// struct xen_memory_reservation {extent_start, nr_extents, extent_order, mem_flags, domid}:
  /// extents from the safe frames (order > 0 only in the 2 MiB blocks above RAM, or frames that
  /// cannot exist), counts from 0 to huge.
  mutating func reservation() -> UInt64 {
    let order: UInt32 = random.percent(75) ? 0 : random.percent(60) ? random.pick32([1, 2, 9]) : u32()
    let count: UInt64 = random.percent(80) ? random.below(17) : u64()
    var list = placeFrameList(Int(min(count, 512)))
    if order > 0 && random.percent(95) {
      // Whole extents: only blocks that lie above RAM (or cannot exist).
      let base = order <= 9 ? (layout.fresh & ~511) &+ 512 &* (1 &+ random.below(2)) : 1 << 40
      let which = random.below(places.edges.count)
      for i in 0..<512 { places.edgeBacking[which].storeBytes(of: base, toByteOffset: i * 8, as: UInt64.self) }
      list = places.edges[which] &+ 4096 &- 8 &* min(max(count, 1), 512)
    }
    var b = Bytes()
    b.u64(list); b.u64(count); b.u32(order)
    b.u32(random.percent(80) ? 0 : u32())
    b.u16(random.percent(85) ? Xen.domidSelf : domid())
    b.pad(to: 32)
    return place(b.bytes)
  }

  /// struct xen_add_to_physmap {domid, size, space, idx, gpfn}. Only vcpu 0 moves shared_info
  /// (and puts it home again at once): vcpu 1 gets the other spaces, or shared_info for another
  /// domain or with a nonzero index.
  mutating func addToPhysmap() -> UInt64 {
    var space: UInt32 = random.percent(60) ? 0 : random.percent(80) ? UInt32(random.below(7)) : u32()
    var dom = random.percent(80) ? Xen.domidSelf : domid()
    var index: UInt64 = random.percent(80) ? 0 : u64()
    if vcpu != 0 && space == 0 && (dom == Xen.domidSelf || dom == layout.domain) && index == 0 {
      switch random.below(3) {
      case 0: space = 1 + UInt32(random.below(5))
      case 1: dom = 0x7FF2
      default: index = 1
      }
    }
    // XENMAPSPACE_gmfn (2) and gmfn_range (3) take the frame at `index` away from where it is
    // mapped: only a frame this guest may lose, or a small random index could give away its
    // own code. The other spaces read `index` as something else (a grant frame, a foreign
    // frame, an MMIO frame).
    if space == 2 || space == 3 {
      index = safeGFN()
    } else if space != 0 {
      index = random.percent(70) ? safeGFN() : index
    }
    var b = Bytes()
    b.u16(dom); b.u16(UInt16(random.below(3))); b.u32(space); b.u64(index); b.u64(safeGFN())
    return place(b.bytes)
  }

  // MARK: set_timer_op (15)

  mutating func deadline() -> UInt64 {
    switch random.below(4) {
    case 0: return layout.now() &+ random.below(5 * ms)
    case 1: return layout.now() &- random.below(5 * ms)
    case 2: return 0
    default: return random.pick(wide)
    }
  }

  mutating func setTimerOp() {
    call(15, deadline())
  }

  // MARK: xen_version (17)

  mutating func xenVersion() {
    let command = subop(11)
    // What each command writes, so the buffer placed at an edge ends where the output does.
    let sizes: [Int] = [0, 16, 144, 1024, 64, 8, 8, 0, 16, 1024, 64]
    var b = Bytes()
    if command == 6 { b.u32(random.percent(70) ? UInt32(random.below(3)) : u32()) }       // get_features: submap_idx
    if command == 10 { b.u32(random.percent(50) ? UInt32(random.below(64)) : u32()) }      // build_id: len
    b.pad(to: command < 11 ? max(sizes[Int(command)], b.bytes.count) : 64)
    call(17, command, random.percent(90) ? place(b.bytes) : badPointer())
  }

  // MARK: console_io (18)

  mutating func consoleIO() {
    let command = random.percent(90) ? random.below(2) : subop(2)
    if command == 0 && random.percent(50) {
      // One byte, from a place that may straddle into an unmapped page (one byte a call keeps
      // the log readable: they gather into long lines of ~).
      call(18, 0, 1, place([0x7E]))
      return
    }
    // Reads, and writes whose buffer cannot be read: counts up to huge, buffers at edges only
    // (a large count runs into the unmapped page there, not into the guest's memory). A write
    // starts at most 64 bytes before the page end, so it prints at most that much.
    let which = random.below(places.edges.count)
    for i in 0..<4096 { places.edgeBacking[which].storeBytes(of: 0x7E, toByteOffset: i, as: UInt8.self) }
    let count: UInt64 = random.percent(50) ? random.below(4097) : u64()
    let offset: UInt64 = command == 0 ? 4096 - 1 - random.below(UInt64(64)) : random.below(UInt64(4096))
    let buffer = random.percent(80) ? places.edges[which] &+ offset : badPointer()
    call(18, command, count, buffer)
  }

  // MARK: vcpu_op (24)

  mutating func vcpuOp() {
    let command = subop(16)
    var target = UInt64(vcpuID())
    var b = Bytes()
    switch command {
    case 0:                              // initialise: a context of boundary values
      b.u32(random.percent(70) ? UInt32(random.below(3)) : u32()); b.u32(0)
      for _ in 0..<15 { b.u64(u64()) }
    case 2:                              // down: vcpu 0 stays up; vcpu 1 may take itself down
      if target == 0 { target = 1 }
    case 4, 12:                          // get_runstate_info, get_physid: output
      b.pad(to: command == 4 ? 48 : 8)
    case 5, 13:                          // register_runstate_memory_area, register_vcpu_time_memory_area
      b.u64(areaAddress())
    case 6:                              // set_periodic_timer
      b.u64(random.percent(50) ? random.pick([1 * ms, 10 * ms, 999_999, 1_000_000, 0x3FFF_FFFF_FFFF_FFFF]) : u64())
    case 8:                              // set_singleshot_timer
      b.u64(deadline()); b.u32(random.percent(70) ? UInt32(random.below(2)) : u32()); b.u32(0)
    case 10:                             // register_vcpu_info: only the page that stays
      let other = u64()
      b.u64(random.percent(60) ? layout.vcpuInfoPage : random.pick([1 << 40, (1 << 40) - 1, other, layout.fresh &+ Layout.freshCount &+ 64]))
      b.u32(random.percent(60) ? UInt32(random.below(64)) * 64 : random.pick32([4032, 4033, 4095, 4096, 0xFFFF_FFFF])); b.u32(u32())
    case 11:                             // send_nmi: only to vcpus that do not exist
      target = max(target, 2)
    case 14, 15:                         // register_runstate_phys_area, register_vcpu_time_phys_area
      b.u64(areaPhysical())
    default:
      b.u64(u64())
    }
    let argument = b.bytes.isEmpty ? u64() : place(b.bytes)
    call(24, command, target, argument)
  }

  /// A guest-virtual address for an area the hypervisor keeps writing: the end of the area edge
  /// page (straddling into the unmapped page after it), somewhere inside it, a frame above RAM
  /// that comes and goes, a bad pointer, or 0 (unregister).
  mutating func areaAddress() -> UInt64 {
    switch random.below(5) {
    case 0: return places.areaEdge &+ 4096 &- random.below(64)
    case 1: return places.areaEdge &+ random.below(4096 - 64)
    case 2: return (layout.fresh &+ random.below(Layout.freshCount)) << 12 &+ random.below(4096)
    case 3: return badPointer()
    default: return 0
    }
  }

  /// The same for the physical-address variants: inside the area page (which nothing else uses),
  /// a frame above RAM, frames that cannot exist.
  mutating func areaPhysical() -> UInt64 {
    switch random.below(4) {
    case 0: return Xen.address(places.areaBacking) &+ random.below(4096 - 64)
    case 1: return (layout.fresh &+ random.below(Layout.freshCount)) << 12 &+ random.below(4096)
    case 2: return random.pick([1 << 52, 0xFFFF_FFFF_FFFF_F000, 1 << 63, 0])
    default: return u64() | 1 << 62
    }
  }

  // MARK: sched_op (29)

  mutating func schedOp() {
    let command = subop(8)
    switch command {
    case 0:
      call(29, 0, u64())
    case 1:                              // block, with an event already pending: returns at once
      // Under 2-level only. Under FIFO (an init_control of either vcpu) the send raises
      // upcall_pending only if it links the port into an empty queue of a control block this
      // guest never reads, so nothing would end the block. Asked after the send: a switch to
      // FIFO later leaves the upcall_pending that send set, which ends the block still.
      let ipi = Events.bindIPI(vcpu: vcpu)
      if ipi > 0 {
        Events.send(UInt32(ipi))
        if !eventsAreFIFO() { call(29, 1, u64()) }
        Events.close(UInt32(ipi))
      }
    case 2:                              // shutdown: only arguments that cannot shut it down
      var b = Bytes(); b.u32(random.percent(50) ? random.pick32([6, 7, 255, 0xFFFF_FFFF]) : max(6, u32()))
      let pointer = random.percent(50) ? place(b.bytes) : straddling(b.bytes.count)
      call(29, 2, pointer)
    case 3:
      poll()
    case 4:                              // remote_shutdown {domid, reason}: never this domain
      var dom = domid()
      if dom == Xen.domidSelf || dom == layout.domain { dom = layout.domain == 1 ? 2 : 1 }
      var b = Bytes(); b.u16(dom); b.pad(to: 4); b.u32(u32())
      call(29, 4, place(b.bytes))
    case 5:                              // shutdown_code: invalid reasons only (a valid one sticks, and would
      // be reported instead of a crash at the end: the run could no longer fail)
      var b = Bytes(); b.u32(max(6, u32()))
      call(29, 5, random.percent(80) ? place(b.bytes) : badPointer())
    case 6:                              // watchdog: timeout 0 only (an armed one would end the domain)
      var b = Bytes(); b.u32(u32()); b.u32(0)
      call(29, 6, place(b.bytes))
    default:
      var b = Bytes(); b.u64(u64()); b.u64(u64())
      call(29, command, place(b.bytes))
    }
  }

  /// A pointer to `size` readable bytes that are not all readable: the end of an edge page,
  /// 1 to size-1 bytes short, or a bad pointer.
  mutating func straddling(_ size: Int) -> UInt64 {
    if size < 2 || random.percent(30) { return badPointer() }
    let which = random.below(places.edges.count)
    if which == 2 && vcpu == 0 { return badPointer() }   // the top page wraps into page 0
    return places.edges[which] &+ 4096 &- UInt64(size) &+ 1 &+ random.below(UInt64(size - 1))
  }

  /// SCHEDOP_poll {ports, nr_ports, timeout}. A timeout that may never come (0, far ahead) only
  /// with a port in the list that is pending already, and only under 2-level: under FIFO a port
  /// with no event word yet (no array page for it) is never pending, however often it is sent
  /// on, so the poll gets a timeout 1 ms either side of now there.
  mutating func poll() {
    // Only hypercalls on it: shared_info may be away (vcpu 0 moves it), so its bits are not
    // touched here.
    let ipi = Events.bindIPI(vcpu: vcpu)
    let pending = ipi > 0 ? UInt32(ipi) : 0
    if ipi > 0 { Events.send(pending) }
    // Asked after the send: a switch to FIFO after it leaves the upcall_pending the send set
    // under 2-level, and that ends the poll too.
    let fifo = eventsAreFIFO()
    let count = random.percent(80) ? Int(random.below(5)) : Int(random.pick32([128, 129, 4096, 0xFFFF_FFFF]))
    var b = Bytes()
    for _ in 0..<min(count, 130) { b.u32(port()) }
    let includesPending = ipi > 0 && count > 0 && count <= 128 && random.percent(50)
    if includesPending { b.bytes[0] = UInt8(pending & 0xFF); b.bytes[1] = UInt8(pending >> 8); b.bytes[2] = 0; b.bytes[3] = 0 }
    let list = b.bytes.isEmpty ? badPointer() : place(b.bytes)
    let listReadable = list == Xen.address(places.ram) || (list >= Xen.address(places.ram) && list < Xen.address(places.ram) + 4096)
    let timeout: UInt64 = includesPending && listReadable && !fifo ? random.pick(wide) : layout.now() &+ random.below(2 * ms) &- ms
    var arg = Bytes(); arg.u64(list); arg.u32(UInt32(truncatingIfNeeded: count)); arg.u32(0); arg.u64(timeout)
    call(29, 3, place(arg.bytes))
    if ipi > 0 { Events.close(pending) }
  }

  // MARK: event_channel_op (32)

  mutating func eventChannelOp() {
    let command = subop(14)
    var b = Bytes()
    switch command {
    case 0: b.u16(domid()); b.pad(to: 4); b.u32(port()); b.u32(0)                            // bind_interdomain
    case 1: b.u32(random.percent(70) ? UInt32(random.below(25)) : u32()); b.u32(vcpuID()); b.u32(0) // bind_virq
    case 2: b.u32(u32()); b.u32(u32()); b.u32(0)                                              // bind_pirq
    case 3, 4, 9: b.u32(port())                                                               // close, send, unmask
    case 5: b.u16(domid()); b.pad(to: 4); b.u32(port()); b.pad(to: 24)                        // status
    case 6: b.u16(random.percent(70) ? Xen.domidSelf : domid()); b.u16(domid()); b.u32(0)     // alloc_unbound
    case 7: b.u32(vcpuID()); b.u32(0)                                                         // bind_ipi
    case 8: b.u32(port()); b.u32(vcpuID())                                                    // bind_vcpu
    case 10: b.u16(random.percent(60) ? Xen.domidSelf : domid())                              // reset
    case 11:                                                                                  // init_control
      // {control_gfn, offset, vcpu}: aligned offsets inside the page, the edge, and any.
      let aligned = UInt32(random.below(504)) &* 8
      let offsets: [UInt32] = [0, aligned, 4096 - 72, 4096 - 64, 4, u32()]
      let offset = random.pick32(offsets)
      b.u64(safeGFN()); b.u32(offset); b.u32(vcpuID()); b.pad(to: 24)
    case 12: b.u64(safeGFN())                                                                 // expand_array
    case 13: b.u32(port()); b.u32(random.percent(70) ? UInt32(random.below(18)) : u32())      // set_priority
    default: b.u64(u64()); b.u64(u64())
    }
    call(32, command, random.percent(92) ? place(b.bytes) : badPointer())
  }

  // MARK: hvm_op (34)

  mutating func hvmOp() {
    let command = subop(26)
    var b = Bytes()
    switch command {
    case 0, 1:                           // set_param, get_param {domid, pad, index, value}
      var index = random.percent(80) ? UInt32(random.below(40)) : u32()
      // The callback that delivers vcpu 0's events is vcpu 0's to set (its HLT step relies on it).
      if command == 0 && index == 0 && vcpu != 0 { index = 1 }
      b.u16(random.percent(85) ? Xen.domidSelf : domid()); b.u16(0); b.u32(index); b.u64(u64())
    case 23:                             // set_evtchn_upcall_vector {vcpu, vector}: each vcpu its own
      let target = vcpuID()
      b.u32(target == 0 && vcpu != 0 ? 1 : target); b.u8(UInt8(truncatingIfNeeded: random.next()))
      b.pad(to: 8)
    default:
      call(34, command, opaqueArgument())
      return
    }
    call(34, command, random.percent(92) ? place(b.bytes) : badPointer())
  }

  // MARK: grant_table_op (20)

  /// GNTTABOP_*: the table's own commands with their structures, the mapping and copying ones
  /// with boundary references, domains and addresses (half the time the grants it made itself,
  /// so maps, unmaps and copies succeed too), and the rest. Every list the hypervisor writes
  /// (setup_table's frame_list) goes to an edge page or a bad pointer, never into this guest's
  /// own memory; map_grant_ref's host address is a frame this guest may lose, and what a copy
  /// may write is a scratch frame (its own grants' and frame numbers' pages).
  mutating func grantTableOp() {
    let command = subop(13)
    var count: UInt64 = random.percent(85) ? 1 : random.pick([0, 2, 3, 512, 0xFFFF_FFFF, 1 << 32, 0xFFFF_FFFF_FFFF_FFFF])
    var b = Bytes()
    switch command {
    case 0:                              // map_grant_ref {host_addr, flags, ref, dom; status, handle, dev_bus_addr}
      if random.percent(50) {            // its own grants (refs 8-15), mostly host maps, into the window
        b.u64(grantWindowGFN() << 12); b.u32(random.percent(80) ? random.pick32([2, 6]) : UInt32(random.below(32)))
        b.u32(8 &+ UInt32(random.below(8))); b.u16(random.percent(50) ? Xen.domidSelf : layout.domain)
      } else {
        b.u64(safeGFN() << 12); b.u32(random.percent(80) ? UInt32(random.below(32)) : u32())
        b.u32(grantRef()); b.u16(domid())
      }
      b.pad(to: 32)
    case 1:                              // unmap_grant_ref {host_addr, dev_bus_addr, handle; status}
      b.u64((random.percent(60) ? grantWindowGFN() : safeGFN()) << 12); b.u64(u64())
      b.u32(random.percent(80) ? UInt32(random.below(24)) : u32()); b.pad(to: 24)
    case 2:                              // setup_table {dom, nr_frames; status; frame_list}
      b.u16(random.percent(85) ? Xen.domidSelf : domid()); b.pad(to: 4)
      let frames = random.percent(80) ? UInt32(random.below(70)) : u32()
      b.u32(frames); b.pad(to: 16)
      b.u64(random.percent(80) ? frameListPlace(Int(min(frames, 512))) : badPointer())
    case 5:                              // copy {source {ref/gmfn, domid, offset}, dest {...}, len, flags; status}
      // A side without GNTCOPY_*_gref names one of this guest's own frames when its domid is
      // DOMID_SELF, which the copy then reads or writes: only safe frames there, never a ref
      // number taken for a frame (that would be the guest's own code).
      let flags = UInt16(random.below(8))
      for side in 0..<2 {
        let isGrant = flags & (1 << UInt16(side)) != 0
        b.u64(isGrant ? UInt64(grantRef()) : safeGFN())
        b.u16(random.percent(50) ? (random.percent(50) ? Xen.domidSelf : layout.domain) : domid())
        b.u16(random.percent(70) ? UInt16(random.below(4097)) : UInt16(truncatingIfNeeded: random.next()))
        b.pad(to: b.bytes.count + 4)
      }
      b.u16(random.percent(70) ? UInt16(random.below(4097)) : UInt16(truncatingIfNeeded: random.next()))
      b.u16(flags); b.pad(to: 40)
    case 6:                              // query_size {dom; nr_frames, max_nr_frames, status}
      b.u16(random.percent(85) ? Xen.domidSelf : domid()); b.pad(to: 16)
    case 8:                              // set_version {version}
      b.u32(random.pick32([1, 1, 2, 0, 3, 0xFFFF_FFFF]))
    case 10:                             // get_version {dom, pad; version}
      b.u16(random.percent(85) ? Xen.domidSelf : domid()); b.pad(to: 8)
    case 11:                             // swap_grant_ref {ref_a, ref_b; status}
      b.u32(grantRef()); b.u32(grantRef()); b.pad(to: 12)
    default:
      call(20, command, opaqueArgument(), count)
      return
    }
    if count > 1 && random.percent(50) { count = 1 }
    // map, unmap and copy write a status into every element of the batch: a batch of more
    // than one lies at the end of an edge page, so what the count claims beyond it faults
    // rather than running into this guest's own memory.
    if count > 1 && (command == 0 || command == 1 || command == 5) {
      call(20, command, random.percent(90) ? batchAtEdge(b.bytes, count: count) : badPointer(), count)
      return
    }
    call(20, command, random.percent(90) ? place(b.bytes) : random.percent(50) ? straddling(b.bytes.count) : badPointer(), count)
  }

  /// Up to 4 copies of `element` ending exactly at the end of an edge page whose next page is
  /// unmapped (not the top page on vcpu 0: it wraps into page 0).
  mutating func batchAtEdge(_ element: [UInt8], count: UInt64) -> UInt64 {
    var which = random.below(places.edges.count)
    if which == 2 && vcpu == 0 { which = 0 }
    let copies = Int(min(count, 4))
    let start = 4096 - copies * element.count
    for c in 0..<copies {
      for (i, byte) in element.enumerated() {
        places.edgeBacking[which].storeBytes(of: byte, toByteOffset: start + c * element.count + i, as: UInt8.self)
      }
    }
    return places.edges[which] &+ UInt64(start)
  }

  /// A grant reference: the ones it granted itself (8-15), the reserved ones, this guest's
  /// table's, its end, and beyond.
  mutating func grantRef() -> UInt32 {
    if random.percent(30) { return 8 &+ UInt32(random.below(8)) }
    return random.percent(70) ? UInt32(random.below(600)) : random.pick32([511, 512, 32767, 32768, 0xFFFF_FFFF, u32()])
  }

  /// A gfn of the grant window: unpopulated space above RAM where its own grants get mapped.
  mutating func grantWindowGFN() -> UInt64 {
    layout.fresh &+ random.below(Layout.grantWindow)
  }

  /// Room for `count` 8-byte entries at the end of an edge page (the hypervisor writes them;
  /// a count larger than the page runs into the unmapped page after it).
  mutating func frameListPlace(_ count: Int) -> UInt64 {
    let which = random.below(places.edges.count)
    if which == 2 && vcpu == 0 { return badPointer() }   // the top page wraps into page 0
    let n = min(max(count, 1), 512)
    return places.edges[which] &+ UInt64(4096 - n * 8)
  }

  // MARK: everything else

  /// Any other hypercall number, with random registers (pointers among them to edges and bad
  /// places). sched_op_compat's shutdown (6, command 2) is left out; multicall gets a list of
  /// harmless entries.
  mutating func unstructured() {
    var number = random.below(UInt64(56))
    if random.percent(15) { number = random.pick(unknownHypercalls) }
    if structuredHypercalls.contains(number) { number = 0 }
    var args: [UInt64] = []
    for _ in 0..<5 { args.append(random.percent(60) ? u64() : random.percent(50) ? badPointer() : opaqueArgument()) }
    if number == 6 && args[0] == 2 { args[0] = 0 }
    if number == 13 {                    // multicall: entries {op, result, args[6]} asking xen_version(0)
      var b = Bytes()
      for _ in 0..<4 { b.u64(17); b.u64(0); for _ in 0..<6 { b.u64(0) } }
      args[0] = random.percent(70) ? place(b.bytes) : badPointer()
      args[1] = random.percent(70) ? random.below(5) : u64()
    }
    call(number, args[0], args[1], args[2], args[3], args[4])
  }
}
#endif
