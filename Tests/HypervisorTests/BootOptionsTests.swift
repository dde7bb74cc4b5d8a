import Testing

@testable import Hypervisor

private func parse(_ line: String) -> BootOptions {
  BootOptions.parse(Array(line.utf8))
}

private func problem(_ kind: BootOptionProblem.Kind, _ token: String) -> BootOptionProblem {
  BootOptionProblem(kind: kind, option: Array(token.utf8))
}

@Suite struct BootOptionsTests {
  @Test func defaults() {
    for line in ["", "   ", "\t \t", "\0loglvl=debug"] {
      let options = parse(line)
      #expect(options.logLevel == .info)
      #expect(options.maxCPUs == nil)
      #expect(options.console == .com1)
      #expect(options.timerMode == .auto)
      #expect(options.crash == nil)
      #expect(options.tickHz == 100)
      #expect(options.problems.isEmpty)
    }
  }

  @Test func logLevelOrdering() {
    #expect(LogLevel.none < .error)
    #expect(LogLevel.error < .warning)
    #expect(LogLevel.warning < .info)
    #expect(LogLevel.info < .debug)
    #expect(LogLevel.debug > .none)
  }

  @Test(arguments: [
    ("none", LogLevel.none), ("error", .error), ("warning", .warning), ("warn", .warning),
    ("info", .info), ("debug", .debug), ("all", .debug),
  ])
  func logLevel(name: String, level: LogLevel) {
    let options = parse("loglvl=\(name)")
    #expect(options.logLevel == level)
    #expect(options.problems.isEmpty)
  }

  @Test func cpuLimit() {
    #expect(parse("smp=1").maxCPUs == 1)
    #expect(parse("smp=4").maxCPUs == 4)
    #expect(parse("maxcpus=2").maxCPUs == 2)
    #expect(parse("maxcpus=16 smp=3").maxCPUs == 3)
    #expect(parse("smp=007").maxCPUs == 7)
    for bad in ["smp=0", "smp=-1", "smp=+2", "smp=two", "smp=", "smp", "smp=2x", "maxcpus=99999999999999999999999"] {
      let options = parse(bad)
      #expect(options.maxCPUs == nil, "\(bad)")
      #expect(options.problems == [problem(.badValue, bad)], "\(bad)")
    }
  }

  @Test func cpu0Guests() {
    #expect(parse("").cpu0Guests == .auto)
    #expect(parse("cpu0guests=no").cpu0Guests == CPU0GuestsOption.no)
    #expect(parse("cpu0guests=yes").cpu0Guests == .yes)
    #expect(parse("cpu0guests=no cpu0guests=auto").cpu0Guests == .auto)
    #expect(parse("").onDone == .poweroff)
    #expect(parse("ondone=stay").onDone == .stay)
    #expect(parse("ondone=stay ondone=poweroff").onDone == .poweroff)
    #expect(parse("ondone=later").problems == [problem(.badValue, "ondone=later")])
    let bad = parse("cpu0guests=maybe")
    #expect(bad.cpu0Guests == .auto)
    #expect(bad.problems == [problem(.badValue, "cpu0guests=maybe")])
  }

  @Test func console() {
    #expect(parse("console=none").console == ConsoleOption.none)
    #expect(parse("console=com1").console == .com1)
    #expect(parse("console=none console=com1").console == .com1)
    let bad = parse("console=vga")
    #expect(bad.console == .com1)
    #expect(bad.problems == [problem(.badValue, "console=vga")])
  }

  @Test func timerMode() {
    #expect(parse("timer=auto").timerMode == .auto)
    #expect(parse("timer=tsc-deadline").timerMode == .tscDeadline)
    #expect(parse("timer=oneshot").timerMode == .oneShot)
    let bad = parse("timer=periodic")
    #expect(bad.timerMode == .auto)
    #expect(bad.problems == [problem(.badValue, "timer=periodic")])
  }

  @Test(arguments: [
    ("ud2", CrashTest.ud2), ("pagefault", .pageFault), ("divide", .divide), ("trap", .swiftTrap),
    ("ap-pagefault", .apPageFault),
  ])
  func crash(name: String, test: CrashTest) {
    let options = parse("crash=\(name)")
    #expect(options.crash == test)
    #expect(options.problems.isEmpty)
  }

  @Test func badCrashName() {
    let options = parse("crash=PageFault")
    #expect(options.crash == nil)
    #expect(options.problems == [problem(.badValue, "crash=PageFault")])
  }

  @Test func tick() {
    #expect(parse("tick=1").tickHz == 1)
    #expect(parse("tick=250").tickHz == 250)
    #expect(parse("tick=10000").tickHz == 10000)
    for bad in ["tick=0", "tick=10001", "tick=1e3", "tick="] {
      let options = parse(bad)
      #expect(options.tickHz == 100, "\(bad)")
      #expect(options.problems == [problem(.badValue, bad)], "\(bad)")
    }
  }

  @Test func scheduler() {
    #expect(parse("").scheduler == .credit)
    #expect(parse("sched=rr").scheduler == .roundRobin)
    #expect(parse("sched=rr sched=credit").scheduler == .credit)
    #expect(parse("sched_credit_tslice_ms=5").creditTimesliceMilliseconds == 5)
    #expect(parse("sched_ratelimit_us=0").rateLimitMicroseconds == 0)
    // The console limits (docs/console.md, "Limits").
    #expect(parse("").guestConsoleBytesPerSecond == 16384)
    #expect(parse("").guestConsoleBurstBytes == 131072)
    #expect(parse("guest_console_rate=0").guestConsoleBytesPerSecond == 0)
    #expect(parse("guest_console_burst=4096").guestConsoleBurstBytes == 4096)
    #expect(parse("printk_ratelimit_ms=100 printk_ratelimit_burst=3").messageIntervalMilliseconds == 100)
    #expect(parse("printk_ratelimit_ms=100 printk_ratelimit_burst=3").messageBurst == 3)
    for bad in ["guest_console_rate=-1", "guest_console_burst=0", "guest_console_rate=1073741825", "printk_ratelimit_burst=0", "printk_ratelimit_ms=3600001"] {
      let options = parse(bad)
      #expect(options.guestConsoleBytesPerSecond == 16384 && options.guestConsoleBurstBytes == 131072, "\(bad)")
      #expect(options.messageIntervalMilliseconds == 5000 && options.messageBurst == 10, "\(bad)")
      #expect(options.problems == [problem(.badValue, bad)], "\(bad)")
    }
    #expect(parse("").creditTimesliceMilliseconds == 30)
    #expect(parse("").rateLimitMicroseconds == 1000)
    for bad in ["sched=fifo", "sched_credit_tslice_ms=0", "sched_credit_tslice_ms=1001", "sched_ratelimit_us=500001", "sched_ratelimit_us=-1"] {
      let options = parse(bad)
      #expect(options.scheduler == .credit, "\(bad)")
      #expect(options.creditTimesliceMilliseconds == 30, "\(bad)")
      #expect(options.rateLimitMicroseconds == 1000, "\(bad)")
      #expect(options.problems == [problem(.badValue, bad)], "\(bad)")
    }
  }

  @Test func everyOptionTogether() {
    let options = parse("loglvl=debug smp=2 console=none timer=oneshot crash=divide tick=1000")
    #expect(options.logLevel == .debug)
    #expect(options.maxCPUs == 2)
    #expect(options.console == ConsoleOption.none)
    #expect(options.timerMode == .oneShot)
    #expect(options.crash == .divide)
    #expect(options.tickHz == 1000)
    #expect(options.problems.isEmpty)
  }

  @Test func separatorsAndTerminator() {
    let options = parse("\t loglvl=warn\t\tsmp=3 \r\ntick=50  \0crash=ud2 bogus")
    #expect(options.logLevel == .warning)
    #expect(options.maxCPUs == 3)
    #expect(options.tickHz == 50)
    #expect(options.crash == nil, "everything after NUL is ignored")
    #expect(options.problems.isEmpty)
  }

  @Test func quotedValues() {
    #expect(parse("loglvl=\"debug\"").logLevel == .debug)
    #expect(parse("timer=\"tsc-deadline\" smp=\"4\"").maxCPUs == 4)
    // Quotes group spaces into one token; the value then contains the space.
    let spaced = parse("console=\"com1 none\" tick=20")
    #expect(spaced.console == .com1)
    #expect(spaced.tickHz == 20)
    #expect(spaced.problems == [problem(.badValue, "console=\"com1 none\"")])
    // An unknown option with a quoted value is one token, reported whole.
    let unknown = parse("name=\"a b c\" smp=2")
    #expect(unknown.problems == [problem(.unknownOption, "name=\"a b c\"")])
    #expect(unknown.maxCPUs == 2)
  }

  @Test func unterminatedQuote() {
    let options = parse("smp=2 loglvl=\"debug smp=4")
    #expect(options.logLevel == .info)
    #expect(options.maxCPUs == 2)
    #expect(options.problems == [problem(.badValue, "loglvl=\"debug smp=4")])
  }

  @Test func repeatedOptionsLastValidWins() {
    let options = parse("loglvl=error loglvl=debug tick=10 tick=20 tick=bad crash=ud2 crash=trap")
    #expect(options.logLevel == .debug)
    #expect(options.tickHz == 20, "a bad value leaves the previous setting")
    #expect(options.crash == .swiftTrap)
    #expect(options.problems == [problem(.badValue, "tick=bad")])
  }

  @Test func unknownOptionsAndGarbageAreReportedInOrder() {
    let options = parse("quiet loglvl=nonsense foo=bar = =x smp=2 LOGLVL=debug \u{1}\u{FF} loglvl")
    #expect(options.logLevel == .info)
    #expect(options.maxCPUs == 2)
    #expect(options.problems == [
      problem(.unknownOption, "quiet"),
      problem(.badValue, "loglvl=nonsense"),
      problem(.unknownOption, "foo=bar"),
      problem(.unknownOption, "="),
      problem(.unknownOption, "=x"),
      problem(.unknownOption, "LOGLVL=debug"),
      problem(.unknownOption, "\u{1}\u{FF}"),
      problem(.badValue, "loglvl"),
    ])
  }

  @Test func valueMayContainEquals() {
    let options = parse("loglvl=debug=1")
    #expect(options.logLevel == .info)
    #expect(options.problems == [problem(.badValue, "loglvl=debug=1")])
  }

  @Test func parsesAnyByteCollection() {
    let bytes: ArraySlice<UInt8> = Array("xx smp=6 yy".utf8)[3..<8]
    #expect(BootOptions.parse(bytes).maxCPUs == 6)
    #expect(BootOptions.parse("tick=30".utf8).tickHz == 30)
  }
}
