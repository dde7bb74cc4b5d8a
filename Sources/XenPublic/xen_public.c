// Compile-time checks of xen_public.h against the sizes and offsets Xen's public headers give
// an x86_64 guest: a layout that drifts fails the build of the image, the guests and the tests.
#include "xen_public.h"
#include <stddef.h>

#define LAYOUT(type, size) _Static_assert(sizeof(struct type) == (size), #type " size")
#define FIELD(type, field, offset) \
  _Static_assert(offsetof(struct type, field) == (offset), #type "." #field " offset")

LAYOUT(xen_memory_reservation, 32);
FIELD(xen_memory_reservation, nr_extents, 8);
FIELD(xen_memory_reservation, extent_order, 16);
FIELD(xen_memory_reservation, mem_flags, 20);
FIELD(xen_memory_reservation, domid, 24);
LAYOUT(xen_add_to_physmap, 24);
FIELD(xen_add_to_physmap, space, 4);
FIELD(xen_add_to_physmap, idx, 8);
FIELD(xen_add_to_physmap, gpfn, 16);
LAYOUT(xen_add_to_physmap_batch, 32);
LAYOUT(xen_remove_from_physmap, 16);
LAYOUT(xen_memory_map, 16);
FIELD(xen_memory_map, buffer, 8);
LAYOUT(xen_foreign_memory_map, 24);
LAYOUT(e820entry, 20);
LAYOUT(xen_compile_info, 144);
LAYOUT(xen_feature_info, 8);
LAYOUT(sched_poll, 24);
FIELD(sched_poll, nr_ports, 8);
FIELD(sched_poll, timeout, 16);
LAYOUT(sched_remote_shutdown, 8);
LAYOUT(vcpu_runstate_info, 48);
FIELD(vcpu_runstate_info, state_entry_time, 8);
FIELD(vcpu_runstate_info, time, 16);
LAYOUT(vcpu_set_singleshot_timer, 16);
LAYOUT(vcpu_register_vcpu_info, 16);
LAYOUT(vcpu_hvm_x86_32, 120);
LAYOUT(vcpu_hvm_x86_64, 112);
LAYOUT(vcpu_hvm_context, 128);
FIELD(vcpu_hvm_context, cpu_regs, 8);
LAYOUT(xen_hvm_param, 16);
FIELD(xen_hvm_param, index, 4);
FIELD(xen_hvm_param, value, 8);
LAYOUT(xen_hvm_evtchn_upcall_vector, 8);
LAYOUT(evtchn_alloc_unbound, 8);
FIELD(evtchn_alloc_unbound, port, 4);
LAYOUT(evtchn_bind_interdomain, 12);
FIELD(evtchn_bind_interdomain, remote_port, 4);
FIELD(evtchn_bind_interdomain, local_port, 8);
LAYOUT(evtchn_bind_virq, 12);
LAYOUT(evtchn_bind_ipi, 8);
LAYOUT(evtchn_status, 24);
FIELD(evtchn_status, status, 8);
FIELD(evtchn_status, vcpu, 12);
FIELD(evtchn_status, u, 16);
FIELD(evtchn_status, u.interdomain.port, 20);
LAYOUT(evtchn_bind_vcpu, 8);
LAYOUT(evtchn_reset, 2);
LAYOUT(evtchn_init_control, 24);
FIELD(evtchn_init_control, link_bits, 16);
LAYOUT(evtchn_expand_array, 8);
LAYOUT(evtchn_set_priority, 8);
