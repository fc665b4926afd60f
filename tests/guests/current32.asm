; One port write and one MMIO write: writes al to port 0x10, then to gpa
; 0xa0000, both claimed by callbacks, then halts. test_current checks
; vx_vcpu_current() in them (a different al in each vCPU);
; test_stop_from_callback stops the vCPU from the first.
bits 32
org 0x1000

start:
    out 0x10, al
    mov [0xa0000], al
    hlt
