/*
 * Host memory for guest RAM and the translator's big tables: anonymous
 * mappings, kept in a small process-wide pool when released so the next
 * machine reuses pages that are already faulted in. Where a page fault
 * costs microseconds (nested virtualization: 17 us each on the machine
 * these were measured on), faulting a fresh machine's few pages dominated
 * create+run+destroy.
 *
 * Zeroed memory comes back zeroed: a pooled mapping's pages that the last
 * user may have written (present or swapped out, per /proc/self/pagemap)
 * are cleared before reuse; pages never touched are zero-fill on demand.
 * No guest ever sees another's bytes. Where pagemap cannot be read, zeroed
 * mappings are not pooled.
 */
#ifndef VX_CORE_HOSTMEM_H
#define VX_CORE_HOSTMEM_H

#include <stdbool.h>
#include <stddef.h>

/* size bytes (a multiple of the page size) of private read-write memory,
 * zero-filled when `zero`, else with unspecified contents; NULL when the
 * host has none. Release it with vxi_host_free(p, size, zero). */
void *vxi_host_alloc(size_t size, bool zero);
void vxi_host_free(void *p, size_t size, bool zero);

#endif
