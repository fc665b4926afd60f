; Port I/O of 1, 2 and 4 bytes in 16-bit real mode on ports 0x10-0x17:
; claimed by test callbacks (test_pio) or unclaimed, as VX_EXIT_IO exits
; (test_io_exit). pio16/32/64.asm are one program in three modes; the
; accesses, in order, are pio_script in check_guests.c. Reads merge into
; al/ax or fill eax; at the hlt rbx = 0xffffffa1, rcx = 0xffffb2c2,
; rax = 0xd4e4f404.
bits 16
org 0x1000

start:
    mov al, 0x11
    out 0x10, al                ; port 0x10, 1 byte, 0x11
    mov dx, 0x12
    mov ax, 0x2233
    out dx, ax                  ; port 0x12, 2 bytes, 0x2233
    mov dx, 0x14
    mov eax, 0x44556677
    out dx, eax                 ; port 0x14, 4 bytes, 0x44556677
    mov al, 0x77
    out 0x17, al                ; the last port of the range
    mov eax, -1
    in al, 0x11                 ; the callback gives 0xa1; bits 31:8 stay
    mov ebx, eax
    mov eax, -1
    mov dx, 0x12
    in ax, dx                   ; 0xb2c2; bits 31:16 stay
    mov ecx, eax
    mov eax, -1
    mov dx, 0x14
    in eax, dx                  ; 0xd4e4f404
    hlt
