// The guest-visible structures of Xen's public interface (xen/include/public), as an x86_64
// guest lays them out: the one declaration of each. Swift imports them (module XenPublic), so a
// handler's view of an argument has the size and field offsets the C compiler gives Xen's own
// headers, by construction; xen_public.c and HypervisorTests' XenABILayoutTests check them
// against the sizes and offsets Xen documents.
//
// Names are Xen's. Types as in arch-x86/xen.h and xen-x86_64.h for a 64-bit guest: a guest
// handle is a 64-bit guest-virtual address, xen_ulong_t and xen_pfn_t are 64 bits, domid_t is
// 16. The constants XenABI needs beside the layouts (command numbers, flags) stay in XenABI.
#pragma once
#include <stdint.h>

typedef uint16_t domid_t;
typedef uint32_t evtchn_port_t;
typedef uint64_t xen_pfn_t;
typedef uint64_t xen_ulong_t;
/// XEN_GUEST_HANDLE(T) on x86_64: the guest-virtual address of a T (or of an array of them).
typedef uint64_t xen_guest_handle_t;

// ---- memory.h: HYPERVISOR_memory_op ----

/// XENMEM_increase_reservation, decrease_reservation, populate_physmap.
struct xen_memory_reservation {
  xen_guest_handle_t extent_start;   // xen_pfn_t[]: the guest frames, one per extent
  xen_ulong_t nr_extents;
  uint32_t extent_order;             // each extent is 2^order pages
  uint32_t mem_flags;                // XENMEMF_*
  domid_t domid;
};

/// XENMEM_add_to_physmap.
struct xen_add_to_physmap {
  domid_t domid;
  uint16_t size;                     // pages, for XENMAPSPACE_gmfn_range
  uint32_t space;                    // XENMAPSPACE_*
  xen_ulong_t idx;
  xen_pfn_t gpfn;
};

/// XENMEM_add_to_physmap_batch.
struct xen_add_to_physmap_batch {
  domid_t domid;
  uint16_t space;
  uint16_t size;
  domid_t foreign_domid;
  xen_guest_handle_t idxs;           // xen_ulong_t[]
  xen_guest_handle_t gpfns;          // xen_pfn_t[]
  xen_guest_handle_t errs;           // int[]
};

/// XENMEM_remove_from_physmap.
struct xen_remove_from_physmap {
  domid_t domid;
  xen_pfn_t gpfn;
};

/// XENMEM_memory_map, XENMEM_machine_memory_map.
struct xen_memory_map {
  uint32_t nr_entries;               // in: entries the buffer holds; out: entries written
  xen_guest_handle_t buffer;         // struct e820entry[]
};

/// XENMEM_set_memory_map (toolstack).
struct xen_foreign_memory_map {
  domid_t domid;
  struct xen_memory_map map;
};

/// hvm/e820.h: one entry of a memory map. Packed: 20 bytes.
struct e820entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;                     // 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable
} __attribute__((packed));

// ---- version.h: HYPERVISOR_xen_version ----

struct xen_extraversion { char extraversion[16]; };
struct xen_compile_info {
  char compiler[64];
  char compile_by[16];
  char compile_domain[32];
  char compile_date[32];
};
struct xen_capabilities_info { char capabilities[1024]; };
struct xen_changeset_info { char changeset[64]; };
struct xen_platform_parameters { xen_ulong_t virt_start; };
struct xen_feature_info {
  uint32_t submap_idx;               // in: which 32 features
  uint32_t submap;                   // out: XENFEAT_* bits
};
struct xen_domain_handle { uint8_t handle[16]; };
struct xen_commandline { char commandline[1024]; };

// ---- sched.h: HYPERVISOR_sched_op ----

struct sched_shutdown { uint32_t reason; };       // SHUTDOWN_*
struct sched_poll {
  xen_guest_handle_t ports;          // evtchn_port_t[]
  uint32_t nr_ports;
  uint64_t timeout;                  // absolute system time in ns, 0 = none
};
struct sched_remote_shutdown {
  domid_t domain_id;
  uint32_t reason;
};
struct sched_watchdog {
  uint32_t id;
  uint32_t timeout;                  // seconds
};
struct sched_pin_override { int32_t pcpu; };

// ---- vcpu.h: HYPERVISOR_vcpu_op ----

struct vcpu_runstate_info {
  int32_t state;                     // RUNSTATE_*
  uint64_t state_entry_time;         // ns system time of the last change (bit 63: update)
  uint64_t time[4];                  // ns spent in each state
};
struct vcpu_register_runstate_memory_area { uint64_t addr; };   // guest-virtual (0: none)
struct vcpu_set_periodic_timer { uint64_t period_ns; };
struct vcpu_set_singleshot_timer {
  uint64_t timeout_abs_ns;           // system time
  uint32_t flags;                    // VCPU_SSHOTTMR_*
};
struct vcpu_register_vcpu_info {
  uint64_t mfn;                      // guest frame holding the vcpu_info
  uint32_t offset;                   // of the vcpu_info in it
  uint32_t rsvd;
};

// ---- hvm/hvm_vcpu.h: VCPUOP_initialise for an HVM/PVH guest ----

struct vcpu_hvm_x86_32 {
  uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi, eip, eflags;
  uint32_t cr0, cr3, cr4, pad1;
  uint64_t efer;
  uint32_t cs_base, ds_base, ss_base, es_base, tr_base;
  uint32_t cs_limit, ds_limit, ss_limit, es_limit, tr_limit;
  uint16_t cs_ar, ds_ar, ss_ar, es_ar, tr_ar;
  uint16_t pad2[3];
};
struct vcpu_hvm_x86_64 {
  uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, rip, rflags;
  uint64_t cr0, cr3, cr4, efer;
};
struct vcpu_hvm_context {
  uint32_t mode;                     // VCPU_HVM_MODE_32B (0) or _64B (1)
  uint32_t pad;
  union {
    struct vcpu_hvm_x86_32 x86_32;
    struct vcpu_hvm_x86_64 x86_64;
  } cpu_regs;
};

// ---- hvm/hvm_op.h: HYPERVISOR_hvm_op ----

struct xen_hvm_param {
  domid_t domid;
  uint16_t pad;
  uint32_t index;                    // HVM_PARAM_*
  uint64_t value;
};
struct xen_hvm_evtchn_upcall_vector {
  uint32_t vcpu;
  uint8_t vector;
};

// ---- event_channel.h: HYPERVISOR_event_channel_op ----

struct evtchn_alloc_unbound {
  domid_t dom, remote_dom;           // in
  evtchn_port_t port;                // out
};
struct evtchn_bind_interdomain {
  domid_t remote_dom;                // in
  evtchn_port_t remote_port;         // in
  evtchn_port_t local_port;          // out
};
struct evtchn_bind_virq {
  uint32_t virq;                     // in
  uint32_t vcpu;                     // in
  evtchn_port_t port;                // out
};
struct evtchn_bind_ipi {
  uint32_t vcpu;                     // in
  evtchn_port_t port;                // out
};
struct evtchn_close { evtchn_port_t port; };
struct evtchn_send { evtchn_port_t port; };
struct evtchn_unmask { evtchn_port_t port; };
struct evtchn_status {
  domid_t dom;                       // in
  evtchn_port_t port;                // in
  uint32_t status;                   // out: EVTCHNSTAT_*
  uint32_t vcpu;                     // out
  union {
    struct { domid_t dom; } unbound;
    struct { domid_t dom; evtchn_port_t port; } interdomain;
    uint32_t pirq;
    uint32_t virq;
  } u;
};
struct evtchn_bind_vcpu {
  evtchn_port_t port;
  uint32_t vcpu;
};
struct evtchn_reset { domid_t dom; };
struct evtchn_init_control {
  uint64_t control_gfn;              // in
  uint32_t offset;                   // in
  uint32_t vcpu;                     // in
  uint8_t link_bits;                 // out
  uint8_t _pad[7];
};
struct evtchn_expand_array { uint64_t array_gfn; };
struct evtchn_set_priority {
  evtchn_port_t port;
  uint32_t priority;
};
