/*
 * vhost_user.c - a vhost-user backend: one virtio device served over a
 * unix socket to a frontend that owns the driver and the memory.
 *
 * User-mode Linux has no hardware to trap on.  Its virtio_uml driver
 * instead connects to a socket per device and describes everything a
 * virtio-mmio driver would have written to registers as messages: the
 * features it takes, where its RAM is (as file descriptors we map), each
 * ring's size, addresses and starting index, and one eventfd per ring to
 * kick us with plus one pipe per ring to call it back through.  After
 * that the rings are ordinary split virtqueues in shared memory, and the
 * same struct vdev that sits behind virtio-mmio sits behind this.
 *
 * The frontend is as untrusted as a guest.  Every message is checked:
 * its header, its size against the request's exact payload, the number
 * of file descriptors it carries, each ring index, each address against
 * the memory table, each region against the file that backs it.  A
 * message that breaks a rule drops the connection with the reason; the
 * device is reset and we go back to listening.  Nothing a peer sends
 * stops the process, and no read waits on a peer for long: the socket
 * has a one-second timeout, so half a message is a dropped connection,
 * not a hang.
 *
 * Everything here runs on the thread that polls (the Lua thread): a kick
 * becomes vdev_notify(), and the device's interrupts come back through
 * dev->on_interrupt to the ring's call fd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost_user.h"
#include "virtio.h"

#define VU_VERSION        1u
#define VU_FLAG_REPLY     (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
#define VU_VRING_INDEX_MASK 0xffu
#define VU_VRING_NOFD     (1u << 8)
#define VU_HEADER_SIZE    12
#define VU_PAYLOAD_MAX    512
#define VU_CONFIG_MAX     256
#define VU_MAX_FDS        VU_MAX_REGIONS
#define VU_PAGE           4096u

/* Backend-to-frontend requests (on the backend channel). */
#define VU_BACKEND_CONFIG_CHANGE 2
#define VU_BACKEND_VRING_CALL    4

#define VU_PROTOCOL_OURS ((1ULL << VU_PROTOCOL_F_REPLY_ACK) | \
                          (1ULL << VU_PROTOCOL_F_BACKEND_REQ) | \
                          (1ULL << VU_PROTOCOL_F_CONFIG) | \
                          (1ULL << VU_PROTOCOL_F_INBAND_NOTIFICATIONS))

struct vu_msg {
	uint32_t request, flags, size;
	uint8_t payload[VU_PAYLOAD_MAX];
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

static const char *const request_names[VU_REQUEST__END] = {
	[VU_GET_FEATURES] = "GET_FEATURES", [VU_SET_FEATURES] = "SET_FEATURES",
	[VU_SET_OWNER] = "SET_OWNER", [VU_RESET_OWNER] = "RESET_OWNER",
	[VU_SET_MEM_TABLE] = "SET_MEM_TABLE", [VU_SET_LOG_BASE] = "SET_LOG_BASE",
	[VU_SET_LOG_FD] = "SET_LOG_FD", [VU_SET_VRING_NUM] = "SET_VRING_NUM",
	[VU_SET_VRING_ADDR] = "SET_VRING_ADDR", [VU_SET_VRING_BASE] = "SET_VRING_BASE",
	[VU_GET_VRING_BASE] = "GET_VRING_BASE", [VU_SET_VRING_KICK] = "SET_VRING_KICK",
	[VU_SET_VRING_CALL] = "SET_VRING_CALL", [VU_SET_VRING_ERR] = "SET_VRING_ERR",
	[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM", [VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD", [VU_GET_CONFIG] = "GET_CONFIG",
	[VU_SET_CONFIG] = "SET_CONFIG", [VU_VRING_KICK] = "VRING_KICK",
};

const char *vu_request_name(uint32_t req)
{
	if (req < VU_REQUEST__END && request_names[req])
		return request_names[req];
	return "unknown request";
}

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A write that must not raise SIGPIPE when the reader has gone. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	ssize_t n;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	if (n < 0 && errno == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return n;
}

/* The device raised an interrupt: tell the frontend through the ring's
 * call fd (UML's is a pipe: 8 bytes, as if it were an eventfd), or
 * in-band when the frontend asked for that. */
static void send_backend(struct vu_server *s, uint32_t req, uint32_t a, uint32_t b)
{
	uint8_t m[VU_HEADER_SIZE + 8];
	put32(m, req);
	put32(m + 4, VU_VERSION);
	put32(m + 8, 8);
	put32(m + 12, a);
	put32(m + 16, b);
	/* UML's channel is a pipe, not a socket: write(), not send(). */
	if (write_nosigpipe(s->backend_fd, m, sizeof(m)) != (ssize_t)sizeof(m) && errno != EAGAIN)
		close_fd(&s->backend_fd);
}

static void on_interrupt(struct vdev *d, int q)
{
	struct vu_server *s = d->transport;
	uint64_t one = 1;

	if (!s || s->conn_fd < 0)
		return;
	if (q < 0) {
		if (s->backend_fd >= 0 && (s->protocol & (1ULL << VU_PROTOCOL_F_CONFIG)))
			send_backend(s, VU_BACKEND_CONFIG_CHANGE, 0, 0);
		return;
	}
	if (s->ring[q].call_fd >= 0) {
		/* A full pipe means a wakeup is pending already. */
		if (write_nosigpipe(s->ring[q].call_fd, &one, sizeof(one)) < 0 && errno == EPIPE)
			close_fd(&s->ring[q].call_fd);
	} else if (s->backend_fd >= 0 &&
	           (s->protocol & (1ULL << VU_PROTOCOL_F_INBAND_NOTIFICATIONS))) {
		send_backend(s, VU_BACKEND_VRING_CALL, (uint32_t)q, 0);
	}
}

int vu_listen(struct vu_server *s, const char *path, struct vdev *dev,
              struct memory *mem, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	unsigned q;

	memset(s, 0, sizeof(*s));
	s->listen_fd = s->conn_fd = s->backend_fd = -1;
	for (q = 0; q < VDEV_MAX_QUEUES; q++)
		s->ring[q].kick_fd = s->ring[q].call_fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path longer than %zu bytes", path,
		         sizeof(sa.sun_path) - 1);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	strcpy(sa.sun_path, path);
	strcpy(s->path, path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(s->listen_fd, 1) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close_fd(&s->listen_fd);
		return -1;
	}
	s->dev = dev;
	s->mem = mem;
	dev->transport = s;
	dev->on_interrupt = on_interrupt;
	return 0;
}

int vu_pollfds(const struct vu_server *s, struct pollfd *pfd)
{
	int n = 0;
	unsigned q;

	if (s->conn_fd >= 0) {
		pfd[n++] = (struct pollfd){ s->conn_fd, POLLIN, 0 };
		for (q = 0; q < s->dev->nqueues; q++)
			if (s->ring[q].kick_fd >= 0 && s->ring[q].started)
				pfd[n++] = (struct pollfd){ s->ring[q].kick_fd, POLLIN, 0 };
		if (vdev_pollfd(s->dev) >= 0)
			pfd[n++] = (struct pollfd){ vdev_pollfd(s->dev), POLLIN, 0 };
	} else if (s->listen_fd >= 0) {
		pfd[n++] = (struct pollfd){ s->listen_fd, POLLIN, 0 };
	}
	return n;
}

/* Forget the frontend's memory: unmap it, empty the table. */
static void unmap_all(struct vu_server *s)
{
	memory_destroy(s->mem);
	memory_init(s->mem);
	s->nmap = 0;
}

void vu_disconnect(struct vu_server *s, const char *why)
{
	unsigned q;

	if (s->conn_fd < 0)
		return;
	if (why) {
		s->drops++;
		snprintf(s->last_error, sizeof(s->last_error), "%s", why);
		if (s->on_drop)
			s->on_drop(s, why);
	}
	close_fd(&s->conn_fd);
	close_fd(&s->backend_fd);
	for (q = 0; q < VDEV_MAX_QUEUES; q++) {
		close_fd(&s->ring[q].kick_fd);
		close_fd(&s->ring[q].call_fd);
		memset(&s->ring[q], 0, sizeof(s->ring[q]));
		s->ring[q].kick_fd = s->ring[q].call_fd = -1;
	}
	/* Reset the device before its memory goes away. */
	if (s->dev->status)
		vdev_set_status(s->dev, 0);
	else
		vdev_reset(s->dev);
	unmap_all(s);
	s->features = s->protocol = 0;
	s->owned = 0;
}

void vu_close(struct vu_server *s)
{
	vu_disconnect(s, NULL);
	if (s->listen_fd >= 0) {
		close_fd(&s->listen_fd);
		unlink(s->path);
	}
	if (s->dev && s->dev->transport == s) {
		s->dev->transport = NULL;
		s->dev->on_interrupt = NULL;
	}
}

static void accept_peer(struct vu_server *s)
{
	struct timeval tv = { 1, 0 };
	unsigned q;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* Half a message must not hold us up: reads and writes time out. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	s->conn_fd = fd;
	s->connections++;
	vdev_attach(s->dev, s->mem);
	/* Over vhost-user the frontend picks each ring's size (UML: 256);
	 * the ring rules still bound it. */
	for (q = 0; q < s->dev->nqueues; q++)
		s->dev->q[q].num_max = VIRTQ_MAX_SIZE;
}

/* Read exactly len bytes, or fail (EOF, error, timeout). */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void close_msg_fds(struct vu_msg *m)
{
	unsigned i;
	for (i = 0; i < m->nfds; i++)
		close_fd(&m->fds[i]);
	m->nfds = 0;
}

/* One message: 1, 0 at a clean EOF, or -1 with the reason in why. */
static int recv_msg(struct vu_server *s, struct vu_msg *m, char *why, size_t whylen)
{
	uint8_t hdr[VU_HEADER_SIZE];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	} control;
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	                     .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *c;
	ssize_t n;

	m->nfds = 0;
	do
		n = recvmsg(s->conn_fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0) {
		snprintf(why, whylen, "reading a message: %s", strerror(errno));
		return -1;
	}
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k, count;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < count && m->nfds < VU_MAX_FDS; k++)
			memcpy(&m->fds[m->nfds++], CMSG_DATA(c) + k * sizeof(int), sizeof(int));
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		close_msg_fds(m);
		snprintf(why, whylen, "a message carried more than %d file descriptors", VU_MAX_FDS);
		return -1;
	}
	if ((size_t)n < sizeof(hdr) && read_full(s->conn_fd, hdr + n, sizeof(hdr) - (size_t)n) < 0) {
		close_msg_fds(m);
		snprintf(why, whylen, "truncated message header");
		return -1;
	}
	m->request = get32(hdr);
	m->flags = get32(hdr + 4);
	m->size = get32(hdr + 8);
	if ((m->flags & 3u) != VU_VERSION || (m->flags & VU_FLAG_REPLY)) {
		close_msg_fds(m);
		snprintf(why, whylen, "%s: bad header flags 0x%" PRIx32 " (version 1, not a reply)",
		         vu_request_name(m->request), m->flags);
		return -1;
	}
	if (m->size > VU_PAYLOAD_MAX) {
		close_msg_fds(m);
		snprintf(why, whylen, "%s: payload of %" PRIu32 " bytes (at most %d)",
		         vu_request_name(m->request), m->size, VU_PAYLOAD_MAX);
		return -1;
	}
	if (m->size && read_full(s->conn_fd, m->payload, m->size) < 0) {
		close_msg_fds(m);
		snprintf(why, whylen, "%s: truncated payload (%" PRIu32 " bytes announced)",
		         vu_request_name(m->request), m->size);
		return -1;
	}
	return 1;
}

static int reply(struct vu_server *s, const struct vu_msg *m, const void *payload, uint32_t len)
{
	uint8_t buf[VU_HEADER_SIZE + VU_PAYLOAD_MAX];
	size_t total = VU_HEADER_SIZE + len;

	put32(buf, m->request);
	put32(buf + 4, VU_VERSION | VU_FLAG_REPLY);
	put32(buf + 8, len);
	memcpy(buf + VU_HEADER_SIZE, payload, len);
	return send(s->conn_fd, buf, total, MSG_NOSIGNAL) == (ssize_t)total ? 0 : -1;
}

static int reply_u64(struct vu_server *s, const struct vu_msg *m, uint64_t v)
{
	uint8_t p[8];
	put64(p, v);
	return reply(s, m, p, 8);
}

/* The frontend's address of a ring part -> guest-physical, or -1. */
static int translate(const struct vu_server *s, uint64_t user, uint64_t *gpa)
{
	unsigned i;
	for (i = 0; i < s->nmap; i++)
		if (user >= s->map[i].user && user - s->map[i].user < s->map[i].size) {
			*gpa = s->map[i].gpa + (user - s->map[i].user);
			return 0;
		}
	return -1;
}

/* Start ring q once the frontend has told us all of it. */
static void maybe_start(struct vu_server *s, unsigned q)
{
	struct vu_ring *r = &s->ring[q];
	struct vdev *d = s->dev;

	if (r->started || !r->enabled || !r->have_addr || !r->num || !s->nmap)
		return;
	vdev_set_queue(d, q, r->num, r->desc, r->avail, r->used);
	vdev_set_queue_ready(d, q, 1);
	if (!d->q[q].ready)
		return;           /* the layout broke a ring rule: NEEDS_RESET */
	virtq_set_base(&d->q[q].vq, r->base);
	r->started = 1;
	/* vhost-user has no status register: the first running ring is
	 * when the driver is as far as DRIVER_OK. */
	if (!(d->status & VIRTIO_STATUS_DRIVER_OK))
		vdev_set_status(d, (uint8_t)(d->status | VIRTIO_STATUS_DRIVER_OK));
}

static void stop_ring(struct vu_server *s, unsigned q)
{
	struct vu_ring *r = &s->ring[q];
	if (r->started) {
		r->base = s->dev->q[q].vq.last_avail;
		vdev_set_queue_ready(s->dev, q, 0);
	}
	r->started = 0;
	r->enabled = 0;
}

/* Stop every ring (memory is about to change, or the owner is reset). */
static void stop_all(struct vu_server *s)
{
	unsigned q;
	for (q = 0; q < s->dev->nqueues; q++)
		if (s->ring[q].started) {
			stop_ring(s, q);
			s->ring[q].enabled = 1;   /* it resumes with the new table */
		}
}

static void start_all(struct vu_server *s)
{
	unsigned q;
	for (q = 0; q < s->dev->nqueues; q++)
		maybe_start(s, q);
}

#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)

static int set_mem_table(struct vu_server *s, struct vu_msg *m, char *why, size_t whylen)
{
	uint32_t n, i, j;

	if (m->size < 8)
		BAD("SET_MEM_TABLE: payload of %" PRIu32 " bytes, too short for a table", m->size);
	n = get32(m->payload);
	if (n == 0 || n > VU_MAX_REGIONS)
		BAD("SET_MEM_TABLE: %" PRIu32 " regions (1 to %d)", n, VU_MAX_REGIONS);
	/* Frontends send room for more regions than they fill (UML: 2). */
	if (m->size < 8 + 32 * n || m->size > 8 + 32 * VU_MAX_REGIONS || (m->size - 8) % 32)
		BAD("SET_MEM_TABLE: payload of %" PRIu32 " bytes for %" PRIu32 " regions", m->size, n);
	if (m->nfds != n)
		BAD("SET_MEM_TABLE: %u file descriptors for %" PRIu32 " regions", m->nfds, n);
	for (i = 0; i < n; i++) {
		const uint8_t *r = m->payload + 8 + 32 * i;
		uint64_t gpa = get64(r), size = get64(r + 8), user = get64(r + 16), off = get64(r + 24);
		struct stat st;

		if (size == 0 || gpa + size < gpa || user + size < user || off + size < off)
			BAD("SET_MEM_TABLE: region %" PRIu32 " is empty or wraps around", i);
		if (gpa % VU_PAGE || size % VU_PAGE || off % VU_PAGE)
			BAD("SET_MEM_TABLE: region %" PRIu32 " is not page-aligned", i);
		if (fstat(m->fds[i], &st) < 0 || !(S_ISREG(st.st_mode)))
			BAD("SET_MEM_TABLE: region %" PRIu32 " is not backed by a file", i);
		/* Beyond the end of the file a touch would be SIGBUS. */
		if ((uint64_t)st.st_size < off + size)
			BAD("SET_MEM_TABLE: region %" PRIu32 " runs past the end of its file "
			    "(%" PRIu64 " + %" PRIu64 " > %jd bytes)", i, off, size, (intmax_t)st.st_size);
		for (j = 0; j < i; j++) {
			const uint8_t *o = m->payload + 8 + 32 * j;
			uint64_t ou = get64(o + 16), os = get64(o + 8);
			if (user < ou + os && ou < user + size)
				BAD("SET_MEM_TABLE: regions %" PRIu32 " and %" PRIu32 " overlap", j, i);
		}
	}
	/* Valid: replace the old table (rings stop while it changes). */
	stop_all(s);
	unmap_all(s);
	for (i = 0; i < n; i++) {
		const uint8_t *r = m->payload + 8 + 32 * i;
		uint64_t gpa = get64(r), size = get64(r + 8), user = get64(r + 16), off = get64(r + 24);
		int rc = memory_add_region(s->mem, gpa, size, m->fds[i], off);
		if (rc < 0) {
			unmap_all(s);
			BAD("SET_MEM_TABLE: region %" PRIu32 " at 0x%" PRIx64 ": %s", i, gpa,
			    rc == -EINVAL ? "overlaps another" : strerror(-rc));
		}
		s->map[i].user = user;
		s->map[i].gpa = gpa;
		s->map[i].size = size;
	}
	/* The mappings hold the files; the fds are not needed. */
	for (i = 0; i < s->mem->nregions; i++)
		s->mem->region[i].fd = -1;
	s->nmap = n;
	start_all(s);
	return 0;
}

/* The ring index of a vring_state or a fd message; -1 if bad. */
static int ring_index(const struct vu_server *s, uint32_t index)
{
	return index < s->dev->nqueues ? (int)index : -1;
}

/* Check a SET_VRING_KICK/CALL/ERR: the ring index, and one fd unless
 * the no-fd bit says the frontend has none.  The ring, or -1. */
static int take_fd(struct vu_server *s, struct vu_msg *m, char *why, size_t whylen)
{
	uint64_t v = get64(m->payload);
	unsigned want = (v & VU_VRING_NOFD) ? 0 : 1;
	const char *name = vu_request_name(m->request);
	int q = ring_index(s, (uint32_t)(v & VU_VRING_INDEX_MASK));

	if (q < 0)
		BAD("%s: no ring %" PRIu64 " (the device has %u)", name, v & VU_VRING_INDEX_MASK,
		    s->dev->nqueues);
	if (v & ~(uint64_t)(VU_VRING_INDEX_MASK | VU_VRING_NOFD))
		BAD("%s: unknown bits in 0x%" PRIx64, name, v);
	if (m->nfds != want)
		BAD("%s: %u file descriptors (%u expected)", name, m->nfds, want);
	return q;
}

static int handle(struct vu_server *s, struct vu_msg *m, int *replied, char *why, size_t whylen)
{
	const char *name = vu_request_name(m->request);
	struct vdev *d = s->dev;
	uint32_t want = 0;
	unsigned takes_fds = 0;
	int q;

	/* The exact payload each request has; fds are checked per case. */
	switch (m->request) {
	case VU_SET_FEATURES: case VU_SET_PROTOCOL_FEATURES: case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL: case VU_SET_VRING_ERR:
		want = 8; break;
	case VU_SET_VRING_NUM: case VU_SET_VRING_BASE: case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE: case VU_VRING_KICK:
		want = 8; break;
	case VU_SET_VRING_ADDR:
		want = 40; break;
	case VU_SET_MEM_TABLE: case VU_GET_CONFIG: case VU_SET_CONFIG:
		want = m->size; break;    /* variable: checked below */
	default:
		want = 0;
	}
	if (m->size != want)
		BAD("%s: payload of %" PRIu32 " bytes (%" PRIu32 " expected)", name, m->size, want);
	if (m->request == VU_SET_MEM_TABLE || m->request == VU_SET_VRING_KICK ||
	    m->request == VU_SET_VRING_CALL || m->request == VU_SET_VRING_ERR ||
	    m->request == VU_SET_BACKEND_REQ_FD)
		takes_fds = 1;
	if (!takes_fds && m->nfds)
		BAD("%s: carries %u file descriptors (none expected)", name, m->nfds);

	switch (m->request) {
	case VU_GET_FEATURES:
		*replied = 1;
		return reply_u64(s, m, d->offered | (1ULL << VU_F_PROTOCOL_FEATURES));
	case VU_SET_FEATURES: {
		uint64_t f = get64(m->payload);
		if (f & ~(d->offered | (1ULL << VU_F_PROTOCOL_FEATURES)))
			BAD("SET_FEATURES: 0x%" PRIx64 " has bits that were not offered (0x%" PRIx64 ")",
			    f, d->offered);
		/* No status register: taking features is ACKNOWLEDGE, DRIVER
		 * and FEATURES_OK in one step.  Taking them again starts the
		 * device over, but not the rings: vhost-user leaves them
		 * running, so they stop here (keeping their place) and go on
		 * under the new features, as across a new memory table. */
		if (d->status) {
			stop_all(s);
			vdev_set_status(d, 0);
		}
		vdev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		vdev_set_driver_features(d, f & ~(1ULL << VU_F_PROTOCOL_FEATURES));
		vdev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		                   VIRTIO_STATUS_FEATURES_OK);
		if (!(d->status & VIRTIO_STATUS_FEATURES_OK))
			BAD("SET_FEATURES: 0x%" PRIx64 " lacks VIRTIO_F_VERSION_1", f);
		s->features = f;
		start_all(s);
		return 0;
	}
	case VU_SET_OWNER:
		s->owned = 1;
		return 0;
	case VU_RESET_OWNER:
		stop_all(s);
		if (d->status)
			vdev_set_status(d, 0);
		s->owned = 0;
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		*replied = 1;
		return reply_u64(s, m, VU_PROTOCOL_OURS);
	case VU_SET_PROTOCOL_FEATURES: {
		uint64_t p = get64(m->payload);
		if (p & ~VU_PROTOCOL_OURS)
			BAD("SET_PROTOCOL_FEATURES: 0x%" PRIx64 " has bits that were not offered", p);
		s->protocol = p;
		return 0;
	}
	case VU_GET_QUEUE_NUM:
		*replied = 1;
		return reply_u64(s, m, d->nqueues);
	case VU_SET_MEM_TABLE:
		return set_mem_table(s, m, why, whylen);
	case VU_SET_VRING_NUM: case VU_SET_VRING_BASE: case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE: case VU_VRING_KICK: {
		uint32_t index = get32(m->payload), num = get32(m->payload + 4);
		q = ring_index(s, index);
		if (q < 0)
			BAD("%s: no ring %" PRIu32 " (the device has %u)", name, index, d->nqueues);
		if (m->request == VU_SET_VRING_NUM) {
			if (num == 0 || num > VIRTQ_MAX_SIZE || (num & (num - 1)))
				BAD("SET_VRING_NUM: ring %d size %" PRIu32 " (a power of 2, at most %d)",
				    q, num, VIRTQ_MAX_SIZE);
			if (s->ring[q].started)
				BAD("SET_VRING_NUM: ring %d is running", q);
			s->ring[q].num = num;
		} else if (m->request == VU_SET_VRING_BASE) {
			if (num > 0xffff)
				BAD("SET_VRING_BASE: ring %d index %" PRIu32 " (at most 65535)", q, num);
			if (s->ring[q].started)
				BAD("SET_VRING_BASE: ring %d is running", q);
			s->ring[q].base = (uint16_t)num;
		} else if (m->request == VU_GET_VRING_BASE) {
			uint8_t p[8];
			stop_ring(s, q);
			put32(p, (uint32_t)q);
			put32(p + 4, s->ring[q].base);
			*replied = 1;
			return reply(s, m, p, 8);
		} else if (m->request == VU_SET_VRING_ENABLE) {
			if (num > 1)
				BAD("SET_VRING_ENABLE: ring %d state %" PRIu32 " (0 or 1)", q, num);
			if (!num)
				stop_ring(s, q);
			else {
				s->ring[q].enabled = 1;
				maybe_start(s, q);
			}
		} else {
			if (!(s->protocol & (1ULL << VU_PROTOCOL_F_INBAND_NOTIFICATIONS)))
				BAD("VRING_KICK: in-band notifications were not agreed");
			vdev_notify(d, (unsigned)q);
		}
		return 0;
	}
	case VU_SET_VRING_ADDR: {
		uint32_t index = get32(m->payload);
		uint64_t desc = get64(m->payload + 8), used = get64(m->payload + 16),
		         avail = get64(m->payload + 24);
		struct vu_ring *r;
		q = ring_index(s, index);
		if (q < 0)
			BAD("SET_VRING_ADDR: no ring %" PRIu32 " (the device has %u)", index, d->nqueues);
		r = &s->ring[q];
		if (r->started)
			BAD("SET_VRING_ADDR: ring %d is running", q);
		if (translate(s, desc, &r->desc) < 0)
			BAD("SET_VRING_ADDR: ring %d descriptor table 0x%" PRIx64 " is not in the memory table", q, desc);
		if (translate(s, avail, &r->avail) < 0)
			BAD("SET_VRING_ADDR: ring %d available ring 0x%" PRIx64 " is not in the memory table", q, avail);
		if (translate(s, used, &r->used) < 0)
			BAD("SET_VRING_ADDR: ring %d used ring 0x%" PRIx64 " is not in the memory table", q, used);
		r->have_addr = 1;
		maybe_start(s, q);
		return 0;
	}
	case VU_SET_VRING_KICK: case VU_SET_VRING_CALL: case VU_SET_VRING_ERR: {
		struct vu_ring *r;
		q = take_fd(s, m, why, whylen);
		if (q < 0)
			return -1;
		if (m->request == VU_SET_VRING_ERR)
			return 0;         /* we never report ring errors this way */
		r = &s->ring[q];
		if (m->request == VU_SET_VRING_CALL) {
			close_fd(&r->call_fd);
			if (m->nfds) {
				r->call_fd = m->fds[0];
				m->nfds = 0;
				fcntl(r->call_fd, F_SETFL, O_NONBLOCK);
			}
			return 0;
		}
		close_fd(&r->kick_fd);
		if (m->nfds) {
			r->kick_fd = m->fds[0];
			m->nfds = 0;
			fcntl(r->kick_fd, F_SETFL, O_NONBLOCK);
		}
		/* Without protocol features a ring starts with its kick fd. */
		if (!(s->features & (1ULL << VU_F_PROTOCOL_FEATURES)))
			r->enabled = 1;
		maybe_start(s, q);
		return 0;
	}
	case VU_SET_BACKEND_REQ_FD:
		if (!(s->protocol & (1ULL << VU_PROTOCOL_F_BACKEND_REQ)))
			BAD("SET_BACKEND_REQ_FD: the backend channel was not agreed");
		if (m->nfds != 1)
			BAD("SET_BACKEND_REQ_FD: %u file descriptors (1 expected)", m->nfds);
		close_fd(&s->backend_fd);
		s->backend_fd = m->fds[0];
		m->nfds = 0;
		fcntl(s->backend_fd, F_SETFL, O_NONBLOCK);
		return 0;
	case VU_GET_CONFIG: case VU_SET_CONFIG: {
		uint8_t p[12 + VU_CONFIG_MAX];
		uint32_t off, len;
		if (!(s->protocol & (1ULL << VU_PROTOCOL_F_CONFIG)))
			BAD("%s: config access was not agreed", name);
		if (m->size < 12)
			BAD("%s: payload of %" PRIu32 " bytes, too short", name, m->size);
		off = get32(m->payload);
		len = get32(m->payload + 4);
		if (len > VU_CONFIG_MAX || off > VU_CONFIG_MAX - len)
			BAD("%s: %" PRIu32 " bytes at offset %" PRIu32 " (config space is %d bytes)",
			    name, len, off, VU_CONFIG_MAX);
		if (m->size != 12 + len)
			BAD("%s: payload of %" PRIu32 " bytes for %" PRIu32 " config bytes", name, m->size, len);
		if (m->request == VU_SET_CONFIG) {
			vdev_config_write(d, off, m->payload + 12, len);
			return 0;
		}
		/* What the device has, and zeros past its end: the frontend
		 * reads the size it knows, which may be more than we fill. */
		memcpy(p, m->payload, 12);
		memset(p + 12, 0, len);
		if (off < d->config_len)
			memcpy(p + 12, d->config + off, len < d->config_len - off ? len : d->config_len - off);
		*replied = 1;
		return reply(s, m, p, 12 + len);
	}
	default:
		BAD("%s (%" PRIu32 ") is not supported", name, m->request);
	}
}

#undef BAD

static void serve_conn(struct vu_server *s)
{
	struct vu_msg m;
	char why[160];
	int rc, replied = 0;

	rc = recv_msg(s, &m, why, sizeof(why));
	if (rc == 0) {
		vu_disconnect(s, NULL);    /* the frontend went away */
		return;
	}
	if (rc < 0) {
		vu_disconnect(s, why);
		return;
	}
	s->messages++;
	if (m.request != VU_SET_OWNER && m.request != VU_GET_FEATURES &&
	    m.request != VU_GET_PROTOCOL_FEATURES && m.request != VU_SET_PROTOCOL_FEATURES &&
	    m.request != VU_GET_QUEUE_NUM && !s->owned) {
		close_msg_fds(&m);
		snprintf(why, sizeof(why), "%s before SET_OWNER", vu_request_name(m.request));
		vu_disconnect(s, why);
		return;
	}
	why[0] = 0;
	rc = handle(s, &m, &replied, why, sizeof(why));
	close_msg_fds(&m);
	if (rc < 0) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s: the reply could not be sent",
			         vu_request_name(m.request));
		vu_disconnect(s, why);
		return;
	}
	if (!replied && (m.flags & VU_FLAG_NEED_REPLY) &&
	    (s->protocol & (1ULL << VU_PROTOCOL_F_REPLY_ACK)) && reply_u64(s, &m, 0) < 0) {
		snprintf(why, sizeof(why), "%s: the acknowledgement could not be sent",
		         vu_request_name(m.request));
		vu_disconnect(s, why);
	}
}

void vu_serve(struct vu_server *s, const struct pollfd *pfd, int n)
{
	int k;
	unsigned q;

	for (k = 0; k < n; k++) {
		if (!pfd[k].revents)
			continue;
		if (pfd[k].fd == s->listen_fd && s->conn_fd < 0) {
			accept_peer(s);
			continue;
		}
		if (pfd[k].fd == s->conn_fd && s->conn_fd >= 0) {
			serve_conn(s);
			continue;
		}
		if (s->conn_fd >= 0 && pfd[k].fd == vdev_pollfd(s->dev)) {
			vdev_ready(s->dev);
			continue;
		}
		for (q = 0; q < s->dev->nqueues && s->conn_fd >= 0; q++) {
			uint64_t v;
			ssize_t got;
			if (pfd[k].fd != s->ring[q].kick_fd)
				continue;
			got = read(s->ring[q].kick_fd, &v, sizeof(v));
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
				/* Not an eventfd that works: stop watching it. */
				close_fd(&s->ring[q].kick_fd);
				continue;
			}
			if (got > 0)
				vdev_notify(s->dev, q);
		}
	}
}
