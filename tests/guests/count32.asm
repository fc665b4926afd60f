; Many port accesses in a row, for concurrency tests (test_two_machines,
; test_current_smp). On entry ebx = the first value and ecx = the number of
; rounds (> 0). Each round writes ebx to port 0x10 (4 bytes), reads port 0x14
; (4 bytes) and adds what it read to esi, then increments ebx. At the hlt
; esi = the sum of all reads, ebx = first + rounds, ecx = 0.
bits 32
org 0x1000

start:
    xor esi, esi
.round:
    mov eax, ebx
    out 0x10, eax
    in eax, 0x14
    add esi, eax
    inc ebx
    dec ecx
    jnz .round
    hlt
