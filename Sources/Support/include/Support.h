// The C side of Swiftvisor's Support layer: CPU instructions Swift cannot express, the layout of
// the interrupt frame built by entry.S, and the symbols the linker script and boot.S define.
// Everything here is a thin, named wrapper; the logic lives in Swift.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include "boot_defs.h"

// Every wrapper below is one or a few instructions and must become them at the Swift call site.
// `static inline` alone does not do it: the freestanding build marks these functions
// "no-builtins", and LLVM will not inline such a function into Swift code without that mark
// unless it is always_inline, so each was a call (a VMCB field read, an RDTSC) on every exit.
// The bulk copies and fills below stay plain calls: inlined, building a 64 MiB domain took
// half as long again (under -icount).
#define HV_INLINE static inline __attribute__((always_inline))

// ---- What boot.S recorded at entry -------------------------------------------------------------
extern const uint32_t hv_boot_protocol;   // BOOT_PROTOCOL_PVH or BOOT_PROTOCOL_MULTIBOOT2
extern const uint32_t hv_boot_magic;      // %eax at a multiboot2 entry
extern const uint64_t hv_boot_info;       // %ebx at entry: hvm_start_info or multiboot2 info
HV_INLINE uint32_t hv_boot_protocol_get(void) { return *(volatile const uint32_t *)&hv_boot_protocol; }
HV_INLINE uint32_t hv_boot_magic_get(void) { return *(volatile const uint32_t *)&hv_boot_magic; }
HV_INLINE uint64_t hv_boot_info_get(void) { return *(volatile const uint64_t *)&hv_boot_info; }

// ---- Linker-script and assembly symbols (Swift cannot import `extern char x[]`) ----------------
extern char __image_start[], __image_end[], boot_pml4[], boot_stack_bottom[], boot_stack_top[];
extern char hv_ap_trampoline_start[], hv_ap_trampoline_end[];
extern const uint64_t hv_isr_table[256];
HV_INLINE uint64_t hv_image_start(void) { return (uint64_t)(uintptr_t)__image_start; }
HV_INLINE uint64_t hv_image_end(void) { return (uint64_t)(uintptr_t)__image_end; }
HV_INLINE uint64_t hv_boot_pml4(void) { return (uint64_t)(uintptr_t)boot_pml4; }
HV_INLINE uint64_t hv_boot_stack_bottom(void) { return (uint64_t)(uintptr_t)boot_stack_bottom; }
HV_INLINE uint64_t hv_boot_stack_top(void) { return (uint64_t)(uintptr_t)boot_stack_top; }
HV_INLINE uint64_t hv_ap_trampoline_address(void) { return (uint64_t)(uintptr_t)hv_ap_trampoline_start; }
HV_INLINE uint64_t hv_ap_trampoline_size(void) {
  return (uint64_t)(hv_ap_trampoline_end - hv_ap_trampoline_start);
}
HV_INLINE uint64_t hv_isr_stub(unsigned vector) { return hv_isr_table[vector & 0xff]; }

// ---- The frame entry.S builds for every interrupt and exception ---------------------------------
struct hv_interrupt_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;   // pushed by the CPU
};

// Reloads CS (far return), the data segments and the task register after lgdt (entry.S).
void hv_load_segments(uint16_t tss_selector);

// ---- Port I/O -----------------------------------------------------------------------------------
HV_INLINE void hv_outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
HV_INLINE void hv_outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
HV_INLINE void hv_outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
HV_INLINE uint8_t hv_inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }
HV_INLINE uint16_t hv_inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }
HV_INLINE uint32_t hv_inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }

// ---- MMIO (uncached device registers; the addresses are identity mapped) --------------------------
HV_INLINE uint32_t hv_mmio_read32(uint64_t addr) { return *(volatile uint32_t *)(uintptr_t)addr; }
HV_INLINE void hv_mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }
HV_INLINE uint64_t hv_mmio_read64(uint64_t addr) { return *(volatile uint64_t *)(uintptr_t)addr; }
HV_INLINE void hv_mmio_write64(uint64_t addr, uint64_t v) { *(volatile uint64_t *)(uintptr_t)addr = v; }

// ---- Model-specific registers, CPUID, TSC -------------------------------------------------------
HV_INLINE uint64_t hv_rdmsr(uint32_t msr) {
  uint32_t lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((uint64_t)hi << 32) | lo;
}
HV_INLINE void hv_wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
struct hv_cpuid_result { uint32_t eax, ebx, ecx, edx; };
HV_INLINE struct hv_cpuid_result hv_cpuid(uint32_t leaf, uint32_t subleaf) {
  struct hv_cpuid_result r;
  __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
  return r;
}
HV_INLINE uint64_t hv_rdtsc(void) {
  uint32_t lo, hi; __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory"); return ((uint64_t)hi << 32) | lo;
}

// ---- Control registers, descriptor tables, interrupts ---------------------------------------------
HV_INLINE uint64_t hv_read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_cr2(void) { uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
HV_INLINE void hv_write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
// The debug address registers DR0-DR3 (DR6 and DR7 are in the VMCB): a vcpu's own, switched
// with it by the run loop.
HV_INLINE uint64_t hv_read_dr0(void) { uint64_t v; __asm__ volatile("mov %%db0, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_dr1(void) { uint64_t v; __asm__ volatile("mov %%db1, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_dr2(void) { uint64_t v; __asm__ volatile("mov %%db2, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_dr3(void) { uint64_t v; __asm__ volatile("mov %%db3, %0" : "=r"(v)); return v; }
HV_INLINE void hv_write_dr0(uint64_t v) { __asm__ volatile("mov %0, %%db0" : : "r"(v)); }
HV_INLINE void hv_write_dr1(uint64_t v) { __asm__ volatile("mov %0, %%db1" : : "r"(v)); }
HV_INLINE void hv_write_dr2(uint64_t v) { __asm__ volatile("mov %0, %%db2" : : "r"(v)); }
HV_INLINE void hv_write_dr3(uint64_t v) { __asm__ volatile("mov %0, %%db3" : : "r"(v)); }
HV_INLINE void hv_write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
HV_INLINE uint64_t hv_read_rbp(void) { uint64_t v; __asm__ volatile("mov %%rbp, %0" : "=r"(v)); return v; }
HV_INLINE uint64_t hv_read_rsp(void) { uint64_t v; __asm__ volatile("mov %%rsp, %0" : "=r"(v)); return v; }

struct __attribute__((packed)) hv_descriptor_pointer { uint16_t limit; uint64_t base; };
HV_INLINE void hv_lgdt(uint64_t base, uint16_t limit) {
  struct hv_descriptor_pointer p = { limit, base }; __asm__ volatile("lgdt %0" : : "m"(p) : "memory");
}
HV_INLINE void hv_lidt(uint64_t base, uint16_t limit) {
  struct hv_descriptor_pointer p = { limit, base }; __asm__ volatile("lidt %0" : : "m"(p) : "memory");
}
HV_INLINE void hv_cli(void) { __asm__ volatile("cli" : : : "memory"); }
HV_INLINE void hv_sti(void) { __asm__ volatile("sti" : : : "memory"); }
// Enable interrupts and halt atomically (STI's one-instruction shadow covers HLT), so a wake-up
// interrupt that arrives between the check and the halt is not lost.
HV_INLINE void hv_sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
HV_INLINE void hv_hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
HV_INLINE void hv_pause(void) { __asm__ volatile("pause" : : : "memory"); }
HV_INLINE void hv_ud2(void) { __asm__ volatile("ud2"); }
HV_INLINE uint64_t hv_read_rflags(void) { uint64_t v; __asm__ volatile("pushfq; pop %0" : "=r"(v)); return v; }
HV_INLINE void hv_invlpg(uint64_t va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }
HV_INLINE __attribute__((noreturn)) void hv_halt_forever(void) { for (;;) __asm__ volatile("cli; hlt"); }

// A divide instruction the compiler cannot fold away (used by the crash self-test).
HV_INLINE uint64_t hv_divide(uint64_t a, uint64_t b) {
  uint64_t q; __asm__ volatile("xor %%edx, %%edx; divq %2" : "=a"(q) : "a"(a), "r"(b) : "rdx"); return q;
}
// A load the compiler cannot drop (used by the crash self-test).
HV_INLINE uint64_t hv_load64(uint64_t addr) { return *(volatile uint64_t *)(uintptr_t)addr; }

// ---- Physical memory, identity mapped (the unsafe layer uses these) ---------------------------------
static inline void hv_copy_from_physical(void *dst, uint64_t src, size_t n) {
  __builtin_memcpy(dst, (const void *)(uintptr_t)src, n);
}
static inline void hv_copy_to_physical(uint64_t dst, const void *src, size_t n) {
  __builtin_memcpy((void *)(uintptr_t)dst, src, n);
}
static inline void hv_zero_physical(uint64_t dst, size_t n) { __builtin_memset((void *)(uintptr_t)dst, 0, n); }
HV_INLINE void hv_write_physical64(uint64_t addr, uint64_t v) { *(volatile uint64_t *)(uintptr_t)addr = v; }
HV_INLINE uint64_t hv_read_physical64(uint64_t addr) { return *(volatile uint64_t *)(uintptr_t)addr; }
// Any alignment (a header in a byte ring): one 8-byte move each way.
HV_INLINE uint64_t hv_read_physical_unaligned64(uint64_t addr) {
  uint64_t v; __builtin_memcpy(&v, (const void *)(uintptr_t)addr, 8); return v;
}
HV_INLINE void hv_write_physical_unaligned64(uint64_t addr, uint64_t v) {
  __builtin_memcpy((void *)(uintptr_t)addr, &v, 8);
}
HV_INLINE uint32_t hv_read_physical32(uint64_t addr) { return *(volatile uint32_t *)(uintptr_t)addr; }
HV_INLINE void hv_write_physical32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }
HV_INLINE uint16_t hv_read_physical16(uint64_t addr) { return *(volatile uint16_t *)(uintptr_t)addr; }
HV_INLINE void hv_write_physical16(uint64_t addr, uint16_t v) { *(volatile uint16_t *)(uintptr_t)addr = v; }
HV_INLINE uint8_t hv_read_physical8(uint64_t addr) { return *(volatile uint8_t *)(uintptr_t)addr; }
HV_INLINE void hv_write_physical8(uint64_t addr, uint8_t v) { *(volatile uint8_t *)(uintptr_t)addr = v; }
static inline void hv_fill_physical(uint64_t dst, uint8_t byte, size_t n) { __builtin_memset((void *)(uintptr_t)dst, byte, n); }

// ---- Which pcpu is running this code -----------------------------------------------------------
#define HV_MAX_PCPUS 64
#define MSR_GS_BASE 0xC0000101
extern uint64_t hv_pcpu_index_slots[HV_MAX_PCPUS];
HV_INLINE void hv_set_this_cpu(uint32_t index) {
  hv_pcpu_index_slots[index] = index;
  hv_wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)&hv_pcpu_index_slots[index]);
}
HV_INLINE uint32_t hv_this_cpu(void) {
  uint64_t v; __asm__ volatile("mov %%gs:0, %0" : "=r"(v)); return (uint32_t)v;
}

// ---- SVM ------------------------------------------------------------------------------------------
#include "guest_context.h"
// Enter the guest described by `guest_vmcb` and the context page at `guest_context` (physical ==
// virtual); returns at #VMEXIT with the guest state saved (vmrun.S).
void hv_vmrun(uint64_t guest_vmcb, uint64_t guest_context, uint64_t host_vmcb);
void hv_capture_host_fpu_state(void);
extern char hv_host_fpu_state[];
HV_INLINE uint64_t hv_host_fpu_state_address(void) { return (uint64_t)(uintptr_t)hv_host_fpu_state; }
HV_INLINE void hv_vmsave(uint64_t vmcb) { __asm__ volatile("vmsave %%rax" : : "a"(vmcb) : "memory"); }
HV_INLINE void hv_stgi(void) { __asm__ volatile("stgi" : : : "memory"); }
HV_INLINE void hv_clgi(void) { __asm__ volatile("clgi" : : : "memory"); }
// Take host interrupts that became pending while a guest ran (RFLAGS.IF is otherwise clear).
HV_INLINE void hv_interrupt_window(void) { __asm__ volatile("sti; nop; cli" : : : "memory"); }
HV_INLINE uint64_t hv_read_efer(void) { return hv_rdmsr(0xC0000080); }

// ---- The early heap arena (runtime.c): Swift allocations before the frame allocator exists -------
uint64_t hv_early_heap_start(void);
uint64_t hv_early_heap_size(void);
