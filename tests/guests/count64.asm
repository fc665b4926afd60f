; Counted execution (check_exec: budgets and instruction counts).
; 1000 iterations of a three-instruction loop, a rep movsb of 100 bytes (one
; instruction however many bytes it moves), then hlt.
; Retired instructions to the hlt inclusive: 2 + 3 * 1000 + 4 + 1 = 3007.
bits 64
org 0x1000
    mov ecx, 1000               ; 1
    xor eax, eax                ; 2
spin:
    inc rax                     ; 3 per iteration
    dec ecx
    jnz spin
    mov ecx, 100                ; 4 instructions for the copy
    mov esi, 0x20000
    mov edi, 0x21000
    rep movsb
    hlt                         ; 1
