// Constants shared by GuestSupport's assembly and C. Plain #defines only.
#pragma once

// Control-register, EFER and page-table bits: Freestanding/include/freestanding.h (FS_*).

// Selectors of the guest's own GDT (boot.S): null, 64-bit code (32-bit code for i686), data.
#define GS_GDT_CODE64 0x08
#define GS_GDT_DATA   0x10
#define GS_GDT_CODE64_DESCRIPTOR 0x00af9a000000ffff
#define GS_GDT_DATA_DESCRIPTOR   0x00cf92000000ffff
// The 32-bit guests' flat 4 GiB code segment takes the same selector.
#define GS_GDT_CODE32 0x08
#define GS_GDT_CODE32_DESCRIPTOR 0x00cf9a000000ffff

#define GS_BOOT_STACK_SIZE 65536
#define GS_MXCSR_DEFAULT 0x1f80
#define GS_CR4_PSE (1 << 4)   // 4 MiB pages in legacy (non-PAE) paging

// Exception frame layout (see struct gs_exception_frame in GuestSupport.h).
#define GS_EXCEPTION_VECTORS 32
