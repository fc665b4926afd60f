/*
 * vx-exit CODE: a Linux guest's way out of a libvx pc machine. Writes CODE
 * (0-127) to the debug-exit port 0x501, which ends vx_vcpu_run() with
 * VX_SHUTDOWN_POWEROFF and code (CODE << 1) | 1 (so vx-run exits with
 * that). Built static and libc-free by scripts/make-initramfs: raw system
 * calls (ioperm) and an outb.
 */
static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

#define SYS_write 1
#define SYS_ioperm 173
#define SYS_exit 60

static int parse(const char *s)
{
    int v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    return v & 0x7f;
}

int vx_exit_main(long argc, char **argv)
{
    unsigned char code = (unsigned char)(argc > 1 ? parse(argv[1]) : 0);
    if (sys3(SYS_ioperm, 0x501, 1, 1) < 0) {
        static const char msg[] = "vx-exit: ioperm failed\n";
        sys3(SYS_write, 2, (long)msg, sizeof msg - 1);
        return 1;
    }
    __asm__ volatile("outb %0, %1" : : "a"(code), "Nd"((unsigned short)0x501));
    static const char msg[] = "vx-exit: still running: not a libvx pc machine?\n";
    sys3(SYS_write, 2, (long)msg, sizeof msg - 1);
    return 1;
}

/* The entry point: argc and argv from the initial stack. */
__asm__(".globl _start\n"
        "_start:\n"
        "    mov (%rsp), %rdi\n"
        "    lea 8(%rsp), %rsi\n"
        "    and $-16, %rsp\n"
        "    call vx_exit_main\n"
        "    mov %eax, %edi\n"
        "    mov $60, %eax\n"
        "    syscall\n");
