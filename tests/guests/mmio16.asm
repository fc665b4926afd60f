; MMIO in 16-bit real mode on 0xa0000-0xa00ff: claimed by test callbacks
; (test_mmio) or unclaimed, as VX_EXIT_MMIO exits (test_mmio_exit).
; mmio16/32/64.asm are one program in three modes; only mmio64 has the
; 8-byte accesses. The accesses, in order, are mmio_script in check_guests.c:
; writes of 1/2/4 bytes, reads that merge into al/ax or fill a
; register, and a read-modify-write (or) that reads 0x100 and writes 0x180.
; At the hlt rbx = 0xffffff5a, rcx = 0xffff5aa5, rdx = 0xdeadbeef.
bits 16
org 0x1000

start:
    mov ax, 0xa000
    mov es, ax                  ; the window is es:0000-es:00ff
    mov byte [es:0x01], 0x11
    mov word [es:0x02], 0x2233
    mov dword [es:0x04], 0x44556677
    mov eax, -1
    mov al, [es:0x10]           ; 0x5a; bits 31:8 stay
    mov ebx, eax
    mov eax, -1
    mov ax, [es:0x12]           ; 0x5aa5; bits 31:16 stay
    mov ecx, eax
    mov edx, [es:0x14]          ; 0xdeadbeef
    or dword [es:0x20], 0x80    ; reads 0x100, writes 0x180
    hlt
