/*
 * A decoded x86 instruction: what the translator caches and the semantics
 * run. Everything the encoding says is resolved once here (operand and
 * address sizes, registers with REX, byte-register coding, the effective
 * segment, immediates), so executing it needs no further decoding.
 */
#ifndef VX_CPU_X86_INSN_H
#define VX_CPU_X86_INSN_H

#include <stdint.h>

#include "cpu/x86/cpu.h"

struct x86_insn;
typedef enum x86_status (*x86_handler)(struct x86_cpu *c, const struct x86_insn *i);

#define X86_NOREG 0xff
#define X86_RIPREL 0xfe /* base: RIP-relative (the next instruction's address) */
#define X86_MAX_INSN 15

struct x86_insn {
    x86_handler fn;
    uint64_t imm;     /* immediate, sign- or zero-extended as the opcode says */
    /* An instruction has a displacement or a second immediate, never both
     * (with the one-bit flags below: 40 bytes, not 56; the translation
     * cache holds many). */
    union {
        uint64_t disp; /* displacement (sign-extended), or the moffs address */
        uint64_t imm2; /* no memory operand: enter's nesting level, a far pointer's
                          selector, a near branch's target resolved at translation */
    };
    uint16_t opcode;  /* 0x00..0xff, 0x0f00..0x0fff: for handlers and messages */
    uint8_t len;      /* bytes, 1..15 */
    uint8_t opsize;   /* operand bytes: 1, 2, 4, 8 */
    uint8_t addrsize; /* address bytes: 2, 4, 8 */
    uint8_t reg;      /* ModRM.reg (+REX.R) or the register in the opcode; byte-coded for byte operands */
    uint8_t rm;       /* register operand when !mem (byte-coded for byte operands) */
    uint8_t base;     /* memory operand: base register, X86_NOREG or X86_RIPREL */
    uint8_t index;    /* memory operand: index register or X86_NOREG */
    uint8_t scale;    /* memory operand: index shift, 0..3 */
    uint8_t seg;      /* memory operand: effective segment (S_*) */
    uint8_t rep;      /* 0, 0xf3 (rep/repe) or 0xf2 (repne) */
    uint8_t sub;      /* ModRM.reg without REX: the group member, or the opcode's condition */
    uint8_t rex;      /* the REX byte, or 0 */
    /* One byte of flags. */
    uint8_t mem : 1;  /* the ModRM r/m operand is memory */
    uint8_t lock : 1; /* a lock prefix was present */
    uint8_t osz : 1;  /* a 0x66 prefix was present (mandatory-prefix instructions) */
    /* 1: the handler works on registers (and the lazy flags) only: it
     * cannot fault, always returns X86_OK, never sets cpu->attention, and
     * reads neither cpu->rip nor cpu->next_rip, which the run loop leaves
     * stale for it (x86_handler_pure). A whole byte (the struct's last
     * spare one): the run loop tests it before every instruction. */
    uint8_t pure;
};

/* Decode one instruction from bytes[0..avail) for the CPU's current mode.
 * Returns the length (the instruction is in *out), 0 when avail is too short
 * to decide (fetch more and call again), or -1 when the bytes are longer than
 * 15 (out->fn raises #GP(0)). An encoding libvx does not implement decodes
 * to a handler that raises #UD, never to nothing. */
_Static_assert(sizeof(struct x86_insn) == 40, "x86_insn grew: the translation cache holds many");

int x86_decode(const struct x86_cpu *c, const uint8_t *bytes, unsigned avail,
               struct x86_insn *out);

/* The same without the decode-time specialisation (x86_specialize_*): every
 * instruction gets its table's generic handler. For tests that compare the
 * specialised handlers with the generic ones. */
int x86_decode_generic(const struct x86_cpu *c, const uint8_t *bytes, unsigned avail,
                       struct x86_insn *out);

/* A one-line description for messages: "0f 0b (ud2)" style. */
void x86_describe(const struct x86_insn *i, const uint8_t *bytes, char *buf, unsigned size);

/* Instructions decoded to #UD so far (all vCPUs of this process), for
 * diagnostics; the last such opcode. */
extern unsigned long x86_ud_count;

#endif
