/*
 * slirp.c - user-mode networking for a net device, through libslirp.
 *
 * libslirp is a TCP/IP stack in a library: the guest's frames go in, it
 * opens ordinary host sockets on the guest's behalf, and frames come out.
 * The guest sees the network 10.0.2.0/24 with itself at 10.0.2.15, the
 * host's loopback at 10.0.2.2 and a DNS forwarder at 10.0.2.3; host
 * ports can be forwarded to guest ports.  No root.
 *
 * libslirp is not thread-safe and keeps its own sockets and timers, so it
 * runs in a thread of its own.  Frames cross between that thread and the
 * device's (the transport's loop) in two bounded queues under a mutex,
 * each with an eventfd to wake the other side: the device polls
 * `to_guest_fd`, the thread polls its own.  A full queue drops the frame,
 * as a full NIC ring would.
 *
 * Everything libslirp needs set up (its state, the forwarded ports'
 * listening sockets) is made before the thread starts.  The thread,
 * named "slirp", then loads the device I/O seccomp filter (sandbox.c)
 * and tells slink_new() how that went before it handles a single frame.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <slirp/libslirp.h>
#include "clock.h"
#include "errbuf.h"
#include "sandbox.h"
#include "slirp.h"

#define QUEUE_MAX 512

struct frame {
	struct frame *next;
	size_t len;
	uint8_t data[];
};

struct queue {
	struct frame *head, *tail;
	unsigned count;
};

struct stimer {
	struct stimer *next;
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms;          /* -1: not armed */
};

struct slink {
	Slirp *slirp;
	pthread_t thread;
	int started;
	int thread_fd;              /* eventfd: wake the slirp thread */
	int guest_fd;               /* eventfd: frames for the guest */
	pthread_mutex_t lock;
	pthread_cond_t ready;       /* the thread has loaded its filter */
	int verdict;                /* 1 pending, 0 or -errno from the filter */
	int sandbox;                /* load the filter at all */
	struct queue to_slirp, to_guest;
	int stop;
	struct stimer *timers;      /* the slirp thread's alone */
	struct pollfd *pfd;         /* the slirp thread's alone */
	unsigned npfd, cap;
	uint64_t dropped;
};

static void wake(int fd)
{
	uint64_t one = 1;
	(void)!write(fd, &one, sizeof(one));
}

/* Append a copy of a frame; 0, or -1 when the queue is full. */
static int enqueue(struct slink *s, struct queue *q, const void *buf, size_t len)
{
	struct frame *f;

	if (q->count >= QUEUE_MAX || !(f = malloc(sizeof(*f) + len))) {
		s->dropped++;
		return -1;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, buf, len);
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->count++;
	return 0;
}

static struct frame *take_all(struct queue *q)
{
	struct frame *f = q->head;
	q->head = q->tail = NULL;
	q->count = 0;
	return f;
}

static void free_frames(struct frame *f)
{
	while (f) {
		struct frame *next = f->next;
		free(f);
		f = next;
	}
}

/* ---- libslirp's callbacks, all in the slirp thread ------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slink *s = opaque;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = enqueue(s, &s->to_guest, buf, len);
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		wake(s->guest_fd);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "vmlua: slirp: guest error: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return clock_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slink *s = opaque;
	struct stimer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct slink *s = opaque;
	struct stimer **p;

	for (p = &s->timers; *p; p = &(*p)->next)
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct stimer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }

static void cb_notify(void *opaque)
{
	wake(((struct slink *)opaque)->thread_fd);
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

static int add_poll(int fd, int events, void *opaque)
{
	struct slink *s = opaque;
	short ev = 0;

	if (s->npfd == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 64;
		struct pollfd *p = realloc(s->pfd, cap * sizeof(*p));
		if (!p)
			return -1;
		s->pfd = p, s->cap = cap;
	}
	if (events & SLIRP_POLL_IN) ev |= POLLIN;
	if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
	s->pfd[s->npfd] = (struct pollfd){ fd, ev, 0 };
	return (int)s->npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct slink *s = opaque;
	short r;
	int out = 0;

	if (idx < 0 || (unsigned)idx >= s->npfd)
		return 0;
	r = s->pfd[idx].revents;
	if (r & POLLIN) out |= SLIRP_POLL_IN;
	if (r & POLLOUT) out |= SLIRP_POLL_OUT;
	if (r & POLLPRI) out |= SLIRP_POLL_PRI;
	if (r & POLLERR) out |= SLIRP_POLL_ERR;
	if (r & POLLHUP) out |= SLIRP_POLL_HUP;
	return out;
}

static void *run(void *arg)
{
	struct slink *s = arg;
	int filtered = 0;

	pthread_setname_np(pthread_self(), "slirp");
	if (s->sandbox)
		filtered = sandbox_enter(SANDBOX_IO);
	pthread_mutex_lock(&s->lock);
	s->verdict = filtered;
	pthread_cond_signal(&s->ready);
	pthread_mutex_unlock(&s->lock);
	if (filtered < 0)
		return NULL;
	for (;;) {
		uint32_t timeout = 1000;
		int64_t ms = clock_ns() / 1000000;
		struct stimer *t;
		struct frame *in, *f;
		int rc, stop;

		for (t = s->timers; t; t = t->next)
			if (t->expire_ms >= 0) {
				int64_t left = t->expire_ms - ms;
				if (left < 0)
					left = 0;
				if ((uint64_t)left < timeout)
					timeout = (uint32_t)left;
			}
		s->npfd = 0;
		add_poll(s->thread_fd, SLIRP_POLL_IN, s);
		slirp_pollfds_fill(s->slirp, &timeout, add_poll, s);
		rc = poll(s->pfd, s->npfd, (int)timeout);
		if (rc > 0 && (s->pfd[0].revents & POLLIN)) {
			uint64_t n;
			(void)!read(s->thread_fd, &n, sizeof(n));
		}
		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		in = take_all(&s->to_slirp);
		pthread_mutex_unlock(&s->lock);
		if (stop) {
			free_frames(in);
			break;
		}
		for (f = in; f; f = f->next)
			slirp_input(s->slirp, f->data, (int)f->len);
		free_frames(in);
		slirp_pollfds_poll(s->slirp, rc < 0 && errno != EINTR, get_revents, s);
		ms = clock_ns() / 1000000;
		for (t = s->timers; t; ) {
			struct stimer *next = t->next;  /* the callback may free t */
			if (t->expire_ms >= 0 && t->expire_ms <= ms) {
				t->expire_ms = -1;
				t->cb(t->cb_opaque);
			}
			t = next;
		}
	}
	return NULL;
}

/* "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", as QEMU's hostfwd. */
static int add_forward(struct slink *s, const char *spec, char *err, size_t errlen)
{
	char proto[4], haddr[64] = "", gaddr[64] = "";
	unsigned hport, gport;
	struct in_addr h, g;
	int n = 0;

	if (sscanf(spec, "%3[a-z]:%63[0-9.]:%u-%63[0-9.]:%u%n", proto, haddr, &hport, gaddr, &gport, &n) != 5 &&
	    sscanf(spec, "%3[a-z]::%u-%63[0-9.]:%u%n", proto, &hport, gaddr, &gport, &n) != 4 &&
	    sscanf(spec, "%3[a-z]:%63[0-9.]:%u-:%u%n", proto, haddr, &hport, &gport, &n) != 4 &&
	    sscanf(spec, "%3[a-z]::%u-:%u%n", proto, &hport, &gport, &n) != 3)
		n = 0;
	if (!n || spec[n] || (strcmp(proto, "tcp") && strcmp(proto, "udp")) ||
	    hport > 65535 || gport == 0 || gport > 65535)
		return errbuf_set(err, errlen, "forward '%s': not tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
		                  spec);
	if (!inet_aton(*haddr ? haddr : "127.0.0.1", &h) || !inet_aton(*gaddr ? gaddr : "10.0.2.15", &g))
		return errbuf_set(err, errlen, "forward '%s': a bad address", spec);
	if (slirp_add_hostfwd(s->slirp, !strcmp(proto, "udp"), h, (int)hport, g, (int)gport) < 0)
		return errbuf_set(err, errlen, "forward '%s': cannot listen on %s:%u (in use?)", spec,
		                  *haddr ? haddr : "127.0.0.1", hport);
	return 0;
}

struct slink *slink_new(const char *const *forwards, unsigned nforwards, int sandbox,
                        char *err, size_t errlen)
{
	struct slink *s = calloc(1, sizeof(*s));
	SlirpConfig cfg;
	unsigned i;
	int verdict;

	if (!s) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->ready, NULL);
	s->sandbox = sandbox;
	s->verdict = 1;
	s->thread_fd = s->guest_fd = -1;
	s->thread_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->guest_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->thread_fd < 0 || s->guest_fd < 0) {
		errbuf_set(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.version = 3;
	cfg.in_enabled = true;
	inet_aton("10.0.2.0", &cfg.vnetwork);
	inet_aton("255.255.255.0", &cfg.vnetmask);
	inet_aton("10.0.2.2", &cfg.vhost);
	inet_aton("10.0.2.15", &cfg.vdhcp_start);
	inet_aton("10.0.2.3", &cfg.vnameserver);
	cfg.vhostname = "vmlua";
	cfg.if_mtu = 1500;
	cfg.if_mru = 1500;
	s->slirp = slirp_new(&cfg, &callbacks, s);
	if (!s->slirp) {
		errbuf_set(err, errlen, "slirp: cannot start user-mode networking");
		goto fail;
	}
	for (i = 0; i < nforwards; i++)
		if (add_forward(s, forwards[i], err, errlen))
			goto fail;
	if (pthread_create(&s->thread, NULL, run, s)) {
		errbuf_set(err, errlen, "slirp: cannot start its thread");
		goto fail;
	}
	s->started = 1;
	pthread_mutex_lock(&s->lock);
	while (s->verdict == 1)
		pthread_cond_wait(&s->ready, &s->lock);
	verdict = s->verdict;
	pthread_mutex_unlock(&s->lock);
	if (verdict < 0) {
		errbuf_set(err, errlen, "slirp: seccomp filter: %s", strerror(-verdict));
		goto fail;
	}
	return s;
fail:
	slink_free(s);
	return NULL;
}

int slink_fd(const struct slink *s) { return s->guest_fd; }

void slink_send(struct slink *s, const uint8_t *frame, size_t len)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = enqueue(s, &s->to_slirp, frame, len);
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		wake(s->thread_fd);
}

size_t slink_recv(struct slink *s, uint8_t *buf, size_t cap)
{
	struct frame *f;
	size_t len = 0;

	pthread_mutex_lock(&s->lock);
	f = s->to_guest.head;
	if (f) {
		s->to_guest.head = f->next;
		if (!f->next)
			s->to_guest.tail = NULL;
		s->to_guest.count--;
	}
	pthread_mutex_unlock(&s->lock);
	if (f) {
		len = f->len <= cap ? f->len : 0;
		memcpy(buf, f->data, len);
		free(f);
	}
	return len;
}

void slink_drain_wakeup(struct slink *s)
{
	uint64_t n;
	(void)!read(s->guest_fd, &n, sizeof(n));
}

void slink_free(struct slink *s)
{
	struct stimer *t;

	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		pthread_mutex_unlock(&s->lock);
		wake(s->thread_fd);
		pthread_join(s->thread, NULL);
	}
	if (s->slirp)
		slirp_cleanup(s->slirp);   /* frees its timers through timer_free */
	while ((t = s->timers)) {
		s->timers = t->next;
		free(t);
	}
	free_frames(take_all(&s->to_slirp));
	free_frames(take_all(&s->to_guest));
	if (s->thread_fd >= 0)
		close(s->thread_fd);
	if (s->guest_fd >= 0)
		close(s->guest_fd);
	free(s->pfd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->ready);
	free(s);
}
