; A failed callback does not complete the access (check_exec:
; test_callback_retry): the read and the write callbacks each fail once;
; running again retries them. Expects: ebx = the value read (0x42),
; a write of 0x1234 to port 0x11, edx = 0x55, hlt.
bits 32
org 0x1000
    in al, 0x10
    movzx ebx, al
    mov eax, 0x1234
    out 0x11, ax
    mov edx, 0x55
    hlt
