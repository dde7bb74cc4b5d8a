// First instructions of Swiftvisor: the two boot entry points, the switch from 32-bit protected
// mode to long mode, and the call into Swift's `main`.
//
//   QEMU `-kernel`     finds XEN_ELFNOTE_PHYS32_ENTRY in the PVH note and enters pvh_start32
//                      (paging off, %ebx = physical address of struct hvm_start_info).
//   GRUB multiboot2    finds the header below and enters mb2_start32
//                      (paging off, %eax = 0x36d76289, %ebx = physical address of the boot information).
//
// Both record what they were given and meet in enter_long_mode, which identity-maps the first
// 4 GiB with 2 MiB pages (enough for the image, low memory, the LAPIC and the HPET; the Swift side
// builds the final page tables later) and jumps to 64-bit code.
// Assembled only for the bare-metal triple; on the host this file is empty.
#if defined(__ELF__) && !defined(__linux__)
#include "boot_defs.h"
#include "freestanding.h"

        // ---- XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h, type 18) ----
        .section .note.pvh, "a", @note
        .p2align 2
        .long 4                 // namesz ("Xen\0")
        .long 4                 // descsz
        .long 18                // XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long pvh_start32

        // ---- multiboot2 header (the Multiboot2 specification, section 3.1) ----
        .section .multiboot2, "a"
        .p2align 3
mb2_header:
        .long MB2_HEADER_MAGIC
        .long 0                                 // architecture: i386 protected mode
        .long mb2_header_end - mb2_header
        .long -(MB2_HEADER_MAGIC + 0 + (mb2_header_end - mb2_header))
        // entry address tag: enter at mb2_start32 instead of the ELF entry
        .p2align 3
        .word 3, 0
        .long 12
        .long mb2_start32
        // end tag
        .p2align 3
        .word 0, 0
        .long 8
mb2_header_end:

        .section .boot.text, "ax", @progbits
        .code32
        .globl pvh_start32
pvh_start32:
        cli
        cld
        movl    $BOOT_PROTOCOL_PVH, hv_boot_protocol
        movl    %ebx, hv_boot_info
        jmp     enter_long_mode

        .globl mb2_start32
mb2_start32:
        cli
        cld
        movl    $BOOT_PROTOCOL_MULTIBOOT2, hv_boot_protocol
        movl    %eax, hv_boot_magic
        movl    %ebx, hv_boot_info

enter_long_mode:
        lgdt    boot_gdt_ptr
        FS_IDENTITY_MAP_4GIB boot_pml4, boot_pdpt, boot_pd
        FS_ENTER_LONG_MODE $boot_pml4
        ljmp    $GDT_CODE64, $long_mode

        .code64
long_mode:
        mov     $GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        xor     %eax, %eax
        mov     %ax, %fs
        mov     %ax, %gs
        lea     boot_stack_top(%rip), %rsp
        // Zero .bss: a PVH loader does, GRUB need not.
        lea     __bss_start(%rip), %rdi
        lea     __bss_end(%rip), %rcx
        sub     %rdi, %rcx
        xor     %eax, %eax
        rep stosb
        xor     %ebp, %ebp              // the backtrace walker stops at a zero frame pointer
        xor     %edi, %edi              // argc = 0
        xor     %esi, %esi              // argv = NULL
        // `main` is Swift's @main entry (SwiftPM links with --defsym main=Swiftvisor_main).
        call    main
3:      cli
        hlt
        jmp     3b

        .section .boot.data, "aw", @progbits
        .p2align 3
        .globl hv_boot_protocol, hv_boot_magic, hv_boot_info
hv_boot_protocol: .long 0
hv_boot_magic:    .long 0
hv_boot_info:     .quad 0

        .p2align 3
boot_gdt:
        .quad 0
        .quad GDT_CODE64_DESCRIPTOR     // 0x08
        .quad GDT_DATA_DESCRIPTOR       // 0x10
boot_gdt_ptr:
        .word boot_gdt_ptr - boot_gdt - 1
        .long boot_gdt

        .section .boot.bss, "aw", @nobits
        .p2align 12
        .globl boot_pml4
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
        .globl boot_stack_bottom, boot_stack_top
boot_stack_bottom:
        .skip BOOT_STACK_SIZE
boot_stack_top:
#endif
