// The part of the C runtime that the hypervisor image and the test guests need alike, because
// Embedded Swift's generated code calls it: memory and string primitives, ceil (Dictionary and
// Set capacity), arc4random_buf (hash seeds), and compiler-rt's 128-bit division (Swift's
// dividingFullWidth). Each program adds its own allocator, console and panic paths.
// Compiled only for the bare-metal triple; on the host libc provides all of this.
#if defined(__ELF__) && !defined(__linux__)
#include <stddef.h>
#include <stdint.h>
#include "freestanding.h"

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
