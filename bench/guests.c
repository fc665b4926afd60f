/*
 * vxbench: the guest programs, as bytes, with their source beside them.
 * Every column loads the same bytes at GUEST_CODE_GPA in 64-bit mode.
 */
#include "bench.h"

/*
 * The out-to-callback rows. Entered with rcx = number of outs, edx = the
 * port, ebx = the end port; ring 0 or ring 3 (with IOPL 3).
 *
 *     .loop:  out  dx, al
 *             dec  rcx
 *             jnz  .loop
 *             mov  edx, ebx
 *             out  dx, al        ; nothing claims it: the run ends here
 *             hlt
 */
const uint8_t guest_out_loop[] = {
    0xee,                   /* out dx, al */
    0x48, 0xff, 0xc9,       /* dec rcx */
    0x75, 0xfa,             /* jnz .loop */
    0x89, 0xda,             /* mov edx, ebx */
    0xee,                   /* out dx, al */
    0xf4,                   /* hlt */
};
const size_t guest_out_loop_len = sizeof(guest_out_loop);

/* The create+run+destroy row: the smallest guest there is. */
const uint8_t guest_hlt[] = {
    0xf4,                   /* hlt */
};
const size_t guest_hlt_len = sizeof(guest_hlt);
