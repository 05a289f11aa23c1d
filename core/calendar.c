/*
 * calendar.c - vmlua as UML's time-travel calendar.  See calendar.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "calendar.h"
#include "clock.h"
#include "errbuf.h"
#include "le.h"

/* UML's operations (um_timetravel.h). */
enum {
	OP_ACK = 0,
	OP_START = 1,
	OP_REQUEST = 2,
	OP_WAIT = 3,
	OP_GET = 4,
	OP_UPDATE = 5,
	OP_RUN = 6,
	OP_FREE_UNTIL = 7,
	OP_GET_TOD = 8,
};

/* The guest has broken the protocol or gone: it leaves the clock. */
static void drop(struct cal_guest *g)
{
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
	g->state = CAL_GONE;
	g->request = CAL_NEVER;
}

static void send_msg(struct cal_guest *g, uint32_t op, uint32_t seq, uint64_t time)
{
	uint8_t m[CAL_MSG];
	ssize_t n;

	put_le32(m, op);
	put_le32(m + 4, seq);
	put_le64(m + 8, time);
	do
		n = send(g->fd, m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	/* A guest that does not read its messages cannot be run. */
	if (n != (ssize_t)sizeof(m))
		drop(g);
}

static void run(struct cal_guest *g)
{
	struct calendar *c = g->cal;

	g->state = CAL_RUNNING;
	g->request = CAL_NEVER;
	g->run_seq = ++c->seq;
	g->run_unacked = 1;
	send_msg(g, OP_RUN, g->run_seq, c->now);
}

static void handle(struct cal_guest *g, const uint8_t *m)
{
	struct calendar *c = g->cal;
	uint32_t op = le32(m), seq = le32(m + 4);
	uint64_t t = le64(m + 8);

	/*
	 * A request before the ACK of our RUN crossed it: the guest's kernel
	 * took the RUN while it waited for the answer to this request (an
	 * interrupt's, sent from its signal handler), and the wait it
	 * really was in still waits for a RUN.  Once it has acknowledged
	 * ours, it is waiting again, and will say for when.
	 */
	if (op != OP_ACK && g->run_unacked)
		g->missed_run = 1;
	switch (op) {
	case OP_ACK:            /* of a RUN of ours */
		if (g->run_unacked && seq == g->run_seq) {
			g->run_unacked = 0;
			if (g->missed_run && g->state == CAL_RUNNING) {
				g->state = CAL_WAITING;
				g->await_request = 1;
			}
			g->missed_run = 0;
		}
		return;
	case OP_START:
	case OP_UPDATE:         /* it runs at our time: nothing to learn */
		send_msg(g, OP_ACK, seq, 0);
		return;
	case OP_REQUEST:
		/* Never into the past: the clock does not go back; nor
		 * to the end of time, which is UML's "no timer at all". */
		g->request = t >= CAL_FOREVER ? CAL_NEVER : t < c->now ? c->now : t;
		g->await_request = 0;
		send_msg(g, OP_ACK, seq, 0);
		return;
	case OP_WAIT:
		send_msg(g, OP_ACK, seq, 0);
		if (g->fd < 0)
			return;
		g->state = CAL_WAITING;
		g->await_request = 0;
		return;
	case OP_GET:
		/* What an interrupt's handler asks first. */
		if (g->owed)
			g->owed--;
		send_msg(g, OP_ACK, seq, c->now);
		return;
	case OP_GET_TOD:
		send_msg(g, OP_ACK, seq, c->tod_base + c->now);
		return;
	default:                /* RUN and FREE_UNTIL are ours to send */
		drop(g);
	}
}

static int cal_fds(void *o, struct pollfd *pfd, int max)
{
	struct calendar *c = o;
	struct cal_guest *g;
	int n = 0;

	if (max > CAL_MAX_FDS)
		max = CAL_MAX_FDS;
	for (g = c->head; g && n < max; g = g->next) {
		int fd = g->fd >= 0 ? g->fd : g->listen_fd;
		if (fd < 0)
			continue;
		pfd[n] = (struct pollfd){ fd, POLLIN, 0 };
		c->polled[n++] = g;
	}
	c->polled_n = n;
	return n;
}

static void accept_guest(struct cal_guest *g)
{
	int fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	/* One guest, one connection: nobody else may take its place. */
	close(g->listen_fd);
	g->listen_fd = -1;
	unlink(g->path);
	g->fd = fd;
	g->state = CAL_RUNNING;
	g->have = 0;
}

static void read_guest(struct cal_guest *g)
{
	for (;;) {
		ssize_t n = recv(g->fd, g->in + g->have, CAL_MSG - g->have, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			drop(g);
			return;
		}
		g->have += (size_t)n;
		if (g->have < CAL_MSG)
			continue;
		g->have = 0;
		handle(g, g->in);
		if (g->fd < 0)
			return;
	}
}

/* g is still a guest of c: it may have left (its machine closed) since
 * the fds were handed out. */
static int member(const struct calendar *c, const struct cal_guest *g)
{
	const struct cal_guest *h;

	for (h = c->head; h; h = h->next)
		if (h == g)
			return 1;
	return 0;
}

static void cal_serve(void *o, struct pollfd *pfd, int n)
{
	struct calendar *c = o;
	int i;

	for (i = 0; i < n && i < c->polled_n; i++) {
		struct cal_guest *g = c->polled[i];
		if (!pfd[i].revents || !member(c, g))
			continue;
		if (pfd[i].fd == g->listen_fd)
			accept_guest(g);
		else if (pfd[i].fd == g->fd)
			read_guest(g);
	}
}

/* How long the clock waits for a guest to ask for the time after an
 * interrupt, at most. */
#define OWED_NS 1000000000

/* 1 when every connected guest waits and has taken its interrupts, and
 * one of them has asked for a time; -1 when only interrupts not yet
 * taken hold the clock; 0 otherwise. */
static int ready(struct calendar *c)
{
	struct cal_guest *g;
	int asked = 0, owed = 0;

	for (g = c->head; g; g = g->next) {
		if (g->state == CAL_RUNNING)
			return 0;
		if (g->state != CAL_WAITING)
			continue;
		if (g->owed || g->await_request) {
			int64_t t = clock_ns();
			if (!g->owed_since)
				g->owed_since = t;
			if (t - g->owed_since < OWED_NS) {
				owed = 1;
				continue;
			}
			g->owed = 0;
			g->await_request = 0;
		}
		g->owed_since = 0;
		if (g->request != CAL_NEVER)
			asked = 1;
	}
	return owed ? -1 : asked;
}

static int cal_poll_ms(void *o, int ms)
{
	switch (ready(o)) {
	case 1:
		return 0;
	case -1:                /* look again soon */
		return ms < 0 || ms > 10 ? 10 : ms;
	default:
		return ms;
	}
}

/* Nothing is left to do at this time: on to the earliest request. */
static void cal_quiet(void *o)
{
	struct calendar *c = o;
	struct cal_guest *g;
	uint64_t next = CAL_NEVER;

	if (ready(c) != 1)
		return;
	for (g = c->head; g; g = g->next)
		if (g->state == CAL_WAITING && g->request < next)
			next = g->request;
	c->now = next;
	for (g = c->head; g; g = g->next)
		if (g->state == CAL_WAITING && g->request <= c->now)
			run(g);
}

void calendar_owe(void *o)
{
	struct cal_guest *g = o;

	if (g->state != CAL_GONE && g->owed < UINT32_MAX)
		g->owed++;
}

void calendar_init(struct calendar *c, struct loop *l)
{
	memset(c, 0, sizeof(*c));
	c->tod_base = clock_realtime_ns();
	c->src = (struct loop_source){ .fds = cal_fds, .serve = cal_serve, .o = c, .passive = 1,
	                               .poll_ms = cal_poll_ms, .quiet = cal_quiet };
	loop_add(l, &c->src);
}

int calendar_listen(struct calendar *c, struct cal_guest *g, const char *path,
                    char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(g, 0, sizeof(*g));
	g->listen_fd = g->fd = -1;
	g->request = CAL_NEVER;
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(g->path))
		return errbuf_set(err, errlen, "time socket path too long: %s", path), -1;
	strcpy(sa.sun_path, path);
	strcpy(g->path, path);
	g->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (g->listen_fd < 0)
		return errbuf_set(err, errlen, "socket: %s", strerror(errno)), -1;
	if (bind(g->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(g->listen_fd, 1) < 0) {
		errbuf_set(err, errlen, "time socket %s: %s", path, strerror(errno));
		close(g->listen_fd);
		g->listen_fd = -1;
		return -1;
	}
	g->cal = c;             /* on the calendar only from here */
	g->next = c->head;
	c->head = g;
	return 0;
}

void calendar_leave(struct cal_guest *g)
{
	struct cal_guest **p;

	if (!g->cal)
		return;
	for (p = &g->cal->head; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	if (g->listen_fd >= 0) {
		close(g->listen_fd);
		unlink(g->path);
	}
	g->listen_fd = -1;
	drop(g);
	g->cal = NULL;
}
