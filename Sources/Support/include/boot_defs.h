// Constants shared by the assembly files and the C header. Plain #defines only.
#pragma once

#define BOOT_PROTOCOL_PVH        1
#define BOOT_PROTOCOL_MULTIBOOT2 2
#define MB2_HEADER_MAGIC     0xe85250d6
#define MB2_BOOTLOADER_MAGIC 0x36d76289

// Control-register, EFER and page-table bits: Freestanding/include/freestanding.h (FS_*).

// Segment selectors. The boot GDT, the AP trampoline's GDT and the per-pcpu GDTs built in
// Swift (X86/CPU/DescriptorTables.swift) all use these numbers.
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
