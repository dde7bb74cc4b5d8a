// The freestanding runtime Embedded Swift needs at link time: memory and string primitives,
// arc4random_buf (hash seeds), ceil (Dictionary/Set capacity), putchar (print), the stack
// protector symbols, posix_memalign/free (forwarded to Swift), and the heap's static first arena.
// Compiled only for the bare-metal triple; on the host libc provides all of this.
#if defined(__ELF__) && !defined(__linux__)
#include "Support.h"

void *memset(void *d, int c, size_t n) {
  void *r = d;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return r;
}
void *memcpy(void *d, const void *s, size_t n) {
  void *r = d;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return r;
}
void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dp = d; const unsigned char *sp = s;
  if (dp == sp || n == 0) return d;
  if (dp < sp || dp >= sp + n) return memcpy(d, s, n);
  while (n--) dp[n] = sp[n];
  return d;
}
int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return x[i] - y[i];
  return 0;
}
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

// Hash seeds for Set and Dictionary: mixed from the TSC. Not cryptographic, and need not be.
void arc4random_buf(void *buf, size_t n) {
  static uint64_t x;
  if (x == 0) x = hv_rdtsc() | 1;
  unsigned char *b = buf;
  for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; b[i] = (unsigned char)x; }
}

double ceil(double x) {
  if (!(x == x) || x >= 0x1p52 || x <= -0x1p52) return x;   // NaN, or already integral
  double t = (double)(long long)x;
  return t < x ? t + 1.0 : t;
}

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
#define EARLY_HEAP_SIZE (256u << 10)
static unsigned char early_heap[EARLY_HEAP_SIZE] __attribute__((aligned(4096)));
uint64_t hv_early_heap_start(void) { return (uint64_t)(uintptr_t)early_heap; }
uint64_t hv_early_heap_size(void) { return EARLY_HEAP_SIZE; }
#endif

#if defined(__ELF__) && !defined(__linux__)
// One slot per pcpu holding its own index; GS base points at the slot, so `mov %gs:0` answers
// "which pcpu am I" in one instruction (hv_this_cpu in Support.h).
uint64_t hv_pcpu_index_slots[HV_MAX_PCPUS];
#endif

#if defined(__ELF__) && !defined(__linux__)
// 128-bit unsigned division (compiler-rt's __udivti3/__umodti3), which Swift's
// dividingFullWidth lowers to. Shift-and-subtract: slow, but only used for time-scale set-up.
static unsigned __int128 udivmod128(unsigned __int128 n, unsigned __int128 d, unsigned __int128 *rem) {
  if (d == 0) { hv_outl(0xf4, 0x11); hv_halt_forever(); }
  unsigned __int128 q = 0, r = 0;
  for (int i = 127; i >= 0; i--) {
    r = (r << 1) | ((n >> i) & 1);
    if (r >= d) { r -= d; q |= (unsigned __int128)1 << i; }
  }
  if (rem) *rem = r;
  return q;
}
unsigned __int128 __udivti3(unsigned __int128 n, unsigned __int128 d) { return udivmod128(n, d, 0); }
unsigned __int128 __umodti3(unsigned __int128 n, unsigned __int128 d) {
  unsigned __int128 r; udivmod128(n, d, &r); return r;
}
#endif
