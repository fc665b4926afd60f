; Self-modifying code (check_exec: test_smc). The loop patches the
; immediate of an instruction it has already executed, three times; then a
; store changes the very next instruction of the same block.
; Expects: rbx = 1 + 2 + 3 = 6 (stale code would give 3), rdx = 42, hlt.
bits 64
org 0x1000
    mov ecx, 3
    xor ebx, ebx
again:
patch:
    mov eax, 1                  ; b8 imm32: the imm32 is incremented below
    add ebx, eax
    inc byte [rel patch + 1]
    dec ecx
    jnz again
    mov byte [rel next + 1], 42 ; rewrite the immediate of the next instruction
next:
    mov edx, 0                  ; ba imm32
    hlt
