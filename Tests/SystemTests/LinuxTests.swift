import Foundation
import Testing
import VisorKit

extension Serialized {
  /// Debian's cloud kernel (scripts/fetch-linux) as a PVH domain: it prints its early log through
  /// earlyprintk=xen (console_io), finds the ACPI tables and the x2APIC, switches to hvc0 (the
  /// console ring), takes its clock and timer from Xen and runs the initramfs's /init (busybox).
  /// With `swiftvisor.auto` on its command line /init prints a banner and powers off (every cpu
  /// ends in `cli; hlt`, so the domain ends cleanly); without it, /init runs a shell on hvc0,
  /// which these tests drive through the serial input (docs/linux-guests.md).
  @Suite("Linux") struct Linux {
    static let variable = "SWIFTVISOR_LINUX"

    /// The folder scripts/fetch-linux fills (vmlinuz, initrd.cpio).
    static func folder() throws -> String {
      guard let folder = ProcessInfo.processInfo.environment[variable], !folder.isEmpty else {
        throw SystemImage.Missing(description: "\(variable) is not set: run scripts/fetch-linux and export its folder (scripts/test does both)")
      }
      return folder
    }

    /// The xl.cfg of a Linux domain; `ramdisk: false` boots the kernel without the initramfs.
    static func config(name: String = "linux", memory: Int = 256, vcpus: Int, cmdline: String, ramdisk: Bool = true) throws -> String {
      let folder = try folder()
      var text = """
        name = "\(name)"
        type = "pvh"
        memory = \(memory)
        vcpus = \(vcpus)
        kernel = "\(folder)/vmlinuz"
        cmdline = "\(cmdline)"

        """
      if ramdisk { text += "ramdisk = \"\(folder)/initrd.cpio\"\n" }
      return text
    }

    /// The first line of the shell's prompt (the initramfs's PS1: this line, then "# ").
    static let prompt = "(d1) swiftvisor:linux /"

    @Test("Debian's kernel boots as a PVH domain to its /init and powers off", arguments: [1, 2])
    func debianKernelBoots(vcpus: Int) throws {
      let config = try Self.config(vcpus: vcpus, cmdline: "earlyprintk=xen console=hvc0 loglevel=8 swiftvisor.auto")
      let result = try SystemImage.boot(configs: [config], smp: vcpus == 1 ? 1 : 3, timeout: 300)
      expectLines(result, [
        "(d1) [    0.000000] Linux version 6.1",
        "(d1) [    0.000000] Command line: earlyprintk=xen console=hvc0 loglevel=8 swiftvisor.auto",
        "(d1) [    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable",
        "(d1) [    0.000000] Hypervisor detected: Xen HVM",
        "(d1) [    0.000000] Xen version 4.17.",
        "RAMDISK: [mem ",
      ])
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      #expect(!result.contains("grant table add_to_physmap failed"), "\(context(result))")
      // xenbus comes up on the store the hypervisor serves: no xenbus or cpu-state complaint.
      #expect(!result.lines.contains { $0.text.lowercased().contains("xenbus") }, "\(context(result))")
      #expect(!result.contains("Unable to read cpu state"), "\(context(result))")
      expectLines(result, [
        "printk: console [hvc0] enabled",
        // The local APIC starts in xAPIC mode, as on Xen; Linux switches it (docs/vlapic.md).
        "x2apic enabled",
        "Switched APIC routing to physical x2apic.",
        "Xen: using vcpuop timer interface",
        "xen:grant_table: Grant tables using version 1 layout",
        "Grant table initialized",
        "Run /init as init process",
        "(d1) swiftvisor-initramfs: hello from busybox on 6.1",
        "(d1) swiftvisor-initramfs: cpus: \(vcpus)",
        "domain 1 (linux): every vcpu is down: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
        "memory: all ",
      ])
      expectExit(result, .clean)
    }

    /// The `(d1)` lines after the shell's echo of `command` ("# command") up to the next prompt:
    /// what the command printed. Nil if the echo is not there.
    static func answer(to command: String, in result: RunResult) -> [String]? {
      let lines = result.lines.map(\.text).filter { $0.hasPrefix("(d1) ") }.map { String($0.dropFirst(5)) }
      guard let echo = lines.firstIndex(where: { $0.hasPrefix("# ") && $0.hasSuffix(command) }) else { return nil }
      let rest = lines[(echo + 1)...]
      let end = rest.firstIndex { $0.hasPrefix("swiftvisor:linux ") } ?? rest.endIndex
      return rest[..<end].filter { !$0.isEmpty }
    }

    @Test("A busybox shell on hvc0, 2 vcpus: typed commands answer through the console ring, poweroff -f ends the run")
    func interactiveShell() throws {
      let commands = ["cat /proc/cpuinfo | grep -c processor", "uname -r", "dmesg | grep -i xen", "poweroff -f"]
      // Each command once the prompt (a whole line, then "# ") is back.
      let input = commands.map { SerialInput.after(Self.prompt, send: $0 + "\n") }
      let config = try Self.config(vcpus: 2, cmdline: "console=hvc0 loglevel=4")
      let result = try SystemImage.boot(configs: [config], smp: 3, timeout: 300, input: input)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectLines(result, [
        "console input: domain 1 (linux) (Ctrl-A three times to switch)",
        "(d1) swiftvisor-initramfs: hello from busybox on 6.1",
        "(d1) swiftvisor-initramfs: cpus: 2",
        "(d1) swiftvisor-initramfs: shell on hvc0",
        Self.prompt,
        "domain 1 (linux): every vcpu is down: poweroff",
        "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
      ])
      #expect(
        result.inputTimes.count == input.count,
        "only \(result.inputTimes.count) of \(input.count) commands were typed\n\(context(result))")
      #expect(Self.answer(to: commands[0], in: result) == ["2"], "\(context(result))")
      let release = Self.answer(to: commands[1], in: result) ?? []
      #expect(
        release.count == 1 && release[0].hasPrefix("6.1.") && release[0].hasSuffix("-cloud-amd64"),
        "uname -r answered \(release)\n\(context(result))")
      let xen = Self.answer(to: commands[2], in: result) ?? []
      #expect(xen.contains { $0.contains("Hypervisor detected: Xen HVM") }, "dmesg | grep -i xen answered \(xen)\n\(context(result))")
      #expect(xen.contains { $0.contains("Xen version 4.17") }, "dmesg | grep -i xen answered \(xen)\n\(context(result))")
      #expect(!result.contains("the shell exited"), "poweroff -f should end the domain from the shell\n\(context(result))")
      expectExit(result, .clean)
    }

    /// Ctrl-C typed on the console reaches the shell's foreground command as SIGINT: hvc0 is the
    /// shell's controlling terminal (the /init starts it with `setsid cttyhack`).
    @Test("Ctrl-C in the shell interrupts the running command")
    func controlCInterrupts() throws {
      let input = [
        // Ctrl-C once the command runs in the foreground (typed earlier, the line editor would
        // still have the terminal in raw mode and read it as a byte).
        SerialInput.after(Self.prompt, send: "sh -c 'echo sleep-started; exec sleep 60'\n"),
        SerialInput.after("(d1) sleep-started", send: "\u{3}"),
        SerialInput.after(Self.prompt, send: "echo status-$?\n"),
        SerialInput.after(Self.prompt, send: "poweroff -f\n"),
      ]
      let config = try Self.config(vcpus: 1, cmdline: "console=hvc0 loglevel=4")
      let result = try SystemImage.boot(configs: [config], smp: 1, timeout: 50, input: input)
      #expect(
        result.inputTimes.count == input.count,
        "only \(result.inputTimes.count) of \(input.count) inputs were typed\n\(context(result))")
      // 130 = 128 + SIGINT: sleep was killed by the signal, long before its 60 s.
      #expect(Self.answer(to: "echo status-$?", in: result) == ["status-130"], "\(context(result))")
      expectExit(result, .clean)
    }

    /// `reboot -f` in the shell: Linux ends with SCHEDOP_shutdown(reboot), and the default
    /// `on_reboot = "restart"` builds the domain again (as domain 2) from its bundle entry; the
    /// second boot reaches its shell too and powers off.
    @Test("reboot in the shell restarts the domain (on_reboot = restart); the new one boots to its shell and powers off")
    func rebootRestartsLinux() throws {
      let input = [
        SerialInput.after(Self.prompt, send: "reboot -f\n"),
        SerialInput.after("(d2) swiftvisor:linux /", send: "poweroff -f\n"),
      ]
      let config = try Self.config(vcpus: 1, cmdline: "console=hvc0 loglevel=4")
      let result = try SystemImage.boot(configs: [config], smp: 1, timeout: 200, input: input)
      expectLines(result, [
        "domain 1 (linux): shutdown: reboot",
        "domain 1 (linux): reboot: restarting (its on_reboot says so)",
        "domain 1 (linux): restarted as domain 2",
        "(d2) swiftvisor-initramfs: hello from busybox on 6.1",
        "domain 2 (linux): every vcpu is down: poweroff",
        "all domains have ended: 2 built, 2 ended cleanly, 0 did not; 1 restarted",
        "memory: all ",
      ])
      #expect(
        result.inputTimes.count == input.count,
        "only \(result.inputTimes.count) of \(input.count) inputs were typed\n\(context(result))")
      expectExit(result, .clean)
    }

    /// A shell function that sends one xenstore request through /dev/xen/xenbus (Linux's own
    /// xenbus driver forwards it on the ring) and prints the reply's type and payload:
    /// `xs 2 name` reads the domain's name (XS_READ = 2, XS_DIRECTORY = 1; XS_ERROR = 16).
    static let xenstoreShellFunction = #"exec 3<>/dev/xen/xenbus; xs() { n=$((${#2}+1)); printf "\\$(printf %o $1)\\0\\0\\0\\1\\0\\0\\0\\0\\0\\0\\0\\$(printf %o $n)\\0\\0\\0%s\\0" "$2" >&3; set -- $(dd bs=16 count=1 <&3 2>/dev/null | od -An -tu4); echo "xs-reply $1 $(dd bs=$4 count=1 <&3 2>/dev/null | tr '\0' ' ')"; }"#

    /// Xenstore as a stock Linux uses it: xenbus comes up on the ring page and port the
    /// hypervisor publishes, the shell reads the domain's own nodes as the toolstack wrote them and
    /// is refused another domain's, Linux's own watcher on control/shutdown fires and it clears
    /// the node in a transaction; `shutdown linux` on the hypervisor console powers it off in order.
    @Test("xenstore from Linux: its own nodes read, another domain's refused; shutdown on the hypervisor console powers Linux off in order")
    func xenstoreAndShutdownRequest() throws {
      let configs = [
        try Self.config(vcpus: 1, cmdline: "console=hvc0 loglevel=4"),
        try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=2000000000"),
      ]
      let switchFocus = "\u{1}\u{1}\u{1}"
      let input = [
        // The requests are in a function too: the shell's echo of a long line wraps.
        SerialInput.after(Self.prompt, send: Self.xenstoreShellFunction + "; xstest() { xs 2 name; xs 2 domid; xs 2 /local/domain/2/name; xs 2 control/feature-poweroff; xs 2 memory/target; xs 2 /vm/nothing; }\n"),
        SerialInput.after(Self.prompt, send: "xstest\n"),
        SerialInput.after(Self.prompt, send: switchFocus),
        SerialInput.after("console input: domain 2 (spin)", send: switchFocus),
        SerialInput.after("console input: the hypervisor", send: "shutdown linux\r"),
        SerialInput.after("domain 1 (linux): destroyed", send: "q"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 2, timeout: 300, input: input)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectAllInputSent(result, input)
      // An error's payload ends in a NUL, which tr made a space.
      let answers = (Self.answer(to: "xstest", in: result) ?? []).map { $0.trimmingCharacters(in: .whitespaces) }
      #expect(answers == [
        "xs-reply 2 linux",          // its name, as the toolstack wrote it
        "xs-reply 2 1",              // its domid
        "xs-reply 16 EACCES",        // domain 2's home is closed to it
        "xs-reply 2 1",              // Linux wrote control/feature-poweroff itself
        "xs-reply 2 262144",         // memory/target in KiB (256 MiB)
        "xs-reply 16 EACCES",        // /vm is the toolstack's
      ], "\(context(result))")
      expectLines(result, [
        "console: shutdown: asked domain 1 (linux) to poweroff (control/shutdown)",
        // Without "(d1) ": the line may follow the shell's prompt ("# ") on one console line.
        "swiftvisor-initramfs: poweroff asked by the toolstack: syncing, then poweroff",
        "domain 1 (linux): every vcpu is down: poweroff",
        "console: q: powering off now, with 1 domain(s) still running",
      ])
      expectExit(result, .quit)
    }

    /// `mem-set linux 128` on the hypervisor console writes memory/target, as `xl mem-set` does;
    /// Linux's balloon driver gives 128 MiB back (XENMEM_decrease_reservation) and /proc/meminfo
    /// shows it.
    @Test("mem-set on the hypervisor console: Linux's balloon driver follows memory/target down")
    func balloonFollowsMemSet() throws {
      let switchFocus = "\u{1}\u{1}\u{1}"
      let input = [
        SerialInput.after(Self.prompt, send: "grep MemTotal /proc/meminfo\n"),
        SerialInput.after(Self.prompt, send: switchFocus),
        SerialInput.after("console input: the hypervisor", send: "mem-set linux 128\r"),
        SerialInput.after("console: mem-set: domain 1 (linux)", send: switchFocus),
        // Until the balloon has given the pages back (it works in steps); the test's timeout bounds it.
        SerialInput.after("console input: domain 1 (linux)", send: "while [ $(awk '/MemTotal/ {print $2}' /proc/meminfo) -gt 120000 ]; do sleep 1; done; grep MemTotal /proc/meminfo\n"),
        SerialInput.after(Self.prompt, send: "poweroff -f\n"),
      ]
      let config = try Self.config(vcpus: 1, cmdline: "console=hvc0 loglevel=4")
      let result = try SystemImage.boot(configs: [config], smp: 2, timeout: 300, input: input)
      expectAllInputSent(result, input)
      // The two answers (the shell's echo of the long line wraps, so they are found by content).
      let totals = result.lines.map(\.text).filter { $0.hasPrefix("(d1) MemTotal:") }.compactMap {
        Int($0.split(separator: " ").dropFirst(2).first ?? "")
      }
      let before = totals.first
      let after = totals.count == 2 ? totals.last : nil
      #expect(before != nil && after != nil && before! - after! == 131_072, "MemTotal \(before ?? -1) kB, then \(after ?? -1) kB\n\(context(result))")
      expectLines(result, ["console: mem-set: domain 1 (linux): memory/target = 131072 KiB", "domain 1 (linux): every vcpu is down: poweroff"])
      expectExit(result, .clean)
    }

    @Test("Two Linux domains (2 vcpus and 1) beside a CPU-bound guest-spin on 2 pcpus all finish and power off")
    func twoLinuxDomainsAndSpin() throws {
      let configs = [
        try Self.config(name: "linux2", memory: 192, vcpus: 2, cmdline: "console=hvc0 loglevel=4 swiftvisor.auto"),
        try Self.config(name: "linux1", memory: 192, vcpus: 1, cmdline: "console=hvc0 loglevel=4 swiftvisor.auto"),
        try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=2000000"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 300)
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectLines(result, [
        "(d1) swiftvisor-initramfs: hello from busybox on 6.1",
        "(d1) swiftvisor-initramfs: cpus: 2",
        "(d2) swiftvisor-initramfs: hello from busybox on 6.1",
        "(d2) swiftvisor-initramfs: cpus: 1",
        "(d3) guest-spin: iterations 2000000",
        "(d3) guest-spin: done",
        "domain 1 (linux2): every vcpu is down: poweroff",
        "domain 2 (linux1): every vcpu is down: poweroff",
        "domain 3 (spin): shutdown: poweroff",
        "all domains have ended: 3 built, 3 ended cleanly, 0 did not",
      ])
      expectExit(result, .clean)
    }

    /// `echo c > /proc/sysrq-trigger` from the shell: a deliberate kernel crash. Linux panics and
    /// its Xen panic notifier ends the domain with SHUTDOWN_crash; the other domain finishes.
    @Test("A Linux kernel crashed from its shell (sysrq c) ends alone; the domain beside it finishes")
    func sysrqCrashEndsAlone() throws {
      let configs = [
        try Self.config(vcpus: 1, cmdline: "console=hvc0 loglevel=4"),
        try SystemGuests.config(name: "bystander", guest: "guest-hello"),
      ]
      let input = [SerialInput.after(Self.prompt, send: "echo c > /proc/sysrq-trigger\n")]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 300, input: input)
      expectLines(result, [
        "(d1) swiftvisor-initramfs: shell on hvc0",
        "Kernel panic - not syncing: sysrq triggered crash",
        "domain 1 (linux): shutdown: crash",
        "(d2) guest-hello: done",
        "domain 2 (bystander): shutdown: poweroff",
        "all domains have ended: 2 built, 1 ended cleanly, 1 did not",
        "memory: all ",
        "poweroff: with the failed-domain status",
      ])
      #expect(!result.contains("crashed:"), "the domain should end by its own hypercall, not be crashed\n\(context(result))")
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectExit(result, .domainFailed)
    }

    /// Without an initramfs and with a root device that does not exist, the kernel panics
    /// ("VFS: Unable to mount root fs"). Xen's panic notifier in Linux turns the panic's endless
    /// wait into an immediate end: SCHEDOP_shutdown(SHUTDOWN_crash) right after the panic report
    /// (no "Rebooting in" countdown, no triple fault). That domain ends with reason crash; the
    /// other one runs on, and the run ends with the failed-domain status.
    @Test("A Linux guest that panics (no root file system) ends alone with SCHEDOP_shutdown(crash); guest-hello beside it finishes")
    func panicEndsAlone() throws {
      let configs = [
        try Self.config(name: "panic", memory: 192, vcpus: 1, cmdline: "console=hvc0 root=/dev/nonexistent", ramdisk: false),
        try SystemGuests.config(name: "bystander", guest: "guest-hello"),
      ]
      let result = try SystemImage.boot(configs: configs, smp: 3, timeout: 300)
      expectLines(result, [
        "VFS: Cannot open root device \"nonexistent\"",
        "Kernel panic - not syncing: VFS: Unable to mount root fs",
        "(d2) guest-hello: done",
        "domain 2 (bystander): shutdown: poweroff",
        "domain 1 (panic): shutdown: crash",
        "all domains have ended: 2 built, 1 ended cleanly, 1 did not",
        "memory: all ",
        "poweroff: with the failed-domain status",
      ])
      #expect(
        result.lines(containing: "Kernel panic - not syncing").allSatisfy { $0.hasPrefix("(d1) ") },
        "only domain 1 panics\n\(context(result))")
      // The guest asked to end (a shutdown hypercall); the hypervisor did not have to end it.
      #expect(!result.contains("crashed:"), "the domain should end by its own hypercall, not be crashed\n\(context(result))")
      #expect(!result.contains("SWIFTVISOR CRASH"), "the hypervisor crashed\n\(context(result))")
      expectExit(result, .domainFailed)
    }
  }
}
