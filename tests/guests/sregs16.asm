; Segment registers in real mode (test_sregs_real): the test set ds to
; 0x2000 (base 0x20000) and es to 0x3000 (base 0x30000) with
; vx_vcpu_set_sregs(). The guest reads a word through each, then loads fs
; itself, which vx_vcpu_get_sregs() must show as selector 0x4000, base
; 0x40000.
bits 16
org 0x1000

start:
    mov ax, [0]
    mov bx, [es:0]
    mov cx, 0x4000
    mov fs, cx
    mov dx, [fs:0]
    hlt
