/// Guest-visible constants from Xen's public headers (xen/include/public): hypercall and
/// command numbers, flags, error numbers, and the offsets of the pages shared with a guest.
/// The structures a guest passes by pointer are declared once, in C, in XenPublic
/// (xen_public.h); together the two are the single source of every guest-visible number.
public enum XenABI {}
