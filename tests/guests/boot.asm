; From the reset vector to long mode, as a bootloader does (check_system:
; test_boot). The test maps a page at 0xfffff000 whose last 16 bytes jump
; to 0000:1000. Reports (32-bit outs to 0x10):
;   real mode: 0x16, int 0x21 through the IVT (0x21), #DE through IVT
;   entry 0 (0xde, then 0xd0 once resumed past the div);
;   protected mode: CR0; ring 3 (CS 0x23); int 0x30 through a DPL-3 gate
;   onto the TSS's ring-0 stack (SS 0x10, ESP, the user ESP and SS from the
;   frame); back in ring 3 (0x3333); hlt there: #GP (0x0d, error 0);
;   long mode: EFER (LME and LMA), 0x64, the rip-relative address of lm64.
; Ends with hlt in ring 0.
bits 16
org 0x1000

REPORT_PORT equ 0x10
PML4 equ 0x70000

%macro REPORT 1
    mov eax, %1
    out REPORT_PORT, eax
%endmacro

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [0x21 * 4], rm_int21
    mov word [0x21 * 4 + 2], 0
    mov word [0], rm_de
    mov word [2], 0
    REPORT 0x16
    int 0x21
    xor dx, dx
    xor cx, cx
    mov ax, 5
    div cx                      ; #DE: the handler skips these two bytes
    REPORT 0xd0

    lgdt [gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:pm32

rm_int21:
    REPORT 0x21
    iret

rm_de:
    push bp
    mov bp, sp
    add word [bp + 2], 2        ; past `div cx`
    pop bp
    REPORT 0xde
    iret

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, 0x7000
    mov eax, cr0
    out REPORT_PORT, eax

    ; IDT: #GP and 0x30 (DPL 3), 32-bit interrupt gates.
    mov eax, gp_handler
    mov ebx, 13
    mov ecx, 0x8e00
    call set_gate
    mov eax, sys_handler
    mov ebx, 0x30
    mov ecx, 0xee00
    call set_gate
    lidt [idtr]

    mov dword [tss + 4], 0x6800 ; esp0
    mov dword [tss + 8], 0x10   ; ss0
    mov ax, 0x30
    ltr ax

    push 0x28 | 3               ; ss
    push 0x5000                 ; esp
    push 0x3002                 ; eflags: IOPL 3
    push 0x20 | 3               ; cs
    push ring3
    iret

ring3:
    mov eax, cs
    out REPORT_PORT, eax
    int 0x30
    REPORT 0x3333
    hlt                         ; #GP(0): ring 3

sys_handler:
    mov eax, ss
    out REPORT_PORT, eax
    mov eax, esp
    out REPORT_PORT, eax
    mov eax, [esp + 12]         ; the user's esp
    out REPORT_PORT, eax
    mov eax, [esp + 16]         ; the user's ss
    out REPORT_PORT, eax
    iret

gp_handler:
    REPORT 0x0d
    mov eax, [esp]              ; error code
    out REPORT_PORT, eax
    mov esp, 0x7000             ; leave the frame behind: on to long mode
    mov ax, 0x10                ; the return to ring 3 nulled DS and ES (DPL 0)
    mov ds, ax
    mov es, ax

    ; Identity-map 4 MiB with two 2 MiB pages.
    mov edi, PML4
    mov ecx, 3 * 1024
    xor eax, eax
    cld
    rep stosd
    mov dword [PML4], PML4 + 0x1003
    mov dword [PML4 + 0x1000], PML4 + 0x2003
    mov dword [PML4 + 0x2000], 0x83
    mov dword [PML4 + 0x2008], 0x200083
    mov eax, cr4
    or eax, 0x20                ; PAE
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x100               ; LME
    wrmsr
    mov eax, cr0
    or eax, 0x80000000          ; PG: long mode is active
    mov cr0, eax
    mov ecx, 0xc0000080
    rdmsr
    out REPORT_PORT, eax
    jmp 0x18:lm64

; ebx = vector, eax = handler, ecx = type/DPL word
set_gate:
    mov [idt + ebx * 8], ax
    mov word [idt + ebx * 8 + 2], 0x08
    mov [idt + ebx * 8 + 4], cx
    shr eax, 16
    mov [idt + ebx * 8 + 6], ax
    ret

bits 64
lm64:
    REPORT 0x64
    lea rax, [rel lm64]
    out REPORT_PORT, eax
    hlt

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08 code32
    dq 0x00cf92000000ffff       ; 0x10 data
    dq 0x00af9a000000ffff       ; 0x18 code64
    dq 0x00cffa000000ffff       ; 0x20 user code32
    dq 0x00cff2000000ffff       ; 0x28 user data
    dw 0x67, tss, 0x8900, 0     ; 0x30 32-bit TSS
gdt_end:

gdtr:
    dw gdt_end - gdt - 1
    dd gdt

idtr:
    dw 0x30 * 8 + 7
    dd idt

align 8
tss:
    times 0x68 db 0
idt:
    times 0x31 * 8 db 0
