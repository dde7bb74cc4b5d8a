// Exception entry for the test guests: 32 stubs (vectors 0-31) that build one frame
// (struct gs_exception_frame in runtime.c) and call gs_exception, which reports
// "guest: exception N at RIP 0x..." on the console and shuts the guest down (crash).
// Nothing returns: a test guest that takes an exception is finished.
// Assembled only for the bare-metal triple; on the host this file is empty.
#if defined(__ELF__) && !defined(__linux__)
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

gs_exception_common:
        FS_PUSH_GPRS
        mov     %rsp, %rdi
        and     $-16, %rsp
        xor     %ebp, %ebp
        call    gs_exception            // does not return
1:      cli
        hlt
        jmp     1b

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
