; Far-pointer loads, bound and arpl in 32-bit protected mode (check_exec:
; test_farptr). Expects: eax = 0x12340013 (lds, then arpl raised the RPL of
; ax from 0 to 3), ebx = edx = esi = 0x12345678 (les, lgs, lss), ecx =
; 0x12345601 (lfs, then setz cl after arpl set ZF), edi = 15 (bound passed),
; ds = es = fs = gs = ss = 0x10, hlt.
bits 32
org 0x1000
    mov dword [0x8000], 0x12345678
    mov word [0x8004], 0x10
    lds eax, [0x8000]
    les ebx, [0x8000]
    lfs ecx, [0x8000]
    lgs edx, [0x8000]
    lss esi, [0x8000]
    mov dword [0x8010], 10
    mov dword [0x8014], 20
    mov edi, 15
    bound edi, [0x8010]
    mov ax, 0x10
    mov bp, 0x13
    arpl ax, bp
    setz cl
    hlt
