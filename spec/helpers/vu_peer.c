/*
 * vu_peer.c - a vhost-user frontend for the specs, in two moods.
 *
 *   vu-peer SOCKET good     a whole, correct session: negotiate, share a
 *                           memfd as RAM, set up ring 0, offer one 16-byte
 *                           writable buffer, kick, wait for the call, and
 *                           print what the device wrote, in hex.
 *   vu-peer SOCKET renegotiate  the good session, then SET_FEATURES
 *                           again while the ring runs (as a driver reset
 *                           does), and a second buffer: is it served?
 *   vu-peer SOCKET hostile  one connection per malformed message; print
 *                           for each whether the backend dropped it.
 *   vu-peer SOCKET latency N  the good session's request, N times a round,
 *                           timed: the median kick->call round trip
 *                           (make bench).
 *   vu-peer - floor N       the same loop against a process that only
 *                           answers each kick with a call: the floor.
 *   vu-peer SOCKET shrink N the good session's first request, then a
 *                           second one offered, the memfd truncated to N
 *                           bytes, and a kick: the backend must survive.
 *   vu-peer SOCKET slow     SET_OWNER one byte every 0.7 s: is the
 *                           connection dropped, and after how many?
 *   vu-peer SOCKET flood    ring 0 of 32768 entries, every one a chain
 *                           of one 1 MiB writable buffer, and one kick.
 *   vu-peer SOCKET hangup   offer a buffer, kick, and hang up 0.5 s later.
 *
 * It plays UML's part so that the server can be tested, and attacked,
 * with no kernel at all.  Each line it prints is one fact for the spec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GPA   0x100000ULL        /* where the peer says its RAM starts */
#define USER  0x7f0000000000ULL  /* and where it says it has it mapped */
#define RAM   (1u << 20)

static const char *sock_path;

static int connect_to(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), tries;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	for (tries = 0; tries < 100; tries++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		usleep(50000);
	}
	perror("connect");
	exit(2);
}

/* One message: header, payload, and fds. */
static int send_msg(int fd, uint32_t req, uint32_t flags, const void *payload,
                    uint32_t size, const int *fds, int nfds)
{
	uint8_t buf[12 + 1024];
	union { struct cmsghdr c; char b[CMSG_SPACE(sizeof(int) * 16)]; } ctl;
	struct iovec iov = { buf, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size)
		memcpy(buf + 12, payload, size);
	if (nfds) {
		struct cmsghdr *c;
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)(12 + size) ? 0 : -1;
}

static void must(int ok, const char *what)
{
	if (!ok) {
		printf("failed: %s\n", what);
		exit(1);
	}
}

/* Read one reply; returns its payload size (or -1) and the payload. */
static int recv_reply(int fd, void *payload, size_t max)
{
	uint8_t hdr[12];
	uint32_t size;
	if (recv(fd, hdr, 12, MSG_WAITALL) != 12)
		return -1;
	memcpy(&size, hdr + 8, 4);
	if (size > max || (size && recv(fd, payload, size, MSG_WAITALL) != (ssize_t)size))
		return -1;
	return (int)size;
}

static uint64_t get_u64(int fd, uint32_t req)
{
	uint64_t v = 0;
	must(send_msg(fd, req, 1, NULL, 0, NULL, 0) == 0, "send");
	must(recv_reply(fd, &v, 8) == 8, "a u64 reply");
	return v;
}

/* A message that wants an acknowledgement (REPLY_ACK agreed). */
static void acked(int fd, uint32_t req, const void *p, uint32_t size, const int *fds, int nfds,
                  const char *what)
{
	uint64_t status = 1;
	must(send_msg(fd, req, 1 | 8, p, size, fds, nfds) == 0, what);
	must(recv_reply(fd, &status, 8) == 8 && status == 0, what);
}

/* A connected session: the frontend's RAM (a memfd), ring 0 of 8
 * entries at its start, and the kick and call eventfds. */
struct session {
	int fd, kick, call, mfd;
	uint8_t *ram;
	uint16_t avail_idx;
};

/* Negotiate, share the RAM, set up ring 0 and enable it.  With `verbose`,
 * print what the backend offered (features, config). */
static void setup_ring(struct session *s, int verbose, uint64_t ram, uint32_t num)
{
	int mfd = memfd_create("vu-peer", 0), i;
	uint8_t p[64], cfg[12 + 8];
	uint64_t f, v;
	uint32_t st[2];

	s->fd = connect_to();
	s->kick = eventfd(0, 0);
	s->call = eventfd(0, EFD_NONBLOCK);
	s->avail_idx = 0;
	must(ftruncate(mfd, (off_t)ram) == 0, "ftruncate");
	s->ram = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	must(s->ram != MAP_FAILED, "mmap");
	must(send_msg(s->fd, 3, 1, NULL, 0, NULL, 0) == 0, "SET_OWNER");
	f = get_u64(s->fd, 1);
	v = get_u64(s->fd, 15);
	if (verbose)
		printf("features 0x%llx\nprotocol features 0x%llx\n",
		       (unsigned long long)f, (unsigned long long)v);
	v = (1ULL << 3) | (1ULL << 9);        /* REPLY_ACK, CONFIG */
	acked(s->fd, 16, &v, 8, NULL, 0, "SET_PROTOCOL_FEATURES");
	v = (1ULL << 32) | (1ULL << 30);
	acked(s->fd, 2, &v, 8, NULL, 0, "SET_FEATURES");
	memset(cfg, 0, sizeof(cfg));
	cfg[4] = 8;                           /* 8 bytes at offset 0 */
	must(send_msg(s->fd, 24, 1, cfg, sizeof(cfg), NULL, 0) == 0, "GET_CONFIG");
	must(recv_reply(s->fd, cfg, sizeof(cfg)) == (int)sizeof(cfg), "GET_CONFIG reply");
	if (verbose) {
		printf("config");
		for (i = 0; i < 8; i++)
			printf(" %02x", cfg[12 + i]);
		printf("\n");
	}

	/* RAM: one region, the memfd from offset 0. */
	memset(p, 0, sizeof(p));
	p[0] = 1;
	f = GPA; memcpy(p + 8, &f, 8);
	f = ram; memcpy(p + 16, &f, 8);
	f = USER; memcpy(p + 24, &f, 8);
	acked(s->fd, 5, p, 40, &mfd, 1, "SET_MEM_TABLE");
	s->mfd = mfd;       /* kept: the shrink mode truncates it */

	/* Ring 0: num entries; desc at +0, avail at +16 num, used at +32
	 * num (8 entries: +0, +0x80, +0x100). */
	st[0] = 0; st[1] = num;
	acked(s->fd, 8, st, 8, NULL, 0, "SET_VRING_NUM");
	st[1] = 0;
	acked(s->fd, 10, st, 8, NULL, 0, "SET_VRING_BASE");
	memset(p, 0, 40);
	f = USER; memcpy(p + 8, &f, 8);
	f = USER + 32ULL * num; memcpy(p + 16, &f, 8);
	f = USER + 16ULL * num; memcpy(p + 24, &f, 8);
	acked(s->fd, 9, p, 40, NULL, 0, "SET_VRING_ADDR");
	f = 0;
	acked(s->fd, 13, &f, 8, &s->call, 1, "SET_VRING_CALL");
	acked(s->fd, 12, &f, 8, &s->kick, 1, "SET_VRING_KICK");
	st[1] = 1;
	acked(s->fd, 18, st, 8, NULL, 0, "SET_VRING_ENABLE");

	/* Descriptor 0: one writable 16-byte buffer at GPA + 0x1000. */
	f = GPA + 0x1000; memcpy(s->ram, &f, 8);
	st[0] = 16; memcpy(s->ram + 8, &st[0], 4);
	st[0] = 2;                             /* VIRTQ_DESC_F_WRITE */
	memcpy(s->ram + 12, &st[0], 2);
}

static void setup(struct session *s, int verbose)
{
	setup_ring(s, verbose, RAM, 8);
}

/* Offer descriptor 0 again, kick, and wait for the call; returns the
 * used index the backend published. */
static uint16_t request(struct session *s)
{
	struct pollfd pfd = { s->call, POLLIN, 0 };
	uint16_t head = 0, used_idx;
	uint64_t v = 1;

	memcpy(s->ram + 0x80 + 4 + 2 * (s->avail_idx % 8), &head, 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	s->avail_idx++;
	memcpy(s->ram + 0x80 + 2, &s->avail_idx, 2);
	must(write(s->kick, &v, 8) == 8, "kick");
	must(poll(&pfd, 1, 10000) == 1, "a call within 10 s");
	must(read(s->call, &v, 8) == 8, "read the call");
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(&used_idx, s->ram + 0x100 + 2, 2);
	return used_idx;
}

/* One request, and what came back: the used index and the bytes. */
static void show_request(struct session *s)
{
	uint16_t used_idx = request(s);
	uint32_t len;
	int i;

	memcpy(&len, s->ram + 0x100 + 4 + 8 * ((used_idx - 1) % 8) + 4, 4);
	printf("used idx %u, %u bytes:", used_idx, len);
	for (i = 0; i < 16; i++)
		printf(" %02x", s->ram[0x1000 + i]);
	printf("\n");
}

static int good(int renegotiate)
{
	struct session s;
	struct pollfd pfd;
	uint64_t v;

	setup(&s, 1);
	memset(s.ram + 0x1000, 0, 16);
	show_request(&s);
	if (renegotiate) {
		v = (1ULL << 32) | (1ULL << 30);
		acked(s.fd, 2, &v, 8, NULL, 0, "SET_FEATURES again");
		memset(s.ram + 0x1000, 0, 16);
		show_request(&s);
	}
	printf("end\n");
	/* Stay connected until the backend hangs up (or 10 s), so that the
	 * spec can look at the live session. */
	pfd.fd = s.fd;
	pfd.events = POLLIN;
	poll(&pfd, 1, 10000);
	close(s.fd);
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define ROUNDS 7

/* Kick -> call round trips, `n` per round: against the backend on
 * SOCKET, or ("floor") against a forked process that only answers each
 * kick with a call - the least any vhost-user backend could cost.
 * Prints the median over the rounds in nanoseconds. */
static int latency(const char *mode, long n)
{
	struct session s;
	double t[ROUNDS], t0;
	pid_t child = -1;
	long i;
	int r;

	if (!strcmp(mode, "floor")) {
		memset(&s, 0, sizeof(s));
		s.kick = eventfd(0, 0);
		s.call = eventfd(0, EFD_NONBLOCK);
		s.ram = calloc(1, 0x200);
		must(s.ram != NULL, "calloc");
		child = fork();
		if (child == 0) {
			uint64_t v;
			uint16_t idx = 0;
			while (read(s.kick, &v, 8) == 8) {
				idx++;                 /* publish, as a backend would */
				memcpy(s.ram + 0x100 + 2, &idx, 2);
				v = 1;
				if (write(s.call, &v, 8) != 8)
					_exit(1);
			}
			_exit(0);
		}
	} else {
		setup(&s, 0);
	}
	for (r = 0; r < ROUNDS; r++) {
		t0 = now();
		for (i = 0; i < n; i++)
			request(&s);
		t[r] = (now() - t0) / (double)n;
	}
	if (child > 0)
		kill(child, SIGKILL);
	qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
	printf("kick->call median %.0f ns (min %.0f, max %.0f) over %d rounds of %ld\n",
	       t[ROUNDS / 2] * 1e9, t[0] * 1e9, t[ROUNDS - 1] * 1e9, ROUNDS, n);
	return 0;
}

/* Did the backend close the connection (within 3 s)? */
static int dropped(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char c;
	if (poll(&pfd, 1, 3000) != 1)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) == 0 || errno == ECONNRESET;
}

static void owned(int fd) { send_msg(fd, 3, 1, NULL, 0, NULL, 0); }

static void region(uint8_t *p, uint32_t n, uint64_t size)
{
	uint64_t v;
	memset(p, 0, 8 + 32 * n);
	memcpy(p, &n, 4);
	v = GPA; memcpy(p + 8, &v, 8);
	memcpy(p + 16, &size, 8);
	v = USER; memcpy(p + 24, &v, 8);
}

static int hostile(void)
{
	static const char *const names[] = {
		"bad version", "oversized payload", "truncated header", "truncated payload",
		"unknown request", "ring setup before SET_OWNER", "short SET_FEATURES",
		"no such ring", "ring size not a power of 2", "nine regions",
		"region without its fd", "region past the end of its file",
		"region backed by a pipe", "ring outside the memory table",
		"two fds for a kick", "config read past 256 bytes",
		"fds on GET_FEATURES", "features not offered",
		"kick fd is /dev/zero", "a 1 TiB region",
	};
	unsigned k, n = sizeof(names) / sizeof(names[0]), ok = 0;

	for (k = 0; k < n; k++) {
		int fd = connect_to(), fds[2], small;
		uint8_t p[400];
		uint32_t st[2];
		uint64_t v;

		memset(p, 0, sizeof(p));
		switch (k) {
		case 0: send_msg(fd, 1, 2, NULL, 0, NULL, 0); break;
		case 1: { uint32_t h[3] = { 2, 1, 100000 }; send(fd, h, 12, MSG_NOSIGNAL); } break;
		case 2: send(fd, "\x01\x00\x00", 3, MSG_NOSIGNAL); break;
		case 3: { uint32_t h[4] = { 2, 1, 8, 0 }; send(fd, h, 16, MSG_NOSIGNAL); } break;
		case 4: owned(fd); send_msg(fd, 99, 1, NULL, 0, NULL, 0); break;
		case 5: st[0] = 0; st[1] = 8; send_msg(fd, 8, 1, st, 8, NULL, 0); break;
		case 6: owned(fd); send_msg(fd, 2, 1, p, 4, NULL, 0); break;
		case 7: owned(fd); st[0] = 7; st[1] = 8; send_msg(fd, 8, 1, st, 8, NULL, 0); break;
		case 8: owned(fd); st[0] = 0; st[1] = 3; send_msg(fd, 8, 1, st, 8, NULL, 0); break;
		case 9: owned(fd); region(p, 9, RAM); send_msg(fd, 5, 1, p, 8 + 32 * 9, NULL, 0); break;
		case 10: owned(fd); region(p, 1, RAM); send_msg(fd, 5, 1, p, 40, NULL, 0); break;
		case 11:
			owned(fd);
			small = memfd_create("small", 0);
			if (ftruncate(small, 4096) < 0)
				return 2;
			region(p, 1, RAM);
			send_msg(fd, 5, 1, p, 40, &small, 1);
			close(small);
			break;
		case 12:
			owned(fd);
			if (pipe(fds) < 0)
				return 2;
			region(p, 1, RAM);
			send_msg(fd, 5, 1, p, 40, fds, 1);
			close(fds[0]);
			close(fds[1]);
			break;
		case 13:
			owned(fd);
			small = memfd_create("ram", 0);
			if (ftruncate(small, RAM) < 0)
				return 2;
			region(p, 1, RAM);
			send_msg(fd, 5, 1, p, 40, &small, 1);
			close(small);
			memset(p, 0, 40);
			v = 0x1000; memcpy(p + 8, &v, 8);   /* not a mapped address */
			send_msg(fd, 9, 1, p, 40, NULL, 0);
			break;
		case 14:
			owned(fd);
			fds[0] = eventfd(0, 0);
			fds[1] = eventfd(0, 0);
			v = 0;
			send_msg(fd, 12, 1, &v, 8, fds, 2);
			close(fds[0]);
			close(fds[1]);
			break;
		case 15:
			owned(fd);
			v = 1ULL << 9;
			send_msg(fd, 16, 1, &v, 8, NULL, 0);
			st[0] = 0; st[1] = 300;
			memcpy(p, st, 8);
			send_msg(fd, 24, 1, p, 12 + 300, NULL, 0);
			break;
		case 16:
			fds[0] = eventfd(0, 0);
			send_msg(fd, 1, 1, NULL, 0, fds, 1);
			close(fds[0]);
			break;
		case 17: owned(fd); v = 1ULL << 60; send_msg(fd, 2, 1, &v, 8, NULL, 0); break;
		case 18:
			owned(fd);
			fds[0] = open("/dev/zero", O_RDONLY);
			v = 0;
			send_msg(fd, 12, 1, &v, 8, fds, 1);
			close(fds[0]);
			break;
		case 19:
			owned(fd);
			small = memfd_create("huge", 0);
			if (ftruncate(small, 1LL << 40) < 0)
				return 2;
			region(p, 1, 1ULL << 40);
			send_msg(fd, 5, 1, p, 40, &small, 1);
			close(small);
			break;
		}
		if (dropped(fd)) {
			printf("dropped: %s\n", names[k]);
			ok++;
		} else {
			printf("NOT dropped: %s\n", names[k]);
		}
		close(fd);
	}
	printf("%u of %u dropped\nend\n", ok, n);
	return ok == n ? 0 : 1;
}

/* Wait for the backend to hang up (or `ms`); 1 if it did. */
static int wait_hangup(int fd, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char c;
	if (poll(&pfd, 1, ms) != 1)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* Offer descriptor 0 and kick, without waiting for the call. */
static void offer_and_kick(struct session *s)
{
	uint16_t head = 0;
	uint64_t v = 1;
	memcpy(s->ram + 0x80 + 4 + 2 * (s->avail_idx % 8), &head, 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	s->avail_idx++;
	memcpy(s->ram + 0x80 + 2, &s->avail_idx, 2);
	must(write(s->kick, &v, 8) == 8, "kick");
}

/* Share RAM, then take it back: truncate the memfd under the backend. */
static int shrink(long size)
{
	struct session s;
	struct pollfd pfd;
	uint16_t head = 0;
	uint64_t v = 1;

	setup(&s, 0);
	show_request(&s);
	/* Offer a second request, truncate, and only then kick: the
	 * backend's next touch of the lost pages is past the file's end. */
	memcpy(s.ram + 0x80 + 4 + 2 * (s.avail_idx % 8), &head, 2);
	s.avail_idx++;
	memcpy(s.ram + 0x80 + 2, &s.avail_idx, 2);
	must(ftruncate(s.mfd, size) == 0, "ftruncate");
	printf("shrunk to %ld bytes\n", size);
	must(write(s.kick, &v, 8) == 8, "kick");
	pfd.fd = s.call;
	pfd.events = POLLIN;
	printf("%s\n", poll(&pfd, 1, 2000) == 1 ? "called" : "no call");
	printf("end\n");
	wait_hangup(s.fd, 10000);
	return 0;
}

/* A message one byte at a time, 0.7 s apart. */
static int slow(void)
{
	uint32_t h[3] = { 3, 1, 0 };        /* SET_OWNER */
	const uint8_t *b = (const uint8_t *)h;
	int fd = connect_to(), k;

	for (k = 0; k < 12; k++) {
		if (send(fd, b + k, 1, MSG_NOSIGNAL) != 1 || wait_hangup(fd, 700)) {
			printf("dropped after %d bytes\nend\n", k + 1);
			return 0;
		}
	}
	printf("NOT dropped: the whole message went through\nend\n");
	return 1;
}

/* One kick for 32768 chains of 1 MiB each. */
static int flood(void)
{
	struct session s;
	uint32_t num = 32768, i, len = 1u << 20;
	uint64_t a = GPA + 0x200000, v = 1;
	uint16_t flags = 2, zero = 0, idx = 0x8000;

	setup_ring(&s, 0, 4u << 20, num);
	memcpy(s.ram, &a, 8);
	memcpy(s.ram + 8, &len, 4);
	memcpy(s.ram + 12, &flags, 2);
	for (i = 0; i < num; i++)
		memcpy(s.ram + 16 * num + 4 + 2 * i, &zero, 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(s.ram + 16 * num + 2, &idx, 2);
	must(write(s.kick, &v, 8) == 8, "kick");
	printf("kicked\nend\n");
	wait_hangup(s.fd, 60000);
	return 0;
}

/* A chain in flight when the frontend goes away. */
static int hangup(void)
{
	struct session s;

	setup(&s, 0);
	offer_and_kick(&s);
	usleep(500000);
	close(s.fd);
	printf("hung up\nend\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: vu-peer SOCKET good|renegotiate|hostile|slow|flood|hangup|"
		        "latency N|shrink N\n"
		        "       vu-peer - floor N\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sock_path = argv[1];
	if (argc == 4 && (!strcmp(argv[2], "latency") || !strcmp(argv[2], "floor")))
		return latency(argv[2], atol(argv[3]));
	if (argc == 4 && !strcmp(argv[2], "shrink"))
		return shrink(atol(argv[3]));
	if (!strcmp(argv[2], "slow"))
		return slow();
	if (!strcmp(argv[2], "flood"))
		return flood();
	if (!strcmp(argv[2], "hangup"))
		return hangup();
	if (!strcmp(argv[2], "good"))
		return good(0);
	if (!strcmp(argv[2], "renegotiate"))
		return good(1);
	if (!strcmp(argv[2], "hostile"))
		return hostile();
	fprintf(stderr, "vu-peer: unknown mode %s\n", argv[2]);
	return 2;
}
