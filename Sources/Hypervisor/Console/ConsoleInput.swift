/// Where serial input goes: the hypervisor or one domain's console, switched as Xen does it
/// (Ctrl-A three times). A Ctrl-A that is not part of a group of three is passed on with the
/// byte after it, so a guest can still receive Ctrl-A (press it, then any other key).
public struct ConsoleInputSwitch: Sendable {
  public static let switchCode: UInt8 = 0x01           // Ctrl-A
  public static let pressesToSwitch = 3

  private var pendingSwitchCodes = 0

  public init() {}

  public enum Action: Equatable, Sendable {
    /// Move input to the next console.
    case switchFocus
    /// These bytes go to the focused console.
    case deliver([UInt8])
  }

  /// One received byte: nothing yet (a Ctrl-A that may be part of a switch), a switch, or
  /// bytes to deliver.
  public mutating func feed(_ byte: UInt8) -> Action? {
    if byte == Self.switchCode {
      pendingSwitchCodes += 1
      if pendingSwitchCodes == Self.pressesToSwitch {
        pendingSwitchCodes = 0
        return .switchFocus
      }
      return nil
    }
    var bytes = [UInt8](repeating: Self.switchCode, count: pendingSwitchCodes)
    pendingSwitchCodes = 0
    bytes.append(byte)
    return .deliver(bytes)
  }

  /// The next focus after `current` among `candidates` (domain ids, ascending; 0 is the
  /// hypervisor itself): the cycle goes hypervisor → each domain in turn → hypervisor.
  public static func next(after current: UInt16, among candidates: [UInt16]) -> UInt16 {
    candidates.first { $0 > current } ?? 0
  }
}
