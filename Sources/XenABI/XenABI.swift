/// Guest-visible constants and layouts from Xen's public headers (xen/include/public).
/// This module is the single source of every guest-visible number in Swiftvisor.
public enum XenABI {}
