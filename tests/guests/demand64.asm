; Demand paging in long mode (check_system: test_demand_paging): the first
; 2 MiB are remapped with 4 KiB pages, of which 0x40000-0x47fff start not
; present. A #PF handler maps the faulting page (identity) and returns to
; retry the access. The program writes i * 3 into each of the 8 pages,
; then sums them back. Reports: per fault the error code and CR2; then the
; number of faults (8) and the sum (84); 0xd0e; hlt.
bits 64
org 0x1000

data_base equ 0x8000
PD0       equ 0x12000
PT        equ 0x30000
faults    equ data_base + 0x40

    jmp start
%include "idt64.inc"

start:
    call idt64_install
    ; gate 14 -> pf_handler
    mov rax, pf_handler
    mov [idt + 14 * 16], ax
    shr rax, 16
    mov [idt + 14 * 16 + 6], ax

    ; PT: identity, present and writable, but pages 0x40..0x47.
    xor ecx, ecx
.fill:
    mov rax, rcx
    shl rax, 12
    or rax, 3
    cmp ecx, 0x40
    jb .keep
    cmp ecx, 0x48
    jae .keep
    xor eax, eax                ; not present
.keep:
    mov [PT + rcx * 8], rax
    inc ecx
    cmp ecx, 512
    jb .fill
    mov qword [PD0], PT | 3
    mov rax, cr3
    mov cr3, rax                ; flush

    mov dword [faults], 0
    xor ecx, ecx
.write:
    mov rdi, rcx
    shl rdi, 12
    lea eax, [rcx * 2 + rcx]
    mov [rdi + 0x40000 + 8], eax   ; faults: write to a missing page
    inc ecx
    cmp ecx, 8
    jb .write
    xor eax, eax
    xor ecx, ecx
.read:
    mov rdi, rcx
    shl rdi, 12
    add eax, [rdi + 0x40000 + 8]   ; present now: no fault
    inc ecx
    cmp ecx, 8
    jb .read
    mov ebx, eax
    mov eax, [faults]
    out REPORT_PORT, eax
    mov eax, ebx
    out REPORT_PORT, eax
    REPORT 0xd0e
    hlt

pf_handler:
    push rax
    push rbx
    mov eax, [rsp + 16]         ; error code
    out REPORT_PORT, eax
    mov rax, cr2
    out REPORT_PORT, eax
    mov rbx, rax
    shr rbx, 12
    and rax, ~0xfff
    or rax, 3
    mov [PT + rbx * 8], rax     ; map it (not present before: no flush needed)
    inc dword [faults]
    pop rbx
    pop rax
    add rsp, 8                  ; the error code
    iretq
