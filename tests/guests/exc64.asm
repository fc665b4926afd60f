; Exceptions in 64-bit ring 0 (check_system: test_exceptions64): each case
; faults once and the handler of idt64.inc reports vector, error code,
; whether the saved rip is the faulting instruction's, CS, RF|IF of the
; saved RFLAGS (and CR2 for #PF), then resumes after the instruction.
; The expected reports are written in check_system.c. Ends with the
; marker 0xd0e and hlt.
bits 64
org 0x1000

data_base equ 0x8000
PD0       equ 0x12000            ; vx_vcpu_set_mode's first page directory
GDT       equ 0x16000

    jmp start
%include "idt64.inc"

start:
    call idt64_install

    ; #DE: divide by zero.
    xor edx, edx
    xor ecx, ecx
    mov eax, 1
    FAULT {div ecx}

    ; #UD
    FAULT {ud2}

    ; #GP(0): a non-canonical data address.
    mov rbx, 0x8000000000000000
    FAULT {mov al, [rbx]}

    ; #SS(0): the same through the stack segment.
    mov rbp, 0x8000000000000000
    FAULT {mov al, [rbp]}

    ; #GP(selector): beyond the GDT's limit.
    mov bx, 0x1000
    FAULT {mov ds, bx}

    ; #NP(selector): a data descriptor that is not present (GDT entry 0x18,
    ; which this program does not otherwise use).
    mov rax, 0x00cf13000000ffff
    mov [GDT + 0x18], rax
    mov bx, 0x18
    FAULT {mov ds, bx}

    ; #PF: the 2-4 MiB page made not present; a read, then a write.
    mov rax, [PD0 + 8]
    mov [data_base + 0x40], rax
    and qword [PD0 + 8], ~1
    invlpg [0x200000]
    FAULT {mov al, [0x200000]}
    FAULT {mov [0x200010], al}
    mov rax, [data_base + 0x40]
    mov [PD0 + 8], rax
    invlpg [0x200000]

    ; wrmsr to an MSR the CPU does not have: #GP(0).
    mov ecx, 0x12345678
    xor eax, eax
    xor edx, edx
    FAULT {wrmsr}

    ; #DF: the #GP gate not present, so delivering #GP raises #NP: two
    ; contributory exceptions make a double fault (error code 0).
    and byte [idt + 13 * 16 + 5], 0x7f
    mov rbx, 0x8000000000000000
    FAULT {mov al, [rbx]}
    or byte [idt + 13 * 16 + 5], 0x80

    ; int n (last: kvm_pvm's emulator lacks it in ring 0) beyond the IDT's limit: #GP(vector * 8 + 2), no EXT.
    FAULT {int 0x40}

    ; mov to CR4 with a reserved bit: #GP(0). (kvm_pvm turns this one
    ; into a #DF: after int n, so kvm never gets here.)
    mov rax, cr4
    bts rax, 63
    FAULT {mov cr4, rax}

    ; After all that, ordinary work still runs.
    mov eax, 6
    imul eax, eax, 7
    out REPORT_PORT, eax        ; 42

    REPORT 0xd0e
    cli
    hlt
