; Real mode, unreal mode and 16-bit protected mode (check_system:
; test_mode16). Starts in real mode (vx_vcpu_set_mode REAL) at 0000:1000.
; 1. A real-mode access past a segment's 64 KiB limit raises #GP (vector
;    13 through the IVT, no error code): reported 0x0d by the handler,
;    which skips the 4-byte instruction.
; 2. Unreal mode: FS gets a 4 GiB data descriptor in protected mode, the
;    program returns to real mode, and the same access now works: it
;    reads back 0x5a5a1234 written through it.
; 3. 16-bit protected mode: a far jmp to a code segment with D=0, where
;    push/pop move sp by 2 and the default operand is 16 bits: reports
;    0x1616 and the sp difference (2), then returns to 32-bit code.
; Ends with 0xd0e and hlt.
bits 16
org 0x1000

REPORT_PORT equ 0x10

%macro REPORT 1
    mov eax, %1
    out REPORT_PORT, eax
%endmacro

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [13 * 4], gp_handler
    mov word [13 * 4 + 2], 0

    mov ebx, 0x20000
    mov eax, [fs:ebx]                   ; 64 KiB limit: #GP
    REPORT 0x11

    ; Unreal mode.
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp .pm
.pm:
    mov ax, 0x10
    mov fs, ax
    mov eax, cr0
    and al, 0xfe
    mov cr0, eax
    jmp 0:.real
.real:
    xor ax, ax
    mov fs, ax                          ; a real-mode load keeps the 4 GiB limit
    mov dword [fs:ebx], 0x5a5a1234
    mov eax, [fs:ebx]
    out REPORT_PORT, eax                ; 0x5a5a1234

    ; 16-bit protected mode.
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x18:pm16

gp_handler:
    push bp
    mov bp, sp
    add word [bp + 2], 5                ; past `mov eax, [fs:ebx]` (64 67 66 8b 03)
    pop bp
    REPORT 0x0d
    iret

pm16:                                   ; CS: 16-bit code segment, base 0
    mov ax, 0x20
    mov ss, ax
    mov sp, 0x6000
    mov bx, sp
    push ax
    sub bx, sp
    pop ax
    REPORT 0x1616
    movzx eax, bx
    out REPORT_PORT, eax                ; 2
    jmp dword 0x08:pm32
bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x7000
    REPORT 0xd0e
    hlt

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 0x08 code32
    dq 0x00cf92000000ffff               ; 0x10 data, 4 GiB
    dq 0x00009a000000ffff               ; 0x18 code16, 64 KiB
    dq 0x000092000000ffff               ; 0x20 data16, 64 KiB
gdt_end:
gdtr:
    dw gdt_end - gdt - 1
    dd gdt
