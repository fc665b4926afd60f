"""Guest programs for the tests, as bytes, with their assembly in comments.

Most are the foundation's programs (tests/guests/*.asm in the source tree,
assembled with nasm) so the Python tests check what the C tests check;
echo32 is the binding's own. ``asm()`` joins hex strings, one per source
line, so the bytes read next to their instructions.

Guest-physical layout, as tests/guest_util.h (the same for every program
and mode):

  0x00000 - 0x9ffff  RAM (640 KiB)
    0x01000          CODE_GPA: the program; rip starts here (real mode:
                     CS = 0, IP = 0x1000)
    0x08000          DATA_GPA: a page of data
    0x0f000          STACK_TOP: rsp at start
    0x10000          TABLES_GPA: set_mode() tables (0x9000 bytes)
    0x20000          BUF_GPA: free RAM up to 0x9ffff
  0xa0000 - 0xaffff  MMIO_GPA: not RAM; tests claim parts of it
  0xb0000 - 0xbffff  UNCLAIMED_GPA: never claimed: every access exits
  0xc0000 - 0xc0fff  ROM_GPA: read-only, mapped by the ROM test only

Ports: 0x10-0x17 (PORT).
"""

RAM_SIZE = 0xA0000
CODE_GPA = 0x1000
DATA_GPA = 0x8000
STACK_TOP = 0xF000
TABLES_GPA = 0x10000
BUF_GPA = 0x20000
MMIO_GPA = 0xA0000
UNCLAIMED_GPA = 0xB0000
ROM_GPA = 0xC0000
ROM_SIZE = 0x1000
PORT = 0x10


def asm(*hex_parts: str) -> bytes:
    """The bytes of a program written as hex strings, one per instruction."""
    return bytes.fromhex("".join(hex_parts))


# tests/guests/real16.asm:
# 16-bit real mode: 32-bit operands through the operand-size prefix, 16-bit
# writes that keep the upper register bits, a loop counting in cx, the stack
# and memory. Loaded at 0x1000, CS=DS=SS=0, SP=0xf000; the test sets
# rbx = 0x12340000 and the other general registers to 0.
# test_guests.py (test_real16) holds the expected registers at the hlt.
REAL16 = asm(
    # bits 16, loaded at 0x1000
    # start:
    "66b878563412",  # mov eax, 0x12345678
    "66b900010000",  # mov ecx, 0x100
    "66f7e1",  # mul ecx                     ; edx:eax = 0x12:0x34567800
    "66a30480",  # mov [0x8004], eax
    "8b2e0680",  # mov bp, [0x8006]            ; bp = 0x3456, the high word just stored
    "89d6",  # mov si, dx                  ; si = 0x12
    "b83412",  # mov ax, 0x1234
    "051111",  # add ax, 0x1111              ; eax = 0x34562345: bits 31:16 stay
    "bbffff",  # mov bx, 0xffff
    "43",  # inc bx                      ; rbx = 0x12340000: no carry into bit 16
    "31d2",  # xor dx, dx
    "b90a00",  # mov cx, 10
    # .sum:
    "01ca",  # add dx, cx
    "e2fc",  # loop .sum                   ; loop counts in cx: edx = 55, ecx = 0
    "687856",  # push word 0x5678
    "e80500",  # call read_arg               ; di = 0x5678
    "8f060080",  # pop word [0x8000]           ; sp back at 0xf000, [0x8000] = 0x5678
    "f4",  # hlt
    # ; di = the word pushed before the call
    # read_arg:
    "89e7",  # mov di, sp
    "8b7d02",  # mov di, [di + 2]
    "c3",  # ret
)


# tests/guests/prot32.asm:
# 32-bit flat protected mode: reloads every segment register from the GDT
# that vx_vcpu_set_mode() wrote, then arithmetic, flat addressing above
# 64 KiB, a loop and the stack. Loaded at 0x1000, ESP=0xf000.
# test_guests.py (test_prot32) holds the expected registers at the hlt.
PROT32 = asm(
    # bits 32, loaded at 0x1000
    # SEL_DATA   equ 0x10
    # SEL_CODE32 equ 0x18
    # start:
    "66b81000",  # mov ax, SEL_DATA
    "8ed8",  # mov ds, ax
    "8ec0",  # mov es, ax
    "8ee0",  # mov fs, ax
    "8ee8",  # mov gs, ax
    "8ed0",  # mov ss, ax
    "ea151000001800",  # jmp SEL_CODE32:reloaded     ; proves the code descriptor is usable
    # reloaded:
    "b878563412",  # mov eax, 0x12345678
    "b910000000",  # mov ecx, 0x10
    "f7e1",  # mul ecx                     ; edx:eax = 0x1:0x23456780
    "89c3",  # mov ebx, eax
    "89d6",  # mov esi, edx                ; esi = 1
    "c70500000200efbeadde",  # mov dword [0x20000], 0xdeadbeef
    "8b3d00000200",  # mov edi, [0x20000]          ; beyond what 16-bit offsets reach
    "31d2",  # xor edx, edx
    "b964000000",  # mov ecx, 100
    # .sum:
    "01ca",  # add edx, ecx
    "e2fc",  # loop .sum                   ; edx = 5050, ecx = 0
    "68aa55aa55",  # push dword 0x55aa55aa
    "e802000000",  # call read_arg
    "5d",  # pop ebp                     ; ebp = 0x55aa55aa, esp back at 0xf000
    "f4",  # hlt
    # read_arg:
    "8b442404",  # mov eax, [esp + 4]          ; eax = 0x55aa55aa
    "c3",  # ret
)


# tests/guests/long64.asm:
# 64-bit long mode: 64-bit immediates and arithmetic, r8-r15, zero
# extension of 32-bit writes, rip-relative addressing, the stack, and a far
# return that reloads CS from the GDT that vx_vcpu_set_mode() wrote.
# Loaded at 0x1000, RSP=0xf000. test_guests.py (test_long64) holds the
# expected registers at the hlt.
LONG64 = asm(
    # bits 64, loaded at 0x1000
    # SEL_CODE64 equ 0x08
    # SEL_DATA   equ 0x10
    # start:
    "66b81000",  # mov ax, SEL_DATA
    "8ed8",  # mov ds, ax
    "8ed0",  # mov ss, ax
    "6a08",  # push SEL_CODE64
    "488d0503000000",  # lea rax, [rel reloaded]
    "50",  # push rax
    "48cb",  # o64 retf
    # reloaded:
    "48b8f0debc9a78563412",  # mov rax, 0x123456789abcdef0
    "4889c3",  # mov rbx, rax
    "48c1eb20",  # shr rbx, 32                 ; rbx = 0x12345678
    "49b81111111111111111",  # mov r8, 0x1111111111111111
    "4d01c0",  # add r8, r8                  ; r8 = 0x2222222222222222
    "49c7c1ffffffff",  # mov r9, -1
    "41b905000000",  # mov r9d, 5                  ; a 32-bit write clears bits 63:32: r9 = 5
    "49ba0000000001000000",  # mov r10, 0x100000000
    "4d6bd203",  # imul r10, r10, 3            ; r10 = 0x300000000
    "4c8d1dac000000",  # lea r11, [rel data]         ; r11 = 0x1100
    "4c8b25a5000000",  # mov r12, [rel data]         ; r12 = 0xfeedfacecafebeef
    "49bd0807060504030201",  # mov r13, 0x0102030405060708
    "b900000200",  # mov rcx, 0x20000
    "4c8929",  # mov [rcx], r13
    "4c8b31",  # mov r14, [rcx]
    "490fce",  # bswap r14                   ; r14 = 0x0807060504030201
    "4155",  # push r13
    "415f",  # pop r15                     ; r15 = r13
    "48b80100000000000080",  # mov rax, 0x8000000000000001
    "b904000000",  # mov rcx, 4
    "48f7e1",  # mul rcx                     ; rdx:rax = 2:4
    "f4",  # hlt
    # ; at a fixed address so the test knows what lea rel gives
    "00" * 0x76,  # times 0x100 - ($ - $$) db 0
    # data:                           ; 0x1100
    "efbefecacefaedfe",  # dq 0xfeedfacecafebeef
)


# tests/guests/pio16.asm:
# Port I/O of 1, 2 and 4 bytes in 16-bit real mode on ports 0x10-0x17:
# claimed by test callbacks (test_pio) or unclaimed, as VX_EXIT_IO exits
# (test_io_exit). pio16/32/64.asm are one program in three modes; the
# accesses, in order, are pio_script in test_guests.py. Reads merge into
# al/ax or fill eax; at the hlt rbx = 0xffffffa1, rcx = 0xffffb2c2,
# rax = 0xd4e4f404.
PIO16 = asm(
    # bits 16, loaded at 0x1000
    # start:
    "b011",  # mov al, 0x11
    "e610",  # out 0x10, al                ; port 0x10, 1 byte, 0x11
    "ba1200",  # mov dx, 0x12
    "b83322",  # mov ax, 0x2233
    "ef",  # out dx, ax                  ; port 0x12, 2 bytes, 0x2233
    "ba1400",  # mov dx, 0x14
    "66b877665544",  # mov eax, 0x44556677
    "66ef",  # out dx, eax                 ; port 0x14, 4 bytes, 0x44556677
    "b077",  # mov al, 0x77
    "e617",  # out 0x17, al                ; the last port of the range
    "66b8ffffffff",  # mov eax, -1
    "e411",  # in al, 0x11                 ; the callback gives 0xa1; bits 31:8 stay
    "6689c3",  # mov ebx, eax
    "66b8ffffffff",  # mov eax, -1
    "ba1200",  # mov dx, 0x12
    "ed",  # in ax, dx                   ; 0xb2c2; bits 31:16 stay
    "6689c1",  # mov ecx, eax
    "66b8ffffffff",  # mov eax, -1
    "ba1400",  # mov dx, 0x14
    "66ed",  # in eax, dx                  ; 0xd4e4f404
    "f4",  # hlt
)


# tests/guests/pio32.asm:
# Port I/O of 1, 2 and 4 bytes in 32-bit protected mode on ports 0x10-0x17:
# claimed by test callbacks (test_pio) or unclaimed, as VX_EXIT_IO exits
# (test_io_exit). pio16/32/64.asm are one program in three modes; the
# accesses, in order, are pio_script in test_guests.py. Reads merge into
# al/ax or fill eax; at the hlt rbx = 0xffffffa1, rcx = 0xffffb2c2,
# rax = 0xd4e4f404.
PIO32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "b011",  # mov al, 0x11
    "e610",  # out 0x10, al                ; port 0x10, 1 byte, 0x11
    "66ba1200",  # mov dx, 0x12
    "66b83322",  # mov ax, 0x2233
    "66ef",  # out dx, ax                  ; port 0x12, 2 bytes, 0x2233
    "66ba1400",  # mov dx, 0x14
    "b877665544",  # mov eax, 0x44556677
    "ef",  # out dx, eax                 ; port 0x14, 4 bytes, 0x44556677
    "b077",  # mov al, 0x77
    "e617",  # out 0x17, al                ; the last port of the range
    "b8ffffffff",  # mov eax, -1
    "e411",  # in al, 0x11                 ; the callback gives 0xa1; bits 31:8 stay
    "89c3",  # mov ebx, eax
    "b8ffffffff",  # mov eax, -1
    "66ba1200",  # mov dx, 0x12
    "66ed",  # in ax, dx                   ; 0xb2c2; bits 31:16 stay
    "89c1",  # mov ecx, eax
    "b8ffffffff",  # mov eax, -1
    "66ba1400",  # mov dx, 0x14
    "ed",  # in eax, dx                  ; 0xd4e4f404
    "f4",  # hlt
)


# tests/guests/pio64.asm:
# Port I/O of 1, 2 and 4 bytes in 64-bit long mode on ports 0x10-0x17:
# claimed by test callbacks (test_pio) or unclaimed, as VX_EXIT_IO exits
# (test_io_exit). pio16/32/64.asm are one program in three modes; the
# accesses, in order, are pio_script in test_guests.py. Reads merge into
# al/ax or fill eax; at the hlt rbx = 0xffffffa1, rcx = 0xffffb2c2,
# rax = 0xd4e4f404.
PIO64 = asm(
    # bits 64, loaded at 0x1000
    # start:
    "b011",  # mov al, 0x11
    "e610",  # out 0x10, al                ; port 0x10, 1 byte, 0x11
    "66ba1200",  # mov dx, 0x12
    "66b83322",  # mov ax, 0x2233
    "66ef",  # out dx, ax                  ; port 0x12, 2 bytes, 0x2233
    "66ba1400",  # mov dx, 0x14
    "b877665544",  # mov eax, 0x44556677
    "ef",  # out dx, eax                 ; port 0x14, 4 bytes, 0x44556677
    "b077",  # mov al, 0x77
    "e617",  # out 0x17, al                ; the last port of the range
    "b8ffffffff",  # mov eax, -1
    "e411",  # in al, 0x11                 ; the callback gives 0xa1; bits 31:8 stay
    "89c3",  # mov ebx, eax
    "b8ffffffff",  # mov eax, -1
    "66ba1200",  # mov dx, 0x12
    "66ed",  # in ax, dx                   ; 0xb2c2; bits 31:16 stay
    "89c1",  # mov ecx, eax
    "48c7c0ffffffff",  # mov rax, -1                 ; in eax must clear bits 63:32 too
    "66ba1400",  # mov dx, 0x14
    "ed",  # in eax, dx                  ; 0xd4e4f404
    "f4",  # hlt
)


# tests/guests/mmio16.asm:
# MMIO in 16-bit real mode on 0xa0000-0xa00ff: claimed by test callbacks
# (test_mmio) or unclaimed, as VX_EXIT_MMIO exits (test_mmio_exit).
# mmio16/32/64.asm are one program in three modes; only mmio64 has the
# 8-byte accesses. The accesses, in order, are mmio_script in test_guests.py:
# writes of 1/2/4 bytes, reads that merge into al/ax or fill a
# register, and a read-modify-write (or) that reads 0x100 and writes 0x180.
# At the hlt rbx = 0xffffff5a, rcx = 0xffff5aa5, rdx = 0xdeadbeef.
MMIO16 = asm(
    # bits 16, loaded at 0x1000
    # start:
    "b800a0",  # mov ax, 0xa000
    "8ec0",  # mov es, ax                  ; the window is es:0000-es:00ff
    "26c606010011",  # mov byte [es:0x01], 0x11
    "26c70602003322",  # mov word [es:0x02], 0x2233
    "2666c706040077665544",  # mov dword [es:0x04], 0x44556677
    "66b8ffffffff",  # mov eax, -1
    "26a01000",  # mov al, [es:0x10]           ; 0x5a; bits 31:8 stay
    "6689c3",  # mov ebx, eax
    "66b8ffffffff",  # mov eax, -1
    "26a11200",  # mov ax, [es:0x12]           ; 0x5aa5; bits 31:16 stay
    "6689c1",  # mov ecx, eax
    "26668b161400",  # mov edx, [es:0x14]          ; 0xdeadbeef
    "2666810e200080000000",  # or dword [es:0x20], 0x80    ; reads 0x100, writes 0x180
    "f4",  # hlt
)


# tests/guests/mmio32.asm:
# MMIO in 32-bit protected mode on 0xa0000-0xa00ff: claimed by test callbacks
# (test_mmio) or unclaimed, as VX_EXIT_MMIO exits (test_mmio_exit).
# mmio16/32/64.asm are one program in three modes; only mmio64 has the
# 8-byte accesses. The accesses, in order, are mmio_script in test_guests.py:
# writes of 1/2/4 bytes, reads that merge into al/ax or fill a
# register, and a read-modify-write (or) that reads 0x100 and writes 0x180.
# At the hlt rbx = 0xffffff5a, rcx = 0xffff5aa5, rdx = 0xdeadbeef.
MMIO32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "c60501000a0011",  # mov byte [0xa0001], 0x11
    "66c70502000a003322",  # mov word [0xa0002], 0x2233
    "c70504000a0077665544",  # mov dword [0xa0004], 0x44556677
    "b8ffffffff",  # mov eax, -1
    "a010000a00",  # mov al, [0xa0010]           ; 0x5a; bits 31:8 stay
    "89c3",  # mov ebx, eax
    "b8ffffffff",  # mov eax, -1
    "66a112000a00",  # mov ax, [0xa0012]           ; 0x5aa5; bits 31:16 stay
    "89c1",  # mov ecx, eax
    "8b1514000a00",  # mov edx, [0xa0014]          ; 0xdeadbeef
    "810d20000a0080000000",  # or dword [0xa0020], 0x80    ; reads 0x100, writes 0x180
    "f4",  # hlt
)


# tests/guests/mmio64.asm:
# MMIO in 64-bit long mode on 0xa0000-0xa00ff: claimed by test callbacks
# (test_mmio) or unclaimed, as VX_EXIT_MMIO exits (test_mmio_exit).
# mmio16/32/64.asm are one program in three modes; only mmio64 has the
# 8-byte accesses. The accesses, in order, are mmio_script in test_guests.py:
# writes of 1/2/4/8 bytes, reads that merge into al/ax or fill a
# register, and a read-modify-write (or) that reads 0x100 and writes 0x180.
# At the hlt rbx = 0xffffff5a, rcx = 0xffff5aa5, rdx = 0xdeadbeef,
# rsi = 0x0123456789abcdef.
MMIO64 = asm(
    # bits 64, loaded at 0x1000
    # start:
    "c6042501000a0011",  # mov byte [0xa0001], 0x11
    "66c7042502000a003322",  # mov word [0xa0002], 0x2233
    "c7042504000a0077665544", # mov dword [0xa0004], 0x44556677
    "48b8ffeeddccbbaa9988",  # mov rax, 0x8899aabbccddeeff
    "4889042508000a00",  # mov [0xa0008], rax
    "b8ffffffff",  # mov eax, -1
    "8a042510000a00",  # mov al, [0xa0010]           ; 0x5a; bits 31:8 stay
    "89c3",  # mov ebx, eax
    "b8ffffffff",  # mov eax, -1
    "668b042512000a00",  # mov ax, [0xa0012]           ; 0x5aa5; bits 31:16 stay
    "89c1",  # mov ecx, eax
    "48c7c2ffffffff",  # mov rdx, -1                 ; a 32-bit load must clear bits 63:32
    "8b142514000a00",  # mov edx, [0xa0014]          ; 0xdeadbeef
    "488b342518000a00",  # mov rsi, [0xa0018]          ; 0x0123456789abcdef
    "810c2520000a0080000000", # or dword [0xa0020], 0x80    ; reads 0x100, writes 0x180
    "f4",  # hlt
)


# tests/guests/hlt.asm:
# hlt, then resume after it. Only nop and hlt, whose encodings mean the same
# in real, protected and long mode, so one image serves all three
# (test_hlt): the first hlt is at 0x1010 (exit rip 0x1011), the second at
# 0x1020 (exit rip 0x1021).
HLT = asm(
    "90909090909090909090909090909090",  # times 0x10 nop
    "f4",  # hlt
    "909090909090909090909090909090",  # times 0x20 - ($ - $$) nop
    "f4",  # hlt
)


# tests/guests/rom32.asm:
# Guest writes to ROM are dropped: 0xc0000-0xc0fff is mapped without
# VX_MEM_WRITE and the host loaded it (test_rom): dwords 0x11223344 at +0,
# 0x55667788 at +4, four dwords 0x99aabbcc at +0x10, and at +0x100 the
# routine "mov edx, 0x600d; ret". The guest stores over all of it (mov and
# rep stosd), reads it back, calls the routine, and stores to RAM to show
# that writes in general work. At the hlt: eax = 0x11223344,
# ebx = 0x55667788, esi = 0x99aabbcc, edx = 0x600d, ecx = 0xdddddddd.
ROM32 = asm(
    # bits 32, loaded at 0x1000
    # ROM equ 0xc0000
    # start:
    "c60500000c00aa",  # mov byte [ROM], 0xaa
    "c70504000c00bbbbbbbb",  # mov dword [ROM + 4], 0xbbbbbbbb
    "fc",  # cld
    "bf10000c00",  # mov edi, ROM + 0x10
    "b8cccccccc",  # mov eax, 0xcccccccc
    "b904000000",  # mov ecx, 4
    "f3ab",  # rep stosd
    "c60500010c00c3",  # mov byte [ROM + 0x100], 0xc3 ; would turn the routine into a bare ret
    "a100000c00",  # mov eax, [ROM]
    "8b1d04000c00",  # mov ebx, [ROM + 4]
    "8b351c000c00",  # mov esi, [ROM + 0x1c]       ; the last dword rep stosd aimed at
    "e8c0f00b00",  # call ROM + 0x100            ; ROM is executable
    "c70500000200dddddddd",  # mov dword [0x20000], 0xdddddddd
    "8b0d00000200",  # mov ecx, [0x20000]
    "f4",  # hlt
)


# tests/guests/spin32.asm:
# An endless loop for vx_vcpu_stop() (test_stop_*, test_busy): counts in the dword at
# 0x8000 until the host sets the dword at 0x8004, then halts. The count
# shows the guest ran; the flag lets the test resume it to a clean hlt.
SPIN32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "ff0500800000",  # inc dword [0x8000]
    "833d0480000000",  # cmp dword [0x8004], 0
    "74f1",  # je start
    "f4",  # hlt
)


# tests/guests/cbfail32.asm:
# A callback that fails (test_callback_error). ebx picks the access, made
# to a port or MMIO range whose callback returns an error: 0 writes port
# 0x10, 1 reads it, 2 writes gpa 0xa0000, 3 reads it. The hlt after each
# must not be reached as a VX_EXIT_HLT.
CBFAIL32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "83fb01",  # cmp ebx, 1
    "740d",  # je pio_read
    "83fb02",  # cmp ebx, 2
    "740b",  # je mmio_write
    "83fb03",  # cmp ebx, 3
    "740c",  # je mmio_read
    "e610",  # out 0x10, al
    "f4",  # hlt
    # pio_read:
    "e410",  # in al, 0x10
    "f4",  # hlt
    # mmio_write:
    "a300000a00",  # mov [0xa0000], eax
    "f4",  # hlt
    # mmio_read:
    "a100000a00",  # mov eax, [0xa0000]
    "f4",  # hlt
)


# tests/guests/current32.asm:
# One port write and one MMIO write: writes al to port 0x10, then to gpa
# 0xa0000, both claimed by callbacks, then halts. test_current checks
# vx_vcpu_current() in them (a different al in each vCPU);
# test_stop_from_callback stops the vCPU from the first.
CURRENT32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "e610",  # out 0x10, al
    "a200000a00",  # mov [0xa0000], al
    "f4",  # hlt
)


# tests/guests/regs64.asm:
# vx_vcpu_set_regs() reaches the CPU and vx_vcpu_get_regs() reads it back
# (test_regs_roundtrip): adds 1 to each of the 16 general registers with
# lea, which leaves rflags alone, so the flags the test set survive too.
REGS64 = asm(
    # bits 64, loaded at 0x1000
    # start:
    "488d4001",  # lea rax, [rax + 1]
    "488d5b01",  # lea rbx, [rbx + 1]
    "488d4901",  # lea rcx, [rcx + 1]
    "488d5201",  # lea rdx, [rdx + 1]
    "488d7601",  # lea rsi, [rsi + 1]
    "488d7f01",  # lea rdi, [rdi + 1]
    "488d642401",  # lea rsp, [rsp + 1]
    "488d6d01",  # lea rbp, [rbp + 1]
    "4d8d4001",  # lea r8, [r8 + 1]
    "4d8d4901",  # lea r9, [r9 + 1]
    "4d8d5201",  # lea r10, [r10 + 1]
    "4d8d5b01",  # lea r11, [r11 + 1]
    "4d8d642401",  # lea r12, [r12 + 1]
    "4d8d6d01",  # lea r13, [r13 + 1]
    "4d8d7601",  # lea r14, [r14 + 1]
    "4d8d7f01",  # lea r15, [r15 + 1]
    "f4",  # hlt
)


# tests/guests/sregs16.asm:
# Segment registers in real mode (test_sregs_real): the test set ds to
# 0x2000 (base 0x20000) and es to 0x3000 (base 0x30000) with
# vx_vcpu_set_sregs(). The guest reads a word through each, then loads fs
# itself, which vx_vcpu_get_sregs() must show as selector 0x4000, base
# 0x40000.
SREGS16 = asm(
    # bits 16, loaded at 0x1000
    # start:
    "a10000",  # mov ax, [0]
    "268b1e0000",  # mov bx, [es:0]
    "b90040",  # mov cx, 0x4000
    "8ee1",  # mov fs, cx
    "648b160000",  # mov dx, [fs:0]
    "f4",  # hlt
)


# tests/guests/sregs64.asm:
# fs and gs bases set with vx_vcpu_set_sregs() apply in long mode
# (test_sregs_long): reads a qword through each.
SREGS64 = asm(
    # bits 64, loaded at 0x1000
    # start:
    "64488b042500000000",  # mov rax, [fs:0]
    "65488b1c2508000000",  # mov rbx, [gs:8]
    "f4",  # hlt
)


# tests/guests/triple32.asm:
# A triple fault in 32-bit protected mode (test_triple_fault): with an empty IDT
# (limit 0) the #UD from ud2 cannot be delivered, nor the #GP that follows,
# nor the #DF; the CPU shuts down. ud2 rather than int3 because kvm_pvm's
# instruction emulator, which runs ring-0 code there, cannot do int3.
TRIPLE32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "0f011d0a100000",  # lidt [empty_idt]
    "0f0b",  # ud2
    "f4",  # hlt                         ; never reached
    # empty_idt:
    "0000",  # dw 0
    "00000000",  # dd 0
)


# tests/guests/triple64.asm:
# A triple fault in 64-bit long mode (test_triple_fault): with an empty IDT
# (limit 0) the #UD from ud2 cannot be delivered, nor the #GP that follows,
# nor the #DF; the CPU shuts down. ud2 rather than int3 because kvm_pvm's
# instruction emulator, which runs ring-0 code there, cannot do int3.
TRIPLE64 = asm(
    # bits 64, loaded at 0x1000
    # start:
    "0f011d03000000",  # lidt [rel empty_idt]
    "0f0b",  # ud2
    "f4",  # hlt                         ; never reached
    # empty_idt:
    "0000",  # dw 0
    "0000000000000000",  # dq 0
)


# tests/guests/string32.asm:
# String port I/O in 32-bit protected mode on port 0x10: rep outsb/outsw/
# outsd, a zero count, a backwards rep outsb (DF=1), rep insb/insw/insd
# into memory, and a 5000-byte rep insb that crosses pages. Every element is
# one callback (test_string_io) or, with the port unclaimed, one
# VX_EXIT_IO (test_string_io_exit); test_guests.py checks their order and
# where the data landed.
STRING32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "fc",  # cld
    "66ba1000",  # mov dx, 0x10
    "be00110000",  # mov esi, bytes_out
    "b905000000",  # mov ecx, 5
    "f36e",  # rep outsb                   ; 'H' 'e' 'l' 'l' 'o'
    "be05110000",  # mov esi, words_out
    "b903000000",  # mov ecx, 3
    "f3666f",  # rep outsw                   ; 0x1111 0x2222 0x3333
    "b902000000",  # mov ecx, 2
    "f36f",  # rep outsd                   ; 0x44444444 0x55555555, right after the words
    "31c9",  # xor ecx, ecx
    "f36e",  # rep outsb                   ; a count of 0 moves nothing
    "fd",  # std
    "be02110000",  # mov esi, bytes_out + 2
    "b903000000",  # mov ecx, 3
    "f36e",  # rep outsb                   ; backwards: 'l' 'e' 'H'
    "fc",  # cld
    "bf00800000",  # mov edi, 0x8000
    "b904000000",  # mov ecx, 4
    "f36c",  # rep insb                    ; 0x8000..0x8003
    "b903000000",  # mov ecx, 3
    "f3666d",  # rep insw                    ; 0x8004..0x8009
    "b902000000",  # mov ecx, 2
    "f36d",  # rep insd                    ; 0x800a..0x8011
    "bff00f0200",  # mov edi, 0x20ff0
    "b988130000",  # mov ecx, 5000
    "f36c",  # rep insb                    ; 0x20ff0..0x22377
    "f4",  # hlt
    # ; at a fixed address so the test knows where esi ends
    "00" * 0xa1,  # times 0x100 - ($ - $$) db 0
    # bytes_out:                      ; 0x1100
    "48656c6c6f",  # db "Hello"
    # words_out:                      ; 0x1105
    "111122223333",  # dw 0x1111, 0x2222, 0x3333
    "4444444455555555",  # dd 0x44444444, 0x55555555
)


# tests/guests/user64.asm:
# Ring 3 in long mode (test_user_mode): iretq to the flat ring-3 code and
# data selectors of vx_vcpu_set_mode()'s GDT, compute there, then leave by
# MMIO to unclaimed gpa 0xb0000 (ring 3 cannot hlt): write the qword
# 0x1122334455667788 to 0xb0000, read a dword from 0xb0008, add the loop
# sum (5050) and write it to 0xb0010. The test never resumes the last exit.
# Under a software KVM such as kvm_pvm this code runs on the CPU, not in
# the instruction emulator.
USER64 = asm(
    # bits 64, loaded at 0x1000
    # SEL_USER_DATA   equ 0x28
    # SEL_USER_CODE64 equ 0x30
    # start:
    "6a2b",  # push SEL_USER_DATA | 3      ; ss
    "6800e00000",  # push 0xe000                 ; rsp
    "6a02",  # push 0x2                    ; rflags: interrupts stay off
    "6a33",  # push SEL_USER_CODE64 | 3    ; cs
    "6812100000",  # push user
    "48cf",  # iretq
    # user:
    "31c0",  # xor eax, eax
    "b964000000",  # mov ecx, 100
    # .sum:
    "01c8",  # add eax, ecx
    "ffc9",  # dec ecx
    "75fa",  # jnz .sum                    ; eax = 5050
    "48bb8877665544332211",  # mov rbx, 0x1122334455667788
    "48891c2500000b00",  # mov [0xb0000], rbx
    "8b142508000b00",  # mov edx, [0xb0008]
    "01c2",  # add edx, eax
    "89142510000b00",  # mov [0xb0010], edx
    "ebfe",  # jmp $
)


# echo32.asm (the Python binding's own):
# An echo device loop: reads a dword from port 0x14, writes it back
# plus one to port 0x10, ecx times; sums the reads in esi.
ECHO32 = asm(
    # bits 32, loaded at 0x1000
    # start:
    "31f6",  # xor esi, esi
    # .round:
    "e514",  # in eax, 0x14
    "01c6",  # add esi, eax
    "40",  # inc eax
    "e710",  # out 0x10, eax
    "49",  # dec ecx
    "75f6",  # jnz .round
    "f4",  # hlt
)
