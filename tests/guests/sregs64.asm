; fs and gs bases set with vx_vcpu_set_sregs() apply in long mode
; (test_sregs_long): reads a qword through each.
bits 64
org 0x1000

start:
    mov rax, [fs:0]
    mov rbx, [gs:8]
    hlt
