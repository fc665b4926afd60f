; 32-bit protected mode (check_system: test_exceptions32): its own GDT
; with a TSS, a not-present segment and a call gate; an IDT of 32-bit
; interrupt gates whose handler reports vector, error code, whether the
; saved eip is the faulting instruction's, CS, and RF|IF of the saved
; EFLAGS, then resumes after the instruction. Cases: #DE, #UD, #BR (bound),
; #OF (into, a trap: the saved eip is the next instruction's), #GP and #NP
; on segment loads, #GP(0) on an access past FS's limit. Then a far call
; from ring 3 through a DPL-3 call gate to ring 0 with two parameters: the
; ring-0 code reports CS, SS, ESP (the TSS's, less the frame) and the two
; copied parameters, and returns with retf 8 to ring 3, which reports
; its CS and ESP and leaves through an out to the unclaimed port 0x99.
bits 32
org 0x1000

REPORT_PORT equ 0x10
data_base   equ 0x8000
expect_eip  equ data_base + 0x00
resume      equ data_base + 0x04
idt         equ data_base + 0x100   ; 32 gates * 8 bytes

%macro REPORT 1
    mov eax, %1
    out REPORT_PORT, eax
%endmacro

%macro FAULT 1
    mov dword [expect_eip], %%fault
    mov dword [resume], %%after
%%fault:
    %1
%%after:
%endmacro

%macro TRAP 1
    mov dword [expect_eip], %%after
    mov dword [resume], %%after
    %1
%%after:
%endmacro

start:
    lgdt [gdtr]
    jmp 0x08:.cs_loaded
.cs_loaded:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    ; IDT: 32-bit interrupt gates to the stubs.
    xor ebx, ebx
.gate:
    mov eax, [stub_table + ebx * 4]
    mov [idt + ebx * 8], ax
    mov word [idt + ebx * 8 + 2], 0x08
    mov word [idt + ebx * 8 + 4], 0x8e00
    shr eax, 16
    mov [idt + ebx * 8 + 6], ax
    inc ebx
    cmp ebx, 32
    jb .gate
    lidt [idtr]
    mov dword [tss + 4], 0x6800     ; esp0
    mov dword [tss + 8], 0x10       ; ss0
    mov ax, 0x30
    ltr ax

    xor edx, edx
    xor ecx, ecx
    mov eax, 1
    FAULT {div ecx}                 ; #DE
    FAULT {ud2}                     ; #UD
    mov eax, 5
    FAULT {bound eax, [bounds]}     ; #BR: 5 is outside [10, 20]
    mov al, 0x7f
    add al, 1                       ; OF
    TRAP {into}                     ; #OF
    mov bx, 0x1000
    FAULT {mov ds, bx}              ; #GP(0x1000): beyond the GDT
    mov bx, 0x38
    FAULT {mov es, bx}              ; #NP(0x38)
    mov ax, 0x40                    ; a 4 KiB stack segment
    mov fs, ax
    FAULT {mov eax, [fs:0x2000]}    ; #GP(0): beyond FS's limit
    mov ax, 0x10
    mov ds, ax
    mov es, ax

    ; To ring 3, then back through the call gate.
    push 0x28 | 3                   ; ss
    push 0x5000                     ; esp
    push 0x3002                     ; eflags: IOPL 3
    push 0x20 | 3                   ; cs
    push ring3
    iret

ring3:
    call 0x50:conforming            ; DPL 0, conforming: runs at CPL 3
    push dword 0x1111               ; the gate copies these two
    push dword 0x2222
    call 0x48:0                     ; the gate's selector; the offset is ignored
    mov eax, cs
    out REPORT_PORT, eax
    mov eax, esp
    out REPORT_PORT, eax            ; 0x5000: retf 8 dropped the parameters
    REPORT 0xd0e
    out 0x99, al

conforming:                         ; CPL stays 3: CS.RPL is 3
    mov eax, cs
    out REPORT_PORT, eax
    retf

gate_target:                        ; ring 0
    mov eax, cs
    out REPORT_PORT, eax
    mov eax, ss
    out REPORT_PORT, eax
    mov eax, esp
    out REPORT_PORT, eax
    mov eax, [esp + 8]              ; the parameter pushed last
    out REPORT_PORT, eax
    mov eax, [esp + 12]
    out REPORT_PORT, eax
    retf 8

exc_common:
    ; [esp] vector, +4 error, +8 eip, +12 cs, +16 eflags
    push eax
    mov eax, 0x10                   ; a return to ring 3 nulled DS (DPL 0)
    mov ds, eax
    mov eax, [esp + 4]
    out REPORT_PORT, eax
    mov eax, [esp + 8]
    out REPORT_PORT, eax
    mov eax, [esp + 12]
    cmp eax, [expect_eip]
    jne .reported
    mov eax, 1
.reported:
    out REPORT_PORT, eax
    mov eax, [esp + 16]
    out REPORT_PORT, eax
    mov eax, [esp + 20]
    and eax, 0x10200
    out REPORT_PORT, eax
    mov eax, [resume]
    mov [esp + 12], eax
    pop eax
    add esp, 8
    iret

%assign v 0
%rep 32
stub_ %+ v:
%if v == 8 || (v >= 10 && v <= 14) || v == 17
%else
    push 0
%endif
    push v
    jmp exc_common
%assign v v + 1
%endrep

stub_table:
%assign v 0
%rep 32
    dd stub_ %+ v
%assign v v + 1
%endrep

bounds:
    dd 10, 20

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff           ; 0x08 code32
    dq 0x00cf92000000ffff           ; 0x10 data
    dq 0
    dq 0x00cffa000000ffff           ; 0x20 user code32
    dq 0x00cff2000000ffff           ; 0x28 user data
    dw 0x67, tss, 0x8900, 0         ; 0x30 TSS
    dq 0x00cf12000000ffff           ; 0x38 data, not present
    dq 0x0040920000000fff           ; 0x40 data, byte-granular limit 0xfff
    dw gate_target, 0x08, 0xec02, 0 ; 0x48 32-bit call gate, DPL 3, 2 parameters
    dq 0x00cf9e000000ffff           ; 0x50 code32, conforming, DPL 0
gdt_end:

gdtr:
    dw gdt_end - gdt - 1
    dd gdt
idtr:
    dw 32 * 8 - 1
    dd idt

align 8
tss:
    times 0x68 db 0
