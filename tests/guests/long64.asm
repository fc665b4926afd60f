; 64-bit long mode: 64-bit immediates and arithmetic, r8-r15, zero
; extension of 32-bit writes, rip-relative addressing, the stack, and a far
; return that reloads CS from the GDT that vx_vcpu_set_mode() wrote.
; Loaded at 0x1000, RSP=0xf000. check_guests.c (test_long64) holds the
; expected registers at the hlt.
bits 64
org 0x1000

SEL_CODE64 equ 0x08
SEL_DATA   equ 0x10

start:
    mov ax, SEL_DATA
    mov ds, ax
    mov ss, ax
    push SEL_CODE64
    lea rax, [rel reloaded]
    push rax
    o64 retf
reloaded:
    mov rax, 0x123456789abcdef0
    mov rbx, rax
    shr rbx, 32                 ; rbx = 0x12345678
    mov r8, 0x1111111111111111
    add r8, r8                  ; r8 = 0x2222222222222222
    mov r9, -1
    mov r9d, 5                  ; a 32-bit write clears bits 63:32: r9 = 5
    mov r10, 0x100000000
    imul r10, r10, 3            ; r10 = 0x300000000
    lea r11, [rel data]         ; r11 = 0x1100
    mov r12, [rel data]         ; r12 = 0xfeedfacecafebeef
    mov r13, 0x0102030405060708
    mov rcx, 0x20000
    mov [rcx], r13
    mov r14, [rcx]
    bswap r14                   ; r14 = 0x0807060504030201
    push r13
    pop r15                     ; r15 = r13
    mov rax, 0x8000000000000001
    mov rcx, 4
    mul rcx                     ; rdx:rax = 2:4
    hlt

; at a fixed address so the test knows what lea rel gives
times 0x100 - ($ - $$) db 0
data:                           ; 0x1100
    dq 0xfeedfacecafebeef
