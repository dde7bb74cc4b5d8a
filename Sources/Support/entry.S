// Interrupt and exception entry: 256 stubs that build one uniform frame (struct hv_interrupt_frame
// in Support.h) and call the Swift dispatcher hv_interrupt(frame).
//
// The CPU pushes SS, RSP, RFLAGS, CS, RIP and, for some exceptions, an error code. Each stub pushes
// a zero error code where the CPU did not, then the vector number; the common path pushes the
// fifteen general registers, saves the x87/SSE state (Swift code uses SSE registers freely, and an
// interrupt must not clobber the interrupted code's), calls Swift, and unwinds it all with iretq.
#if defined(__ELF__) && !defined(__linux__)
#include "boot_defs.h"
#include "freestanding.h"

        .text
        .code64

// Vectors for which the CPU pushes an error code: #DF 8, #TS 10, #NP 11, #SS 12, #GP 13, #PF 14,
// #AC 17, #CP 21, #VC 29, #SX 30. Every stub is at most 16 bytes and 16-byte aligned, so stub N
// is at hv_isr_stubs + 16 * N.
#define ISR_STUB_SIZE 16
        .globl hv_isr_stubs
        .p2align 4
hv_isr_stubs:
        .set vector, 0
        .rept 256
        .p2align 4
.if (vector == 8) || (vector >= 10 && vector <= 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
.else
        pushq   $0
.endif
        pushq   $vector
        jmp     isr_common
        .set vector, vector + 1
        .endr

isr_common:
        FS_PUSH_GPRS
        mov     %rsp, %rbx              // rbx = frame (callee-saved across the call)
        // 22 quadwords are on the stack and the CPU aligned RSP to 16 before its pushes,
        // so RSP is 16-byte aligned here; fxsave needs exactly that.
        sub     $512, %rsp
        fxsave  (%rsp)
        // A fake call frame (interrupted RIP, interrupted RBP) so that a backtrace taken in
        // Swift walks on through the interrupted code.
        pushq   17*8(%rbx)
        pushq   8*8(%rbx)
        mov     %rsp, %rbp
        mov     %rbx, %rdi
        call    hv_interrupt
        lea     -512(%rbx), %rsp
        fxrstor (%rsp)
        mov     %rbx, %rsp
        FS_POP_GPRS
        add     $16, %rsp               // vector and error code
        iretq

// Table of the 256 stub addresses, for building the IDT in Swift.
        .section .rodata
        .p2align 3
        .globl hv_isr_table
hv_isr_table:
        .set vector, 0
        .rept 256
        .quad hv_isr_stubs + ISR_STUB_SIZE * vector
        .set vector, vector + 1
        .endr

// void hv_load_segments(uint16_t tss_selector): after lgdt, reload CS with a far return,
// DS/ES/SS, and the task register.
        .text
        .globl hv_load_segments
hv_load_segments:
        mov     $GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        // FS and GS are left alone: loading them would clear GS base, which holds this pcpu's
        // identity (hv_this_cpu).
        ltr     %di
        pop     %rax                    // return address
        pushq   $GDT_CODE64
        push    %rax
        lretq

// ---------------------------------------------------------------------------------------------
// Application processor start-up. Copied to AP_TRAMPOLINE_BASE (below 1 MiB) and entered by the
// SIPI in 16-bit real mode at CS:IP = (AP_TRAMPOLINE_BASE >> 4):0. It switches to protected mode,
// then to long mode with the BSP's page tables, and calls the entry in the parameter block with
// the pcpu index in %rdi on the stack given there. Everything is addressed relative to the copy.
#define TRAMPOLINE_ADDR(label) (AP_TRAMPOLINE_BASE + (label - hv_ap_trampoline_start))

        .section .ap_trampoline, "a"
        .code16
        .globl hv_ap_trampoline_start, hv_ap_trampoline_end
hv_ap_trampoline_start:
        jmp     ap_real_mode
        .p2align 3
ap_param_cr3:   .quad 0         // AP_PARAM_CR3
ap_param_stack: .quad 0         // AP_PARAM_STACK
ap_param_index: .quad 0         // AP_PARAM_INDEX
ap_param_entry: .quad 0         // AP_PARAM_ENTRY
ap_real_mode:
        cli
        cld
        xor     %ax, %ax
        mov     %ax, %ds
        lgdtl   TRAMPOLINE_ADDR(ap_gdt_ptr)
        mov     %cr0, %eax
        and     $~0x60000000, %eax      // CD | NW: an AP leaves reset with its caches disabled
        or      $FS_CR0_PE, %eax
        mov     %eax, %cr0
        ljmpl   $GDT_CODE32, $TRAMPOLINE_ADDR(ap_protected_mode)

        .code32
ap_protected_mode:
        mov     $GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        FS_ENTER_LONG_MODE TRAMPOLINE_ADDR(ap_param_cr3)
        ljmp    $GDT_CODE64, $TRAMPOLINE_ADDR(ap_long_mode)

        .code64
ap_long_mode:
        mov     $GDT_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     TRAMPOLINE_ADDR(ap_param_stack), %rsp
        mov     TRAMPOLINE_ADDR(ap_param_index), %rdi
        mov     TRAMPOLINE_ADDR(ap_param_entry), %rax
        xor     %ebp, %ebp
        call    *%rax
1:      cli
        hlt
        jmp     1b

        .p2align 3
ap_gdt:
        .quad 0
        .quad GDT_CODE64_DESCRIPTOR
        .quad GDT_DATA_DESCRIPTOR
        .quad GDT_CODE32_DESCRIPTOR
ap_gdt_ptr:
        .word ap_gdt_ptr - ap_gdt - 1
        .long TRAMPOLINE_ADDR(ap_gdt)
hv_ap_trampoline_end:
#endif
