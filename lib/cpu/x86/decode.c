/*
 * The x86 decoder: prefixes, REX, the one- and two-byte opcode maps,
 * ModRM/SIB/displacement and immediates, into a struct x86_insn.
 *
 * Each opcode has a table entry: its handler and what follows the opcode
 * (D_* flags). Groups (the operation chosen by ModRM.reg) have an entry per
 * member. Anything without an entry decodes to op_ud, which raises #UD.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cpu/x86/insn.h"
#include "cpu/x86/ops.h"

enum {
    D_MODRM = 1u << 0,
    D_BYTE = 1u << 1,    /* byte operation: opsize 1, reg and r/m byte-coded */
    D_RMBYTE = 1u << 2,  /* only the r/m operand is a byte (movzx, setcc) */
    D_IMM8 = 1u << 3,    /* imm8, zero-extended (sign-extended with D_SX) */
    D_IMM16 = 1u << 4,   /* imm16 */
    D_IMMZ = 1u << 5,    /* imm16 or imm32 by operand size, sign-extended to 64 */
    D_IMMV = 1u << 6,    /* imm16, imm32 or imm64 by operand size */
    D_SX = 1u << 7,
    D_MOFFS = 1u << 8,   /* an address of the address size follows */
    D_DEF64 = 1u << 9,   /* 64-bit operand by default in 64-bit mode (16 with 0x66) */
    D_FORCE64 = 1u << 10, /* 64-bit operand in 64-bit mode whatever the prefixes */
    D_REGOP = 1u << 11,  /* register in the opcode's low three bits */
    D_INV64 = 1u << 12,  /* #UD in 64-bit mode */
    D_GROUP = 1u << 13,  /* the member comes from ModRM.reg */
    D_ENTER = 1u << 14,  /* imm16 then imm8 */
    D_FAR = 1u << 15,    /* ptr16:16/32: offset then selector */
    D_MEMONLY = 1u << 16, /* r/m must be memory, else #UD */
    D_OP16 = 1u << 17,   /* operand is 16 bits whatever the prefixes (sreg moves to memory) */
    D_GROUP16 = 1u << 18, /* with D_GROUP: 16 members, 8..15 for register forms (mod 3) */
    D_SSE = 1u << 19,    /* the mandatory prefix picks one of four entries: none, 66, f3, f2 */
    D_REGONLY = 1u << 20, /* ModRM's mod is ignored: always the register form (mov cr/dr) */
};

struct opdesc {
    x86_handler fn;
    uint32_t flags;
    const struct opdesc *group; /* D_GROUP: eight members */
};

unsigned long x86_ud_count;

#define OP(f, fl) { f, fl, NULL }
#define GRP(g, fl) { NULL, (fl) | D_GROUP | D_MODRM, g }
#define NONE { NULL, 0, NULL }

/* ---- groups ---------------------------------------------------------- */

static const struct opdesc grp1_b[8] = {
    OP(op_alu_rm_imm, 0), OP(op_alu_rm_imm, 0), OP(op_alu_rm_imm, 0), OP(op_alu_rm_imm, 0),
    OP(op_alu_rm_imm, 0), OP(op_alu_rm_imm, 0), OP(op_alu_rm_imm, 0), OP(op_alu_rm_imm, 0),
};
#define grp1 grp1_b

static const struct opdesc grp2[8] = {
    OP(op_shift, 0), OP(op_shift, 0), OP(op_shift, 0), OP(op_shift, 0),
    OP(op_shift, 0), OP(op_shift, 0), OP(op_shift, 0), OP(op_shift, 0),
};

static const struct opdesc grp3_b[8] = {
    OP(op_grp3, D_IMM8), OP(op_grp3, D_IMM8), OP(op_grp3, 0), OP(op_grp3, 0),
    OP(op_mul, 0), OP(op_imul1, 0), OP(op_div, 0), OP(op_idiv, 0),
};

static const struct opdesc grp3_v[8] = {
    OP(op_grp3, D_IMMZ), OP(op_grp3, D_IMMZ), OP(op_grp3, 0), OP(op_grp3, 0),
    OP(op_mul, 0), OP(op_imul1, 0), OP(op_div, 0), OP(op_idiv, 0),
};

static const struct opdesc grp4[8] = {
    OP(op_inc_dec_rm, 0), OP(op_inc_dec_rm, 0), NONE, NONE, NONE, NONE, NONE, NONE,
};

static const struct opdesc grp5[8] = {
    OP(op_inc_dec_rm, 0), OP(op_inc_dec_rm, 0), OP(op_call_rm, D_FORCE64),
    OP(op_call_far, D_MEMONLY), OP(op_jmp_rm, D_FORCE64), OP(op_jmp_far, D_MEMONLY),
    OP(op_push_rm, D_DEF64), NONE,
};

static const struct opdesc grp8[8] = {
    NONE, NONE, NONE, NONE,
    OP(op_bt_rm_imm, D_IMM8), OP(op_bt_rm_imm, D_IMM8), OP(op_bt_rm_imm, D_IMM8),
    OP(op_bt_rm_imm, D_IMM8),
};

static const struct opdesc grp9[8] = {
    NONE, OP(op_cmpxchg8b, D_MEMONLY), NONE, NONE, NONE, NONE, NONE, NONE,
};

static const struct opdesc grp11_b[8] = { OP(op_mov_rm_imm, D_IMM8) };
static const struct opdesc grp11_v[8] = { OP(op_mov_rm_imm, D_IMMZ) };
static const struct opdesc grp1a[8] = { OP(op_pop_rm, D_DEF64) };

/* ---- x87 (d8-df): memory forms by ModRM.reg, then register forms -------- */

#define X(f) OP(f, 0)
static const struct opdesc x87[8][16] = {
    /* d8 */ { X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_com_m), X(op_fpu_com_m),
               X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m),
               X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_com_r), X(op_fpu_com_r),
               X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_arith_r) },
    /* d9 */ { X(op_fpu_ld_m), NONE, X(op_fpu_st_m), X(op_fpu_st_m),
               X(op_fpu_env), X(op_fpu_env), X(op_fpu_env), X(op_fpu_env),
               X(op_fpu_ld_r), X(op_fpu_fxch), X(op_fpu_d9), X(op_fpu_st_r),
               X(op_fpu_d9), X(op_fpu_d9), X(op_fpu_d9), X(op_fpu_d9) },
    /* da */ { X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_com_m), X(op_fpu_com_m),
               X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m),
               X(op_fpu_fcmov), X(op_fpu_fcmov), X(op_fpu_fcmov), X(op_fpu_fcmov),
               NONE, X(op_fpu_com_r), NONE, NONE },
    /* db */ { X(op_fpu_ld_m), X(op_fpu_st_m), X(op_fpu_st_m), X(op_fpu_st_m),
               NONE, X(op_fpu_ld_m), NONE, X(op_fpu_st_m),
               X(op_fpu_fcmov), X(op_fpu_fcmov), X(op_fpu_fcmov), X(op_fpu_fcmov),
               X(op_fpu_db), X(op_fpu_comi), X(op_fpu_comi), NONE },
    /* dc */ { X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_com_m), X(op_fpu_com_m),
               X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m),
               X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_com_r), X(op_fpu_com_r),
               X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_arith_r) },
    /* dd */ { X(op_fpu_ld_m), X(op_fpu_st_m), X(op_fpu_st_m), X(op_fpu_st_m),
               X(op_fpu_env), NONE, X(op_fpu_env), X(op_fpu_env),
               X(op_fpu_ffree), X(op_fpu_fxch), X(op_fpu_st_r), X(op_fpu_st_r),
               X(op_fpu_com_r), X(op_fpu_com_r), NONE, NONE },
    /* de */ { X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_com_m), X(op_fpu_com_m),
               X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m), X(op_fpu_arith_m),
               X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_com_r), X(op_fpu_com_r),
               X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_arith_r), X(op_fpu_arith_r) },
    /* df */ { X(op_fpu_ld_m), X(op_fpu_st_m), X(op_fpu_st_m), X(op_fpu_st_m),
               X(op_fpu_ld_m), X(op_fpu_ld_m), X(op_fpu_st_m), X(op_fpu_st_m),
               X(op_fpu_ffree), X(op_fpu_fxch), X(op_fpu_st_r), X(op_fpu_st_r),
               X(op_fpu_env), X(op_fpu_comi), X(op_fpu_comi), NONE },
};
#undef X
#define X87(k) { NULL, D_GROUP | D_GROUP16 | D_MODRM, x87[k] }

/* ---- the one-byte map ------------------------------------------------- */

#define ALU_ROW                                                                       \
    OP(op_alu_rm_r, D_MODRM | D_BYTE), OP(op_alu_rm_r, D_MODRM),                      \
    OP(op_alu_r_rm, D_MODRM | D_BYTE), OP(op_alu_r_rm, D_MODRM),                      \
    OP(op_alu_a_imm, D_BYTE | D_IMM8), OP(op_alu_a_imm, D_IMMZ)

static const struct opdesc map1[256] = {
    /* 00 */ ALU_ROW, OP(op_push_sreg, D_INV64 | D_DEF64), OP(op_pop_sreg, D_INV64 | D_DEF64),
    /* 08 */ ALU_ROW, OP(op_push_sreg, D_INV64 | D_DEF64), NONE /* 0f: escape */,
    /* 10 */ ALU_ROW, OP(op_push_sreg, D_INV64 | D_DEF64), OP(op_pop_sreg, D_INV64 | D_DEF64),
    /* 18 */ ALU_ROW, OP(op_push_sreg, D_INV64 | D_DEF64), OP(op_pop_sreg, D_INV64 | D_DEF64),
    /* 20 */ ALU_ROW, NONE /* es: */, OP(op_bcd, D_INV64),
    /* 28 */ ALU_ROW, NONE /* cs: */, OP(op_bcd, D_INV64),
    /* 30 */ ALU_ROW, NONE /* ss: */, OP(op_bcd, D_INV64),
    /* 38 */ ALU_ROW, NONE /* ds: */, OP(op_bcd, D_INV64),
    /* 40 */ OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    /* 48 */ OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    OP(op_inc_dec_r, D_REGOP | D_INV64), OP(op_inc_dec_r, D_REGOP | D_INV64),
    /* 50 */ OP(op_push_r, D_REGOP | D_DEF64), OP(op_push_r, D_REGOP | D_DEF64),
    OP(op_push_r, D_REGOP | D_DEF64), OP(op_push_r, D_REGOP | D_DEF64),
    OP(op_push_r, D_REGOP | D_DEF64), OP(op_push_r, D_REGOP | D_DEF64),
    OP(op_push_r, D_REGOP | D_DEF64), OP(op_push_r, D_REGOP | D_DEF64),
    /* 58 */ OP(op_pop_r, D_REGOP | D_DEF64), OP(op_pop_r, D_REGOP | D_DEF64),
    OP(op_pop_r, D_REGOP | D_DEF64), OP(op_pop_r, D_REGOP | D_DEF64),
    OP(op_pop_r, D_REGOP | D_DEF64), OP(op_pop_r, D_REGOP | D_DEF64),
    OP(op_pop_r, D_REGOP | D_DEF64), OP(op_pop_r, D_REGOP | D_DEF64),
    /* 60 */ OP(op_pusha, D_INV64), OP(op_popa, D_INV64),
    OP(op_bound, D_MODRM | D_MEMONLY | D_INV64),
    OP(op_movsxd, D_MODRM) /* arpl outside 64-bit mode: see below */,
    NONE /* fs: */, NONE /* gs: */, NONE /* opsize */, NONE /* addrsize */,
    /* 68 */ OP(op_push_imm, D_IMMZ | D_DEF64), OP(op_imul_r_rm_imm, D_MODRM | D_IMMZ),
    OP(op_push_imm, D_IMM8 | D_SX | D_DEF64), OP(op_imul_r_rm_imm, D_MODRM | D_IMM8 | D_SX),
    OP(op_ins, D_BYTE), OP(op_ins, 0), OP(op_outs, D_BYTE), OP(op_outs, 0),
    /* 70 */ OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    /* 78 */ OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    OP(op_jcc, D_IMM8 | D_SX | D_FORCE64), OP(op_jcc, D_IMM8 | D_SX | D_FORCE64),
    /* 80 */ GRP(grp1, D_BYTE | D_IMM8), GRP(grp1, D_IMMZ),
    GRP(grp1, D_BYTE | D_IMM8 | D_INV64), GRP(grp1, D_IMM8 | D_SX),
    OP(op_test_rm_r, D_MODRM | D_BYTE), OP(op_test_rm_r, D_MODRM),
    OP(op_xchg_rm_r, D_MODRM | D_BYTE), OP(op_xchg_rm_r, D_MODRM),
    /* 88 */ OP(op_mov_rm_r, D_MODRM | D_BYTE), OP(op_mov_rm_r, D_MODRM),
    OP(op_mov_r_rm, D_MODRM | D_BYTE), OP(op_mov_r_rm, D_MODRM),
    OP(op_mov_rm_sreg, D_MODRM), OP(op_lea, D_MODRM | D_MEMONLY),
    OP(op_mov_sreg_rm, D_MODRM | D_OP16), GRP(grp1a, D_DEF64),
    /* 90 */ OP(op_xchg_a_r, D_REGOP), OP(op_xchg_a_r, D_REGOP), OP(op_xchg_a_r, D_REGOP),
    OP(op_xchg_a_r, D_REGOP), OP(op_xchg_a_r, D_REGOP), OP(op_xchg_a_r, D_REGOP),
    OP(op_xchg_a_r, D_REGOP), OP(op_xchg_a_r, D_REGOP),
    /* 98 */ OP(op_cbw, 0), OP(op_cwd, 0), OP(op_call_far, D_FAR | D_INV64),
    OP(op_fwait, 0), OP(op_pushf, D_DEF64), OP(op_popf, D_DEF64), OP(op_sahf, 0),
    OP(op_lahf, 0),
    /* a0 */ OP(op_mov_a_moffs, D_BYTE | D_MOFFS), OP(op_mov_a_moffs, D_MOFFS),
    OP(op_mov_moffs_a, D_BYTE | D_MOFFS), OP(op_mov_moffs_a, D_MOFFS),
    OP(op_movs, D_BYTE), OP(op_movs, 0), OP(op_cmps, D_BYTE), OP(op_cmps, 0),
    /* a8 */ OP(op_test_a_imm, D_BYTE | D_IMM8), OP(op_test_a_imm, D_IMMZ),
    OP(op_stos, D_BYTE), OP(op_stos, 0), OP(op_lods, D_BYTE), OP(op_lods, 0),
    OP(op_scas, D_BYTE), OP(op_scas, 0),
    /* b0 */ OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8), OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8),
    OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8), OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8),
    OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8), OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8),
    OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8), OP(op_mov_r_imm, D_REGOP | D_BYTE | D_IMM8),
    /* b8 */ OP(op_mov_r_imm, D_REGOP | D_IMMV), OP(op_mov_r_imm, D_REGOP | D_IMMV),
    OP(op_mov_r_imm, D_REGOP | D_IMMV), OP(op_mov_r_imm, D_REGOP | D_IMMV),
    OP(op_mov_r_imm, D_REGOP | D_IMMV), OP(op_mov_r_imm, D_REGOP | D_IMMV),
    OP(op_mov_r_imm, D_REGOP | D_IMMV), OP(op_mov_r_imm, D_REGOP | D_IMMV),
    /* c0 */ GRP(grp2, D_BYTE | D_IMM8), GRP(grp2, D_IMM8),
    OP(op_ret, D_IMM16 | D_FORCE64), OP(op_ret, D_FORCE64),
    OP(op_lxs, D_MODRM | D_MEMONLY | D_INV64), OP(op_lxs, D_MODRM | D_MEMONLY | D_INV64),
    GRP(grp11_b, D_BYTE), GRP(grp11_v, 0),
    /* c8 */ OP(op_enter, D_ENTER | D_DEF64), OP(op_leave, D_DEF64), OP(op_retf, D_IMM16),
    OP(op_retf, 0), OP(op_int3, 0), OP(op_int, D_IMM8), OP(op_into, D_INV64), OP(op_iret, 0),
    /* d0 */ GRP(grp2, D_BYTE), GRP(grp2, 0), GRP(grp2, D_BYTE), GRP(grp2, 0),
    OP(op_bcd, D_IMM8 | D_INV64), OP(op_bcd, D_IMM8 | D_INV64), OP(op_salc, D_INV64),
    OP(op_xlat, 0),
    /* d8 */ X87(0), X87(1), X87(2), X87(3), X87(4), X87(5), X87(6), X87(7),
    /* e0 */ OP(op_loop, D_IMM8 | D_SX | D_FORCE64), OP(op_loop, D_IMM8 | D_SX | D_FORCE64),
    OP(op_loop, D_IMM8 | D_SX | D_FORCE64), OP(op_jcxz, D_IMM8 | D_SX | D_FORCE64),
    OP(op_in, D_BYTE | D_IMM8), OP(op_in, D_IMM8), OP(op_out, D_BYTE | D_IMM8),
    OP(op_out, D_IMM8),
    /* e8 */ OP(op_call_rel, D_IMMZ | D_FORCE64), OP(op_jmp_rel, D_IMMZ | D_FORCE64),
    OP(op_jmp_far, D_FAR | D_INV64), OP(op_jmp_rel, D_IMM8 | D_SX | D_FORCE64),
    OP(op_in, D_BYTE), OP(op_in, 0), OP(op_out, D_BYTE), OP(op_out, 0),
    /* f0 */ NONE /* lock */, OP(op_int1, 0), NONE /* repne */, NONE /* rep */,
    OP(op_hlt, 0), OP(op_flag, 0), GRP(grp3_b, D_BYTE), GRP(grp3_v, 0),
    /* f8 */ OP(op_flag, 0), OP(op_flag, 0), OP(op_flag, 0), OP(op_flag, 0),
    OP(op_flag, 0), OP(op_flag, 0), GRP(grp4, D_BYTE), GRP(grp5, 0),
};

/* ---- the two-byte map (0f xx) ------------------------------------------ */

#define JCC32 OP(op_jcc, D_IMMZ | D_FORCE64)
#define SETCC OP(op_setcc, D_MODRM | D_RMBYTE)
#define CMOV OP(op_cmovcc, D_MODRM)
#define HINT OP(op_nop, D_MODRM)
#define BSWAP OP(op_bswap, D_REGOP)

/* SSE and MMX: one entry per mandatory prefix (none, 66, f3, f2); a 66 that
 * selects an entry does not change the operand size. */
#define SSE(a, b, c, d) { NULL, D_SSE | D_MODRM, (const struct opdesc[4]){ a, b, c, d } }
#define S(f) OP(f, D_MODRM)
#define SI(f) OP(f, D_MODRM | D_IMM8)
#define SN { NULL, D_MODRM, NULL }
#define SNP(f) SSE(S(f), SN, SN, SN)       /* no prefix only */
#define SMX(f) SSE(S(f), S(f), SN, SN)     /* MMX (none) and XMM (66) */
#define SX(f) SSE(SN, S(f), SN, SN)        /* 66 only */
#define SPS(f) SSE(S(f), S(f), S(f), S(f))       /* ps pd ss sd */

static const struct opdesc grp12_13_14[16] = {
    NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE,
    NONE, NONE, SI(op_sse_shift_imm), SI(op_sse_shift_imm), SI(op_sse_shift_imm),
    SI(op_sse_shift_imm), SI(op_sse_shift_imm), SI(op_sse_shift_imm),
};
#define SHIFT_IMM { NULL, D_MODRM | D_GROUP | D_GROUP16, grp12_13_14 }

static const struct opdesc grp15[16] = {
    OP(op_fxsave, 0), OP(op_fxrstor, 0), OP(op_ldmxcsr, 0), OP(op_stmxcsr, 0),
    NONE, NONE, NONE, OP(op_clflush, 0),
    NONE, NONE, NONE, NONE, NONE, OP(op_fence, 0), OP(op_fence, 0), OP(op_fence, 0),
};

#define GRP15 { NULL, D_MODRM | D_GROUP | D_GROUP16, grp15 }

static const struct opdesc map2[256] = {
    [0x00] = OP(op_grp6, D_MODRM), [0x01] = OP(op_grp7, D_MODRM),
    [0x02] = OP(op_lar_lsl, D_MODRM), [0x03] = OP(op_lar_lsl, D_MODRM),
    [0x05] = OP(op_syscall, 0), [0x06] = OP(op_clts, 0), [0x07] = OP(op_sysret, 0),
    [0x08] = OP(op_invd, 0), [0x09] = OP(op_invd, 0),
    [0x0b] = OP(op_ud, 0),
    [0x10] = SPS(op_sse_mov), [0x11] = SPS(op_sse_mov),
    [0x12] = SSE(S(op_sse_movhl), S(op_sse_movhl), SN, SN),
    [0x13] = SSE(S(op_sse_movhl), S(op_sse_movhl), SN, SN),
    [0x14] = SMX(op_shufp), [0x15] = SMX(op_shufp),
    [0x16] = SSE(S(op_sse_movhl), S(op_sse_movhl), SN, SN),
    [0x17] = SSE(S(op_sse_movhl), S(op_sse_movhl), SN, SN),
    [0x28] = SMX(op_sse_mov), [0x29] = SMX(op_sse_mov),
    [0x2a] = SPS(op_sse_cvt), [0x2b] = SMX(op_sse_mov),
    [0x2c] = SPS(op_sse_cvt), [0x2d] = SPS(op_sse_cvt),
    [0x2e] = SMX(op_sse_comi), [0x2f] = SMX(op_sse_comi),
    [0x50] = SMX(op_movmsk),
    [0x51] = SPS(op_sse_fp), [0x52] = SPS(op_sse_fp), [0x53] = SPS(op_sse_fp),
    [0x54] = SMX(op_sse_int), [0x55] = SMX(op_sse_int), [0x56] = SMX(op_sse_int),
    [0x57] = SMX(op_sse_int),
    [0x58] = SPS(op_sse_fp), [0x59] = SPS(op_sse_fp), [0x5a] = SPS(op_sse_cvt),
    [0x5b] = SSE(S(op_sse_cvt), S(op_sse_cvt), S(op_sse_cvt), SN),
    [0x5c] = SPS(op_sse_fp), [0x5d] = SPS(op_sse_fp), [0x5e] = SPS(op_sse_fp),
    [0x5f] = SPS(op_sse_fp),
    [0x60] = SMX(op_sse_int), [0x61] = SMX(op_sse_int), [0x62] = SMX(op_sse_int),
    [0x63] = SMX(op_sse_int), [0x64] = SMX(op_sse_int), [0x65] = SMX(op_sse_int),
    [0x66] = SMX(op_sse_int), [0x67] = SMX(op_sse_int), [0x68] = SMX(op_sse_int),
    [0x69] = SMX(op_sse_int), [0x6a] = SMX(op_sse_int), [0x6b] = SMX(op_sse_int),
    [0x6c] = SX(op_sse_int), [0x6d] = SX(op_sse_int),
    [0x6e] = SMX(op_sse_movq),
    [0x6f] = SSE(S(op_sse_movq), S(op_sse_mov), S(op_sse_mov), SN),
    [0x70] = SSE(SI(op_pshuf), SI(op_pshuf), SI(op_pshuf), SI(op_pshuf)),
    [0x71] = SSE(SHIFT_IMM, SHIFT_IMM, SN, SN),
    [0x72] = SSE(SHIFT_IMM, SHIFT_IMM, SN, SN),
    [0x73] = SSE(SHIFT_IMM, SHIFT_IMM, SN, SN),
    [0x74] = SMX(op_sse_int), [0x75] = SMX(op_sse_int), [0x76] = SMX(op_sse_int),
    [0x77] = SNP(op_emms),
    [0x7e] = SSE(S(op_sse_movq), S(op_sse_movq), S(op_sse_movq), SN),
    [0x7f] = SSE(S(op_sse_movq), S(op_sse_mov), S(op_sse_mov), SN),
    [0xae] = SSE(GRP15, SN, SN, SN),
    [0xc2] = SSE(SI(op_sse_cmp), SI(op_sse_cmp), SI(op_sse_cmp), SI(op_sse_cmp)),
    [0xc3] = SNP(op_movnti),
    [0xc4] = SSE(SI(op_pinsrw), SI(op_pinsrw), SN, SN),
    [0xc5] = SSE(SI(op_pextrw), SI(op_pextrw), SN, SN),
    [0xc6] = SSE(SI(op_shufp), SI(op_shufp), SN, SN),
    [0xd1] = SMX(op_sse_int), [0xd2] = SMX(op_sse_int), [0xd3] = SMX(op_sse_int),
    [0xd4] = SMX(op_sse_int), [0xd5] = SMX(op_sse_int), [0xd6] = SSE(SN, S(op_sse_movq), S(op_sse_movq), S(op_sse_movq)),
    [0xd7] = SMX(op_movmsk),
    [0xd8] = SMX(op_sse_int), [0xd9] = SMX(op_sse_int), [0xda] = SMX(op_sse_int),
    [0xdb] = SMX(op_sse_int), [0xdc] = SMX(op_sse_int), [0xdd] = SMX(op_sse_int),
    [0xde] = SMX(op_sse_int), [0xdf] = SMX(op_sse_int),
    [0xe0] = SMX(op_sse_int), [0xe1] = SMX(op_sse_int), [0xe2] = SMX(op_sse_int),
    [0xe3] = SMX(op_sse_int), [0xe4] = SMX(op_sse_int), [0xe5] = SMX(op_sse_int),
    [0xe6] = SSE(SN, S(op_sse_cvt), S(op_sse_cvt), S(op_sse_cvt)),
    [0xe7] = SSE(S(op_sse_movq), S(op_sse_mov), SN, SN),
    [0xe8] = SMX(op_sse_int), [0xe9] = SMX(op_sse_int), [0xea] = SMX(op_sse_int),
    [0xeb] = SMX(op_sse_int), [0xec] = SMX(op_sse_int), [0xed] = SMX(op_sse_int),
    [0xee] = SMX(op_sse_int), [0xef] = SMX(op_sse_int),
    [0xf1] = SMX(op_sse_int), [0xf2] = SMX(op_sse_int), [0xf3] = SMX(op_sse_int),
    [0xf4] = SMX(op_sse_int), [0xf5] = SMX(op_sse_int), [0xf6] = SMX(op_sse_int),
    [0xf7] = SMX(op_maskmov),
    [0xf8] = SMX(op_sse_int), [0xf9] = SMX(op_sse_int), [0xfa] = SMX(op_sse_int),
    [0xfb] = SMX(op_sse_int), [0xfc] = SMX(op_sse_int), [0xfd] = SMX(op_sse_int),
    [0xfe] = SMX(op_sse_int),
    [0x0d] = HINT, /* prefetchw */
    [0x18] = HINT, [0x19] = HINT, [0x1a] = HINT, [0x1b] = HINT,
    [0x1c] = HINT, [0x1d] = HINT, [0x1e] = HINT, [0x1f] = HINT,
    [0x20] = OP(op_mov_cr, D_MODRM | D_REGONLY), [0x21] = OP(op_mov_dr, D_MODRM | D_REGONLY),
    [0x22] = OP(op_mov_cr, D_MODRM | D_REGONLY), [0x23] = OP(op_mov_dr, D_MODRM | D_REGONLY),
    [0x30] = OP(op_msr, 0), [0x31] = OP(op_rdtsc, 0), [0x32] = OP(op_msr, 0),
    [0x34] = OP(op_sysenter, 0), [0x35] = OP(op_sysexit, 0),
    [0x40] = CMOV, [0x41] = CMOV, [0x42] = CMOV, [0x43] = CMOV,
    [0x44] = CMOV, [0x45] = CMOV, [0x46] = CMOV, [0x47] = CMOV,
    [0x48] = CMOV, [0x49] = CMOV, [0x4a] = CMOV, [0x4b] = CMOV,
    [0x4c] = CMOV, [0x4d] = CMOV, [0x4e] = CMOV, [0x4f] = CMOV,
    [0x80] = JCC32, [0x81] = JCC32, [0x82] = JCC32, [0x83] = JCC32,
    [0x84] = JCC32, [0x85] = JCC32, [0x86] = JCC32, [0x87] = JCC32,
    [0x88] = JCC32, [0x89] = JCC32, [0x8a] = JCC32, [0x8b] = JCC32,
    [0x8c] = JCC32, [0x8d] = JCC32, [0x8e] = JCC32, [0x8f] = JCC32,
    [0x90] = SETCC, [0x91] = SETCC, [0x92] = SETCC, [0x93] = SETCC,
    [0x94] = SETCC, [0x95] = SETCC, [0x96] = SETCC, [0x97] = SETCC,
    [0x98] = SETCC, [0x99] = SETCC, [0x9a] = SETCC, [0x9b] = SETCC,
    [0x9c] = SETCC, [0x9d] = SETCC, [0x9e] = SETCC, [0x9f] = SETCC,
    [0xa0] = OP(op_push_sreg, D_DEF64), [0xa1] = OP(op_pop_sreg, D_DEF64),
    [0xa2] = OP(op_cpuid, 0), [0xa3] = OP(op_bt_rm_r, D_MODRM),
    [0xa4] = OP(op_shld, D_MODRM | D_IMM8), [0xa5] = OP(op_shld, D_MODRM),
    [0xa8] = OP(op_push_sreg, D_DEF64), [0xa9] = OP(op_pop_sreg, D_DEF64),
    [0xab] = OP(op_bt_rm_r, D_MODRM),
    [0xac] = OP(op_shrd, D_MODRM | D_IMM8), [0xad] = OP(op_shrd, D_MODRM),
    [0xaf] = OP(op_imul_r_rm, D_MODRM),
    [0xb0] = OP(op_cmpxchg, D_MODRM | D_BYTE), [0xb1] = OP(op_cmpxchg, D_MODRM),
    [0xb2] = OP(op_lxs, D_MODRM | D_MEMONLY), [0xb3] = OP(op_bt_rm_r, D_MODRM),
    [0xb4] = OP(op_lxs, D_MODRM | D_MEMONLY), [0xb5] = OP(op_lxs, D_MODRM | D_MEMONLY),
    [0xb6] = OP(op_movzx, D_MODRM | D_RMBYTE), [0xb7] = OP(op_movzx, D_MODRM),
    [0xb8] = OP(op_popcnt, D_MODRM),
    [0xba] = GRP(grp8, 0), [0xbb] = OP(op_bt_rm_r, D_MODRM),
    [0xbc] = OP(op_bsf, D_MODRM), [0xbd] = OP(op_bsr, D_MODRM),
    [0xbe] = OP(op_movsx, D_MODRM | D_RMBYTE), [0xbf] = OP(op_movsx, D_MODRM),
    [0xc0] = OP(op_xadd, D_MODRM | D_BYTE), [0xc1] = OP(op_xadd, D_MODRM),
    [0xc7] = GRP(grp9, 0),
    [0xc8] = BSWAP, [0xc9] = BSWAP, [0xca] = BSWAP, [0xcb] = BSWAP,
    [0xcc] = BSWAP, [0xcd] = BSWAP, [0xce] = BSWAP, [0xcf] = BSWAP,
};

/* ---- decoding ------------------------------------------------------------- */

/* 16-bit ModRM addressing: base, index and default segment per r/m. */
static const uint8_t rm16_base[8] = { R_BX, R_BX, R_BP, R_BP, X86_NOREG, X86_NOREG, R_BP, R_BX };
static const uint8_t rm16_index[8] = { R_SI, R_DI, R_SI, R_DI, R_SI, R_DI, X86_NOREG, X86_NOREG };

struct cursor {
    const uint8_t *p;
    unsigned pos, avail;
    bool short_;
};

static uint64_t take(struct cursor *k, unsigned n)
{
    if (k->pos + n > k->avail) {
        k->short_ = true;
        k->pos += n;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned b = 0; b < n; b++)
        v |= (uint64_t)k->p[k->pos + b] << (8 * b);
    k->pos += n;
    return v;
}

/* A byte register code: without REX, 4..7 mean AH, CH, DH, BH. */
static uint8_t byte_reg(unsigned r, bool rex)
{
    return (!rex && r >= 4 && r < 8) ? (uint8_t)(16 + r - 4) : (uint8_t)r;
}

/* Table handlers that fit insn->pure as they are. */
static bool generic_pure(x86_handler fn)
{
    return fn == op_mov_r_imm || fn == op_xchg_a_r || fn == op_nop || fn == op_cbw ||
           fn == op_cwd || fn == op_bswap;
}

static int decode(const struct x86_cpu *c, const uint8_t *bytes, unsigned avail,
                  struct x86_insn *out, bool specialise)
{
    struct cursor k = { bytes, 0, avail, false };
    struct x86_insn i;
    memset(&i, 0, sizeof i);
    i.base = i.index = X86_NOREG;
    i.rm = X86_NOREG;
    unsigned seg_override = S_NONE;
    bool osz = false, asz = false;
    bool mode64 = c->long64;

    /* Legacy prefixes, then REX (which must come last). */
    for (;;) {
        if (k.pos >= X86_MAX_INSN)
            goto too_long;
        if (k.pos >= avail)
            return 0;
        uint8_t b = bytes[k.pos];
        switch (b) {
        case 0xf0: i.lock = 1; break;
        case 0xf2: case 0xf3: i.rep = b; break;
        case 0x26: seg_override = S_ES; break;
        case 0x2e: seg_override = S_CS; break;
        case 0x36: seg_override = S_SS; break;
        case 0x3e: seg_override = S_DS; break;
        case 0x64: seg_override = S_FS; break;
        case 0x65: seg_override = S_GS; break;
        case 0x66: osz = true; break;
        case 0x67: asz = true; break;
        default: goto prefixes_done;
        }
        k.pos++;
    }
prefixes_done:
    if (mode64 && (bytes[k.pos] & 0xf0) == 0x40) {
        i.rex = bytes[k.pos];
        k.pos++;
        if (k.pos >= avail)
            return k.pos >= X86_MAX_INSN ? -1 : 0;
    }
    bool rex_w = i.rex & 8, rex_r = i.rex & 4, rex_x = i.rex & 2, rex_b = i.rex & 1;
    i.osz = osz;

    /* Opcode. */
    uint8_t op = (uint8_t)take(&k, 1);
    const struct opdesc *d;
    if (op == 0x0f) {
        uint8_t op2 = (uint8_t)take(&k, 1);
        if (k.short_)
            return k.pos > X86_MAX_INSN ? -1 : 0;
        i.opcode = (uint16_t)(0x0f00 | op2);
        d = &map2[op2];
        if (d->flags & D_SSE) {
            static const struct opdesc sse_ud = SN;
            d = i.lock ? &sse_ud : &d->group[i.rep == 0xf3 ? 2 : i.rep == 0xf2 ? 3 : osz];
        }
    } else {
        i.opcode = op;
        d = &map1[op];
        /* 63 is arpl outside 64-bit mode, movsxd inside. */
        static const struct opdesc arpl = OP(op_arpl, D_MODRM | D_OP16);
        if (op == 0x63 && !mode64)
            d = &arpl;
    }
    uint32_t flags = d->flags;

    /* Operand and address sizes. */
    unsigned cs = c->code_size;
    unsigned opsize, addrsize;
    if (mode64) {
        addrsize = asz ? 4 : 8;
        opsize = rex_w ? 8 : osz ? 2 : 4;
    } else {
        addrsize = (cs == 2) != asz ? 2 : 4;
        opsize = (cs == 2) != osz ? 2 : 4;
    }

    /* ModRM, SIB, displacement. */
    uint8_t modrm = 0;
    if (flags & D_MODRM) {
        modrm = (uint8_t)take(&k, 1);
        if (k.short_)
            return k.pos > X86_MAX_INSN ? -1 : 0;
        if (flags & D_GROUP) {
            unsigned g = (modrm >> 3) & 7;
            if (flags & D_GROUP16)
                g += modrm >= 0xc0 ? 8 : 0;
            const struct opdesc *m = &d->group[g];
            flags = (flags & ~(D_GROUP | D_GROUP16)) | m->flags;
            d = i.lock && (d->flags & D_GROUP16) ? NULL : m; /* no lock on x87/SSE */
        }
    }
    if (mode64 && (flags & D_FORCE64))
        opsize = 8;
    else if (mode64 && (flags & D_DEF64))
        opsize = osz ? 2 : 8;
    if (flags & D_BYTE)
        opsize = 1;
    if (flags & D_OP16)
        opsize = 2;
    i.opsize = (uint8_t)opsize;
    i.addrsize = (uint8_t)addrsize;

    unsigned default_seg = S_DS;
    if (flags & D_MODRM) {
        unsigned mod = (flags & D_REGONLY) ? 3 : modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
        i.sub = (uint8_t)reg;
        unsigned regfull = reg | (rex_r ? 8 : 0);
        i.reg = (flags & D_BYTE) ? byte_reg(regfull, i.rex) : (uint8_t)regfull;
        if (mod == 3) {
            unsigned rmfull = rm | (rex_b ? 8 : 0);
            i.rm = (flags & (D_BYTE | D_RMBYTE)) ? byte_reg(rmfull, i.rex) : (uint8_t)rmfull;
            if (flags & D_MEMONLY)
                d = NULL;
        } else {
            i.mem = 1;
            if (addrsize == 2) {
                if (mod == 0 && rm == 6) {
                    i.disp = (uint64_t)(int64_t)(int16_t)take(&k, 2);
                } else {
                    i.base = rm16_base[rm];
                    i.index = rm16_index[rm];
                    if (mod == 1)
                        i.disp = (uint64_t)(int64_t)(int8_t)take(&k, 1);
                    else if (mod == 2)
                        i.disp = (uint64_t)(int64_t)(int16_t)take(&k, 2);
                    if (i.base == R_BP)
                        default_seg = S_SS;
                }
            } else {
                unsigned base = rm | (rex_b ? 8 : 0);
                if (rm == 4) {
                    uint8_t sib = (uint8_t)take(&k, 1);
                    unsigned idx = ((sib >> 3) & 7) | (rex_x ? 8 : 0);
                    i.scale = sib >> 6;
                    i.index = idx == 4 ? X86_NOREG : (uint8_t)idx;
                    base = (sib & 7) | (rex_b ? 8 : 0);
                    if ((sib & 7) == 5 && mod == 0) {
                        base = X86_NOREG;
                        i.disp = (uint64_t)(int64_t)(int32_t)take(&k, 4);
                    }
                } else if (rm == 5 && mod == 0) {
                    base = mode64 ? X86_RIPREL : X86_NOREG;
                    i.disp = (uint64_t)(int64_t)(int32_t)take(&k, 4);
                }
                i.base = (uint8_t)base;
                if (mod == 1)
                    i.disp = (uint64_t)(int64_t)(int8_t)take(&k, 1);
                else if (mod == 2)
                    i.disp = (uint64_t)(int64_t)(int32_t)take(&k, 4);
                if (base == R_SP || base == R_BP)
                    default_seg = S_SS;
            }
        }
    } else if (flags & D_REGOP) {
        unsigned r = (i.opcode & 7) | (rex_b ? 8 : 0);
        i.reg = (flags & D_BYTE) ? byte_reg(r, i.rex) : (uint8_t)r;
        i.sub = (uint8_t)(i.opcode & 7);
    } else {
        i.sub = (uint8_t)(i.opcode & 0xf); /* conditions of jcc and friends */
    }
    if ((i.opcode & 0xfff0) == 0x0f40 || (i.opcode & 0xfff0) == 0x0f80 ||
        (i.opcode & 0xfff0) == 0x0f90 || (i.opcode & 0xfff0) == 0x70)
        i.sub = (uint8_t)(i.opcode & 0xf);
    /* In 64-bit mode CS, DS, ES and SS overrides are ignored. */
    if (seg_override != S_NONE && !(mode64 && seg_override < S_FS))
        i.seg = (uint8_t)seg_override;
    else
        i.seg = (uint8_t)default_seg;

    /* Immediates. */
    if (flags & D_MOFFS)
        i.disp = take(&k, addrsize);
    if (flags & D_ENTER) {
        i.imm = take(&k, 2);
        i.imm2 = take(&k, 1);
    } else if (flags & D_FAR) {
        i.imm = take(&k, opsize == 2 ? 2 : 4);
        i.imm2 = take(&k, 2);
    } else if (flags & D_IMM8) {
        i.imm = take(&k, 1);
        if (flags & D_SX)
            i.imm = x86_sext(i.imm, 1) & x86_mask(opsize);
    } else if (flags & D_IMM16) {
        i.imm = take(&k, 2);
    } else if (flags & D_IMMZ) {
        unsigned n = opsize == 2 ? 2 : 4;
        i.imm = x86_sext(take(&k, n), n) & x86_mask(opsize);
    } else if (flags & D_IMMV) {
        i.imm = take(&k, opsize);
    }
    if (k.pos > X86_MAX_INSN)
        goto too_long;
    if (k.short_)
        return 0;
    i.len = (uint8_t)k.pos;

    if (!d || !d->fn || (mode64 && (flags & D_INV64)) || (i.lock && !(i.mem))) {
        i.fn = op_ud;
        __atomic_fetch_add(&x86_ud_count, 1, __ATOMIC_RELAXED);
    } else {
        i.fn = d->fn;
    }
    /* The specialisations are exclusive: the first that applies wins. What
     * is pure is said in ops.h (x86_pure_move). */
    x86_handler g = i.fn;
    if (!specialise || g == op_ud)
        i.pure = generic_pure(g);
    else if ((i.fn = x86_specialize_alu(&i)) != g || (i.fn = x86_specialize_shift(&i)) != g ||
             (i.fn = x86_specialize_muldiv(&i)) != g)
        i.pure = !i.mem;
    else if ((i.fn = x86_specialize_mov(&i)) != g)
        i.pure = x86_pure_move(i.fn);
    else if ((i.fn = x86_specialize_stack(&i)) == g)
        i.pure = generic_pure(g);
    *out = i;
    return (int)i.len;

too_long:
    memset(out, 0, sizeof *out);
    out->fn = op_gp0;
    out->len = X86_MAX_INSN;
    out->opcode = bytes[0];
    return -1;
}

int x86_decode(const struct x86_cpu *c, const uint8_t *bytes, unsigned avail,
               struct x86_insn *out)
{
    return decode(c, bytes, avail, out, true);
}

int x86_decode_generic(const struct x86_cpu *c, const uint8_t *bytes, unsigned avail,
                       struct x86_insn *out)
{
    return decode(c, bytes, avail, out, false);
}

void x86_describe(const struct x86_insn *i, const uint8_t *bytes, char *buf, unsigned size)
{
    unsigned n = 0;
    for (unsigned b = 0; b < i->len && b < X86_MAX_INSN && n + 4 < size; b++)
        n += (unsigned)snprintf(buf + n, size - n, "%s%02x", b ? " " : "", bytes[b]);
    if (n < size)
        snprintf(buf + n, size - n, " (opcode %s%02x)", i->opcode > 0xff ? "0f " : "",
                 i->opcode & 0xff);
}
