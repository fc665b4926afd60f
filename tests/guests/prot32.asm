; 32-bit flat protected mode: reloads every segment register from the GDT
; that vx_vcpu_set_mode() wrote, then arithmetic, flat addressing above
; 64 KiB, a loop and the stack. Loaded at 0x1000, ESP=0xf000.
; check_guests.c (test_prot32) holds the expected registers at the hlt.
bits 32
org 0x1000

SEL_DATA   equ 0x10
SEL_CODE32 equ 0x18

start:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    jmp SEL_CODE32:reloaded     ; proves the code descriptor is usable
reloaded:
    mov eax, 0x12345678
    mov ecx, 0x10
    mul ecx                     ; edx:eax = 0x1:0x23456780
    mov ebx, eax
    mov esi, edx                ; esi = 1
    mov dword [0x20000], 0xdeadbeef
    mov edi, [0x20000]          ; beyond what 16-bit offsets reach
    xor edx, edx
    mov ecx, 100
.sum:
    add edx, ecx
    loop .sum                   ; edx = 5050, ecx = 0
    push dword 0x55aa55aa
    call read_arg
    pop ebp                     ; ebp = 0x55aa55aa, esp back at 0xf000
    hlt

read_arg:
    mov eax, [esp + 4]          ; eax = 0x55aa55aa
    ret
