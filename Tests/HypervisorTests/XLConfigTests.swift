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
      max_event_channels = 4095
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
    #expect(config.maxEventChannels == 4095)
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
    #expect(warnings.isEmpty)
    #expect(config.disks.map(\.vdev) == [bytes("xvda"), bytes("xvdb")])
    #expect(config.nics.isEmpty)
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
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmax_event_channels = 0\n") == (5, .maxEventChannelsOutOfRange(0)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmax_event_channels = 131073\n") == (5, .maxEventChannelsOutOfRange(131_073)))
    #expect(problem(base + "name = \"a\"\nmemory = 64\nmax_event_channels = 131072\n").1 == nil)
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

/// The `disk`, `vif` and `driver_domain` keys (DeviceConfig.swift).
@Suite struct XLConfigDeviceTests {
  private func disk(_ entry: String) throws(DeviceProblem) -> DiskConfig { try DiskConfig.parse(bytes(entry)) }

  private func diskProblem(_ entry: String) -> DeviceProblem? {
    do {
      _ = try DiskConfig.parse(bytes(entry))
      return nil
    } catch {
      return error
    }
  }

  private func vifProblem(_ entry: String) -> DeviceProblem? {
    do {
      _ = try NICConfig.parse(bytes(entry), index: 0, domainName: bytes("g"))
      return nil
    } catch {
      return error
    }
  }

  @Test func vdevNumbersAreLibxls() {
    func number(_ vdev: String) -> Int? { DiskConfig.deviceNumber(vdev: bytes(vdev)) }
    #expect(number("xvda") == 51712)
    #expect(number("xvdb") == 51728)
    #expect(number("xvda1") == 51713)
    #expect(number("xvdp15") == (202 << 8) | (15 << 4) | 15)
    // Beyond xvdp, or a partition beyond 15: the extended form.
    #expect(number("xvdq") == (1 << 28) | (16 << 8))
    #expect(number("xvda16") == (1 << 28) | 16)
    #expect(number("xvdz") == (1 << 28) | (25 << 8))
    #expect(number("xvdaa") == (1 << 28) | (26 << 8))
    #expect(number("xvdba3") == (1 << 28) | (52 << 8) | 3)
    #expect(number("d0p1") == 51713)
    #expect(number("d20p0") == (1 << 28) | (20 << 8))
    #expect(number("hda") == 3 << 8)
    #expect(number("hdb2") == (3 << 8) | (1 << 6) | 2)
    #expect(number("hdc") == 22 << 8)
    #expect(number("hdd63") == (22 << 8) | (1 << 6) | 63)
    #expect(number("sda") == 8 << 8)
    #expect(number("sdb1") == (8 << 8) | (1 << 4) | 1)
    #expect(number("51712") == 51712)
    #expect(number("0xca00") == 51712)
    #expect(number("0") == 0)
    for bad in ["", "xvd", "xvdA", "xvda0", "xvda01", "xvda256", "xvd1", "hde", "hda64", "sdq", "sda16",
                "vda", "d0", "dp1", "d0p", "d1048576p0", "d0p256", "010", "-1", "99999999999", "xvda ", "xvdaaaaaa"] {
      #expect(number(bad) == nil, "\(bad)")
    }
  }

  @Test func positionalAndKeyedDiskEntries() throws {
    let positional = try disk("/srv/root.img,raw,xvda,rw")
    #expect(positional == DiskConfig(target: bytes("/srv/root.img"), vdev: bytes("xvda")))
    #expect(positional.devid == 51712)
    #expect(positional.discardEnabled)
    // An empty format is raw, and the access may be left out.
    #expect(try disk("/dev/vg/a,,xvdb") == DiskConfig(target: bytes("/dev/vg/a"), vdev: bytes("xvdb")))
    // Deprecated prefixes: no format after them.
    #expect(try disk("phy:/dev/vg/a,xvda,w") == DiskConfig(target: bytes("/dev/vg/a"), vdev: bytes("xvda")))
    #expect(try disk("file:/b.img,xvdb,r") == DiskConfig(target: bytes("/b.img"), vdev: bytes("xvdb"), readOnly: true))
    #expect(try disk("tap:aio:/c.img,xvdc:cdrom,r").isCDROM)
    #expect(try disk("raw:/d.img,hda,ro").devid == 3 << 8)

    let keyed = try disk(" vdev=xvdc, access=ro, format=raw, devtype=cdrom, backend=net-dd, no-discard, untrusted, target=/images/a,b=c.iso,")
    #expect(keyed.target == bytes("/images/a,b=c.iso"))
    #expect(keyed.vdev == bytes("xvdc"))
    #expect(keyed.readOnly)
    #expect(keyed.isCDROM)
    #expect(keyed.discard == false)
    #expect(!keyed.trusted)
    #expect(keyed.backend == bytes("net-dd"))
    #expect(try disk("mode=r,vdev=sdb,target=/x").readOnly)
    #expect(try disk("/x,raw,xvda,w,").readOnly == false)
    #expect(try disk("/x,raw,xvda,ro").discardEnabled == false, "libxl: discard follows writability")
    #expect(try disk("cdrom,/x,raw,xvda").isCDROM)
  }

  @Test func badDiskEntries() {
    let raw = bytes("format")
    #expect(diskProblem("/x,qcow2,xvda") == .unsupportedValue(parameter: raw, value: bytes("qcow2")))
    #expect(diskProblem("format=vhd,vdev=xvda,target=/x") == .unsupportedValue(parameter: raw, value: bytes("vhd")))
    #expect(diskProblem("qcow2:/x,xvda") == .unsupportedValue(parameter: raw, value: bytes("qcow2")))
    // Without a prefix the second positional parameter is the format, as in xl.
    #expect(diskProblem("/b.img,xvdb,r") == .unsupportedValue(parameter: raw, value: bytes("xvdb")))
    #expect(diskProblem("/x,raw,xvda,rwx") == .unsupportedValue(parameter: bytes("access"), value: bytes("rwx")))
    #expect(diskProblem("devtype=floppy,/x,raw,xvda") == .unsupportedValue(parameter: bytes("devtype"), value: bytes("floppy")))
    #expect(diskProblem("backendtype=qdisk,/x,raw,xvda") == .unsupportedValue(parameter: bytes("backendtype"), value: bytes("qdisk")))
    #expect(diskProblem("/x,raw,xvda:floppy") == .unsupportedValue(parameter: bytes("devtype"), value: bytes("floppy")))
    #expect(diskProblem("colo-host=a,/x,raw,xvda") == .unknownParameter(bytes("colo-host")))
    #expect(diskProblem("nbd:host:1234,xvda") == .unsupportedPrefix(bytes("nbd")))
    #expect(diskProblem("weird:/x,xvda") == .unsupportedPrefix(bytes("weird")))
    #expect(diskProblem("/x,raw,xvda,rw,extra") == .tooManyPositional(bytes("extra")))
    #expect(diskProblem("vdev=xvda,vdev=xvdb,target=/x") == .repeated(bytes("vdev")))
    #expect(diskProblem("/x,raw,xvda,access=r,w") == .tooManyPositional(bytes("w")))
    #expect(diskProblem("/x,raw,xvda,r,access=w") == .repeated(bytes("access")))
    #expect(diskProblem("/x,raw,xvda,format=raw") == .repeated(raw))
    // A format given by name leaves its positional slot out, as in xl.
    #expect(diskProblem("format=raw,/x,raw,xvda") == .unsupportedValue(parameter: bytes("access"), value: bytes("xvda")))
    #expect(diskProblem("target=/x,vdev=xvda") == .missing(bytes("vdev")), "target= takes the rest")
    #expect(diskProblem("vdev=xvda") == .missing(bytes("target")))
    #expect(diskProblem(",raw,xvda") == .missing(bytes("target")))
    #expect(diskProblem("") == .missing(bytes("target")))
    #expect(diskProblem("/x,raw,xvdA") == .badVdev(bytes("xvdA")))
    #expect(diskProblem("/x,raw,vda") == .badVdev(bytes("vda")))
  }

  @Test func vifEntries() throws {
    let nic = try NICConfig.parse(bytes("mac=00:16:3E:01:2:ff, bridge=br1,backend=net-dd,ip=10.0.0.2,script=vif-route,type=vif,,untrusted"),
                                  index: 2, domainName: bytes("web"))
    #expect(nic.devid == 2)
    #expect(nic.mac == [0x00, 0x16, 0x3E, 0x01, 0x02, 0xFF])
    #expect(NICConfig.macText(nic.mac) == bytes("00:16:3e:01:02:ff"))
    #expect(nic.bridge == bytes("br1"))
    #expect(nic.backend == bytes("net-dd"))
    #expect(nic.ip == bytes("10.0.0.2"))
    #expect(nic.script == bytes("vif-route"))
    #expect(!nic.trusted)

    // No mac: one in Xen's OUI, the same for the same domain and index, different otherwise.
    let plain = try NICConfig.parse([], index: 0, domainName: bytes("web"))
    #expect(plain.mac.prefix(3) == [0x00, 0x16, 0x3E])
    #expect(plain.mac[3] & 0x80 == 0)
    #expect(plain.mac == NICConfig.generatedMAC(domainName: bytes("web"), index: 0))
    #expect(plain.mac != NICConfig.generatedMAC(domainName: bytes("web"), index: 1))
    #expect(plain.mac != NICConfig.generatedMAC(domainName: bytes("db"), index: 0))
    #expect(plain.bridge == nil && plain.script == nil && plain.trusted)
  }

  @Test func badVifEntries() {
    #expect(vifProblem("mac=00:16:3e:01:02") == .badMAC(bytes("00:16:3e:01:02")))
    #expect(vifProblem("mac=00:16:3e:01:02:03:04") == .badMAC(bytes("00:16:3e:01:02:03:04")))
    #expect(vifProblem("mac=00:16:3e:01:02:xyz") == .badMAC(bytes("00:16:3e:01:02:xyz")))
    #expect(vifProblem("mac=00:16:3e:01:02:100") == .badMAC(bytes("00:16:3e:01:02:100")))
    #expect(vifProblem("type=ioemu") == .unsupportedValue(parameter: bytes("type"), value: bytes("ioemu")))
    #expect(vifProblem("model=e1000") == .unknownParameter(bytes("model")))
    #expect(vifProblem("bridge") == .unknownParameter(bytes("bridge")))
    #expect(vifProblem("bridge=a,bridge=b") == .repeated(bytes("bridge")))
    #expect(vifProblem("mac=00:16:3e:00:00:01,mac=00:16:3e:00:00:02") == .repeated(bytes("mac")))
    // Multicast and zero MACs parse but break the rules: netfront would refuse them.
    let multicast = try? NICConfig.parse(bytes("mac=01:00:5e:00:00:01"), index: 0, domainName: bytes("g"))
    #expect(throws: DeviceProblem.badMAC(bytes("01:00:5e:00:00:01"))) { try multicast?.validate() }
    let zero = try? NICConfig.parse(bytes("mac=0:0:0:0:0:0"), index: 0, domainName: bytes("g"))
    #expect(throws: DeviceProblem.badMAC(bytes("00:00:00:00:00:00"))) { try zero?.validate() }
  }

  @Test func devicesInAConfigFile() throws {
    let text = minimal + """
      driver_domain = 0
      disk = [ 'format=raw, vdev=xvda, access=rw, target=/srv/root.img',
               '/srv/data.img,,xvdb,ro' ]
      vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr1', '' ]
      """
    let (config, warnings) = try parseWithWarnings(text)
    #expect(warnings.isEmpty)
    #expect(!config.isDriverDomain)
    #expect(config.disks == [
      DiskConfig(target: bytes("/srv/root.img"), vdev: bytes("xvda")),
      DiskConfig(target: bytes("/srv/data.img"), vdev: bytes("xvdb"), readOnly: true),
    ])
    #expect(config.nics.map(\.devid) == [0, 1])
    #expect(config.nics[0].bridge == bytes("xenbr1"))
    #expect(config.nics[1].mac == NICConfig.generatedMAC(domainName: bytes("guest"), index: 1))
    #expect(try parse(minimal + "driver_domain = 1\n").isDriverDomain)
    #expect(try parse(minimal + "disk = []\nvif = []\n").disks.isEmpty)
  }

  @Test func badDeviceLinesNameFileLineAndKey() {
    // The entry's own line, not the key's.
    let text = minimal + "disk = [ '/a.img,raw,xvda',\n  '/b.img,qcow2,xvdb' ]\n"
    let failure = error(text)
    #expect(failure?.line == 6)
    #expect(failure?.key == bytes("disk"))
    #expect(failure?.message() == bytes("test.cfg:6: disk: entry 2: format \"qcow2\" is not supported (only raw)"))

    #expect(error(minimal + "vif = [ 'bridge=br0,colour=red' ]\n")?.message()
      == bytes("test.cfg:5: vif: entry 1: unknown parameter \"colour\""))
    #expect(error(minimal + "vif = [ 'mac=01:00:00:00:00:01' ]\n")?.message()
      == bytes("test.cfg:5: vif: entry 1: mac \"01:00:00:00:00:01\" is not a unicast MAC address (six hex bytes separated by \":\")"))
    // The same device twice, by two spellings: found by validation, still at the entry's line.
    let twice = error(minimal + "disk = [ '/a,raw,xvda',\n'/b,raw,51712' ]\n")
    #expect(twice?.line == 6)
    #expect(twice?.message() == bytes("test.cfg:6: disk: entry 2: is the same device as entry 1"))
    #expect(error(minimal + "disk = '/a,raw,xvda'\n")?.kind == .expectedList)
    #expect(error(minimal + "vif = 'bridge=br0'\n")?.kind == .expectedList)
    #expect(error(minimal + "driver_domain = 2\n")?.message() == bytes("test.cfg:5: driver_domain: expected 0 or 1"))
    #expect(error(minimal + "driver_domain = \"yes\"\n")?.kind == .expectedBoolean)
    #expect(error(minimal + "disk = [ '/a,raw,xvda' ]\ndisk = []\n")?.kind == .duplicateKey(firstLine: 5))
  }

  @Test func hostileDeviceEntries() {
    // A huge target: refused by length, not stored.
    let huge = String(repeating: "x", count: 100_000)
    #expect(error(minimal + "disk = [ '/\(huge),raw,xvda' ]\n")?.kind
      == .invalid(.disk(index: 0, .tooLong(parameter: bytes("target"), length: 100_001, maximum: DiskConfig.maxTargetLength))))
    #expect(error(minimal + "vif = [ 'bridge=\(huge)' ]\n")?.kind
      == .invalid(.vif(index: 0, .tooLong(parameter: bytes("bridge"), length: 100_000, maximum: NICConfig.maxBridgeLength))))
    #expect(error(minimal + "disk = [ 'vdev=\(huge),target=/x' ]\n")?.kind == .invalid(.disk(index: 0, .badVdev(bytes(huge)))))
    // Control bytes (from escapes) never reach a xenstore value.
    #expect(error(minimal + "disk = [ '/a\\nb,raw,xvda' ]\n")?.kind
      == .invalid(.disk(index: 0, .badByte(parameter: bytes("target"), byte: 0x0A))))
    #expect(error(minimal + "vif = [ 'backend=a/b' ]\n")?.kind
      == .invalid(.vif(index: 0, .badByte(parameter: bytes("backend"), byte: UInt8(ascii: "/")))))
    #expect(error(minimal + "vif = [ 'backend=' ]\n")?.kind == .invalid(.vif(index: 0, .missing(bytes("backend")))))
    // Too many entries.
    let disks = (0..<33).map { "'/d\($0),raw,xvd\(String(UnicodeScalar(UInt8(97 + $0 % 26))))\($0 / 26 + 1)'" }.joined(separator: ",")
    #expect(error(minimal + "disk = [ \(disks) ]\n")?.kind == .invalid(.tooManyDisks(33)))
    let vifs = Array(repeating: "''", count: 33).joined(separator: ",")
    #expect(error(minimal + "vif = [ \(vifs) ]\n")?.kind == .invalid(.tooManyVIFs(33)))
    let tooMany = error(minimal + "vif = [ \(vifs) ]\n").map { String(decoding: $0.message(), as: UTF8.self) } ?? ""
    #expect(tooMany.hasSuffix("33 vifs; at most 32 are allowed"), "\(tooMany)")

    // Random entries never trap, and whatever parses also validates or is refused cleanly.
    var random = SplitMix64(seed: 0xd15c)
    let alphabet = Array("xvda,=:/rawtgeformcdvifbspq0123456789 \t\n".utf8)
    for _ in 0..<4000 {
      let entry = (0..<Int(random.next() % 40)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
      if let disk = try? DiskConfig.parse(entry) { _ = try? disk.validate() }
      if let nic = try? NICConfig.parse(entry, index: 0, domainName: bytes("g")) { _ = try? nic.validate() }
    }
  }
}
