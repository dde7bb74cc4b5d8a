// Constants shared by the assembly files and the C header. Plain #defines only.
#pragma once

#define BOOT_PROTOCOL_PVH        1
#define BOOT_PROTOCOL_MULTIBOOT2 2
#define MB2_HEADER_MAGIC     0xe85250d6
#define MB2_BOOTLOADER_MAGIC 0x36d76289

#define CR0_PE  (1 << 0)
#define CR0_MP  (1 << 1)
#define CR0_EM  (1 << 2)
#define CR0_WP  (1 << 16)
#define CR0_PG  (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define PTE_P  0x1
#define PTE_W  0x2
#define PTE_PS 0x80

// Segment selectors. The boot GDT, the AP trampoline's GDT and the per-pcpu GDTs built in
// Swift (X86/GDT.swift) all use these numbers.
#define GDT_CODE64 0x08
#define GDT_DATA   0x10
#define GDT_CODE32 0x18
#define GDT_TSS    0x20
#define GDT_CODE64_DESCRIPTOR 0x00af9a000000ffff
#define GDT_DATA_DESCRIPTOR   0x00cf92000000ffff
#define GDT_CODE32_DESCRIPTOR 0x00cf9a000000ffff

#define BOOT_STACK_SIZE 65536

// The AP trampoline is copied to this page below 1 MiB; SIPI vector = address >> 12.
#define AP_TRAMPOLINE_BASE 0x8000
// Parameter block at the start of the trampoline (after a 2-byte jump, aligned to 8).
#define AP_PARAM_CR3    8
#define AP_PARAM_STACK  16
#define AP_PARAM_INDEX  24
#define AP_PARAM_ENTRY  32
