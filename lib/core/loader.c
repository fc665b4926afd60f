/* Guest image loaders: flat binaries and static ELF executables. */
#include "config.h"

#include <elf.h>
#include <string.h>

#include "core/error.h"
#include "core/machine.h"

#define ULL(x) ((unsigned long long)(x))

VX_API int vx_load_flat(vx_machine *m, uint64_t gpa, const void *image, size_t len)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_load_flat: machine is NULL");
    if (!image && len)
        return vxi_error(VX_EINVAL, "vx_load_flat: image is NULL");
    uint64_t bad;
    if (len && (gpa > UINT64_MAX - (len - 1) || !vx_as_covered(&m->as, gpa, len, 0, &bad)))
        return vxi_error(VX_ERANGE, "vx_load_flat: image of 0x%zx bytes at 0x%llx does not "
                         "fit in mapped memory", len, ULL(gpa));
    int rc = vx_as_write(&m->as, gpa, image, len, true);
    vxi_memory_written(m, gpa, len);
    return rc;
}

/* One PT_LOAD segment, whatever the ELF class. */
struct segment {
    uint64_t offset, paddr, filesz, memsz;
};

/* Read the program headers into seg[] (PT_LOAD only), checking each against
 * the image and the address space. Returns the count or a negative code. */
static int elf_segments(vx_machine *m, const uint8_t *img, size_t len, bool is64,
                        uint64_t phoff, unsigned phnum, unsigned phentsize,
                        struct segment *seg, unsigned max)
{
    size_t want = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phnum == 0)
        return vxi_error(VX_ECORRUPT, "ELF has no program headers");
    if (phentsize != want)
        return vxi_error(VX_ECORRUPT, "ELF e_phentsize is %u, expected %zu", phentsize, want);
    if (phoff > len || (uint64_t)phnum * want > len - phoff)
        return vxi_error(VX_ECORRUPT, "ELF program headers (%u at offset 0x%llx) run past the "
                         "end of the %zu-byte image", phnum, ULL(phoff), len);
    unsigned n = 0;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *p = img + phoff + (uint64_t)i * want;
        struct segment s;
        uint32_t type;
        if (is64) {
            Elf64_Phdr ph;
            memcpy(&ph, p, sizeof ph);
            type = ph.p_type;
            s = (struct segment){ ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz };
        } else {
            Elf32_Phdr ph;
            memcpy(&ph, p, sizeof ph);
            type = ph.p_type;
            s = (struct segment){ ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz };
        }
        if (type != PT_LOAD || s.memsz == 0)
            continue;
        if (s.filesz > s.memsz)
            return vxi_error(VX_ECORRUPT, "ELF segment %u: p_filesz 0x%llx exceeds p_memsz "
                             "0x%llx", i, ULL(s.filesz), ULL(s.memsz));
        if (s.offset > len || s.filesz > len - s.offset)
            return vxi_error(VX_ECORRUPT, "ELF segment %u: file bytes 0x%llx+0x%llx run past "
                             "the end of the %zu-byte image", i, ULL(s.offset),
                             ULL(s.filesz), len);
        uint64_t bad;
        if (s.paddr > UINT64_MAX - (s.memsz - 1))
            return vxi_error(VX_ERANGE, "ELF segment %u: paddr 0x%llx + memsz 0x%llx wraps "
                             "past 2^64", i, ULL(s.paddr), ULL(s.memsz));
        if (!vx_as_covered(&m->as, s.paddr, s.memsz, 0, &bad))
            return vxi_error(VX_ERANGE, "ELF segment %u (paddr 0x%llx, memsz 0x%llx) is "
                             "outside mapped memory: 0x%llx is not mapped", i, ULL(s.paddr),
                             ULL(s.memsz), ULL(bad));
        if (n == max)
            return vxi_error(VX_ENOTSUP, "ELF has more than %u loadable segments", max);
        seg[n++] = s;
    }
    if (n == 0)
        return vxi_error(VX_ECORRUPT, "ELF has no loadable (PT_LOAD) segment");
    return (int)n;
}

#define MAX_SEGMENTS 64

VX_API int vx_load_elf(vx_machine *m, const void *image, size_t len, uint64_t *entry)
{
    if (!m || !image)
        return vxi_error(VX_EINVAL, "vx_load_elf: %s is NULL", m ? "image" : "machine");
    const uint8_t *img = image;
    if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0)
        return vxi_error(VX_ECORRUPT, "not an ELF image (no \\177ELF magic)");
    bool is64;
    switch (img[EI_CLASS]) {
    case ELFCLASS32: is64 = false; break;
    case ELFCLASS64: is64 = true; break;
    default: return vxi_error(VX_ECORRUPT, "ELF class %u is neither ELF32 nor ELF64", img[EI_CLASS]);
    }
    if (img[EI_DATA] != ELFDATA2LSB)
        return vxi_error(VX_ECORRUPT, "ELF data encoding %u is not little-endian", img[EI_DATA]);
    if (img[EI_VERSION] != EV_CURRENT)
        return vxi_error(VX_ECORRUPT, "ELF ident version %u is not EV_CURRENT", img[EI_VERSION]);

    uint16_t type, machine, phnum, phentsize;
    uint64_t phoff, e_entry;
    if (is64) {
        Elf64_Ehdr eh;
        if (len < sizeof eh)
            return vxi_error(VX_ECORRUPT, "ELF64 header truncated (%zu bytes)", len);
        memcpy(&eh, img, sizeof eh);
        type = eh.e_type; machine = eh.e_machine; phoff = eh.e_phoff;
        phnum = eh.e_phnum; phentsize = eh.e_phentsize; e_entry = eh.e_entry;
    } else {
        Elf32_Ehdr eh;
        if (len < sizeof eh)
            return vxi_error(VX_ECORRUPT, "ELF32 header truncated (%zu bytes)", len);
        memcpy(&eh, img, sizeof eh);
        type = eh.e_type; machine = eh.e_machine; phoff = eh.e_phoff;
        phnum = eh.e_phnum; phentsize = eh.e_phentsize; e_entry = eh.e_entry;
    }
    if (machine != (is64 ? EM_X86_64 : EM_386))
        return vxi_error(VX_ENOTSUP, "ELF%s e_machine %u is not %s", is64 ? "64" : "32",
                         machine, is64 ? "EM_X86_64" : "EM_386");
    if (type != ET_EXEC)
        return vxi_error(VX_ENOTSUP, "ELF e_type %u is not ET_EXEC (a static executable)", type);

    struct segment seg[MAX_SEGMENTS];
    int n = elf_segments(m, img, len, is64, phoff, phnum, phentsize, seg, MAX_SEGMENTS);
    if (n < 0)
        return n;
    /* All checked: now nothing below can fail half-way. */
    for (int i = 0; i < n; i++) {
        vx_as_write(&m->as, seg[i].paddr, img + seg[i].offset, seg[i].filesz, true);
        vx_as_zero(&m->as, seg[i].paddr + seg[i].filesz, seg[i].memsz - seg[i].filesz);
        vxi_memory_written(m, seg[i].paddr, seg[i].memsz);
    }
    if (entry)
        *entry = e_entry;
    return 0;
}
