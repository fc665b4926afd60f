; A callback stops its own vCPU on the last instruction of a full block
; (check_exec: test_stop_chained). The loop body is exactly 64
; instructions, tcg's block limit, so the out ends its block and the jmp's
; block follows through the chain: the stop must still come right after
; the out. Expects: every 1000th out stops the run, with rax = outs done.
bits 64
org 0x1000
again:
    times 62 nop
    inc eax
    out 0x10, al
    jmp again
