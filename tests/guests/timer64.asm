; The timer interrupt (check_system: test_timer): the PIC pair of
; VX_MACHINE_IRQCHIP is reprogrammed as an OS does (vectors 0x20/0x28, only
; IRQ 0 unmasked), the PIT's channel 0 set to a 1 kHz rate generator, and
; the program first spins with interrupts on until three ticks came (no hlt:
; the timer must fire for a vCPU that never sleeps, even when the PIT had no
; count when the vCPU last looked at it), then waits in `sti; hlt` for five
; ticks. The handler counts ticks, checks that each interrupted the
; instruction after the hlt, and sends EOI. Reports: 3 after the spin, the
; ticks (5), how many saved rips were right (5), the
; master's ISR afterwards (0), 0xd0e; then it ends with an out to the
; unclaimed port 0x99 (a hlt with interrupts off would sleep in KVM's
; in-kernel irqchip).
bits 64
org 0x1000

data_base equ 0x8000
ticks     equ data_base + 0x40
rip_ok    equ data_base + 0x44

    jmp start
%include "idt64.inc"

start:
    call idt64_install
    SET_GATE 0x20, timer_handler
    mov dword [ticks], 0
    mov dword [rip_ok], 0

    ; ICW1-4 for both chips, then the masks.
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xa1, al
    mov al, 1
    out 0x21, al
    out 0xa1, al
    mov al, 0xfe
    out 0x21, al
    mov al, 0xff
    out 0xa1, al

    ; PIT channel 0: lsb/msb, mode 2, 1193 counts (1 kHz).
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al

    sti
.spin:
    cmp dword [ticks], 3
    jb .spin
    cli
    mov eax, 3
    out REPORT_PORT, eax
    mov dword [ticks], 0
    mov dword [rip_ok], 0

.wait:
    sti
    hlt
.after_hlt:
    cli
    cmp dword [ticks], 5
    jb .wait

    mov eax, [ticks]
    out REPORT_PORT, eax
    mov eax, [rip_ok]
    out REPORT_PORT, eax
    mov al, 0x0b                ; OCW3: read ISR
    out 0x20, al
    in al, 0x20
    movzx eax, al
    out REPORT_PORT, eax
    REPORT 0xd0e
    out 0x99, al

timer_handler:
    push rax
    inc dword [ticks]
    mov rax, [rsp + 8]          ; the interrupted rip
    cmp rax, .after_hlt_addr
    jne .not
    inc dword [rip_ok]
.not:
    mov al, 0x20                ; EOI
    out 0x20, al
    pop rax
    iretq
.after_hlt_addr equ start.after_hlt
