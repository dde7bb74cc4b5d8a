// The freestanding runtime of the test guests: what Embedded Swift needs at link time beyond the
// Freestanding target (posix_memalign/free, putchar, the stack-protector symbols),
// plus the guest's console and shutdown paths, Xen detection and the exception IDT.
// Compiled only for the bare-metal triple; on the host libc provides all of this.
#if defined(__ELF__) && !defined(__linux__)
#define GS_RUNTIME_IMPL 1
#include "GuestSupport.h"
#include "freestanding.h"

// Memory primitives, ceil and arc4random_buf come from the Freestanding target.

// ---- Xen detection --------------------------------------------------------------------------------
// "XenVMMXenVMM" in EBX/ECX/EDX of the hypervisor leaf. Xen moves its leaves to 0x40000100 when it
// also offers Viridian (Hyper-V) leaves at 0x40000000, so both bases are checked.
uint32_t gs_xen_present;
uint32_t gs_xen_cpuid_base;

static void gs_detect_xen(void) {
  for (uint32_t base = 0x40000000; base <= 0x40000100; base += 0x100) {
    struct gs_cpuid_result r = gs_cpuid(base, 0);
    if (r.ebx == 0x566e6558 && r.ecx == 0x65584d4d && r.edx == 0x4d4d566e) {
      gs_xen_cpuid_base = base;
      gs_xen_present = 1;
      return;
    }
  }
}

// ---- Console and shutdown ---------------------------------------------------------------------------
void gs_console_write(const void *bytes, size_t count) {
  if (gs_xen_present) {
    hv_hypercall3(GS_HYPERVISOR_console_io, GS_CONSOLEIO_write, count, (unsigned long)(uintptr_t)bytes);
  } else {
    const unsigned char *b = bytes;
    for (size_t i = 0; i < count; i++) gs_outb(0xE9, b[i]);
  }
}

__attribute__((noreturn)) void gs_shutdown(uint32_t reason) {
  if (gs_xen_present) {
    struct gs_sched_shutdown arg = { reason };
    hv_hypercall2(GS_HYPERVISOR_sched_op, GS_SCHEDOP_shutdown, (unsigned long)(uintptr_t)&arg);
  } else {
    uint32_t code = reason == GS_SHUTDOWN_poweroff ? 0x10 : reason == GS_SHUTDOWN_crash ? 0x11 : 0x12;
    gs_outl(0xf4, code);
  }
  for (;;) __asm__ volatile("cli; hlt" : : : "memory");
}

// print() in Embedded Swift calls putchar: the same console (one byte per write: slow under a
// hypervisor; guests use Console.print, which writes a whole line at once).
int putchar(int c) {
  unsigned char b = (unsigned char)c;
  gs_console_write(&b, 1);
  return c;
}

// Small formatting helpers for the messages below (no printf here).
static size_t gs_put_str(char *out, size_t at, const char *s) {
  while (*s) out[at++] = *s++;
  return at;
}
static size_t gs_put_dec(char *out, size_t at, uint64_t v) {
  char tmp[20]; int n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) out[at++] = tmp[--n];
  return at;
}
static size_t gs_put_hex(char *out, size_t at, uint64_t v) {
  out[at++] = '0'; out[at++] = 'x';
  int started = 0;
  for (int shift = 60; shift >= 0; shift -= 4) {
    unsigned d = (unsigned)(v >> shift) & 0xf;
    if (d || started || shift == 0) { out[at++] = "0123456789abcdef"[d]; started = 1; }
  }
  return at;
}

// main() returned instead of shutting down: say so and power off.
__attribute__((noreturn)) void gs_main_returned(int status) {
  char line[64]; size_t n = gs_put_str(line, 0, "guest: main returned ");
  n = gs_put_dec(line, n, (uint64_t)(uint32_t)status);
  line[n++] = '\n';
  gs_console_write(line, n);
  gs_shutdown(status == 0 ? GS_SHUTDOWN_poweroff : GS_SHUTDOWN_crash);
}

// guest_secondary_main returned (or the guest has none): take this vcpu down, else block forever.
__attribute__((noreturn)) void gs_secondary_returned(uint64_t vcpu_id) {
  if (gs_xen_present) {
    hv_hypercall3(GS_HYPERVISOR_vcpu_op, GS_VCPUOP_down, vcpu_id, 0);
    for (;;) hv_hypercall2(GS_HYPERVISOR_sched_op, GS_SCHEDOP_block, 0);
  }
  for (;;) __asm__ volatile("cli; hlt" : : : "memory");
}

// ---- Exceptions ------------------------------------------------------------------------------------
#if defined(__x86_64__)
struct gs_exception_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;   // pushed by the CPU
};

struct gs_idt_gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type;          // 0x8E: present, DPL 0, 64-bit interrupt gate
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};
_Static_assert(sizeof(struct gs_idt_gate) == 16, "IDT gate");
#define GS_CODE_SELECTOR GS_GDT_CODE64
#else
// i386 (traps.S): PUSHAL's order, then the stub's vector and error code, then what the CPU
// pushed (same privilege level: EIP, CS, EFLAGS). Named like the 64-bit frame's fields.
struct gs_exception_frame {
  uint32_t rdi, rsi, rbp, esp_at_pushal, rbx, rdx, rcx, rax;
  uint32_t vector, error_code;
  uint32_t rip, cs, rflags;
};

struct gs_idt_gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t zero;
  uint8_t type;          // 0x8E: present, DPL 0, 32-bit interrupt gate
  uint16_t offset_high;
};
_Static_assert(sizeof(struct gs_idt_gate) == 8, "IDT gate");
#define GS_CODE_SELECTOR GS_GDT_CODE32
#endif

extern const unsigned long gs_exception_stub_table[GS_EXCEPTION_VECTORS];
// Room for all 256 vectors, but the limit covers only the 32 exceptions until a guest installs
// its event upcall vector (gs_install_upcall_vector); the gates from 32 up stay not present
// except that one.
static struct gs_idt_gate gs_idt[256] __attribute__((aligned(16)));
// Read by guest_ap_start64 too, so secondary vcpus report exceptions the same way.
struct gs_descriptor_pointer gs_idt_descriptor;

static struct gs_idt_gate gs_interrupt_gate(unsigned long a) {
#if defined(__x86_64__)
  return (struct gs_idt_gate){
    .offset_low = (uint16_t)a, .selector = GS_CODE_SELECTOR, .ist = 0, .type = 0x8E,
    .offset_mid = (uint16_t)(a >> 16), .offset_high = (uint32_t)(a >> 32), .reserved = 0,
  };
#else
  return (struct gs_idt_gate){
    .offset_low = (uint16_t)a, .selector = GS_CODE_SELECTOR, .zero = 0, .type = 0x8E,
    .offset_high = (uint16_t)(a >> 16),
  };
#endif
}

static void gs_install_idt(void) {
  for (int v = 0; v < GS_EXCEPTION_VECTORS; v++) gs_idt[v] = gs_interrupt_gate(gs_exception_stub_table[v]);
  gs_idt_descriptor.limit = GS_EXCEPTION_VECTORS * sizeof(struct gs_idt_gate) - 1;
  gs_idt_descriptor.base = (unsigned long)gs_idt;
  __asm__ volatile("lidt %0" : : "m"(gs_idt_descriptor) : "memory");
}

// An interrupt gate (IF cleared on entry: the upcall handler runs with interrupts off, as
// Linux's does) for the event upcall at `vector`.
void gs_install_upcall_vector(uint8_t vector) {
  if (vector < GS_EXCEPTION_VECTORS) return;
  gs_idt[vector] = gs_interrupt_gate((unsigned long)&gs_upcall_entry);
  gs_idt_descriptor.limit = sizeof(gs_idt) - 1;
  __asm__ volatile("lidt %0" : : "m"(gs_idt_descriptor) : "memory");
}

// An interrupt gate for a local APIC vector (gs_lapic_entry; GuestSupport.h).
void gs_install_lapic_vector(uint8_t vector) {
  if (vector < GS_EXCEPTION_VECTORS) return;
  gs_idt[vector] = gs_interrupt_gate((uint64_t)(uintptr_t)&gs_lapic_entry);
  gs_idt_descriptor.limit = sizeof(gs_idt) - 1;
  __asm__ volatile("lidt %0" : : "m"(gs_idt_descriptor) : "memory");
}

static uint64_t gs_exception_depth;

// The exceptions a guest expects (gs_catch_exceptions, GuestSupport.h).
static uint32_t gs_catch_vectors;
static uint64_t gs_catch_skip;
static struct gs_caught_exception gs_caught;

void gs_catch_exceptions(uint32_t vectors, uint64_t skip) {
  gs_caught = (struct gs_caught_exception){ 0 };
  gs_catch_skip = skip;
  __atomic_store_n(&gs_catch_vectors, vectors, __ATOMIC_SEQ_CST);
}

struct gs_caught_exception gs_caught_exception(void) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return gs_caught;
}

// A caught exception: recorded, and the stub returns to the interrupted code (IRETQ).
static void gs_exception_caught(struct gs_exception_frame *f) {
  gs_caught.count++;
  gs_caught.vector = f->vector;
  gs_caught.error_code = f->error_code;
  gs_caught.rip = f->rip;
  gs_caught.rflags = f->rflags;
  if (f->vector == 1) gs_caught.dr6 = gs_read_dr6();
  if (f->vector != 1 && f->vector != 3) f->rip += gs_catch_skip;   // #DB and #BP trap: RIP is past it
  f->rflags &= ~0x100u;                 // TF: one single-step trap, not one per instruction
}

// "guest: exception N at RIP 0x... error 0x... [cr2 0x...]", then shutdown with reason crash.
// A Swift runtime trap (failed precondition, overflow, force-unwrap) is a ud2: exception 6.
// Returns only for an exception the guest said it expects (gs_catch_exceptions).
void gs_exception(struct gs_exception_frame *f) {
  if (f->vector < 32 && (__atomic_load_n(&gs_catch_vectors, __ATOMIC_SEQ_CST) >> f->vector & 1)) {
    gs_exception_caught(f);
    return;
  }
  uint64_t depth = __atomic_add_fetch(&gs_exception_depth, 1, __ATOMIC_SEQ_CST);
  if (depth == 1) {
    char line[128]; size_t n = gs_put_str(line, 0, "guest: exception ");
    n = gs_put_dec(line, n, f->vector);
    n = gs_put_str(line, n, " at RIP ");
    n = gs_put_hex(line, n, f->rip);
    n = gs_put_str(line, n, " error ");
    n = gs_put_hex(line, n, f->error_code);
    if (f->vector == 14) {
      unsigned long cr2; __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
      n = gs_put_str(line, n, " cr2 ");
      n = gs_put_hex(line, n, cr2);
    }
    if (f->vector == 6) n = gs_put_str(line, n, " (invalid opcode: a Swift runtime trap?)");
    line[n++] = '\n';
    gs_console_write(line, n);
  }
  if (depth <= 2) gs_shutdown(GS_SHUTDOWN_crash);
  for (;;) __asm__ volatile("cli; hlt" : : : "memory");
}

#if defined(__i386__)
static void gs_paging_init(void);
#endif

// Called by boot.S (in long mode; i686: in protected mode) after .bss is cleared, before main.
void gs_runtime_init(void) {
  gs_detect_xen();
  gs_install_idt();
#if defined(__i386__)
  gs_paging_init();
#endif
}

// ---- Heap: a bump allocator over a static 4 MiB arena (sorting 100k samples takes a 400 KiB buffer) ---------------------------------------------
// The guests are short-lived and allocate little (mostly String interpolation for console lines),
// so free() does not reclaim. Lock-free (CAS), since vcpus of one guest may allocate concurrently.
#define GS_HEAP_SIZE (4u << 20)
static unsigned char gs_heap[GS_HEAP_SIZE] __attribute__((aligned(4096), section(".bss.gs_heap")));
static uint64_t gs_heap_next;   // offset of the first free byte

size_t gs_heap_used(void) { return (size_t)__atomic_load_n(&gs_heap_next, __ATOMIC_RELAXED); }

static int gs_bump_alloc(void **result, size_t alignment, size_t size) {
  if (alignment < 16) alignment = 16;
  if (alignment & (alignment - 1)) return 22;   // EINVAL
  uint64_t base = (uint64_t)(uintptr_t)gs_heap;
  uint64_t cur = __atomic_load_n(&gs_heap_next, __ATOMIC_RELAXED);
  for (;;) {
    uint64_t p = (base + cur + alignment - 1) & ~(uint64_t)(alignment - 1);
    uint64_t next = p - base + size;
    if (size > GS_HEAP_SIZE || next > GS_HEAP_SIZE) {
      static const char msg[] = "guest: out of memory (4 MiB bump heap)\n";
      gs_console_write(msg, sizeof(msg) - 1);
      gs_shutdown(GS_SHUTDOWN_crash);
    }
    if (__atomic_compare_exchange_n(&gs_heap_next, &cur, next, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
      *result = (void *)(uintptr_t)p;
      return 0;
    }
  }
}
void *malloc(size_t n);
int posix_memalign(void **result, size_t alignment, size_t size);
void *aligned_alloc(size_t a, size_t n) { void *p; return posix_memalign(&p, a, n) ? 0 : p; }

// Up to 16-byte alignment from the small blocks (what Swift's allocations ask for), larger
// alignments straight from the bump heap.
int posix_memalign(void **result, size_t alignment, size_t size) {
  if (alignment <= 16) {
    void *p = malloc(size);
    if (!p) return 12;   // ENOMEM
    *result = p;
    return 0;
  }
  return gs_bump_alloc(result, alignment, size);
}

// Small blocks (malloc, up to 4 KiB) come back: a guest that runs long (guest-fuzz builds
// arrays on every call) would otherwise use up the bump heap. Each block has a 16-byte header
// (a tag and its size class) and goes onto its class's free list when freed; one spin lock
// guards the lists. Blocks from posix_memalign directly (page-aligned tables, buffers) have no
// header and are never reclaimed.
#define GS_BLOCK_TAG 0x5a5ab10cf4eeb10cull
#define GS_BLOCK_CLASSES 9                  // 16 << class bytes: 16 ... 4096
struct gs_block_header { uint64_t tag, size_class; };
static void *gs_free_blocks[GS_BLOCK_CLASSES];
static uint32_t gs_block_lock;

static void gs_block_lock_take(void) {
  while (__atomic_exchange_n(&gs_block_lock, 1, __ATOMIC_ACQUIRE)) __asm__ volatile("pause");
}
static void gs_block_lock_drop(void) { __atomic_store_n(&gs_block_lock, 0, __ATOMIC_RELEASE); }

void *malloc(size_t n) {
  unsigned c = 0;
  while (c < GS_BLOCK_CLASSES && ((size_t)16 << c) < n) c++;
  if (c == GS_BLOCK_CLASSES) { void *p; return gs_bump_alloc(&p, 16, n) ? 0 : p; }
  gs_block_lock_take();
  void *block = gs_free_blocks[c];
  if (block) gs_free_blocks[c] = *(void **)block;
  gs_block_lock_drop();
  if (!block) {
    void *raw;
    if (gs_bump_alloc(&raw, 16, sizeof(struct gs_block_header) + ((size_t)16 << c))) return 0;
    ((struct gs_block_header *)raw)->tag = GS_BLOCK_TAG;
    ((struct gs_block_header *)raw)->size_class = c;
    block = (struct gs_block_header *)raw + 1;
  }
  return block;
}

void free(void *p) {
  if (!p) return;
  struct gs_block_header *h = (struct gs_block_header *)p - 1;
  if (h->tag != GS_BLOCK_TAG || h->size_class >= GS_BLOCK_CLASSES) return;
  gs_block_lock_take();
  *(void **)p = gs_free_blocks[h->size_class];
  gs_free_blocks[h->size_class] = p;
  gs_block_lock_drop();
}

#if defined(__x86_64__)
// ---- The top page of the address space (GuestSupport.h) -------------------------------------------
// The boot page tables map only the first 4 GiB (PML4[0]); PML4[511] is free. Each table comes
// from the heap (zeroed: the heap is in .bss) and is reached through its identity address.
static uint64_t *gs_top_page_table;                                  // the PT of the last mapping

void gs_map_top_page(uint64_t page) {
  uint64_t *tables[3];
  for (int i = 0; i < 3; i++) {
    void *p = 0;
    posix_memalign(&p, 4096, 4096);
    tables[i] = p;
    for (int j = 0; j < 512; j++) tables[i][j] = 0;
  }
  uint64_t *pml4 = (uint64_t *)(uintptr_t)gs_boot_pml4();
  tables[2][511] = (page & ~0xFFFull) | 3;                            // PT: present, writable
  tables[1][511] = (uint64_t)(uintptr_t)tables[2] | 3;               // PD
  tables[0][511] = (uint64_t)(uintptr_t)tables[1] | 3;               // PDPT
  __atomic_store_n(&pml4[511], (uint64_t)(uintptr_t)tables[0] | 3, __ATOMIC_SEQ_CST);
  gs_top_page_table = tables[2];
  gs_invlpg(GS_TOP_PAGE);
}

void gs_remap_top_page(uint64_t page) {
  if (!gs_top_page_table) return;
  __atomic_store_n(&gs_top_page_table[511], page ? ((page & ~0xFFFull) | 3) : 0, __ATOMIC_SEQ_CST);
  gs_invlpg(GS_TOP_PAGE);
}

static uint64_t *gs_next_table(uint64_t *table, unsigned index) {
  if (!(table[index] & 1)) {
    void *p = 0;
    posix_memalign(&p, 4096, 4096);
    uint64_t *fresh = p;
    for (int j = 0; j < 512; j++) fresh[j] = 0;
    __atomic_store_n(&table[index], (uint64_t)(uintptr_t)fresh | 3, __ATOMIC_SEQ_CST);
  }
  return (uint64_t *)(uintptr_t)(table[index] & 0x000FFFFFFFFFF000ull);
}

void gs_map_page(uint64_t va, uint64_t page) {
  unsigned pml4i = (va >> 39) & 511, pdpti = (va >> 30) & 511, pdi = (va >> 21) & 511, pti = (va >> 12) & 511;
  if (pml4i == 0) return;   // the boot tables' identity map, with large pages: not ours to split
  uint64_t *pml4 = (uint64_t *)(uintptr_t)gs_boot_pml4();
  uint64_t *pt = gs_next_table(gs_next_table(gs_next_table(pml4, pml4i), pdpti), pdi);
  __atomic_store_n(&pt[pti], page ? ((page & ~0xFFFull) | 3) : 0, __ATOMIC_SEQ_CST);
  if (pml4i == 511 && pdpti == 511 && pdi == 511) gs_top_page_table = pt;
  gs_invlpg(va);
}
#endif

#if defined(__i386__)
// ---- Paging of the 32-bit guests (GuestSupport.h: GS_PAGING_*) -----------------------------------
// `paging=off|pae|4m|4k` on the command line (default off). Each mode identity-maps the whole
// 4 GiB, so every address the Swift code uses (RAM, the shared_info page in the MMIO hole, pages
// populated above RAM) is reachable, and the hypervisor translates hypercall buffers by walking
// these tables from CR3 as the CPU does. The tables are in boot.S's NOLOAD area; every entry
// the mode uses is written here.
extern uint64_t gs_paging_pae_pdpt[4], gs_paging_pae_directories[4 * 512];
extern uint32_t gs_paging_directory[1024], gs_paging_tables[1024 * 1024];
static uint32_t gs_paging;

uint32_t gs_paging_mode(void) { return gs_paging; }

// The value of `paging=` on the command line (the last one wins), read with paging still off.
static uint32_t gs_paging_requested(void) {
  const struct gs_hvm_start_info *info = (const struct gs_hvm_start_info *)(uintptr_t)gs_start_info_paddr;
  if (!info || info->magic != GS_HVM_START_MAGIC || !info->cmdline_paddr || info->cmdline_paddr >> 32) return GS_PAGING_OFF;
  const char *c = (const char *)(uintptr_t)info->cmdline_paddr;
  uint32_t mode = GS_PAGING_OFF;
  for (size_t i = 0; i < 4096 && c[i]; i++) {
    if (i > 0 && c[i - 1] != ' ') continue;
    static const char key[] = "paging=";
    size_t k = 0;
    while (key[k] && c[i + k] == key[k]) k++;
    if (key[k]) continue;
    const char *v = c + i + k;
    size_t n = 0;
    while (n < 8 && v[n] && v[n] != ' ') n++;
    if (n == 3 && v[0] == 'p' && v[1] == 'a' && v[2] == 'e') mode = GS_PAGING_PAE;
    else if (n == 2 && v[0] == '4' && v[1] == 'm') mode = GS_PAGING_4MIB;
    else if (n == 2 && v[0] == '4' && v[1] == 'k') mode = GS_PAGING_4KIB;
    else mode = GS_PAGING_OFF;
  }
  return mode;
}

static void gs_paging_init(void) {
  uint32_t mode = gs_paging_requested();
  uint32_t cr3, cr4_bits = 0;
  switch (mode) {
  case GS_PAGING_PAE:
    // PDPTEs have only P (bits 1-2 are reserved in PAE mode); the directories map 2 MiB pages.
    for (uint32_t d = 0; d < 4; d++) gs_paging_pae_pdpt[d] = (uint64_t)(uintptr_t)&gs_paging_pae_directories[d * 512] | FS_PTE_P;
    for (uint64_t e = 0; e < 4 * 512; e++) gs_paging_pae_directories[e] = (e << 21) | FS_PTE_P | FS_PTE_W | FS_PTE_PS;
    cr3 = (uint32_t)(uintptr_t)gs_paging_pae_pdpt;
    cr4_bits = FS_CR4_PAE;
    break;
  case GS_PAGING_4MIB:
    for (uint32_t e = 0; e < 1024; e++) gs_paging_directory[e] = (e << 22) | FS_PTE_P | FS_PTE_W | FS_PTE_PS;
    cr3 = (uint32_t)(uintptr_t)gs_paging_directory;
    cr4_bits = GS_CR4_PSE;
    break;
  case GS_PAGING_4KIB:
    for (uint32_t e = 0; e < 1024 * 1024; e++) gs_paging_tables[e] = (e << 12) | FS_PTE_P | FS_PTE_W;
    for (uint32_t e = 0; e < 1024; e++) gs_paging_directory[e] = (uint32_t)(uintptr_t)&gs_paging_tables[e * 1024] | FS_PTE_P | FS_PTE_W;
    cr3 = (uint32_t)(uintptr_t)gs_paging_directory;
    break;
  default:
    return;
  }
  unsigned long cr4, cr0;
  __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
  __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | cr4_bits) : "memory");
  __asm__ volatile("mov %0, %%cr3" : : "r"((unsigned long)cr3) : "memory");
  __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
  __asm__ volatile("mov %0, %%cr0" : : "r"(cr0 | FS_CR0_PG | FS_CR0_WP) : "memory");
  gs_paging = mode;
}
#endif

// ---- Static areas (each in its own section: linked in only when referenced) -----------------------
unsigned char gs_scratch_area[GS_SCRATCH_SIZE] __attribute__((aligned(4096), section(".bss.gs_scratch")));
unsigned char gs_secondary_stacks[GS_MAX_SECONDARY_VCPUS][GS_SECONDARY_STACK_SIZE]
    __attribute__((aligned(4096), section(".bss.gs_secondary_stacks")));
unsigned char gs_shared_info_page[4096] __attribute__((aligned(4096), section(".bss.gs_shared_info_page")));

// ---- The rest of what Embedded Swift links against -------------------------------------------------
uintptr_t __stack_chk_guard = (uintptr_t)0x595e9fbd94fda766ull;
__attribute__((noreturn)) void __stack_chk_fail(void) {
  static const char msg[] = "guest: stack smashing detected\n";
  gs_console_write(msg, sizeof(msg) - 1);
  gs_shutdown(GS_SHUTDOWN_crash);
}
#endif
