/*
 * difftest: the differential oracle between two libvx accelerators.
 *
 * Shared between the generator (difftest_gen.c: the x86 encoder, the
 * instruction templates, the static model of what a sequence needs and
 * leaves undefined) and the runner (difftest.c: machines, batches,
 * comparison, minimisation and reports).
 */
#ifndef DIFFTEST_GEN_H
#define DIFFTEST_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the guest's memory map (identical on both machines) ----------------- */

/* Each sequence of a batch owns one 4 KiB data page (its memory operands and
 * its stack live there) and one control slot (the initial state the load stub
 * reads, the final state the save stub writes). Data pages start at 0x1000 and
 * stay below 64 KiB in 32-bit mode so 16-bit addressing (0x67) reaches them. */
#define DT_PAGE_LO 0x1000u
#define DT_SLOTS_LONG64 48
#define DT_SLOTS_PROT32 15
#define DT_MAX_SLOTS 48
#define DT_CTRL_GPA 0x40000u      /* control slots, DT_SLOT_SIZE each */
#define DT_SLOT_SIZE 0x200u
#define DT_SLOT_INIT 0x000u       /* 16 registers, then rflags at +128 */
#define DT_SLOT_SAVE 0x100u
#define DT_CODE_GPA 0x50000u      /* the batch's code, up to DT_CODE_MAX bytes */
#define DT_CODE_MAX 0xb0000u
#define DT_TABLES_GPA 0x100000u   /* vx_vcpu_set_mode()'s tables */
#define DT_FPU_GPA 0x180000u      /* 64-bit mode: per slot an FXSAVE image to load, one saved */
#define DT_FPU_SLOT 0x400u
#define DT_FPU_SAVE 0x200u
#define DT_RAM_SIZE 0x200000u
#define DT_PORT 0x99              /* the unclaimed port of the final `out` */

/* Segment bases the runner gives FS and GS (segment-override forms). Chosen so
 * that every override form can still reach every data page. */
#define DT_FS_BASE64 0x800ull
#define DT_GS_BASE64 0xfffffffffff00000ull
#define DT_FS_BASE32 0x800ull
#define DT_GS_BASE32 0xfffff000ull

/* ---- flags --------------------------------------------------------------- */
#define F_CF 0x001u
#define F_PF 0x004u
#define F_AF 0x010u
#define F_ZF 0x040u
#define F_SF 0x080u
#define F_TF 0x100u
#define F_IF 0x200u
#define F_DF 0x400u
#define F_OF 0x800u
#define F_NT 0x4000u
#define F_AC 0x40000u
#define F_ID 0x200000u
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)
#define F_IOPL3 0x3000u

enum dt_mode { DM_LONG64 = 0, DM_PROT32 = 1, DM_COUNT };

/* Registers, in encoding order. 16..19 are ah, ch, dh, bh (8-bit only). */
enum { R_AX, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI, R_8, R_9, R_10, R_11, R_12, R_13,
       R_14, R_15, R_AH = 16, R_CH, R_DH, R_BH, R_RIP = 32, R_NONE = -1 };
#define NGPR 16

/* What the generator knows about a register: its exact value, or nothing.
 * rel: the value is relative to the sequence's data page (a pointer), so the
 * real value is v + page base. */
struct rk {
    uint8_t known, rel;
    uint64_t v;
};

/* A value patched in when the code is placed: addend + mult * page base
 * (+ the instance's own address if code, - the end of its instruction if
 * pcrel), truncated to size bytes. */
struct reloc {
    uint16_t off, end;
    uint8_t size, pcrel, code;
    int8_t mult;
    int64_t addend;
};

/* What an instance needs of the state it starts in. */
enum { RQ_EXACT = 1, RQ_RANGE = 2 };
struct req {
    uint8_t reg, kind, rel;
    uint64_t v;          /* RQ_EXACT: the value the register must hold */
    int32_t lo, hi;      /* RQ_RANGE: page offset (rel register) in [lo, hi] */
};

/* Its net effect on a register. */
enum { EF_NONE = 0, EF_UNKNOWN, EF_KNOWN, EF_DELTA };
struct eff {
    uint8_t kind, rel;
    uint64_t v;          /* EF_KNOWN: the value; EF_DELTA: added to the old value */
};

#define INST_MAX 160
#define INST_RELOCS 8
#define INST_REQS 8

/* One instance of a template: a few machine instructions (its own setups,
 * the instruction under test, for branches their bodies), self-contained so
 * that any subset of a sequence's instances that passes dt_validate() is
 * again a valid sequence (what minimisation needs). */
struct inst {
    uint16_t tmpl;       /* index into dt_templates */
    uint16_t form;       /* variant * 16 + width index * 2 + (memory operand) */
    uint8_t len, nins, nrel, nreq;
    uint8_t bytes[INST_MAX];
    struct reloc rel[INST_RELOCS];
    struct req req[INST_REQS];
    struct eff eff[NGPR];
    uint32_t fread;      /* flags that must be defined when it starts */
    uint32_t fdef;       /* flags it surely leaves defined */
    uint32_t fundef;     /* flags it may leave undefined */
    int16_t bug_off;     /* --inject-bug: byte to flip on the second machine, or -1 */
    uint8_t bug_xor;
};

#define SEQ_MAX 32

/* A sequence: its initial state and its instances. */
struct seq {
    int mode;
    uint64_t seed;           /* the data page's contents come from it */
    struct rk init[NGPR];    /* every register known; rsp rel */
    uint32_t init_flags;     /* rflags, IOPL 3 and bit 1 included */
    int n;
    struct inst ins[SEQ_MAX];
    uint32_t final_undef;    /* flags undefined at the end (computed) */
};

/* ---- templates ----------------------------------------------------------- */

struct bld;
typedef void (*tmpl_fn)(struct bld *b, int param);

/* Template properties. */
#define T_LONG64 0x1u       /* exists in 64-bit mode */
#define T_PROT32 0x2u       /* exists in 32-bit mode */
#define T_BOTH (T_LONG64 | T_PROT32)
#define T_NORING0 0x4u      /* never in ring 0 (kvm's emulator cannot) */

/* form width index */
enum { W8 = 0, W8H, W16, W32, W64, WN };

struct tmpl {
    const char *name;
    tmpl_fn fn;
    int param;
    unsigned props;
    unsigned weight;        /* relative frequency, 0 means 2 */
};

extern const struct tmpl dt_templates[];
extern const unsigned dt_ntemplates;

/* ---- the generator's interface ------------------------------------------ */

struct gen_cfg {
    int mode;
    int ring;
    int maxlen;              /* instances per sequence, at most SEQ_MAX */
    const uint8_t *enabled;  /* per template: may be generated */
    int mask_if_iopl;        /* the oracle's pushf shows the host's IF and IOPL */
    unsigned sreg_ok;        /* segment registers (es cs ss ds fs gs) it reads faithfully */
};

/* The splitmix64 step: seeds and hashes. */
static inline uint64_t dt_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Generate the sequence for this seed. */
void dt_generate(const struct gen_cfg *cfg, uint64_t seed, struct seq *s);

/* Check that a sequence (typically a subset of a generated one) is valid: the
 * registers each instance relies on hold what it expects, it reads no
 * undefined flag, the stack stays in the page. On success fills
 * s->final_undef and returns true. */
bool dt_validate(struct seq *s);

/* The data page's initial contents. */
void dt_fill_page(uint64_t seed, uint8_t page[4096]);

/* The initial x87/SSE state (an FXSAVE image) of a 64-bit sequence: random
 * XMM lanes and x87 registers (normal, zero, denormal, infinite, NaN
 * values), random tags and TOP, random rounding, precision, DAZ and FZ,
 * every exception masked. */
void dt_fill_fpu(uint64_t seed, uint8_t img[512]);

/* Place an instance's bytes at guest address addr for a sequence whose data
 * page is page_base: copy and apply its relocations. */
void dt_place(const struct inst *in, uint64_t addr, uint64_t page_base, int mode, uint8_t *out);

/* The real initial value of a register. */
uint64_t dt_value(const struct rk *k, uint64_t page_base, int mode);

/* A sequence of one instance made of these bytes (no memory operands, rax
 * and rcx clobbered), for probing the oracle. */
void dt_raw_seq(struct seq *s, int mode, const uint8_t *bytes, int len);

/* Width index of a form, for reports. */
const char *dt_form_name(unsigned tmpl, unsigned form, char *buf, size_t len);

#endif
