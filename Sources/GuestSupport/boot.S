// First instructions of a PVH test guest, and the entry of its secondary vcpus.
//
//   gs_start32         XEN_ELFNOTE_PHYS32_ENTRY: a PVH loader (Swiftvisor's domain builder, or
//                      QEMU `-kernel`) enters here in 32-bit protected mode, paging off, flat
//                      CS/DS/SS, %ebx = guest-physical address of struct hvm_start_info.
//   guest_ap_start64   RIP for VCPUOP_initialise (VCPU_HVM_MODE_64B): a secondary vcpu starts
//                      here already in long mode, with CR3/RSP/RDI as the guest set them.
//
// gs_start32 identity-maps the first 4 GiB with 2 MiB pages (the guest's own page tables; the
// hypervisor walks them to translate hypercall buffers), enables SSE (Swift code uses it), enters
// long mode, clears .bss, sets up the runtime (Xen detection, the exception IDT) and calls `main`.
// Assembled only for the bare-metal triple; on the host this file is empty.
#if defined(__ELF__) && !defined(__linux__) && defined(__x86_64__)
#include "guest_defs.h"
#include "freestanding.h"

        // ---- XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h, type 18) ----
        .section .note.pvh, "a", @note
        .p2align 2
        .long 4                 // namesz ("Xen\0")
        .long 4                 // descsz
        .long 18                // XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long gs_start32

        .section .boot.text, "ax", @progbits
        .code32
        .globl gs_start32
gs_start32:
        cli
        cld
        movl    %ebx, gs_start_info_paddr       // high dword stays 0 (.data)
        lgdt    gs_gdt_ptr
        FS_IDENTITY_MAP_4GIB gs_pml4, gs_pdpt, gs_pd
        FS_ENTER_LONG_MODE $gs_pml4
        ljmp    $GS_GDT_CODE64, $gs_long_mode

        .code64
gs_long_mode:
        mov     $GS_GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        xor     %eax, %eax
        mov     %ax, %fs
        mov     %ax, %gs
        lea     gs_boot_stack_top(%rip), %rsp
        // Zero .bss (the loader should have; do not rely on it).
        lea     __bss_start(%rip), %rdi
        lea     __bss_end(%rip), %rcx
        sub     %rdi, %rcx
        xor     %eax, %eax
        rep stosb
        fninit
        ldmxcsr gs_mxcsr_default(%rip)
        xor     %ebp, %ebp
        call    gs_runtime_init          // Xen detection, exception IDT (runtime.c)
        xor     %edi, %edi               // argc = 0
        xor     %esi, %esi               // argv = NULL
        // `main` is Swift's @main entry (SwiftPM links with --defsym main=<Module>_main).
        call    main
        mov     %eax, %edi
        call    gs_main_returned         // does not return
3:      cli
        hlt
        jmp     3b

        // ---- Secondary vcpus (VCPUOP_initialise, VCPU_HVM_MODE_64B) ----
        // In its own section: linked in only by guests that take its address.
        .section .text.guest_ap_start64, "ax", @progbits
        .code64
        .globl guest_ap_start64
        .weak guest_secondary_main
guest_ap_start64:
        cli
        cld
        mov     %rdi, %rbx                      // vcpu id (callee-saved from here on)
        // The hypervisor set up long mode; give this vcpu the guest's own descriptor tables so
        // an exception is reported like on the boot vcpu, and reload the segments from them.
        lgdt    gs_gdt_ptr(%rip)
        lidt    gs_idt_descriptor(%rip)
        mov     $GS_GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        xor     %eax, %eax
        mov     %ax, %fs
        mov     %ax, %gs
        pushq   $GS_GDT_CODE64
        lea     4f(%rip), %rax
        push    %rax
        lretq
4:      and     $-16, %rsp
        fninit
        ldmxcsr gs_mxcsr_default(%rip)
        xor     %ebp, %ebp
        movabs  $guest_secondary_main, %rax
        test    %rax, %rax
        jz      5f
        mov     %rbx, %rdi
        call    *%rax
5:      mov     %rbx, %rdi
        call    gs_secondary_returned           // VCPUOP_down on itself; does not return
6:      cli
        hlt
        jmp     6b

        .section .data.gs_boot, "aw", @progbits
        .p2align 3
        .globl gs_start_info_paddr
gs_start_info_paddr:
        .quad 0
gs_mxcsr_default:
        .long GS_MXCSR_DEFAULT
        .p2align 3
gs_gdt:
        .quad 0
        .quad GS_GDT_CODE64_DESCRIPTOR          // 0x08
        .quad GS_GDT_DATA_DESCRIPTOR            // 0x10
gs_gdt_ptr:
        .word gs_gdt_ptr - gs_gdt - 1
        .quad gs_gdt                            // 32-bit lgdt reads the low 4 bytes

        .section .boot.bss, "aw", @nobits
        .p2align 12
        .globl gs_pml4
gs_pml4:    .skip 4096
gs_pdpt:    .skip 4096
gs_pd:      .skip 4096 * 4
gs_boot_stack_bottom:
        .skip GS_BOOT_STACK_SIZE
gs_boot_stack_top:
#endif

#if defined(__ELF__) && !defined(__linux__) && defined(__i386__)
// ---- The 32-bit guests (i686) ------------------------------------------------------------------
// They stay in 32-bit protected mode: their own flat GDT (code 0x08, data 0x10), SSE on, .bss
// cleared, then gs_runtime_init (runtime.c: Xen detection, the exception IDT, and the paging mode
// the command line asks for: the page tables are built and paging turned on there, in C, before
// main). Secondary vcpus start at guest_ap_start32 (VCPUOP_initialise, VCPU_HVM_MODE_32B).
#include "guest_defs.h"
#include "freestanding.h"

        .section .note.pvh, "a", @note
        .p2align 2
        .long 4                 // namesz ("Xen\0")
        .long 4                 // descsz
        .long 18                // XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long gs_start32

        .section .boot.text, "ax", @progbits
        .code32
        .globl gs_start32
gs_start32:
        cli
        cld
        movl    %ebx, gs_start_info_paddr       // high dword stays 0 (.data)
        lgdt    gs_gdt_ptr
        ljmp    $GS_GDT_CODE32, $1f
1:      mov     $GS_GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        xor     %eax, %eax
        mov     %ax, %fs
        mov     %ax, %gs
        mov     $gs_boot_stack_top, %esp
        // Zero .bss (the loader should have; do not rely on it).
        mov     $__bss_start, %edi
        mov     $__bss_end, %ecx
        sub     %edi, %ecx
        xor     %eax, %eax
        rep stosb
        // SSE on (Swift code for i686 uses it): CR4.OSFXSR|OSXMMEXCPT, CR0.MP, EM cleared.
        mov     %cr4, %eax
        or      $(FS_CR4_OSFXSR | FS_CR4_OSXMMEXCPT), %eax
        mov     %eax, %cr4
        mov     %cr0, %eax
        and     $~(FS_CR0_EM), %eax
        or      $(FS_CR0_MP), %eax
        mov     %eax, %cr0
        fninit
        ldmxcsr gs_mxcsr_default
        xor     %ebp, %ebp
        call    gs_runtime_init          // Xen detection, exception IDT, paging (runtime.c)
        sub     $8, %esp                 // keeps the stack 16-byte aligned at the call
        push    $0                       // argv = NULL
        push    $0                       // argc = 0
        call    main
        mov     %eax, (%esp)
        call    gs_main_returned         // does not return
3:      cli
        hlt
        jmp     3b

        // ---- Secondary vcpus (VCPUOP_initialise, VCPU_HVM_MODE_32B) ----
        // The hypervisor starts the vcpu with flat segments whose selectors are 0 (as Xen does),
        // the boot vcpu's CR0/CR3/CR4 (so paging is on in its mode), ESP = its stack and
        // EBX = its id. It loads the guest's own GDT, selectors and IDT (an interrupt frame must
        // carry a real CS), resets the FPU and calls guest_secondary_main(uint64_t vcpu_id).
        .section .text.guest_ap_start32, "ax", @progbits
        .code32
        .globl guest_ap_start32
        .weak guest_secondary_main
guest_ap_start32:
        cli
        cld
        lgdt    gs_gdt_ptr
        ljmp    $GS_GDT_CODE32, $4f
4:      mov     $GS_GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        xor     %eax, %eax
        mov     %ax, %fs
        mov     %ax, %gs
        lidt    gs_idt_descriptor
        and     $-16, %esp
        fninit
        ldmxcsr gs_mxcsr_default
        xor     %ebp, %ebp
        sub     $8, %esp
        push    $0                       // the id's high half
        push    %ebx                     // and its low half (EBX is callee-saved)
        mov     $guest_secondary_main, %eax
        test    %eax, %eax
        jz      5f
        call    *%eax
5:      call    gs_secondary_returned    // VCPUOP_down on itself; does not return
6:      cli
        hlt
        jmp     6b

        .section .data.gs_boot, "aw", @progbits
        .p2align 3
        .globl gs_start_info_paddr
gs_start_info_paddr:
        .quad 0
gs_mxcsr_default:
        .long GS_MXCSR_DEFAULT
        .p2align 3
gs_gdt:
        .quad 0
        .quad GS_GDT_CODE32_DESCRIPTOR          // 0x08
        .quad GS_GDT_DATA_DESCRIPTOR            // 0x10
gs_gdt_ptr:
        .word gs_gdt_ptr - gs_gdt - 1
        .long gs_gdt

        // The boot stack and the page tables gs_paging_init (runtime.c) fills: every entry it
        // uses is written there, so this NOLOAD memory need not be cleared.
        .section .boot.bss, "aw", @nobits
        .p2align 12
        .globl gs_paging_directory, gs_paging_pae_pdpt, gs_paging_pae_directories, gs_paging_tables
gs_paging_directory:            // legacy: 1024 PDEs (4 MiB pages, or one per page table)
        .skip 4096
gs_paging_pae_pdpt:             // PAE: 4 PDPTEs (32-byte aligned), the rest of the page unused
        .skip 4096
gs_paging_pae_directories:      // PAE: 4 directories of 512 2 MiB pages
        .skip 4096 * 4
gs_paging_tables:               // legacy 4 KiB pages: 1024 page tables, the whole 4 GiB
        .skip 4096 * 1024
gs_boot_stack_bottom:
        .skip GS_BOOT_STACK_SIZE
gs_boot_stack_top:
#endif
