; MMIO in 64-bit long mode on 0xa0000-0xa00ff: claimed by test callbacks
; (test_mmio) or unclaimed, as VX_EXIT_MMIO exits (test_mmio_exit).
; mmio16/32/64.asm are one program in three modes; only mmio64 has the
; 8-byte accesses. The accesses, in order, are mmio_script in check_guests.c:
; writes of 1/2/4/8 bytes, reads that merge into al/ax or fill a
; register, and a read-modify-write (or) that reads 0x100 and writes 0x180.
; At the hlt rbx = 0xffffff5a, rcx = 0xffff5aa5, rdx = 0xdeadbeef,
; rsi = 0x0123456789abcdef.
bits 64
org 0x1000

start:
    mov byte [0xa0001], 0x11
    mov word [0xa0002], 0x2233
    mov dword [0xa0004], 0x44556677
    mov rax, 0x8899aabbccddeeff
    mov [0xa0008], rax
    mov eax, -1
    mov al, [0xa0010]           ; 0x5a; bits 31:8 stay
    mov ebx, eax
    mov eax, -1
    mov ax, [0xa0012]           ; 0x5aa5; bits 31:16 stay
    mov ecx, eax
    mov rdx, -1                 ; a 32-bit load must clear bits 63:32
    mov edx, [0xa0014]          ; 0xdeadbeef
    mov rsi, [0xa0018]          ; 0x0123456789abcdef
    or dword [0xa0020], 0x80    ; reads 0x100, writes 0x180
    hlt
