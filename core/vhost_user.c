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
 * stops the process, and nothing waits on a peer:
 *
 *  - the socket is non-blocking.  A message is collected over as many
 *    poll rounds as it takes to arrive, and must be whole within a
 *    second of its first byte (a timerfd in the poll set says when it is
 *    late); a late message drops the connection.  A slow sender holds
 *    up its own connection, never the loop.
 *  - a kick fd must be an eventfd, a call fd an eventfd or a pipe; other
 *    files (/dev/zero is always readable) are refused.
 *  - one kick serves at most VU_BUDGET_CHAINS chains or VU_BUDGET_BYTES
 *    bytes; a ring with more waiting is marked pending and a re-arm
 *    eventfd makes the next poll round come back to it, after everyone
 *    else had their turn.
 *  - the frontend's RAM is a file it can truncate after we mapped it,
 *    and touching a page past its end is SIGBUS.  A region must be
 *    covered by its file when the table arrives (fstat) and no larger
 *    than VU_RAM_MAX in all.  Sealing (F_SEAL_SHRINK) would make the
 *    mapping safe for good, but UML shares an unsealed file from its
 *    TMPDIR that cannot even be sealed, so refusing unsealed regions
 *    would refuse UML.  Instead every access to the frontend's memory
 *    runs under memory.h's SIGBUS guard: the kick, the device's own
 *    fd and the ring accessors, so a truncation becomes NEEDS_RESET
 *    ("memory_gone") for the device and an error for a Lua script, and
 *    the process goes on.  Whether a region was sealed is recorded
 *    (Memory:regions()) for whoever wants to know.
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
#include <setjmp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost_user.h"
#include "virtio.h"

#define VU_VERSION        1u
#define VU_FLAG_REPLY     (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
#define VU_VRING_INDEX_MASK 0xffu
#define VU_VRING_NOFD     (1u << 8)
#define VU_CONFIG_MAX     256
#define VU_PAGE           4096u

/* How long one message may take to arrive, from its first byte. */
#define VU_MSG_DEADLINE_S 1
/* The most RAM a frontend may share: 64 GiB in all.  UML guests have a
 * few hundred MiB; a table claiming terabytes is an attack on our page
 * tables and our time, not a guest. */
#define VU_RAM_MAX        (64ULL << 30)
/* One kick's worth of work, at most: then the loop serves everything
 * else once and the ring gets another turn (fairness, see kick()). */
#define VU_BUDGET_CHAINS  256u
#define VU_BUDGET_BYTES   (8ULL << 20)

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
/* 1 when the message went out whole. */
static int send_backend(struct vu_server *s, uint32_t req, uint32_t a, uint32_t b)
{
	uint8_t m[VU_HEADER_SIZE + 8];
	put32(m, req);
	put32(m + 4, VU_VERSION);
	put32(m + 8, 8);
	put32(m + 12, a);
	put32(m + 16, b);
	/* UML's channel is a pipe, not a socket: write(), not send(). */
	if (write_nosigpipe(s->backend_fd, m, sizeof(m)) == (ssize_t)sizeof(m))
		return 1;
	if (errno != EAGAIN)
		close_fd(&s->backend_fd);
	return 0;
}

static void on_interrupt(struct vdev *d, int q)
{
	struct vu_server *s = d->transport;
	uint64_t one = 1;

	if (!s || s->conn_fd < 0)
		return;
	if (q < 0) {
		if (s->backend_fd >= 0 && (s->protocol & (1ULL << VU_PROTOCOL_F_CONFIG)) &&
		    send_backend(s, VU_BACKEND_CONFIG_CHANGE, 0, 0) && s->on_call)
			s->on_call(s->on_call_o);
		return;
	}
	if (s->ring[q].call_fd >= 0) {
		/* A full pipe means a wakeup is pending already. */
		if (write_nosigpipe(s->ring[q].call_fd, &one, sizeof(one)) < 0 && errno == EPIPE)
			close_fd(&s->ring[q].call_fd);
	} else if (s->backend_fd >= 0 &&
	           (s->protocol & (1ULL << VU_PROTOCOL_F_INBAND_NOTIFICATIONS))) {
		/* Each in-band call that went out is one its frontend's
		 * kernel answers on the calendar (calendar.h). */
		if (send_backend(s, VU_BACKEND_VRING_CALL, (uint32_t)q, 0) && s->on_call)
			s->on_call(s->on_call_o);
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
	s->timer_fd = s->rearm_fd = -1;
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
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->rearm_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->timer_fd < 0 || s->rearm_fd < 0) {
		snprintf(err, errlen, "%s: timerfd/eventfd: %s", path, strerror(errno));
		close_fd(&s->timer_fd);
		close_fd(&s->rearm_fd);
		close_fd(&s->listen_fd);
		unlink(path);
		return -1;
	}
	memory_guard_init();
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
		pfd[n++] = (struct pollfd){ s->timer_fd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ s->rearm_fd, POLLIN, 0 };
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

/* Forget the frontend's memory: unmap it, empty the table.  The
 * memory's generation moves on, so chains popped from it go stale. */
static void unmap_all(struct vu_server *s)
{
	memory_destroy(s->mem);
	s->nmap = 0;
}

/* Arm (1) or disarm (0) the deadline of the message being received. */
static void set_deadline(struct vu_server *s, int on)
{
	struct itimerspec it = { { 0, 0 }, { on ? VU_MSG_DEADLINE_S : 0, 0 } };
	uint64_t v;

	timerfd_settime(s->timer_fd, 0, &it, NULL);
	if (!on && read(s->timer_fd, &v, sizeof(v)) < 0)
		(void)0;          /* nothing had expired */
}

/* Throw away a half-received message and its fds. */
static void drop_partial(struct vu_server *s)
{
	unsigned i;
	for (i = 0; i < s->in.nfds; i++)
		close(s->in.fds[i]);
	s->in.nfds = 0;
	s->in.got = 0;
	set_deadline(s, 0);
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
	drop_partial(s);
	s->pending = 0;
	{
		uint64_t v;
		if (read(s->rearm_fd, &v, sizeof(v)) < 0)
			(void)0;  /* no re-arm was pending */
	}
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
	close_fd(&s->timer_fd);
	close_fd(&s->rearm_fd);
	if (s->dev && s->dev->transport == s) {
		s->dev->transport = NULL;
		s->dev->on_interrupt = NULL;
	}
}

static void accept_peer(struct vu_server *s)
{
	unsigned q;
	/* Non-blocking: we never wait on the peer, for reads (messages are
	 * collected across rounds) or writes (a peer that does not read
	 * its replies until the socket is full is dropped). */
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	s->conn_fd = fd;
	s->connections++;
	vdev_attach(s->dev, s->mem);
	/* Over vhost-user the frontend picks each ring's size (UML: 256);
	 * the ring rules still bound it. */
	for (q = 0; q < s->dev->nqueues; q++)
		s->dev->q[q].num_max = VIRTQ_MAX_SIZE;
}

static void close_msg_fds(struct vu_msg *m)
{
	unsigned i;
	for (i = 0; i < m->nfds; i++)
		close_fd(&m->fds[i]);
	m->nfds = 0;
}

/* Why the message being received is not whole (EOF or its deadline). */
static void truncated(const struct vu_server *s, const char *when, char *why, size_t whylen)
{
	if (s->in.got < VU_HEADER_SIZE)
		snprintf(why, whylen, "truncated message header (%s)", when);
	else
		snprintf(why, whylen, "%s: truncated payload (%" PRIu32 " bytes announced, %s)",
		         vu_request_name(get32(s->in.buf)), get32(s->in.buf + 8), when);
}

/* The header is whole: check it before waiting for a payload. */
static int check_header(const struct vu_server *s, char *why, size_t whylen)
{
	uint32_t request = get32(s->in.buf), flags = get32(s->in.buf + 4),
	         size = get32(s->in.buf + 8);

	if ((flags & 3u) != VU_VERSION || (flags & VU_FLAG_REPLY)) {
		snprintf(why, whylen, "%s: bad header flags 0x%" PRIx32 " (version 1, not a reply)",
		         vu_request_name(request), flags);
		return -1;
	}
	if (size > VU_PAYLOAD_MAX) {
		snprintf(why, whylen, "%s: payload of %" PRIu32 " bytes (at most %d)",
		         vu_request_name(request), size, VU_PAYLOAD_MAX);
		return -1;
	}
	return 0;
}

/*
 * Take what the socket has of the current message, without waiting:
 * 1 when it is whole (moved into m), 0 when more is to come, -2 at a
 * clean EOF (between messages), -1 with the reason in why.  We read no
 * further than the current message, so its fds are its own.  The
 * deadline starts with a message's first byte.
 */
static int recv_msg(struct vu_server *s, struct vu_msg *m, char *why, size_t whylen)
{
	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		} control;
		size_t want, total = VU_HEADER_SIZE;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		                     .msg_control = control.buf,
		                     .msg_controllen = sizeof(control.buf) };
		struct cmsghdr *c;
		ssize_t n;

		if (s->in.got >= VU_HEADER_SIZE)
			total += get32(s->in.buf + 8);    /* checked: <= VU_PAYLOAD_MAX */
		if (s->in.got == total)
			break;
		want = total - s->in.got;
		iov.iov_base = s->in.buf + s->in.got;
		iov.iov_len = want;
		n = recvmsg(s->conn_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;     /* the rest comes later, or the deadline does */
		if (n < 0) {
			snprintf(why, whylen, "reading a message: %s", strerror(errno));
			return -1;
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t k, count;
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (k = 0; k < count; k++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				if (s->in.nfds < VU_MAX_FDS)
					s->in.fds[s->in.nfds++] = fd;
				else {
					close(fd);
					mh.msg_flags |= MSG_CTRUNC;
				}
			}
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			snprintf(why, whylen, "a message carried more than %d file descriptors",
			         VU_MAX_FDS);
			return -1;
		}
		if (n == 0) {
			if (s->in.got == 0 && s->in.nfds == 0)
				return -2;
			truncated(s, "the frontend hung up", why, whylen);
			return -1;
		}
		if (s->in.got == 0)
			set_deadline(s, 1);
		s->in.got += (size_t)n;
		if (s->in.got == VU_HEADER_SIZE && check_header(s, why, whylen) < 0)
			return -1;
	}
	m->request = get32(s->in.buf);
	m->flags = get32(s->in.buf + 4);
	m->size = get32(s->in.buf + 8);
	memcpy(m->payload, s->in.buf + VU_HEADER_SIZE, m->size);
	memcpy(m->fds, s->in.fds, sizeof(int) * s->in.nfds);
	m->nfds = s->in.nfds;
	s->in.nfds = 0;
	s->in.got = 0;
	set_deadline(s, 0);
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
	uint64_t total = 0;
	int sealed[VU_MAX_REGIONS];

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
		if (size > VU_RAM_MAX - total)
			BAD("SET_MEM_TABLE: region %" PRIu32 " of %" PRIu64 " bytes makes more "
			    "than %llu bytes of RAM", i, size, (unsigned long long)VU_RAM_MAX);
		total += size;
		if (fstat(m->fds[i], &st) < 0 || !(S_ISREG(st.st_mode)))
			BAD("SET_MEM_TABLE: region %" PRIu32 " is not backed by a file", i);
		/* Beyond the end of the file a touch would be SIGBUS. */
		if ((uint64_t)st.st_size < off + size)
			BAD("SET_MEM_TABLE: region %" PRIu32 " runs past the end of its file "
			    "(%" PRIu64 " + %" PRIu64 " > %jd bytes)", i, off, size, (intmax_t)st.st_size);
		/* Sealed against shrinking, the file stays as big as it is
		 * now; unsealed (UML's), it may shrink later: the SIGBUS guard
		 * covers that (see the top of this file). */
		{
			int seals = fcntl(m->fds[i], F_GET_SEALS);
			sealed[i] = seals >= 0 && (seals & F_SEAL_SHRINK);
		}
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
		for (j = 0; j < s->mem->nregions; j++)
			if (s->mem->region[j].gpa == gpa)
				s->mem->region[j].sealed = sealed[i];
	}
	/* The mappings hold the files; the fds are not needed. */
	for (i = 0; i < s->mem->nregions; i++)
		s->mem->region[i].fd = -1;
	s->nmap = n;
	start_all(s);
	return 0;
}

/* Is fd an eventfd?  The kernel names its anonymous inode. */
static int is_eventfd(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = 0;
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static int is_pipe(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
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
	/* A kick fd we poll: an eventfd, which is readable only when
	 * kicked (/dev/zero always is: a busy loop).  A call fd we write
	 * 8 bytes to: an eventfd, or a pipe as UML's is. */
	if (want && m->request == VU_SET_VRING_KICK && !is_eventfd(m->fds[0]))
		BAD("SET_VRING_KICK: ring %d kick fd is not an eventfd", q);
	if (want && m->request == VU_SET_VRING_CALL && !is_eventfd(m->fds[0]) &&
	    !is_pipe(m->fds[0]))
		BAD("SET_VRING_CALL: ring %d call fd is neither an eventfd nor a pipe", q);
	return q;
}

/*
 * Run a device callback that touches the frontend's memory under the
 * SIGBUS guard: a frontend that truncated its file gets a device that
 * needs a reset, not a dead server.  Lua hooks called from in here run
 * with the guard suspended (vmlua_pcall_hook), so the jump below only
 * ever unwinds C: the ring code and the C device backends.
 */
static void device_guarded(struct vu_server *s, int q)
{
	struct memory_guard g;

	if (sigsetjmp(g.env, 0)) {
		vdev_fail(s->dev, VQ_MEMORY_GONE);
		return;
	}
	memory_guard_enter(&g);
	if (q >= 0)
		vdev_notify(s->dev, (unsigned)q);
	else
		vdev_ready(s->dev);
	memory_guard_leave(&g);
}

/*
 * Ring q was kicked: serve it, within a budget.  A frontend can queue
 * 32768 chains of a MiB each with one kick; served in one go that is
 * seconds in which no other connection, guest or timer is heard.  So
 * one turn takes at most VU_BUDGET_CHAINS chains or VU_BUDGET_BYTES;
 * what is left waits for the next poll round, which the re-arm eventfd
 * makes come at once.
 */
static void kick(struct vu_server *s, unsigned q)
{
	struct virtq *vq = &s->dev->q[q].vq;
	uint64_t one = 1;

	virtq_set_budget(vq, VU_BUDGET_CHAINS, VU_BUDGET_BYTES);
	device_guarded(s, (int)q);
	if (virtq_end_budget(vq) && s->conn_fd >= 0) {
		s->pending |= 1u << q;
		if (write(s->rearm_fd, &one, sizeof(one)) < 0)
			(void)0;  /* the counter is full: it is readable anyway */
	}
}

/* The re-arm eventfd fired: give each pending ring its next turn. */
static void serve_pending(struct vu_server *s)
{
	unsigned pending = s->pending, q;
	uint64_t v;

	if (read(s->rearm_fd, &v, sizeof(v)) < 0)
		(void)0;          /* nothing to clear */
	s->pending = 0;
	for (q = 0; q < s->dev->nqueues && s->conn_fd >= 0; q++)
		if ((pending & (1u << q)) && s->ring[q].started)
			kick(s, q);
}

/*
 * The requests, one short handler each.  A handler returns 0, or -1 with
 * why set; one that answers sets *replied (REPLY_ACK is then not sent).
 */
typedef int vu_handler(struct vu_server *s, struct vu_msg *m, int *replied,
                       char *why, size_t whylen);

static int h_get_features(struct vu_server *s, struct vu_msg *m, int *replied,
                          char *why, size_t whylen)
{
	(void)why, (void)whylen;
	*replied = 1;
	return reply_u64(s, m, s->dev->offered | (1ULL << VU_F_PROTOCOL_FEATURES));
}

static int h_set_features(struct vu_server *s, struct vu_msg *m, int *replied,
                          char *why, size_t whylen)
{
	struct vdev *d = s->dev;
	uint64_t f = get64(m->payload);

	(void)replied;
	if (f & ~(d->offered | (1ULL << VU_F_PROTOCOL_FEATURES)))
		BAD("SET_FEATURES: 0x%" PRIx64 " has bits that were not offered (0x%" PRIx64 ")",
		    f, d->offered);
	/* No status register: taking features is ACKNOWLEDGE, DRIVER and
	 * FEATURES_OK in one step.  Taking them again starts the device
	 * over, but not the rings: vhost-user leaves them running, so they
	 * stop here (keeping their place) and go on under the new features,
	 * as across a new memory table. */
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

static int h_set_owner(struct vu_server *s, struct vu_msg *m, int *replied,
                       char *why, size_t whylen)
{
	(void)m, (void)replied, (void)why, (void)whylen;
	s->owned = 1;
	return 0;
}

static int h_reset_owner(struct vu_server *s, struct vu_msg *m, int *replied,
                         char *why, size_t whylen)
{
	(void)m, (void)replied, (void)why, (void)whylen;
	stop_all(s);
	if (s->dev->status)
		vdev_set_status(s->dev, 0);
	s->owned = 0;
	return 0;
}

static int h_get_protocol_features(struct vu_server *s, struct vu_msg *m, int *replied,
                                   char *why, size_t whylen)
{
	(void)why, (void)whylen;
	*replied = 1;
	return reply_u64(s, m, VU_PROTOCOL_OURS);
}

static int h_set_protocol_features(struct vu_server *s, struct vu_msg *m, int *replied,
                                   char *why, size_t whylen)
{
	uint64_t p = get64(m->payload);

	(void)replied;
	if (p & ~VU_PROTOCOL_OURS)
		BAD("SET_PROTOCOL_FEATURES: 0x%" PRIx64 " has bits that were not offered", p);
	s->protocol = p;
	return 0;
}

static int h_get_queue_num(struct vu_server *s, struct vu_msg *m, int *replied,
                           char *why, size_t whylen)
{
	(void)why, (void)whylen;
	*replied = 1;
	return reply_u64(s, m, s->dev->nqueues);
}

static int h_set_mem_table(struct vu_server *s, struct vu_msg *m, int *replied,
                           char *why, size_t whylen)
{
	(void)replied;
	return set_mem_table(s, m, why, whylen);
}

/* The ring a vring-state request (index, number) names, and its number. */
static int vring_state(struct vu_server *s, const struct vu_msg *m, uint32_t *num,
                       char *why, size_t whylen)
{
	uint32_t index = get32(m->payload);
	int q = ring_index(s, index);

	if (q < 0)
		BAD("%s: no ring %" PRIu32 " (the device has %u)", vu_request_name(m->request),
		    index, s->dev->nqueues);
	*num = get32(m->payload + 4);
	return q;
}

static int h_set_vring_num(struct vu_server *s, struct vu_msg *m, int *replied,
                           char *why, size_t whylen)
{
	uint32_t num;
	int q = vring_state(s, m, &num, why, whylen);

	(void)replied;
	if (q < 0)
		return -1;
	if (num == 0 || num > VIRTQ_MAX_SIZE || (num & (num - 1)))
		BAD("SET_VRING_NUM: ring %d size %" PRIu32 " (a power of 2, at most %d)",
		    q, num, VIRTQ_MAX_SIZE);
	if (s->ring[q].started)
		BAD("SET_VRING_NUM: ring %d is running", q);
	s->ring[q].num = num;
	return 0;
}

static int h_set_vring_base(struct vu_server *s, struct vu_msg *m, int *replied,
                            char *why, size_t whylen)
{
	uint32_t num;
	int q = vring_state(s, m, &num, why, whylen);

	(void)replied;
	if (q < 0)
		return -1;
	if (num > 0xffff)
		BAD("SET_VRING_BASE: ring %d index %" PRIu32 " (at most 65535)", q, num);
	if (s->ring[q].started)
		BAD("SET_VRING_BASE: ring %d is running", q);
	s->ring[q].base = (uint16_t)num;
	return 0;
}

static int h_get_vring_base(struct vu_server *s, struct vu_msg *m, int *replied,
                            char *why, size_t whylen)
{
	uint32_t num;
	uint8_t p[8];
	int q = vring_state(s, m, &num, why, whylen);

	if (q < 0)
		return -1;
	stop_ring(s, q);
	put32(p, (uint32_t)q);
	put32(p + 4, s->ring[q].base);
	*replied = 1;
	return reply(s, m, p, 8);
}

static int h_set_vring_enable(struct vu_server *s, struct vu_msg *m, int *replied,
                              char *why, size_t whylen)
{
	uint32_t num;
	int q = vring_state(s, m, &num, why, whylen);

	(void)replied;
	if (q < 0)
		return -1;
	if (num > 1)
		BAD("SET_VRING_ENABLE: ring %d state %" PRIu32 " (0 or 1)", q, num);
	if (!num) {
		stop_ring(s, q);
	} else {
		s->ring[q].enabled = 1;
		maybe_start(s, q);
	}
	return 0;
}

static int h_vring_kick(struct vu_server *s, struct vu_msg *m, int *replied,
                        char *why, size_t whylen)
{
	uint32_t num;
	int q = vring_state(s, m, &num, why, whylen);

	(void)replied;
	if (q < 0)
		return -1;
	if (!(s->protocol & (1ULL << VU_PROTOCOL_F_INBAND_NOTIFICATIONS)))
		BAD("VRING_KICK: in-band notifications were not agreed");
	kick(s, (unsigned)q);
	return 0;
}

static int h_set_vring_addr(struct vu_server *s, struct vu_msg *m, int *replied,
                            char *why, size_t whylen)
{
	uint32_t index = get32(m->payload);
	uint64_t desc = get64(m->payload + 8), used = get64(m->payload + 16),
	         avail = get64(m->payload + 24);
	struct vu_ring *r;
	int q = ring_index(s, index);

	(void)replied;
	if (q < 0)
		BAD("SET_VRING_ADDR: no ring %" PRIu32 " (the device has %u)", index, s->dev->nqueues);
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

/* The fd a message carries, now ours (nonblocking), or -1 if none. */
static int adopt_fd(struct vu_msg *m)
{
	int fd = -1;

	if (m->nfds) {
		fd = m->fds[0];
		m->nfds = 0;
		fcntl(fd, F_SETFL, O_NONBLOCK);
	}
	return fd;
}

static int h_set_vring_kick(struct vu_server *s, struct vu_msg *m, int *replied,
                            char *why, size_t whylen)
{
	int q = take_fd(s, m, why, whylen);
	struct vu_ring *r;

	(void)replied;
	if (q < 0)
		return -1;
	r = &s->ring[q];
	close_fd(&r->kick_fd);
	r->kick_fd = adopt_fd(m);
	/* Without protocol features a ring starts with its kick fd. */
	if (!(s->features & (1ULL << VU_F_PROTOCOL_FEATURES)))
		r->enabled = 1;
	maybe_start(s, q);
	return 0;
}

static int h_set_vring_call(struct vu_server *s, struct vu_msg *m, int *replied,
                            char *why, size_t whylen)
{
	int q = take_fd(s, m, why, whylen);

	(void)replied;
	if (q < 0)
		return -1;
	close_fd(&s->ring[q].call_fd);
	s->ring[q].call_fd = adopt_fd(m);
	return 0;
}

static int h_set_vring_err(struct vu_server *s, struct vu_msg *m, int *replied,
                           char *why, size_t whylen)
{
	(void)replied;
	/* Checked, then dropped: we never report ring errors this way. */
	return take_fd(s, m, why, whylen) < 0 ? -1 : 0;
}

static int h_set_backend_req_fd(struct vu_server *s, struct vu_msg *m, int *replied,
                                char *why, size_t whylen)
{
	(void)replied;
	if (!(s->protocol & (1ULL << VU_PROTOCOL_F_BACKEND_REQ)))
		BAD("SET_BACKEND_REQ_FD: the backend channel was not agreed");
	if (m->nfds != 1)
		BAD("SET_BACKEND_REQ_FD: %u file descriptors (1 expected)", m->nfds);
	close_fd(&s->backend_fd);
	s->backend_fd = adopt_fd(m);
	return 0;
}

/* GET_CONFIG and SET_CONFIG: offset, length, flags, then the bytes. */
static int h_config(struct vu_server *s, struct vu_msg *m, int *replied,
                    char *why, size_t whylen)
{
	const char *name = vu_request_name(m->request);
	struct vdev *d = s->dev;
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
	/* What the device has, and zeros past its end: the frontend reads
	 * the size it knows, which may be more than we fill. */
	memcpy(p, m->payload, 12);
	memset(p + 12, 0, len);
	if (off < d->config_len)
		memcpy(p + 12, d->config + off, len < d->config_len - off ? len : d->config_len - off);
	*replied = 1;
	return reply(s, m, p, 12 + len);
}

#define VARIABLE UINT32_MAX     /* the handler checks the payload's size */

/* Each request: its handler, its payload's size, whether it may carry an
 * fd.  A request without a handler is refused as not supported. */
static const struct vu_request_kind {
	vu_handler *fn;
	uint32_t size;
	unsigned takes_fds;
} requests[VU_REQUEST__END] = {
	[VU_GET_FEATURES]          = { h_get_features, 0, 0 },
	[VU_SET_FEATURES]          = { h_set_features, 8, 0 },
	[VU_SET_OWNER]             = { h_set_owner, 0, 0 },
	[VU_RESET_OWNER]           = { h_reset_owner, 0, 0 },
	[VU_SET_MEM_TABLE]         = { h_set_mem_table, VARIABLE, 1 },
	[VU_SET_VRING_NUM]         = { h_set_vring_num, 8, 0 },
	[VU_SET_VRING_ADDR]        = { h_set_vring_addr, 40, 0 },
	[VU_SET_VRING_BASE]        = { h_set_vring_base, 8, 0 },
	[VU_GET_VRING_BASE]        = { h_get_vring_base, 8, 0 },
	[VU_SET_VRING_KICK]        = { h_set_vring_kick, 8, 1 },
	[VU_SET_VRING_CALL]        = { h_set_vring_call, 8, 1 },
	[VU_SET_VRING_ERR]         = { h_set_vring_err, 8, 1 },
	[VU_GET_PROTOCOL_FEATURES] = { h_get_protocol_features, 0, 0 },
	[VU_SET_PROTOCOL_FEATURES] = { h_set_protocol_features, 8, 0 },
	[VU_GET_QUEUE_NUM]         = { h_get_queue_num, 0, 0 },
	[VU_SET_VRING_ENABLE]      = { h_set_vring_enable, 8, 0 },
	[VU_SET_BACKEND_REQ_FD]    = { h_set_backend_req_fd, 0, 1 },
	[VU_GET_CONFIG]            = { h_config, VARIABLE, 0 },
	[VU_SET_CONFIG]            = { h_config, VARIABLE, 0 },
	[VU_VRING_KICK]            = { h_vring_kick, 8, 0 },
};

static int handle(struct vu_server *s, struct vu_msg *m, int *replied, char *why, size_t whylen)
{
	const char *name = vu_request_name(m->request);
	const struct vu_request_kind *k =
		m->request < VU_REQUEST__END ? &requests[m->request] : NULL;

	if (!k || !k->fn)
		BAD("%s (%" PRIu32 ") is not supported", name, m->request);
	if (k->size != VARIABLE && m->size != k->size)
		BAD("%s: payload of %" PRIu32 " bytes (%" PRIu32 " expected)", name, m->size, k->size);
	if (!k->takes_fds && m->nfds)
		BAD("%s: carries %u file descriptors (none expected)", name, m->nfds);
	return k->fn(s, m, replied, why, whylen);
}

#undef BAD

static void serve_conn(struct vu_server *s)
{
	struct vu_msg m;
	char why[160];
	int rc, replied = 0;

	rc = recv_msg(s, &m, why, sizeof(why));
	if (rc == 0)
		return;                    /* not whole yet */
	if (rc == -2) {
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
		if (pfd[k].fd == s->timer_fd && s->conn_fd >= 0) {
			uint64_t v;
			char why[160];
			if (read(s->timer_fd, &v, sizeof(v)) == sizeof(v) && s->in.got) {
				truncated(s, "not whole within " "1 s", why, sizeof(why));
				vu_disconnect(s, why);
			}
			continue;
		}
		if (pfd[k].fd == s->rearm_fd && s->conn_fd >= 0) {
			serve_pending(s);
			continue;
		}
		if (s->conn_fd >= 0 && pfd[k].fd == vdev_pollfd(s->dev)) {
			device_guarded(s, -1);
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
				kick(s, q);
		}
	}
}
