; MMIO in 32-bit protected mode on 0xa0000-0xa00ff: claimed by test callbacks
; (test_mmio) or unclaimed, as VX_EXIT_MMIO exits (test_mmio_exit).
; mmio16/32/64.asm are one program in three modes; only mmio64 has the
; 8-byte accesses. The accesses, in order, are mmio_script in check_guests.c:
; writes of 1/2/4 bytes, reads that merge into al/ax or fill a
; register, and a read-modify-write (or) that reads 0x100 and writes 0x180.
; At the hlt rbx = 0xffffff5a, rcx = 0xffff5aa5, rdx = 0xdeadbeef.
bits 32
org 0x1000

start:
    mov byte [0xa0001], 0x11
    mov word [0xa0002], 0x2233
    mov dword [0xa0004], 0x44556677
    mov eax, -1
    mov al, [0xa0010]           ; 0x5a; bits 31:8 stay
    mov ebx, eax
    mov eax, -1
    mov ax, [0xa0012]           ; 0x5aa5; bits 31:16 stay
    mov ecx, eax
    mov edx, [0xa0014]          ; 0xdeadbeef
    or dword [0xa0020], 0x80    ; reads 0x100, writes 0x180
    hlt
