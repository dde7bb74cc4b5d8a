/// VisorKit: the host side of Swiftvisor, shared by the `visor` tool and the system tests.
///
/// - `ImageBuilder` builds the bare-metal image with SwiftPM and a toolset.
/// - `QEMURunner` boots it under QEMU (TCG, AMD-V + nested paging), streams and captures the serial
///   console, enforces a time limit and classifies the end as a `VisorExit`.
/// - `ISOBuilder` wraps the image in a GRUB (multiboot2) ISO.
/// - `ImageFile` describes an ELF image (sizes, PVH entry) with the hypervisor's own ELF loader.
/// - `CrashReport` cuts a crash report out of a console.
/// - `BootBenchmark` reports boot times and image size against their targets.
public enum VisorKit {}
