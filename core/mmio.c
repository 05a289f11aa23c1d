/*
 * mmio.c - virtio over memory-mapped registers (virtio 1.2, 4.2).
 *
 * The guest finds each device as a 512-byte window in the 32-bit hole,
 * named in the DSDT.  Registers are 32 bits wide; config space starts at
 * 0x100 and may be read in any width.  We turn each access into a call
 * on the transport-agnostic device (device.c).  Queue addresses and
 * sizes are staged here until the driver writes QueueReady, which is
 * when device.c checks the layout.
 *
 * Accesses of the wrong width, or to registers that do not exist, read
 * as zero and are otherwise ignored: the guest learns nothing and
 * breaks nothing.
 */
#include <string.h>

#include "mmio.h"
#include "virtio.h"

enum {
	R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_VENDOR_ID = 0x00c,
	R_DEVICE_FEATURES = 0x010, R_DEVICE_FEATURES_SEL = 0x014,
	R_DRIVER_FEATURES = 0x020, R_DRIVER_FEATURES_SEL = 0x024,
	R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038,
	R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050,
	R_INTERRUPT_STATUS = 0x060, R_INTERRUPT_ACK = 0x064, R_STATUS = 0x070,
	R_QUEUE_DESC_LOW = 0x080, R_QUEUE_DESC_HIGH = 0x084,
	R_QUEUE_DRIVER_LOW = 0x090, R_QUEUE_DRIVER_HIGH = 0x094,
	R_QUEUE_DEVICE_LOW = 0x0a0, R_QUEUE_DEVICE_HIGH = 0x0a4,
	R_CONFIG_GENERATION = 0x0fc, R_CONFIG = 0x100,
};

#define MAGIC 0x74726976         /* "virt" */
#define VENDOR 0x554d4c56        /* "VLMU": vmlua */

void mmio_init(struct mmio_transport *t, struct vdev *dev)
{
	memset(t, 0, sizeof(*t));
	t->dev = dev;
}

static struct mmio_queue_regs *selected(struct mmio_transport *t)
{
	return t->queue_sel < t->dev->nqueues ? &t->q[t->queue_sel] : NULL;
}

static void set_half(uint64_t *v, int high, uint32_t val)
{
	if (high)
		*v = (*v & 0xffffffffULL) | ((uint64_t)val << 32);
	else
		*v = (*v & ~0xffffffffULL) | val;
}

uint64_t mmio_read(struct mmio_transport *t, uint64_t off, unsigned size)
{
	struct vdev *d = t->dev;
	struct mmio_queue_regs *q = selected(t);

	if (off >= R_CONFIG) {
		uint64_t v = 0;
		if (size == 1 || size == 2 || size == 4 || size == 8)
			vdev_config_read(d, (uint32_t)(off - R_CONFIG), &v, size);
		return v;
	}
	if (size != 4 || off % 4)
		return 0;
	switch (off) {
	case R_MAGIC: return MAGIC;
	case R_VERSION: return 2;
	case R_DEVICE_ID: return d->id;
	case R_VENDOR_ID: return VENDOR;
	case R_DEVICE_FEATURES:
		return t->device_features_sel == 0 ? (uint32_t)d->offered
		     : t->device_features_sel == 1 ? (uint32_t)(d->offered >> 32) : 0;
	case R_QUEUE_NUM_MAX:
		return q ? d->q[t->queue_sel].num_max : 0;
	case R_QUEUE_READY:
		return q ? (uint64_t)d->q[t->queue_sel].ready : 0;
	case R_INTERRUPT_STATUS:
		return d->isr;
	case R_STATUS:
		return d->status;
	case R_CONFIG_GENERATION:
		return d->generation;
	default:
		return 0;
	}
}

void mmio_write(struct mmio_transport *t, uint64_t off, unsigned size, uint64_t val)
{
	struct vdev *d = t->dev;
	struct mmio_queue_regs *q = selected(t);
	uint32_t v = (uint32_t)val;

	if (off >= R_CONFIG) {
		if (size == 1 || size == 2 || size == 4 || size == 8)
			vdev_config_write(d, (uint32_t)(off - R_CONFIG), &val, size);
		return;
	}
	if (size != 4 || off % 4)
		return;
	switch (off) {
	case R_DEVICE_FEATURES_SEL: t->device_features_sel = v; break;
	case R_DRIVER_FEATURES_SEL: t->driver_features_sel = v; break;
	case R_DRIVER_FEATURES:
		if (t->driver_features_sel < 2) {
			set_half(&t->driver_features, (int)t->driver_features_sel, v);
			vdev_set_driver_features(d, t->driver_features);
		}
		break;
	case R_QUEUE_SEL: t->queue_sel = v; break;
	case R_QUEUE_NUM: if (q) q->num = v; break;
	case R_QUEUE_DESC_LOW: if (q) set_half(&q->desc, 0, v); break;
	case R_QUEUE_DESC_HIGH: if (q) set_half(&q->desc, 1, v); break;
	case R_QUEUE_DRIVER_LOW: if (q) set_half(&q->driver, 0, v); break;
	case R_QUEUE_DRIVER_HIGH: if (q) set_half(&q->driver, 1, v); break;
	case R_QUEUE_DEVICE_LOW: if (q) set_half(&q->device, 0, v); break;
	case R_QUEUE_DEVICE_HIGH: if (q) set_half(&q->device, 1, v); break;
	case R_QUEUE_READY:
		if (!q)
			break;
		if (v == 1)
			vdev_set_queue(d, t->queue_sel, q->num, q->desc, q->driver, q->device);
		vdev_set_queue_ready(d, t->queue_sel, v == 1);
		break;
	case R_QUEUE_NOTIFY:
		vdev_notify(d, v);
		break;
	case R_INTERRUPT_ACK:
		vdev_ack_interrupt(d, v);
		break;
	case R_STATUS:
		if (v == 0) {
			memset(t->q, 0, sizeof(t->q));
			t->driver_features = 0;
		}
		vdev_set_status(d, (uint8_t)v);
		break;
	default:
		break;
	}
}
