; Guest writes to ROM are dropped: 0xc0000-0xc0fff is mapped without
; VX_MEM_WRITE and the host loaded it (test_rom): dwords 0x11223344 at +0,
; 0x55667788 at +4, four dwords 0x99aabbcc at +0x10, and at +0x100 the
; routine "mov edx, 0x600d; ret". The guest stores over all of it (mov and
; rep stosd), reads it back, calls the routine, and stores to RAM to show
; that writes in general work. At the hlt: eax = 0x11223344,
; ebx = 0x55667788, esi = 0x99aabbcc, edx = 0x600d, ecx = 0xdddddddd.
bits 32
org 0x1000

ROM equ 0xc0000

start:
    mov byte [ROM], 0xaa
    mov dword [ROM + 4], 0xbbbbbbbb
    cld
    mov edi, ROM + 0x10
    mov eax, 0xcccccccc
    mov ecx, 4
    rep stosd
    mov byte [ROM + 0x100], 0xc3 ; would turn the routine into a bare ret
    mov eax, [ROM]
    mov ebx, [ROM + 4]
    mov esi, [ROM + 0x1c]       ; the last dword rep stosd aimed at
    call ROM + 0x100            ; ROM is executable
    mov dword [0x20000], 0xdddddddd
    mov ecx, [0x20000]
    hlt
