/*
 * vx-run: boot a Linux kernel (or run a flat binary) in a libvx machine,
 * with its serial console on this terminal.
 *
 *   vx-run --kernel bzImage [--initrd FILE] [--append CMDLINE] [options]
 *   vx-run --flat FILE@ADDR [--entry ADDR] [--mode real|prot32|long64] [options]
 *
 * See vx-run(1) (tools/vx-run.1).
 * Ctrl-A x quits (as QEMU's -nographic does); the guest's exit status
 * (debug-exit port) becomes the process's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <libvx/pc.h>
#include <libvx/vx.h>
#include <libvx/x86.h>

static const char *prog = "vx-run";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --kernel FILE [options]\n"
            "       %s --flat FILE@ADDR [--entry ADDR] [--mode MODE] [options]\n"
            "  -k, --kernel FILE     a Linux bzImage to boot\n"
            "  -i, --initrd FILE     an initial ramdisk\n"
            "  -a, --append TEXT     the kernel command line (default: console=ttyS0)\n"
            "  -f, --flat FILE@ADDR  load a raw binary at guest-physical ADDR instead\n"
            "  -e, --entry ADDR      where a flat binary starts (default: its ADDR)\n"
            "  -M, --mode MODE       real, prot32 or long64: the CPU mode a flat binary\n"
            "                        starts in (default real; flat segments, long64\n"
            "                        with identity paging of the first 4 GiB)\n"
            "  -m, --mem MIB         guest RAM in MiB (default 256)\n"
            "  -c, --cpus N          vCPUs, one thread each (default 1; tcg runs one)\n"
            "  -d, --disk FILE[,ro]  a virtio-blk disk (repeat for more: vda, vdb, ...)\n"
            "  -C, --console FILE    a virtio console (hvc0) whose output goes to FILE\n"
            "                        (- for standard output)\n"
            "  -A, --accel NAME      kvm, tcg or auto (default auto)\n"
            "  -h, --help            this text\n"
            "The guest's COM1 is this terminal; Ctrl-A x quits. The exit status is\n"
            "the guest's (the debug-exit port 0x501), 0 for a power-off or reset.\n",
            prog, prog);
}

static void *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: %s: not a regular file\n", prog, path);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size, done = 0;
    char *buf = malloc(n ? n : 1);
    while (buf && done < n) {
        ssize_t r = read(fd, buf + done, n - done);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            fprintf(stderr, "%s: %s: read failed\n", prog, path);
            free(buf);
            buf = NULL;
            break;
        }
        done += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

/* The terminal, raw while the guest runs. */
static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static void raw_terminal(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return;
    tio_saved = true;
    atexit(restore_terminal);
    struct termios t = saved_tio;
    cfmakeraw(&t);
    t.c_oflag |= OPOST | ONLCR; /* keep the host's newline handling for our own messages */
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

struct input {
    vx_machine *m;
    atomic_bool quit;      /* Ctrl-A x, or a vCPU ended the run */
    atomic_bool ended;     /* status is set */
    int status;
};

/* End the run: the first caller's status is the process's; every vCPU
 * leaves vx_vcpu_run() at its next look at its stop flag. */
static void end_run(struct input *in, int status)
{
    if (!atomic_exchange(&in->ended, true))
        in->status = status;
    atomic_store(&in->quit, true);
    for (unsigned i = 0; i < vx_machine_vcpu_count(in->m); i++)
        vx_vcpu_stop(vx_machine_vcpu(in->m, i));
}

/* Terminal to COM1, with Ctrl-A x to quit and Ctrl-A Ctrl-A for a Ctrl-A. */
static void *input_thread(void *arg)
{
    struct input *in = arg;
    bool escape = false;
    for (;;) {
        struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
        if (poll(&p, 1, 200) < 0 && errno != EINTR)
            break;
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        unsigned char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r <= 0)
            break; /* end of input: the guest goes on without it */
        if (escape) {
            escape = false;
            if (c == 'x') {
                end_run(in, 0);
                break;
            }
            if (c != 1)
                continue;
        } else if (c == 1) {
            escape = true;
            continue;
        }
        while (vx_pc_serial_input(in->m, &c, 1) == 0)
            usleep(1000); /* the UART's FIFO is full: the guest reads it soon */
    }
    return NULL;
}

/* Run one vCPU until the run ends (here or on another vCPU). */
static void run_vcpu(struct input *in, vx_vcpu *v)
{
    vx_exit e = { .size = sizeof e };
    while (!atomic_load(&in->quit)) {
        if (vx_vcpu_run(v, &e)) {
            fprintf(stderr, "\r\n%s: vCPU %u: vx_vcpu_run: %s\r\n", prog, vx_vcpu_index(v),
                    vx_last_error());
            end_run(in, 1);
            break;
        }
        switch (e.reason) {
        case VX_EXIT_MMIO:
            /* Nothing there: reads see all ones, as on a PC bus. */
            if (!e.u.mmio.is_write)
                e.u.mmio.value = ~0ull;
            continue;
        case VX_EXIT_SHUTDOWN:
            if (e.u.shutdown.kind == VX_SHUTDOWN_TRIPLE_FAULT)
                fprintf(stderr, "\r\n%s: %s\r\n", prog, vx_last_error());
            end_run(in, e.u.shutdown.kind == VX_SHUTDOWN_POWEROFF ? (int)(e.u.shutdown.code & 0xff)
                        : e.u.shutdown.kind == VX_SHUTDOWN_TRIPLE_FAULT ? 1
                                                                         : 0);
            return;
        case VX_EXIT_HLT:
            fprintf(stderr, "\r\n%s: vCPU %u halted with interrupts off\r\n", prog,
                    vx_vcpu_index(v));
            end_run(in, 0);
            return;
        case VX_EXIT_INTERNAL:
            fprintf(stderr, "\r\n%s: vCPU %u: %s\r\n", prog, vx_vcpu_index(v), vx_last_error());
            end_run(in, 1);
            return;
        default:
            continue; /* VX_EXIT_STOPPED: the loop looks at quit */
        }
    }
}

struct vcpu_thread {
    struct input *in;
    vx_vcpu *v;
};

static void *vcpu_thread(void *arg)
{
    struct vcpu_thread *t = arg;
    run_vcpu(t->in, t->v);
    return NULL;
}

/* VX_RUN_STATS=1: the peak resident size, and how much of the resident
 * memory at the end is guest RAM (libvx maps it on its own), for the boot
 * benchmark. Guest RAM only grows during a run, so peak minus the final
 * guest RAM is how much beyond guest RAM the process needed at its peak,
 * or a little less. */
static void print_memory_stats(vx_machine *m, uint64_t ram_bytes)
{
    uint64_t low = ram_bytes < (3ull << 30) ? ram_bytes : (3ull << 30);
    uint8_t *ram = vx_memory_ptr(m, 0, low);
    unsigned long long hwm = 0, guest = 0;
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "VmHWM: %llu kB", &hwm);
    if (f)
        fclose(f);
    /* Guest RAM's resident pages, from the page tables (mincore). */
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (size_t)(low / (uint64_t)page);
    unsigned char *vec = ram ? malloc(pages) : NULL;
    if (vec && mincore(ram, (size_t)low, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            guest += (vec[i] & 1) * (unsigned long long)page / 1024;
    free(vec);
    fprintf(stderr, "vx-run: memory: peak resident %.1f MiB; guest RAM resident at exit %.1f "
            "MiB; beyond guest RAM %.1f MiB\n", hwm / 1024.0, guest / 1024.0,
            (hwm > guest ? hwm - guest : 0) / 1024.0);
    uint64_t insns = 0;
    for (unsigned i = 0; i < vx_machine_vcpu_count(m); i++)
        insns += vx_vcpu_instructions(vx_machine_vcpu(m, i));
    if (insns)
        fprintf(stderr, "vx-run: guest instructions: %llu\n", (unsigned long long)insns);
}

/* A decimal number in [lo, hi]. */
static bool parse_count(const char *text, unsigned long lo, unsigned long hi,
                        unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (errno || end == text || *end)
        return false;
    *out = v;
    return true;
}

/* Put the boot vCPU at a flat binary's entry in the mode asked for. */
static int start_flat(vx_machine *m, vx_cpu_mode mode, uint64_t entry, uint64_t mem)
{
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    /* Mode tables at the top of low RAM, below where a binary would go. */
    uint64_t tables = (mem < (3ull << 30) ? mem : (3ull << 30)) - 0x100000;
    int rc = vx_vcpu_set_mode(v, mode, tables);
    if (rc)
        return rc;
    vx_x86_regs r = { .rflags = 2, .rsp = mode == VX_MODE_REAL ? 0xfffe : 0x80000 };
    if (mode == VX_MODE_REAL) {
        /* CS:IP from the linear entry (below 1 MiB, checked by main). */
        vx_x86_sregs sr;
        if ((rc = vx_vcpu_get_sregs(v, &sr)))
            return rc;
        sr.cs.selector = (uint16_t)((entry >> 4) & 0xf000);
        sr.cs.base = (uint64_t)sr.cs.selector << 4;
        if ((rc = vx_vcpu_set_sregs(v, &sr)))
            return rc;
        r.rip = entry - sr.cs.base;
    } else {
        r.rip = entry;
    }
    return vx_vcpu_set_regs(v, &r);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
        { "append", required_argument, NULL, 'a' }, { "mem", required_argument, NULL, 'm' },
        { "accel", required_argument, NULL, 'A' },  { "flat", required_argument, NULL, 'f' },
        { "entry", required_argument, NULL, 'e' },  { "mode", required_argument, NULL, 'M' },
        { "cpus", required_argument, NULL, 'c' },   { "disk", required_argument, NULL, 'd' },
        { "console", required_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *kernel_path = NULL, *initrd_path = NULL, *append = "console=ttyS0";
    const char *flat_path = NULL, *console_path = NULL;
    uint64_t flat_addr = 0, entry = 0;
    bool have_entry = false;
    vx_cpu_mode mode = VX_MODE_REAL;
    unsigned long mem_mib = 256, cpus = 1;
    vx_pc_disk disks[VX_PC_MAX_DISKS];
    unsigned ndisks = 0;
    vx_accel accel = VX_ACCEL_AUTO;
    int c;
    while ((c = getopt_long(argc, argv, "k:i:a:m:A:f:e:M:c:d:C:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': kernel_path = optarg; break;
        case 'i': initrd_path = optarg; break;
        case 'a': append = optarg; break;
        case 'm':
            if (!parse_count(optarg, 16, 1ul << 20, &mem_mib)) {
                fprintf(stderr, "%s: --mem %s: a number of MiB from 16\n", prog, optarg);
                return 2;
            }
            break;
        case 'c':
            if (!parse_count(optarg, 1, 64, &cpus)) {
                fprintf(stderr, "%s: --cpus %s: a number from 1 to 64\n", prog, optarg);
                return 2;
            }
            break;
        case 'f': {
            char *at = strrchr(optarg, '@');
            if (!at || !parse_u64(at + 1, &flat_addr)) {
                fprintf(stderr, "%s: --flat %s: FILE@ADDR, e.g. boot.bin@0x7c00\n", prog, optarg);
                return 2;
            }
            *at = '\0';
            flat_path = optarg;
            break;
        }
        case 'e':
            if (!parse_u64(optarg, &entry)) {
                fprintf(stderr, "%s: --entry %s: an address\n", prog, optarg);
                return 2;
            }
            have_entry = true;
            break;
        case 'M':
            if (!strcmp(optarg, "real"))
                mode = VX_MODE_REAL;
            else if (!strcmp(optarg, "prot32"))
                mode = VX_MODE_PROT32;
            else if (!strcmp(optarg, "long64"))
                mode = VX_MODE_LONG64;
            else {
                fprintf(stderr, "%s: --mode %s: real, prot32 or long64\n", prog, optarg);
                return 2;
            }
            break;
        case 'd': {
            if (ndisks == VX_PC_MAX_DISKS) {
                fprintf(stderr, "%s: at most %d disks\n", prog, VX_PC_MAX_DISKS);
                return 2;
            }
            char *path = optarg, *comma = strrchr(path, ',');
            unsigned flags = 0;
            if (comma && !strcmp(comma, ",ro")) {
                *comma = '\0';
                flags = VX_PC_DISK_READONLY;
            } else if (comma && !strcmp(comma, ",rw")) {
                *comma = '\0';
            }
            disks[ndisks] = (vx_pc_disk){ sizeof(vx_pc_disk), path, -1, flags };
            ndisks++;
            break;
        }
        case 'C': console_path = optarg; break;
        case 'A':
            if (!strcmp(optarg, "kvm"))
                accel = VX_ACCEL_KVM;
            else if (!strcmp(optarg, "tcg"))
                accel = VX_ACCEL_TCG;
            else if (!strcmp(optarg, "auto"))
                accel = VX_ACCEL_AUTO;
            else {
                fprintf(stderr, "%s: --accel %s: kvm, tcg or auto\n", prog, optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!kernel_path == !flat_path || optind != argc || (flat_path && (initrd_path))) {
        if (kernel_path && flat_path)
            fprintf(stderr, "%s: --kernel and --flat exclude each other\n", prog);
        usage(stderr);
        return 2;
    }
    if (!have_entry)
        entry = flat_addr;
    if (flat_path && mode == VX_MODE_REAL && entry >= 0x100000) {
        fprintf(stderr, "%s: --mode real needs an entry below 1 MiB\n", prog);
        return 2;
    }
    size_t klen = 0, ilen = 0;
    void *kernel = read_file(kernel_path ? kernel_path : flat_path, &klen), *initrd = NULL;
    if (!kernel)
        return 1;
    if (initrd_path && !(initrd = read_file(initrd_path, &ilen))) {
        free(kernel);
        return 1;
    }
    int console_fd = -1;
    if (console_path) {
        console_fd = !strcmp(console_path, "-")
                         ? STDOUT_FILENO
                         : open(console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (console_fd < 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, console_path, strerror(errno));
            free(kernel);
            free(initrd);
            return 1;
        }
    }

    vx_machine_opts o = { sizeof o, VX_ARCH_X86_64, accel, (unsigned)cpus,
                          VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO };
    vx_machine *m;
    int rc = vx_machine_create(&o, &m);
    if (!rc && cpus > 1 && vx_machine_accel(m) == VX_ACCEL_TCG) {
        /* The board needs APICs for more (its ACPI tables describe them). */
        fprintf(stderr, "%s: tcg runs one vCPU (its interrupt controller has no APICs); "
                "--cpus %lu ignored\n", prog, cpus);
        vx_machine_destroy(m);
        o.accel = VX_ACCEL_TCG;
        o.vcpus = 1;
        rc = vx_machine_create(&o, &m);
    }
    if (rc) {
        fprintf(stderr, "%s: cannot create the machine: %s\n", prog, vx_last_error());
        free(kernel);
        free(initrd);
        return 1;
    }
    const char *why = "";
    if (accel == VX_ACCEL_AUTO && vx_machine_accel(m) == VX_ACCEL_TCG)
        why = vx_accel_available(VX_ACCEL_KVM)
                  ? " (auto: this host's KVM cannot run a kernel's ring 0 on the CPU: no "
                    "kvm_intel/kvm_amd)"
                  : " (auto: no usable /dev/kvm)";
    else if (accel == VX_ACCEL_AUTO)
        why = " (auto: hardware-assisted KVM)";
    fprintf(stderr, "%s: accelerator %s%s\n", prog, vx_machine_accel_name(m), why);
    vx_pc_opts po = { .size = sizeof po, .ram_size = (uint64_t)mem_mib << 20,
                      .serial_fd = STDOUT_FILENO, .disks = disks, .disk_count = ndisks,
                      .flags = console_path ? VX_PC_VIRTIO_CONSOLE : 0,
                      .console_fd = console_fd };
    if ((rc = vx_board_pc(m, &po)) ||
        (kernel_path && (rc = vx_boot_linux(m, kernel, klen, initrd, ilen, append))) ||
        (flat_path && ((rc = vx_load_flat(m, flat_addr, kernel, klen)) ||
                       (rc = start_flat(m, mode, entry, (uint64_t)mem_mib << 20))))) {
        fprintf(stderr, "%s: %s\n", prog, vx_last_error());
        vx_machine_destroy(m);
        free(kernel);
        free(initrd);
        return 1;
    }
    free(kernel);
    free(initrd);

    struct input in = { .m = m };
    raw_terminal();
    pthread_t th;
    bool have_input = pthread_create(&th, NULL, input_thread, &in) == 0;
    if (have_input)
        pthread_detach(th);

    /* vCPU 0 on this thread, the others on their own (on kvm they wait
     * for the kernel's INIT/SIPI in KVM_RUN). */
    unsigned n = vx_machine_vcpu_count(m);
    pthread_t *threads = calloc(n, sizeof *threads);
    struct vcpu_thread *vt = calloc(n, sizeof *vt);
    if (!threads || !vt) {
        fprintf(stderr, "\r\n%s: out of memory\r\n", prog);
        end_run(&in, 1);
    }
    unsigned started = 1;
    for (; threads && vt && started < n; started++) {
        vt[started] = (struct vcpu_thread){ &in, vx_machine_vcpu(m, started) };
        if (pthread_create(&threads[started], NULL, vcpu_thread, &vt[started])) {
            fprintf(stderr, "\r\n%s: cannot start a thread for vCPU %u\r\n", prog, started);
            end_run(&in, 1);
            break;
        }
    }
    /* The run ends through end_run(), which stops every vCPU: join them. */
    if (!atomic_load(&in.quit))
        run_vcpu(&in, vx_machine_vcpu(m, 0));
    for (unsigned i = 1; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    free(vt);
    int status = in.status;
    restore_terminal();
    if (getenv("VX_RUN_STATS"))
        print_memory_stats(m, (uint64_t)mem_mib << 20);
    vx_machine_destroy(m);
    return status;
}
