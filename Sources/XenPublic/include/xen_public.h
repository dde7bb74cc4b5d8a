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
// FIFO ABI: the per-vcpu control block in a guest page (event words are plain uint32_t).
struct evtchn_fifo_control_block {
  uint32_t ready;
  uint32_t _rsvd;
  uint32_t head[16];                 // EVTCHN_FIFO_MAX_QUEUES
};

// ---- grant_table.h: HYPERVISOR_grant_table_op ----

typedef uint32_t grant_ref_t;
typedef uint32_t grant_handle_t;

/// One entry of a version 1 grant table (the granter writes it; the hypervisor sets
/// GTF_reading / GTF_writing in `flags` while the grant is in use).
struct grant_entry_v1 {
  uint16_t flags;                    // GTF_*
  domid_t domid;                     // the domain allowed to use the grant
  uint32_t frame;                    // the granted guest frame
};

struct gnttab_map_grant_ref {
  uint64_t host_addr;                // in: for a translated mapper, the guest-physical address
  uint32_t flags;                    // in: GNTMAP_*
  grant_ref_t ref;                   // in
  domid_t dom;                       // in: the granter
  int16_t status;                    // out: GNTST_*
  grant_handle_t handle;             // out
  uint64_t dev_bus_addr;             // out
};
struct gnttab_unmap_grant_ref {
  uint64_t host_addr;                // in
  uint64_t dev_bus_addr;             // in
  grant_handle_t handle;             // in
  int16_t status;                    // out
};
struct gnttab_setup_table {
  domid_t dom;                       // in
  uint32_t nr_frames;                // in
  int16_t status;                    // out
  xen_guest_handle_t frame_list;     // out: xen_pfn_t[nr_frames]
};
struct gnttab_copy_ptr {
  union {
    grant_ref_t ref;
    xen_pfn_t gmfn;
  } u;
  domid_t domid;
  uint16_t offset;
};
struct gnttab_copy {
  struct gnttab_copy_ptr source, dest;
  uint16_t len;
  uint16_t flags;                    // GNTCOPY_*
  int16_t status;                    // out
};
struct gnttab_query_size {
  domid_t dom;                       // in
  uint32_t nr_frames;                // out
  uint32_t max_nr_frames;            // out
  int16_t status;                    // out
};
struct gnttab_set_version { uint32_t version; };       // in/out
struct gnttab_get_version {
  domid_t dom;                       // in
  uint16_t pad;
  uint32_t version;                  // out
};

// ---- Pages shared with a guest ----
// The hypervisor writes these while the guest runs (pending bits with atomics, the clocks under
// a seqlock), so it reaches their fields by offset rather than by copying: the offsets below,
// computed here from the structures, are the ones XenABI hands to that code.

/// xen.h: struct vcpu_time_info, the per-vcpu pvclock.
struct vcpu_time_info {
  uint32_t version;                  // odd while an update is in progress
  uint32_t pad0;
  uint64_t tsc_timestamp;            // TSC at the last update
  uint64_t system_time;              // ns since boot at the last update
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags;                     // XEN_PVCLOCK_*
  uint8_t pad1[2];
};

/// arch-x86/xen.h: struct arch_vcpu_info (x86_64).
struct arch_vcpu_info {
  uint64_t cr2;
  uint64_t pad;
};

/// xen.h: struct vcpu_info.
struct vcpu_info {
  uint8_t evtchn_upcall_pending;
  uint8_t evtchn_upcall_mask;
  uint64_t evtchn_pending_sel;       // bit i: word i of evtchn_pending may have work
  struct arch_vcpu_info arch;
  struct vcpu_time_info time;
};

/// arch-x86/xen.h: struct arch_shared_info (x86_64).
struct arch_shared_info {
  uint64_t max_pfn;
  xen_pfn_t pfn_to_mfn_frame_list_list;
  uint64_t nmi_reason;
  uint64_t p2m_cr3;
  uint64_t p2m_vaddr;
  uint64_t p2m_generation;
};

/// xen.h: struct shared_info (x86_64, 2-level event channels).
struct shared_info {
  struct vcpu_info vcpu_info[32];    // MAX_VIRT_CPUS
  uint64_t evtchn_pending[64];
  uint64_t evtchn_mask[64];
  uint32_t wc_version;
  uint32_t wc_sec;
  uint32_t wc_nsec;
  uint32_t wc_sec_hi;
  struct arch_shared_info arch;
};

/// io/console.h: struct xencons_interface, the console ring page.
struct xencons_interface {
  char in[1024];
  char out[2048];
  uint32_t in_cons, in_prod;
  uint32_t out_cons, out_prod;
};

/// io/xs_wire.h: struct xenstore_domain_interface, the xenstore ring page.
struct xenstore_domain_interface {
  char req[1024];
  char rsp[1024];
  uint32_t req_cons, req_prod;
  uint32_t rsp_cons, rsp_prod;
  uint32_t server_features;
  uint32_t connection;
  uint32_t error;
};

/// arch-x86/hvm/start_info.h: struct hvm_start_info (version 1).
struct hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;             // version 1 on
  uint32_t memmap_entries;
  uint32_t reserved;
};
struct hvm_modlist_entry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
struct hvm_memmap_table_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};

#define XEN_OFFSET(type, field) ((int)__builtin_offsetof(struct type, field))
enum {
  XEN_VCPU_TIME_INFO_SIZE = sizeof(struct vcpu_time_info),
  XEN_VCPU_TIME_INFO_VERSION = XEN_OFFSET(vcpu_time_info, version),
  XEN_VCPU_TIME_INFO_TSC_TIMESTAMP = XEN_OFFSET(vcpu_time_info, tsc_timestamp),
  XEN_VCPU_TIME_INFO_SYSTEM_TIME = XEN_OFFSET(vcpu_time_info, system_time),
  XEN_VCPU_TIME_INFO_TSC_TO_SYSTEM_MUL = XEN_OFFSET(vcpu_time_info, tsc_to_system_mul),
  XEN_VCPU_TIME_INFO_TSC_SHIFT = XEN_OFFSET(vcpu_time_info, tsc_shift),
  XEN_VCPU_TIME_INFO_FLAGS = XEN_OFFSET(vcpu_time_info, flags),
  XEN_ARCH_VCPU_INFO_SIZE = sizeof(struct arch_vcpu_info),
  XEN_VCPU_INFO_SIZE = sizeof(struct vcpu_info),
  XEN_VCPU_INFO_UPCALL_PENDING = XEN_OFFSET(vcpu_info, evtchn_upcall_pending),
  XEN_VCPU_INFO_UPCALL_MASK = XEN_OFFSET(vcpu_info, evtchn_upcall_mask),
  XEN_VCPU_INFO_PENDING_SEL = XEN_OFFSET(vcpu_info, evtchn_pending_sel),
  XEN_VCPU_INFO_ARCH = XEN_OFFSET(vcpu_info, arch),
  XEN_VCPU_INFO_TIME = XEN_OFFSET(vcpu_info, time),
  XEN_ARCH_SHARED_INFO_SIZE = sizeof(struct arch_shared_info),
  XEN_SHARED_INFO_SIZE = sizeof(struct shared_info),
  XEN_SHARED_INFO_VCPU_INFO = XEN_OFFSET(shared_info, vcpu_info),
  XEN_SHARED_INFO_EVTCHN_PENDING = XEN_OFFSET(shared_info, evtchn_pending),
  XEN_SHARED_INFO_EVTCHN_MASK = XEN_OFFSET(shared_info, evtchn_mask),
  XEN_SHARED_INFO_WC_VERSION = XEN_OFFSET(shared_info, wc_version),
  XEN_SHARED_INFO_WC_SEC = XEN_OFFSET(shared_info, wc_sec),
  XEN_SHARED_INFO_WC_NSEC = XEN_OFFSET(shared_info, wc_nsec),
  XEN_SHARED_INFO_WC_SEC_HI = XEN_OFFSET(shared_info, wc_sec_hi),
  XEN_SHARED_INFO_ARCH = XEN_OFFSET(shared_info, arch),
  XEN_XENCONS_IN = XEN_OFFSET(xencons_interface, in),
  XEN_XENCONS_OUT = XEN_OFFSET(xencons_interface, out),
  XEN_XENCONS_IN_CONS = XEN_OFFSET(xencons_interface, in_cons),
  XEN_XENCONS_IN_PROD = XEN_OFFSET(xencons_interface, in_prod),
  XEN_XENCONS_OUT_CONS = XEN_OFFSET(xencons_interface, out_cons),
  XEN_XENCONS_OUT_PROD = XEN_OFFSET(xencons_interface, out_prod),
  XEN_XENSTORE_REQ = XEN_OFFSET(xenstore_domain_interface, req),
  XEN_XENSTORE_RSP = XEN_OFFSET(xenstore_domain_interface, rsp),
  XEN_XENSTORE_REQ_CONS = XEN_OFFSET(xenstore_domain_interface, req_cons),
  XEN_XENSTORE_REQ_PROD = XEN_OFFSET(xenstore_domain_interface, req_prod),
  XEN_XENSTORE_RSP_CONS = XEN_OFFSET(xenstore_domain_interface, rsp_cons),
  XEN_XENSTORE_RSP_PROD = XEN_OFFSET(xenstore_domain_interface, rsp_prod),
  XEN_XENSTORE_SERVER_FEATURES = XEN_OFFSET(xenstore_domain_interface, server_features),
  XEN_XENSTORE_CONNECTION = XEN_OFFSET(xenstore_domain_interface, connection),
  XEN_XENSTORE_ERROR = XEN_OFFSET(xenstore_domain_interface, error),
  XEN_HVM_START_INFO_SIZE = sizeof(struct hvm_start_info),
  XEN_HVM_START_INFO_MAGIC = XEN_OFFSET(hvm_start_info, magic),
  XEN_HVM_START_INFO_VERSION = XEN_OFFSET(hvm_start_info, version),
  XEN_HVM_START_INFO_FLAGS = XEN_OFFSET(hvm_start_info, flags),
  XEN_HVM_START_INFO_NR_MODULES = XEN_OFFSET(hvm_start_info, nr_modules),
  XEN_HVM_START_INFO_MODLIST_PADDR = XEN_OFFSET(hvm_start_info, modlist_paddr),
  XEN_HVM_START_INFO_CMDLINE_PADDR = XEN_OFFSET(hvm_start_info, cmdline_paddr),
  XEN_HVM_START_INFO_RSDP_PADDR = XEN_OFFSET(hvm_start_info, rsdp_paddr),
  XEN_HVM_START_INFO_MEMMAP_PADDR = XEN_OFFSET(hvm_start_info, memmap_paddr),
  XEN_HVM_START_INFO_MEMMAP_ENTRIES = XEN_OFFSET(hvm_start_info, memmap_entries),
  XEN_HVM_START_INFO_RESERVED = XEN_OFFSET(hvm_start_info, reserved),
  XEN_HVM_MODLIST_ENTRY_SIZE = sizeof(struct hvm_modlist_entry),
  XEN_HVM_MODLIST_ENTRY_PADDR = XEN_OFFSET(hvm_modlist_entry, paddr),
  XEN_HVM_MODLIST_ENTRY_SIZE_FIELD = XEN_OFFSET(hvm_modlist_entry, size),
  XEN_HVM_MODLIST_ENTRY_CMDLINE_PADDR = XEN_OFFSET(hvm_modlist_entry, cmdline_paddr),
  XEN_HVM_MODLIST_ENTRY_RESERVED = XEN_OFFSET(hvm_modlist_entry, reserved),
  XEN_HVM_MEMMAP_ENTRY_SIZE = sizeof(struct hvm_memmap_table_entry),
  XEN_HVM_MEMMAP_ENTRY_ADDR = XEN_OFFSET(hvm_memmap_table_entry, addr),
  XEN_HVM_MEMMAP_ENTRY_SIZE_FIELD = XEN_OFFSET(hvm_memmap_table_entry, size),
  XEN_HVM_MEMMAP_ENTRY_TYPE = XEN_OFFSET(hvm_memmap_table_entry, type),
  XEN_HVM_MEMMAP_ENTRY_RESERVED = XEN_OFFSET(hvm_memmap_table_entry, reserved),
};

// ---- The 32-bit (compat) layouts ----
// What a 32-bit guest (one whose hypercall comes from code that is not 64-bit) lays out, as
// Xen's xen/include/compat headers give it (generated from the same public headers for the
// i386 ABI): xen_ulong_t and xen_pfn_t are 32 bits, a guest handle is a 32-bit pointer, and a
// uint64_t is 4-byte aligned, which compat_uint64_t says explicitly (the host compiler would
// align it to 8). Only the structures whose layout differs are here (Xen's xlat.lst "!"
// entries among those the hypervisor reads or writes); the others are the same in both ABIs,
// listed in Hypervisor/Memory/GuestStructure.swift (xlat.lst's "?"), and tested so.
// The hypervisor translates each at copy-in to the native structure above, and back at
// copy-out (`CompatTranslated`), so its handlers see one type.

typedef uint32_t compat_ulong_t;
typedef uint32_t compat_pfn_t;
/// A compat XEN_GUEST_HANDLE(T): the 32-bit guest-virtual address of a T.
typedef uint32_t compat_handle_t;
/// i386's uint64_t: 8 bytes, 4-byte aligned.
typedef uint64_t compat_uint64_t __attribute__((aligned(4)));

struct compat_memory_reservation {           // 20 bytes
  compat_handle_t extent_start;               // compat_pfn_t[]
  compat_ulong_t nr_extents;
  uint32_t extent_order;
  uint32_t mem_flags;
  domid_t domid;
};
struct compat_add_to_physmap {               // 16 bytes
  domid_t domid;
  uint16_t size;
  uint32_t space;
  compat_ulong_t idx;
  compat_pfn_t gpfn;
};
struct compat_memory_map {                   // 8 bytes
  uint32_t nr_entries;
  compat_handle_t buffer;                     // struct e820entry[] (20 bytes each in both ABIs)
};
struct compat_platform_parameters { compat_ulong_t virt_start; };
struct compat_sched_poll {                   // 16 bytes
  compat_handle_t ports;                      // evtchn_port_t[]
  uint32_t nr_ports;
  compat_uint64_t timeout;
};
struct compat_vcpu_runstate_info {           // 44 bytes
  int32_t state;
  compat_uint64_t state_entry_time;
  compat_uint64_t time[4];
};
/// The union of a compat handle and a uint64_t: 8 bytes, of which the handle is the low 4 (the
/// high half is not looked at, as in Xen's compat VCPUOP_register_runstate_memory_area).
struct compat_vcpu_register_runstate_memory_area {
  compat_handle_t addr;
  uint32_t addr_high;
};
struct compat_vcpu_set_singleshot_timer {    // 12 bytes
  compat_uint64_t timeout_abs_ns;
  uint32_t flags;
};
struct compat_gnttab_setup_table {           // 16 bytes
  domid_t dom;
  uint32_t nr_frames;
  int16_t status;
  compat_handle_t frame_list;                 // compat_pfn_t[nr_frames]
};
struct compat_gnttab_copy_ptr {              // 8 bytes
  union {
    grant_ref_t ref;
    compat_pfn_t gmfn;
  } u;
  domid_t domid;
  uint16_t offset;
};
struct compat_gnttab_copy {                  // 24 bytes
  struct compat_gnttab_copy_ptr source, dest;
  uint16_t len;
  uint16_t flags;
  int16_t status;
};

// The shared pages in the compat layout, for a domain whose shared_info is 32-bit (Xen's
// has_32bit_shinfo): xen_ulong_t event words of 32 bits, so 1024 ports in 2-level mode. The
// event code and the wallclock use them through the XEN_COMPAT_* offsets below (docs/compat.md).

/// xen-x86_32.h: struct arch_vcpu_info (cr2 and pad[5]: vcpu_info stays 64 bytes).
struct compat_arch_vcpu_info {
  uint32_t cr2;
  uint32_t pad[5];
};
struct compat_vcpu_info {                    // 64 bytes, as native
  uint8_t evtchn_upcall_pending;
  uint8_t evtchn_upcall_mask;
  compat_ulong_t evtchn_pending_sel;          // at 4
  struct compat_arch_vcpu_info arch;          // at 8
  struct vcpu_time_info time;                 // at 32, the same structure in both ABIs
};
/// arch-x86/xen.h for __i386__: 32-bit fields, and wc_sec_hi here (no room in shared_info).
struct compat_arch_shared_info {
  compat_ulong_t max_pfn;
  compat_pfn_t pfn_to_mfn_frame_list_list;
  compat_ulong_t nmi_reason;
  compat_ulong_t p2m_cr3;
  compat_ulong_t p2m_vaddr;
  compat_ulong_t p2m_generation;
  uint32_t wc_sec_hi;
};
struct compat_shared_info {                  // 2344 bytes
  struct compat_vcpu_info vcpu_info[32];
  compat_ulong_t evtchn_pending[32];          // at 2048
  compat_ulong_t evtchn_mask[32];             // at 2176
  uint32_t wc_version;                        // at 2304
  uint32_t wc_sec;
  uint32_t wc_nsec;
  struct compat_arch_shared_info arch;        // at 2316
};

enum {
  XEN_COMPAT_EVTCHN_WORD_BITS = sizeof(compat_ulong_t) * 8,
  XEN_COMPAT_VCPU_INFO_SIZE = sizeof(struct compat_vcpu_info),
  XEN_COMPAT_VCPU_INFO_UPCALL_PENDING = XEN_OFFSET(compat_vcpu_info, evtchn_upcall_pending),
  XEN_COMPAT_VCPU_INFO_UPCALL_MASK = XEN_OFFSET(compat_vcpu_info, evtchn_upcall_mask),
  XEN_COMPAT_VCPU_INFO_PENDING_SEL = XEN_OFFSET(compat_vcpu_info, evtchn_pending_sel),
  XEN_COMPAT_VCPU_INFO_TIME = XEN_OFFSET(compat_vcpu_info, time),
  XEN_COMPAT_SHARED_INFO_VCPU_INFO = XEN_OFFSET(compat_shared_info, vcpu_info),
  XEN_COMPAT_SHARED_INFO_EVTCHN_PENDING = XEN_OFFSET(compat_shared_info, evtchn_pending),
  XEN_COMPAT_SHARED_INFO_EVTCHN_MASK = XEN_OFFSET(compat_shared_info, evtchn_mask),
  XEN_COMPAT_SHARED_INFO_WC_VERSION = XEN_OFFSET(compat_shared_info, wc_version),
  XEN_COMPAT_SHARED_INFO_WC_SEC = XEN_OFFSET(compat_shared_info, wc_sec),
  XEN_COMPAT_SHARED_INFO_WC_NSEC = XEN_OFFSET(compat_shared_info, wc_nsec),
  XEN_COMPAT_SHARED_INFO_WC_SEC_HI = XEN_OFFSET(compat_shared_info, arch.wc_sec_hi),
};
