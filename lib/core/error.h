/* Error codes and this thread's detail text (vx_last_error). */
#ifndef VX_CORE_ERROR_H
#define VX_CORE_ERROR_H

#include <stddef.h>
#include <libvx/vx.h>

/* Record `fmt` as this thread's last error and return `code`, so a failure
 * reads `return vxi_error(VX_EINVAL, "size %zu is not ...", n);`.
 * Async-signal-safe it is not; never call it from vx_vcpu_stop(). */
int vxi_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Add context in front of the current detail: "loading ELF: <old detail>". */
int vxi_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A struct crossing the ABI carries its caller's sizeof in its first member.
 * Accept sizes from `known` (this library's sizeof) upward when the bytes
 * this library does not know are all zero: a newer caller that leaves new
 * members unset works with an older library. Otherwise VX_EINVAL naming
 * `what`. */
int vxi_check_struct_size(const void *p, size_t caller_size, size_t known, const char *what);

#endif
