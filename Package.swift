// swift-tools-version: 6.2
import PackageDescription

// One package, two build modes:
//   host  : swift build / swift test              (normal Swift on Linux: the pure parts and `visor`)
//   image : swift build --build-system native --triple x86_64-unknown-none-elf \
//             --toolset Toolsets/x86_64-hv.json -c release --product swiftvisor
// Everything that makes the image bare-metal lives in the toolset, so this manifest stays
// mode-neutral. `visor build` runs the image build for you.
let strict: [SwiftSetting] = [
  .strictMemorySafety(),
  .treatWarning("EmbeddedRestrictions", as: .error),
]

let package = Package(
  name: "Swiftvisor",
  products: [
    .executable(name: "swiftvisor", targets: ["Swiftvisor"]),
    .executable(name: "visor", targets: ["visor"]),
    .executable(name: "guest-hello", targets: ["GuestHello"]),
    .executable(name: "guest-triple", targets: ["GuestTriple"]),
    .executable(name: "guest-bad", targets: ["GuestBad"]),
    .executable(name: "guest-smp", targets: ["GuestSMP"]),
    .executable(name: "guest-spin", targets: ["GuestSpin"]),
    .executable(name: "guest-bench", targets: ["GuestBench"]),
    .executable(name: "guest-memop", targets: ["GuestMemop"]),
    .executable(name: "guest-timer", targets: ["GuestTimer"]),
    .executable(name: "guest-pingpong", targets: ["GuestPingPong"]),
    .executable(name: "guest-ipi", targets: ["GuestIPI"]),
    .executable(name: "guest-fifo", targets: ["GuestFIFO"]),
    .executable(name: "guest-flood", targets: ["GuestFlood"]),
    .executable(name: "guest-console", targets: ["GuestConsole"]),
    .executable(name: "guest-fuzz", targets: ["GuestFuzz"]),
    .executable(name: "guest-xenstore", targets: ["GuestXenstore"]),
    .executable(name: "guest-grant", targets: ["GuestGrant"]),
    .executable(name: "guest-hostile-blk", targets: ["GuestHostileBlk"]),
    .executable(name: "guest-xapic", targets: ["GuestXAPIC"]),
    .executable(name: "guest-mmio", targets: ["GuestMMIO"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
  ],
  targets: [
    // Guest-visible ABI: the structures of Xen's public headers, declared once in C (XenPublic),
    // and the constants beside them (XenABI).
    .target(name: "XenPublic"),
    .target(name: "XenABI", dependencies: ["XenPublic"], swiftSettings: strict),
    // Arch-neutral core (Xen's common/): allocators, timers, command line, logging.
    .target(name: "Hypervisor", dependencies: ["XenABI", "XenPublic"], swiftSettings: strict),
    // The C runtime and long-mode entry steps shared by the image and the test guests.
    .target(name: "Freestanding"),
    // The only C and assembly: entry points, trampolines, CPU intrinsics, the image's runtime.
    .target(name: "Support", dependencies: ["Freestanding"], exclude: ["linker.ld"]),
    // The x86 layer (Xen's arch/x86/): pure parsers are host-tested, hardware code is `#if os(none)`.
    .target(name: "X86", dependencies: ["Hypervisor", "XenABI", "XenPublic", "Support"], swiftSettings: strict),
    // The image's @main.
    .executableTarget(name: "Swiftvisor", dependencies: ["X86", "Hypervisor", "Support"]),
    // Host side: QEMU runner, image build, bundle (library, so system tests share it) and the CLI.
    .target(name: "VisorKit", dependencies: ["Hypervisor"]),
    .executableTarget(
      name: "visor",
      dependencies: ["VisorKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    .testTarget(name: "HypervisorTests", dependencies: ["Hypervisor"]),
    .testTarget(name: "X86Tests", dependencies: ["X86", "Hypervisor"]),
    .testTarget(name: "SystemTests", dependencies: ["VisorKit"]),
    // Checks docs/ against the code: every backticked code name and file path exists, every link resolves.
    .testTarget(name: "DocsTests", path: "Tests/DocsTests"),

    // PVH test guests (docs/test-guests.md): one Embedded Swift ELF each, built with
    // Toolsets/x86_64-guest.json (scripts/build-guests). On the host they build as stubs.
    .target(name: "GuestSupport", dependencies: ["Freestanding"], exclude: ["linker.ld"]),
    .target(name: "GuestKit", dependencies: ["GuestSupport"], path: "Sources/Guests/GuestKit"),
    .executableTarget(name: "GuestHello", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestHello"),
    .executableTarget(name: "GuestTriple", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestTriple"),
    .executableTarget(name: "GuestBad", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestBad"),
    .executableTarget(name: "GuestSMP", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestSMP"),
    .executableTarget(name: "GuestSpin", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestSpin"),
    .executableTarget(name: "GuestBench", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestBench"),
    .executableTarget(name: "GuestMemop", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestMemop"),
    .executableTarget(name: "GuestTimer", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestTimer"),
    .executableTarget(name: "GuestPingPong", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestPingPong"),
    .executableTarget(name: "GuestIPI", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestIPI"),
    .executableTarget(name: "GuestFIFO", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestFIFO"),
    .executableTarget(name: "GuestFlood", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestFlood"),
    .executableTarget(name: "GuestConsole", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestConsole"),
    .executableTarget(name: "GuestFuzz", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestFuzz"),
    .executableTarget(name: "GuestXenstore", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestXenstore"),
    .executableTarget(name: "GuestGrant", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestGrant"),
    .executableTarget(name: "GuestHostileBlk", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestHostileBlk"),
    .executableTarget(name: "GuestXAPIC", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestXAPIC"),
    .executableTarget(name: "GuestMMIO", dependencies: ["GuestKit", "GuestSupport"], path: "Sources/Guests/GuestMMIO"),
  ]
)
