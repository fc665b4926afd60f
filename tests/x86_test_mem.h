/*
 * A flat memory for the unit tests that drive lib/cpu/x86 directly
 * (check_x86_shift, check_x86_fast): RAM_SIZE bytes at linear 0, stores at
 * or above RO_START fault as on a read-only page, anything past the end
 * as on a missing one; ports raise #GP. And rnd(), a small xorshift
 * generator: the same numbers on every run. Define RAM_SIZE, RO_START and
 * TEST_SEED, then include it once.
 */
#ifndef X86_TEST_MEM_H
#define X86_TEST_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/x86/cpu.h"

static uint8_t ram[RAM_SIZE];
static struct x86_cpu cpu;

static enum x86_status t_load(struct x86_cpu *c, uint64_t lin, unsigned size, void *val)
{
    if (lin >= RAM_SIZE || size > RAM_SIZE - lin) {
        c->exc.addr = lin;
        return x86_raise_err(c, X86_PF, 0);
    }
    memcpy(val, ram + lin, size);
    return X86_OK;
}

static enum x86_status t_store(struct x86_cpu *c, uint64_t lin, unsigned size,
                               const void *val)
{
    if (lin >= RAM_SIZE || size > RAM_SIZE - lin) {
        c->exc.addr = lin;
        return x86_raise_err(c, X86_PF, 2);
    }
    if (lin + size > RO_START) {
        c->exc.addr = lin;
        return x86_raise_err(c, X86_PF, 3);
    }
    memcpy(ram + lin, val, size);
    return X86_OK;
}

static enum x86_status t_port(struct x86_cpu *c, uint16_t port, unsigned size, bool write,
                              uint64_t *val)
{
    (void)port, (void)size, (void)write, (void)val;
    return x86_raise_err(c, X86_GP, 0);
}

static const struct x86_mem_ops test_mem = {
    .load_slow = t_load, .store_slow = t_store, .load_for_store = t_load,
    .load_sys = t_load, .store_sys = t_store, .port = t_port,
};

static uint64_t rng = TEST_SEED;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#endif
