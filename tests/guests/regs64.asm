; vx_vcpu_set_regs() reaches the CPU and vx_vcpu_get_regs() reads it back
; (test_regs_roundtrip): adds 1 to each of the 16 general registers with
; lea, which leaves rflags alone, so the flags the test set survive too.
bits 64
org 0x1000

start:
    lea rax, [rax + 1]
    lea rbx, [rbx + 1]
    lea rcx, [rcx + 1]
    lea rdx, [rdx + 1]
    lea rsi, [rsi + 1]
    lea rdi, [rdi + 1]
    lea rsp, [rsp + 1]
    lea rbp, [rbp + 1]
    lea r8, [r8 + 1]
    lea r9, [r9 + 1]
    lea r10, [r10 + 1]
    lea r11, [r11 + 1]
    lea r12, [r12 + 1]
    lea r13, [r13 + 1]
    lea r14, [r14 + 1]
    lea r15, [r15 + 1]
    hlt
