; A flat binary for vx-run --flat (tests/vx-run-flat.sh): written so that
; its bytes mean the same in real mode, 32-bit and 64-bit mode (only
; 8-bit immediate moves and `out dx, al`), it
; prints "FLAT-OK\n" on COM1 and leaves through the debug-exit port with
; status 5 (vx-run exits with 11). Loaded anywhere; position-independent.
; The only registers used are al and dx: `mov dx, imm16` would decode
; differently per mode, so dx is set a byte at a time.
    mov dl, 0xfb            ; dx = 0x3fb, COM1's line control: 8 data bits
    mov dh, 0x03            ; (after reset a 16550 sends 5)
    mov al, 3
    out dx, al
    mov dl, 0xf8            ; dx = 0x3f8, the data port
%macro PUT 1
    mov al, %1
    out dx, al
%endmacro
    PUT 'F'
    PUT 'L'
    PUT 'A'
    PUT 'T'
    PUT '-'
    PUT 'O'
    PUT 'K'
    PUT 10
    mov dl, 0x01            ; dx = 0x501, debug-exit
    mov dh, 0x05
    mov al, 5
    out dx, al
    cli
    hlt
