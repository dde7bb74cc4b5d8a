// What the hypervisor image and the test guests share as bare-metal x86-64 programs: the C
// runtime Embedded Swift links against (freestanding.c) and, for assembly, the steps from
// 32-bit protected mode to long mode. Both Support/boot.S and GuestSupport/boot.S use these.
#pragma once

#define FS_CR0_PE  (1 << 0)
#define FS_CR0_MP  (1 << 1)
#define FS_CR0_EM  (1 << 2)
#define FS_CR0_WP  (1 << 16)
#define FS_CR0_PG  (1 << 31)
#define FS_CR4_PAE (1 << 5)
#define FS_CR4_OSFXSR (1 << 9)
#define FS_CR4_OSXMMEXCPT (1 << 10)
#define FS_MSR_EFER 0xC0000080
#define FS_EFER_LME (1 << 8)
#define FS_EFER_NXE (1 << 11)
#define FS_PTE_P  0x1
#define FS_PTE_W  0x2
#define FS_PTE_PS 0x80

#ifdef __ASSEMBLER__
// 32-bit code. Identity-maps the first 4 GiB with 2 MiB pages: PML4[0] -> PDPT,
// PDPT[0..3] -> PD0..PD3, 2048 large pages. `pml4`, `pdpt` and `pd` (four pages) are six
// contiguous pages in NOLOAD memory, so they are cleared first (a boot loader need not have).
// Clobbers EAX, ECX, EDI.
.macro FS_IDENTITY_MAP_4GIB pml4, pdpt, pd
        mov     $\pml4, %edi
        mov     $((6 * 4096) / 4), %ecx
        xor     %eax, %eax
        rep stosl
        mov     $\pdpt, %eax
        or      $(FS_PTE_P | FS_PTE_W), %eax
        mov     %eax, \pml4
        xor     %ecx, %ecx
1:      mov     %ecx, %eax
        shl     $12, %eax
        add     $\pd, %eax
        or      $(FS_PTE_P | FS_PTE_W), %eax
        mov     %eax, \pdpt(,%ecx,8)
        inc     %ecx
        cmp     $4, %ecx
        jne     1b
        xor     %ecx, %ecx
2:      mov     %ecx, %eax
        shl     $21, %eax
        or      $(FS_PTE_P | FS_PTE_W | FS_PTE_PS), %eax
        mov     %eax, \pd(,%ecx,8)
        mov     %ecx, %eax
        shr     $11, %eax               // high dword of (ecx << 21)
        mov     %eax, \pd+4(,%ecx,8)
        inc     %ecx
        cmp     $2048, %ecx
        jne     2b
.endm

// 32-bit code. PAE and SSE on (Swift code uses SSE), CR3 = the page tables, EFER.LME|NXE, then
// paging: the CPU is in compatibility mode until the caller's far jump to a 64-bit code segment.
// `cr3` is any 32-bit source operand: `$boot_pml4`, or a memory word (the AP trampoline's).
// Clobbers EAX, ECX, EDX.
.macro FS_ENTER_LONG_MODE cr3
        mov     %cr4, %eax
        or      $(FS_CR4_PAE | FS_CR4_OSFXSR | FS_CR4_OSXMMEXCPT), %eax
        mov     %eax, %cr4
        mov     \cr3, %eax
        mov     %eax, %cr3
        mov     $FS_MSR_EFER, %ecx
        rdmsr
        or      $(FS_EFER_LME | FS_EFER_NXE), %eax
        wrmsr
        mov     %cr0, %eax
        and     $~(FS_CR0_EM), %eax
        or      $(FS_CR0_PE | FS_CR0_MP | FS_CR0_PG | FS_CR0_WP), %eax
        mov     %eax, %cr0
.endm

// The fifteen general registers, pushed and popped in the order of an interrupt frame (RAX
// first, so R15 ends at the lowest address), for the exception entries of both programs.
.macro FS_PUSH_GPRS
        push    %rax
        push    %rbx
        push    %rcx
        push    %rdx
        push    %rsi
        push    %rdi
        push    %rbp
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        push    %r12
        push    %r13
        push    %r14
        push    %r15
.endm
.macro FS_POP_GPRS
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rbp
        pop     %rdi
        pop     %rsi
        pop     %rdx
        pop     %rcx
        pop     %rbx
        pop     %rax
.endm
#endif
