// Constants shared by GuestSupport's assembly and C. Plain #defines only.
#pragma once

#define GS_CR0_PE  (1 << 0)
#define GS_CR0_MP  (1 << 1)
#define GS_CR0_EM  (1 << 2)
#define GS_CR0_WP  (1 << 16)
#define GS_CR0_PG  (1 << 31)
#define GS_CR4_PAE (1 << 5)
#define GS_CR4_OSFXSR (1 << 9)
#define GS_CR4_OSXMMEXCPT (1 << 10)
#define GS_MSR_EFER 0xC0000080
#define GS_EFER_LME (1 << 8)
#define GS_EFER_NXE (1 << 11)
#define GS_PTE_P  0x1
#define GS_PTE_W  0x2
#define GS_PTE_PS 0x80

// Selectors of the guest's own GDT (boot.S): null, 64-bit code, data.
#define GS_GDT_CODE64 0x08
#define GS_GDT_DATA   0x10
#define GS_GDT_CODE64_DESCRIPTOR 0x00af9a000000ffff
#define GS_GDT_DATA_DESCRIPTOR   0x00cf92000000ffff

#define GS_BOOT_STACK_SIZE 65536
#define GS_MXCSR_DEFAULT 0x1f80

// Exception frame layout (see struct gs_exception_frame in GuestSupport.h).
#define GS_EXCEPTION_VECTORS 32
