; An endless loop for vx_vcpu_stop() (test_stop_*, test_busy): counts in the dword at
; 0x8000 until the host sets the dword at 0x8004, then halts. The count
; shows the guest ran; the flag lets the test resume it to a clean hlt.
bits 32
org 0x1000

start:
    inc dword [0x8000]
    cmp dword [0x8004], 0
    je start
    hlt
