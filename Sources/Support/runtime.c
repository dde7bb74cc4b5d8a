// The hypervisor's part of the runtime Embedded Swift links against (the shared part is the
// Freestanding target): putchar (print), the stack protector symbols, posix_memalign/free
// (forwarded to Swift), and the heap's static first arena.
// Compiled only for the bare-metal triple; on the host libc provides all of this.
#if defined(__ELF__) && !defined(__linux__)
#include "Support.h"

// Memory primitives, ceil, arc4random_buf and 128-bit division come from the Freestanding target.

// print() in Embedded Swift calls putchar. The hypervisor logs through its own console (which
// serialises pcpus); this path only serves stray print()s, straight to COM1.
int putchar(int c) {
  while ((hv_inb(0x3f8 + 5) & 0x20) == 0) {}
  hv_outb(0x3f8, (uint8_t)c);
  return c;
}

uintptr_t __stack_chk_guard = 0x595e9fbd94fda766ull;
__attribute__((noreturn)) void __stack_chk_fail(void) {
  const char *m = "*** SWIFTVISOR CRASH: stack smashing detected\n";
  while (*m) putchar(*m++);
  hv_outl(0xf4, 0x11);
  hv_halt_forever();
}

// Swift allocations: served by Hypervisor's Heap (Swiftvisor/HeapGlue.swift).
int hv_heap_allocate(void **result, size_t alignment, size_t size);
void hv_heap_free(void *pointer);
int posix_memalign(void **result, size_t alignment, size_t size) { return hv_heap_allocate(result, alignment, size); }
void free(void *pointer) { hv_heap_free(pointer); }

// The heap's first region: enough for boot-time parsing before the frame allocator exists.
#define EARLY_HEAP_SIZE (128u << 10)
static unsigned char early_heap[EARLY_HEAP_SIZE] __attribute__((aligned(4096)));
uint64_t hv_early_heap_start(void) { return (uint64_t)(uintptr_t)early_heap; }
uint64_t hv_early_heap_size(void) { return EARLY_HEAP_SIZE; }
#endif

#if defined(__ELF__) && !defined(__linux__)
// One slot per pcpu holding its own index; GS base points at the slot, so `mov %gs:0` answers
// "which pcpu am I" in one instruction (hv_this_cpu in Support.h).
uint64_t hv_pcpu_index_slots[HV_MAX_PCPUS];
#endif
