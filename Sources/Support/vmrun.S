// The VMRUN trampoline: the only code that runs between the hypervisor and a guest.
//
//   void hv_vmrun(uint64_t guest_vmcb, struct hv_guest_context *guest, uint64_t host_vmcb);
//
// The VMCB holds the guest's RAX, RSP, RIP, RFLAGS, segment and control registers; the other
// general registers and the x87/SSE state live in the vcpu's context page (hv_guest_context), and
// are swapped here. The host's callee-saved registers are pushed on this pcpu's stack, which the
// CPU keeps (VMRUN saves the host RSP in the host save area and restores it on #VMEXIT).
//
// Sequence: CLGI (no interrupt, not even an NMI, until STGI) → restore the guest FPU → VMLOAD the
// guest's hidden state (FS/GS/TR/LDTR bases, KernelGSBase, STAR/LSTAR/CSTAR/SFMASK, SYSENTER) →
// guest GPRs → VMRUN … #VMEXIT → VMSAVE the guest's hidden state → save guest GPRs → VMLOAD the
// host's hidden state (this pcpu's GS base says which pcpu it is) → save the guest FPU, load the
// hypervisor's clean FPU state (a guest must not leave us with unmasked SSE exceptions) → STGI.
//
// RFLAGS.IF is set between CLGI and VMRUN, and cleared again before STGI. With GIF clear no
// interrupt reaches the hypervisor here, but the host's IF at VMRUN is what decides whether a
// physical interrupt in guest mode causes an INTR #VMEXIT (V_INTR_MASKING: the guest's IF only
// masks virtual interrupts). With IF clear, a guest that never exits by itself would never be
// preempted: its timer interrupt would wait until it made a hypercall. The interrupts that made
// it exit are taken when the pcpu loop briefly enables interrupts after this returns.
#if defined(__ELF__) && !defined(__linux__)
#include "guest_context.h"

        .text
        .code64
        .globl hv_vmrun
hv_vmrun:
        push    %rbp
        push    %rbx
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        push    %rdx                            // 16(%rsp): host VMCB
        push    %rsi                            //  8(%rsp): guest context
        push    %rdi                            //  0(%rsp): guest VMCB
        clgi
        sti                                     // still masked by GIF; makes INTR exit the guest
        fxrstor GC_FPU(%rsi)
        mov     %rdi, %rax
        vmload  %rax
        mov     GC_RBX(%rsi), %rbx
        mov     GC_RCX(%rsi), %rcx
        mov     GC_RDX(%rsi), %rdx
        mov     GC_RBP(%rsi), %rbp
        mov     GC_RDI(%rsi), %rdi
        mov     GC_R8(%rsi), %r8
        mov     GC_R9(%rsi), %r9
        mov     GC_R10(%rsi), %r10
        mov     GC_R11(%rsi), %r11
        mov     GC_R12(%rsi), %r12
        mov     GC_R13(%rsi), %r13
        mov     GC_R14(%rsi), %r14
        mov     GC_R15(%rsi), %r15
        mov     GC_RSI(%rsi), %rsi
        vmrun   %rax
        cli                                     // GIF is still clear: nothing was taken
        vmsave  %rax
        push    %rsi                            // guest RSI; the context pointer is now 16(%rsp)
        mov     16(%rsp), %rsi
        mov     %rbx, GC_RBX(%rsi)
        mov     %rcx, GC_RCX(%rsi)
        mov     %rdx, GC_RDX(%rsi)
        mov     %rbp, GC_RBP(%rsi)
        mov     %rdi, GC_RDI(%rsi)
        mov     %r8, GC_R8(%rsi)
        mov     %r9, GC_R9(%rsi)
        mov     %r10, GC_R10(%rsi)
        mov     %r11, GC_R11(%rsi)
        mov     %r12, GC_R12(%rsi)
        mov     %r13, GC_R13(%rsi)
        mov     %r14, GC_R14(%rsi)
        mov     %r15, GC_R15(%rsi)
        pop     %rax
        mov     %rax, GC_RSI(%rsi)
        mov     16(%rsp), %rax                  // host VMCB
        vmload  %rax
        fxsave  GC_FPU(%rsi)
        fxrstor hv_host_fpu_state(%rip)
        stgi
        add     $24, %rsp
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbx
        pop     %rbp
        ret

// The hypervisor's own x87/SSE state: default control words (FCW 0x37F, MXCSR 0x1F80),
// captured once at boot by hv_capture_host_fpu_state.
        .globl hv_capture_host_fpu_state
hv_capture_host_fpu_state:
        fninit
        fxsave  hv_host_fpu_state(%rip)
        ret

        .bss
        .p2align 6
        .globl hv_host_fpu_state
hv_host_fpu_state:
        .skip 512
#endif
