/* Versions, error names and the thread-local error detail. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define VX_ERROR_LEN 512

static _Thread_local char last_error[VX_ERROR_LEN];

VX_API unsigned vx_version(void)
{
    return VX_VERSION_NUMBER;
}

#define VX_STR2(x) #x
#define VX_STR(x) VX_STR2(x)

VX_API const char *vx_version_string(void)
{
    return VX_STR(VX_VERSION_MAJOR) "." VX_STR(VX_VERSION_MINOR) "." VX_STR(VX_VERSION_PATCH);
}

VX_API const char *vx_strerror(int err)
{
    switch (err) {
    case VX_OK: return "success";
    case VX_EINVAL: return "invalid argument";
    case VX_ENOMEM: return "out of memory";
    case VX_ENOTSUP: return "not supported by this accelerator or build";
    case VX_EEXIST: return "overlaps something already mapped or registered";
    case VX_ENOENT: return "nothing mapped or registered there";
    case VX_EBUSY: return "busy (the vCPU is running)";
    case VX_EACCEL: return "the accelerator failed";
    case VX_EIO: return "input/output error";
    case VX_ECORRUPT: return "malformed file or data";
    case VX_ERANGE: return "address or length out of range";
    default: return "unknown error";
    }
}

VX_API const char *vx_last_error(void)
{
    return last_error;
}

int vxi_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

int vxi_error_prefix(int code, const char *fmt, ...)
{
    char old[VX_ERROR_LEN];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    size_t used = strlen(last_error);
    if (used + 2 < sizeof last_error) {
        memcpy(last_error + used, ": ", 2);
        used += 2;
        size_t n = strnlen(old, sizeof last_error - used - 1);
        memcpy(last_error + used, old, n);
        last_error[used + n] = '\0';
    }
    return code;
}

int vxi_check_struct_size(const void *p, size_t caller_size, size_t known, const char *what)
{
    if (caller_size < known)
        return vxi_error(VX_EINVAL, "%s.size is %zu, expected at least %zu (set it to sizeof(%s))",
                         what, caller_size, known, what);
    const unsigned char *bytes = p;
    for (size_t i = known; i < caller_size; i++)
        if (bytes[i])
            return vxi_error(VX_EINVAL, "%s has non-zero bytes at offset %zu that this "
                             "libvx %s does not know", what, i, vx_version_string());
    return 0;
}
