/*
 * vxbench: one table of guest workloads (rows) against ways of running them
 * (columns): natively, on bare KVM ioctls, through libvx on kvm and on tcg,
 * and through Unicorn. `make bench` runs it.
 *
 * Every cell runs its workload `reps` times (more when a run is short, see
 * SHORT_RUN_NS) and reports the fastest run (with its breakdown): the other
 * processes on the host can only make a run slower, so the minimum is the
 * best estimate of the cost itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <libvx/vx.h>

#include "bench.h"

/* Cells whose runs take less than this are run up to SHORT_RUN_REPS times. */
#define SHORT_RUN_NS (50 * 1000000ull)
#define SHORT_RUN_REPS 10

/* ---- helpers shared by the cells --------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

void bench_note(struct bench_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof(r->note), fmt, ap);
    va_end(ap);
}

void bench_phase(struct bench_result *r, const char *name, double ns)
{
    if (r->nphases < BENCH_MAX_PHASES) {
        r->phase[r->nphases].name = name;
        r->phase[r->nphases].ns = ns;
        r->nphases++;
    }
}

volatile uint64_t bench_sink_count;

int bench_sink_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)opaque, (void)addr, (void)len, (void)value;
    bench_sink_count++;
    return 0;
}

int bench_loop_finish(const struct bench_loop *l, uint64_t iters, uint64_t ns,
                      uint64_t cpu_ns, uint64_t digest, struct bench_result *r)
{
    uint64_t want;
    int rc = bench_loop_expect(l, iters, &want, r);
    if (rc < 0)
        return rc;
    if (rc == 0 && digest != want) {
        bench_note(r, "wrong result: digest %016llx, the native run gives %016llx",
                   (unsigned long long)digest, (unsigned long long)want);
        return -1;
    }
    r->note[0] = '\0';
    r->ns = (double)ns / (double)(l->insns_per_iter * iters);
    double share = ns ? (double)cpu_ns / (double)ns : 1;
    if (share < 0.9) {
        size_t used = strlen(r->info);
        snprintf(r->info + used, sizeof(r->info) - used,
                 "%sthe timed run had %.0f%% of a CPU (the host was busy)", used ? "; " : "",
                 share * 100);
    }
    return 0;
}

/* ---- the table ----------------------------------------------------------- */

static const char *const col_names[BENCH_NCOLS] = {
    [COL_NATIVE] = "native",
    [COL_KVM_BARE] = "kvm-bare",
    [COL_KVM] = "kvm",
    [COL_TCG] = "tcg",
    [COL_UNICORN] = "unicorn",
};

struct workload {
    const char *name;
    const char *unit;     /* what one reported number is the cost of */
    double unit_ns;       /* nanoseconds in a printed unit: 1 or 1000 */
    bool mips;            /* a loop row: print 1000 / ns (guest MIPS) and the
                           * ratio to the native column */
    int arg;              /* handed to the cells as ctx->arg */
    bool ring3;           /* only with --ring3 */
    const struct bench_loop *loop;
    bench_fn cell[BENCH_NCOLS];
};

/* The loop rows: kvm runs them in ring 3 (see vx_loop), tcg in the row's
 * ring, Unicorn in its flat ring 0. */
#define LOOP_ROW(l, label)                                                       \
    {                                                                            \
        .name = label, .unit = "MIPS", .unit_ns = 1, .mips = true, .loop = &l,   \
        .cell = {                                                                \
            [COL_NATIVE] = native_loop,                                          \
            [COL_KVM] = vx_loop,                                                 \
            [COL_TCG] = vx_loop,                                                 \
            [COL_UNICORN] = uc_loop,                                             \
        },                                                                       \
    }
/* With --ring3: tcg with the guest in ring 3 (user pages, IOPL 3); the
 * native run again, for the ratio. */
#define LOOP_ROW3(l, label)                                                      \
    {                                                                            \
        .name = label, .unit = "MIPS", .unit_ns = 1, .mips = true, .loop = &l,   \
        .arg = 3, .ring3 = true,                                                 \
        .cell = { [COL_NATIVE] = native_loop, [COL_TCG] = vx_loop },             \
    }

static const struct workload workloads[] = {
    LOOP_ROW(bench_loop_alu, "ALU loop"),
    LOOP_ROW(bench_loop_mem, "memory loop"),
    LOOP_ROW(bench_loop_call, "call/ret loop"),
    LOOP_ROW3(bench_loop_alu, "ALU loop, tcg ring 3"),
    LOOP_ROW3(bench_loop_mem, "memory loop, tcg ring 3"),
    LOOP_ROW3(bench_loop_call, "call/ret loop, tcg ring 3"),
    {
        .name = "out to callback, ring 0", .unit = "ns/exit", .unit_ns = 1, .arg = 0,
        .cell = {
            [COL_KVM_BARE] = bare_out_loop,
            [COL_KVM] = vx_out_loop,
            [COL_TCG] = vx_out_loop,
            [COL_UNICORN] = uc_out_loop,
        },
    },
    {
        .name = "out to callback, ring 3", .unit = "ns/exit", .unit_ns = 1, .arg = 3,
        .ring3 = true,
        .cell = {
            [COL_KVM_BARE] = bare_out_loop,
            [COL_KVM] = vx_out_loop,
            [COL_TCG] = vx_out_loop,
        },
    },
    {
        .name = "create+run+destroy 2 MiB", .unit = "us/machine", .unit_ns = 1000,
        .cell = {
            [COL_KVM_BARE] = bare_create_run_destroy,
            [COL_KVM] = vx_create_run_destroy,
            [COL_TCG] = vx_create_run_destroy,
            [COL_UNICORN] = uc_create_run_destroy,
        },
    },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

enum { CELL_EMPTY, CELL_OK, CELL_NA, CELL_FAILED };

struct cell {
    int state;
    struct bench_result r;
    uint64_t run_ns; /* the shortest run, setup included */
};

/* ---- the header ---------------------------------------------------------- */

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 1 + strspn(colon + 1, " \t");
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, len, "%s", colon);
            break;
        }
    }
    fclose(f);
}

static void print_header(const struct bench_opts *o)
{
    char date[64], cpu[128], kvm[64];
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M %Z", localtime(&now));
    cpu_model(cpu, sizeof(cpu));
    bare_kvm_module(kvm, sizeof(kvm));
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.release, sizeof(u.release), "?");

    printf("vxbench, libvx %s, %s\n", vx_version_string(), date);
    printf("host: %s, %ld CPUs, Linux %s, KVM module: %s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), u.release, kvm);
    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(load, sizeof(load), f))
            load[strcspn(load, "\n")] = '\0';
        fclose(f);
    }
    printf("unicorn: %s; load average at start: %s\n", uc_bench_version(), load);
    printf("runs: loops of ~%llu guest instructions, %llu outs, %u machines; best of %u",
           (unsigned long long)o->loop_insns, (unsigned long long)o->out_count,
           o->create_count, o->reps);
    if (o->reps > 1 && o->reps < SHORT_RUN_REPS)
        printf(" (of %u for cells whose runs take under %llu ms)", SHORT_RUN_REPS,
               SHORT_RUN_NS / 1000000);
    printf("\n\n");
}

/* ---- running and printing -------------------------------------------------- */

/* --workload names rows outright; otherwise the ring-3 rows, slow on some
 * hosts, wait for --ring3. */
static bool row_selected(const struct workload *wl, const struct bench_opts *o)
{
    if (o->only)
        return strstr(wl->name, o->only) != NULL;
    return !wl->ring3 || o->ring3;
}

/* A ratio to native with three significant digits: 1.00, 0.759, 0.00625. */
static void print_ratio(double x)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%#.3g", x);
    printf(" %10s", buf);
}

/* --column: a comma-separated list of column names; NULL runs them all. */
static bool col_selected(int c, const struct bench_opts *o)
{
    if (!o->columns)
        return true;
    size_t len = strlen(col_names[c]);
    for (const char *p = o->columns; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, col_names[c], n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

static void print_table(struct cell cells[][BENCH_NCOLS], const struct bench_opts *o)
{
    printf("%-26s %-10s", "workload", "unit");
    for (int c = 0; c < BENCH_NCOLS; c++)
        printf(" %10s", col_names[c]);
    printf(" %9s\n", "kvm/bare");

    for (size_t w = 0; w < NWORKLOADS; w++) {
        const struct workload *wl = &workloads[w];
        if (!row_selected(wl, o))
            continue;
        printf("%-26s %-10s", wl->name, wl->unit);
        for (int c = 0; c < BENCH_NCOLS; c++) {
            const struct cell *cl = &cells[w][c];
            if (cl->state == CELL_OK && wl->mips)
                printf(" %10.1f", 1000.0 / cl->r.ns);
            else if (cl->state == CELL_OK)
                printf(" %10.1f", cl->r.ns / wl->unit_ns);
            else if (cl->state == CELL_FAILED)
                printf(" %10s", "FAIL");
            else
                printf(" %10s", "-");
        }
        const struct cell *bare = &cells[w][COL_KVM_BARE], *vx = &cells[w][COL_KVM];
        if (bare->state == CELL_OK && vx->state == CELL_OK && bare->r.ns > 0)
            printf(" %9.3f\n", vx->r.ns / bare->r.ns);
        else
            printf(" %9s\n", "-");

        /* The loop rows: each column's speed as a fraction of native. */
        const struct cell *native = &cells[w][COL_NATIVE];
        if (!wl->mips || native->state != CELL_OK)
            continue;
        printf("%-26s %-10s", "", "x native");
        for (int c = 0; c < BENCH_NCOLS; c++) {
            const struct cell *cl = &cells[w][c];
            if (cl->state == CELL_OK)
                print_ratio(native->r.ns / cl->r.ns);
            else
                printf(" %10s", "-");
        }
        printf(" %9s\n", "-");
    }
}

/* Breakdowns, then the reasons for "-" and FAIL. The same reason for a whole
 * column (tcg not built) is printed once. */
static void print_notes(struct cell cells[][BENCH_NCOLS], const struct bench_opts *o)
{
    bool any_loop = false;
    for (size_t w = 0; w < NWORKLOADS; w++)
        any_loop |= workloads[w].mips && row_selected(&workloads[w], o);
    if (any_loop) {
        printf("\nloop rows: guest MIPS of the timed run (after a warm-up run on the same "
               "machine);\nkvm runs them in ring 3 (on a software KVM ring 0 is emulated), "
               "tcg in ring 0\nunless the row says ring 3, Unicorn in its flat ring 0. "
               "Results (registers, memory)\nare checked against native's: a mismatch "
               "is a FAIL.\n");
        for (size_t w = 0; w < NWORKLOADS; w++) {
            const struct workload *wl = &workloads[w];
            if (!wl->mips || wl->ring3 || !row_selected(wl, o))
                continue;
            printf("  %-14s %7llu instructions/iteration x %llu iterations = %llu\n",
                   wl->loop->name, (unsigned long long)wl->loop->insns_per_iter,
                   (unsigned long long)bench_loop_iters(wl->loop, o),
                   (unsigned long long)(wl->loop->insns_per_iter *
                                        bench_loop_iters(wl->loop, o)));
        }
    }
    for (size_t w = 0; w < NWORKLOADS; w++) {
        for (int c = 0; c < BENCH_NCOLS; c++) {
            const struct cell *cl = &cells[w][c];
            if (cl->state == CELL_OK && cl->r.info[0])
                printf("  %s, %s: %s\n", workloads[w].name, col_names[c], cl->r.info);
        }
    }

    for (size_t w = 0; w < NWORKLOADS; w++) {
        for (int c = 0; c < BENCH_NCOLS; c++) {
            const struct cell *cl = &cells[w][c];
            if (cl->state != CELL_OK || !cl->r.nphases)
                continue;
            double unit = workloads[w].unit_ns;
            printf("\n%s, %s, %s:\n", workloads[w].name, col_names[c], workloads[w].unit);
            for (unsigned p = 0; p < cl->r.nphases; p++)
                printf("  %-36s %10.1f\n", cl->r.phase[p].name, cl->r.phase[p].ns / unit);
        }
    }

    bool first = true;
    for (int c = 0; c < BENCH_NCOLS; c++) {
        const char *last = NULL;
        for (size_t w = 0; w < NWORKLOADS; w++) {
            const struct cell *cl = &cells[w][c];
            if ((cl->state != CELL_NA && cl->state != CELL_FAILED) || !cl->r.note[0])
                continue;
            if (last && strcmp(last, cl->r.note) == 0 && cl->state == CELL_NA)
                continue;
            if (first)
                printf("\nnotes:\n");
            first = false;
            if (cl->state == CELL_FAILED)
                printf("  %s, %s: FAILED: %s\n", col_names[c], workloads[w].name, cl->r.note);
            else
                printf("  %s: not available: %s\n", col_names[c], cl->r.note);
            last = cl->r.note;
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vxbench [options]\n"
            "  -q, --quick          a short run: loops of 10M instructions, 10,000 outs,\n"
            "                       100 machines (still best of 3)\n"
            "  -i, --insns N        guest instructions per loop run (default 100000000)\n"
            "  -o, --outs N         outs per run of the out rows (default 100000)\n"
            "  -m, --machines N     machines per run of the create row (default 1000)\n"
            "  -r, --reps N         runs per cell, the fastest is shown (default 3)\n"
            "  -3, --ring3          add the rows with the guest in ring 3 under tcg (loops)\n"
            "                       and under every accelerator (out)\n"
            "  -w, --workload TEXT  only the rows whose name contains TEXT (ring 3 too)\n"
            "  -c, --column LIST    only these columns, e.g. tcg,unicorn (for profiling)\n"
            "  -v, --verbose        say which cell runs, as it runs\n"
            "  -h, --help\n");
}

static unsigned long long parse_count(const char *arg, const char *what)
{
    char *end;
    unsigned long long n = strtoull(arg, &end, 0);
    if (*arg == '-' || *end || n == 0) {
        fprintf(stderr, "vxbench: %s: not a positive number: %s\n", what, arg);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    struct bench_opts o = {
        .loop_insns = 100000000, .out_count = 100000, .create_count = 1000, .reps = 3,
    };
    static const struct option long_opts[] = {
        { "quick", no_argument, NULL, 'q' },
        { "insns", required_argument, NULL, 'i' },
        { "outs", required_argument, NULL, 'o' },
        { "machines", required_argument, NULL, 'm' },
        { "reps", required_argument, NULL, 'r' },
        { "ring3", no_argument, NULL, '3' },
        { "workload", required_argument, NULL, 'w' },
        { "column", required_argument, NULL, 'c' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "qi:o:m:r:3w:c:vh", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'q':
            o.loop_insns = 10000000;
            o.out_count = 10000;
            o.create_count = 100;
            break;
        case 'i': o.loop_insns = parse_count(optarg, "--insns"); break;
        case 'o': o.out_count = parse_count(optarg, "--outs"); break;
        case 'm': o.create_count = (unsigned)parse_count(optarg, "--machines"); break;
        case 'r': o.reps = (unsigned)parse_count(optarg, "--reps"); break;
        case '3': o.ring3 = true; break;
        case 'w': o.only = optarg; break;
        case 'c': o.columns = optarg; break;
        case 'v': o.verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    for (const char *p = o.columns; p && *p;) {
        size_t n = strcspn(p, ",");
        int c = 0;
        while (c < BENCH_NCOLS && (strlen(col_names[c]) != n || strncmp(p, col_names[c], n)))
            c++;
        if (c == BENCH_NCOLS) {
            fprintf(stderr, "vxbench: --column: no column %.*s (native, kvm-bare, kvm, tcg, "
                    "unicorn)\n", (int)n, p);
            return 2;
        }
        p += n + (p[n] == ',');
    }

    print_header(&o);
    fflush(stdout);

    static struct cell cells[NWORKLOADS][BENCH_NCOLS];
    bool failed = false;
    for (size_t w = 0; w < NWORKLOADS; w++) {
        const struct workload *wl = &workloads[w];
        if (!row_selected(wl, &o))
            continue;
        /* Columns take turns, run by run, so a change in the host's load
         * during the row weighs on all of them alike. A cell whose run is
         * short (tcg and Unicorn through 100,000 outs take a few ms) is
         * disturbed whole by one preemption on a busy host: it takes more
         * turns, up to SHORT_RUN_REPS runs in all. */
        for (unsigned rep = 0;; rep++) {
            bool ran = false;
            for (int c = 0; c < BENCH_NCOLS; c++) {
                struct cell *cl = &cells[w][c];
                if (!wl->cell[c] || !col_selected(c, &o) || cl->state == CELL_NA ||
                    cl->state == CELL_FAILED)
                    continue;
                if (rep >= o.reps &&
                    (rep >= SHORT_RUN_REPS || cl->run_ns >= SHORT_RUN_NS || o.reps == 1))
                    continue;
                ran = true;
                if (o.verbose)
                    fprintf(stderr, "vxbench: %s on %s, run %u\n", wl->name, col_names[c],
                            rep + 1);
                struct bench_ctx ctx = { .opts = &o, .col = c, .arg = wl->arg, .loop = wl->loop };
                struct bench_result r = { 0 };
                uint64_t t0 = bench_now_ns();
                int rc = wl->cell[c](&ctx, &r);
                uint64_t t = bench_now_ns() - t0;
                if (rc == 0 && (cl->state != CELL_OK || r.ns < cl->r.ns)) {
                    cl->state = CELL_OK;
                    cl->r = r;
                } else if (rc != 0) {
                    cl->state = rc == BENCH_NA ? CELL_NA : CELL_FAILED;
                    cl->r = r;
                    failed |= rc != BENCH_NA;
                }
                if (rc == 0 && (!cl->run_ns || t < cl->run_ns))
                    cl->run_ns = t;
            }
            if (!ran)
                break;
        }
    }

    print_table(cells, &o);
    print_notes(cells, &o);
    return failed ? 1 : 0;
}
