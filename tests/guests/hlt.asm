; hlt, then resume after it. Only nop and hlt, whose encodings mean the same
; in real, protected and long mode, so one image serves all three
; (test_hlt): the first hlt is at 0x1010 (exit rip 0x1011), the second at
; 0x1020 (exit rip 0x1021).
org 0x1000

    times 0x10 nop
    hlt
    times 0x20 - ($ - $$) nop
    hlt
