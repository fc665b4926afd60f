/*
 * What the two differential tests (tests/difftest.c, tests/difftest_sys.c)
 * share: a harness failure ends the program with status 99 (not a
 * mismatch), and each side is a machine with its RAM at 0, mapped once.
 */
#ifndef DT_MACHINE_H
#define DT_MACHINE_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <libvx/vx.h>

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(99);
}

/* A machine on `accel` with ram_size bytes of RAM at 0; *ram its host view. */
static vx_machine *dt_machine(vx_accel accel, const char *name, uint64_t ram_size, uint8_t **ram)
{
    vx_machine_opts o = { .size = sizeof o, .accel = accel };
    vx_machine *m;
    int err = vx_machine_create(&o, &m);
    if (err)
        die("%s: vx_machine_create: %s: %s", name, vx_strerror(err), vx_last_error());
    if ((err = vx_memory_map(m, 0, ram_size, NULL, VX_MEM_RWX)))
        die("%s: vx_memory_map: %s: %s", name, vx_strerror(err), vx_last_error());
    if (!(*ram = vx_memory_ptr(m, 0, ram_size)))
        die("%s: vx_memory_ptr: %s", name, vx_last_error());
    return m;
}

#endif
