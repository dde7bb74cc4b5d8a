import Testing

@testable import Hypervisor

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func parse(_ text: String) throws(XLConfigError) -> DomainConfig {
  try XLConfig.parse(bytes(text), fileName: bytes("test.cfg"))
}

private func parseWithWarnings(_ text: String) throws(XLConfigError) -> (config: DomainConfig, warnings: [XLConfigWarning]) {
  try XLConfig.parseWithWarnings(bytes(text), fileName: bytes("test.cfg"))
}

/// The error parsing `text` throws, or nil if it parses.
private func error(_ text: String) -> XLConfigError? {
  do {
    _ = try parse(text)
    return nil
  } catch {
    return error
  }
}

private let minimal = """
  name = "guest"
  type = "pvh"
  memory = 128
  kernel = "/boot/vmlinuz"

  """

@Suite struct XLConfigTests {
  @Test func maxmemIsTheGrowthLimit() throws {
    let config = try parse(minimal + "maxmem = 512\n")
    #expect(config.maxMemoryMiB == 512)
    #expect(error(minimal + "maxmem = 64\n")?.message() == bytes("test.cfg:5: maxmem: must be at least memory (128 MiB) and at most 65536 MiB (got 64)"))
  }

  @Test func minimalConfig() throws {
    let config = try parse(minimal)
    #expect(config.name == bytes("guest"))
    #expect(config.type == .pvh)
    #expect(config.memoryMiB == 128)
    #expect(config.vcpus == 1)
    #expect(config.maxVCPUs == nil)
    #expect(config.maxMemoryMiB == nil)
    #expect(config.kernelPath == bytes("/boot/vmlinuz"))
    #expect(config.ramdiskPath == nil)
    #expect(config.cmdline.isEmpty)
    #expect(config.onPoweroff == .destroy)
    #expect(config.onReboot == .restart)
    #expect(config.onCrash == .destroy)
    #expect(config.cpus == nil)
    #expect(config.weight == nil)
    #expect(config.cap == nil)
  }

  @Test func fullConfig() throws {
    let text = """
      # A Debian guest.
      name = 'debian-12.vm_1'   # trailing comment
      type = "pvh"
      memory = 0x200
      vcpus = 2; maxvcpus = 4
      kernel = "/srv/vmlinuz"
      ramdisk = "/srv/initrd.img"
      cmdline = "console=hvc0 root=/dev/xvda1 ro"
      on_poweroff = "preserve"
      on_reboot = 'destroy'
      on_crash = "restart"
      cpus = "0-3,^1"
      weight = 512
      cap = "50"
      max_grant_frames = 32
      max_maptrack_frames = 2048
      """
    let (config, warnings) = try parseWithWarnings(text)
    #expect(warnings.isEmpty)
    #expect(config.name == bytes("debian-12.vm_1"))
    #expect(config.memoryMiB == 512)
    #expect(config.vcpus == 2)
    #expect(config.maxVCPUs == 4)
    #expect(config.ramdiskPath == bytes("/srv/initrd.img"))
    #expect(config.cmdline == bytes("console=hvc0 root=/dev/xvda1 ro"))
    #expect(config.onPoweroff == .preserve)
    #expect(config.onReboot == .destroy)
    #expect(config.onCrash == .restart)
    #expect(config.cpus == bytes("0-3,^1"))
    #expect(config.weight == 512)
    #expect(config.cap == 50)
    #expect(config.maxGrantFrames == 32)
    #expect(config.maxMaptrackFrames == 2048)
    // Each shutdown reason picks its key's action; the reasons without a key are destroyed.
    #expect(config.action(after: .poweroff) == .preserve)
    #expect(config.action(after: .reboot) == .destroy)
    #expect(config.action(after: .crash) == .restart)
    #expect(config.action(after: .watchdog) == .destroy)
    #expect(config.action(after: .suspend) == .destroy)
    #expect(config.action(after: .softReset) == .destroy)
  }

  @Test func escapesAndCRLF() throws {
    let config = try parse("name = \"a\"\r\nmemory = 64\r\nkernel = \"k\"\r\ncmdline = \"x=\\\"1\\\" \\\\ y\\tz\"\r\n")
    #expect(config.cmdline == bytes("x=\"1\" \\ y\tz"))
  }

  @Test func commandLineAsXlBuildsIt() throws {
    // xl_parse.c parse_cmdline: root and extra are joined only when cmdline is absent.
    #expect(try parse(minimal + "root = \"/dev/xvda\"\nextra = \"console=hvc0\"\n").cmdline == bytes("root=/dev/xvda console=hvc0"))
    #expect(try parse(minimal + "root = \"/dev/xvda\"\n").cmdline == bytes("root=/dev/xvda"))
    #expect(try parse(minimal + "extra = \"quiet\"\n").cmdline == bytes("quiet"))

    let (config, warnings) = try parseWithWarnings(minimal + "cmdline = \"a b\"\nextra = \"c\"\nroot = \"r\"\n")
    #expect(config.cmdline == bytes("a b"))
    #expect(warnings == [
      XLConfigWarning(line: 7, key: bytes("root"), kind: .ignoredInFavourOfCmdline),
      XLConfigWarning(line: 6, key: bytes("extra"), kind: .ignoredInFavourOfCmdline),
    ])
  }

  @Test func listsMaySpanLines() throws {
    let text = minimal + """
      disk = [ 'phy:/dev/vg/a,xvda,w',   # first
               "file:/b.img,xvdb,r",
             ]
      vif = []
      """
    let (config, warnings) = try parseWithWarnings(text)
    #expect(config.memoryMiB == 128)
    #expect(warnings == [
      XLConfigWarning(line: 5, key: bytes("disk"), kind: .notSupported),
      XLConfigWarning(line: 8, key: bytes("vif"), kind: .notSupported),
    ])
  }

  @Test func unknownKeysAreWarnings() throws {
    let (_, warnings) = try parseWithWarnings(minimal + "memroy = 4\n")
    #expect(warnings == [XLConfigWarning(line: 5, key: bytes("memroy"), kind: .unknownKey)])
    #expect(warnings.first?.message(fileName: bytes("test.cfg")) == bytes("test.cfg:5: memroy: unknown key, ignored"))
  }

  @Test func missingTypeDefaultsToPVHWithAWarning() throws {
    let (config, warnings) = try parseWithWarnings("name = \"g\"\nmemory = 64\nkernel = \"k\"\n")
    #expect(config.type == .pvh)
    #expect(warnings == [XLConfigWarning(line: 0, key: bytes("type"), kind: .typeDefaultedToPVH)])
  }

  @Test func errorMessagesNameFileLineAndKey() {
    let failure = error("name = \"g\"\nkernel = \"k\"\nmemory = \"lots\"\n")
    #expect(failure == XLConfigError(fileName: bytes("test.cfg"), line: 3, key: bytes("memory"), kind: .expectedInteger))
    #expect(failure?.message() == bytes("test.cfg:3: memory: expected an integer"))
  }

  @Test(arguments: [
    ("= 3\n", 1, nil, XLConfigError.Kind.expectedKey),
    ("1abc = 3\n", 1, nil, .expectedKey),
    ("name \"x\"\n", 1, "name", .expectedEquals),
    ("name =\n", 1, "name", .expectedValue),
    ("name = # nothing\n", 1, "name", .expectedValue),
    ("name = guest\n", 1, "name", .expectedQuotedString),
    ("name = \"guest\n", 1, "name", .unterminatedString),
    ("name = 'guest\n", 1, "name", .unterminatedString),
    ("name = \"gu\\qest\"\n", 1, "name", .badEscape(UInt8(ascii: "q"))),
    ("disk = [ 'a',\n 'b'\n", 3, "disk", .unterminatedList),
    ("disk = [ 'a' 'b' ]\n", 1, "disk", .expectedCommaOrBracket),
    ("name = \"a\" \"b\"\n", 1, "name", .unexpectedText),
    ("memory = 64 MiB\n", 1, "memory", .unexpectedText),
    ("memory = 64\nmemory = 128\n", 2, "memory", .duplicateKey(firstLine: 1)),
    ("name = [\"a\"]\nmemory = 64\nkernel = \"k\"\n", 1, "name", .expectedString),
    ("name = \"a\"\nmemory = [64]\nkernel = \"k\"\n", 2, "memory", .expectedInteger),
    ("name = \"a\"\nmemory = \"-5\"\nkernel = \"k\"\n", 2, "memory", .expectedInteger),
    ("name = \"a\"\nmemory = 99999999999999999999\nkernel = \"k\"\n", 2, "memory", .integerTooLarge),
    ("name = \"a\"\nmemory = 64\nkernel = \"k\"\ntype = \"xen\"\n", 4, "type", .unknownType(Array("xen".utf8))),
    ("name = \"a\"\nmemory = 64\nkernel = \"k\"\nbuilder = \"linux\"\n", 4, "builder", .unknownType(Array("linux".utf8))),
    ("name = \"a\"\nmemory = 64\nkernel = \"k\"\non_crash = \"explode\"\n", 4, "on_crash", .unknownShutdownAction(Array("explode".utf8))),
    ("name = \"a\"\nmemory = 64\nkernel = \"k\"\non_reboot = \"rename-restart\"\n", 4, "on_reboot", .unsupportedShutdownAction(Array("rename-restart".utf8))),
    ("name = \"a\"\nmemory = 64\nkernel = \"k\"\non_crash = \"coredump-destroy\"\n", 4, "on_crash", .unsupportedShutdownAction(Array("coredump-destroy".utf8))),
  ] as [(String, Int, String?, XLConfigError.Kind)])
  func syntaxAndValueErrors(text: String, line: Int, key: String?, kind: XLConfigError.Kind) {
    let failure = error(text)
    #expect(failure?.line == line, "\(text)")
    #expect(failure?.key == key.map(bytes), "\(text)")
    #expect(failure?.kind == kind, "\(text)")
  }

  @Test func validation() {
    func problem(_ text: String) -> (Int?, DomainConfigProblem?) {
      let failure = error(text)
      guard case .invalid(let problem)? = failure?.kind else { return (failure?.line, nil) }
      return (failure?.line, problem)
    }
    let base = "type = \"pvh\"\nkernel = \"k\"\n"  // lines 1-2
    #expect(problem(base + "memory = 64\n") == (nil, .missingName))
    #expect(problem(base + "memory = 64\nname = \"\"\n") == (4, .missingName))
    #expect(problem(base + "memory = 64\nname = \"\(String(repeating: "x", count: 65))\"\n") == (4, .nameTooLong(length: 65)))
    #expect(problem(base + "memory = 64\nname = \"a b\"\n") == (4, .nameHasInvalidByte(UInt8(ascii: " "))))
    #expect(problem(base + "memory = 64\nname = \"a/b\"\n") == (4, .nameHasInvalidByte(UInt8(ascii: "/"))))
    #expect(problem(base + "name = \"a\"\nmemory = 8\n") == (4, .memoryOutOfRange(8)))
    #expect(problem(base + "name = \"a\"\nmemory = 65537\n") == (4, .memoryOutOfRange(65537)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nvcpus = 0\n") == (5, .vcpusOutOfRange(0)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nvcpus = 65\n") == (5, .vcpusOutOfRange(65)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nvcpus = 4\nmaxvcpus = 2\n") == (6, .maxVCPUsOutOfRange(2, vcpus: 4)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nweight = 0\n") == (5, .weightOutOfRange(0)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmaxmem = 32\n") == (5, .maxMemoryOutOfRange(32, memory: 64)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\ncap = 6401\n") == (5, .capOutOfRange(6401)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmax_grant_frames = 0\n") == (5, .maxGrantFramesOutOfRange(0)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmax_grant_frames = 4097\n") == (5, .maxGrantFramesOutOfRange(4097)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmax_maptrack_frames = 4097\n") == (5, .maxMaptrackFramesOutOfRange(4097)))
    #expect(problem("name = \"a\"\nmemory = 64\n") == (nil, .missingKernel))
    #expect(problem("name = \"a\"\nmemory = 64\nkernel = \"k\"\ntype = \"hvm\"\n") == (4, .unsupportedType(.hvm)))
    #expect(problem("name = \"a\"\nmemory = 64\nkernel = \"k\"\nbuilder = \"generic\"\n") == (nil, .unsupportedType(.pv)))
    #expect(problem("name = \"a\"\nmemory = 64\nkernel = \"k\"\ncmdline = \"a\\\\0\"\n").1 == nil)

    // A missing memory setting is reported as such, not as an out-of-range zero.
    let missingMemory = error("name = \"a\"\nkernel = \"k\"\n")
    #expect(missingMemory?.kind == .missingKey)
    #expect(missingMemory?.message() == bytes("test.cfg: memory: is required"))
  }

  @Test func validationMessages() {
    #expect(error("name = \"a\"\nmemory = 8\nkernel = \"k\"\n")?.message()
      == bytes("test.cfg:2: memory: must be between 16 and 65536 MiB (got 8)"))
    #expect(error("name = \"a\"\nmemory = 64\nkernel = \"k\"\ntype = \"hvm\"\n")?.message()
      == bytes("test.cfg:4: type: \"hvm\" guests are not supported yet; only \"pvh\" is"))
    #expect(error("name = \"a b\"\nmemory = 64\nkernel = \"k\"\n")?.message()
      == bytes("test.cfg:1: name: may contain only A-Z a-z 0-9 _ . - (found byte 0x20)"))
    #expect(error("type = \"pvh\"\nmemory = 64\nkernel = \"k\"\n")?.message()
      == bytes("test.cfg: name: is required and must not be empty"))
    #expect(error("name = \"a\"\nmemory = 64\nkernel = \"k\"\nvcpus = 4\nmaxvcpus = 2\n")?.message()
      == bytes("test.cfg:5: maxvcpus: must be at least vcpus (4) and at most 64 (got 2)"))
    // Problems are reported in validation order: the name before the missing memory.
    #expect(error("kernel = \"k\"\n")?.message() == bytes("test.cfg: name: is required and must not be empty"))
  }

  @Test func randomInputNeverTraps() {
    var random = SplitMix64(seed: 0x5eed_c0f1)
    let alphabet = Array("name=memory\"'[],;#\n \\0x12vcpus".utf8)
    for _ in 0..<3000 {
      let length = Int(random.next() % 80)
      let text = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
      _ = try? XLConfig.parseWithWarnings(text, fileName: bytes("fuzz.cfg"))
    }
    // Mutations of a valid file.
    let valid = bytes(minimal + "vcpus = 2\ncmdline = \"console=hvc0\"\ndisk = [ 'a', 'b' ]\n")
    for _ in 0..<3000 {
      var text = valid
      for _ in 0..<(1 + Int(random.next() % 4)) {
        text[Int(random.next() % UInt64(text.count))] = UInt8(truncatingIfNeeded: random.next())
      }
      if let (config, _) = try? XLConfig.parseWithWarnings(text, fileName: bytes("fuzz.cfg")) {
        #expect((try? config.validate()) != nil)
      }
    }
  }
}
