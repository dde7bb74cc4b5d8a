/// How much the hypervisor logs. A message is printed when its level is at or below the
/// configured one, so `.none` prints nothing and `.debug` prints everything.
public enum LogLevel: UInt8, Comparable, Sendable {
  case none = 0
  case error
  case warning
  case info
  case debug

  public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
    lhs.rawValue < rhs.rawValue
  }
}

/// A deliberate crash, to test the crash reporting paths (`crash=`).
public enum CrashTest: Sendable, Equatable {
  /// `crash=ud2`: execute an undefined instruction.
  case ud2
  /// `crash=pagefault`: touch an unmapped address.
  case pageFault
  /// `crash=divide`: divide by zero.
  case divide
  /// `crash=trap`: a Swift runtime trap (failed precondition).
  case swiftTrap
  /// `crash=ap-pagefault`: a page fault on the last application processor, to test reports
  /// from a CPU other than the boot CPU.
  case apPageFault
}

/// Which local APIC timer mode to use (`timer=`).
public enum TimerModeOption: Sendable, Equatable {
  /// TSC-deadline when the CPU has it, one-shot otherwise.
  case auto
  case tscDeadline
  case oneShot
}

/// Which scheduling policy runs the vcpus (`sched=`).
public enum SchedulerOption: Sendable, Equatable {
  /// Xen's credit scheduler: weights, caps, BOOST, per-pcpu runqueues (the default).
  case credit
  /// One global round-robin queue (the first policy; kept to compare against).
  case roundRobin
}

/// Whether pcpu 0 runs guests (`cpu0guests=`).
public enum CPU0GuestsOption: Equatable, Sendable {
  /// Yes, except under QEMU's TCG with more than one pcpu, where a QEMU race corrupts pcpu 0's
  /// paging mode while other pcpus switch worlds (docs/known-issues.md).
  case auto
  case yes
  /// No (when there is more than one pcpu): pcpu 0 only keeps time, takes interrupts and
  /// reads the console.
  case no
}

/// Where the hypervisor's console goes (`console=`).
/// What the hypervisor does once every domain has ended (`ondone=`).
public enum OnDoneOption: Sendable, Equatable {
  /// Report and power off, with the status the domains earned (the default: `visor run`, tests).
  case poweroff
  /// Report, then stay up with the console input on the hypervisor until `q` (`visor demo`).
  case stay
}

public enum ConsoleOption: Sendable, Equatable {
  case com1
  case none
}

/// An option on the command line that was not understood.
public struct BootOptionProblem: Equatable, Sendable {
  public enum Kind: Equatable, Sendable {
    /// The key is not one the hypervisor knows.
    case unknownOption
    /// The key is known but its value is missing or invalid; the setting was left unchanged.
    case badValue
  }

  public var kind: Kind
  /// The whole token as written on the command line, quotes included.
  public var option: [UInt8]

  public init(kind: Kind, option: [UInt8]) {
    self.kind = kind
    self.option = option
  }
}

/// The hypervisor's command line, parsed.
///
/// Syntax: tokens separated by spaces or tabs (newlines and carriage returns count as spaces; a
/// NUL byte ends the line). A token is `key=value` or a bare `key`. Double quotes group spaces
/// into a value and are removed: `key="a b"` has the value `a b`. Keys and values are
/// case-sensitive; numbers are decimal.
///
/// | option | values | default |
/// |---|---|---|
/// | `loglvl=` | `none`, `error`, `warning`/`warn`, `info`, `debug`, `all` (= debug) | `info` |
/// | `smp=`, `maxcpus=` | number of CPUs to use, at least 1 | all |
/// | `console=` | `com1`, `none` | `com1` |
/// | `timer=` | `auto`, `tsc-deadline`, `oneshot` | `auto` |
/// | `crash=` | `ud2`, `pagefault`, `divide`, `trap`, `ap-pagefault` | none |
/// | `tick=` | scheduler tick in Hz, 1...10000 | 100 |
/// | `sched=` | `credit`, `rr` (round robin) | `credit` |
/// | `sched_credit_tslice_ms=` | credit scheduler time slice in ms, 1...1000 (Xen's option) | 30 |
/// | `sched_ratelimit_us=` | shortest run before a vcpu is preempted by another, in µs, 0...500000 (Xen's option; cut to the slice) | 1000 |
/// | `vmrunfloor=` | measure the bare VMRUN/#VMEXIT round trip this many times before starting the domains (0...1000000), for `visor bench` | 0 |
/// | `cpu0guests=` | `auto`, `yes`, `no`: whether pcpu 0 runs vcpus; `auto` is no under QEMU's TCG with more than one pcpu (docs/known-issues.md) | `auto` |
/// | `ondone=` | `poweroff`, `stay`: once every domain has ended, power off, or stay up with the console input on the hypervisor until `q` | `poweroff` |
/// | `guest_console_rate=` | console bytes a domain may print per second, 0...1073741824; 0: unlimited (docs/console.md, "Limits") | 16384 |
/// | `guest_console_burst=` | console bytes a domain may print at once, 1...1073741824 | 131072 |
/// | `printk_ratelimit_ms=` | of the hypervisor's messages a domain causes, one per this many ms once the burst is spent, 0...3600000; 0: unlimited (Xen's option) | 5000 |
/// | `printk_ratelimit_burst=` | how many such messages at once, 1...1000000 (Xen's option) | 10 |
/// | `buildloop=` | before starting the bundle's domains, build and destroy each of them this many times and check that every frame comes back (0...1000) | 0 |
///
/// When an option is repeated, the last valid value wins. A missing or invalid value leaves the
/// setting unchanged and is recorded as `.badValue`; an unknown key is recorded as
/// `.unknownOption`. Nothing is silently ignored, so the boot log can show every problem.
public struct BootOptions: Sendable {
  public var logLevel: LogLevel = .info
  /// Upper limit on the CPUs brought up, or nil for all of them.
  public var maxCPUs: Int? = nil
  public var console: ConsoleOption = .com1
  public var timerMode: TimerModeOption = .auto
  public var crash: CrashTest? = nil
  public var tickHz: Int = 100
  public var scheduler: SchedulerOption = .credit
  public var creditTimesliceMilliseconds: Int = 30
  public var rateLimitMicroseconds: Int = 1000
  public var buildLoop: Int = 0
  public var vmrunFloorSamples: Int = 0
  public var guestConsoleBytesPerSecond: Int = 16 * 1024
  public var guestConsoleBurstBytes: Int = 128 * 1024
  public var messageIntervalMilliseconds: Int = 5000
  public var messageBurst: Int = 10
  public var cpu0Guests: CPU0GuestsOption = .auto
  public var onDone: OnDoneOption = .poweroff
  /// `isolationcheck`: checks the frame table against every p2m after each domain is
  /// destroyed and at the end (`IsolationCheck`).
  public var isolationCheck = false
  /// Every unknown option or bad value, in command-line order.
  public var problems: [BootOptionProblem] = []

  public static let tickHzRange = 1...10000
  public static let timesliceRange = 1...1000
  public static let rateLimitRange = 0...500_000
  public static let buildLoopRange = 0...1000
  public static let vmrunFloorRange = 0...1_000_000
  public static let guestConsoleRateRange = 0...(1 << 30)
  public static let guestConsoleBurstRange = 1...(1 << 30)
  public static let messageIntervalRange = 0...3_600_000
  public static let messageBurstRange = 1...1_000_000

  public init() {}

  /// Parses a command line. Never fails: problems are collected in `problems`.
  public static func parse(_ bytes: some Collection<UInt8>) -> BootOptions {
    var options = BootOptions()
    var tokenizer = CommandLineTokenizer(Array(bytes))
    while let token = tokenizer.next() {
      options.apply(token)
    }
    return options
  }

  private mutating func apply(_ token: CommandLineToken) {
    let key = token.key
    if key.elementsEqual("loglvl".utf8) {
      if let value = token.value, let level = Self.logLevel(named: value) {
        logLevel = level
        return
      }
    } else if key.elementsEqual("smp".utf8) || key.elementsEqual("maxcpus".utf8) {
      if let value = token.value, let count = Self.decimal(value), count >= 1 {
        maxCPUs = count
        return
      }
    } else if key.elementsEqual("console".utf8) {
      if let value = token.value {
        if value.elementsEqual("com1".utf8) {
          console = .com1
          return
        }
        if value.elementsEqual("none".utf8) {
          console = .none
          return
        }
      }
    } else if key.elementsEqual("timer".utf8) {
      if let value = token.value, let mode = Self.timerMode(named: value) {
        timerMode = mode
        return
      }
    } else if key.elementsEqual("crash".utf8) {
      if let value = token.value, let test = Self.crashTest(named: value) {
        crash = test
        return
      }
    } else if key.elementsEqual("tick".utf8) {
      if let value = token.value, let hz = Self.decimal(value), Self.tickHzRange.contains(hz) {
        tickHz = hz
        return
      }
    } else if key.elementsEqual("sched".utf8) {
      if let value = token.value {
        if value.elementsEqual("credit".utf8) {
          scheduler = .credit
          return
        }
        if value.elementsEqual("rr".utf8) {
          scheduler = .roundRobin
          return
        }
      }
    } else if key.elementsEqual("sched_credit_tslice_ms".utf8) {
      if let value = token.value, let ms = Self.decimal(value), Self.timesliceRange.contains(ms) {
        creditTimesliceMilliseconds = ms
        return
      }
    } else if key.elementsEqual("sched_ratelimit_us".utf8) {
      if let value = token.value, let us = Self.decimal(value), Self.rateLimitRange.contains(us) {
        rateLimitMicroseconds = us
        return
      }
    } else if key.elementsEqual("guest_console_rate".utf8) {
      if let value = token.value, let n = Self.decimal(value), Self.guestConsoleRateRange.contains(n) {
        guestConsoleBytesPerSecond = n
        return
      }
    } else if key.elementsEqual("guest_console_burst".utf8) {
      if let value = token.value, let n = Self.decimal(value), Self.guestConsoleBurstRange.contains(n) {
        guestConsoleBurstBytes = n
        return
      }
    } else if key.elementsEqual("printk_ratelimit_ms".utf8) {
      if let value = token.value, let n = Self.decimal(value), Self.messageIntervalRange.contains(n) {
        messageIntervalMilliseconds = n
        return
      }
    } else if key.elementsEqual("printk_ratelimit_burst".utf8) {
      if let value = token.value, let n = Self.decimal(value), Self.messageBurstRange.contains(n) {
        messageBurst = n
        return
      }
    } else if key.elementsEqual("vmrunfloor".utf8) {
      if let value = token.value, let n = Self.decimal(value), Self.vmrunFloorRange.contains(n) {
        vmrunFloorSamples = n
        return
      }
    } else if key.elementsEqual("cpu0guests".utf8) {
      if let value = token.value {
        for (name, option) in [("auto", CPU0GuestsOption.auto), ("yes", .yes), ("no", .no)] where value.elementsEqual(name.utf8) {
          cpu0Guests = option
          return
        }
      }
    } else if key.elementsEqual("ondone".utf8) {
      if let value = token.value {
        for (name, option) in [("poweroff", OnDoneOption.poweroff), ("stay", .stay)] where value.elementsEqual(name.utf8) {
          onDone = option
          return
        }
      }
    } else if key.elementsEqual("isolationcheck".utf8) {
      guard let value = token.value else {
        isolationCheck = true
        return
      }
      for (name, on) in [("on", true), ("off", false)] where value.elementsEqual(name.utf8) {
        isolationCheck = on
        return
      }
    } else if key.elementsEqual("buildloop".utf8) {
      if let value = token.value, let n = Self.decimal(value), Self.buildLoopRange.contains(n) {
        buildLoop = n
        return
      }
    } else {
      problems.append(BootOptionProblem(kind: .unknownOption, option: token.text))
      return
    }
    problems.append(BootOptionProblem(kind: .badValue, option: token.text))
  }

  // MARK: - Value names

  private static func logLevel(named name: [UInt8]) -> LogLevel? {
    if name.elementsEqual("none".utf8) { return LogLevel.none }
    if name.elementsEqual("error".utf8) { return .error }
    if name.elementsEqual("warning".utf8) || name.elementsEqual("warn".utf8) { return .warning }
    if name.elementsEqual("info".utf8) { return .info }
    if name.elementsEqual("debug".utf8) || name.elementsEqual("all".utf8) { return .debug }
    return nil
  }

  private static func timerMode(named name: [UInt8]) -> TimerModeOption? {
    if name.elementsEqual("auto".utf8) { return .auto }
    if name.elementsEqual("tsc-deadline".utf8) { return .tscDeadline }
    if name.elementsEqual("oneshot".utf8) { return .oneShot }
    return nil
  }

  private static func crashTest(named name: [UInt8]) -> CrashTest? {
    if name.elementsEqual("ud2".utf8) { return .ud2 }
    if name.elementsEqual("pagefault".utf8) { return .pageFault }
    if name.elementsEqual("divide".utf8) { return .divide }
    if name.elementsEqual("trap".utf8) { return .swiftTrap }
    if name.elementsEqual("ap-pagefault".utf8) { return .apPageFault }
    return nil
  }

  /// A non-negative decimal number without sign or spaces, or nil (also on overflow).
  private static func decimal(_ digits: [UInt8]) -> Int? {
    guard !digits.isEmpty else { return nil }
    var value = 0
    for digit in digits {
      guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return nil }
      let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
      guard !overflow1 && !overflow2 else { return nil }
      value = sum
    }
    return value
  }
}

/// One `key[=value]` token of the command line.
private struct CommandLineToken {
  /// The token exactly as written.
  var text: [UInt8]
  /// Everything before the first `=` (or the whole token).
  var key: [UInt8]
  /// Everything after the first `=`, quotes removed; nil for a bare key or when a quote was
  /// left open (which makes the value unusable).
  var value: [UInt8]?
}

/// Splits a command line into tokens; spaces inside double quotes do not split.
private struct CommandLineTokenizer {
  private let line: [UInt8]
  private var position = 0

  init(_ line: [UInt8]) {
    // The line ends at the first NUL, as a C string does.
    if let end = line.firstIndex(of: 0) {
      self.line = Array(line[..<end])
    } else {
      self.line = line
    }
  }

  private static func isSeparator(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
  }

  mutating func next() -> CommandLineToken? {
    while position < line.count && Self.isSeparator(line[position]) {
      position += 1
    }
    guard position < line.count else { return nil }

    let start = position
    var insideQuotes = false
    while position < line.count {
      let byte = line[position]
      if byte == UInt8(ascii: "\"") {
        insideQuotes.toggle()
      } else if !insideQuotes && Self.isSeparator(byte) {
        break
      }
      position += 1
    }
    let text = Array(line[start..<position])

    guard let equals = text.firstIndex(of: UInt8(ascii: "=")) else {
      return CommandLineToken(text: text, key: text, value: nil)
    }
    let key = Array(text[..<equals])
    let value = insideQuotes ? nil : text[(equals + 1)...].filter { $0 != UInt8(ascii: "\"") }
    return CommandLineToken(text: text, key: key, value: value)
  }
}
