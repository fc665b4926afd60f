/*
 * Unit tests of the x86 string instructions and port I/O
 * (lib/cpu/x86/ops_string.c): a hand-built CPU over a 64 KiB guest memory,
 * hand-built decoded instructions, the handlers called directly.
 *
 * Most tests run three times (Check loop tests, _i = the TLB mode): with
 * an empty soft TLB (every access takes the slow path), with every page in
 * the TLB (the rep fast path), and with every other page (runs that mix
 * both across page boundaries). A reference model checks random cases; the
 * host CPU checks cmps/scas flags and repe/repne termination.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

#define MEM_SIZE 0x10000u
#define RIP0 0x401000ull
/* Must match ops_string.c. */
#define REP_CHUNK 16384u
#define REP_CHUNK_IO 1024u

enum { TLB_NONE, TLB_ALL, TLB_EVEN, TLB_MODES };

static uint8_t mem[MEM_SIZE];
static struct x86_cpu cpu;
static unsigned long slow_loads, slow_stores;

/* ---- the accelerator beneath: memory ------------------------------------------ */

static enum x86_status t_load(struct x86_cpu *cp, uint64_t lin, unsigned size, void *val)
{
    slow_loads++;
    if (lin >= MEM_SIZE || size > MEM_SIZE - lin) {
        cp->exc.addr = lin;
        return x86_raise_err(cp, X86_PF, 0);
    }
    memcpy(val, mem + lin, size);
    return X86_OK;
}

/* A page that "holds translated code": stores to it take the slow path
 * and end the block, as the accelerator's do. */
#define CODE_PAGE 0xe000u
static bool code_page_on;

static enum x86_status t_store(struct x86_cpu *cp, uint64_t lin, unsigned size, const void *val)
{
    slow_stores++;
    if (lin >= MEM_SIZE || size > MEM_SIZE - lin) {
        cp->exc.addr = lin;
        return x86_raise_err(cp, X86_PF, 2);
    }
    memcpy(mem + lin, val, size);
    if (code_page_on && (lin & ~0xfffull) == CODE_PAGE) {
        code_page_on = false; /* its code is gone */
        cp->end_block = cp->attention = true;
    }
    return X86_OK;
}

/* ---- ... and ports ------------------------------------------------------------ */

struct io_rec {
    uint16_t port;
    unsigned size;
    bool write;
    bool answered; /* completed by the application after an exit */
    uint64_t val;
};

#define IO_LOG 8192
static struct io_rec io_log[IO_LOG];
static unsigned io_n;    /* accesses completed */
static long io_exit_at;  /* the access (index in io_log) that exits once, or -1 */
static unsigned io_exits;
static long io_stop_at;  /* the access after which a "callback" asks to stop, or -1 */
static long io_unclaimed_write_at; /* a write nobody claims: done, exit after it; or -1 */

static uint64_t io_read_value(unsigned n)
{
    return 0x8070605040302010ull + n * 0x0101010101010101ull;
}

static enum x86_status t_port(struct x86_cpu *cp, uint16_t port, unsigned size, bool write,
                              uint64_t *val)
{
    ck_assert(size == 1 || size == 2 || size == 4);
    ck_assert_uint_lt(io_n, IO_LOG);
    struct io_rec *r = &io_log[io_n];
    if (cp->io_answered) {
        /* The application's answer to the access that exited. */
        cp->io_answered = false;
        ck_assert_uint_eq(cp->io_addr, port);
        ck_assert_uint_eq(cp->io_size, size);
        ck_assert(cp->io_write == write);
        if (write)
            ck_assert_uint_eq(cp->io_value, *val & x86_mask(size));
        else
            *val = cp->io_value & x86_mask(size);
        *r = (struct io_rec){ port, size, write, true, *val & x86_mask(size) };
        io_n++;
        return X86_OK;
    }
    if (write && (long)io_n == io_unclaimed_write_at) {
        /* As tcg_port: the write is done; the exit follows it. A second
         * one in the same instruction stops before itself. */
        if (cp->exit_after)
            return X86_EXIT;
        io_unclaimed_write_at = -1;
        cp->exit_reason = X86_EXIT_IO;
        cp->io_addr = port;
        cp->io_size = (uint8_t)size;
        cp->io_write = true;
        cp->io_value = *val & x86_mask(size);
        cp->exit_after = cp->attention = true;
        *r = (struct io_rec){ port, size, write, false, *val & x86_mask(size) };
        io_n++;
        return X86_OK;
    }
    if ((long)io_n == io_exit_at) {
        io_exit_at = -1;
        io_exits++;
        cp->exit_reason = X86_EXIT_IO;
        cp->io_addr = port;
        cp->io_size = (uint8_t)size;
        cp->io_write = write;
        cp->io_value = write ? *val & x86_mask(size) : 0;
        return X86_EXIT;
    }
    if (!write)
        *val = io_read_value(io_n) & x86_mask(size);
    *r = (struct io_rec){ port, size, write, false, *val & x86_mask(size) };
    if ((long)io_n == io_stop_at)
        cp->end_block = cp->attention = true;
    io_n++;
    return X86_OK;
}

static const struct x86_mem_ops t_ops = {
    .load_slow = t_load, .store_slow = t_store, .load_for_store = t_load, .load_sys = t_load, .store_sys = t_store,
    .port = t_port,
};

/* Segmentation outside the inline fast cases: expand-up segments only.
 * Weak: where the test is linked with the library's own, that one is used
 * (the segments here are plain present read/write data segments). */
__attribute__((weak)) enum x86_status x86_linear_slow(struct x86_cpu *cp, unsigned seg,
                                                      uint64_t off, unsigned size, bool write,
                                                      uint64_t *lin)
{
    const vx_x86_segment *s = &cp->seg[seg];
    (void)write;
    if (off + size - 1 > s->limit || off + size - 1 < off)
        return x86_raise_err(cp, seg == S_SS ? X86_SS : X86_GP, 0);
    *lin = (uint32_t)(s->base + off);
    return X86_OK;
}

/* ---- CPU and instructions ------------------------------------------------------- */

static void tlb_map(uint64_t lin_page, uint64_t mem_off)
{
    vx_tlb_fill(cpu.tlb.load, lin_page, mem + mem_off, mem_off);
    vx_tlb_fill(cpu.tlb.store, lin_page, mem + mem_off, mem_off);
}

static void tlb_setup(int mode)
{
    vx_tlb_flush(&cpu.tlb);
    for (uint64_t p = 0; p < MEM_SIZE; p += 0x1000)
        if (mode == TLB_ALL || (mode == TLB_EVEN && !(p & 0x1000)))
            tlb_map(p, p);
}

/* 64-bit mode, ring 0, flat segments. */
static void reset(int tlb_mode)
{
    memset(&cpu, 0, sizeof cpu);
    memset(mem, 0, sizeof mem);
    cpu.long64 = true;
    cpu.code_size = 8;
    cpu.stack_size = 8;
    cpu.cpl = 0;
    cpu.flat = true;
    cpu.cr0 = CR0_PE | CR0_PG;
    cpu.efer = EFER_LME | EFER_LMA;
    cpu.flags = 0x2;
    cpu.lazy.op = CC_EFLAGS;
    for (unsigned s = 0; s < 6; s++)
        cpu.seg[s] = (vx_x86_segment){ .limit = 0xffffffff, .type = 3, .present = 1,
                                       .db = 1, .s = 1, .g = 1 };
    cpu.seg[S_CS].type = 0xb;
    cpu.seg[S_CS].l = 1;
    cpu.seg[S_CS].db = 0;
    cpu.mem = &t_ops;
    tlb_setup(tlb_mode);
    slow_loads = slow_stores = 0;
    code_page_on = false;
    io_n = 0;
    io_exit_at = -1;
    io_exits = 0;
    io_stop_at = -1;
    io_unclaimed_write_at = -1;
}

/* 32-bit protected mode, flat (or not: the caller changes segments). */
static void mode32(bool flat)
{
    cpu.long64 = false;
    cpu.code_size = 4;
    cpu.stack_size = 4;
    cpu.flat = flat;
    cpu.cr0 = CR0_PE;
    cpu.efer = 0;
    cpu.seg[S_CS].l = 0;
    cpu.seg[S_CS].db = 1;
}

static struct x86_insn insn(x86_handler fn, uint16_t opcode, unsigned opsize, unsigned addrsize,
                            uint8_t rep)
{
    struct x86_insn i;
    memset(&i, 0, sizeof i);
    i.fn = fn;
    i.opcode = opcode;
    i.opsize = (uint8_t)opsize;
    i.addrsize = (uint8_t)addrsize;
    i.rep = rep;
    i.seg = S_DS;
    i.base = i.index = X86_NOREG;
    i.len = (uint8_t)(1 + (rep != 0) + (opsize == 2) + (opsize == 8) + (addrsize != 8));
    return i;
}

/* The opcode of each handler, by element size (byte form first). */
static uint16_t opc(x86_handler fn, unsigned size)
{
    uint16_t base = fn == op_movs ? 0xa4 : fn == op_cmps ? 0xa6 : fn == op_stos ? 0xaa
                  : fn == op_lods ? 0xac : fn == op_scas ? 0xae : fn == op_ins ? 0x6c : 0x6e;
    return (uint16_t)(base + (size > 1));
}

static struct x86_insn sinsn(x86_handler fn, unsigned size, unsigned addrsize, uint8_t rep)
{
    return insn(fn, opc(fn, size), size, addrsize, rep);
}

/* One handler call, as the run loop makes it. */
static enum x86_status exec1(const struct x86_insn *i)
{
    cpu.rip = RIP0;
    cpu.next_rip = RIP0 + i->len;
    return i->fn(&cpu, i);
}

/* A paused rep: X86_REPEAT with next_rip left at the instruction. */
static bool paused(enum x86_status st)
{
    if (st != X86_REPEAT)
        return false;
    ck_assert_uint_eq(cpu.next_rip, RIP0);
    return true;
}

/* Calls until the instruction is done, running it again while it pauses,
 * as the run loop does (which clears end_block when the instruction
 * retires); *calls says how many calls it took. */
static enum x86_status exec_n(const struct x86_insn *i, unsigned long *calls)
{
    enum x86_status st;
    unsigned long n = 0;
    for (;;) {
        st = exec1(i);
        n++;
        ck_assert_uint_eq(cpu.rip, RIP0);
        if (!paused(st))
            break;
        ck_assert(i->rep != 0);
    }
    if (st == X86_OK) {
        ck_assert_uint_eq(cpu.next_rip, RIP0 + i->len);
        cpu.end_block = false;
    }
    if (calls)
        *calls = n;
    return st;
}

static enum x86_status exec(const struct x86_insn *i)
{
    return exec_n(i, NULL);
}

static uint32_t arith(void)
{
    return (uint32_t)(x86_get_flags(&cpu) & F_ARITH);
}

static void put(uint64_t off, unsigned size, uint64_t v)
{
    memcpy(mem + off, &v, size);
}

static uint64_t get(uint64_t off, unsigned size)
{
    uint64_t v = 0;
    memcpy(&v, mem + off, size);
    return v;
}

static void fill_pattern(uint64_t off, uint64_t len, uint8_t seed)
{
    for (uint64_t k = 0; k < len; k++)
        mem[off + k] = (uint8_t)(seed + k * 7 + (k >> 8));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static const unsigned sizes[4] = { 1, 2, 4, 8 };

/* ---- movs ------------------------------------------------------------------------ */

START_TEST(movs_single_every_size_and_direction)
{
    for (unsigned k = 0; k < 4; k++) {
        for (int df = 0; df < 2; df++) {
            unsigned size = sizes[k];
            reset(_i);
            fill_pattern(0x100, 16, 0x40);
            cpu.regs[R_SI] = 0x100;
            cpu.regs[R_DI] = 0x2ffc; /* a word or more crosses into the next page */
            cpu.regs[R_CX] = 0x55;
            cpu.flags |= df ? F_DF : 0;
            struct x86_insn i = sinsn(op_movs, size, 8, 0);
            ck_assert_int_eq(exec(&i), X86_OK);
            ck_assert_mem_eq(mem + 0x2ffc, mem + 0x100, size);
            ck_assert_uint_eq(get(0x2ffc + size, 1), 0);
            int64_t step = df ? -(int64_t)size : (int64_t)size;
            ck_assert_uint_eq(cpu.regs[R_SI], 0x100 + step);
            ck_assert_uint_eq(cpu.regs[R_DI], 0x2ffc + step);
            ck_assert_uint_eq(cpu.regs[R_CX], 0x55);
        }
    }
}
END_TEST

START_TEST(rep_movs_counts)
{
    for (unsigned k = 0; k < 4; k++) {
        unsigned size = sizes[k];
        for (int df = 0; df < 2; df++) {
            static const uint64_t counts[] = { 0, 1, 2, 777, 3000 };
            for (unsigned n = 0; n < sizeof counts / sizeof counts[0]; n++) {
                uint64_t count = counts[n];
                reset(_i);
                fill_pattern(0x0, 0x8000, (uint8_t)(size + n));
                uint8_t before[MEM_SIZE];
                memcpy(before, mem, MEM_SIZE);
                /* DF=1 starts at the last element of the same areas. */
                uint64_t span = count ? (count - 1) * size : 0;
                uint64_t src = 0x123 + (df ? span : 0), dst = 0x8765 + (df ? span : 0);
                cpu.regs[R_SI] = src;
                cpu.regs[R_DI] = dst;
                cpu.regs[R_CX] = count;
                cpu.flags |= df ? F_DF : 0;
                cpu.flags |= F_CF | F_ZF;
                struct x86_insn i = sinsn(op_movs, size, 8, 0xf3);
                ck_assert_int_eq(exec(&i), X86_OK);
                memcpy(before + 0x8765, before + 0x123, count * size);
                ck_assert_mem_eq(mem, before, MEM_SIZE);
                int64_t moved = (int64_t)(count * size) * (df ? -1 : 1);
                ck_assert_uint_eq(cpu.regs[R_SI], src + moved);
                ck_assert_uint_eq(cpu.regs[R_DI], dst + moved);
                ck_assert_uint_eq(cpu.regs[R_CX], 0);
                ck_assert_uint_eq(arith(), F_CF | F_ZF); /* movs leaves flags alone */
                if (_i == TLB_ALL && size == 1) /* the fast path did it all */
                    ck_assert_uint_eq(slow_loads + slow_stores, 0);
            }
        }
    }
}
END_TEST

START_TEST(rep_movs_overlap)
{
    /* Forward, destination one byte ahead: the first byte spreads, as the
     * CPU copies element by element. */
    reset(_i);
    fill_pattern(0x1000, 0x2000, 1);
    uint8_t first = mem[0x1000];
    cpu.regs[R_SI] = 0x1000;
    cpu.regs[R_DI] = 0x1001;
    cpu.regs[R_CX] = 0x1800; /* crosses pages */
    struct x86_insn i = sinsn(op_movs, 1, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    for (unsigned k = 0; k <= 0x1800; k++)
        ck_assert_uint_eq(mem[0x1000 + k], first);

    /* Forward, words, destination three bytes ahead: period-3 pattern. */
    reset(_i);
    fill_pattern(0x1000, 0x100, 9);
    uint8_t ref[0x100];
    memcpy(ref, mem + 0x1000, sizeof ref);
    for (unsigned e = 0; e < 40; e++) {
        uint16_t w;
        memcpy(&w, ref + 2 * e, 2);
        memcpy(ref + 3 + 2 * e, &w, 2);
    }
    cpu.regs[R_SI] = 0x1000;
    cpu.regs[R_DI] = 0x1003;
    cpu.regs[R_CX] = 40;
    i = sinsn(op_movs, 2, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_mem_eq(mem + 0x1000, ref, sizeof ref);

    /* Backward, destination one byte below: the last byte spreads down. */
    reset(_i);
    fill_pattern(0x2f00, 0x400, 3);
    uint8_t last = mem[0x3200];
    cpu.regs[R_SI] = 0x3200;
    cpu.regs[R_DI] = 0x31ff;
    cpu.regs[R_CX] = 0x300;
    cpu.flags |= F_DF;
    i = sinsn(op_movs, 1, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    for (unsigned k = 0; k <= 0x300; k++)
        ck_assert_uint_eq(mem[0x3200 - k], last);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x3200 - 0x300);

    /* Forward with the destination behind the source: a plain shift. */
    reset(_i);
    fill_pattern(0x5000, 0x2000, 5);
    uint8_t shifted[0x1ff8];
    memcpy(shifted, mem + 0x5008, sizeof shifted);
    cpu.regs[R_SI] = 0x5008;
    cpu.regs[R_DI] = 0x5000;
    cpu.regs[R_CX] = sizeof shifted / 8;
    i = sinsn(op_movs, 8, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_mem_eq(mem + 0x5000, shifted, sizeof shifted);
}
END_TEST

/* Two linear pages over the same memory: overlap is a matter of host
 * addresses, not of linear ones. */
START_TEST(rep_movs_aliased_pages)
{
    reset(_i);
    tlb_map(0x9000, 0x8000);
    for (unsigned k = 0; k < 0x100; k++)
        mem[0x8000 + k] = (uint8_t)(k + 1);
    cpu.regs[R_SI] = 0x8000;
    cpu.regs[R_DI] = 0x9001; /* = memory 0x8001 */
    cpu.regs[R_CX] = 0x80;
    struct x86_insn i = sinsn(op_movs, 1, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    for (unsigned k = 0; k <= 0x80; k++)
        ck_assert_uint_eq(mem[0x8000 + k], 1);
    ck_assert_uint_eq(mem[0x8081], 0x82);
}
END_TEST

/* ---- address sizes -------------------------------------------------------------- */

START_TEST(address_size_16_wraps_low_word)
{
    reset(_i);
    mode32(true);
    mem[0xfffe] = 0xa1;
    mem[0xffff] = 0xa2;
    mem[0x0000] = 0xa3;
    mem[0x0001] = 0xa4;
    cpu.regs[R_SI] = 0xdeadbeef0000fffeull;
    cpu.regs[R_DI] = 0x1234567800008000ull;
    cpu.regs[R_CX] = 0x7777777700010004ull; /* CX = 4, the rest stays */
    struct x86_insn i = sinsn(op_movs, 1, 2, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(get(0x8000, 4), 0xa4a3a2a1);
    ck_assert_uint_eq(cpu.regs[R_SI], 0xdeadbeef00000002ull);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x1234567800008004ull);
    ck_assert_uint_eq(cpu.regs[R_CX], 0x7777777700010000ull);

    /* Downward through zero. */
    cpu.regs[R_DI] = 0xffff000000000001ull;
    cpu.regs[R_CX] = 3;
    cpu.regs[R_AX] = 0x5a;
    cpu.flags |= F_DF;
    i = sinsn(op_stos, 1, 2, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(mem[0x0001], 0x5a);
    ck_assert_uint_eq(mem[0x0000], 0x5a);
    ck_assert_uint_eq(mem[0xffff], 0x5a);
    ck_assert_uint_eq(mem[0xfffe], 0xa1);
    ck_assert_uint_eq(cpu.regs[R_DI], 0xffff00000000fffeull);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);

    /* A word at offset 0xffff does not wrap inside the element: it is the
     * segment's business (here: the byte past 64 KiB, a page fault). */
    cpu.flags &= ~(uint64_t)F_DF;
    cpu.regs[R_SI] = 0xffff;
    i = sinsn(op_lods, 2, 2, 0);
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_PF);
    ck_assert_uint_eq(cpu.regs[R_SI], 0xffff);
}
END_TEST

START_TEST(address_size_32_zero_extends)
{
    reset(_i);
    put(0x100, 4, 0xcafef00d);
    cpu.regs[R_SI] = 0xffffffff00000100ull;
    cpu.regs[R_DI] = 0x8000000000000200ull;
    cpu.regs[R_CX] = 0xabcdef0000000001ull;
    struct x86_insn i = sinsn(op_movs, 4, 4, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(get(0x200, 4), 0xcafef00d);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x104);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x204);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);

    /* rep with ECX = 0: nothing moves, but the CPU writes back RCX (zero
     * upper half), and movs RSI and RDI, stos RDI (measured on the CPU). */
    for (unsigned k = 0; k < 5; k++) {
        static x86_handler const fns[5] = { op_movs, op_cmps, op_stos, op_lods, op_scas };
        cpu.regs[R_SI] = 0xabababab00000100ull;
        cpu.regs[R_DI] = 0xcdcdcdcd00000200ull;
        cpu.regs[R_CX] = 0xd0203aa900000000ull;
        i = sinsn(fns[k], 8, 4, k == 1 || k == 4 ? 0xf2 : 0xf3);
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 0);
        bool si = fns[k] == op_movs, di = si || fns[k] == op_stos;
        ck_assert_uint_eq(cpu.regs[R_SI], si ? 0x100 : 0xabababab00000100ull);
        ck_assert_uint_eq(cpu.regs[R_DI], di ? 0x200 : 0xcdcdcdcd00000200ull);
    }
    cpu.regs[R_DX] = 0x80;
    cpu.regs[R_CX] = 0xd0203aa900000000ull;
    i = sinsn(op_outs, 1, 4, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
    ck_assert_uint_eq(io_n, 0);
    /* 16-bit: CX is zero already, nothing else changes. */
    cpu.regs[R_CX] = 0xffffffffffff0000ull;
    i = sinsn(op_stos, 1, 2, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_CX], 0xffffffffffff0000ull);

    /* Without rep, rCX is not touched but SI/DI are still written as 32
     * bits. */
    cpu.regs[R_SI] = 0x1111111100000100ull;
    cpu.regs[R_CX] = 0xabcdef0000000001ull;
    i = sinsn(op_lods, 1, 4, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x101);
    ck_assert_uint_eq(cpu.regs[R_CX], 0xabcdef0000000001ull);

    /* 32-bit wrap in 32-bit mode: the offset wraps, the linear address
     * follows. */
    reset(_i);
    mode32(true);
    cpu.regs[R_DI] = 0x0;
    cpu.regs[R_CX] = 2;
    cpu.regs[R_AX] = 0x77;
    cpu.flags |= F_DF;
    i = sinsn(op_stos, 1, 4, 0xf3);
    /* The second element is at 0xffffffff, outside memory: a fault with
     * one element done. */
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(mem[0], 0x77);
    ck_assert_uint_eq(cpu.regs[R_DI], 0xffffffffull);
    ck_assert_uint_eq(cpu.regs[R_CX], 1);
}
END_TEST

START_TEST(address_size_64)
{
    reset(_i);
    cpu.regs[R_DI] = 0x10;
    cpu.regs[R_CX] = 0x100000002ull; /* all 64 bits count */
    cpu.regs[R_AX] = 0x1122334455667788ull;
    struct x86_insn i = sinsn(op_stos, 8, 8, 0xf3);
    /* Runs until it leaves memory, 64 KiB later: a #PF, with rCX still
     * describing the rest. */
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_PF);
    uint64_t done = (MEM_SIZE - 0x10) / 8;
    ck_assert_uint_eq(cpu.regs[R_CX], 0x100000002ull - done);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x10 + done * 8);
    ck_assert_uint_eq(get(MEM_SIZE - 8, 8), 0x1122334455667788ull);

    /* Non-canonical: #GP(0), nothing done. */
    reset(_i);
    cpu.regs[R_SI] = 0x0000800000000000ull;
    cpu.regs[R_DI] = 0x100;
    cpu.regs[R_CX] = 5;
    i = sinsn(op_movs, 1, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_GP);
    ck_assert(cpu.exc.has_error);
    ck_assert_uint_eq(cpu.exc.error, 0);
    ck_assert_uint_eq(cpu.regs[R_CX], 5);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x0000800000000000ull);
}
END_TEST

/* ---- segments --------------------------------------------------------------------- */

START_TEST(segment_override_source)
{
    /* 64-bit mode: FS/GS bases apply, ES's does not. */
    reset(_i);
    put(0x3010, 8, 0x0123456789abcdefull);
    put(0x0010, 8, 0xffffffffffffffffull);
    cpu.seg[S_FS].base = 0x3000;
    cpu.seg[S_ES].base = 0x5000;
    cpu.regs[R_SI] = 0x10;
    cpu.regs[R_DI] = 0x20;
    cpu.regs[R_CX] = 1;
    struct x86_insn i = sinsn(op_movs, 8, 8, 0xf3);
    i.seg = S_FS;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(get(0x20, 8), 0x0123456789abcdefull);
    ck_assert_uint_eq(get(0x5020, 8), 0);

    /* lods and outs take the override, cmps its first operand. */
    cpu.regs[R_SI] = 0x10;
    i = sinsn(op_lods, 8, 8, 0);
    i.seg = S_GS;
    cpu.seg[S_GS].base = 0x3000;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_AX], 0x0123456789abcdefull);

    cpu.regs[R_SI] = 0x10;
    cpu.regs[R_DI] = 0x20;
    i = sinsn(op_cmps, 8, 8, 0);
    i.seg = S_FS;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(arith() & F_ZF, F_ZF);

    cpu.regs[R_SI] = 0x10;
    cpu.regs[R_DX] = 0x3f8;
    i = sinsn(op_outs, 1, 8, 0);
    i.seg = S_FS;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_n, 1);
    ck_assert_uint_eq(io_log[0].val, 0xef);

    /* 32-bit mode with based segments: source DS or the override, the
     * destination ES always; limits checked. */
    reset(_i);
    mode32(false);
    cpu.seg[S_DS].base = 0x1000;
    cpu.seg[S_ES].base = 0x2000;
    cpu.seg[S_ES].limit = 0xfff;
    cpu.seg[S_SS].base = 0x4000;
    mem[0x1005] = 0xd5;
    mem[0x4005] = 0x55;
    cpu.regs[R_SI] = 5;
    cpu.regs[R_DI] = 7;
    i = sinsn(op_movs, 1, 4, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(mem[0x2007], 0xd5);
    cpu.regs[R_SI] = 5;
    i.seg = S_SS;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(mem[0x2008], 0x55);

    /* A rep that runs off the end of ES: #GP at the first element past the
     * limit, the others done. */
    cpu.regs[R_SI] = 0;
    cpu.regs[R_DI] = 0xff0;
    cpu.regs[R_CX] = 0x20;
    i = sinsn(op_movs, 1, 4, 0xf3);
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_GP);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x1000);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x10);
    ck_assert_uint_eq(cpu.regs[R_CX], 0x10);
    ck_assert_mem_eq(mem + 0x2ff0, mem + 0x1000, 0x10);
}
END_TEST

/* ---- stos, lods ----------------------------------------------------------------- */

START_TEST(stos_every_size)
{
    for (unsigned k = 0; k < 4; k++) {
        for (int df = 0; df < 2; df++) {
            unsigned size = sizes[k];
            reset(_i);
            cpu.regs[R_AX] = 0x8877665544332211ull;
            uint64_t lo = 0x1ff0, start = df ? lo + (0x1000 - 1) * size : lo;
            cpu.regs[R_DI] = start;
            cpu.regs[R_CX] = 0x1000;
            cpu.flags |= df ? F_DF : 0;
            struct x86_insn i = sinsn(op_stos, size, 8, 0xf3);
            ck_assert_int_eq(exec(&i), X86_OK);
            for (uint64_t e = 0; e < 0x1000; e++)
                ck_assert_uint_eq(get(lo + e * size, size), 0x8877665544332211ull & x86_mask(size));
            ck_assert_uint_eq(get(lo - 1, 1), 0);
            ck_assert_uint_eq(get(lo + 0x1000 * size, 1), 0);
            ck_assert_uint_eq(cpu.regs[R_DI], df ? lo - size : lo + 0x1000 * size);
            ck_assert_uint_eq(cpu.regs[R_CX], 0);
        }
    }
}
END_TEST

START_TEST(lods_every_size)
{
    reset(_i);
    put(0x800, 8, 0xf1f2f3f4f5f6f7f8ull);
    for (unsigned k = 0; k < 4; k++) {
        unsigned size = sizes[k];
        cpu.regs[R_AX] = 0xaaaaaaaaaaaaaaaaull;
        cpu.regs[R_SI] = 0x800;
        struct x86_insn i = sinsn(op_lods, size, 8, 0);
        ck_assert_int_eq(exec(&i), X86_OK);
        uint64_t want = size == 1 ? 0xaaaaaaaaaaaaaaf8ull
                      : size == 2 ? 0xaaaaaaaaaaaaf7f8ull
                      : size == 4 ? 0x00000000f5f6f7f8ull /* zero-extended */
                                  : 0xf1f2f3f4f5f6f7f8ull;
        ck_assert_uint_eq(cpu.regs[R_AX], want);
        ck_assert_uint_eq(cpu.regs[R_SI], 0x800 + size);
    }
    /* rep lods: the last element stays; backwards. */
    for (unsigned e = 0; e < 10; e++)
        put(0x900 + 2 * e, 2, 0x100 + e);
    cpu.regs[R_SI] = 0x900 + 18;
    cpu.regs[R_CX] = 10;
    cpu.flags |= F_DF;
    struct x86_insn i = sinsn(op_lods, 2, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_AX] & 0xffff, 0x100);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x900 - 2);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
}
END_TEST

/* ---- cmps, scas ------------------------------------------------------------------- */

START_TEST(cmps_scas_termination)
{
    for (unsigned k = 0; k < 4; k++) {
        unsigned size = sizes[k];
        reset(_i);
        /* Two arrays equal for 5 elements, different at 5, equal again. */
        for (unsigned e = 0; e < 12; e++) {
            put(0x1000 + e * size, size, 0x0101010101010101ull * (e + 1));
            put(0x3000 + e * size, size, 0x0101010101010101ull * (e + 1 + (e == 5)));
        }
        /* repe: stops at the mismatch, ZF=0, CX counts what is left. */
        cpu.regs[R_SI] = 0x1000;
        cpu.regs[R_DI] = 0x3000;
        cpu.regs[R_CX] = 12;
        struct x86_insn i = sinsn(op_cmps, size, 8, 0xf3);
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 6);
        ck_assert_uint_eq(cpu.regs[R_SI], 0x1000 + 6 * size);
        ck_assert_uint_eq(cpu.regs[R_DI], 0x3000 + 6 * size);
        ck_assert_uint_eq(arith() & F_ZF, 0);
        ck_assert_uint_eq(arith() & F_CF, F_CF); /* 6 - 7 borrows */
        /* repe running out: ZF=1 from the last comparison. */
        cpu.regs[R_SI] = 0x1000;
        cpu.regs[R_DI] = 0x3000;
        cpu.regs[R_CX] = 5;
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 0);
        ck_assert_uint_eq(arith(), F_ZF | F_PF);
        /* repne: stops at the first match (the first element). */
        cpu.regs[R_SI] = 0x1000;
        cpu.regs[R_DI] = 0x3000;
        cpu.regs[R_CX] = 12;
        i = sinsn(op_cmps, size, 8, 0xf2);
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 11);
        ck_assert_uint_eq(arith() & F_ZF, F_ZF);
        /* repne from the mismatch on: runs one and stops at the next match. */
        cpu.regs[R_SI] = 0x1000 + 5 * size;
        cpu.regs[R_DI] = 0x3000 + 5 * size;
        cpu.regs[R_CX] = 7;
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 5);
        ck_assert_uint_eq(cpu.regs[R_SI], 0x1000 + 7 * size);
        /* repne never matching: runs out with ZF=0. */
        cpu.regs[R_SI] = 0x1000 + 5 * size;
        cpu.regs[R_DI] = 0x3000 + 5 * size;
        cpu.regs[R_CX] = 1;
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 0);
        ck_assert_uint_eq(arith() & F_ZF, 0);

        /* scas: repne finds the value, repe skips a run of it. */
        uint64_t v6 = 0x0606060606060606ull & x86_mask(size);
        cpu.regs[R_AX] = 0xdead000000000000ull | v6;
        if (size == 8)
            cpu.regs[R_AX] = v6;
        cpu.regs[R_DI] = 0x1000;
        cpu.regs[R_CX] = 100;
        i = sinsn(op_scas, size, 8, 0xf2);
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 94);
        ck_assert_uint_eq(cpu.regs[R_DI], 0x1000 + 6 * size);
        ck_assert_uint_eq(arith() & F_ZF, F_ZF);
        for (unsigned e = 0; e < 9; e++)
            put(0x5000 + e * size, size, e < 7 ? v6 : 0);
        cpu.regs[R_DI] = 0x5000;
        cpu.regs[R_CX] = 9;
        i = sinsn(op_scas, size, 8, 0xf3);
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(cpu.regs[R_CX], 1);
        ck_assert_uint_eq(cpu.regs[R_DI], 0x5000 + 8 * size);
        ck_assert_uint_eq(arith() & F_ZF, 0);

        /* Count zero: nothing, flags untouched. */
        cpu.flags = 0x2 | F_OF | F_SF;
        cpu.lazy.op = CC_EFLAGS;
        cpu.regs[R_CX] = 0;
        cpu.regs[R_DI] = 0x5000;
        ck_assert_int_eq(exec(&i), X86_OK);
        ck_assert_uint_eq(arith(), F_OF | F_SF);
        ck_assert_uint_eq(cpu.regs[R_DI], 0x5000);
    }
}
END_TEST

START_TEST(cmps_scas_single_flags)
{
    reset(_i);
    /* cmps compares [rSI] with [rDI], in that order. */
    put(0x10, 4, 1);
    put(0x20, 4, 0x80000000u);
    cpu.regs[R_SI] = 0x10;
    cpu.regs[R_DI] = 0x20;
    cpu.regs[R_CX] = 0; /* no prefix: rCX is irrelevant */
    struct x86_insn i = sinsn(op_cmps, 4, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    /* 1 - 0x80000000 = 0x80000001: CF, SF, OF. */
    ck_assert_uint_eq(arith(), F_CF | F_SF | F_OF);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x14);
    ck_assert_uint_eq(cpu.lazy.op, CC_SUB);
    ck_assert_uint_eq(cpu.lazy.size, 4);
    /* scas compares rAX with [rDI]. */
    put(0x30, 2, 0x10);
    cpu.regs[R_AX] = 0xffff0008;
    cpu.regs[R_DI] = 0x30;
    i = sinsn(op_scas, 2, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    /* 8 - 0x10 = 0xfff8: CF, SF (no AF: the low nibble did not borrow;
     * no PF: 0xf8 has five bits). */
    ck_assert_uint_eq(arith(), F_CF | F_SF);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x32);
}
END_TEST

/* A fault in the middle of repe cmps: the registers and the flags are those
 * of the last completed iteration. */
START_TEST(fault_mid_rep)
{
    reset(_i);
    memset(mem + 0xff00, 0x33, 0x100);
    memset(mem + 0x100, 0x33, 0x100);
    cpu.regs[R_SI] = 0xfff0;
    cpu.regs[R_DI] = 0x1f0;
    cpu.regs[R_CX] = 40;
    /* repe cmpsw: 8 equal words, then the 9th is past the end of memory. */
    struct x86_insn i = sinsn(op_cmps, 2, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_PF);
    ck_assert_uint_eq(cpu.exc.addr, MEM_SIZE);
    ck_assert_uint_eq(cpu.regs[R_SI], MEM_SIZE);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x200);
    ck_assert_uint_eq(cpu.regs[R_CX], 32);
    ck_assert_uint_eq(arith(), F_ZF | F_PF);

    /* Re-executing continues from the registers; here, with SI and DI
     * pointed at equal data, it finishes. */
    cpu.regs[R_SI] = 0xff00;
    cpu.regs[R_DI] = 0x100;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);

    /* A store fault in movs: nothing of the faulting element is done. */
    reset(_i);
    fill_pattern(0x100, 0x20, 1);
    cpu.regs[R_SI] = 0x100;
    cpu.regs[R_DI] = MEM_SIZE - 3;
    cpu.regs[R_CX] = 10;
    i = sinsn(op_movs, 1, 8, 0xf3);
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_PF);
    ck_assert_uint_eq(cpu.regs[R_CX], 7);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x103);
    ck_assert_uint_eq(cpu.regs[R_DI], MEM_SIZE);
    ck_assert_mem_eq(mem + MEM_SIZE - 3, mem + 0x100, 3);

    /* Without rep: a fault changes nothing. */
    cpu.regs[R_SI] = 0x100;
    cpu.regs[R_DI] = MEM_SIZE - 1;
    i = sinsn(op_movs, 2, 8, 0);
    ck_assert_int_eq(exec(&i), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x100);
    ck_assert_uint_eq(cpu.regs[R_DI], MEM_SIZE - 1);
}
END_TEST

/* ---- iteration bound and re-execution -------------------------------------------- */

START_TEST(rep_bound_and_reexecution)
{
    reset(_i);
    cpu.regs[R_DI] = 0;
    cpu.regs[R_CX] = 40000;
    cpu.regs[R_AX] = 0xee;
    struct x86_insn i = sinsn(op_stos, 1, 8, 0xf3);
    /* The first call stops at the bound and asks to run again. */
    ck_assert(paused(exec1(&i)));
    ck_assert_uint_eq(cpu.regs[R_CX], 40000 - REP_CHUNK);
    ck_assert_uint_eq(cpu.regs[R_DI], REP_CHUNK);
    ck_assert_uint_eq(mem[REP_CHUNK - 1], 0xee);
    ck_assert_uint_eq(mem[REP_CHUNK], 0);
    unsigned long calls;
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 2);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
    ck_assert_uint_eq(cpu.regs[R_DI], 40000);
    ck_assert_uint_eq(mem[39999], 0xee);
    ck_assert_uint_eq(mem[40000], 0);

    /* Exactly the bound: one call. */
    cpu.regs[R_DI] = 0;
    cpu.regs[R_CX] = REP_CHUNK;
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 1);

    /* movs and cmps the same way; cmps stops early without re-execution. */
    cpu.regs[R_SI] = 0;
    cpu.regs[R_DI] = 0x8000;
    cpu.regs[R_CX] = 0x8000;
    i = sinsn(op_movs, 1, 8, 0xf3);
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 2);
    ck_assert_mem_eq(mem, mem + 0x8000, 0x8000);
    cpu.regs[R_SI] = 0;
    cpu.regs[R_DI] = 0x8000;
    cpu.regs[R_CX] = 0x8000;
    i = sinsn(op_cmps, 1, 8, 0xf3);
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 2);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
    mem[0x8000 + REP_CHUNK + 5] ^= 1;
    cpu.regs[R_SI] = 0;
    cpu.regs[R_DI] = 0x8000;
    cpu.regs[R_CX] = 0x8000;
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 2);
    ck_assert_uint_eq(cpu.regs[R_CX], 0x8000 - REP_CHUNK - 6);
    mem[0x8000 + 5] ^= 1;
    cpu.regs[R_SI] = 0;
    cpu.regs[R_DI] = 0x8000;
    cpu.regs[R_CX] = 0x8000;
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 1);
    ck_assert_uint_eq(cpu.regs[R_CX], 0x8000 - 6);

    /* scas with repne over a long run without a match. */
    cpu.regs[R_AX] = 0x99;
    cpu.regs[R_DI] = 0;
    cpu.regs[R_CX] = 0xffff;
    i = sinsn(op_scas, 1, 8, 0xf2);
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 4);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);

    /* ins/outs: a smaller bound (each element reaches a device). */
    cpu.regs[R_SI] = 0;
    cpu.regs[R_DX] = 0x80;
    cpu.regs[R_CX] = 3000;
    i = sinsn(op_outs, 1, 8, 0xf3);
    ck_assert(paused(exec1(&i)));
    ck_assert_uint_eq(io_n, REP_CHUNK_IO);
    ck_assert_uint_eq(cpu.regs[R_CX], 3000 - REP_CHUNK_IO);
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 2);
    ck_assert_uint_eq(io_n, 3000);
    for (unsigned k = 0; k < 3000; k++)
        ck_assert_uint_eq(io_log[k].val, mem[k]);
    io_n = 0;
    cpu.regs[R_DI] = 0x100;
    cpu.regs[R_CX] = 2048;
    i = sinsn(op_ins, 2, 8, 0xf3);
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 2);
    ck_assert_uint_eq(get(0x100 + 2 * 2047, 2), io_read_value(2047) & 0xffff);

    /* TF: one iteration per call (the CPU traps after each). */
    cpu.flags |= F_TF;
    cpu.regs[R_DI] = 0;
    cpu.regs[R_CX] = 5;
    cpu.regs[R_AX] = 0x11;
    i = sinsn(op_stos, 1, 8, 0xf3);
    for (unsigned k = 1; k < 5; k++) {
        ck_assert(paused(exec1(&i)));
        ck_assert_uint_eq(cpu.regs[R_CX], 5 - k);
        ck_assert_uint_eq(cpu.regs[R_DI], k);
    }
    ck_assert_int_eq(exec1(&i), X86_OK);
    ck_assert_uint_eq(cpu.next_rip, RIP0 + i.len); /* done: retires */
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
    /* cmps stopping at its last allowed iteration is done, not partial. */
    mem[0x40] = 1;
    mem[0x50] = 2;
    cpu.regs[R_SI] = 0x40;
    cpu.regs[R_DI] = 0x50;
    cpu.regs[R_CX] = 9;
    i = sinsn(op_cmps, 1, 8, 0xf3);
    ck_assert_int_eq(exec1(&i), X86_OK);
    ck_assert_uint_eq(cpu.next_rip, RIP0 + i.len);
    ck_assert_uint_eq(cpu.regs[R_CX], 8);
}
END_TEST

/* A store that invalidates translated code (or a device callback that asks
 * the vCPU to stop) sets end_block: the rep pauses after that iteration,
 * once, and carries on when run again. */
START_TEST(rep_pauses_on_end_block)
{
    reset(_i);
    code_page_on = true;
    vx_tlb_flush_page(&cpu.tlb, CODE_PAGE);
    vx_tlb_fill(cpu.tlb.load, CODE_PAGE, mem + CODE_PAGE, CODE_PAGE);
    cpu.regs[R_DI] = CODE_PAGE - 0x10;
    cpu.regs[R_CX] = 0x100;
    cpu.regs[R_AX] = 0xcc;
    struct x86_insn i = sinsn(op_stos, 1, 8, 0xf3);
    ck_assert(paused(exec1(&i)));
    ck_assert(cpu.end_block);
    ck_assert_uint_eq(cpu.regs[R_CX], 0x100 - 0x11);
    ck_assert_uint_eq(cpu.regs[R_DI], CODE_PAGE + 1);
    ck_assert_uint_eq(mem[CODE_PAGE], 0xcc);
    ck_assert_uint_eq(mem[CODE_PAGE + 1], 0);
    /* Run again with the flag still set (not retired yet): no new pause. */
    unsigned long calls;
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(calls, 1);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
    ck_assert_uint_eq(mem[CODE_PAGE - 0x10 + 0xff], 0xcc);

    /* The same through a port callback asking to stop, in rep outs. */
    reset(_i);
    cpu.regs[R_SI] = 0x100;
    cpu.regs[R_DX] = 0x80;
    cpu.regs[R_CX] = 10;
    i = sinsn(op_outs, 1, 8, 0xf3);
    io_stop_at = 3;
    ck_assert(paused(exec1(&i)));
    ck_assert_uint_eq(io_n, 4);
    ck_assert_uint_eq(cpu.regs[R_CX], 6);
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(io_n, 10);
    ck_assert_uint_eq(calls, 1);

    /* A port write nobody claims (exit_after): rep outs pauses right after
     * that element, so the exit shows it done and the rest to do. */
    reset(_i);
    fill_pattern(0x100, 0x10, 0x61);
    cpu.regs[R_SI] = 0x100;
    cpu.regs[R_DX] = 0x3f8;
    cpu.regs[R_CX] = 10;
    io_unclaimed_write_at = 3;
    i = sinsn(op_outs, 1, 8, 0xf3);
    ck_assert(paused(exec1(&i)));
    ck_assert(cpu.exit_after);
    ck_assert_uint_eq(io_n, 4);
    ck_assert_uint_eq(cpu.io_value, mem[0x103]);
    ck_assert_uint_eq(cpu.regs[R_CX], 6);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x104);
    /* Run again before the exit is taken: the next write stops before
     * itself and nothing of that element is done. */
    io_unclaimed_write_at = 4;
    ck_assert_int_eq(exec1(&i), X86_EXIT);
    ck_assert_uint_eq(cpu.regs[R_CX], 6);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x104);
    /* The application took the exit; the instruction carries on. */
    cpu.exit_after = false;
    io_unclaimed_write_at = -1;
    ck_assert_int_eq(exec_n(&i, &calls), X86_OK);
    ck_assert_uint_eq(io_n, 10);
    for (unsigned e = 0; e < 10; e++)
        ck_assert_uint_eq(io_log[e].val, mem[0x100 + e]);
}
END_TEST

/* ---- port I/O ----------------------------------------------------------------------- */

START_TEST(in_out_basic)
{
    reset(_i);
    /* in al, imm8: merges. */
    cpu.regs[R_AX] = 0x1111111111111111ull;
    struct x86_insn i = insn(op_in, 0xe4, 1, 8, 0);
    i.imm = 0x60;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_log[0].port, 0x60);
    ck_assert_uint_eq(io_log[0].size, 1);
    ck_assert(!io_log[0].write);
    ck_assert_uint_eq(cpu.regs[R_AX], 0x1111111111111100ull | (io_read_value(0) & 0xff));
    /* in ax, dx */
    cpu.regs[R_DX] = 0xffff123456780cf8ull;
    i = insn(op_in, 0xed, 2, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_log[1].port, 0xcf8);
    ck_assert_uint_eq(cpu.regs[R_AX] & 0xffff, io_read_value(1) & 0xffff);
    ck_assert_uint_eq(cpu.regs[R_AX] >> 16, 0x111111111111ull);
    /* in eax, dx: zero-extends into rax; REX.W does not make it 64 bits. */
    cpu.regs[R_DX] = 0xcfc;
    i = insn(op_in, 0xed, 8, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_log[2].size, 4);
    ck_assert_uint_eq(cpu.regs[R_AX], io_read_value(2) & 0xffffffff);
    /* out imm8, al / out dx, ax / out dx, eax */
    cpu.regs[R_AX] = 0x8899aabbccddeeffull;
    i = insn(op_out, 0xe6, 1, 8, 0);
    i.imm = 0xf0;
    ck_assert_int_eq(exec(&i), X86_OK);
    cpu.regs[R_DX] = 0x3f8;
    i = insn(op_out, 0xef, 2, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    i = insn(op_out, 0xef, 4, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_n, 6);
    ck_assert_uint_eq(io_log[3].port, 0xf0);
    ck_assert(io_log[3].write);
    ck_assert_uint_eq(io_log[3].val, 0xff);
    ck_assert_uint_eq(io_log[4].port, 0x3f8);
    ck_assert_uint_eq(io_log[4].val, 0xeeff);
    ck_assert_uint_eq(io_log[5].val, 0xccddeeff);
    ck_assert_uint_eq(cpu.regs[R_AX], 0x8899aabbccddeeffull);
}
END_TEST

START_TEST(ins_outs_basic)
{
    for (unsigned k = 0; k < 3; k++) {
        unsigned size = sizes[k];
        for (int df = 0; df < 2; df++) {
            reset(_i);
            fill_pattern(0x2000, 0x100, (uint8_t)k);
            cpu.flags |= df ? F_DF : 0;
            cpu.regs[R_DX] = 0xabcd0000000001f0ull;
            cpu.regs[R_SI] = 0x2040;
            cpu.regs[R_CX] = 6;
            struct x86_insn i = sinsn(op_outs, size, 8, 0xf3);
            ck_assert_int_eq(exec(&i), X86_OK);
            ck_assert_uint_eq(io_n, 6);
            for (unsigned e = 0; e < 6; e++) {
                uint64_t off = df ? 0x2040 - e * size : 0x2040 + e * size;
                ck_assert_uint_eq(io_log[e].port, 0x1f0);
                ck_assert_uint_eq(io_log[e].size, size);
                ck_assert(io_log[e].write);
                ck_assert_uint_eq(io_log[e].val, get(off, size));
            }
            ck_assert_uint_eq(cpu.regs[R_SI], df ? 0x2040 - 6 * size : 0x2040 + 6 * size);
            ck_assert_uint_eq(cpu.regs[R_CX], 0);

            io_n = 0;
            cpu.regs[R_DI] = 0x3040;
            cpu.regs[R_CX] = 5;
            i = sinsn(op_ins, size, 8, 0xf3);
            ck_assert_int_eq(exec(&i), X86_OK);
            ck_assert_uint_eq(io_n, 5);
            for (unsigned e = 0; e < 5; e++) {
                uint64_t off = df ? 0x3040 - e * size : 0x3040 + e * size;
                ck_assert(!io_log[e].write);
                ck_assert_uint_eq(get(off, size), io_read_value(e) & x86_mask(size));
            }
            ck_assert_uint_eq(cpu.regs[R_DI], df ? 0x3040 - 5 * size : 0x3040 + 5 * size);

            /* No rep: one element, rCX untouched. */
            io_n = 0;
            cpu.regs[R_CX] = 77;
            i = sinsn(op_ins, size, 8, 0);
            ck_assert_int_eq(exec(&i), X86_OK);
            ck_assert_uint_eq(io_n, 1);
            ck_assert_uint_eq(cpu.regs[R_CX], 77);

            /* rep with rCX = 0: no access. */
            io_n = 0;
            cpu.regs[R_CX] = 0;
            i = sinsn(op_outs, size, 8, 0xf3);
            ck_assert_int_eq(exec(&i), X86_OK);
            ck_assert_uint_eq(io_n, 0);
        }
    }
    /* insd with REX.W stays 32 bits wide. */
    reset(_i);
    cpu.regs[R_DX] = 0x10;
    cpu.regs[R_DI] = 0x100;
    struct x86_insn i = sinsn(op_ins, 8, 8, 0);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_log[0].size, 4);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x104);
    ck_assert_uint_eq(get(0x104, 1), 0);
    /* ins with a 16-bit address size wraps DI. */
    reset(_i);
    mode32(true);
    cpu.regs[R_DX] = 0x10;
    cpu.regs[R_DI] = 0x5555000000000000ull | 0xffff;
    cpu.regs[R_CX] = 2;
    i = sinsn(op_ins, 1, 2, 0xf3);
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(mem[0xffff], io_read_value(0) & 0xff);
    ck_assert_uint_eq(mem[0x0000], io_read_value(1) & 0xff);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x5555000000000001ull);
}
END_TEST

START_TEST(io_exit_mid_rep)
{
    /* rep insw, the 5th read goes to the application. */
    reset(_i);
    cpu.regs[R_DX] = 0x1f0;
    cpu.regs[R_DI] = 0x4000;
    cpu.regs[R_CX] = 10;
    io_exit_at = 4;
    struct x86_insn i = sinsn(op_ins, 2, 8, 0xf3);
    ck_assert_int_eq(exec1(&i), X86_EXIT);
    ck_assert_uint_eq(cpu.exit_reason, X86_EXIT_IO);
    ck_assert_uint_eq(cpu.io_addr, 0x1f0);
    ck_assert_uint_eq(cpu.io_size, 2);
    ck_assert(!cpu.io_write);
    /* The registers describe the 6 elements left; rip is at the insn. */
    ck_assert_uint_eq(cpu.rip, RIP0);
    ck_assert_uint_eq(cpu.regs[R_CX], 6);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x4008);
    ck_assert_uint_eq(get(0x4006, 2), io_read_value(3) & 0xffff);
    ck_assert_uint_eq(get(0x4008, 2), 0);
    /* The application answers; the instruction runs again and finishes. */
    cpu.io_answered = true;
    cpu.io_value = 0xbeef;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert(!cpu.io_answered);
    ck_assert_uint_eq(get(0x4008, 2), 0xbeef);
    ck_assert_uint_eq(get(0x400a, 2), io_read_value(5) & 0xffff);
    ck_assert_uint_eq(get(0x4012, 2), io_read_value(9) & 0xffff);
    ck_assert_uint_eq(cpu.regs[R_CX], 0);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x4014);
    ck_assert_uint_eq(io_n, 10);

    /* rep outsb, backwards, the 3rd write exits. */
    reset(_i);
    fill_pattern(0x500, 0x10, 0x20);
    cpu.flags |= F_DF;
    cpu.regs[R_DX] = 0x3f8;
    cpu.regs[R_SI] = 0x50f;
    cpu.regs[R_CX] = 8;
    io_exit_at = 2;
    i = sinsn(op_outs, 1, 8, 0xf3);
    ck_assert_int_eq(exec1(&i), X86_EXIT);
    ck_assert(cpu.io_write);
    ck_assert_uint_eq(cpu.io_value, mem[0x50d]);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x50d);
    ck_assert_uint_eq(cpu.regs[R_CX], 6);
    cpu.io_answered = true;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_n, 8);
    for (unsigned e = 0; e < 8; e++) {
        ck_assert_uint_eq(io_log[e].val, mem[0x50f - e]);
        ck_assert(io_log[e].answered == (e == 2));
    }
    ck_assert_uint_eq(cpu.regs[R_SI], 0x507);

    /* in/out: an exit changes nothing; the answer completes them. */
    reset(_i);
    cpu.regs[R_AX] = 0x123456789abcdef0ull;
    cpu.regs[R_DX] = 0x501;
    io_exit_at = 0;
    i = insn(op_in, 0xed, 4, 8, 0);
    ck_assert_int_eq(exec1(&i), X86_EXIT);
    ck_assert_uint_eq(cpu.regs[R_AX], 0x123456789abcdef0ull);
    cpu.io_answered = true;
    cpu.io_value = 0xfeedface;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(cpu.regs[R_AX], 0xfeedface);
    io_exit_at = 1;
    i = insn(op_out, 0xee, 1, 8, 0);
    ck_assert_int_eq(exec1(&i), X86_EXIT);
    ck_assert_uint_eq(cpu.io_value, 0xce);
    ck_assert(cpu.io_write);
    cpu.io_answered = true;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_n, 2);
}
END_TEST

/* ---- I/O permission ----------------------------------------------------------------- */

#define TSS 0xa000u
#define IOMAP 0x68u

/* Ring 3, IOPL 0, a TSS whose bitmap allows everything except `deny`. */
static void ring3(int tlb_mode)
{
    reset(tlb_mode);
    cpu.cpl = 3;
    cpu.tr = (vx_x86_segment){ .base = TSS, .limit = IOMAP + 0x2000, .type = 0xb,
                               .present = 1 };
    put(TSS + 0x66, 2, IOMAP);
    mem[TSS + IOMAP + 0x2000] = 0xff;
}

static void deny(unsigned port)
{
    mem[TSS + IOMAP + port / 8] |= (uint8_t)(1u << (port % 8));
}

static void expect_gp(enum x86_status st)
{
    ck_assert_int_eq(st, X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_GP);
    ck_assert(cpu.exc.has_error);
    ck_assert_uint_eq(cpu.exc.error, 0);
}

START_TEST(iopl_and_bitmap)
{
    ring3(_i);
    deny(0x64);
    deny(0x40);
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x60, 1), X86_OK);
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x60, 4), X86_OK);
    expect_gp(x86_io_allowed(&cpu, 0x64, 1));
    expect_gp(x86_io_allowed(&cpu, 0x63, 2)); /* a word over an allowed and a denied port */
    expect_gp(x86_io_allowed(&cpu, 0x61, 4));
    expect_gp(x86_io_allowed(&cpu, 0x3e, 4)); /* bits 0x3e..0x41 span two bitmap bytes */
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x3c, 4), X86_OK);
    ck_assert_int_eq(x86_io_allowed(&cpu, 0xffff, 1), X86_OK);
    expect_gp(x86_io_allowed(&cpu, 0xffff, 2)); /* port 0x10000: the 0xff byte */
    expect_gp(x86_io_allowed(&cpu, 0xfffe, 4));

    /* The instructions: #GP(0) and nothing changed. */
    cpu.regs[R_AX] = 0x4242;
    struct x86_insn i = insn(op_in, 0xe4, 1, 8, 0);
    i.imm = 0x64;
    expect_gp(exec(&i));
    i.imm = 0x60;
    ck_assert_int_eq(exec(&i), X86_OK);
    cpu.regs[R_DX] = 0x40;
    i = insn(op_out, 0xee, 1, 8, 0);
    expect_gp(exec(&i));
    ck_assert_uint_eq(io_n, 1);
    cpu.regs[R_DI] = 0x100;
    cpu.regs[R_SI] = 0x200;
    cpu.regs[R_CX] = 4;
    i = sinsn(op_ins, 1, 8, 0xf3);
    expect_gp(exec(&i));
    i = sinsn(op_outs, 2, 8, 0xf3);
    cpu.regs[R_DX] = 0x3f;
    expect_gp(exec(&i));
    ck_assert_uint_eq(cpu.regs[R_CX], 4);
    ck_assert_uint_eq(cpu.regs[R_DI], 0x100);
    ck_assert_uint_eq(cpu.regs[R_SI], 0x200);
    ck_assert_uint_eq(io_n, 1);
    /* Even with nothing to do, the permission is checked first. */
    cpu.regs[R_CX] = 0;
    expect_gp(exec(&i));
    cpu.regs[R_DX] = 0x3c;
    ck_assert_int_eq(exec(&i), X86_OK);
    cpu.regs[R_CX] = 3;
    ck_assert_int_eq(exec(&i), X86_OK);
    ck_assert_uint_eq(io_n, 4);

    /* IOPL 3: no bitmap at CPL 3. */
    cpu.flags |= F_IOPL;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x64, 1), X86_OK);
    /* ... except in virtual-8086 mode. */
    cpu.flags |= F_VM;
    expect_gp(x86_io_allowed(&cpu, 0x64, 1));
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x60, 1), X86_OK);
    /* CPL <= IOPL passes. */
    cpu.flags &= ~(uint64_t)(F_VM | F_IOPL);
    cpu.flags |= 2u << 12;
    cpu.cpl = 2;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x64, 1), X86_OK);
    cpu.cpl = 3;
    expect_gp(x86_io_allowed(&cpu, 0x64, 1));
    /* Real mode: no checks at all. */
    cpu.cr0 = 0;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x64, 1), X86_OK);
    cpu.cr0 = CR0_PE | CR0_PG;

    /* A bitmap cut short by the limit: ports whose two bytes are not both
     * inside are denied. */
    cpu.tr.limit = IOMAP + 0x10; /* bytes up to bitmap byte 0x10 */
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x7f, 1), X86_OK); /* bytes 0x0f, 0x10 */
    expect_gp(x86_io_allowed(&cpu, 0x80, 1));                /* bytes 0x10, 0x11 */
    /* The bitmap offset at or past the limit: no bitmap, all denied. */
    put(TSS + 0x66, 2, 0x2000);
    expect_gp(x86_io_allowed(&cpu, 0x0, 1));
    put(TSS + 0x66, 2, IOMAP);
    cpu.tr.limit = IOMAP + 0x2000;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x80, 1), X86_OK);
    /* A 16-bit TSS, an absent one, a too short one. */
    cpu.tr.type = 3;
    expect_gp(x86_io_allowed(&cpu, 0x80, 1));
    cpu.tr.type = 9;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x80, 1), X86_OK);
    cpu.tr.present = 0;
    expect_gp(x86_io_allowed(&cpu, 0x80, 1));
    cpu.tr.present = 1;
    cpu.tr.limit = 0x66;
    expect_gp(x86_io_allowed(&cpu, 0x80, 1));
    /* A TSS outside memory: the read faults. */
    cpu.tr.limit = IOMAP + 0x2000;
    cpu.tr.base = MEM_SIZE;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x80, 1), X86_EXCEPTION);
    ck_assert_uint_eq(cpu.exc.vector, X86_PF);
    /* Outside IA-32e mode the TSS base is a 32-bit linear address. */
    mode32(true);
    cpu.tr.base = 0x100000000ull + TSS;
    ck_assert_int_eq(x86_io_allowed(&cpu, 0x80, 1), X86_OK);
    expect_gp(x86_io_allowed(&cpu, 0x64, 1));
}
END_TEST

/* ---- random cases against a reference model ---------------------------------------- */

#if defined(__x86_64__)
/* The arithmetic flags of cmp a, b as the host CPU sets them. */
static uint32_t host_cmp(uint64_t a, uint64_t b, unsigned size)
{
    uint64_t f;
    switch (size) {
    case 1:
        __asm__("sub $128, %%rsp\n\tcmpb %b2, %b1\n\tpushfq\n\tpop %0\n\tadd $128, %%rsp"
                : "=&r"(f) : "r"(a), "r"(b) : "cc");
        break;
    case 2:
        __asm__("sub $128, %%rsp\n\tcmpw %w2, %w1\n\tpushfq\n\tpop %0\n\tadd $128, %%rsp"
                : "=&r"(f) : "r"(a), "r"(b) : "cc");
        break;
    case 4:
        __asm__("sub $128, %%rsp\n\tcmpl %k2, %k1\n\tpushfq\n\tpop %0\n\tadd $128, %%rsp"
                : "=&r"(f) : "r"(a), "r"(b) : "cc");
        break;
    default:
        __asm__("sub $128, %%rsp\n\tcmpq %2, %1\n\tpushfq\n\tpop %0\n\tadd $128, %%rsp"
                : "=&r"(f) : "r"(a), "r"(b) : "cc");
        break;
    }
    return (uint32_t)f & F_ARITH;
}
#else
static uint32_t host_cmp(uint64_t a, uint64_t b, unsigned size)
{
    /* Not an x86 host: use the model's own flags. */
    struct x86_cpu t;
    memset(&t, 0, sizeof t);
    x86_set_lazy(&t, CC_SUB, size, a - b, b, 0);
    return x86_lazy_flags(&t);
}
#endif

static uint8_t ref_mem[MEM_SIZE];

static bool ref_ld(uint64_t off, unsigned size, uint64_t *v)
{
    if (off > MEM_SIZE - size)
        return false;
    *v = 0;
    memcpy(v, ref_mem + off, size);
    return true;
}

static bool ref_st(uint64_t off, unsigned size, uint64_t v)
{
    if (off > MEM_SIZE - size)
        return false;
    memcpy(ref_mem + off, &v, size);
    return true;
}

static uint64_t ref_set(uint64_t old, unsigned as, uint64_t v)
{
    if (as == 2)
        return (old & ~0xffffull) | (v & 0xffff);
    if (as == 4)
        return v & 0xffffffffull;
    return v;
}

/* The instruction done the simple way on ref_mem and r[]: false when an
 * element faults (the state is that of the elements before). Segments are
 * flat and offsets are linear addresses. */
static bool ref_run(x86_handler fn, unsigned size, unsigned as, uint8_t rep, bool df,
                    uint64_t *r, uint32_t *flags)
{
    uint64_t m = as == 8 ? ~0ull : (1ull << (as * 8)) - 1;
    uint64_t count = rep ? r[R_CX] & m : 1;
    uint64_t step = df ? (uint64_t)-(int64_t)size : size;
    if (rep && !count) {
        /* The CPU writes back the count, and movs/stos their pointers. */
        r[R_CX] = ref_set(r[R_CX], as, 0);
        if (fn == op_movs)
            r[R_SI] = ref_set(r[R_SI], as, r[R_SI]);
        if (fn == op_movs || fn == op_stos)
            r[R_DI] = ref_set(r[R_DI], as, r[R_DI]);
    }
    while (count) {
        uint64_t si = r[R_SI] & m, di = r[R_DI] & m, a = 0, b = 0;
        bool cmp = false;
        if (fn == op_movs) {
            if (!ref_ld(si, size, &a) || !ref_st(di, size, a))
                return false;
        } else if (fn == op_stos) {
            if (!ref_st(di, size, r[R_AX]))
                return false;
        } else if (fn == op_lods) {
            if (!ref_ld(si, size, &a))
                return false;
            r[R_AX] = size == 4 ? a : size == 8 ? a : (r[R_AX] & ~((1ull << (size * 8)) - 1)) | a;
        } else if (fn == op_cmps) {
            if (!ref_ld(si, size, &a) || !ref_ld(di, size, &b))
                return false;
            cmp = true;
        } else {
            a = size == 8 ? r[R_AX] : r[R_AX] & ((1ull << (size * 8)) - 1);
            if (!ref_ld(di, size, &b))
                return false;
            cmp = true;
        }
        if (fn == op_movs || fn == op_lods || fn == op_cmps)
            r[R_SI] = ref_set(r[R_SI], as, si + step);
        if (fn != op_lods)
            r[R_DI] = ref_set(r[R_DI], as, di + step);
        count--;
        if (rep)
            r[R_CX] = ref_set(r[R_CX], as, count);
        if (cmp) {
            *flags = host_cmp(a, b, size);
            if (rep == 0xf3 && a != b)
                break;
            if (rep == 0xf2 && a == b)
                break;
        }
    }
    return true;
}

START_TEST(random_against_reference)
{
    static const x86_handler fns[5] = { op_movs, op_cmps, op_stos, op_lods, op_scas };
    static const uint8_t reps[3] = { 0, 0xf3, 0xf2 };
    rng_state = 0x1234567 + (uint64_t)_i;
    unsigned long faults = 0, partial = 0;
    for (unsigned iter = 0; iter < 3000; iter++) {
        reset(_i);
        x86_handler fn = fns[rnd() % 5];
        unsigned size = sizes[rnd() % 4];
        uint8_t rep = reps[rnd() % 3];
        bool df = rnd() & 1;
        unsigned as = (unsigned[]){ 2, 4, 8 }[rnd() % 3];
        if (as == 2 || (as == 4 && (rnd() & 1)))
            mode32(true);
        /* Memory: random bytes, or mostly zeros (so that cmps/scas find
         * matches and long equal runs). */
        bool sparse = rnd() & 1;
        for (unsigned k = 0; k < MEM_SIZE; k += 8) {
            uint64_t v = rnd();
            if (sparse)
                v &= rnd() & rnd() & rnd() & 0x0101010101010101ull;
            memcpy(mem + k, &v, 8);
        }
        uint64_t count;
        switch (rnd() % 5) {
        case 0: count = rnd() % 3; break;
        case 1: case 2: count = rnd() % 300; break;
        case 3: count = rnd() % 5000; break;
        default: count = rnd() % 40000; break;
        }
        if (rnd() % 20 == 0) {
            cpu.flags |= F_TF;
            count %= 100;
        }
        uint64_t si = rnd() % MEM_SIZE, di;
        if (rnd() & 1)
            di = (si + (rnd() % 81) - 40) % MEM_SIZE; /* overlapping */
        else
            di = rnd() % MEM_SIZE;
        if (fn == op_cmps && (rnd() & 1)) {
            /* Long equal runs: the destination a copy of the source, with
             * perhaps one difference. */
            uint64_t len = count * size < 0x8000 ? count * size : 0x8000;
            uint64_t s0 = df ? si - len + size : si, d0 = df ? di - len + size : di;
            for (uint64_t k = 0; k < len; k++)
                mem[(d0 + k) % MEM_SIZE] = mem[(s0 + k) % MEM_SIZE];
            if (len && (rnd() & 1))
                mem[(d0 + rnd() % len) % MEM_SIZE] ^= 0x10;
        }
        uint64_t m = as == 8 ? ~0ull : (1ull << (as * 8)) - 1;
        uint64_t hi = as == 8 ? 0 : rnd() & ~m;
        cpu.regs[R_SI] = hi | si;
        cpu.regs[R_DI] = (as == 8 ? 0 : rnd() & ~m) | di;
        cpu.regs[R_CX] = (as == 8 ? 0 : rnd() & ~m) | (count & m);
        cpu.regs[R_AX] = sparse ? rnd() & rnd() & 0x0101010101010101ull : rnd();
        if (fn == op_scas && (rnd() & 1))
            cpu.regs[R_AX] = 0;
        cpu.flags |= df ? F_DF : 0;
        cpu.flags |= rnd() & F_ARITH;
        uint64_t r[16];
        memcpy(r, cpu.regs, sizeof r);
        memcpy(ref_mem, mem, MEM_SIZE);
        uint32_t rflags = (uint32_t)cpu.flags & F_ARITH;
        bool ok = ref_run(fn, size, as, rep, df, r, &rflags);

        struct x86_insn i = sinsn(fn, size, as, rep);
        enum x86_status st = exec(&i);
        if (!ok) {
            faults++;
            ck_assert_int_eq(st, X86_EXCEPTION);
        } else {
            ck_assert_int_eq(st, X86_OK);
        }
        if (rep && count > REP_CHUNK)
            partial++;
        for (unsigned k = 0; k < 16; k++)
            ck_assert_msg(cpu.regs[k] == r[k],
                          "iter %u: reg %u %#llx != %#llx (%s size %u as %u rep %x df %d n %llu)",
                          iter, k, (unsigned long long)cpu.regs[k], (unsigned long long)r[k],
                          fn == op_movs ? "movs" : fn == op_cmps ? "cmps" : fn == op_stos ? "stos"
                          : fn == op_lods ? "lods" : "scas", size, as, rep, df,
                          (unsigned long long)count);
        ck_assert_msg(arith() == rflags, "iter %u: flags %#x != %#x", iter, arith(), rflags);
        ck_assert_msg(memcmp(mem, ref_mem, MEM_SIZE) == 0, "iter %u: memory differs", iter);
    }
    ck_assert_uint_gt(faults, 10);
    ck_assert_uint_gt(partial, 10);
}
END_TEST

/* ---- the host CPU as the oracle for cmps/scas ------------------------------------------ */

#if defined(__x86_64__)
/* One host string instruction: flags in (DF included) and out; rSI, rDI,
 * rCX updated in place. The red zone is stepped over for pushfq. */
#define HOST_STR(name, text)                                                               \
    static uint64_t name(uint64_t flags, uint64_t *si, uint64_t *di, uint64_t *cx,       \
                         uint64_t ax)                                                    \
    {                                                                                    \
        uint64_t out;                                                                    \
        __asm__ volatile("sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t" text                \
                         "\n\tpushfq\n\tpop %[o]\n\tcld\n\tadd $128, %%rsp"              \
                         : [o] "=&r"(out), "+S"(*si), "+D"(*di), "+c"(*cx)                \
                         : [f] "r"(flags), "a"(ax)                                       \
                         : "memory", "cc");                                              \
        return out;                                                                      \
    }
#define HOST_SIZES(op, prefix, tag)                                                        \
    HOST_STR(host_##op##b##tag, prefix #op "b")                                            \
    HOST_STR(host_##op##w##tag, prefix #op "w")                                            \
    HOST_STR(host_##op##l##tag, prefix #op "l")                                            \
    HOST_STR(host_##op##q##tag, prefix #op "q")
HOST_SIZES(cmps, "", _0)
HOST_SIZES(cmps, "repe ", _e)
HOST_SIZES(cmps, "repne ", _ne)
HOST_SIZES(scas, "", _0)
HOST_SIZES(scas, "repe ", _e)
HOST_SIZES(scas, "repne ", _ne)

typedef uint64_t (*host_fn)(uint64_t, uint64_t *, uint64_t *, uint64_t *, uint64_t);
/* [cmps/scas][none/repe/repne][size] */
static const host_fn host_fns[2][3][4] = {
    { { host_cmpsb_0, host_cmpsw_0, host_cmpsl_0, host_cmpsq_0 },
      { host_cmpsb_e, host_cmpsw_e, host_cmpsl_e, host_cmpsq_e },
      { host_cmpsb_ne, host_cmpsw_ne, host_cmpsl_ne, host_cmpsq_ne } },
    { { host_scasb_0, host_scasw_0, host_scasl_0, host_scasq_0 },
      { host_scasb_e, host_scasw_e, host_scasl_e, host_scasq_e },
      { host_scasb_ne, host_scasw_ne, host_scasl_ne, host_scasq_ne } },
};

START_TEST(host_cpu_cmps_scas)
{
    static const uint8_t reps[3] = { 0, 0xf3, 0xf2 };
    static uint8_t ha[0x1000], hb[0x1000];
    enum { A = 0x2000, B = 0x8000, MID = 0x800 };
    rng_state = 0xfeedbeef + (uint64_t)_i;
    unsigned long stopped_early = 0, ran_out = 0;
    for (unsigned iter = 0; iter < 20000; iter++) {
        reset(_i);
        int scas = rnd() & 1;
        unsigned p = rnd() % 3, k = rnd() % 4, size = sizes[k];
        bool df = rnd() & 1;
        /* B mostly a copy of A with rare differences in a few bytes;
         * scas's value matches often. */
        unsigned dens = 1 + rnd() % 4;
        for (unsigned x = 0; x < sizeof ha; x++) {
            ha[x] = (uint8_t)(rnd() % 4 == 0 ? rnd() : 0);
            hb[x] = ha[x];
            if (rnd() % (16 * dens) == 0)
                hb[x] = (uint8_t)rnd();
        }
        uint64_t count = rnd() % 4 == 0 ? rnd() % 3 : rnd() % 200;
        uint64_t ax = rnd() % 3 == 0 ? 0 : rnd();
        if (rnd() % 3 == 0)
            memset(hb, (int)(ax & 0xff), sizeof hb);
        uint64_t fin = 0x202 | (rnd() & F_ARITH) | (df ? F_DF : 0);
        uint64_t off = MID + rnd() % 8;

        uint64_t hsi = (uint64_t)(uintptr_t)(ha + off), hdi = (uint64_t)(uintptr_t)(hb + off);
        uint64_t hcx = count;
        uint64_t fout = host_fns[scas][p][k](fin, &hsi, &hdi, &hcx, ax);

        memcpy(mem + A, ha, sizeof ha);
        memcpy(mem + B, hb, sizeof hb);
        cpu.regs[R_SI] = A + off;
        cpu.regs[R_DI] = B + off;
        cpu.regs[R_CX] = count;
        cpu.regs[R_AX] = ax;
        cpu.flags = fin & ~(uint64_t)F_IF;
        struct x86_insn i = sinsn(scas ? op_scas : op_cmps, size, 8, reps[p]);
        ck_assert_int_eq(exec(&i), X86_OK);

        int64_t dsi = (int64_t)(hsi - (uint64_t)(uintptr_t)(ha + off));
        int64_t ddi = (int64_t)(hdi - (uint64_t)(uintptr_t)(hb + off));
        ck_assert_int_eq((int64_t)(cpu.regs[R_DI] - (B + off)), ddi);
        if (!scas)
            ck_assert_int_eq((int64_t)(cpu.regs[R_SI] - (A + off)), dsi);
        else
            ck_assert_uint_eq(cpu.regs[R_SI], A + off);
        ck_assert_uint_eq(cpu.regs[R_CX], hcx);
        ck_assert_uint_eq(cpu.regs[R_AX], ax);
        ck_assert_msg(arith() == (fout & F_ARITH), "iter %u: flags %#x, host %#llx", iter,
                      arith(), (unsigned long long)(fout & F_ARITH));
        if (p && hcx)
            stopped_early++;
        else if (p && count)
            ran_out++;
    }
    ck_assert_uint_gt(stopped_early, 1000);
    ck_assert_uint_gt(ran_out, 1000);
}
END_TEST
#endif

/* ---- suite ---------------------------------------------------------------------------- */

static Suite *string_suite(void)
{
    Suite *s = suite_create("x86_string");
    TCase *tc = tcase_create("string");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, movs_single_every_size_and_direction, 0, TLB_MODES);
    tcase_add_loop_test(tc, rep_movs_counts, 0, TLB_MODES);
    tcase_add_loop_test(tc, rep_movs_overlap, 0, TLB_MODES);
    tcase_add_loop_test(tc, rep_movs_aliased_pages, 0, TLB_MODES);
    tcase_add_loop_test(tc, address_size_16_wraps_low_word, 0, TLB_MODES);
    tcase_add_loop_test(tc, address_size_32_zero_extends, 0, TLB_MODES);
    tcase_add_loop_test(tc, address_size_64, 0, TLB_MODES);
    tcase_add_loop_test(tc, segment_override_source, 0, TLB_MODES);
    tcase_add_loop_test(tc, stos_every_size, 0, TLB_MODES);
    tcase_add_loop_test(tc, lods_every_size, 0, TLB_MODES);
    tcase_add_loop_test(tc, cmps_scas_termination, 0, TLB_MODES);
    tcase_add_loop_test(tc, cmps_scas_single_flags, 0, TLB_MODES);
    tcase_add_loop_test(tc, fault_mid_rep, 0, TLB_MODES);
    tcase_add_loop_test(tc, rep_bound_and_reexecution, 0, TLB_MODES);
    tcase_add_loop_test(tc, rep_pauses_on_end_block, 0, TLB_MODES);
    tcase_add_loop_test(tc, in_out_basic, 0, TLB_MODES);
    tcase_add_loop_test(tc, ins_outs_basic, 0, TLB_MODES);
    tcase_add_loop_test(tc, io_exit_mid_rep, 0, TLB_MODES);
    tcase_add_loop_test(tc, iopl_and_bitmap, 0, TLB_MODES);
    tcase_add_loop_test(tc, random_against_reference, 0, TLB_MODES);
#if defined(__x86_64__)
    tcase_add_loop_test(tc, host_cpu_cmps_scas, 0, TLB_MODES);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(string_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
