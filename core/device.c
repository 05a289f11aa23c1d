/*
 * device.c - a virtio device, apart from how it is reached.
 *
 * Every virtio device has the same outside: an id, feature bits offered
 * and accepted, a status byte the driver walks through ACKNOWLEDGE,
 * DRIVER, FEATURES_OK and DRIVER_OK, a small config space with a
 * generation counter, and some virtqueues.  Transports (virtio-mmio on
 * the kvm backend, vhost-user for uml, the Lua driver harness) turn
 * their own register writes or messages into the calls below; device
 * backends (in C, or in Lua through lvdev.c) see only notifications and
 * their queues.
 *
 * The driver is the guest, so it can get the protocol wrong.  When it
 * does, the device does what QEMU's virtio_error() does: it sets
 * NEEDS_RESET, tells its watchers why, raises a config interrupt so the
 * driver can notice, and stops serving queues until the driver resets
 * it.  The VMM carries on.
 */
#include <string.h>

#include "device.h"
#include "virtio.h"

static const char *const event_names[VDEV_EV__COUNT] = {
	[VDEV_EV_NOTIFY] = "notify", [VDEV_EV_STATUS] = "status",
	[VDEV_EV_RESET] = "reset", [VDEV_EV_CONFIG] = "config",
	[VDEV_EV_ERROR] = "error",
};
_Static_assert(sizeof(event_names) / sizeof(event_names[0]) == VDEV_EV__COUNT,
               "one name per event");

static const char *const reason_names[VDEV_REASON__END - VDEV_STATUS_BIT_CLEARED] = {
	"status_bit_cleared",
	"features_after_features_ok",
	"driver_ok_before_features_ok",
	"queue_changed_while_ready",
	"queue_size_over_max",
	"notify_bad_queue",
	"config_out_of_range",
	"hook_error",
};
_Static_assert(sizeof(reason_names) / sizeof(reason_names[0]) ==
               VDEV_REASON__END - VDEV_STATUS_BIT_CLEARED, "one name per reason");

const char *vdev_event_name(enum vdev_event e)
{
	return (unsigned)e < VDEV_EV__COUNT ? event_names[e] : "?";
}

const char *vdev_reason_name(int reason)
{
	if (reason >= VDEV_STATUS_BIT_CLEARED && reason < VDEV_REASON__END)
		return reason_names[reason - VDEV_STATUS_BIT_CLEARED];
	return virtq_reason_name(reason);
}

static void event(struct vdev *d, enum vdev_event e, unsigned arg)
{
	if (d->on_event)
		d->on_event(d, e, arg);
}

static void raise_irq(struct vdev *d, uint32_t bits, int q)
{
	d->isr |= bits;
	if (d->on_interrupt)
		d->on_interrupt(d, q);
}

/* A queue broke a ring rule: the whole device needs a reset. */
static void queue_broken(struct virtq *q, int reason, void *opaque)
{
	(void)q;
	vdev_fail(opaque, reason);
}

void vdev_init(struct vdev *d, uint32_t id, unsigned nqueues,
               const uint16_t *num_max, uint64_t features,
               const void *config, uint32_t config_len)
{
	unsigned i;

	memset(d, 0, sizeof(*d));
	d->id = id;
	d->nqueues = nqueues > VDEV_MAX_QUEUES ? VDEV_MAX_QUEUES : nqueues;
	for (i = 0; i < d->nqueues; i++) {
		d->q[i].num_max = num_max[i];
		d->q[i].vq.on_broken = queue_broken;
		d->q[i].vq.opaque = d;
	}
	/* Every device we build is a virtio 1.x device. */
	d->offered = features | (1ULL << VIRTIO_F_VERSION_1);
	d->config_len = config_len > VDEV_CONFIG_MAX ? VDEV_CONFIG_MAX : config_len;
	if (config)
		memcpy(d->config, config, d->config_len);
}

void vdev_attach(struct vdev *d, struct memory *m)
{
	vdev_reset(d);
	d->mem = m;
}

void vdev_reset(struct vdev *d)
{
	unsigned i;

	for (i = 0; i < d->nqueues; i++) {
		struct vdev_queue *q = &d->q[i];
		virtq_release(&q->vq);
		q->vq.broken = 0;
		q->num = q->num_max;
		q->desc = q->driver = q->device = 0;
		q->ready = 0;
	}
	d->status = 0;
	d->accepted = 0;
	d->isr = 0;
	d->reason = 0;
	if (d->backend && d->backend->reset)
		d->backend->reset(d);
	event(d, VDEV_EV_RESET, 0);
}

void vdev_fail(struct vdev *d, int reason)
{
	if (d->reason)
		return;           /* the first reason is the one that counts */
	d->reason = reason;
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	event(d, VDEV_EV_ERROR, (unsigned)reason);
	raise_irq(d, VIRTIO_ISR_CONFIG, -1);
}

void vdev_set_status(struct vdev *d, uint8_t status)
{
	uint8_t old = d->status;

	if (status == 0) {
		vdev_reset(d);
		event(d, VDEV_EV_STATUS, old);
		return;
	}
	/* The driver only ever adds bits (FAILED included); NEEDS_RESET is
	 * ours to set, so it is kept, not taken from the driver. */
	if ((old & ~VIRTIO_STATUS_NEEDS_RESET) & ~status) {
		vdev_fail(d, VDEV_STATUS_BIT_CLEARED);
		return;
	}
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* FEATURES_OK sticks only for a subset of what we offered
		 * that includes VERSION_1; else the driver reads it back
		 * clear and knows. */
		if ((d->accepted & ~d->offered) ||
		    !(d->accepted & (1ULL << VIRTIO_F_VERSION_1)))
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) {
		vdev_fail(d, VDEV_DRIVER_OK_BEFORE_FEATURES_OK);
		return;
	}
	d->status = (uint8_t)(status | (old & VIRTIO_STATUS_NEEDS_RESET));
	event(d, VDEV_EV_STATUS, old);
}

void vdev_set_driver_features(struct vdev *d, uint64_t features)
{
	if (d->status & VIRTIO_STATUS_FEATURES_OK) {
		vdev_fail(d, VDEV_FEATURES_AFTER_FEATURES_OK);
		return;
	}
	d->accepted = features;
}

void vdev_set_queue(struct vdev *d, unsigned qi, unsigned num, uint64_t desc,
                    uint64_t driver, uint64_t device)
{
	struct vdev_queue *q;

	if (qi >= d->nqueues)
		return;           /* writes to absent queues are ignored */
	q = &d->q[qi];
	if (q->ready) {
		vdev_fail(d, VDEV_QUEUE_CHANGED_WHILE_READY);
		return;
	}
	if (num > q->num_max) {
		vdev_fail(d, VDEV_QUEUE_SIZE_OVER_MAX);
		return;
	}
	q->num = (uint16_t)num;
	q->desc = desc;
	q->driver = driver;
	q->device = device;
}

void vdev_set_queue_ready(struct vdev *d, unsigned qi, int ready)
{
	struct vdev_queue *q;
	unsigned flags = 0;
	int rc;

	if (qi >= d->nqueues)
		return;
	q = &d->q[qi];
	if (!ready) {
		virtq_release(&q->vq);
		q->ready = 0;
		return;
	}
	if (!d->mem)
		return;
	if (d->accepted & (1ULL << VIRTIO_RING_F_EVENT_IDX))
		flags |= VIRTQ_F_EVENT_IDX;
	if (d->accepted & (1ULL << VIRTIO_RING_F_INDIRECT_DESC))
		flags |= VIRTQ_F_INDIRECT;
	rc = virtq_setup(&q->vq, d->mem, q->num, q->desc, q->driver, q->device, flags);
	if (rc > 0) {
		vdev_fail(d, rc);
		return;
	}
	q->ready = rc == 0;
}

void vdev_notify(struct vdev *d, unsigned qi)
{
	if (qi >= d->nqueues) {
		vdev_fail(d, VDEV_NOTIFY_BAD_QUEUE);
		return;
	}
	/* A device that needs a reset, or a driver not yet running, gets
	 * no service; neither is an error in itself. */
	if (d->reason || !(d->status & VIRTIO_STATUS_DRIVER_OK) || !d->q[qi].ready)
		return;
	d->notifies++;
	if (d->backend && d->backend->notify)
		d->backend->notify(d, qi);
	event(d, VDEV_EV_NOTIFY, qi);
}

int vdev_config_read(struct vdev *d, uint32_t off, void *buf, uint32_t len)
{
	uint32_t have = off < d->config_len ? d->config_len - off : 0;

	/* What lies beyond the config space reads as zero. */
	memset(buf, 0, len);
	memcpy(buf, d->config + off, have < len ? have : len);
	return have >= len ? 0 : -1;
}

int vdev_config_write(struct vdev *d, uint32_t off, const void *buf, uint32_t len)
{
	if (off > d->config_len || len > d->config_len - off) {
		vdev_fail(d, VDEV_CONFIG_OUT_OF_RANGE);
		return -1;
	}
	memcpy(d->config + off, buf, len);
	event(d, VDEV_EV_CONFIG, off);
	return 0;
}

void vdev_update_config(struct vdev *d, uint32_t off, const void *buf, uint32_t len)
{
	if (off > VDEV_CONFIG_MAX || len > VDEV_CONFIG_MAX - off)
		return;
	memcpy(d->config + off, buf, len);
	if (off + len > d->config_len)
		d->config_len = off + len;
	d->generation++;
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(d, VIRTIO_ISR_CONFIG, -1);
}

uint32_t vdev_ack_interrupt(struct vdev *d, uint32_t bits)
{
	uint32_t was = d->isr;
	d->isr &= ~bits;
	return was;
}

void vdev_interrupt(struct vdev *d, unsigned qi)
{
	if (qi < d->nqueues && d->q[qi].ready && virtq_needs_interrupt(&d->q[qi].vq))
		raise_irq(d, VIRTIO_ISR_QUEUE, (int)qi);
}

int vdev_pollfd(struct vdev *d)
{
	return d->backend && d->backend->pollfd ? d->backend->pollfd(d) : -1;
}

void vdev_ready(struct vdev *d)
{
	if (d->backend && d->backend->ready)
		d->backend->ready(d);
}

int vdev_counter(const void *base, const struct vdev_counter *t, size_t n,
                 const char *name, int64_t *v)
{
	size_t i;

	if (!base)
		return 0;
	for (i = 0; i < n; i++)
		if (!strcmp(name, t[i].name)) {
			*v = *(const int64_t *)((const char *)base + t[i].off);
			return 1;
		}
	return 0;
}
