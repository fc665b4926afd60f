; 16-bit real mode: 32-bit operands through the operand-size prefix, 16-bit
; writes that keep the upper register bits, a loop counting in cx, the stack
; and memory. Loaded at 0x1000, CS=DS=SS=0, SP=0xf000; the test sets
; rbx = 0x12340000 and the other general registers to 0.
; check_guests.c (test_real16) holds the expected registers at the hlt.
bits 16
org 0x1000

start:
    mov eax, 0x12345678
    mov ecx, 0x100
    mul ecx                     ; edx:eax = 0x12:0x34567800
    mov [0x8004], eax
    mov bp, [0x8006]            ; bp = 0x3456, the high word just stored
    mov si, dx                  ; si = 0x12
    mov ax, 0x1234
    add ax, 0x1111              ; eax = 0x34562345: bits 31:16 stay
    mov bx, 0xffff
    inc bx                      ; rbx = 0x12340000: no carry into bit 16
    xor dx, dx
    mov cx, 10
.sum:
    add dx, cx
    loop .sum                   ; loop counts in cx: edx = 55, ecx = 0
    push word 0x5678
    call read_arg               ; di = 0x5678
    pop word [0x8000]           ; sp back at 0xf000, [0x8000] = 0x5678
    hlt

; di = the word pushed before the call
read_arg:
    mov di, sp
    mov di, [di + 2]
    ret
