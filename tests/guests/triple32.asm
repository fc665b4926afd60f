; A triple fault in 32-bit protected mode (test_triple_fault): with an empty IDT
; (limit 0) the #UD from ud2 cannot be delivered, nor the #GP that follows,
; nor the #DF; the CPU shuts down. ud2 rather than int3 because kvm_pvm's
; instruction emulator, which runs ring-0 code there, cannot do int3.
bits 32
org 0x1000

start:
    lidt [empty_idt]
    ud2
    hlt                         ; never reached

empty_idt:
    dw 0
    dd 0
