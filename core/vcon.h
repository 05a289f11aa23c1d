/*
 * vcon.h - virtio-console: one port, bytes both ways.  See vcon.c.
 */
#ifndef VMLUA_VCON_H
#define VMLUA_VCON_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"

#define VCON_RX 0                 /* host -> guest */
#define VCON_TX 1                 /* guest -> host */
#define VCON_PENDING_MAX (1u << 20)
#define VCON_CONFIG_LEN 12        /* cols, rows, max_nr_ports, emerg_wr */

struct vcon {
	struct vdev *dev;
	int in_fd;                /* a source polled for input, or -1 */
	int own_fd;               /* close in_fd at the end */
	uint8_t *pending;         /* input not yet taken by the guest */
	size_t plen;
	uint8_t *scratch;         /* one output chain */
	/* Output from the guest. */
	void (*on_output)(struct vcon *c, const uint8_t *data, size_t len, void *opaque);
	void *opaque;
	void (*on_free)(struct vcon *c);
	int64_t out_bytes, in_bytes, in_dropped;
};

struct vcon *vcon_new(void);
void vcon_free(struct vcon *c);
/* Queue bytes for the guest; returns how many were taken (all, unless
 * VCON_PENDING_MAX bytes already wait). */
size_t vcon_input(struct vcon *c, const uint8_t *data, size_t len);

extern const struct vdev_backend vcon_backend;

#endif
