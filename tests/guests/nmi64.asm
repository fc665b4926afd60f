; Single-step traps and NMIs in long mode (check_system: test_nmi_step).
; 1. TF: popfq sets it, and a #DB trap follows each of the next six
;    instructions (three nops, and pushfq/and/popfq, the last of which
;    clears TF but began with it set). The #DB handler counts; reported: 6.
; 2. NMI through an IST gate: the program writes to port 0x98; the test
;    answers with vx_vcpu_nmi() and resumes. The handler reports its count
;    and its rsp (the IST stack less the frame); the first also writes to
;    0x98, where the test raises a second NMI, which must wait for the
;    first handler's iretq (0x77 is reported before it). Then 0x33, the
;    count (2), 0xd0e, hlt.
bits 64
org 0x1000

data_base equ 0x8000
TSS       equ 0x16080
IST_TOP   equ 0x7000
steps     equ data_base + 0x40
nmis      equ data_base + 0x44

    jmp start
%include "idt64.inc"

start:
    call idt64_install
    SET_GATE 1, db_handler
    SET_GATE 2, nmi_handler
    mov byte [idt + 2 * 16 + 4], 1      ; IST 1
    mov qword [TSS + 0x24], IST_TOP     ; IST1
    mov dword [steps], 0
    mov dword [nmis], 0

    pushfq
    or qword [rsp], 0x100
    popfq
    nop
    nop
    nop
    pushfq
    and qword [rsp], ~0x100
    popfq
    mov eax, [steps]
    out REPORT_PORT, eax

    out 0x98, al
.wait:                                  ; the second NMI is due after the first's
    cmp dword [nmis], 2                 ; iretq: on the CPU at once, with kvm_pvm
    jb .wait                            ; (its emulator runs iretq) a little later
    REPORT 0x33
    mov eax, [nmis]
    out REPORT_PORT, eax
    REPORT 0xd0e
    hlt

db_handler:
    inc dword [steps]
    iretq

nmi_handler:
    push rax
    inc dword [nmis]
    mov eax, [nmis]
    out REPORT_PORT, eax
    mov rax, rsp
    add rax, 8
    out REPORT_PORT, eax
    cmp dword [nmis], 1
    jne .done
    out 0x98, al
    REPORT 0x77
.done:
    pop rax
    iretq
