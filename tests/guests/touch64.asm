; One memory access whose address and kind the test chooses
; (check_exec: test_page_protection): rbx = address, rcx = 0 to read,
; 1 to write. Then an out to port 0x10 reports that the access passed.
bits 64
org 0x1000
    test ecx, ecx
    jnz .write
    mov eax, [rbx]
    jmp .done
.write:
    mov dword [rbx], 0x5a5a5a5a
.done:
    out 0x10, al
    jmp $
