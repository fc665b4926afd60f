/*
 * Check tests for the guest loaders, vx_load_flat() and vx_load_elf(), with
 * ELF32 and ELF64 images built in memory by the test.
 *
 * Every rejection must leave guest memory exactly as it was: the test fills
 * RAM with 0xAA, snapshots it, loads a bad image and compares. A loader that
 * checks segment 1 only after copying segment 0 fails here.
 *
 * Each test runs once per accelerator and ELF class (tcase_add_loop_test);
 * an accelerator that is not available prints "SKIP: <accel>: <why>".
 */
#define _GNU_SOURCE
#include <libvx/vx.h>

#include <check.h>
#include <ctype.h>
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Helpers shared by the tests                                               */
/* ------------------------------------------------------------------------ */

static const vx_accel loop_accels[] = {VX_ACCEL_KVM, VX_ACCEL_TCG};
#define N_LOOP_ACCELS ((int)(sizeof loop_accels / sizeof loop_accels[0]))
/* Loop index -> accelerator and ELF class. */
#define LOOP_N (N_LOOP_ACCELS * 2)
#define LOOP_ACCEL(i) (loop_accels[(i) / 2])
#define LOOP_CLASS(i) ((i) % 2 ? 64 : 32)

static const char *code_name(int rc)
{
    switch (rc) {
    case VX_OK: return "VX_OK";
    case VX_EINVAL: return "VX_EINVAL";
    case VX_ENOMEM: return "VX_ENOMEM";
    case VX_ENOTSUP: return "VX_ENOTSUP";
    case VX_EEXIST: return "VX_EEXIST";
    case VX_ENOENT: return "VX_ENOENT";
    case VX_EBUSY: return "VX_EBUSY";
    case VX_EACCEL: return "VX_EACCEL";
    case VX_EIO: return "VX_EIO";
    case VX_ECORRUPT: return "VX_ECORRUPT";
    case VX_ERANGE: return "VX_ERANGE";
    }
    return "(not a VX_E* code)";
}

#define CHECK_RC(expr, want)                                                  \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        int want_ = (want);                                                   \
        ck_assert_msg(rc_ == want_,                                           \
                      "%s returned %d %s, expected %d %s; vx_last_error: \"%s\"", \
                      #expr, rc_, code_name(rc_), want_, code_name(want_),   \
                      vx_last_error());                                       \
    } while (0)

/* Guest memory of every test: RAM with a hole at 0x20000..0x21000, two
 * adjacent but separate RAM regions after it, and a ROM page. */
static const struct {
    uint64_t gpa, size;
    unsigned prot;
} layout[] = {
    {0x00000, 0x20000, VX_MEM_RWX},
    {0x21000, 0x01000, VX_MEM_RWX},
    {0x22000, 0x01000, VX_MEM_RWX},
    {0x30000, 0x01000, VX_MEM_READ | VX_MEM_EXEC},
};
#define N_LAYOUT (sizeof layout / sizeof layout[0])
#define RAM_END 0x20000u  /* end of the first region */
#define FILL 0xaa

static size_t layout_bytes(void)
{
    size_t n = 0;
    for (size_t r = 0; r < N_LAYOUT; r++)
        n += layout[r].size;
    return n;
}

/* A machine on `accel` with the layout mapped and filled with FILL; NULL
 * (after printing SKIP) when the accelerator is not available. */
static vx_machine *setup_machine(vx_accel accel)
{
    const char *name = accel == VX_ACCEL_KVM ? "kvm" : "tcg";
    vx_machine_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.accel = accel;
    vx_machine *m = NULL;
    int rc = vx_machine_create(&o, &m);
    if (rc != 0) {
        ck_assert_msg(rc == VX_ENOTSUP || rc == VX_EACCEL || rc == VX_ENOMEM,
                      "vx_machine_create(%s) with valid options: %d %s: %s", name, rc,
                      code_name(rc), vx_last_error());
        printf("SKIP: %s: %s\n", name, vx_last_error());
        fflush(stdout);
        return NULL;
    }
    for (size_t r = 0; r < N_LAYOUT; r++) {
        rc = vx_memory_map(m, layout[r].gpa, layout[r].size, NULL, layout[r].prot);
        ck_assert_msg(rc == 0, "vx_memory_map(%#llx, %#llx): %d %s: %s",
                      (unsigned long long)layout[r].gpa,
                      (unsigned long long)layout[r].size, rc, code_name(rc),
                      vx_last_error());
        uint8_t *b = malloc(layout[r].size);
        ck_assert_ptr_nonnull(b);
        memset(b, FILL, layout[r].size);
        rc = vx_memory_write(m, layout[r].gpa, b, layout[r].size);
        ck_assert_msg(rc == 0, "filling %#llx with 0x%x: %d %s: %s",
                      (unsigned long long)layout[r].gpa, FILL, rc, code_name(rc),
                      vx_last_error());
        free(b);
    }
    return m;
}

/* All mapped guest memory, in layout order. */
static uint8_t *snapshot(vx_machine *m)
{
    uint8_t *s = malloc(layout_bytes());
    ck_assert_ptr_nonnull(s);
    size_t off = 0;
    for (size_t r = 0; r < N_LAYOUT; r++) {
        int rc = vx_memory_read(m, layout[r].gpa, s + off, layout[r].size);
        ck_assert_msg(rc == 0, "vx_memory_read(%#llx, %#llx) for a snapshot: %d %s: %s",
                      (unsigned long long)layout[r].gpa,
                      (unsigned long long)layout[r].size, rc, code_name(rc),
                      vx_last_error());
        off += layout[r].size;
    }
    return s;
}

/* Assert guest memory equals the snapshot; name the first changed byte. */
static void expect_unchanged(vx_machine *m, const uint8_t *before, const char *what)
{
    uint8_t *now = snapshot(m);
    size_t off = 0;
    for (size_t r = 0; r < N_LAYOUT; r++) {
        /* Find the first difference with a plain loop: ck_assert per byte
         * would talk to the Check parent for every byte. */
        uint64_t k = 0;
        while (k < layout[r].size && now[off + k] == before[off + k])
            k++;
        if (k < layout[r].size)
            ck_abort_msg("%s: refused, but guest memory changed: byte at %#llx was "
                         "%#x, now %#x", what, (unsigned long long)(layout[r].gpa + k),
                         before[off + k], now[off + k]);
        off += layout[r].size;
    }
    free(now);
}

/* Does `msg` name index `idx` as a number of its own (not a digit inside
 * "0x12000"), next to a word for a segment? */
static int names_segment(const char *msg, unsigned idx)
{
    if (!(strcasestr(msg, "segment") || strcasestr(msg, "phdr") ||
          strcasestr(msg, "program header") || strcasestr(msg, "pt_load")))
        return 0;
    char want[16];
    snprintf(want, sizeof want, "%u", idx);
    size_t wl = strlen(want);
    for (const char *p = msg; (p = strstr(p, want)) != NULL; p++) {
        int left_ok = p == msg || !isalnum((unsigned char)p[-1]);
        int right_ok = !isalnum((unsigned char)p[wl]);
        if (left_ok && right_ok)
            return 1;
    }
    return 0;
}

static void pattern(uint8_t *b, size_t len, unsigned seed)
{
    for (size_t k = 0; k < len; k++) {
        b[k] = (uint8_t)(seed * 37u + k * 11u + (k >> 8) + 1u);
        if (b[k] == 0 || b[k] == FILL)
            b[k] = 0x5c; /* never confused with bss or the fill */
    }
}

/* ------------------------------------------------------------------------ */
/* ELF image builder                                                         */
/* ------------------------------------------------------------------------ */

struct seg {
    uint32_t type;
    uint64_t paddr, vaddr, filesz, memsz;
};

#define MAX_SEGS 4

struct img {
    int cls;             /* 32 or 64 */
    uint8_t *buf;
    size_t len;
    size_t phoff;        /* where the builder put the program headers */
    size_t phentsize;
    unsigned phnum;
    struct seg segs[MAX_SEGS];
    size_t data_off[MAX_SEGS];
};

/* A static little-endian ET_EXEC image for EM_X86_64 (class 64) or EM_386
 * (class 32): ELF header, program headers right after it, then each
 * segment's file bytes (a pattern) from offset 0x200 on, 16-byte aligned. */
static void img_build(struct img *im, int cls, const struct seg *segs, unsigned n,
                      uint64_t entry)
{
    ck_assert(n <= MAX_SEGS);
    memset(im, 0, sizeof *im);
    im->cls = cls;
    size_t ehsize = cls == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    im->phentsize = cls == 64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    im->phoff = ehsize;
    im->phnum = n;
    ck_assert(im->phoff + n * im->phentsize <= 0x200);
    size_t off = 0x200;
    for (unsigned i = 0; i < n; i++) {
        im->segs[i] = segs[i];
        off = (off + 15) & ~(size_t)15;
        im->data_off[i] = off;
        off += segs[i].filesz;
    }
    im->len = off;
    im->buf = calloc(1, im->len);
    ck_assert_ptr_nonnull(im->buf);
    for (unsigned i = 0; i < n; i++)
        pattern(im->buf + im->data_off[i], segs[i].filesz, i + 1);

    unsigned char *id = im->buf;
    id[EI_MAG0] = ELFMAG0;
    id[EI_MAG1] = ELFMAG1;
    id[EI_MAG2] = ELFMAG2;
    id[EI_MAG3] = ELFMAG3;
    id[EI_CLASS] = cls == 64 ? ELFCLASS64 : ELFCLASS32;
    id[EI_DATA] = ELFDATA2LSB;
    id[EI_VERSION] = EV_CURRENT;
    id[EI_OSABI] = ELFOSABI_SYSV;
    if (cls == 64) {
        Elf64_Ehdr *eh = (Elf64_Ehdr *)im->buf;
        eh->e_type = ET_EXEC;
        eh->e_machine = EM_X86_64;
        eh->e_version = EV_CURRENT;
        eh->e_entry = entry;
        eh->e_phoff = im->phoff;
        eh->e_ehsize = sizeof(Elf64_Ehdr);
        eh->e_phentsize = sizeof(Elf64_Phdr);
        eh->e_phnum = (Elf64_Half)n;
        eh->e_shentsize = sizeof(Elf64_Shdr);
        for (unsigned i = 0; i < n; i++) {
            Elf64_Phdr *ph = (Elf64_Phdr *)(im->buf + im->phoff + i * im->phentsize);
            ph->p_type = segs[i].type;
            ph->p_flags = PF_R | PF_W | PF_X;
            ph->p_offset = im->data_off[i];
            ph->p_vaddr = segs[i].vaddr;
            ph->p_paddr = segs[i].paddr;
            ph->p_filesz = segs[i].filesz;
            ph->p_memsz = segs[i].memsz;
            ph->p_align = 16;
        }
    } else {
        Elf32_Ehdr *eh = (Elf32_Ehdr *)im->buf;
        eh->e_type = ET_EXEC;
        eh->e_machine = EM_386;
        eh->e_version = EV_CURRENT;
        eh->e_entry = (Elf32_Addr)entry;
        eh->e_phoff = (Elf32_Off)im->phoff;
        eh->e_ehsize = sizeof(Elf32_Ehdr);
        eh->e_phentsize = sizeof(Elf32_Phdr);
        eh->e_phnum = (Elf32_Half)n;
        eh->e_shentsize = sizeof(Elf32_Shdr);
        for (unsigned i = 0; i < n; i++) {
            Elf32_Phdr *ph = (Elf32_Phdr *)(im->buf + im->phoff + i * im->phentsize);
            ph->p_type = segs[i].type;
            ph->p_flags = PF_R | PF_W | PF_X;
            ph->p_offset = (Elf32_Off)im->data_off[i];
            ph->p_vaddr = (Elf32_Addr)segs[i].vaddr;
            ph->p_paddr = (Elf32_Addr)segs[i].paddr;
            ph->p_filesz = (Elf32_Word)segs[i].filesz;
            ph->p_memsz = (Elf32_Word)segs[i].memsz;
            ph->p_align = 16;
        }
    }
}

static void img_free(struct img *im)
{
    free(im->buf);
    im->buf = NULL;
}

enum ehf { EH_TYPE, EH_MACHINE, EH_PHOFF, EH_PHNUM, EH_PHENTSIZE, EH_ENTRY };
enum phf { PH_TYPE, PH_OFFSET, PH_PADDR, PH_FILESZ, PH_MEMSZ };

/* Overwrite one ELF header field (truncated to the field's width). */
static void eh_set(struct img *im, enum ehf f, uint64_t v)
{
    if (im->cls == 64) {
        Elf64_Ehdr *eh = (Elf64_Ehdr *)im->buf;
        switch (f) {
        case EH_TYPE: eh->e_type = (Elf64_Half)v; break;
        case EH_MACHINE: eh->e_machine = (Elf64_Half)v; break;
        case EH_PHOFF: eh->e_phoff = v; break;
        case EH_PHNUM: eh->e_phnum = (Elf64_Half)v; break;
        case EH_PHENTSIZE: eh->e_phentsize = (Elf64_Half)v; break;
        case EH_ENTRY: eh->e_entry = v; break;
        }
    } else {
        Elf32_Ehdr *eh = (Elf32_Ehdr *)im->buf;
        switch (f) {
        case EH_TYPE: eh->e_type = (Elf32_Half)v; break;
        case EH_MACHINE: eh->e_machine = (Elf32_Half)v; break;
        case EH_PHOFF: eh->e_phoff = (Elf32_Off)v; break;
        case EH_PHNUM: eh->e_phnum = (Elf32_Half)v; break;
        case EH_PHENTSIZE: eh->e_phentsize = (Elf32_Half)v; break;
        case EH_ENTRY: eh->e_entry = (Elf32_Addr)v; break;
        }
    }
}

/* Overwrite one field of program header i (truncated to the field's width). */
static void ph_set(struct img *im, unsigned i, enum phf f, uint64_t v)
{
    uint8_t *p = im->buf + im->phoff + i * im->phentsize;
    if (im->cls == 64) {
        Elf64_Phdr *ph = (Elf64_Phdr *)p;
        switch (f) {
        case PH_TYPE: ph->p_type = (Elf64_Word)v; break;
        case PH_OFFSET: ph->p_offset = v; break;
        case PH_PADDR: ph->p_paddr = v; break;
        case PH_FILESZ: ph->p_filesz = v; break;
        case PH_MEMSZ: ph->p_memsz = v; break;
        }
    } else {
        Elf32_Phdr *ph = (Elf32_Phdr *)p;
        switch (f) {
        case PH_TYPE: ph->p_type = (Elf32_Word)v; break;
        case PH_OFFSET: ph->p_offset = (Elf32_Off)v; break;
        case PH_PADDR: ph->p_paddr = (Elf32_Addr)v; break;
        case PH_FILESZ: ph->p_filesz = (Elf32_Word)v; break;
        case PH_MEMSZ: ph->p_memsz = (Elf32_Word)v; break;
        }
    }
}

/* The standard image: two PT_LOADs with file bytes and bss, p_vaddr far
 * from p_paddr (the loader must use p_paddr), the entry in the first. */
#define STD_ENTRY 0x10010u
static void std_image(struct img *im, int cls)
{
    uint64_t vbase = cls == 64 ? 0xffffffff80000000ull : 0xc0000000u;
    const struct seg segs[2] = {
        {PT_LOAD, 0x10000, vbase + 0x10000, 0x300, 0x1000},
        {PT_LOAD, 0x12000, vbase + 0x12000, 0x80, 0x200},
    };
    img_build(im, cls, segs, 2, STD_ENTRY);
}

/* Assert each PT_LOAD of `im` is in guest memory at p_paddr with its bss
 * zeroed, and every other byte of the layout still holds FILL. */
static void expect_loaded(vx_machine *m, const struct img *im)
{
    uint8_t *now = snapshot(m);
    size_t off = 0;
    for (size_t r = 0; r < N_LAYOUT; r++) {
        for (uint64_t k = 0; k < layout[r].size; k++) {
            uint64_t gpa = layout[r].gpa + k;
            int want = FILL;
            const char *why = "outside every segment";
            for (unsigned i = 0; i < im->phnum; i++) {
                const struct seg *s = &im->segs[i];
                if (s->type != PT_LOAD || gpa < s->paddr || gpa >= s->paddr + s->memsz)
                    continue;
                if (gpa - s->paddr < s->filesz) {
                    want = im->buf[im->data_off[i] + (gpa - s->paddr)];
                    why = "file bytes of a segment";
                } else {
                    want = 0;
                    why = "bss of a segment (p_memsz beyond p_filesz), must be zeroed";
                }
            }
            if (now[off + k] != want)
                ck_abort_msg("ELF%d load: guest byte at %#llx is %#x, expected %#x (%s)",
                             im->cls, (unsigned long long)gpa, now[off + k], want, why);
        }
        off += layout[r].size;
    }
    free(now);
}

/* vx_load_elf must refuse `len` bytes of `im` with want (or alt, if not 0),
 * say why, name segment `seg` if seg >= 0, and change no guest byte. */
static void expect_refused(vx_machine *m, const struct img *im, size_t len, int want,
                           int alt, int seg, const char *what)
{
    uint8_t *before = snapshot(m);
    uint64_t entry = 0x1234;
    int rc = vx_load_elf(m, im->buf, len, &entry);
    if (alt)
        ck_assert_msg(rc == want || rc == alt,
                      "ELF%d %s: vx_load_elf returned %d %s, expected %s or %s; "
                      "vx_last_error: \"%s\"", im->cls, what, rc, code_name(rc),
                      code_name(want), code_name(alt), vx_last_error());
    else
        ck_assert_msg(rc == want,
                      "ELF%d %s: vx_load_elf returned %d %s, expected %s; "
                      "vx_last_error: \"%s\"", im->cls, what, rc, code_name(rc),
                      code_name(want), vx_last_error());
    const char *e = vx_last_error();
    ck_assert_msg(e[0] != '\0', "ELF%d %s: refused with %s but vx_last_error() is empty",
                  im->cls, what, code_name(rc));
    if (seg >= 0)
        ck_assert_msg(names_segment(e, (unsigned)seg),
                      "ELF%d %s: vx_last_error() \"%s\" does not name segment %d",
                      im->cls, what, e, seg);
    char label[256];
    snprintf(label, sizeof label, "ELF%d %s", im->cls, what);
    expect_unchanged(m, before, label);
    free(before);
}

/* ------------------------------------------------------------------------ */
/* ELF: images that load                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_elf_valid)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    struct img im;
    std_image(&im, LOOP_CLASS(_i));
    uint64_t entry = 0;
    int rc = vx_load_elf(m, im.buf, im.len, &entry);
    ck_assert_msg(rc == 0, "vx_load_elf of a valid ELF%d with two PT_LOADs: %d %s: %s",
                  im.cls, rc, code_name(rc), vx_last_error());
    ck_assert_msg(entry == STD_ENTRY, "ELF%d entry is %#llx, e_entry was %#x", im.cls,
                  (unsigned long long)entry, STD_ENTRY);
    expect_loaded(m, &im);
    /* Again with entry NULL: allowed, and the same result. */
    CHECK_RC(vx_load_elf(m, im.buf, im.len, NULL), 0);
    expect_loaded(m, &im);
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

/* Segments that are not PT_LOAD are not loaded, wherever they point. */
START_TEST(test_elf_other_segments_ignored)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    const struct seg segs[4] = {
        {PT_NOTE, 0x900000, 0x900000, 0x10, 0x10},   /* unmapped: must not matter */
        {PT_LOAD, 0x1000, 0x1000, 0x123, 0x456},
        {PT_GNU_STACK, 0, 0, 0, 0},
        {PT_LOAD, 0x21800, 0x21800, 0x1000, 0x1000}, /* spans two adjacent regions */
    };
    struct img im;
    img_build(&im, cls, segs, 4, 0x1000);
    uint64_t entry = 0;
    int rc = vx_load_elf(m, im.buf, im.len, &entry);
    ck_assert_msg(rc == 0, "ELF%d with PT_NOTE (at unmapped 0x900000), PT_GNU_STACK and a "
                  "PT_LOAD spanning two adjacent RAM regions: %d %s: %s", cls, rc,
                  code_name(rc), vx_last_error());
    ck_assert_uint_eq(entry, 0x1000);
    /* expect_loaded counts only PT_LOAD segments. */
    expect_loaded(m, &im);
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

/* Segments whose p_paddr is above 4 GiB (ELF64 only). */
START_TEST(test_elf64_high_paddr)
{
    vx_machine *m = setup_machine(loop_accels[_i]);
    if (!m)
        return;
    CHECK_RC(vx_memory_map(m, 0x100000000ull, 0x2000, NULL, VX_MEM_RWX), 0);
    const struct seg segs[1] = {{PT_LOAD, 0x100000800ull, 0x800, 0x100, 0x1000}};
    struct img im;
    img_build(&im, 64, segs, 1, 0x100000800ull);
    uint8_t *before = snapshot(m);
    uint64_t entry = 0;
    CHECK_RC(vx_load_elf(m, im.buf, im.len, &entry), 0);
    ck_assert_uint_eq(entry, 0x100000800ull);
    uint8_t got[0x1000];
    CHECK_RC(vx_memory_read(m, 0x100000800ull, got, sizeof got), 0);
    ck_assert_msg(memcmp(got, im.buf + im.data_off[0], 0x100) == 0,
                  "ELF64 segment at paddr 0x100000800 is not there (paddr truncated?)");
    for (size_t k = 0x100; k < sizeof got; k++)
        if (got[k] != 0)
            ck_abort_msg("bss at %#llx not zeroed", (unsigned long long)(0x100000800ull + k));
    /* Low memory untouched: a loader that truncated paddr to 32 bits
     * would have written at 0x800. */
    expect_unchanged(m, before, "ELF64 load above 4 GiB");
    free(before);
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* ELF: rejections, each leaving guest memory as it was                      */
/* ------------------------------------------------------------------------ */

START_TEST(test_elf_bad_ident)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    struct img im;
    static const char *magic_names[4] = {"EI_MAG0", "EI_MAG1", "EI_MAG2", "EI_MAG3"};
    for (int k = 0; k < 4; k++) {
        std_image(&im, cls);
        im.buf[k] ^= 0x20;
        char what[64];
        snprintf(what, sizeof what, "bad magic (%s)", magic_names[k]);
        expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, what);
        img_free(&im);
    }
    std_image(&im, cls);
    memcpy(im.buf, "MZ\x90\x00", 4);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "a PE/DOS header");
    img_free(&im);

    std_image(&im, cls);
    im.buf[EI_CLASS] = ELFCLASSNONE;
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "EI_CLASS ELFCLASSNONE");
    im.buf[EI_CLASS] = 3;
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "EI_CLASS 3");
    /* The other class's layout read with this one's: inconsistent, or a
     * machine the class does not go with. */
    im.buf[EI_CLASS] = cls == 64 ? ELFCLASS32 : ELFCLASS64;
    expect_refused(m, &im, im.len, VX_ECORRUPT, VX_ENOTSUP, -1,
                   "the other class in EI_CLASS");
    img_free(&im);

    std_image(&im, cls);
    im.buf[EI_DATA] = ELFDATANONE;
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "EI_DATA ELFDATANONE");
    im.buf[EI_DATA] = 3;
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "EI_DATA 3");
    im.buf[EI_DATA] = ELFDATA2MSB;
    expect_refused(m, &im, im.len, VX_ECORRUPT, VX_ENOTSUP, -1,
                   "EI_DATA ELFDATA2MSB (big-endian)");
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_elf_bad_machine_type)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    struct img im;
    std_image(&im, cls);
    eh_set(&im, EH_MACHINE, EM_ARM);
    expect_refused(m, &im, im.len, VX_ENOTSUP, 0, -1, "e_machine EM_ARM");
    eh_set(&im, EH_MACHINE, EM_AARCH64);
    expect_refused(m, &im, im.len, VX_ENOTSUP, 0, -1, "e_machine EM_AARCH64");
    eh_set(&im, EH_MACHINE, EM_RISCV);
    expect_refused(m, &im, im.len, VX_ENOTSUP, 0, -1, "e_machine EM_RISCV");
    if (cls == 64) {
        eh_set(&im, EH_MACHINE, EM_386);
        expect_refused(m, &im, im.len, VX_ENOTSUP, 0, -1, "ELF64 with e_machine EM_386");
    }
    img_free(&im);

    std_image(&im, cls);
    eh_set(&im, EH_TYPE, ET_REL);
    expect_refused(m, &im, im.len, VX_ENOTSUP, 0, -1, "e_type ET_REL");
    eh_set(&im, EH_TYPE, ET_CORE);
    expect_refused(m, &im, im.len, VX_ENOTSUP, 0, -1, "e_type ET_CORE");
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_elf_truncated)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    size_t ehsize = cls == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    struct img im;
    std_image(&im, cls);
    expect_refused(m, &im, 0, VX_ECORRUPT, 0, -1, "an image of 0 bytes");
    expect_refused(m, &im, 4, VX_ECORRUPT, 0, -1, "only the 4 magic bytes");
    expect_refused(m, &im, EI_NIDENT, VX_ECORRUPT, 0, -1, "only e_ident");
    expect_refused(m, &im, ehsize - 1, VX_ECORRUPT, 0, -1, "a header one byte short");
    expect_refused(m, &im, ehsize, VX_ECORRUPT, 0, -1,
                   "the header only, no program headers");
    expect_refused(m, &im, ehsize + im.phentsize + 4, VX_ECORRUPT, 0, -1,
                   "the second program header cut");
    /* File bytes of segment 1 cut short. */
    expect_refused(m, &im, im.data_off[1] + 0x40, VX_ECORRUPT, 0, 1,
                   "segment 1's file bytes cut by the image length");
    /* And of segment 0 (segment 1 then lies wholly past the end too). */
    expect_refused(m, &im, im.data_off[0] + 0x10, VX_ECORRUPT, 0, 0,
                   "segment 0's file bytes cut by the image length");
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_elf_bad_phdr_table)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    uint64_t max = cls == 64 ? UINT64_MAX : UINT32_MAX;
    struct img im;
    std_image(&im, cls);
    eh_set(&im, EH_PHOFF, im.len);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "e_phoff at the image end");
    eh_set(&im, EH_PHOFF, im.len + 0x1000);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "e_phoff past the image");
    eh_set(&im, EH_PHOFF, im.len - im.phentsize);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1,
                   "e_phoff where only one of e_phnum 2 headers fits");
    eh_set(&im, EH_PHOFF, max - 8);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1,
                   "e_phoff + e_phnum * e_phentsize overflowing");
    eh_set(&im, EH_PHOFF, im.phoff);
    eh_set(&im, EH_PHNUM, 1000);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "e_phnum 1000, past the image");
    eh_set(&im, EH_PHNUM, 2);
    eh_set(&im, EH_PHENTSIZE, 0);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "e_phentsize 0");
    eh_set(&im, EH_PHENTSIZE, 16);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "e_phentsize 16");
    eh_set(&im, EH_PHENTSIZE, im.phentsize - 1);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, -1, "e_phentsize one short");
    eh_set(&im, EH_PHENTSIZE, im.phentsize);
    /* Sanity: restored, it loads. */
    CHECK_RC(vx_load_elf(m, im.buf, im.len, NULL), 0);
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_elf_bad_segment_file)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    uint64_t max = cls == 64 ? UINT64_MAX : UINT32_MAX;
    struct img im;

    std_image(&im, cls);
    ph_set(&im, 1, PH_OFFSET, im.len - 0x40);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, 1,
                   "segment 1 p_offset + p_filesz past the image");
    ph_set(&im, 1, PH_OFFSET, im.len + 0x100);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, 1,
                   "segment 1 p_offset past the image");
    ph_set(&im, 1, PH_OFFSET, max - 0x10);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, 1,
                   "segment 1 p_offset + p_filesz overflowing");
    img_free(&im);

    std_image(&im, cls);
    ph_set(&im, 0, PH_OFFSET, im.len - 0x10);
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, 0,
                   "segment 0 p_offset + p_filesz past the image");
    img_free(&im);

    std_image(&im, cls);
    ph_set(&im, 1, PH_MEMSZ, 0x7f);    /* p_filesz is 0x80 */
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, 1, "segment 1 p_filesz > p_memsz");
    img_free(&im);

    std_image(&im, cls);
    ph_set(&im, 0, PH_MEMSZ, 0x2ff);   /* p_filesz is 0x300 */
    expect_refused(m, &im, im.len, VX_ECORRUPT, 0, 0, "segment 0 p_filesz > p_memsz");
    img_free(&im);

    std_image(&im, cls);
    ph_set(&im, 1, PH_FILESZ, max);
    ph_set(&im, 1, PH_MEMSZ, max);
    expect_refused(m, &im, im.len, VX_ECORRUPT, VX_ERANGE, 1,
                   "segment 1 p_filesz = p_memsz = all ones");
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_elf_segment_outside_ram)
{
    vx_machine *m = setup_machine(LOOP_ACCEL(_i));
    if (!m)
        return;
    int cls = LOOP_CLASS(_i);
    uint64_t max = cls == 64 ? UINT64_MAX : UINT32_MAX;
    struct img im;
    std_image(&im, cls);

    /* Segment 0 is fine each time: it must not be written either. */
    ph_set(&im, 1, PH_PADDR, RAM_END - 0x40);   /* file bytes run past the end */
    expect_refused(m, &im, im.len, VX_ERANGE, 0, 1,
                   "segment 1 partly past the end of RAM (file bytes)");
    ph_set(&im, 1, PH_PADDR, RAM_END - 0x100);  /* file bytes fit, bss does not */
    expect_refused(m, &im, im.len, VX_ERANGE, 0, 1,
                   "segment 1 whose bss runs past the end of RAM");
    ph_set(&im, 1, PH_PADDR, 0x20800);          /* in the hole */
    expect_refused(m, &im, im.len, VX_ERANGE, 0, 1, "segment 1 in a hole");
    ph_set(&im, 1, PH_PADDR, 0x1ff00);          /* across the hole */
    ph_set(&im, 1, PH_MEMSZ, 0x1200);
    expect_refused(m, &im, im.len, VX_ERANGE, 0, 1,
                   "segment 1 across a hole between RAM regions");
    ph_set(&im, 1, PH_MEMSZ, 0x200);
    ph_set(&im, 1, PH_PADDR, 0x800000);         /* wholly outside */
    expect_refused(m, &im, im.len, VX_ERANGE, 0, 1, "segment 1 wholly outside RAM");
    /* paddr + memsz wraps 2^64 (for ELF32: 2^32, which a 64-bit loader sees as
     * simply outside RAM). */
    ph_set(&im, 1, PH_PADDR, max - 0xfff);
    ph_set(&im, 1, PH_MEMSZ, 0x2000);
    expect_refused(m, &im, im.len, VX_ERANGE, VX_ECORRUPT, 1,
                   "segment 1 whose p_paddr + p_memsz wraps");
    ph_set(&im, 1, PH_PADDR, max);
    ph_set(&im, 1, PH_MEMSZ, 0x200);
    expect_refused(m, &im, im.len, VX_ERANGE, VX_ECORRUPT, 1,
                   "segment 1 at the last address, wrapping");
    img_free(&im);

    /* Segment 0 bad, segment 1 fine. */
    std_image(&im, cls);
    ph_set(&im, 0, PH_PADDR, 0x400000);
    expect_refused(m, &im, im.len, VX_ERANGE, 0, 0, "segment 0 outside RAM");
    img_free(&im);
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* vx_load_flat                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(test_flat)
{
    vx_machine *m = setup_machine(loop_accels[_i]);
    if (!m)
        return;
    uint8_t img[0x3000];
    pattern(img, sizeof img, 9);

    /* Fits. */
    CHECK_RC(vx_load_flat(m, 0x1000, img, 0x3000), 0);
    uint8_t got[0x3000];
    CHECK_RC(vx_memory_read(m, 0x1000, got, sizeof got), 0);
    ck_assert_msg(memcmp(got, img, sizeof img) == 0, "vx_load_flat image not at 0x1000");
    uint8_t edge[2];
    CHECK_RC(vx_memory_read(m, 0xfff, edge, 1), 0);
    CHECK_RC(vx_memory_read(m, 0x4000, edge + 1, 1), 0);
    ck_assert_msg(edge[0] == FILL && edge[1] == FILL,
                  "vx_load_flat wrote outside [0x1000, 0x4000): %#x %#x", edge[0], edge[1]);
    /* Ending exactly at the end of RAM. */
    CHECK_RC(vx_load_flat(m, RAM_END - 0x1000, img, 0x1000), 0);
    /* Across two adjacent regions. */
    CHECK_RC(vx_load_flat(m, 0x21800, img, 0x1000), 0);
    CHECK_RC(vx_memory_read(m, 0x21800, got, 0x1000), 0);
    ck_assert_msg(memcmp(got, img, 0x1000) == 0,
                  "vx_load_flat across adjacent regions 0x21000/0x22000 lost bytes");
    /* Into ROM: the header allows it. */
    CHECK_RC(vx_load_flat(m, 0x30000, img, 0x1000), 0);
    CHECK_RC(vx_memory_read(m, 0x30000, got, 0x1000), 0);
    ck_assert_msg(memcmp(got, img, 0x1000) == 0, "vx_load_flat into ROM did not store");

    /* Does not fit: nothing written. */
    uint8_t *before = snapshot(m);
    uint8_t other[0x3000];
    memset(other, 0x11, sizeof other);
    CHECK_RC(vx_load_flat(m, RAM_END - 0x800, other, 0x1000), VX_ERANGE);
    expect_unchanged(m, before, "vx_load_flat partly past the end of RAM");
    CHECK_RC(vx_load_flat(m, 0x1f800, other, 0x2000), VX_ERANGE);
    expect_unchanged(m, before, "vx_load_flat across a hole");
    CHECK_RC(vx_load_flat(m, 0x800000, other, 0x10), VX_ERANGE);
    expect_unchanged(m, before, "vx_load_flat wholly outside RAM");
    CHECK_RC(vx_load_flat(m, UINT64_MAX - 0xf, other, 0x20), VX_ERANGE);
    expect_unchanged(m, before, "vx_load_flat wrapping 2^64");
    CHECK_RC(vx_load_flat(m, 0x22800, other, 0x1000), VX_ERANGE);
    expect_unchanged(m, before, "vx_load_flat past the last adjacent region");
    ck_assert_msg(vx_last_error()[0] != '\0', "vx_load_flat VX_ERANGE without detail");

    /* len 0: nothing to do, success. */
    CHECK_RC(vx_load_flat(m, 0x1000, other, 0), 0);
    CHECK_RC(vx_load_flat(m, 0x800000, other, 0), 0);
    expect_unchanged(m, before, "vx_load_flat of 0 bytes");

    /* NULL image with a length. */
    CHECK_RC(vx_load_flat(m, 0x1000, NULL, 0x10), VX_EINVAL);
    expect_unchanged(m, before, "vx_load_flat of a NULL image");
    free(before);
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc;

    tc = tcase_create("elf");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_elf_valid, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf_other_segments_ignored, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf64_high_paddr, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_elf_bad_ident, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf_bad_machine_type, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf_truncated, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf_bad_phdr_table, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf_bad_segment_file, 0, LOOP_N);
    tcase_add_loop_test(tc, test_elf_segment_outside_ram, 0, LOOP_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("flat");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_flat, 0, N_LOOP_ACCELS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(loader_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
