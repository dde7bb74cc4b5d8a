// Exception entry for the test guests: 32 stubs (vectors 0-31) that build one frame
// (struct gs_exception_frame in runtime.c) and call gs_exception, which reports
// "guest: exception N at RIP 0x..." on the console and shuts the guest down (crash), unless the
// guest said it expects that vector (gs_catch_exceptions): then it returns, and so does the stub.
// And the one interrupt entry a guest may install: the event upcall (gs_upcall_entry).
// Assembled only for the bare-metal triple; on the host this file is empty.
#if defined(__ELF__) && !defined(__linux__) && defined(__x86_64__)
#include "guest_defs.h"
#include "freestanding.h"

        .section .text.gs_traps, "ax", @progbits
        .code64
// Vectors for which the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30.
        .p2align 4
gs_exception_stubs:
        .set vector, 0
        .rept GS_EXCEPTION_VECTORS
        .p2align 4
.if (vector == 8) || (vector >= 10 && vector <= 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
.else
        pushq   $0
.endif
        pushq   $vector
        jmp     gs_exception_common
        .set vector, vector + 1
        .endr

// gs_exception returns only for an exception the guest expects (gs_catch_exceptions): then the
// registers it interrupted, the x87/SSE state included (the C code may use XMM registers), are
// restored and IRETQ goes back to the RIP in the frame, which gs_exception may have moved on.
gs_exception_common:
        FS_PUSH_GPRS
        mov     %rsp, %rdi
        mov     %rsp, %rbx              // callee-saved across the call: the frame to pop
        sub     $512, %rsp
        and     $-64, %rsp              // FXSAVE wants 16-byte alignment, the ABI 16 at a call
        fxsave64 (%rsp)
        cld
        xor     %ebp, %ebp
        call    gs_exception
        fxrstor64 (%rsp)
        mov     %rbx, %rsp
        FS_POP_GPRS
        add     $16, %rsp               // the vector and the error code
        iretq

// The event upcall (HVM_PARAM_CALLBACK_IRQ, a vector the guest picks; gs_install_upcall_vector
// puts this entry in the IDT). It interrupts arbitrary Swift code, so everything that code may
// hold is saved: the general registers and the x87/SSE state (Swift uses XMM registers, and all
// of them are caller-saved). The interrupt gate has cleared IF; IRETQ restores the interrupted
// RFLAGS. No EOI: Xen's callback vector does not come from the local APIC.
        .section .text.gs_upcall_entry, "ax", @progbits
        .code64
        .p2align 4
        .globl gs_upcall_entry
gs_upcall_entry:
        FS_PUSH_GPRS
        mov     %rsp, %rbx              // callee-saved across the call: the frame to pop
        sub     $512, %rsp
        and     $-64, %rsp              // FXSAVE wants 16-byte alignment, the ABI 16 at a call
        fxsave64 (%rsp)
        cld
        xor     %ebp, %ebp
        call    gs_upcall               // Swift: @c(gs_upcall) in GuestKit
        fxrstor64 (%rsp)
        mov     %rbx, %rsp
        FS_POP_GPRS
        iretq

// Local APIC interrupts (IPIs, the APIC timer: gs_install_lapic_vector puts this entry at each
// vector a guest uses). Saved and restored as the upcall; the Swift handler finds the vector in
// the in-service register and writes EOI itself (GuestKit's LocalAPIC).
        .section .text.gs_lapic_entry, "ax", @progbits
        .code64
        .p2align 4
        .globl gs_lapic_entry
gs_lapic_entry:
        FS_PUSH_GPRS
        mov     %rsp, %rbx
        sub     $512, %rsp
        and     $-64, %rsp
        fxsave64 (%rsp)
        cld
        xor     %ebp, %ebp
        call    gs_lapic_interrupt      // Swift: @c(gs_lapic_interrupt) in GuestKit
        fxrstor64 (%rsp)
        mov     %rbx, %rsp
        FS_POP_GPRS
        iretq

        // Addresses of the 32 stubs, for the IDT built in runtime.c.
        .section .rodata.gs_traps, "a", @progbits
        .p2align 3
        .globl gs_exception_stub_table
gs_exception_stub_table:
        .set vector, 0
        .rept GS_EXCEPTION_VECTORS
        .quad gs_exception_stubs + 16 * vector
        .set vector, vector + 1
        .endr
#endif

#if defined(__ELF__) && !defined(__linux__) && defined(__i386__)
// The 32-bit guests (i686): the same stubs and upcall entry in protected mode. PUSHAL saves the
// general registers (struct gs_exception_frame in runtime.c, i386 arm), the frame's address is
// gs_exception's stack argument, and IRET returns (same privilege: no ESP/SS in the frame).
#include "guest_defs.h"
#include "freestanding.h"

        .section .text.gs_traps, "ax", @progbits
        .code32
        .p2align 4
gs_exception_stubs:
        .set vector, 0
        .rept GS_EXCEPTION_VECTORS
        .p2align 4
.if (vector == 8) || (vector >= 10 && vector <= 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
.else
        pushl   $0
.endif
        pushl   $vector
        jmp     gs_exception_common
        .set vector, vector + 1
        .endr

gs_exception_common:
        pushal
        mov     %esp, %ebx              // callee-saved across the call: the frame
        sub     $512, %esp
        and     $-64, %esp              // FXSAVE wants 16-byte alignment, the ABI 16 at a call
        fxsave  (%esp)
        mov     %esp, %esi              // callee-saved: the FXSAVE area
        sub     $16, %esp
        mov     %ebx, (%esp)            // the argument: the frame
        cld
        xor     %ebp, %ebp
        call    gs_exception
        fxrstor (%esi)
        mov     %ebx, %esp
        popal
        add     $8, %esp                // the vector and the error code
        iret

        .section .text.gs_upcall_entry, "ax", @progbits
        .code32
        .p2align 4
        .globl gs_upcall_entry
gs_upcall_entry:
        pushal
        mov     %esp, %ebx
        sub     $512, %esp
        and     $-64, %esp
        fxsave  (%esp)
        cld
        xor     %ebp, %ebp
        call    gs_upcall               // Swift: @c(gs_upcall) in GuestKit
        fxrstor (%esp)
        mov     %ebx, %esp
        popal
        iret

        .section .rodata.gs_traps, "a", @progbits
        .p2align 2
        .globl gs_exception_stub_table
gs_exception_stub_table:
        .set vector, 0
        .rept GS_EXCEPTION_VECTORS
        .long gs_exception_stubs + 16 * vector
        .set vector, vector + 1
        .endr
#endif
