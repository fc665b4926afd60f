; String port I/O in 32-bit protected mode on port 0x10: rep outsb/outsw/
; outsd, a zero count, a backwards rep outsb (DF=1), rep insb/insw/insd
; into memory, and a 5000-byte rep insb that crosses pages. Every element is
; one callback (test_string_io) or, with the port unclaimed, one
; VX_EXIT_IO (test_string_io_exit); check_guests.c checks their order and
; where the data landed.
bits 32
org 0x1000

start:
    cld
    mov dx, 0x10
    mov esi, bytes_out
    mov ecx, 5
    rep outsb                   ; 'H' 'e' 'l' 'l' 'o'
    mov esi, words_out
    mov ecx, 3
    rep outsw                   ; 0x1111 0x2222 0x3333
    mov ecx, 2
    rep outsd                   ; 0x44444444 0x55555555, right after the words
    xor ecx, ecx
    rep outsb                   ; a count of 0 moves nothing
    std
    mov esi, bytes_out + 2
    mov ecx, 3
    rep outsb                   ; backwards: 'l' 'e' 'H'
    cld
    mov edi, 0x8000
    mov ecx, 4
    rep insb                    ; 0x8000..0x8003
    mov ecx, 3
    rep insw                    ; 0x8004..0x8009
    mov ecx, 2
    rep insd                    ; 0x800a..0x8011
    mov edi, 0x20ff0
    mov ecx, 5000
    rep insb                    ; 0x20ff0..0x22377
    hlt

; at a fixed address so the test knows where esi ends
times 0x100 - ($ - $$) db 0
bytes_out:                      ; 0x1100
    db "Hello"
words_out:                      ; 0x1105
    dw 0x1111, 0x2222, 0x3333
    dd 0x44444444, 0x55555555
