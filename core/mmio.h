/*
 * mmio.h - the virtio-mmio transport (version 2) over a vdev.  See mmio.c.
 */
#ifndef VMLUA_MMIO_H
#define VMLUA_MMIO_H

#include <stdint.h>
#include "device.h"

#define MMIO_WINDOW_SIZE 0x200

struct mmio_queue_regs {
	uint32_t num;
	uint64_t desc, driver, device;
};

struct mmio_transport {
	struct vdev *dev;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;      /* assembled from the two halves */
	struct mmio_queue_regs q[VDEV_MAX_QUEUES];
};

void mmio_init(struct mmio_transport *t, struct vdev *dev);
/* A guest access at `off` in the window; size 1, 2, 4 (8 in config). */
uint64_t mmio_read(struct mmio_transport *t, uint64_t off, unsigned size);
void mmio_write(struct mmio_transport *t, uint64_t off, unsigned size, uint64_t val);

#endif
