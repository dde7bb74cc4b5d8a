// The part of the C runtime that the hypervisor image and the test guests need alike, because
// Embedded Swift's generated code calls it: memory and string primitives, ceil (Dictionary and
// Set capacity), arc4random_buf (hash seeds), and compiler-rt's 128-bit division (Swift's
// dividingFullWidth). Each program adds its own allocator, console and panic paths.
// Compiled only for the bare-metal triple; on the host libc provides all of this.
#if defined(__ELF__) && !defined(__linux__)
#include <stddef.h>
#include <stdint.h>
#include "freestanding.h"

// memset and memcpy move 64 bytes per loop iteration (the compiler makes those SSE moves;
// hv_vmrun saves a guest's SSE state, so the hypervisor may use them). Not `rep stosb`/`rep movsb`: under QEMU's TCG every iteration of
// a rep string instruction is one pass through a translated block, one byte at a time, so
// zeroing a 256 MiB domain took seconds; the word loop is over ten times faster there and as
// fast as memory on hardware. `no_builtin` keeps the compiler from turning the loops back into
// calls to memset and memcpy.
__attribute__((no_builtin("memset")))
void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  uint64_t v = 0x0101010101010101ull * (unsigned char)c;
  while (n > 0 && ((uintptr_t)p & 7) != 0) { *p++ = (unsigned char)c; n--; }
  uint64_t *w = (uint64_t *)p;
  for (; n >= 64; n -= 64, w += 8) {
    w[0] = v; w[1] = v; w[2] = v; w[3] = v; w[4] = v; w[5] = v; w[6] = v; w[7] = v;
  }
  for (; n >= 8; n -= 8) *w++ = v;
  p = (unsigned char *)w;
  while (n > 0) { *p++ = (unsigned char)c; n--; }
  return d;
}
// Words at any address (x86 allows it), which the compiler may not assume aligned.
typedef uint64_t __attribute__((aligned(1), may_alias)) fs_unaligned_u64;
typedef uint32_t __attribute__((aligned(1), may_alias)) fs_unaligned_u32;
typedef uint16_t __attribute__((aligned(1), may_alias)) fs_unaligned_u16;

// 64 bytes per iteration, then one 8-byte word per iteration, then at most a 4-, a 2- and a
// 1-byte move, all at any alignment (a name at any offset of a ring), where a byte loop takes
// five instructions a byte. The word loop stays scalar: vectorized, its set-up costs more
// than a short copy.
__attribute__((no_builtin("memcpy")))
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *dp = d;
  const unsigned char *sp = s;
  // Unrolled four times (256 bytes): a 4 KiB grant copy's loop overhead is then 48 instructions.
#pragma clang loop unroll_count(4)
  for (; n >= 64; n -= 64, dp += 64, sp += 64) {
    const fs_unaligned_u64 *sw = (const fs_unaligned_u64 *)sp;
    fs_unaligned_u64 *dw = (fs_unaligned_u64 *)dp;
    uint64_t a = sw[0], b = sw[1], c = sw[2], e = sw[3], f = sw[4], g = sw[5], h = sw[6], i = sw[7];
    dw[0] = a; dw[1] = b; dw[2] = c; dw[3] = e; dw[4] = f; dw[5] = g; dw[6] = h; dw[7] = i;
  }
#pragma clang loop vectorize(disable) unroll(disable)
  for (; n >= 8; n -= 8, dp += 8, sp += 8) *(fs_unaligned_u64 *)dp = *(const fs_unaligned_u64 *)sp;
  if (n & 4) { *(fs_unaligned_u32 *)dp = *(const fs_unaligned_u32 *)sp; dp += 4; sp += 4; }
  if (n & 2) { *(fs_unaligned_u16 *)dp = *(const fs_unaligned_u16 *)sp; dp += 2; sp += 2; }
  if (n & 1) *dp = *sp;
  return d;
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

double ceil(double x) {
  if (!(x == x) || x >= 0x1p52 || x <= -0x1p52) return x;   // NaN, or already integral
  double t = (double)(long long)x;
  return t < x ? t + 1.0 : t;
}

// Hash seeds for Set and Dictionary: xorshift seeded from the TSC. Not cryptographic, and need not be.
void arc4random_buf(void *buf, size_t n) {
  static uint64_t x;
  if (x == 0) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    x = (((uint64_t)hi << 32) | lo) | 1;
  }
  unsigned char *b = buf;
  for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; b[i] = (unsigned char)x; }
}

#if defined(__SIZEOF_INT128__)
// 128-bit unsigned division: shift and subtract. Slow, and only used off the fast paths.
static unsigned __int128 udivmod128(unsigned __int128 n, unsigned __int128 d, unsigned __int128 *rem) {
  if (d == 0) __builtin_trap();
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

#if defined(__i386__)
// The 32-bit test guests (i686): compiler-rt's 64-bit division, which i386 code calls for every
// 64-bit `/` and `%` (Swift's UInt64 and Int64 arithmetic, printing them in decimal). Shift and
// subtract, as above.
static uint64_t udivmod64(uint64_t n, uint64_t d, uint64_t *rem) {
  if (d == 0) __builtin_trap();
  uint64_t q = 0, r = 0;
  if (d >> 32 == 0 && n >> 32 == 0) {   // the common case: one 32-bit DIV
    q = (uint32_t)n / (uint32_t)d;
    r = (uint32_t)n % (uint32_t)d;
  } else {
    for (int i = 63; i >= 0; i--) {
      r = (r << 1) | ((n >> i) & 1);
      if (r >= d) { r -= d; q |= (uint64_t)1 << i; }
    }
  }
  if (rem) *rem = r;
  return q;
}
uint64_t __udivdi3(uint64_t n, uint64_t d) { return udivmod64(n, d, 0); }
uint64_t __umoddi3(uint64_t n, uint64_t d) { uint64_t r; udivmod64(n, d, &r); return r; }
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem) { return udivmod64(n, d, rem); }
static uint64_t magnitude64(int64_t v) { return v < 0 ? 0 - (uint64_t)v : (uint64_t)v; }
int64_t __divdi3(int64_t n, int64_t d) {
  uint64_t q = udivmod64(magnitude64(n), magnitude64(d), 0);
  return (int64_t)((n < 0) != (d < 0) ? 0 - q : q);
}
int64_t __moddi3(int64_t n, int64_t d) {
  uint64_t r; udivmod64(magnitude64(n), magnitude64(d), &r);
  return (int64_t)(n < 0 ? 0 - r : r);
}
// 64-bit shifts by a variable count, which size-optimized i386 code calls instead of inlining
// SHLD/SHRD. Written on 32-bit halves, so they cannot turn into calls to themselves.
typedef union { uint64_t all; struct { uint32_t low, high; } s; } gs_dword;
uint64_t __ashldi3(uint64_t a, int b) {
  gs_dword in = { .all = a }, out;
  if (b & 32) { out.s.low = 0; out.s.high = in.s.low << (b & 31); }
  else if ((b & 31) == 0) return a;
  else { out.s.low = in.s.low << b; out.s.high = (in.s.high << b) | (in.s.low >> (32 - b)); }
  return out.all;
}
uint64_t __lshrdi3(uint64_t a, int b) {
  gs_dword in = { .all = a }, out;
  if (b & 32) { out.s.high = 0; out.s.low = in.s.high >> (b & 31); }
  else if ((b & 31) == 0) return a;
  else { out.s.high = in.s.high >> b; out.s.low = (in.s.low >> b) | (in.s.high << (32 - b)); }
  return out.all;
}
int64_t __ashrdi3(int64_t a, int b) {
  gs_dword in = { .all = (uint64_t)a }, out;
  if (b & 32) { out.s.high = (uint32_t)((int32_t)in.s.high >> 31); out.s.low = (uint32_t)((int32_t)in.s.high >> (b & 31)); }
  else if ((b & 31) == 0) return a;
  else { out.s.high = (uint32_t)((int32_t)in.s.high >> b); out.s.low = (in.s.low >> b) | (in.s.high << (32 - b)); }
  return (int64_t)out.all;
}
#endif
#endif
