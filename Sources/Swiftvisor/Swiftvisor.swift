/// The image's entry point. On bare metal boot.S calls `main` once it is in long mode; on the host
/// this target is a stub so that `swift build` and `swift test` work on the whole package.
@main
struct Swiftvisor {
  static func main() {
    #if os(none)
    Boot.bootstrapProcessor()
    #else
    print("swiftvisor is a bare-metal image: build and boot it with `swift run visor run`")
    #endif
  }
}
