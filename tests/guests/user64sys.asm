; Ring 3 and back in long mode (check_system: test_ring3_64): syscall and
; sysretq, int n through a DPL-3 gate, int3, and the faults ring 3 takes
; (int n through a DPL-0 gate, hlt, a supervisor page). Exceptions are
; reported by idt64.inc; the syscall handler reports 0x5c, CS, whether rcx
; is the return address, r11 (the saved RFLAGS), RFLAGS and rax, then returns with
; sysretq; rax = 0 ends the test (0xd0e, hlt in ring 0).
bits 64
org 0x1000

data_base equ 0x8000
PD0       equ 0x12000
TSS       equ 0x16080
KSTACK    equ 0xe800
USTACK    equ 0xe000

    jmp start
%include "idt64.inc"

; A trap-like case: the handler's saved rip is the next instruction's.
%macro TRAP 1
    mov qword [expect_rip], %%after
    mov qword [resume], %%after
    %1
%%after:
%endmacro

start:
    call idt64_install
    GATE_DPL3 3                 ; int3 from ring 3
    GATE_DPL3 29                ; int 29 from ring 3
    mov qword [TSS + 4], KSTACK ; RSP0

    ; syscall: EFER.SCE, STAR (kernel CS 0x08, user base 0x20), LSTAR, FMASK.
    mov ecx, 0xc0000080
    rdmsr
    or eax, 1
    wrmsr
    mov ecx, 0xc0000081
    xor eax, eax
    mov edx, 0x00200008
    wrmsr
    mov ecx, 0xc0000082
    mov rax, syscall_entry
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xc0000084
    mov eax, 0x200
    xor edx, edx
    wrmsr

    ; The 2-4 MiB page: present, writable, supervisor only.
    and qword [PD0 + 8], ~4

    push 0x28 | 3               ; ss
    push USTACK                 ; rsp
    push 0x3202                 ; rflags: IOPL 3 (ring 3 reports with out), IF
    push 0x30 | 3               ; cs
    push user
    iretq

user:
    mov eax, cs
    out REPORT_PORT, eax        ; 0x33

    mov qword [expect_rip], .back
    mov eax, 7
    syscall
.back:
    mov eax, cs
    out REPORT_PORT, eax        ; 0x33 again

    TRAP {int 29}               ; DPL-3 gate: reaches the handler
    TRAP {int3}                 ; #BP through its DPL-3 gate
    FAULT {int 30}              ; DPL-0 gate: #GP(30 * 8 + 2)
    FAULT {hlt}                 ; #GP(0)
    FAULT {mov al, [0x200000]}  ; #PF(P | U)
    mov eax, esp
    out REPORT_PORT, eax        ; the user stack is where it was

    mov qword [expect_rip], .never
    xor eax, eax
    syscall                     ; the end
.never:

syscall_entry:
    mov ebx, eax
    REPORT 0x5c
    mov eax, cs
    out REPORT_PORT, eax
    xor eax, eax
    cmp rcx, [expect_rip]
    sete al
    out REPORT_PORT, eax
    mov eax, r11d
    out REPORT_PORT, eax
    pushfq                      ; FMASK cleared IF
    pop rax
    and eax, 0x3200             ; IOPL and IF
    out REPORT_PORT, eax
    mov eax, ebx
    out REPORT_PORT, eax
    test ebx, ebx
    jz .end
    o64 sysret
.end:
    REPORT 0xd0e
    hlt
