import Foundation
import Hypervisor
import Testing
import VisorKit

extension Serialized.Domains {
  /// on_poweroff / on_reboot / on_crash (docs/domains.md): what happens to a domain that ended.
  @Test("on_reboot = restart: a rebooting domain is built again under a new id, until it powers off")
  func rebootRestarts() throws {
    // guest-hello reboots while its domain id is below 3: domains 1 and 2 reboot, 3 powers off.
    let hello = try SystemGuests.config(
      name: "hello", guest: "guest-hello", cmdline: "shutdown=reboot shutdown-below-domid=3")
    let result = try SystemImage.boot(configs: [hello], smp: 1)
    expectLines(result, [
      "(d1) guest-hello: domain 1: shutdown(reboot)",
      "domain 1 (hello): reboot: restarting (its on_reboot says so)",
      "domain 1 (hello): restarted as domain 2",
      "(d2) guest-hello: domain 2: shutdown(reboot)",
      "domain 2 (hello): restarted as domain 3",
      "(d3) guest-hello: done",
      "domain 3 (hello): shutdown: poweroff",
      "all domains have ended: 3 built, 3 ended cleanly, 0 did not; 2 restarted",
      "poweroff: clean",
    ])
    #expect(!result.contains("(d3) guest-hello: domain 3: shutdown"), "domain 3 rebooted too\n\(context(result))")
    expectAllFramesReturned(result)
    expectNoCrashReport(result)
    expectExit(result, .clean)
  }

  /// A domain that reboots at once, every time, is restarted `RestartThrottle.limit` (10) times
  /// within a minute and then destroyed: a restart loop does not keep a pcpu building domains
  /// for ever. It counts as a domain that did not end cleanly.
  @Test("A restart loop is stopped after 10 restarts within a minute")
  func restartLoopIsThrottled() throws {
    let hello = try SystemGuests.config(name: "loop", guest: "guest-hello", cmdline: "shutdown=reboot")
    let result = try SystemImage.boot(configs: [hello], smp: 1)
    expectLines(result, [
      "domain 10 (loop): restarted as domain 11",
      "domain 11 (loop): reboot: not restarted: 10 restarts in the last 60 s (a restart loop); destroyed",
      "all domains have ended: 11 built, 10 ended cleanly, 1 did not; 10 restarted",
      "poweroff: with the failed-domain status",
    ])
    #expect(result.lines(containing: "restarted as domain").count == 10, "\(context(result))")
    #expect(!result.contains("(d12)"), "an 11th restart ran\n\(context(result))")
    expectAllFramesReturned(result)
    expectNoCrashReport(result)
    expectExit(result, .domainFailed)
  }

  /// Both domains are built from one blob of the bundle (BundleMaker stores guest-hello once);
  /// each gets its own copy, so "a", restarted after its first run wrote its memory, starts
  /// from intact bytes again.
  @Test("Two domains from one shared kernel blob both run, and one restarts from it")
  func sharedKernelBlobRestarts() throws {
    // "a" (domain 1) reboots while its id is below 3: its restart is domain 3 ("b" is 2).
    let a = try SystemGuests.config(name: "a", guest: "guest-hello", cmdline: "shutdown=reboot shutdown-below-domid=3")
    let b = try SystemGuests.config(name: "b", guest: "guest-hello", cmdline: "iterations=100000")
    let result = try SystemImage.boot(configs: [a, b], smp: 1)
    expectLines(result, [
      "boot bundle: 2 domain(s), 1 kernel/ramdisk blob(s), ",
      "(d1) guest-hello: domain 1: shutdown(reboot)",
      "domain 1 (a): restarted as domain 3",
      "(d2) cmdline: iterations=100000",
      "(d2) guest-hello: done",
      "domain 2 (b): shutdown: poweroff",
      "(d3) hello from guest-hello",
      "(d3) guest-hello: done",
      "domain 3 (a): shutdown: poweroff",
      "all domains have ended: 3 built, 3 ended cleanly, 0 did not; 1 restarted",
      "poweroff: clean",
    ])
    expectAllFramesReturned(result)
    expectNoCrashReport(result)
    expectExit(result, .clean)
  }

  @Test("on_crash = preserve: the crashed domain keeps its memory while the other runs, and is destroyed at the end")
  func crashPreserves() throws {
    let crashing = try SystemGuests.config(
      name: "crashing", guest: "guest-hello", cmdline: "shutdown=crash", extra: "on_crash = \"preserve\"\n")
    let spin = try SystemGuests.config(name: "spin", guest: "guest-spin", cmdline: "iterations=300000")
    let result = try SystemImage.boot(configs: [crashing, spin], smp: 3)
    expectLines(result, [
      "(d1) guest-hello: domain 1: shutdown(crash)",
      "domain 1 (crashing): crash: preserved (its on_crash says so): ",
      "domain 1 (crashing): preserved until the end: destroying it now",
      "domain 1 (crashing): destroyed, ",
      "domain 2 (spin): shutdown: poweroff",
      "all domains have ended: 2 built, 1 ended cleanly, 1 did not; 1 preserved",
      "poweroff: with the failed-domain status",
    ])
    // Preserved means kept: it is destroyed only after the other domain has ended.
    if let preservedAt = result.firstIndex(of: "domain 1 (crashing): destroyed, "),
       let otherEnd = result.firstIndex(of: "domain 2 (spin): destroyed, ") {
      #expect(otherEnd < preservedAt, "the preserved domain was destroyed before the end\n\(context(result))")
    }
    #expect(!result.contains("restart"), "nothing was to be restarted\n\(context(result))")
    expectAllFramesReturned(result)
    expectNoCrashReport(result)
    expectExit(result, .domainFailed)
  }

  @Test("on_reboot = destroy: a reboot ends the domain, cleanly")
  func rebootDestroys() throws {
    let hello = try SystemGuests.config(
      name: "hello", guest: "guest-hello", cmdline: "shutdown=reboot", extra: "on_reboot = \"destroy\"\n")
    let result = try SystemImage.boot(configs: [hello], smp: 1)
    expectLines(result, [
      "(d1) guest-hello: domain 1: shutdown(reboot)",
      "domain 1 (hello): shutdown: reboot",
      "domain 1 (hello): destroyed, ",
      "all domains have ended: 1 built, 1 ended cleanly, 0 did not",
      "poweroff: clean",
    ])
    #expect(!result.contains("restart"), "on_reboot = destroy restarted it\n\(context(result))")
    expectAllFramesReturned(result)
    expectExit(result, .clean)
  }
}
