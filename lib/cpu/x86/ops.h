/*
 * Instruction semantics: one handler per operation (or per operation
 * family, with the member in insn->sub or insn->opcode). The decoder's
 * tables (decode.c) name them. A handler runs with cpu->rip at the
 * instruction and cpu->next_rip after it; it returns X86_OK to go on,
 * X86_BRANCH after setting cpu->next_rip itself, X86_EXCEPTION after
 * x86_raise*(), or X86_EXIT. It must not change architectural state before
 * a check that can still fault (faults are restartable).
 */
#ifndef VX_CPU_X86_OPS_H
#define VX_CPU_X86_OPS_H

#include "cpu/x86/insn.h"

#define X86_OP(name) enum x86_status name(struct x86_cpu *c, const struct x86_insn *i)

/* ops_alu.c: add/or/adc/sbb/and/sub/xor/cmp (member: bits 5:3 of the
 * one-byte opcode, or insn->sub for group 1), test, inc/dec, not/neg,
 * flag instructions, lahf/sahf, cbw/cwd families, BCD adjust. */
X86_OP(op_alu_rm_r);   /* 00 01 08 09 ... 38 39: op r/m, reg */
X86_OP(op_alu_r_rm);   /* 02 03 ... 3a 3b: op reg, r/m */
X86_OP(op_alu_a_imm);  /* 04 05 ... 3c 3d: op al/ax/eax/rax, imm */
X86_OP(op_alu_rm_imm); /* 80 81 83: group 1, op r/m, imm (member in sub) */
X86_OP(op_test_rm_r);  /* 84 85 */
X86_OP(op_test_a_imm); /* a8 a9 */
X86_OP(op_inc_dec_r);  /* 40-4f outside 64-bit mode */
X86_OP(op_grp3);       /* f6 f7: test/not/neg/mul/imul/div/idiv r/m */
X86_OP(op_inc_dec_rm); /* fe /0 /1, ff /0 /1 */
X86_OP(op_cbw);        /* 98: cbw/cwde/cdqe */
X86_OP(op_cwd);        /* 99: cwd/cdq/cqo */
X86_OP(op_lahf);       /* 9f */
X86_OP(op_sahf);       /* 9e */
X86_OP(op_flag);       /* f5 cmc, f8 clc, f9 stc, fc cld, fd std, fa cli, fb sti */
X86_OP(op_bcd);        /* 27 daa, 2f das, 37 aaa, 3f aas, d4 aam, d5 aad (not in 64-bit mode) */
X86_OP(op_salc);       /* d6 (not in 64-bit mode) */

/* ops_muldiv.c: multiplication and division (faults: #DE). */
X86_OP(op_mul);        /* f6/f7 /4: used by op_grp3 */
X86_OP(op_imul1);      /* f6/f7 /5 */
X86_OP(op_div);        /* f6/f7 /6 */
X86_OP(op_idiv);       /* f6/f7 /7 */
X86_OP(op_imul_r_rm);  /* 0f af */
X86_OP(op_imul_r_rm_imm); /* 69 6b */

/* ops_shift.c: shifts, rotates and bit operations. */
X86_OP(op_shift);      /* c0 c1 (imm8), d0 d1 (1), d2 d3 (cl): member in sub */
X86_OP(op_shld);       /* 0f a4 (imm8), 0f a5 (cl) */
X86_OP(op_shrd);       /* 0f ac (imm8), 0f ad (cl) */
X86_OP(op_bt_rm_r);    /* 0f a3 bt, 0f ab bts, 0f b3 btr, 0f bb btc */
X86_OP(op_bt_rm_imm);  /* 0f ba /4../7 */
X86_OP(op_bsf);        /* 0f bc; with f3: tzcnt */
X86_OP(op_bsr);        /* 0f bd; with f3: lzcnt */
X86_OP(op_popcnt);     /* f3 0f b8 */
X86_OP(op_bswap);      /* 0f c8-cf */

/* ops_move.c: data movement, exchange, conditional moves and sets. */
X86_OP(op_mov_rm_r);   /* 88 89 */
X86_OP(op_mov_r_rm);   /* 8a 8b */
X86_OP(op_mov_r_imm);  /* b0-bf */
X86_OP(op_mov_rm_imm); /* c6 c7 /0 */
X86_OP(op_mov_a_moffs);  /* a0 a1 */
X86_OP(op_mov_moffs_a);  /* a2 a3 */
X86_OP(op_mov_rm_sreg);  /* 8c */
X86_OP(op_mov_sreg_rm);  /* 8e */
X86_OP(op_lea);        /* 8d */
X86_OP(op_movzx);      /* 0f b6 0f b7 */
X86_OP(op_movsx);      /* 0f be 0f bf */
X86_OP(op_movsxd);     /* 63 in 64-bit mode */
X86_OP(op_xchg_rm_r);  /* 86 87 */
X86_OP(op_xchg_a_r);   /* 91-97 (90 with REX.B) */
X86_OP(op_cmpxchg);    /* 0f b0 0f b1 */
X86_OP(op_cmpxchg8b);  /* 0f c7 /1 (16b with REX.W) */
X86_OP(op_xadd);       /* 0f c0 0f c1 */
X86_OP(op_setcc);      /* 0f 90-9f */
X86_OP(op_cmovcc);     /* 0f 40-4f */
X86_OP(op_xlat);       /* d7 */
X86_OP(op_nop);        /* 90, 0f 1f /0, 0f 18-1e hints, pause */
X86_OP(op_cpuid);      /* 0f a2 */
X86_OP(op_rdtsc);      /* 0f 31 */
X86_OP(op_hlt);        /* f4 */
X86_OP(op_ud);         /* any encoding not implemented, 0f 0b ud2 */
X86_OP(op_gp0);        /* over 15 bytes */
X86_OP(op_lxs);        /* c4 les, c5 lds, 0f b2 lss, 0f b4 lfs, 0f b5 lgs */
X86_OP(op_bound);      /* 62 (not in 64-bit mode) */
X86_OP(op_arpl);       /* 63 outside 64-bit mode */

/* ops_stack.c: stack and control transfer. */
X86_OP(op_push_r);     /* 50-57 */
X86_OP(op_pop_r);      /* 58-5f */
X86_OP(op_push_imm);   /* 68 6a */
X86_OP(op_push_rm);    /* ff /6 */
X86_OP(op_pop_rm);     /* 8f /0 */
X86_OP(op_push_sreg);  /* 06 0e 16 1e 0f a0 0f a8 */
X86_OP(op_pop_sreg);   /* 07 17 1f 0f a1 0f a9 */
X86_OP(op_pusha);      /* 60 */
X86_OP(op_popa);       /* 61 */
X86_OP(op_pushf);      /* 9c */
X86_OP(op_popf);       /* 9d */
X86_OP(op_enter);      /* c8 */
X86_OP(op_leave);      /* c9 */
X86_OP(op_jmp_rel);    /* e9 eb */
X86_OP(op_jcc);        /* 70-7f, 0f 80-8f */
X86_OP(op_call_rel);   /* e8 */
X86_OP(op_ret);        /* c3, c2 iw */
X86_OP(op_jmp_rm);     /* ff /4 */
X86_OP(op_call_rm);    /* ff /2 */
X86_OP(op_loop);       /* e0 loopne, e1 loope, e2 loop */
X86_OP(op_jcxz);       /* e3 */
X86_OP(op_jmp_far);    /* ea, ff /5 */
X86_OP(op_call_far);   /* 9a, ff /3 */
X86_OP(op_retf);       /* cb, ca iw */
X86_OP(op_iret);       /* cf */

/* ops_string.c: string instructions (rep prefixes, DF) and port I/O. */
X86_OP(op_movs);       /* a4 a5 */
X86_OP(op_cmps);       /* a6 a7 */
X86_OP(op_stos);       /* aa ab */
X86_OP(op_lods);       /* ac ad */
X86_OP(op_scas);       /* ae af */
X86_OP(op_ins);        /* 6c 6d */
X86_OP(op_outs);       /* 6e 6f */
X86_OP(op_in);         /* e4 e5 (imm8 port), ec ed (dx) */
X86_OP(op_out);        /* e6 e7 (imm8 port), ee ef (dx) */

/* ops_system.c: system instructions (int n, int3, into, int1 are here too). */
X86_OP(op_int3);       /* cc */
X86_OP(op_int);        /* cd */
X86_OP(op_into);       /* ce */
X86_OP(op_int1);       /* f1 */
X86_OP(op_grp6);       /* 0f 00: sldt str lldt ltr verr verw */
X86_OP(op_grp7);       /* 0f 01: sgdt sidt lgdt lidt smsw lmsw invlpg swapgs rdtscp */
X86_OP(op_lar_lsl);    /* 0f 02 lar, 0f 03 lsl */
X86_OP(op_syscall);    /* 0f 05 */
X86_OP(op_clts);       /* 0f 06 */
X86_OP(op_sysret);     /* 0f 07 */
X86_OP(op_invd);       /* 0f 08 invd, 0f 09 wbinvd */
X86_OP(op_mov_cr);     /* 0f 20, 0f 22 */
X86_OP(op_mov_dr);     /* 0f 21, 0f 23 */
X86_OP(op_msr);        /* 0f 30 wrmsr, 0f 32 rdmsr */
X86_OP(op_sysenter);   /* 0f 34 */
X86_OP(op_sysexit);    /* 0f 35 */

/* ops_fpu.c: x87 (d8-df by ModRM; see the table in decode.c), fwait,
 * fxsave/fxrstor. */
X86_OP(op_fpu_arith_m); /* fadd fmul fsub fsubr fdiv fdivr m32/m64, fi* m16/m32 */
X86_OP(op_fpu_arith_r); /* the same between st(0) and st(i); de: and pop */
X86_OP(op_fpu_com_m);   /* fcom fcomp m32/m64, ficom ficomp m16/m32 */
X86_OP(op_fpu_com_r);   /* fcom fcomp fcompp fucom fucomp fucompp st(i) */
X86_OP(op_fpu_comi);    /* fcomi fcomip fucomi fucomip */
X86_OP(op_fpu_ld_m);    /* fld m32/m64/m80, fild m16/m32/m64, fbld */
X86_OP(op_fpu_st_m);    /* fst(p) m32/m64/m80, fist(p) fisttp m16/m32/m64, fbstp */
X86_OP(op_fpu_ld_r);    /* fld st(i) */
X86_OP(op_fpu_st_r);    /* fst fstp st(i) */
X86_OP(op_fpu_fxch);    /* fxch st(i) */
X86_OP(op_fpu_ffree);   /* ffree, ffreep */
X86_OP(op_fpu_fcmov);   /* fcmovcc */
X86_OP(op_fpu_d9);      /* d9 e0-ff and fnop: fchs ... fcos, constants */
X86_OP(op_fpu_db);      /* db e0-e7: fnclex fninit (feni fdisi fsetpm: nop) */
X86_OP(op_fpu_env);     /* fldenv fldcw fnstenv fnstcw frstor fnsave fnstsw */
X86_OP(op_fwait);       /* 9b */
X86_OP(op_fxsave);      /* 0f ae /0 */
X86_OP(op_fxrstor);     /* 0f ae /1 */

/* ops_sse.c: SSE, SSE2 and MMX (0f map, mandatory prefix none/66/f3/f2). */
X86_OP(op_sse_mov);     /* movups movupd movss movsd movaps movapd movdqa movdqu movnt* */
X86_OP(op_sse_movhl);   /* movlps movhps movlpd movhpd movhlps movlhps */
X86_OP(op_sse_movq);    /* movd movq (mm, xmm, r/m), movntq */
X86_OP(op_movnti);      /* 0f c3 */
X86_OP(op_emms);        /* 0f 77 */
X86_OP(op_sse_int);     /* packed integer and bitwise operations */
X86_OP(op_sse_shift_imm); /* 0f 71-73 groups */
X86_OP(op_pshuf);       /* pshufw pshufd pshufhw pshuflw */
X86_OP(op_shufp);       /* shufps shufpd unpck[lh]p[sd] */
X86_OP(op_pinsrw);
X86_OP(op_pextrw);
X86_OP(op_movmsk);      /* pmovmskb movmskps movmskpd */
X86_OP(op_maskmov);     /* maskmovq maskmovdqu */
X86_OP(op_sse_fp);      /* add sub mul div min max sqrt rcp rsqrt, ps pd ss sd */
X86_OP(op_sse_cmp);     /* cmpps cmppd cmpss cmpsd */
X86_OP(op_sse_comi);    /* comiss comisd ucomiss ucomisd */
X86_OP(op_sse_cvt);     /* conversions */
X86_OP(op_ldmxcsr);
X86_OP(op_stmxcsr);
X86_OP(op_fence);       /* lfence mfence sfence */
X86_OP(op_clflush);
/* The checks every SSE instruction makes first: #UD (CR0.EM, no CR4.OSFXSR)
 * then #NM (CR0.TS). */
enum x86_status x86_sse_check(struct x86_cpu *c);

/* Decode-time specialisation: a faster handler for the same instruction
 * (register forms of 32/64-bit ALU operations), or i->fn itself. */
x86_handler x86_specialize_alu(const struct x86_insn *i);
/* The same for register forms of rol/ror/shl/shr/sar by an immediate or 1. */
x86_handler x86_specialize_shift(const struct x86_insn *i);
/* The same for 32/64-bit mov between registers and memory, lea with a
 * 64-bit address, movzx/movsx/movsxd, and the register forms of cmovcc and
 * setcc. */
x86_handler x86_specialize_mov(const struct x86_insn *i);
/* Which handlers fit insn->pure (register-only, no fault, no rip): those
 * x86_specialize_alu, _shift and _muldiv give for register operands; of
 * x86_specialize_mov's, those x86_pure_move names; none of
 * x86_specialize_stack's. */
bool x86_pure_move(x86_handler fn);
/* The same for push and pop of a 64-bit register. */
x86_handler x86_specialize_stack(const struct x86_insn *i);
/* The same for the register form of 32/64-bit imul reg, r/m. */
x86_handler x86_specialize_muldiv(const struct x86_insn *i);
/* At translation, when the instruction's rip is known (64-bit mode only):
 * jcc/jmp/call rel with a canonical target get it precomputed (in imm2) and
 * a handler that just takes it; a 64-bit ret gets a handler of that width;
 * a RIP-relative or absolute lea becomes a constant (x86_resolve_lea, given
 * the next instruction's rip; true when it did). */
void x86_resolve_branch(const struct x86_cpu *c, struct x86_insn *i, uint64_t rip);
bool x86_resolve_lea(struct x86_insn *i, uint64_t next_rip);
/* At translation, once a block's instructions are decoded and resolved:
 * rewrites that depend on the instruction before (a jcc after an
 * instruction whose lazy flags are known). Returns how many it made. */
unsigned x86_specialize_block(struct x86_insn *insns, unsigned n);
/* The lazy operation (enum x86_cc_op) an instruction always leaves when it
 * completes, at its operand size; -1 when not known (ops_alu.c). */
int x86_flags_left(const struct x86_insn *i);

/* Shared checks. */
/* In/out/ins/outs allowed at this CPL and IOPL (the TSS I/O bitmap when
 * CPL > IOPL)? X86_OK or #GP(0). */
enum x86_status x86_io_allowed(struct x86_cpu *c, uint16_t port, unsigned size);

#endif
