; A 64 KiB BIOS image for QEMU that does what vx_boot_linux's caller does:
; from the reset vector, straight to the 64-bit entry state pc-image left
; at BOOT_BLOCK (rip, rsi, rsp, cr3), through vx_boot_linux's own page
; tables. QEMU maps the image at 0xffff0000 and its copy at 0xf0000.
; Nothing else: no tables of its own, so the kernel sees only the pc
; board's ACPI tables.
BOOT_BLOCK equ 0x6000
ALIAS equ 0xf0000
; the board's lines of PIRQ A-D are 10, 11, 5, 9 (lib/devices/pc.c)
PIRQ_ROUTES equ 11 | 5 << 8 | 9 << 16 | 10 << 24

bits 16
org 0
start:
    cli
    xor ax, ax
    mov ds, ax
    ; PIIX3 (00:01.0) PIRQ routing, registers 0x60-0x63: QEMU swizzles
    ; slot s pin p to PIRQ (s + p - 1) % 4 where the pc board's PCI host
    ; uses (s + p) % 4, so PIRQ n goes to the board's line n + 1: then
    ; INTx of every slot arrives at the GSI the board's _PRT names.
    mov eax, 0x80000860
    mov dx, 0xcf8
    out dx, eax
    mov eax, PIRQ_ROUTES
    mov dx, 0xcfc
    out dx, eax
    ; PIIX4 power management (00:01.3) at the board's PM1/PM-timer ports
    ; 0x600-0x60b, which QEMU lays out as the board does (the FADT's).
    mov eax, 0x80000b40             ; PMBA
    mov dx, 0xcf8
    out dx, eax
    mov eax, 0x601
    mov dx, 0xcfc
    out dx, eax
    mov eax, 0x80000b80             ; PMREGMISC: I/O space on
    mov dx, 0xcf8
    out dx, eax
    mov al, 1
    mov dx, 0xcfc
    out dx, al
    o32 lgdt [cs:gdtr]
    mov eax, [BOOT_BLOCK + 24]
    mov cr3, eax
    mov eax, cr4
    or eax, 1 << 5                  ; PAE
    mov cr4, eax
    mov ecx, 0xc0000080             ; EFER
    rdmsr
    or eax, 1 << 8                  ; LME
    wrmsr
    mov eax, cr0
    or eax, 0x80000001              ; PG | PE
    mov cr0, eax
    jmp dword 0x10:(ALIAS + long_entry)

bits 64
long_entry:
    mov ax, 0x18
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov rsi, [BOOT_BLOCK + 8]
    mov rsp, [BOOT_BLOCK + 16]
    mov rax, [BOOT_BLOCK]
    jmp rax

align 8
gdt:
    dq 0
    dq 0
    dq 0x00af9a000000ffff           ; 0x10: 64-bit code
    dq 0x00cf92000000ffff           ; 0x18: data
gdtr:
    dw gdtr - gdt - 1
    dd ALIAS + gdt

times 0xfff0 - ($ - $$) db 0
bits 16
reset:
    jmp 0xf000:start
times 0x10000 - ($ - $$) db 0
