// The part of the C runtime that the hypervisor image and the test guests need alike, because
// Embedded Swift's generated code calls it: memory and string primitives, ceil (Dictionary and
// Set capacity), arc4random_buf (hash seeds), and compiler-rt's 128-bit division (Swift's
// dividingFullWidth). Each program adds its own allocator, console and panic paths.
// Compiled only for the bare-metal triple; on the host libc provides all of this.
#if defined(__ELF__) && !defined(__linux__)
#include <stddef.h>
#include <stdint.h>
#include "freestanding.h"

// memset and memcpy move eight 64-bit words per loop iteration, with byte loops only for the
// unaligned head and the tail. Not `rep stosb`/`rep movsb`: under QEMU's TCG every iteration of
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
__attribute__((no_builtin("memcpy")))
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *dp = d;
  const unsigned char *sp = s;
  if ((((uintptr_t)dp ^ (uintptr_t)sp) & 7) == 0) {
    while (n > 0 && ((uintptr_t)dp & 7) != 0) { *dp++ = *sp++; n--; }
    uint64_t *dw = (uint64_t *)dp;
    const uint64_t *sw = (const uint64_t *)sp;
    for (; n >= 64; n -= 64, dw += 8, sw += 8) {
      uint64_t a = sw[0], b = sw[1], c = sw[2], e = sw[3], f = sw[4], g = sw[5], h = sw[6], i = sw[7];
      dw[0] = a; dw[1] = b; dw[2] = c; dw[3] = e; dw[4] = f; dw[5] = g; dw[6] = h; dw[7] = i;
    }
    for (; n >= 8; n -= 8) *dw++ = *sw++;
    dp = (unsigned char *)dw;
    sp = (const unsigned char *)sw;
  }
  while (n > 0) { *dp++ = *sp++; n--; }
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
