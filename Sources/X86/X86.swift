/// The x86 architecture layer (Xen's arch/x86/).
public enum X86 {}
