/*
 * vcon.c - virtio-console (device id 3): hvc0 in the guest.
 *
 * No features: one port, no emergency write, no size.  Queue 1 carries
 * what the guest writes: each chain's readable bytes go to on_output
 * (a Lua Console, see lconsole.c) and the chain comes back empty.  Queue
 * 0 takes input: bytes wait in `pending` (at most 1 MiB; more is dropped
 * and counted) and fill the guest's receive buffers as it posts them.
 * An input source fd (stdin, a file) is polled by the transport's loop
 * only while there is room in `pending`, so a large file streams in at
 * the pace the guest reads it, and only after the guest first wrote to
 * the console: without MULTIPORT there is no word of the guest opening
 * hvc0, and a tty that is not open yet throws away what it receives.  Output chains are capped at 64 KiB of
 * what is passed on; a larger one is cut, not refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "iov.h"
#include "vcon.h"
#include "virtio.h"

#define OUT_MAX (64u << 10)

struct vcon *vcon_new(void)
{
	struct vcon *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->pending = malloc(VCON_PENDING_MAX);
	c->scratch = malloc(OUT_MAX);
	if (!c->pending || !c->scratch) {
		free(c->pending);
		free(c->scratch);
		free(c);
		return NULL;
	}
	c->in_fd = -1;
	return c;
}

void vcon_free(struct vcon *c)
{
	if (!c)
		return;
	if (c->on_free)
		c->on_free(c);
	if (c->own_fd && c->in_fd >= 0)
		close(c->in_fd);
	free(c->pending);
	free(c->scratch);
	free(c);
}

/* Fill the guest's receive buffers from `pending`. */
static void fill(struct vcon *c)
{
	struct vdev *d = c->dev;
	struct virtq *q;
	struct virtq_chain ch;
	int pushed = 0;

	if (!d || !(d->status & VIRTIO_STATUS_DRIVER_OK) || d->reason || !d->q[VCON_RX].ready)
		return;
	q = &d->q[VCON_RX].vq;
	while (c->plen && virtq_pop(q, &ch) > 0) {
		size_t done = iov_from_buf(ch.iov + ch.nread, ch.niov - ch.nread, 0, c->pending, c->plen);
		memmove(c->pending, c->pending + done, c->plen - done);
		c->plen -= done;
		c->in_bytes += (int64_t)done;
		virtq_push(q, ch.head, (uint32_t)done);
		virtq_chain_release(&ch);
		pushed = 1;
	}
	if (pushed)
		vdev_interrupt(d, VCON_RX);
}

size_t vcon_input(struct vcon *c, const uint8_t *data, size_t len)
{
	size_t room = VCON_PENDING_MAX - c->plen;

	if (len > room) {
		c->in_dropped += (int64_t)(len - room);
		len = room;
	}
	memcpy(c->pending + c->plen, data, len);
	c->plen += len;
	fill(c);
	return len;
}

static void transmit(struct vcon *c)
{
	struct vdev *d = c->dev;
	struct virtq *q = &d->q[VCON_TX].vq;
	struct virtq_chain ch;

	while (virtq_pop(q, &ch) > 0) {
		size_t len = iov_to_buf(ch.iov, ch.nread, 0, c->scratch, OUT_MAX);
		virtq_push(q, ch.head, 0);
		virtq_chain_release(&ch);
		c->out_bytes += (int64_t)len;
		if (len && c->on_output)
			c->on_output(c, c->scratch, len, c->opaque);
	}
	vdev_interrupt(d, VCON_TX);
}

static void vcon_notify(struct vdev *d, unsigned qi)
{
	struct vcon *c = d->backend_data;

	c->dev = d;
	if (qi == VCON_TX)
		transmit(c);
	else
		fill(c);
}

static int vcon_pollfd(struct vdev *d)
{
	const struct vcon *c = d->backend_data;
	/* Only once the guest has spoken (a tty that is not open yet drops
	 * what it receives), and only while there is room. */
	return c && c->in_fd >= 0 && c->out_bytes > 0 && c->plen < VCON_PENDING_MAX / 2
	       ? c->in_fd : -1;
}

static void vcon_ready(struct vdev *d)
{
	struct vcon *c = d->backend_data;
	uint8_t buf[4096];
	ssize_t got;

	if (!c || c->in_fd < 0)
		return;
	got = read(c->in_fd, buf, sizeof(buf));
	if (got > 0) {
		vcon_input(c, buf, (size_t)got);
	} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
		/* The end of the source: stop polling it. */
		if (c->own_fd)
			close(c->in_fd);
		c->in_fd = -1;
	}
}

static int vcon_field(struct vdev *d, const char *name, int64_t *v)
{
	static const struct vdev_counter counters[] = {
		{ "out_bytes", offsetof(struct vcon, out_bytes) },
		{ "in_bytes", offsetof(struct vcon, in_bytes) },
		{ "in_dropped", offsetof(struct vcon, in_dropped) },
	};
	const struct vcon *c = d->backend_data;

	if (c && !strcmp(name, "pending")) {
		*v = (int64_t)c->plen;
		return 1;
	}
	return vdev_counter(c, counters, sizeof(counters) / sizeof(counters[0]), name, v);
}

static void vcon_destroy(struct vdev *d)
{
	vcon_free(d->backend_data);
	d->backend_data = NULL;
}

const struct vdev_backend vcon_backend = {
	.name = "console",
	.notify = vcon_notify,
	.field = vcon_field,
	.destroy = vcon_destroy,
	.pollfd = vcon_pollfd,
	.ready = vcon_ready,
};
