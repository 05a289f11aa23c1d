/*
 * net.c - virtio-net (device id 1): a guest's frames in and out.
 *
 * Offered: MAC and STATUS (the link is up), nothing else, so every frame
 * travels whole with its checksums done, behind a 12-byte virtio_net_hdr
 * that we write as zeros with num_buffers = 1 and skip when reading.
 *
 * Transmit (queue 1): each chain's readable bytes are a header and one
 * frame.  A chain shorter than the header, or a frame over 64 KiB or
 * shorter than an Ethernet header, is dropped and counted; the chain is
 * returned either way.  The frame goes through the hook (which may
 * change or drop it), then to the switch port.
 *
 * The other end is a switch port (switch.c), a host tap device, or
 * user-mode networking (slirp.c); the tap's fd, or slirp's wakeup, is
 * polled by the transport's loop for us (pollfd/ready).
 *
 * Receive (queue 0): a frame for the guest goes through the hook, then
 * into the next chain of writable buffers.  With no chain waiting it
 * waits in a short backlog, sent when the guest adds buffers (it kicks
 * the receive queue); a full backlog drops.  A frame that does not fit
 * the chain is dropped, and the chain is returned empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include "errbuf.h"
#include "iov.h"
#include "le.h"
#include "net.h"
#include "slirp.h"
#include "virtio.h"

#define F_MAC    5
#define F_STATUS 16
#define ETH_HLEN 14

static void port_deliver(struct sw_port *p, const uint8_t *frame, size_t len)
{
	net_deliver(p->opaque, frame, len);
}

struct net *net_new(const uint8_t mac[6])
{
	struct net *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->scratch = malloc(NET_FRAME_MAX);
	n->rx_buf = malloc(NET_FRAME_MAX);
	if (!n->scratch || !n->rx_buf) {
		free(n->scratch);
		free(n->rx_buf);
		free(n);
		return NULL;
	}
	memcpy(n->mac, mac, 6);
	n->tap_fd = -1;
	n->port.deliver = port_deliver;
	n->port.opaque = n;
	return n;
}

void net_free(struct net *n)
{
	if (!n)
		return;
	sw_detach(&n->port);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	slink_free(n->user);
	while (n->bl_count) {
		free(n->backlog[n->bl_head].data);
		n->bl_head = (n->bl_head + 1) % NET_BACKLOG;
		n->bl_count--;
	}
	free(n->scratch);
	free(n->rx_buf);
	free(n);
}

uint64_t net_features(void)
{
	return 1ULL << F_MAC | 1ULL << F_STATUS;
}

void net_config(const struct net *n, uint8_t c[NET_CONFIG_LEN])
{
	memcpy(c, n->mac, 6);
	put_le16(c + 6, 1);          /* VIRTIO_NET_S_LINK_UP */
}

/* Put one frame in the guest's next receive chain; 1 if it was taken
 * (delivered or dropped as unfit), 0 if there is no chain. */
static int to_guest(struct net *n, const uint8_t *frame, size_t len)
{
	struct vdev *d = n->dev;
	struct virtq *q;
	struct virtq_chain c;
	uint8_t hdr[NET_HDR_LEN] = { 0 };
	size_t total = NET_HDR_LEN + len;

	if (!d || !(d->status & VIRTIO_STATUS_DRIVER_OK) || d->reason || !d->q[NET_RX].ready)
		return 0;
	q = &d->q[NET_RX].vq;
	if (virtq_pop(q, &c) <= 0)
		return 0;
	if (c.write_len < total) {
		n->rx_dropped++;
		virtq_push(q, c.head, 0);
	} else {
		const struct iovec *w = c.iov + c.nread;
		unsigned nw = c.niov - c.nread;
		put_le16(hdr + 10, 1);   /* num_buffers */
		iov_from_buf(w, nw, 0, hdr, NET_HDR_LEN);
		iov_from_buf(w, nw, NET_HDR_LEN, frame, len);
		n->rx_frames++, n->rx_bytes += (int64_t)len;
		virtq_push(q, c.head, (uint32_t)total);
	}
	virtq_chain_release(&c);
	vdev_interrupt(d, NET_RX);
	return 1;
}

void net_deliver(struct net *n, const uint8_t *frame, size_t len)
{
	uint8_t *copy;
	unsigned slot;

	if (len > NET_FRAME_MAX) {
		n->rx_dropped++;
		return;
	}
	if (n->hook) {
		/* The hook works on a copy it may change, in the device's own
		 * receive buffer (frame may be the tap's, in n->scratch). */
		memmove(n->rx_buf, frame, len);
		if (n->hook(n, NET_DIR_RX, n->rx_buf, &len, NET_FRAME_MAX)) {
			n->hook_dropped++;
			return;
		}
		frame = n->rx_buf;
	}
	if (!n->bl_count && to_guest(n, frame, len))
		return;
	if (n->bl_count == NET_BACKLOG || !(copy = malloc(len ? len : 1))) {
		n->rx_dropped++;
		return;
	}
	memcpy(copy, frame, len);
	slot = (n->bl_head + n->bl_count) % NET_BACKLOG;
	n->backlog[slot].data = copy;
	n->backlog[slot].len = len;
	n->bl_count++;
}

/* The guest added receive buffers: send what waited. */
static void drain_backlog(struct net *n)
{
	while (n->bl_count) {
		unsigned h = n->bl_head;
		if (!to_guest(n, n->backlog[h].data, n->backlog[h].len))
			break;
		free(n->backlog[h].data);
		n->backlog[h].data = NULL;
		n->bl_head = (h + 1) % NET_BACKLOG;
		n->bl_count--;
	}
}

static void transmit(struct net *n)
{
	struct vdev *d = n->dev;
	struct virtq *q = &d->q[NET_TX].vq;
	struct virtq_chain c;

	while (virtq_pop(q, &c) > 0) {
		uint64_t flen = c.read_len > NET_HDR_LEN ? c.read_len - NET_HDR_LEN : 0;
		if (c.read_len < NET_HDR_LEN + ETH_HLEN || flen > NET_FRAME_MAX) {
			n->tx_dropped++;
		} else {
			size_t len = iov_to_buf(c.iov, c.nread, NET_HDR_LEN, n->scratch, (size_t)flen);
			if (n->hook && n->hook(n, NET_DIR_TX, n->scratch, &len, NET_FRAME_MAX)) {
				n->hook_dropped++;
			} else {
				n->tx_frames++, n->tx_bytes += (int64_t)len;
				if (n->port.sw)
					sw_input(&n->port, n->scratch, len);
				if (n->tap_fd >= 0 && write(n->tap_fd, n->scratch, len) != (ssize_t)len)
					n->tx_dropped++;    /* the host's queue is full */
				if (n->user)
					slink_send(n->user, n->scratch, len);
			}
		}
		virtq_push(q, c.head, 0);
		virtq_chain_release(&c);
	}
	vdev_interrupt(d, NET_TX);
}

static void net_notify(struct vdev *d, unsigned qi)
{
	struct net *n = d->backend_data;

	n->dev = d;
	if (qi == NET_TX)
		transmit(n);
	else
		drain_backlog(n);
}

int net_open_tap(struct net *n, const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd;

	if (strlen(name) >= IFNAMSIZ)
		return errbuf_set(err, errlen, "tap %s: a name of at most %d bytes", name, IFNAMSIZ - 1);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errbuf_set(err, errlen, "tap %s: /dev/net/tun: %s", name, strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return errbuf_set(err, errlen, "tap %s: %s%s", name, strerror(e),
		                  e == EPERM ? " (a tap needs root or CAP_NET_ADMIN)" : "");
	}
	n->tap_fd = fd;
	memcpy(n->tap_name, ifr.ifr_name, sizeof(n->tap_name) - 1);
	return 0;
}

int net_open_user(struct net *n, const char *const *forwards, unsigned nforwards,
                  int sandbox, char *err, size_t errlen)
{
	n->user = slink_new(forwards, nforwards, sandbox, err, errlen);
	return n->user ? 0 : -1;
}

static int net_pollfd(struct vdev *d)
{
	const struct net *n = d->backend_data;
	if (!n)
		return -1;
	return n->user ? slink_fd(n->user) : n->tap_fd;
}

/* The tap has frames for the guest: take them all (a bounded number per
 * call, so one busy host side cannot starve the loop). */
static void net_ready(struct vdev *d)
{
	struct net *n = d->backend_data;
	int i;

	if (n && n->user) {
		size_t len;
		slink_drain_wakeup(n->user);
		/* All of them: the wakeup is spent (the queue holds at most 512). */
		while ((len = slink_recv(n->user, n->scratch, NET_FRAME_MAX)))
			net_deliver(n, n->scratch, len);
		return;
	}
	for (i = 0; n && i < 256; i++) {
		ssize_t got = read(n->tap_fd, n->scratch, NET_FRAME_MAX);
		if (got <= 0)
			break;
		net_deliver(n, n->scratch, (size_t)got);
	}
}

static int net_field(struct vdev *d, const char *name, int64_t *v)
{
	static const struct vdev_counter counters[] = {
		{ "tx_frames", offsetof(struct net, tx_frames) },
		{ "tx_bytes", offsetof(struct net, tx_bytes) },
		{ "rx_frames", offsetof(struct net, rx_frames) },
		{ "rx_bytes", offsetof(struct net, rx_bytes) },
		{ "rx_dropped", offsetof(struct net, rx_dropped) },
		{ "tx_dropped", offsetof(struct net, tx_dropped) },
		{ "hook_dropped", offsetof(struct net, hook_dropped) },
	};
	return vdev_counter(d->backend_data, counters, sizeof(counters) / sizeof(counters[0]), name, v);
}

static void net_destroy(struct vdev *d)
{
	net_free(d->backend_data);
	d->backend_data = NULL;
}

const struct vdev_backend net_backend = {
	.name = "net",
	.notify = net_notify,
	.field = net_field,
	.destroy = net_destroy,
	.pollfd = net_pollfd,
	.ready = net_ready,
};
