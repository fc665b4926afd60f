/*
 * vx-run: boot a Linux kernel (or run a flat binary) in a libvx machine,
 * with its serial console on this terminal.
 *
 *   vx-run --kernel bzImage [--initrd FILE] [--append CMDLINE] [--mem MIB]
 *          [--accel kvm|tcg|auto]
 *
 * Ctrl-A x quits (as QEMU's -nographic does); the guest's exit status
 * (debug-exit port) becomes the process's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <libvx/pc.h>
#include <libvx/vx.h>

static const char *prog = "vx-run";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --kernel FILE [options]\n"
            "  -k, --kernel FILE     a Linux bzImage to boot\n"
            "  -i, --initrd FILE     an initial ramdisk\n"
            "  -a, --append TEXT     the kernel command line (default: console=ttyS0)\n"
            "  -m, --mem MIB         guest RAM in MiB (default 256)\n"
            "  -A, --accel NAME      kvm, tcg or auto (default auto)\n"
            "  -h, --help            this text\n"
            "The guest's COM1 is this terminal; Ctrl-A x quits. The exit status is\n"
            "the guest's (the debug-exit port 0x501), 0 for a power-off or reset.\n",
            prog);
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
    vx_vcpu *v;
    volatile bool quit;
};

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
                in->quit = true;
                vx_vcpu_stop(in->v);
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

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
        { "append", required_argument, NULL, 'a' }, { "mem", required_argument, NULL, 'm' },
        { "accel", required_argument, NULL, 'A' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *kernel_path = NULL, *initrd_path = NULL, *append = "console=ttyS0";
    unsigned long mem_mib = 256;
    vx_accel accel = VX_ACCEL_AUTO;
    int c;
    while ((c = getopt_long(argc, argv, "k:i:a:m:A:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': kernel_path = optarg; break;
        case 'i': initrd_path = optarg; break;
        case 'a': append = optarg; break;
        case 'm': {
            char *end;
            mem_mib = strtoul(optarg, &end, 10);
            if (*end || mem_mib < 16 || mem_mib > (1ul << 20)) {
                fprintf(stderr, "%s: --mem %s: a number of MiB from 16\n", prog, optarg);
                return 2;
            }
            break;
        }
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
    if (!kernel_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    size_t klen = 0, ilen = 0;
    void *kernel = read_file(kernel_path, &klen), *initrd = NULL;
    if (!kernel)
        return 1;
    if (initrd_path && !(initrd = read_file(initrd_path, &ilen)))
        return 1;

    vx_machine_opts o = { sizeof o, VX_ARCH_X86_64, accel, 1,
                          VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO };
    vx_machine *m;
    int rc = vx_machine_create(&o, &m);
    if (rc) {
        fprintf(stderr, "%s: cannot create the machine: %s\n", prog, vx_last_error());
        return 1;
    }
    fprintf(stderr, "%s: accelerator %s%s\n", prog, vx_machine_accel_name(m),
            accel == VX_ACCEL_AUTO && vx_machine_accel(m) == VX_ACCEL_TCG
                ? " (KVM here cannot run a kernel's ring 0 on the CPU, or is missing)"
                : "");
    vx_pc_opts po = { sizeof po, (uint64_t)mem_mib << 20, STDOUT_FILENO, NULL, NULL };
    if ((rc = vx_board_pc(m, &po)) ||
        (rc = vx_boot_linux(m, kernel, klen, initrd, ilen, append))) {
        fprintf(stderr, "%s: %s\n", prog, vx_last_error());
        vx_machine_destroy(m);
        return 1;
    }
    free(kernel);
    free(initrd);

    struct input in = { m, vx_machine_vcpu(m, 0), false };
    raw_terminal();
    pthread_t th;
    bool have_input = pthread_create(&th, NULL, input_thread, &in) == 0;
    if (have_input)
        pthread_detach(th);

    int status = 0;
    vx_exit e = { .size = sizeof e };
    for (;;) {
        rc = vx_vcpu_run(in.v, &e);
        if (rc) {
            fprintf(stderr, "\r\n%s: vx_vcpu_run: %s\r\n", prog, vx_last_error());
            status = 1;
            break;
        }
        if (e.reason == VX_EXIT_MMIO) {
            /* Nothing there: reads see all ones, as on a PC bus. */
            if (!e.u.mmio.is_write)
                e.u.mmio.value = ~0ull;
            continue;
        }
        if (e.reason == VX_EXIT_SHUTDOWN) {
            if (e.u.shutdown.kind == VX_SHUTDOWN_POWEROFF)
                status = (int)(e.u.shutdown.code & 0xff);
            else if (e.u.shutdown.kind == VX_SHUTDOWN_TRIPLE_FAULT) {
                fprintf(stderr, "\r\n%s: %s\r\n", prog, vx_last_error());
                status = 1;
            }
            break;
        }
        if (e.reason == VX_EXIT_STOPPED && in.quit)
            break;
        if (e.reason == VX_EXIT_HLT) {
            fprintf(stderr, "\r\n%s: the guest halted with interrupts off\r\n", prog);
            break;
        }
        if (e.reason == VX_EXIT_INTERNAL) {
            fprintf(stderr, "\r\n%s: %s\r\n", prog, vx_last_error());
            status = 1;
            break;
        }
    }
    restore_terminal();
    vx_machine_destroy(m);
    return status;
}
