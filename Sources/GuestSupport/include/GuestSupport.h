// GuestSupport: the C side of Swiftvisor's PVH test guests.
//
// Each test guest is one static ELF (Embedded Swift, no libc) that a PVH loader enters in 32-bit
// protected mode (boot.S). This header gives the Swift code what it cannot express itself:
// Xen's hypercall instruction (`vmmcall`, AMD SVM), port I/O, CPUID/RDTSC/MSRs/control
// registers, the boot information boot.S recorded, and the public Xen structures the guests pass
// to hypercalls (layouts from xen/include/public/, checked with _Static_assert below).
//
// The guests build for x86-64 and for i686 (the 32-bit guests, docs/test-guests.md). Xen's
// xen_ulong_t, xen_pfn_t and guest handles are `unsigned long` here, as in Xen's headers: 8 bytes
// on x86-64, 4 on i386; and uint64_t is 4-byte aligned inside i386 structures. So one declaration
// gives each guest the layout its hypervisor expects (the native one, or Xen's compat layout for
// a 32-bit guest).
#pragma once
#include <stdint.h>
#include <stddef.h>
#include "guest_defs.h"

// i386 aligns uint64_t to 4 only, and clang calls libatomic (which the guests do not have) for a
// 64-bit atomic it cannot prove aligned; through this type it inlines CMPXCHG8B or an SSE move.
typedef uint64_t gs_aligned_u64 __attribute__((aligned(8)));

// ---- Xen public ABI: hypercall numbers and sub-operations (xen/include/public/xen.h etc.) ------
#define GS_HYPERVISOR_memory_op   12
#define GS_HYPERVISOR_xen_version 17
#define GS_HYPERVISOR_console_io  18
#define GS_HYPERVISOR_vcpu_op     24
#define GS_HYPERVISOR_sched_op    29

#define GS_HYPERVISOR_set_timer_op       15
#define GS_HYPERVISOR_event_channel_op   32
#define GS_HYPERVISOR_hvm_op             34

#define GS_CONSOLEIO_write 0
#define GS_SCHEDOP_yield    0
#define GS_SCHEDOP_block    1
#define GS_SCHEDOP_shutdown 2
#define GS_SHUTDOWN_poweroff 0
#define GS_SHUTDOWN_reboot   1
#define GS_SHUTDOWN_suspend  2
#define GS_SHUTDOWN_crash    3
#define GS_VCPUOP_initialise 0
#define GS_VCPUOP_up         1
#define GS_VCPUOP_down       2

// hvm/start_info.h: what %ebx points at on a PVH entry.
#define GS_HVM_START_MAGIC 0x336ec578
struct gs_hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;   // NUL-terminated, 0 if none
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;    // version >= 1
  uint32_t memmap_entries;  // version >= 1
  uint32_t reserved;
};
struct gs_hvm_memmap_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;            // 1 = RAM (E820 numbering)
  uint32_t reserved;
};
struct gs_hvm_modlist_entry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};

// sched.h: SCHEDOP_shutdown's argument.
struct gs_sched_shutdown { uint32_t reason; };

// version.h: XENVER_get_features' argument.
struct gs_xen_feature_info { uint32_t submap_idx; uint32_t submap; };

// memory.h: XENMEM_increase/decrease_reservation and XENMEM_populate_physmap take a
// xen_memory_reservation; XENMEM_current/maximum_reservation a domid_t (the answer in pages).
#define GS_XENMEM_decrease_reservation 1
#define GS_XENMEM_current_reservation  3
#define GS_XENMEM_maximum_reservation  4
#define GS_XENMEM_populate_physmap 6
#define GS_DOMID_SELF 0x7FF0
// xen_pfn_t: a guest frame number as the reservation arrays hold them.
typedef unsigned long gs_xen_pfn_t;
struct gs_xen_memory_reservation {
  unsigned long extent_start;   // XEN_GUEST_HANDLE(xen_pfn_t): guest virtual address of the array
  unsigned long nr_extents;     // xen_ulong_t
  uint32_t extent_order;
  uint32_t mem_flags;
  uint16_t domid;
};

// hvm/hvm_vcpu.h: VCPUOP_initialise's argument for HVM/PVH vcpus.
#define GS_VCPU_HVM_MODE_32B 0
#define GS_VCPU_HVM_MODE_64B 1
// XENMEM_add_to_physmap (memory.h) and the time a vcpu reads from shared_info (xen.h).
#define GS_XENMEM_add_to_physmap 7
#define GS_XENMAPSPACE_shared_info 0
// idx is a xen_ulong_t, gpfn a xen_pfn_t.
struct gs_xen_add_to_physmap { uint16_t domid; uint16_t size; uint32_t space; unsigned long idx; unsigned long gpfn; };
// grant_table.h: HYPERVISOR_grant_table_op (20) and the version 1 entry.
#define GS_XENMAPSPACE_grant_table 1
#define GS_GNTTABOP_map_grant_ref 0
#define GS_GNTTABOP_unmap_grant_ref 1
#define GS_GNTTABOP_copy 5
#define GS_GTF_permit_access 1
#define GS_GTF_readonly (1 << 2)
#define GS_GTF_reading (1 << 3)
#define GS_GTF_writing (1 << 4)
#define GS_GNTMAP_host_map (1 << 1)
#define GS_GNTMAP_readonly (1 << 2)
#define GS_GNTCOPY_source_gref (1 << 0)
#define GS_GNTCOPY_dest_gref (1 << 1)
struct gs_grant_entry_v1 { uint16_t flags; uint16_t domid; uint32_t frame; };
struct gs_gnttab_map_grant_ref {
  uint64_t host_addr; uint32_t flags; uint32_t ref; uint16_t dom; int16_t status; uint32_t handle; uint64_t dev_bus_addr;
};
struct gs_gnttab_unmap_grant_ref { uint64_t host_addr; uint64_t dev_bus_addr; uint32_t handle; int16_t status; };
struct gs_gnttab_copy_ptr { unsigned long ref_or_gmfn; uint16_t domid; uint16_t offset; };   // union { grant_ref_t; xen_pfn_t }
struct gs_gnttab_copy {
  struct gs_gnttab_copy_ptr source, dest; uint16_t len; uint16_t flags; int16_t status;
};
struct gs_vcpu_time_info {
  uint32_t version; uint32_t pad0; uint64_t tsc_timestamp; uint64_t system_time;
  uint32_t tsc_to_system_mul; int8_t tsc_shift; uint8_t flags; uint8_t pad1[2];
};
// Reads the vcpu_time_info at `address` with the version protocol; 0 if it never read a stable
// copy. gs_read_time_info: vcpu `vcpu`'s, in the shared_info page at `page`.
static inline int gs_read_time_info_at(uint64_t address, struct gs_vcpu_time_info *out);
static inline int gs_read_time_info(uint64_t page, unsigned vcpu, struct gs_vcpu_time_info *out) {
  return gs_read_time_info_at(page + vcpu * 64 + 32, out);
}
static inline int gs_read_time_info_at(uint64_t address, struct gs_vcpu_time_info *out) {
  volatile struct gs_vcpu_time_info *info = (volatile struct gs_vcpu_time_info *)(uintptr_t)address;
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t v = info->version;
    __asm__ volatile("" : : : "memory");
    out->tsc_timestamp = info->tsc_timestamp; out->system_time = info->system_time;
    out->tsc_to_system_mul = info->tsc_to_system_mul; out->tsc_shift = info->tsc_shift; out->flags = info->flags;
    __asm__ volatile("" : : : "memory");
    if ((v & 1) == 0 && v == info->version) { out->version = v; return 1; }
  }
  return 0;
}
// The pvclock formula: ns = ((delta << shift) * mul) >> 32.
// The 64x32-bit product in two halves (exact, and no 128-bit type, which i386 lacks).
static inline uint64_t gs_pvclock_ns(const struct gs_vcpu_time_info *t, uint64_t tsc) {
  uint64_t delta = tsc - t->tsc_timestamp;
  if (t->tsc_shift >= 0) delta <<= t->tsc_shift; else delta >>= -t->tsc_shift;
  uint64_t mul = t->tsc_to_system_mul;
  uint64_t low = (delta & 0xffffffffu) * mul, high = (delta >> 32) * mul;
  return t->system_time + high + (low >> 32);
}

struct gs_vcpu_hvm_x86_32 {
  uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi, eip, eflags;
  uint32_t cr0, cr3, cr4;
  uint32_t pad1;
  uint64_t efer;
  uint32_t cs_base, ds_base, ss_base, es_base, tr_base;
  uint32_t cs_limit, ds_limit, ss_limit, es_limit, tr_limit;
  uint16_t cs_ar, ds_ar, ss_ar, es_ar, tr_ar;
  uint16_t pad2[3];
};
struct gs_vcpu_hvm_x86_64 {
  uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, rip, rflags;
  uint64_t cr0, cr3, cr4, efer;
};
struct gs_vcpu_hvm_context {
  uint32_t mode;
  uint32_t pad;
  union {
    struct gs_vcpu_hvm_x86_32 x86_32;
    struct gs_vcpu_hvm_x86_64 x86_64;
  } cpu_regs;
};

// ---- Event channels, the callback vector, timers and per-vcpu areas ---------------------------
// event_channel.h: EVTCHNOP_* (the first argument of event_channel_op) and their structures.
#define GS_EVTCHNOP_bind_interdomain 0
#define GS_EVTCHNOP_bind_virq        1
#define GS_EVTCHNOP_close            3
#define GS_EVTCHNOP_send             4
#define GS_EVTCHNOP_status           5
#define GS_EVTCHNOP_alloc_unbound    6
#define GS_EVTCHNOP_bind_ipi         7
#define GS_EVTCHNOP_bind_vcpu        8
#define GS_EVTCHNOP_unmask           9
// xen.h: per-vcpu virtual IRQs.
#define GS_VIRQ_TIMER 0
#define GS_VIRQ_DEBUG 1
// The 2-level ABI: as many words as a xen_ulong_t has bits (64 words of 64 bits on x86-64,
// 32 of 32 for a 32-bit guest).
#if defined(__i386__)
#define GS_EVTCHN_2L_PORTS 1024
#else
#define GS_EVTCHN_2L_PORTS 4096
#endif
struct gs_evtchn_alloc_unbound { uint16_t dom; uint16_t remote_dom; uint32_t port; };
struct gs_evtchn_bind_interdomain { uint16_t remote_dom; uint32_t remote_port; uint32_t local_port; };
struct gs_evtchn_bind_virq { uint32_t virq; uint32_t vcpu; uint32_t port; };
struct gs_evtchn_bind_ipi { uint32_t vcpu; uint32_t port; };
struct gs_evtchn_port { uint32_t port; };   // evtchn_close, evtchn_send, evtchn_unmask
struct gs_evtchn_bind_vcpu { uint32_t port; uint32_t vcpu; };
// EVTCHNOP_reset and the FIFO ABI: a 32-bit event word per port in the event array pages, a
// control block per vcpu (READY bits, one queue HEAD per priority).
#define GS_EVTCHNOP_reset            10
#define GS_EVTCHNOP_init_control     11
#define GS_EVTCHNOP_expand_array     12
#define GS_EVTCHNOP_set_priority     13
struct gs_evtchn_reset { uint16_t dom; };
struct gs_evtchn_init_control { uint64_t control_gfn; uint32_t offset; uint32_t vcpu; uint8_t link_bits; uint8_t _pad[7]; };
struct gs_evtchn_expand_array { uint64_t array_gfn; };
struct gs_evtchn_set_priority { uint32_t port; uint32_t priority; };
#define GS_EVTCHN_FIFO_PENDING   31
#define GS_EVTCHN_FIFO_MASKED    30
#define GS_EVTCHN_FIFO_LINKED    29
#define GS_EVTCHN_FIFO_BUSY      28
#define GS_EVTCHN_FIFO_LINK_MASK 0x1FFFF   // (1 << EVTCHN_FIFO_LINK_BITS) - 1
#define GS_EVTCHN_FIFO_CONTROL_HEAD 8     // offsetof(evtchn_fifo_control_block, head)
#define GS_EVTCHNSTAT_closed      0
#define GS_EVTCHNSTAT_unbound     1
#define GS_EVTCHNSTAT_interdomain 2
#define GS_EVTCHNSTAT_pirq        3
#define GS_EVTCHNSTAT_virq        4
#define GS_EVTCHNSTAT_ipi         5
struct gs_evtchn_status {
  uint16_t dom;             // in
  uint32_t port;            // in
  uint32_t status;          // out: GS_EVTCHNSTAT_*
  uint32_t vcpu;            // out: the vcpu the port notifies
  union {
    struct { uint16_t dom; } unbound;
    struct { uint16_t dom; uint32_t port; } interdomain;
    uint32_t pirq;
    uint32_t virq;
  } u;
};

// hvm/hvm_op.h and hvm/params.h: HVMOP_set_param(HVM_PARAM_CALLBACK_IRQ) with delivery type 2
// (a vector, bits 7:0) in bits 63:56 is how a PVH guest asks for its event upcall.
#define GS_HVMOP_set_param 0
#define GS_HVM_PARAM_CALLBACK_IRQ 0
#define GS_HVM_CALLBACK_TYPE_VECTOR 2ull
struct gs_xen_hvm_param { uint16_t domid; uint16_t pad; uint32_t index; uint64_t value; };

// vcpu.h: timers and the areas a vcpu registers.
#define GS_VCPUOP_get_runstate_info            4
#define GS_VCPUOP_register_runstate_memory_area 5
#define GS_VCPUOP_set_periodic_timer           6
#define GS_VCPUOP_stop_periodic_timer          7
#define GS_VCPUOP_set_singleshot_timer         8
#define GS_VCPUOP_stop_singleshot_timer        9
#define GS_VCPUOP_register_vcpu_info          10
#define GS_VCPU_SSHOTTMR_future 1u
struct gs_vcpu_set_singleshot_timer { uint64_t timeout_abs_ns; uint32_t flags; };
struct gs_vcpu_set_periodic_timer { uint64_t period_ns; };
struct gs_vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset; uint32_t rsvd; };
struct gs_vcpu_register_runstate_memory_area { uint64_t addr; };
#define GS_RUNSTATE_running  0
#define GS_RUNSTATE_runnable 1
#define GS_RUNSTATE_blocked  2
#define GS_RUNSTATE_offline  3
// XEN_RUNSTATE_UPDATE: set in state_entry_time while the hypervisor rewrites the area.
#define GS_RUNSTATE_UPDATE (1ull << 63)
struct gs_vcpu_runstate_info { int32_t state; uint64_t state_entry_time; uint64_t time[4]; };
// Where its fields are in this guest's layout (Swift's key paths are not in Embedded Swift).
static inline int gs_runstate_entry_time_offset(void) { return (int)offsetof(struct gs_vcpu_runstate_info, state_entry_time); }
static inline int gs_runstate_time_offset(void) { return (int)offsetof(struct gs_vcpu_runstate_info, time); }

// sched.h: SCHEDOP_poll blocks until one of the ports is pending or the timeout (absolute system
// time in ns, 0 = none) passes.
#define GS_SCHEDOP_poll 3
struct gs_sched_poll { unsigned long ports; uint32_t nr_ports; uint64_t timeout; };   // ports: a guest handle

// The shared_info offsets the event code touches (xen.h). evtchn_pending_sel and the bitmap
// words are xen_ulong_t: for a 32-bit guest the selector sits at 4 and each bitmap is 32 words
// of 4 bytes, which moves evtchn_mask and the wallclock (wc_sec) down.
#define GS_SHARED_INFO_VCPU_INFO_SIZE      64
#define GS_VCPU_INFO_UPCALL_PENDING         0
#define GS_VCPU_INFO_TIME                  32
#define GS_SHARED_INFO_EVTCHN_PENDING  0x800
#if defined(__i386__)
#define GS_VCPU_INFO_PENDING_SEL            4
#define GS_SHARED_INFO_EVTCHN_MASK     0x880
#define GS_SHARED_INFO_WC_SEC          0x904
#else
#define GS_VCPU_INFO_PENDING_SEL            8
#define GS_SHARED_INFO_EVTCHN_MASK     0xA00
#define GS_SHARED_INFO_WC_SEC          0xC04
#endif

_Static_assert(sizeof(struct gs_evtchn_alloc_unbound) == 8, "evtchn_alloc_unbound");
_Static_assert(sizeof(struct gs_evtchn_bind_interdomain) == 12, "evtchn_bind_interdomain");
_Static_assert(offsetof(struct gs_evtchn_bind_interdomain, remote_port) == 4, "evtchn_bind_interdomain.remote_port");
_Static_assert(offsetof(struct gs_evtchn_bind_interdomain, local_port) == 8, "evtchn_bind_interdomain.local_port");
_Static_assert(sizeof(struct gs_evtchn_bind_virq) == 12, "evtchn_bind_virq");
_Static_assert(sizeof(struct gs_evtchn_bind_ipi) == 8, "evtchn_bind_ipi");
_Static_assert(sizeof(struct gs_evtchn_bind_vcpu) == 8, "evtchn_bind_vcpu");
_Static_assert(sizeof(struct gs_evtchn_init_control) == 24, "evtchn_init_control");
_Static_assert(offsetof(struct gs_evtchn_init_control, link_bits) == 16, "evtchn_init_control.link_bits");
_Static_assert(sizeof(struct gs_evtchn_set_priority) == 8, "evtchn_set_priority");
_Static_assert(sizeof(struct gs_evtchn_status) == 24, "evtchn_status");
_Static_assert(offsetof(struct gs_evtchn_status, status) == 8, "evtchn_status.status");
_Static_assert(offsetof(struct gs_evtchn_status, u) == 16, "evtchn_status.u");
_Static_assert(offsetof(struct gs_evtchn_status, u.interdomain.port) == 20, "evtchn_status.u.interdomain.port");
_Static_assert(sizeof(struct gs_xen_hvm_param) == 16, "xen_hvm_param");
_Static_assert(offsetof(struct gs_xen_hvm_param, value) == 8, "xen_hvm_param.value");
#if defined(__i386__)
_Static_assert(sizeof(struct gs_vcpu_set_singleshot_timer) == 12, "vcpu_set_singleshot_timer");
#else
_Static_assert(sizeof(struct gs_vcpu_set_singleshot_timer) == 16, "vcpu_set_singleshot_timer");
#endif
_Static_assert(sizeof(struct gs_vcpu_register_vcpu_info) == 16, "vcpu_register_vcpu_info");
#if defined(__i386__)
_Static_assert(sizeof(struct gs_vcpu_runstate_info) == 44, "vcpu_runstate_info");
_Static_assert(offsetof(struct gs_vcpu_runstate_info, state_entry_time) == 4, "vcpu_runstate_info.state_entry_time");
_Static_assert(offsetof(struct gs_vcpu_runstate_info, time) == 12, "vcpu_runstate_info.time");
_Static_assert(sizeof(struct gs_sched_poll) == 16, "sched_poll");
_Static_assert(offsetof(struct gs_sched_poll, nr_ports) == 4, "sched_poll.nr_ports");
_Static_assert(offsetof(struct gs_sched_poll, timeout) == 8, "sched_poll.timeout");
#else
_Static_assert(sizeof(struct gs_vcpu_runstate_info) == 48, "vcpu_runstate_info");
_Static_assert(offsetof(struct gs_vcpu_runstate_info, state_entry_time) == 8, "vcpu_runstate_info.state_entry_time");
_Static_assert(offsetof(struct gs_vcpu_runstate_info, time) == 16, "vcpu_runstate_info.time");
_Static_assert(sizeof(struct gs_sched_poll) == 24, "sched_poll");
_Static_assert(offsetof(struct gs_sched_poll, nr_ports) == 8, "sched_poll.nr_ports");
_Static_assert(offsetof(struct gs_sched_poll, timeout) == 16, "sched_poll.timeout");
#endif

_Static_assert(sizeof(struct gs_hvm_start_info) == 56, "hvm_start_info");
#if defined(__i386__)
_Static_assert(sizeof(struct gs_xen_add_to_physmap) == 16, "xen_add_to_physmap");
_Static_assert(sizeof(struct gs_gnttab_copy) == 24, "gnttab_copy");
_Static_assert(offsetof(struct gs_gnttab_copy, len) == 16, "gnttab_copy.len");
_Static_assert(sizeof(struct gs_xen_memory_reservation) == 20, "xen_memory_reservation");
_Static_assert(offsetof(struct gs_xen_memory_reservation, domid) == 16, "xen_memory_reservation.domid");
#else
_Static_assert(sizeof(struct gs_xen_add_to_physmap) == 24, "xen_add_to_physmap");
_Static_assert(sizeof(struct gs_gnttab_copy) == 40, "gnttab_copy");
_Static_assert(offsetof(struct gs_gnttab_copy, len) == 32, "gnttab_copy.len");
_Static_assert(sizeof(struct gs_xen_memory_reservation) == 32, "xen_memory_reservation");
_Static_assert(offsetof(struct gs_xen_memory_reservation, domid) == 24, "xen_memory_reservation.domid");
#endif
_Static_assert(sizeof(struct gs_grant_entry_v1) == 8, "grant_entry_v1");
_Static_assert(sizeof(struct gs_gnttab_map_grant_ref) == 32, "gnttab_map_grant_ref");
_Static_assert(offsetof(struct gs_gnttab_map_grant_ref, handle) == 20, "gnttab_map_grant_ref.handle");
_Static_assert(sizeof(struct gs_gnttab_unmap_grant_ref) == 24, "gnttab_unmap_grant_ref");
_Static_assert(sizeof(struct gs_vcpu_time_info) == 32, "vcpu_time_info");
_Static_assert(sizeof(struct gs_hvm_memmap_entry) == 24, "hvm_memmap_table_entry");
_Static_assert(sizeof(struct gs_vcpu_hvm_x86_32) == 120, "vcpu_hvm_x86_32");
_Static_assert(sizeof(struct gs_vcpu_hvm_x86_64) == 112, "vcpu_hvm_x86_64");
_Static_assert(sizeof(struct gs_vcpu_hvm_context) == 128, "vcpu_hvm_context");
_Static_assert(offsetof(struct gs_vcpu_hvm_context, cpu_regs) == 8, "vcpu_hvm_context.cpu_regs");

#if defined(__x86_64__) || defined(__i386__)
#if defined(__x86_64__)
// ---- Hypercalls: Xen's x86-64 convention with AMD's `vmmcall` ----------------------------------
// RAX = hypercall number, arguments in RDI, RSI, RDX, R10, R8; the result comes back in RAX
// (a negative errno on failure). Every argument register is an in/out operand: a hypervisor may
// change them (a continuation records its progress in the arguments and re-executes the
// instruction; Xen's debug builds scribble over unused argument registers).
static inline long hv_hypercall0(unsigned long nr) {
  register unsigned long rax __asm__("rax") = nr;
  __asm__ volatile("vmmcall" : "+r"(rax) : : "memory");
  return (long)rax;
}
static inline long hv_hypercall1(unsigned long nr, unsigned long a1) {
  register unsigned long rax __asm__("rax") = nr;
  register unsigned long rdi __asm__("rdi") = a1;
  __asm__ volatile("vmmcall" : "+r"(rax), "+r"(rdi) : : "memory");
  return (long)rax;
}
static inline long hv_hypercall2(unsigned long nr, unsigned long a1, unsigned long a2) {
  register unsigned long rax __asm__("rax") = nr;
  register unsigned long rdi __asm__("rdi") = a1;
  register unsigned long rsi __asm__("rsi") = a2;
  __asm__ volatile("vmmcall" : "+r"(rax), "+r"(rdi), "+r"(rsi) : : "memory");
  return (long)rax;
}
static inline long hv_hypercall3(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3) {
  register unsigned long rax __asm__("rax") = nr;
  register unsigned long rdi __asm__("rdi") = a1;
  register unsigned long rsi __asm__("rsi") = a2;
  register unsigned long rdx __asm__("rdx") = a3;
  __asm__ volatile("vmmcall" : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx) : : "memory");
  return (long)rax;
}
static inline long hv_hypercall4(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3,
                                 unsigned long a4) {
  register unsigned long rax __asm__("rax") = nr;
  register unsigned long rdi __asm__("rdi") = a1;
  register unsigned long rsi __asm__("rsi") = a2;
  register unsigned long rdx __asm__("rdx") = a3;
  register unsigned long r10 __asm__("r10") = a4;
  __asm__ volatile("vmmcall" : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10) : : "memory");
  return (long)rax;
}
static inline long hv_hypercall5(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3,
                                 unsigned long a4, unsigned long a5) {
  register unsigned long rax __asm__("rax") = nr;
  register unsigned long rdi __asm__("rdi") = a1;
  register unsigned long rsi __asm__("rsi") = a2;
  register unsigned long rdx __asm__("rdx") = a3;
  register unsigned long r10 __asm__("r10") = a4;
  register unsigned long r8 __asm__("r8") = a5;
  __asm__ volatile("vmmcall" : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8) : : "memory");
  return (long)rax;
}
#else
// ---- Hypercalls: Xen's 32-bit convention with AMD's `vmmcall` -----------------------------------
// EAX = hypercall number, arguments in EBX, ECX, EDX, ESI, EDI; the result comes back in EAX.
// As on x86-64, every argument register is an in/out operand. EBX is free to name here: the
// guests are not position-independent on i386 (-fno-pic), so it is no GOT pointer.
static inline long hv_hypercall0(unsigned long nr) {
  register unsigned long eax __asm__("eax") = nr;
  __asm__ volatile("vmmcall" : "+r"(eax) : : "memory");
  return (long)eax;
}
static inline long hv_hypercall1(unsigned long nr, unsigned long a1) {
  register unsigned long eax __asm__("eax") = nr;
  register unsigned long ebx __asm__("ebx") = a1;
  __asm__ volatile("vmmcall" : "+r"(eax), "+r"(ebx) : : "memory");
  return (long)eax;
}
static inline long hv_hypercall2(unsigned long nr, unsigned long a1, unsigned long a2) {
  register unsigned long eax __asm__("eax") = nr;
  register unsigned long ebx __asm__("ebx") = a1;
  register unsigned long ecx __asm__("ecx") = a2;
  __asm__ volatile("vmmcall" : "+r"(eax), "+r"(ebx), "+r"(ecx) : : "memory");
  return (long)eax;
}
static inline long hv_hypercall3(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3) {
  register unsigned long eax __asm__("eax") = nr;
  register unsigned long ebx __asm__("ebx") = a1;
  register unsigned long ecx __asm__("ecx") = a2;
  register unsigned long edx __asm__("edx") = a3;
  __asm__ volatile("vmmcall" : "+r"(eax), "+r"(ebx), "+r"(ecx), "+r"(edx) : : "memory");
  return (long)eax;
}
static inline long hv_hypercall4(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3,
                                 unsigned long a4) {
  register unsigned long eax __asm__("eax") = nr;
  register unsigned long ebx __asm__("ebx") = a1;
  register unsigned long ecx __asm__("ecx") = a2;
  register unsigned long edx __asm__("edx") = a3;
  register unsigned long esi __asm__("esi") = a4;
  __asm__ volatile("vmmcall" : "+r"(eax), "+r"(ebx), "+r"(ecx), "+r"(edx), "+r"(esi) : : "memory");
  return (long)eax;
}
static inline long hv_hypercall5(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3,
                                 unsigned long a4, unsigned long a5) {
  register unsigned long eax __asm__("eax") = nr;
  register unsigned long ebx __asm__("ebx") = a1;
  register unsigned long ecx __asm__("ecx") = a2;
  register unsigned long edx __asm__("edx") = a3;
  register unsigned long esi __asm__("esi") = a4;
  register unsigned long edi __asm__("edi") = a5;
  __asm__ volatile("vmmcall" : "+r"(eax), "+r"(ebx), "+r"(ecx), "+r"(edx), "+r"(esi), "+r"(edi) : : "memory");
  return (long)eax;
}
#endif

// ---- Port I/O (0xE9 debug console, 0xf4 isa-debug-exit) ----------------------------------------
// Memory another domain (or the hypervisor) changes under the guest: grant entries' flags,
// a page mapped by grant.
static inline void gs_compiler_barrier(void) { __asm__ volatile("" : : : "memory"); }
static inline uint16_t gs_read_volatile16(uint64_t address) { return *(volatile uint16_t *)(uintptr_t)address; }
// One access each, also on i386 (an 8-byte atomic: CMPXCHG8B or an SSE move, never two halves).
static inline uint64_t gs_read_volatile64(uint64_t address) { return __atomic_load_n((volatile gs_aligned_u64 *)(uintptr_t)address, __ATOMIC_RELAXED); }
static inline void gs_write_volatile64(uint64_t address, uint64_t value) { __atomic_store_n((volatile gs_aligned_u64 *)(uintptr_t)address, value, __ATOMIC_RELAXED); }
static inline uint16_t gs_cmpxchg16(uint64_t address, uint16_t expected, uint16_t desired) {
  __asm__ volatile("lock cmpxchgw %2, %1" : "+a"(expected), "+m"(*(volatile uint16_t *)(uintptr_t)address) : "r"(desired) : "memory");
  return expected;
}
static inline uint32_t gs_cmpxchg32(uint64_t address, uint32_t expected, uint32_t desired) {
  __asm__ volatile("lock cmpxchgl %2, %1" : "+a"(expected), "+m"(*(volatile uint32_t *)(uintptr_t)address) : "r"(desired) : "memory");
  return expected;
}
static inline uint32_t gs_xchg32(uint64_t address, uint32_t v) {
  __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*(volatile uint32_t *)(uintptr_t)address) : : "memory");
  return v;
}
static inline void gs_outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline void gs_outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline uint8_t gs_inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }

// ---- CPU ----------------------------------------------------------------------------------------
struct gs_cpuid_result { uint32_t eax, ebx, ecx, edx; };
static inline struct gs_cpuid_result gs_cpuid(uint32_t leaf, uint32_t subleaf) {
  struct gs_cpuid_result r;
  __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf) : "memory");
  return r;
}
// LFENCE first so the read is not hoisted above the work being timed.
static inline uint64_t gs_rdtsc(void) {
  uint32_t lo, hi; __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory"); return ((uint64_t)hi << 32) | lo;
}
// VMRUN with RAX = 0: a guest may not run guests of its own here; the hypervisor answers #UD.
static inline void gs_vmrun(void) { __asm__ volatile("xor %%eax, %%eax; vmrun" : : : "rax", "memory"); }
static inline uint64_t gs_rdmsr(uint32_t msr) {
  uint32_t lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((uint64_t)hi << 32) | lo;
}
// Control and debug registers are as wide as the mode's general registers (unsigned long).
static inline uint64_t gs_read_cr0(void) { unsigned long v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t gs_read_cr3(void) { unsigned long v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t gs_read_cr4(void) { unsigned long v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
// DR0-DR3 (writing them is not intercepted: they are the guest's, switched with its vcpu).
static inline void gs_write_dr(int n, uint64_t value) {
  unsigned long v = (unsigned long)value;
  switch (n) {
  case 0: __asm__ volatile("mov %0, %%db0" : : "r"(v)); break;
  case 1: __asm__ volatile("mov %0, %%db1" : : "r"(v)); break;
  case 2: __asm__ volatile("mov %0, %%db2" : : "r"(v)); break;
  default: __asm__ volatile("mov %0, %%db3" : : "r"(v)); break;
  }
}
static inline uint64_t gs_read_dr(int n) {
  unsigned long v;
  switch (n) {
  case 0: __asm__ volatile("mov %%db0, %0" : "=r"(v)); break;
  case 1: __asm__ volatile("mov %%db1, %0" : "=r"(v)); break;
  case 2: __asm__ volatile("mov %%db2, %0" : "=r"(v)); break;
  default: __asm__ volatile("mov %%db3, %0" : "=r"(v)); break;
  }
  return v;
}
#if defined(__x86_64__)
static inline void gs_write_cr8(uint64_t v) { __asm__ volatile("mov %0, %%cr8" : : "r"(v) : "memory"); }
#endif
static inline uint64_t gs_read_rflags(void) { unsigned long v; __asm__ volatile("pushf; pop %0" : "=r"(v)); return v; }
static inline void gs_pause(void) { __asm__ volatile("pause" : : : "memory"); }
static inline void gs_hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
static inline void gs_int3(void) { __asm__ volatile("int3" : : : "memory"); }
struct __attribute__((packed)) gs_descriptor_pointer { uint16_t limit; unsigned long base; };
static inline void gs_lidt(uint64_t base, uint16_t limit) {
  struct gs_descriptor_pointer p = { limit, (unsigned long)base }; __asm__ volatile("lidt %0" : : "m"(p) : "memory");
}
// A compiler barrier: keeps a busy loop's work from being folded away.
static inline void gs_barrier(void) { __asm__ volatile("" : : : "memory"); }

static inline void gs_wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

#if defined(__x86_64__)
// ---- Code at the top of the address space (guest-bad) -------------------------------------------
// The last 4 KiB page of the 64-bit address space. gs_map_top_page (runtime.c) maps it onto the
// page-aligned guest-physical page `page` (below 4 GiB, so also reachable at its identity address)
// through three new tables from the heap: PML4[511] -> PDPT[511] -> PD[511] -> PT[511], present,
// writable and executable. Bytes written at `page + k` then appear at GS_TOP_PAGE + k.
#define GS_TOP_PAGE 0xFFFFFFFFFFFFF000ull
void gs_map_top_page(uint64_t page);
// After gs_map_top_page: points the top page at `page` instead (0: not present) by rewriting only
// the last-level entry, the change a hypervisor's cached walk must notice.
void gs_remap_top_page(uint64_t page);
// Maps the 4 KiB page at virtual `va` (canonical, outside the boot tables' first 512 GiB, PML4[0])
// onto the page-aligned guest-physical page `page` (below 4 GiB, present and writable), or
// unmaps it when `page` is 0. Missing tables come from the heap. For placing hypercall arguments
// at the edges of the address space with nothing mapped after them (guest-fuzz).
void gs_map_page(uint64_t va, uint64_t page);
#endif
static inline void gs_invlpg(uint64_t address) { __asm__ volatile("invlpg (%0)" : : "r"((uintptr_t)address) : "memory"); }
#if defined(__x86_64__)
// A RET (0xC3) at linear address 0 (guest RAM page 0, identity-mapped): where an instruction that
// ends exactly at 2^64 continues, once the hypervisor wraps RIP as the CPU does.
static inline void gs_put_ret_at_zero(void) { __asm__ volatile("movb $0xc3, 0" : : : "memory"); }
// Registers in and out of gs_call_at.
struct gs_call_registers { uint64_t rax, rbx, rcx, rdx, rsi, rdi; };
// CALLs `target` with RAX RBX RCX RDX RSI RDI from `r` and stores what the code left in them back
// in `r`. R8-R11 may change (a hypercall's argument registers). With `interrupts`, STI before
// the call (the CALL sits in its shadow) and CLI after it returns.
static inline void gs_call_at(uint64_t target, struct gs_call_registers *r, int interrupts) {
  register uint64_t rax __asm__("rax") = r->rax;
  register uint64_t rbx __asm__("rbx") = r->rbx;
  register uint64_t rcx __asm__("rcx") = r->rcx;
  register uint64_t rdx __asm__("rdx") = r->rdx;
  register uint64_t rsi __asm__("rsi") = r->rsi;
  register uint64_t rdi __asm__("rdi") = r->rdi;
  if (interrupts) {
    __asm__ volatile("sti; call *%[t]; cli"
                     : "+r"(rax), "+r"(rbx), "+r"(rcx), "+r"(rdx), "+r"(rsi), "+r"(rdi)
                     : [t] "r"(target) : "r8", "r9", "r10", "r11", "memory", "cc");
  } else {
    __asm__ volatile("call *%[t]"
                     : "+r"(rax), "+r"(rbx), "+r"(rcx), "+r"(rdx), "+r"(rsi), "+r"(rdi)
                     : [t] "r"(target) : "r8", "r9", "r10", "r11", "memory", "cc");
  }
  r->rax = rax; r->rbx = rbx; r->rcx = rcx; r->rdx = rdx; r->rsi = rsi; r->rdi = rdi;
}
#endif

// ---- Exceptions a guest expects (guest-bad) -----------------------------------------------------
// MOV to and from DR6 (single-step reads what the #DB recorded there).
static inline uint64_t gs_read_dr6(void) { unsigned long v; __asm__ volatile("mov %%dr6, %0" : "=r"(v) : : "memory"); return v; }
static inline void gs_write_dr6(uint64_t v) { __asm__ volatile("mov %0, %%dr6" : : "r"((unsigned long)v) : "memory"); }

// What gs_exception (runtime.c) recorded of the exceptions it caught since gs_catch_exceptions:
// how many, and the last one's vector, error code (0 for vectors without one), the RIP and RFLAGS
// the CPU pushed, and for #DB (vector 1) DR6 as the handler read it.
struct gs_caught_exception { uint64_t count, vector, error_code, rip, rflags, dr6; };
// From now on the vectors with their bit set in `vectors` do not end the guest: gs_exception
// records each (count and the last one) and returns to the interrupted code, with RFLAGS.TF
// cleared in the RFLAGS it returns to (a single-step trap stops there). It returns to the pushed
// RIP for #DB and #BP (traps here: the RIP is already past the instruction), and `skip` bytes
// further for the other vectors (faults: the faulting instruction's length, so it is not executed
// again). 0 stops catching. Resets the record. For the boot vcpu's straight-line code only: the
// record is one for the whole guest.
void gs_catch_exceptions(uint32_t vectors, uint64_t skip);
struct gs_caught_exception gs_caught_exception(void);

// Each probe below executes one instruction chosen to raise an exception (or not), and returns
// the address the handler should see: the instruction's own for a fault, the next one for a trap.
// POPFQ sets RFLAGS.TF, so the single-step trap comes after the instruction that follows (a NOP):
// the address after the NOP.
#if defined(__x86_64__)
#define GS_LABEL_ADDRESS "lea 1f(%%rip), %0"   // the address of local label 1 (forward)
static inline uint64_t gs_single_step_nop(void) {
  uint64_t after;
  __asm__ volatile("lea 1f(%%rip), %0\n\t"
                   "pushfq\n\t"
                   "orq $0x100, (%%rsp)\n\t"
                   "popfq\n\t"
                   "nop\n"
                   "1:"
                   : "=r"(after) : : "memory", "cc");
  return after;
}
// MOV to CR4 from R9 (41 0F 22 E1: with a REX prefix, which the hypervisor must decode): the
// address of the MOV (4 bytes).
static inline uint64_t gs_write_cr4_r9_probe(uint64_t value) {
  uint64_t at;
  register uint64_t r9 __asm__("r9") = value;
  __asm__ volatile("lea 1f(%%rip), %0\n1:\tmov %%r9, %%cr4" : "=&r"(at) : "r"(r9) : "memory");
  return at;
}
#else
#define GS_LABEL_ADDRESS "mov $1f, %0"
static inline uint64_t gs_single_step_nop(void) {
  unsigned long after;
  __asm__ volatile("mov $1f, %0\n\t"
                   "pushfl\n\t"
                   "orl $0x100, (%%esp)\n\t"
                   "popfl\n\t"
                   "nop\n"
                   "1:"
                   : "=r"(after) : : "memory", "cc");
  return after;
}
#endif
// ICEBP (INT1, opcode F1): a trap; the address after the byte.
static inline uint64_t gs_icebp(void) {
  unsigned long after;
  __asm__ volatile(GS_LABEL_ADDRESS "\n\t.byte 0xf1\n1:" : "=r"(after) : : "memory");
  return after;
}
// RDPMC (0F 33) of counter `counter`: the address of the RDPMC (2 bytes).
static inline uint64_t gs_rdpmc_probe(uint32_t counter) {
  unsigned long at;
  uint32_t low, high;
  __asm__ volatile(GS_LABEL_ADDRESS "\n1:\trdpmc" : "=&r"(at), "=a"(low), "=d"(high) : "c"(counter) : "memory");
  return at;
}
// MOV to CR4 from RAX/EAX (0F 22 E0): the address of the MOV (3 bytes).
static inline uint64_t gs_write_cr4_probe(uint64_t value) {
  unsigned long at;
  __asm__ volatile(GS_LABEL_ADDRESS "\n1:\tmov %1, %%cr4" : "=&r"(at) : "a"((unsigned long)value) : "memory");
  return at;
}
// INVLPGA (0F 01 DF) with RAX = 0 and ECX = 0 (ASID 0): the address of the INVLPGA (3 bytes).
static inline uint64_t gs_invlpga_probe(void) {
  unsigned long at;
  __asm__ volatile(GS_LABEL_ADDRESS "\n1:\t.byte 0x0f, 0x01, 0xdf"
                   : "=&r"(at) : "a"(0ul), "c"(0u) : "memory");
  return at;
}
static inline void gs_wbinvd(void) { __asm__ volatile("wbinvd" : : : "memory"); }
static inline void gs_invd(void) { __asm__ volatile("invd" : : : "memory"); }

// ---- Interrupts ---------------------------------------------------------------------------------
static inline void gs_sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void gs_cli(void) { __asm__ volatile("cli" : : : "memory"); }
// STI's interrupt shadow covers the HLT that follows it: an interrupt that became pending after
// the caller's last check (made with interrupts off) wakes this HLT instead of being taken
// before it, so checking and sleeping cannot race.
static inline void gs_sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
// STI and one instruction in its shadow: an interrupt already pending is taken right after the
// NOP, before whatever comes next. (STI directly followed by CLI opens no window at all: a loop
// that re-enables interrupts only to disable them again must use this.)
static inline void gs_sti_window(void) { __asm__ volatile("sti; nop" : : : "memory"); }
static inline int gs_interrupts_enabled(void) { return (gs_read_rflags() >> 9) & 1; }

// ---- Atomics on plain 64-bit words (shared between vcpus) ---------------------------------------
// Through gs_aligned_u64 (top of this file): the words the guests use are 8-byte aligned (and a
// locked access is atomic even if not).
static inline uint64_t gs_atomic_load(const volatile uint64_t *p) { return __atomic_load_n((const volatile gs_aligned_u64 *)p, __ATOMIC_SEQ_CST); }
static inline void gs_atomic_store(volatile uint64_t *p, uint64_t v) { __atomic_store_n((volatile gs_aligned_u64 *)p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t gs_atomic_add(volatile uint64_t *p, uint64_t v) { return __atomic_add_fetch((volatile gs_aligned_u64 *)p, v, __ATOMIC_SEQ_CST); }
// A plain MOV: x86 loads are not reordered with other loads, so no fence is needed to read a
// word the hypervisor or another vcpu writes.
static inline uint64_t gs_load64(const volatile uint64_t *p) { return __atomic_load_n((const volatile gs_aligned_u64 *)p, __ATOMIC_ACQUIRE); }
static inline uint8_t gs_load8(const volatile uint8_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void gs_store8(volatile uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t gs_load32(const volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void gs_store32(volatile uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
#if defined(__x86_64__)
// XCHG (implicitly locked): the old value.
static inline uint64_t gs_xchg64(volatile uint64_t *p, uint64_t v) {
  __asm__ volatile("xchgq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
  return v;
}
static inline uint8_t gs_xchg8(volatile uint8_t *p, uint8_t v) {
  __asm__ volatile("xchgb %0, %1" : "+q"(v), "+m"(*p) : : "memory");
  return v;
}
// LOCK BTS / LOCK BTR on bit `bit` (0-63) of *p: the bit's old value (0 or 1).
static inline int gs_bts64(volatile uint64_t *p, unsigned bit) {
  unsigned char old;
  __asm__ volatile("lock btsq %2, %0; setc %1" : "+m"(*p), "=q"(old) : "r"((uint64_t)(bit & 63)) : "memory", "cc");
  return old;
}
static inline int gs_btr64(volatile uint64_t *p, unsigned bit) {
  unsigned char old;
  __asm__ volatile("lock btrq %2, %0; setc %1" : "+m"(*p), "=q"(old) : "r"((uint64_t)(bit & 63)) : "memory", "cc");
  return old;
}
#endif

// ---- Atomics on native words (xen_ulong_t: the event bitmaps and selectors in shared_info) -----
// 64 bits on x86-64, 32 on i386: Swift's UInt.
static inline unsigned long gs_load_word(const volatile unsigned long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline unsigned long gs_xchg_word(volatile unsigned long *p, unsigned long v) {
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);   // XCHG
}
// LOCK BTS / LOCK BTR on bit `bit` (taken modulo the word's width) of *p: the bit's old value.
static inline int gs_bts_word(volatile unsigned long *p, unsigned bit) {
  unsigned char old;
  __asm__ volatile("lock bts %2, %0; setc %1" : "+m"(*p), "=q"(old)
                   : "r"((unsigned long)(bit % (8 * sizeof(unsigned long)))) : "memory", "cc");
  return old;
}
static inline int gs_btr_word(volatile unsigned long *p, unsigned bit) {
  unsigned char old;
  __asm__ volatile("lock btr %2, %0; setc %1" : "+m"(*p), "=q"(old)
                   : "r"((unsigned long)(bit % (8 * sizeof(unsigned long)))) : "memory", "cc");
  return old;
}

// ---- What boot.S and the runtime recorded -------------------------------------------------------
// %ebx at the PVH entry: guest-physical address of struct hvm_start_info.
extern const uint64_t gs_start_info_paddr;
static inline uint64_t gs_start_info_address(void) { return *(volatile const uint64_t *)&gs_start_info_paddr; }
// 1 when CPUID 0x40000000 (or 0x40000100) carries "XenVMMXenVMM" (checked once, before main),
// and the CPUID base of the Xen leaves (0x40000000 or 0x40000100), 0 if absent. Read-only for
// Swift (Swift 6 rejects mutable C globals); runtime.c writes them.
#ifdef GS_RUNTIME_IMPL
extern uint32_t gs_xen_present, gs_xen_cpuid_base;
#else
extern const uint32_t gs_xen_present, gs_xen_cpuid_base;
#endif
static inline uint32_t gs_xen_present_get(void) { return *(volatile const uint32_t *)&gs_xen_present; }
static inline uint32_t gs_xen_cpuid_base_get(void) { return *(volatile const uint32_t *)&gs_xen_cpuid_base; }

// Linker-script symbols (Swift cannot import `extern char x[]`).
extern char __image_start[], __image_end[], gs_pml4[];
static inline uint64_t gs_image_start(void) { return (uint64_t)(uintptr_t)__image_start; }
static inline uint64_t gs_image_end(void) { return (uint64_t)(uintptr_t)__image_end; }
static inline uint64_t gs_boot_pml4(void) { return (uint64_t)(uintptr_t)gs_pml4; }

// ---- Secondary vcpus ----------------------------------------------------------------------------
// guest_ap_start64 (boot.S) is the RIP to hand VCPUOP_initialise in VCPU_HVM_MODE_64B with
// CR3/CR0/CR4/EFER of the boot vcpu, RSP = gs_secondary_stack_top(n) and RDI = the vcpu id. It
// loads the guest's GDT/IDT, resets the FPU and calls
//     @c(guest_secondary_main) func secondaryMain(_ vcpuID: UInt64)
// defined by the guest (a weak reference: a guest without one just takes the vcpu down again).
// In a 32-bit guest, guest_ap_start32 is the EIP for VCPU_HVM_MODE_32B, with EBX = the vcpu id
// and the same CR0/CR3/CR4 and stack (Xen.secondVCPUContext builds both contexts).
#if defined(__x86_64__)
void guest_ap_start64(void);
static inline uint64_t gs_ap_entry_address(void) { return (uint64_t)(uintptr_t)&guest_ap_start64; }
#else
void guest_ap_start32(void);
static inline uint64_t gs_ap_entry_address(void) { return (uint64_t)(uintptr_t)&guest_ap_start32; }
#endif
#define GS_MAX_SECONDARY_VCPUS 4
#define GS_SECONDARY_STACK_SIZE 32768
extern unsigned char gs_secondary_stacks[GS_MAX_SECONDARY_VCPUS][GS_SECONDARY_STACK_SIZE];
// Stack top for secondary vcpu number `index` (0-based among the secondaries), 16-byte aligned.
static inline uint64_t gs_secondary_stack_top(uint32_t index) {
  return (uint64_t)(uintptr_t)&gs_secondary_stacks[index % GS_MAX_SECONDARY_VCPUS][GS_SECONDARY_STACK_SIZE];
}

#if defined(__i386__)
// ---- The 32-bit guests' paging mode (boot.S, i386) ----------------------------------------------
// Chosen by `paging=` on the command line before main runs: off (none), PAE (three-level tables,
// 2 MiB pages), or legacy two-level paging with 4 MiB pages (PSE) or 4 KiB pages. Every mode
// identity-maps the first 4 GiB (virtual = guest-physical), so the Swift code is the same.
#define GS_PAGING_OFF    0
#define GS_PAGING_PAE    1
#define GS_PAGING_4MIB   2
#define GS_PAGING_4KIB   3
uint32_t gs_paging_mode(void);
#endif
#endif  // __x86_64__ || __i386__

// ---- Runtime services (runtime.c) ---------------------------------------------------------------
// Writes bytes to the console: HYPERVISOR_console_io when a Xen-ABI hypervisor is present,
// else port 0xE9 (QEMU `-debugcon stdio`).
void gs_console_write(const void *bytes, size_t count);
// Shuts the guest down (GS_SHUTDOWN_*): SCHEDOP_shutdown under a hypervisor, else isa-debug-exit
// (port 0xf4: 0x10 for poweroff, QEMU exits 33; 0x11 for crash, QEMU exits 35; 0x12 otherwise).
__attribute__((noreturn)) void gs_shutdown(uint32_t reason);

// The scratch area: one statically reserved, page-aligned 1 MiB buffer in .bss for guests that
// need a large array (rdtsc samples, a gpfn list) without going through the small heap. Linked
// in only by guests that use it (its own section; the image is linked with --gc-sections).
#define GS_SCRATCH_SIZE (1u << 20)
extern unsigned char gs_scratch_area[GS_SCRATCH_SIZE];
static inline void *gs_scratch(void) { return gs_scratch_area; }

// Bytes handed out by the bump heap so far (1 MiB static arena; free() does not reclaim).
size_t gs_heap_used(void);

// ---- The event upcall ---------------------------------------------------------------------------
// Xen delivers a PVH guest's events through one interrupt vector the guest chooses
// (HVM_PARAM_CALLBACK_IRQ, type 2). gs_upcall_entry (traps.S) saves the general registers and the
// FPU/SSE state, calls
//     @c(gs_upcall) func upcall()
// (GuestKit implements it), restores everything and returns with IRETQ. No EOI: the vector does
// not come from the local APIC.
#define GS_XEN_CALLBACK_VECTOR 0xF3
void gs_upcall_entry(void);
// Puts gs_upcall_entry in the IDT at `vector` (32-255; other vectors from 32 up stay not present)
// and reloads the IDT on the calling vcpu. Secondary vcpus load the same IDT when they start.
void gs_install_upcall_vector(uint8_t vector);
// Local APIC interrupts (guest-xapic): gs_lapic_entry saves what the upcall entry saves and calls
//     @c(gs_lapic_interrupt) func lapicInterrupt()
// (GuestKit's LocalAPIC: it reads the in-service vector and writes EOI). gs_install_lapic_vector
// puts it in the IDT at `vector` (32-255) and reloads the IDT on the calling vcpu.
void gs_lapic_entry(void);
// Device registers (the xAPIC page): one plain MOV each, the instruction an MMIO emulator sees.
static inline uint32_t gs_mmio_read32(uint64_t a) { uint32_t v; __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline uint8_t gs_mmio_read8(uint64_t a) { uint8_t v; __asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory"); return v; }
static inline void gs_mmio_write32(uint64_t a, uint32_t v) { __asm__ volatile("movl %0, (%1)" : : "r"(v), "r"(a) : "memory"); }
static inline uint64_t gs_mmio_read64(uint64_t a) { uint64_t v; __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void gs_mmio_write64(uint64_t a, uint64_t v) { __asm__ volatile("movq %0, (%1)" : : "r"(v), "r"(a) : "memory"); }
void gs_install_lapic_vector(uint8_t vector);

// A page-aligned page in .bss for the shared_info frame (XENMEM_add_to_physmap): the hypervisor
// puts its page there, and the RAM page that was there stops being RAM. Linked in only when used.
extern unsigned char gs_shared_info_page[4096];
static inline uint64_t gs_shared_info_page_address(void) { return (uint64_t)(uintptr_t)gs_shared_info_page; }
