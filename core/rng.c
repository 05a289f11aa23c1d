/*
 * rng.c - virtio-rng (device id 4) fed by the host's getrandom.
 *
 * The driver offers chains of device-writable buffers; we fill each one
 * with random bytes and return it with the count written.  The ring's
 * own checks (virtq.c) have already kept every buffer inside guest
 * memory, so all that is left here is to fill and push.  Readable
 * buffers have no meaning for an rng: we leave them alone.  One chain is
 * capped at RNG_CHAIN_MAX bytes, so a guest asking for a huge chain gets
 * a short answer, which the protocol allows, rather than stalling vmlua.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/random.h>
#include "rng.h"

#define RNG_CHAIN_MAX (1u << 20)

/* Fill buf with random bytes; returns how many it got (len unless the
 * kernel refuses, which getrandom(2) does not do for len <= 32 MiB). */
static size_t fill(void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom((char *)buf + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static void rng_notify(struct vdev *d, unsigned qi)
{
	struct virtq *q = &d->q[qi].vq;
	struct virtq_chain c;

	while (virtq_pop(q, &c) > 0) {
		uint32_t written = 0;
		unsigned i;

		for (i = c.nread; i < c.niov && written < RNG_CHAIN_MAX; i++) {
			size_t want = c.iov[i].iov_len, got;
			if (want > RNG_CHAIN_MAX - written)
				want = RNG_CHAIN_MAX - written;
			got = fill(c.iov[i].iov_base, want);
			written += (uint32_t)got;
			if (got < want)
				break;
		}
		virtq_push(q, c.head, written);
		virtq_chain_release(&c);
	}
	vdev_interrupt(d, qi);
}

const struct vdev_backend rng_backend = {
	.name = "rng",
	.notify = rng_notify,
};
