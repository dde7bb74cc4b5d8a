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
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
  ],
  targets: [
    // Guest-visible ABI: layouts and constants from Xen's public headers.
    .target(name: "XenABI", swiftSettings: strict),
    // Arch-neutral core (Xen's common/): allocators, timers, command line, logging.
    .target(name: "Hypervisor", dependencies: ["XenABI"], swiftSettings: strict),
    // The only C and assembly: entry points, trampolines, CPU intrinsics, freestanding runtime.
    .target(name: "Support", exclude: ["linker.ld"]),
    // The x86 layer (Xen's arch/x86/): pure parsers are host-tested, hardware code is `#if os(none)`.
    .target(name: "X86", dependencies: ["Hypervisor", "XenABI", "Support"], swiftSettings: strict),
    // The image's @main.
    .executableTarget(name: "Swiftvisor", dependencies: ["X86", "Hypervisor", "Support"]),
    // Host side: QEMU runner, image build, bundle (library, so system tests share it) and the CLI.
    .target(name: "VisorKit"),
    .executableTarget(
      name: "visor",
      dependencies: ["VisorKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    .testTarget(name: "HypervisorTests", dependencies: ["Hypervisor"]),
    .testTarget(name: "X86Tests", dependencies: ["X86", "Hypervisor"]),
    .testTarget(name: "SystemTests", dependencies: ["VisorKit"]),
  ]
)
