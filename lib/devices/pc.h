/* The pc board's internals that the Linux loader needs: where its RAM is. */
#ifndef VX_DEVICES_PC_H
#define VX_DEVICES_PC_H

#include <stdint.h>

#include <libvx/vx.h>

struct vx_pc_layout {
    uint64_t low_end;   /* RAM is [0, low_end) */
    uint64_t high_size; /* and [4 GiB, 4 GiB + high_size) */
};

/* The layout of a machine made a PC by vx_board_pc(), or NULL. */
const struct vx_pc_layout *vxi_pc_layout(vx_machine *m);

#endif
