; Ring 3 in long mode (test_user_mode): iretq to the flat ring-3 code and
; data selectors of vx_vcpu_set_mode()'s GDT, compute there, then leave by
; MMIO to unclaimed gpa 0xb0000 (ring 3 cannot hlt): write the qword
; 0x1122334455667788 to 0xb0000, read a dword from 0xb0008, add the loop
; sum (5050) and write it to 0xb0010. The test never resumes the last exit.
; Under a software KVM such as kvm_pvm this code runs on the CPU, not in
; the instruction emulator.
bits 64
org 0x1000

SEL_USER_DATA   equ 0x28
SEL_USER_CODE64 equ 0x30

start:
    push SEL_USER_DATA | 3      ; ss
    push 0xe000                 ; rsp
    push 0x2                    ; rflags: interrupts stay off
    push SEL_USER_CODE64 | 3    ; cs
    push user
    iretq

user:
    xor eax, eax
    mov ecx, 100
.sum:
    add eax, ecx
    dec ecx
    jnz .sum                    ; eax = 5050
    mov rbx, 0x1122334455667788
    mov [0xb0000], rbx
    mov edx, [0xb0008]
    add edx, eax
    mov [0xb0010], edx
    jmp $
