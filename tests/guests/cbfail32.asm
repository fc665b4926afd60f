; A callback that fails (test_callback_error). ebx picks the access, made
; to a port or MMIO range whose callback returns an error: 0 writes port
; 0x10, 1 reads it, 2 writes gpa 0xa0000, 3 reads it. The hlt after each
; must not be reached as a VX_EXIT_HLT.
bits 32
org 0x1000

start:
    cmp ebx, 1
    je pio_read
    cmp ebx, 2
    je mmio_write
    cmp ebx, 3
    je mmio_read
    out 0x10, al
    hlt
pio_read:
    in al, 0x10
    hlt
mmio_write:
    mov [0xa0000], eax
    hlt
mmio_read:
    mov eax, [0xa0000]
    hlt
