/*
 * The decode-time fast paths (lib/cpu/x86: x86_specialize_*, the rip-fixed
 * forms of x86_resolve_branch, and the block-level x86_specialize_block)
 * against the generic handlers they stand in for.
 *
 * Random 64-bit-mode encodings of the specialised opcodes are decoded twice:
 * by x86_decode (specialised, then resolved with the instruction's rip as the
 * translator does) and by x86_decode_generic. Both run from the same random
 * state (registers, lazy flags left by a random arithmetic instruction or
 * set directly, memory operands mostly inside RAM, some pages through the
 * TLB fast path, a read-only page), and must give the same status,
 * exception, registers, next rip, RFLAGS and memory. A second test does the
 * same for short straight-line runs ending in a branch, as a block runs
 * them, with and without the block-level rewrite. Handlers marked pure
 * (insn.h) run with rip and next_rip poisoned, as the run loop leaves them,
 * and must return X86_OK without setting attention.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

#define RAM_SIZE 0x3000u
#define RO_START 0x2000u /* stores from here on fault (a read-only page) */

#define TEST_SEED 0x243f6a8885a308d3ull
#include "x86_test_mem.h"

/* Values that make the interesting flag cases likely. */
static uint64_t rnd_val(void)
{
    static const uint64_t edge[] = { 0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
                                     0x7fffffff, 0x80000000, 0xffffffff,
                                     0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull };
    switch (rnd() % 4) {
    case 0: return edge[rnd() % (sizeof edge / sizeof edge[0])];
    case 1: return rnd() & 0xff;
    default: return rnd();
    }
}

static void cpu_init(void)
{
    memset(&cpu, 0, sizeof cpu);
    cpu.long64 = true;
    cpu.flat = true;
    cpu.code_size = 8;
    cpu.stack_size = 8;
    cpu.flags = 0x2;
    cpu.cr0 = CR0_PE | CR0_PG;
    cpu.efer = EFER_LME | EFER_LMA;
    cpu.seg[S_GS].base = 0x1000;
    vx_tlb_flush(&cpu.tlb);
    /* The first page through the TLB fast path, the second through the
     * slow path, the third read-only (never in the store table). */
    vx_tlb_fill(cpu.tlb.load, 0, ram, 0);
    vx_tlb_fill(cpu.tlb.store, 0, ram, 0);
    cpu.mem = &test_mem;
}

/* The opcodes with fast paths (two-byte ones as 0x0fxx). */
static const uint16_t fast_ops[] = {
    /* ALU in every form, test, inc/dec, group 1 */
    0x00, 0x01, 0x02, 0x03, 0x05, 0x08, 0x09, 0x0a, 0x0b, 0x0d, 0x10, 0x11, 0x12, 0x13, 0x15,
    0x18, 0x19, 0x1a, 0x1b, 0x1d, 0x20, 0x21, 0x22, 0x23, 0x25, 0x28, 0x29, 0x2a, 0x2b, 0x2d,
    0x30, 0x31, 0x32, 0x33, 0x35, 0x38, 0x39, 0x3a, 0x3b, 0x3d, 0x80, 0x81, 0x83, 0x84, 0x85,
    0xa8, 0xa9, 0xfe, 0xff,
    /* shifts, moves, lea, movsxd */
    0xc1, 0xd1, 0x88, 0x89, 0x8a, 0x8b, 0x8d, 0x63, 0xb8, 0xc7,
    /* imul, movzx, movsx, cmovcc, setcc */
    0x0faf, 0x6b, 0x69, 0x0fb6, 0x0fb7, 0x0fbe, 0x0fbf, 0x0f42, 0x0f43, 0x0f44, 0x0f45, 0x0f46,
    0x0f47, 0x0f4c, 0x0f4d, 0x0f4e, 0x0f4f, 0x0f48, 0x0f49, 0x0f40, 0x0f4a, 0x0f92, 0x0f93,
    0x0f94, 0x0f95, 0x0f96, 0x0f97, 0x0f9c, 0x0f9d, 0x0f9e, 0x0f9f, 0x0f98, 0x0f90, 0x0f9a,
    /* push, pop (pop rsp too) */
    0x50, 0x53, 0x54, 0x55, 0x57, 0x58, 0x5b, 0x5c, 0x5d, 0x5f,
};

/* Flag setters, run first (generic) to leave a lazy state behind. */
static const uint16_t flag_ops[] = {
    0x01, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39, 0x85, 0x00, 0x28, 0x38, 0xff, 0xfe, 0xf7, 0xd1,
    0xc1, 0x0faf, 0x83, 0x80,
};

/* Branches that end a run. */
static const uint16_t branch_ops[] = {
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e,
    0x7f, 0x0f82, 0x0f84, 0x0f85, 0x0f86, 0x0f8c, 0x0f8f, 0xeb, 0xe9, 0xe8, 0xc3,
};

/* [66] [67] [64/65] [REX] opcode, then random bytes (ModRM, SIB, displacement,
 * immediate: the decoder takes what it needs). */
static unsigned encode(uint8_t *b, uint16_t op, bool reg_form)
{
    unsigned n = 0;
    if (rnd() % 8 == 0)
        b[n++] = 0x66;
    if (rnd() % 16 == 0)
        b[n++] = 0x67;
    if (rnd() % 16 == 0)
        b[n++] = rnd() % 2 ? 0x64 : 0x65; /* fs: (base 0), gs: (base 0x1000) */
    if (rnd() % 4)
        b[n++] = (uint8_t)(0x40 | (rnd() & 0xf));
    if (op > 0xff)
        b[n++] = 0x0f;
    b[n++] = (uint8_t)op;
    for (unsigned k = n; k < X86_MAX_INSN + 1; k++)
        b[k] = (uint8_t)rnd();
    if (reg_form)
        b[n] |= 0xc0;
    else if (rnd() % 2)
        b[n] &= 0x3f; /* mod 0 often: RIP-relative and SIB without base too */
    return n;
}

/* Point the memory operand into RAM (most of the time) by choosing its
 * base or index register, or the rip for a RIP-relative one. */
static void aim(const struct x86_insn *i, uint64_t *rip)
{
    if (!i->mem || rnd() % 8 == 0)
        return;
    uint64_t target = 0x10 + rnd() % (RAM_SIZE - 0x20);
    if (i->base == X86_RIPREL) {
        *rip = target - i->disp - i->len;
        return;
    }
    uint64_t idx = i->index != X86_NOREG ? cpu.regs[i->index] << i->scale : 0;
    if (i->base != X86_NOREG && i->base != i->index)
        cpu.regs[i->base] = target - i->disp - idx;
    else if (i->base == X86_NOREG && i->index != X86_NOREG)
        cpu.regs[i->index] = (uint64_t)((int64_t)(target - i->disp) >> i->scale);
}

static void random_state(void)
{
    cpu_init();
    for (unsigned r = 0; r < 16; r++)
        cpu.regs[r] = rnd_val();
    if (rnd() % 4)
        cpu.regs[R_SP] = 0x10 + rnd() % (RAM_SIZE - 0x10);
    for (unsigned k = 0; k < RAM_SIZE; k += 8) {
        uint64_t v = rnd();
        memcpy(ram + k, &v, 8);
    }
    if (rnd() % 4 == 0) {
        cpu.flags = 2 | (rnd() & F_ARITH);
        cpu.lazy.op = CC_EFLAGS;
        return;
    }
    /* A random register-form flag setter, run by its generic handler. */
    for (;;) {
        uint8_t b[X86_MAX_INSN + 1];
        encode(b, flag_ops[rnd() % (sizeof flag_ops / sizeof flag_ops[0])], true);
        struct x86_insn i;
        if (x86_decode_generic(&cpu, b, X86_MAX_INSN, &i) <= 0 || i.fn == op_ud)
            continue;
        cpu.next_rip = cpu.rip + i.len;
        if (i.fn(&cpu, &i) == X86_OK)
            return;
    }
}

static uint8_t ram_a[RAM_SIZE], ram_0[RAM_SIZE];

struct outcome {
    enum x86_status st;
    struct x86_exc exc;
    uint64_t regs[16], next_rip, flags;
    unsigned done;
};

/* Run insns[0..n) as a block does: each with next_rip set, stopping at the
 * first status other than X86_OK. */
static struct outcome run(struct x86_cpu *c, const struct x86_insn *insns, unsigned n,
                          uint64_t rip)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    c->rip = rip;
    o.st = X86_OK;
    for (o.done = 0; o.done < n; o.done++) {
        const struct x86_insn *i = &insns[o.done];
        if (i->pure) {
            /* As the run loop calls it: rip and next_rip stale (poisoned
             * here), X86_OK and no attention whatever happens. */
            uint64_t rip_now = c->rip;
            c->rip = c->next_rip = 0xdeadbeefdeadbeefull;
            enum x86_status st = i->fn(c, i);
            if (st != X86_OK || c->attention)
                ck_abort_msg("pure handler of opcode %x: status %d, attention %d", i->opcode,
                             st, c->attention);
            c->rip = c->next_rip = rip_now + i->len;
            continue;
        }
        c->next_rip = c->rip + i->len;
        o.st = i->fn(c, i);
        if (o.st != X86_OK)
            break;
        c->rip = c->next_rip;
    }
    if (o.st == X86_EXCEPTION)
        o.exc = c->exc;
    memcpy(o.regs, c->regs, sizeof o.regs);
    o.next_rip = c->next_rip;
    o.flags = x86_get_flags(c);
    return o;
}

/* Plain comparisons first: Check records every assertion it passes. */
static void compare(const char *what, const uint8_t *code, unsigned len,
                    const struct outcome *a, const struct outcome *b)
{
    bool regs_same = memcmp(a->regs, b->regs, sizeof a->regs) == 0;
    bool exc_same = a->st != X86_EXCEPTION ||
                    (a->exc.vector == b->exc.vector && a->exc.error == b->exc.error &&
                     a->exc.addr == b->exc.addr);
    bool rip_same = a->st == X86_EXCEPTION || a->next_rip == b->next_rip;
    bool mem_same = memcmp(ram, ram_a, RAM_SIZE) == 0;
    if (a->st == b->st && a->done == b->done && exc_same && regs_same && rip_same &&
        a->flags == b->flags && mem_same)
        return;
    char hex[3 * 64 + 1] = "";
    for (unsigned k = 0; k < len && k < 64; k++)
        snprintf(hex + 3 * k, 4, "%02x ", code[k]);
    ck_assert_msg(a->st == b->st, "%s %s: status %d, generic %d", what, hex, a->st, b->st);
    ck_assert_msg(a->done == b->done, "%s %s: %u run, generic %u", what, hex, a->done,
                  b->done);
    ck_assert_msg(exc_same, "%s %s: exception %u(%x) at %" PRIx64 ", generic %u(%x) at %" PRIx64,
                  what, hex, a->exc.vector, a->exc.error, a->exc.addr, b->exc.vector,
                  b->exc.error, b->exc.addr);
    for (unsigned r = 0; r < 16; r++)
        ck_assert_msg(a->regs[r] == b->regs[r],
                      "%s %s: reg %u = %" PRIx64 ", generic %" PRIx64, what, hex, r,
                      a->regs[r], b->regs[r]);
    ck_assert_msg(rip_same, "%s %s: next rip %" PRIx64 ", generic %" PRIx64, what, hex,
                  a->next_rip, b->next_rip);
    ck_assert_msg(a->flags == b->flags, "%s %s: flags %03" PRIx64 ", generic %03" PRIx64,
                  what, hex, a->flags, b->flags);
    ck_assert_msg(mem_same, "%s %s: memory differs", what, hex);
}

/* rips near the top of the canonical lower half too, so that some branch
 * targets are not canonical (no rip-fixed form: the generic handler). */
static uint64_t rnd_rip(void)
{
    return rnd() % 4 ? 0x1000 + rnd() % 0x100000 : 0x00007ffffffffff0ull - rnd() % 0x100;
}

#ifndef FAST_COUNT
#define FAST_COUNT 100000
#endif

START_TEST(single_instructions)
{
    unsigned special = 0, total = 0;
    for (unsigned n = 0; n < FAST_COUNT; n++) {
        random_state();
        uint8_t b[X86_MAX_INSN + 1];
        uint16_t op = fast_ops[rnd() % (sizeof fast_ops / sizeof fast_ops[0])];
        encode(b, op, rnd() % 2);
        struct x86_insn fast, gen;
        int len = x86_decode(&cpu, b, X86_MAX_INSN, &fast);
        if (x86_decode_generic(&cpu, b, X86_MAX_INSN, &gen) != len)
            ck_abort_msg("the two decoders disagree on the length");
        if (len <= 0 || gen.fn == op_ud)
            continue;
        uint64_t rip = rnd_rip();
        aim(&gen, &rip);
        x86_resolve_branch(&cpu, &fast, rip);
        total++;
        special += fast.fn != gen.fn;
        memcpy(ram_0, ram, RAM_SIZE);
        struct x86_cpu saved = cpu;
        struct outcome a = run(&cpu, &fast, 1, rip);
        memcpy(ram_a, ram, RAM_SIZE);
        memcpy(ram, ram_0, RAM_SIZE);
        cpu = saved;
        struct outcome g = run(&cpu, &gen, 1, rip);
        compare("insn", b, (unsigned)len, &a, &g);
    }
    printf("single_instructions: %u of %u cases ran a fast path\n", special, total);
    ck_assert_uint_gt(special, total / 4);
}
END_TEST

START_TEST(straight_line_runs)
{
    unsigned rewritten = 0, total = 0;
    for (unsigned n = 0; n < FAST_COUNT / 4; n++) {
        random_state();
        uint8_t code[64 * X86_MAX_INSN];
        struct x86_insn fast[8], gen[8];
        unsigned count = 1 + (unsigned)(rnd() % 4), pos = 0, k = 0;
        uint64_t rip = rnd_rip(), pc = rip;
        bool ok = true;
        for (k = 0; k < count && ok; k++) {
            uint8_t b[X86_MAX_INSN + 1];
            uint16_t op = k + 1 == count
                              ? branch_ops[rnd() % (sizeof branch_ops / sizeof branch_ops[0])]
                          : rnd() % 2 ? flag_ops[rnd() % (sizeof flag_ops / sizeof flag_ops[0])]
                                      : fast_ops[rnd() % (sizeof fast_ops / sizeof fast_ops[0])];
            encode(b, op, rnd() % 4 != 0);
            int len = x86_decode(&cpu, b, X86_MAX_INSN, &fast[k]);
            if (len <= 0 || x86_decode_generic(&cpu, b, X86_MAX_INSN, &gen[k]) != len ||
                gen[k].fn == op_ud) {
                ok = false;
                break;
            }
            x86_resolve_branch(&cpu, &fast[k], pc);
            memcpy(code + pos, b, (size_t)len);
            pos += (unsigned)len;
            pc += (uint64_t)len;
        }
        if (!ok)
            continue;
        total++;
        rewritten += x86_specialize_block(fast, count);
        memcpy(ram_0, ram, RAM_SIZE);
        struct x86_cpu saved = cpu;
        struct outcome a = run(&cpu, fast, count, rip);
        memcpy(ram_a, ram, RAM_SIZE);
        memcpy(ram, ram_0, RAM_SIZE);
        cpu = saved;
        struct outcome g = run(&cpu, gen, count, rip);
        compare("run", code, pos, &a, &g);
    }
    printf("straight_line_runs: %u of %u runs rewritten at block level\n", rewritten, total);
    ck_assert_uint_gt(rewritten, total / 8);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("x86_fast");
    TCase *t = tcase_create("fast_vs_generic");
    tcase_add_test(t, single_instructions);
    tcase_add_test(t, straight_line_runs);
    tcase_set_timeout(t, 120);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
