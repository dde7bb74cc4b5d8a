/// guest-console: the console ring (hvc0's `struct xencons_interface`) in both directions, as
/// Linux's hvc_xen driver uses it.
///
/// Reads HVM_PARAM_CONSOLE_PFN (17) and HVM_PARAM_CONSOLE_EVTCHN (18) with HVMOP_get_param (both
/// must be non-zero), checks that the ring page is mapped by the boot page tables (the 4 GiB
/// identity map: guest-virtual = guest-physical), sets up the callback vector and unmasks the
/// console port. Then, through the ring only (out[], out_prod, EVTCHNOP_send on the port):
///   guest-console: hello through the ring
///   guest-console: one line, two channels               (also through console_io: shown once)
///   guest-console: long line of <n> bytes: abc…|end     (one line of `long=<n>` bytes, default
///                                                        3000: more than the 2048-byte ring,
///                                                        written in pieces of 1000, waiting for
///                                                        out_cons to move when the ring is full)
///   guest-console: output ok (<bytes> bytes, <n> notifications, <n> waits for room, <n> events from the backend)
/// With `echo=N`, N times:
///   guest-console: waiting for input (line <i> of <N>)
///   guest-console: got <the line read from in[]>
/// and last "guest-console: done", then poweroff. Lines before the ring works and failures go
/// through console_io ("guest-console: start", "guest-console: ring at gfn …", and
/// "guest-console: FAIL: …" followed by shutdown crash).
///
/// The protocol (xen/include/public/io/console.h): in[1024] @0, out[2048] @1024, then the u32
/// indices in_cons @3072, in_prod @3076, out_cons @3080, out_prod @3084, free-running and
/// masked by the ring size. The producer writes the data, then its index; the consumer reads the
/// index, then the data, then moves its own index. After consuming input the guest notifies the
/// backend (as Linux does), so it can put more in.
///
/// `wait=halt|block|poll|spin` picks how it sleeps until the console port's event (default halt:
/// `sti; hlt`). Waiting for input has no time limit; waiting for room in out[] gives up after 5 s
/// of system time (checked when the vcpu is awake).
@main
struct GuestConsole {
  static func main() {
    #if os(none)
    run()
    #else
    print("guest-console is a PVH test guest for Swiftvisor: build it with scripts/build-guests")
    #endif
  }
}

#if os(none)
import GuestKit
import GuestSupport

nonisolated(unsafe) var report = Report("guest-console")

let ms = SystemTime.nanosecondsPerMillisecond
/// How long a write waits for the backend to make room, and the output check for its events.
let roomTimeout: UInt64 = 5_000 * ms

/// HVMOP_get_param and the console's parameters (xen/include/public/hvm/params.h).
enum HVMParam {
  static let getParam: UInt64 = 1
  static let consolePFN: UInt32 = 17
  static let consoleEvtchn: UInt32 = 18

  /// HVMOP_get_param {domid DOMID_SELF, pad, index, value}: the result and the value.
  static func get(_ index: UInt32) -> (result: Int64, value: UInt64) {
    var param = gs_xen_hvm_param(domid: Xen.domidSelf, pad: 0, index: index, value: 0)
    let r = Xen.withArgument(&param) { Xen.hvmOp(getParam, $0) }
    return (r, param.value)
  }
}

/// Whether `address` is mapped present and writable by the page tables CR3 points to (the
/// boot page tables: 4 levels, 2 MiB pages; 1 GiB and 4 KiB pages are followed too). The tables
/// themselves are in the identity map, so their physical addresses are pointers.
func mappedWritable(_ address: UInt64) -> Bool {
  #if arch(i386)
  return mappedWritable32(address)
  #else
  let frameMask: UInt64 = 0x000F_FFFF_FFFF_F000
  let present: UInt64 = 1, writable: UInt64 = 2, largePage: UInt64 = 0x80
  var table = CPU.cr3 & frameMask
  var level = 3   // PML4, PDPT, PD, PT
  while true {
    let index = (address >> (12 + 9 * UInt64(level))) & 511
    guard let slot = UnsafePointer<UInt64>(bitPattern: UInt(table + index * 8)) else { return false }
    let entry = slot.pointee
    if entry & present == 0 || entry & writable == 0 { return false }
    if level == 0 || ((level == 1 || level == 2) && entry & largePage != 0) { return true }
    table = entry & frameMask
    level -= 1
  }
  #endif
}

#if arch(i386)
/// The same for a 32-bit guest, in the paging mode it booted with (`paging=`): none (everything
/// is reachable), PAE (a 4-entry PDPT, then 8-byte entries, 2 MiB pages) or legacy 2-level
/// paging (4-byte entries, 4 MiB pages with PSE, else 4 KiB pages).
func mappedWritable32(_ address: UInt64) -> Bool {
  guard address >> 32 == 0 else { return false }
  let present: UInt64 = 1, writable: UInt64 = 2, largePage: UInt64 = 0x80
  switch gs_paging_mode() {
  case UInt32(GS_PAGING_OFF):
    return true
  case UInt32(GS_PAGING_PAE):
    let pdpt = CPU.cr3 & 0xFFFF_FFE0
    guard let pdpte = UnsafePointer<UInt64>(bitPattern: UInt(pdpt + ((address >> 30) & 3) * 8))?.pointee,
          pdpte & present != 0 else { return false }
    var table = pdpte & 0x000F_FFFF_FFFF_F000
    for level in [1, 0] {
      guard table >> 32 == 0,
            let entry = UnsafePointer<UInt64>(bitPattern: UInt(table + ((address >> (12 + 9 * UInt64(level))) & 511) * 8))?.pointee
      else { return false }
      if entry & present == 0 || entry & writable == 0 { return false }
      if level == 0 || entry & largePage != 0 { return true }
      table = entry & 0x000F_FFFF_FFFF_F000
    }
    return false
  default:
    let directory = CPU.cr3 & 0xFFFF_F000
    guard let pde = UnsafePointer<UInt32>(bitPattern: UInt(directory + ((address >> 22) & 1023) * 4))?.pointee,
          UInt64(pde) & present != 0, UInt64(pde) & writable != 0 else { return false }
    if UInt64(pde) & largePage != 0 && CPU.cr4 & (1 << 4) != 0 { return true }
    guard let pte = UnsafePointer<UInt32>(bitPattern: UInt(UInt64(pde) & 0xFFFF_F000) + UInt((address >> 12) & 1023) * 4)?.pointee
    else { return false }
    return UInt64(pte) & present != 0 && UInt64(pte) & writable != 0
  }
}
#endif

/// The guest's side of the console ring page at `base`, notified through `port`.
struct ConsoleRing {
  static let inSize: UInt32 = 1024
  static let outSize: UInt32 = 2048
  static let input = 0
  static let output = 1024
  static let inputConsumer = 3072
  static let inputProducer = 3076
  static let outputConsumer = 3080
  static let outputProducer = 3084

  let base: UInt64
  let port: UInt32
  let mode: WaitMode
  /// EVTCHNOP_send calls made, and the first that did not return 0.
  var notifications = 0
  var sendFailure: Int64 = 0
  /// Times a write found out[] full and waited for out_cons to move.
  var waitsForRoom = 0
  /// Bytes put into out[].
  var bytesWritten = 0
  /// The last input byte was a '\r' (so a '\n' right after it ends no line of its own).
  var afterCarriageReturn = false

  func index(_ offset: Int) -> UnsafeMutablePointer<UInt32> {
    UnsafeMutablePointer<UInt32>(bitPattern: UInt(base) + UInt(offset))!
  }

  func byte(_ offset: Int) -> UnsafeMutablePointer<UInt8> {
    UnsafeMutablePointer<UInt8>(bitPattern: UInt(base) + UInt(offset))!
  }

  func load(_ offset: Int) -> UInt32 { gs_load32(index(offset)) }

  /// EVTCHNOP_send on the console port.
  mutating func notify() {
    let r = Events.send(port)
    notifications += 1
    if r != 0 && sendFailure == 0 { sendFailure = r }
  }

  /// Puts `bytes` into out[], as much as fits at a time; when out[] is full, notifies the
  /// backend and waits until out_cons moves. Notifies once at the end if `notify`. False if the
  /// backend made no room within `roomTimeout`, or the indices say more than a ring is used.
  @discardableResult
  mutating func write(_ bytes: [UInt8], notify: Bool = true) -> Bool {
    var done = 0
    while done < bytes.count {
      let consumer = load(Self.outputConsumer)
      let producer = load(Self.outputProducer)
      let used = producer &- consumer
      guard used <= Self.outSize else { return false }
      if used == Self.outSize {
        self.notify()
        waitsForRoom += 1
        let moved = Wait.until(mode, deadline: SystemTime.now() &+ roomTimeout, ports: [port]) {
          load(Self.outputConsumer) != consumer
        }
        if !moved { return false }
        continue
      }
      let count = min(Int(Self.outSize - used), bytes.count - done)
      for i in 0..<count {
        let slot = Int((producer &+ UInt32(i)) % Self.outSize)
        byte(Self.output + slot).pointee = bytes[done + i]
      }
      // The data before the index (x86 keeps stores in order; this keeps the compiler from
      // moving them, and gs_store32 is a release store besides).
      gs_barrier()
      gs_store32(index(Self.outputProducer), producer &+ UInt32(count))
      done += count
      bytesWritten += count
    }
    if notify { self.notify() }
    return true
  }

  /// `text` and a newline, notified.
  @discardableResult
  mutating func print(_ text: String) -> Bool {
    var bytes = Array(text.utf8)
    bytes.append(0x0a)
    return write(bytes)
  }

  /// Reads one line from in[] (ended by '\n' or '\r'; "\r\n" counts as one end; at most
  /// `limit` bytes), waiting for the port's event while in[] is empty. Consumes only up to the
  /// line's end, and notifies the backend after each step, as Linux does after taking input.
  /// nil if the indices say more than a ring is waiting.
  mutating func readLine(limit: Int = 200) -> [UInt8]? {
    var line: [UInt8] = []
    while true {
      Wait.until(mode, ports: [port]) { load(Self.inputProducer) != load(Self.inputConsumer) }
      let consumer = load(Self.inputConsumer)
      let producer = load(Self.inputProducer)   // acquire: the data below is read after it
      let available = producer &- consumer
      guard available <= Self.inSize else { return nil }
      var consumed: UInt32 = 0
      var finished = false
      while consumed < available && !finished {
        let c = byte(Self.input + Int((consumer &+ consumed) % Self.inSize)).pointee
        consumed += 1
        if c == UInt8(ascii: "\n") && afterCarriageReturn && line.isEmpty {
          afterCarriageReturn = false
          continue
        }
        afterCarriageReturn = c == UInt8(ascii: "\r")
        if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") {
          finished = true
        } else {
          line.append(c)
          finished = line.count >= limit
        }
      }
      // The data was read before the index moves (a release store).
      gs_store32(index(Self.inputConsumer), consumer &+ consumed)
      notify()
      if finished { return line }
    }
  }
}

/// The long line: "guest-console: long line of <n> bytes: " then the alphabet over and over,
/// then "|end"; `total` bytes without the newline (the system test builds the same text).
func longLine(total: Int) -> [UInt8] {
  var line = Array("guest-console: long line of \(total) bytes: ".utf8)
  let tail = Array("|end".utf8)
  var i = 0
  while line.count < total - tail.count {
    line.append(UInt8(ascii: "a") + UInt8(i % 26))
    i += 1
  }
  line.append(contentsOf: tail)
  return line
}

func run() -> Never {
  report.line("start")
  Guest.requireHypervisor("guest-console")
  let options = StartInfo.options
  let echo = options.integer("echo", default: 0)
  let longBytes = max(options.integer("long", default: 3000), 64)
  let mode = WaitMode.fromOptions(options)

  let pfn = HVMParam.get(HVMParam.consolePFN)
  let evtchn = HVMParam.get(HVMParam.consoleEvtchn)
  if pfn.result != 0 || evtchn.result != 0 || pfn.value == 0 || evtchn.value == 0 || evtchn.value >= UInt64(Events.portCount) {
    report.abort("HVMOP_get_param: CONSOLE_PFN returned \(pfn.result) value \(hex(pfn.value)), CONSOLE_EVTCHN returned \(evtchn.result) value \(evtchn.value) (want 0 and non-zero values)")
  }
  let address = pfn.value << 12
  let port = UInt32(evtchn.value)
  report.line("ring at gfn \(hex(pfn.value)) (address \(hex(address))), port \(port), waiting with \(mode.name)")
  guard pfn.value < (1 << 20), mappedWritable(address) else {
    report.abort("the ring page at \(hex(address)) is not mapped writable by the boot page tables (the 4 GiB identity map)")
  }

  let setUp = Events.setUp()
  if setUp != 0 { report.abort("event setup (shared_info, callback vector) returned \(setUp)") }
  let unmasked = Events.unmask(port)
  if unmasked != 0 { report.abort("EVTCHNOP_unmask(\(port)) returned \(unmasked)") }
  CPU.enableInterrupts()

  var ring = ConsoleRing(base: address, port: port, mode: mode)

  // Output.
  var written = ring.print("guest-console: hello through the ring")
  // As test frameworks for Xen do: the same line through the ring and through console_io
  // (the hypervisor shows it once).
  if written {
    written = ring.print("guest-console: one line, two channels")
    Console.print("guest-console: one line, two channels")
  }
  var long = longLine(total: longBytes)
  long.append(0x0a)
  var offset = 0
  while offset < long.count && written {
    let piece = Array(long[offset..<min(offset + 1000, long.count)])
    offset += piece.count
    // Only the last piece notifies: the ring fills up on the way, and the write waits for room.
    written = ring.write(piece, notify: offset == long.count)
  }
  let eventsBefore = Events.count(port)
  let drained = Wait.until(.spin, deadline: SystemTime.now() &+ roomTimeout) {
    ring.load(ConsoleRing.outputConsumer) == ring.load(ConsoleRing.outputProducer) && Events.count(port) > 0
  }
  let events = Events.count(port)
  let summary = "\(ring.bytesWritten) bytes, \(ring.notifications) notifications, \(ring.waitsForRoom) waits for room, \(events) events from the backend"
  if written && drained && ring.sendFailure == 0 {
    ring.print("guest-console: output ok (\(summary))")
  } else {
    // Through console_io too: the ring may be what is broken.
    let why = "output FAIL (\(written ? "" : "a write found no room within 5 s; ")out_cons \(ring.load(ConsoleRing.outputConsumer)) out_prod \(ring.load(ConsoleRing.outputProducer)), first send failure \(ring.sendFailure), events before the check \(eventsBefore); \(summary))"
    report.line(why)
    ring.print("guest-console: \(why)")
  }

  // flood=<ms>: as much output as the guest can make for that long, through the ring or, with
  // flood-channel=io, through console_io; then how much it was, through the ring.
  let flood = UInt64(max(options.integer("flood", default: 0), 0))
  if flood > 0 {
    let throughIO = options.value("flood-channel").map { $0.elementsEqual("io".utf8) } ?? false
    let start = SystemTime.now()
    var lines = 0, bytes = 0
    var stalled = false
    // One buffer, its number rewritten in place: the guest's heap is a bump allocator, and a
    // new string for each of some 100,000 lines would use it up.
    let prefix = Array("guest-console: flood ".utf8)
    var line = prefix + [UInt8](repeating: UInt8(ascii: "."), count: 100 - prefix.count)
    line[99] = 0x0a
    while SystemTime.now() &- start < flood * ms {
      var digits = lines, at = prefix.count + 9
      line[at + 1] = UInt8(ascii: " ")
      repeat {                                   // right-aligned in 10 places, the rest blank
        line[at] = UInt8(ascii: "0") + UInt8(digits % 10)
        digits /= 10
        at -= 1
      } while digits > 0
      let first = at + 1
      if first > prefix.count { for i in prefix.count..<first { line[i] = UInt8(ascii: "0") } }
      if throughIO {
        line.withUnsafeBytes { Console.write($0) }
      } else if !ring.write(line) {
        stalled = true
        break
      }
      lines += 1
      bytes += line.count
    }
    let took = (SystemTime.now() &- start) / ms
    ring.print("guest-console: flood through the \(throughIO ? "console_io" : "ring"): \(lines) lines, \(bytes) bytes in \(took) ms\(stalled ? " (the ring made no room for 5 s)" : "")")
  }

  // Input.
  if echo > 0 {
    for i in 1...echo {
      ring.print("guest-console: waiting for input (line \(i) of \(echo))")
      guard let line = ring.readLine() else {
        report.abort("in_prod \(ring.load(ConsoleRing.inputProducer)) is more than a ring ahead of in_cons \(ring.load(ConsoleRing.inputConsumer))")
      }
      var text = Array("guest-console: got ".utf8)
      text.append(contentsOf: line)
      text.append(0x0a)
      ring.write(text)
    }
  }
  ring.print("guest-console: done")
  // The backend may take the ring's output slowly (its console budget): the last lines must be
  // out before the domain ends.
  Wait.until(.spin, deadline: SystemTime.now() &+ 4 * roomTimeout) {
    ring.load(ConsoleRing.outputConsumer) == ring.load(ConsoleRing.outputProducer)
  }
  CPU.disableInterrupts()
  Xen.shutdown(.poweroff)
}
#endif
