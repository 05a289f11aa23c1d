/*
 * fuzz_vhost_user.c - libFuzzer target for the vhost-user server.
 *
 * The fuzzer plays the frontend, the part user-mode Linux plays in real
 * life, and it plays it as badly as it likes.  We run the real server
 * (vu_listen, vu_pollfds, vu_serve: the same calls the Lua loop makes)
 * on a unix socket with a virtio-rng device behind it, connect to it as
 * a client, and turn the input into what a frontend can do:
 *
 *   op & 3 == 0  send one message: a 12-byte header (request, flags,
 *                size) and `size` bytes of payload, with op >> 2 saying
 *                which file descriptors ride along (count in bits 0..2,
 *                7 meaning nine, one more than allowed; kind in bits
 *                3..5: RAM, kick eventfd, call eventfd, the backend
 *                channel's pipe, a 4 KiB memfd, /dev/null, a pipe's
 *                read end, or 7: the next byte picks one of the odder
 *                kinds of fd_kinds[], such as /dev/zero, a 1 TiB memfd,
 *                a sealed memfd, a socket, a directory, a timerfd);
 *   op & 3 == 1  kick: write the kick eventfd, so a ring that took it
 *                gets walked by the rng backend;
 *   op & 3 == 2  poke shared memory, as the frontend's driver writes its
 *                rings: a 16-bit offset, a length byte, the bytes;
 *   op & 3 == 3  op >> 2 == 0: hang up and connect again; otherwise
 *                resize RAM's memfd under the server, to
 *                ram_sizes[(op >> 2) % N]: nothing, a page, half, all,
 *                twice, 2 MiB, 1 TiB (shrinking it is what a hostile
 *                frontend does to make the server fault; it must
 *                survive, with the device needing a reset).
 *
 * After each step the server is pumped until nothing is ready, and
 * whatever it sent back (replies, calls, backend requests) is drained.
 * A message cut short by the end of the input is sent as far as it goes
 * and the write side shut, so truncation is fuzzed too without waiting
 * for the server's one-second deadline.  At the end of each input we hang
 * up and check that the server gave back every file descriptor it was
 * handed; after every step, that the server and the device agree on
 * which rings run (check_rings).
 *
 *   make fuzz FUZZ_SECONDS=60
 *   FUZZ_VERBOSE=1 build/fuzz_vhost_user fuzz/corpus/vhost_user/SEED
 *                               (what each input did, for seed writers)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "rng.h"
#include "vhost_user.h"

#define RAM (64 * 1024)         /* the frontend's memory, one memfd */
#define SMALL 4096              /* a memfd too small for most tables */
#define MAX_STEPS 64
#define MAX_CONNECTS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vu_server srv;
static struct vdev dev;
static struct memory mem;
static uint8_t *ram;
static int ram_fd, small_fd, null_fd, kick_fd, call_fd, backend[2], spare[2];
/* The odder fds a message may carry (kind 7 and a byte). */
static int zero_fd, huge_fd, sealed_fd, sock_fd, dir_fd, timer_fd, file_fd, wronly_fd;
static int fd_kinds[8];
/* What RAM's memfd may be resized to; the fuzzer only touches the part
 * that is still there. */
static const uint64_t ram_sizes[] = { 0, 4096, RAM / 2, RAM, 2 * RAM, 2 << 20, 1ULL << 40 };
#define N_RAM_SIZES (sizeof(ram_sizes) / sizeof(ram_sizes[0]))
static uint64_t ram_now = RAM;
static int client = -1;
/* virtio-rng has no config space; ours has a few bytes, so that
 * GET_CONFIG and SET_CONFIG have something to read and write. */
static const uint8_t config[12] = "vmlua-fuzz!";
static unsigned baseline_fds;
static int verbose;

static void die(const char *what)
{
	perror(what);
	abort();
}

/* How many fds are open; with `show`, what each is. */
static unsigned count_fds(int show)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		die("opendir /proc/self/fd");
	while ((e = readdir(d))) {
		char link[300], target[256];
		ssize_t len;
		n++;
		if (!show || e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = 0;
		fprintf(stderr, "  fd %s: %s\n", e->d_name, target);
	}
	closedir(d);
	return n;
}

/* The rng backend, counting the chains it serves (for FUZZ_VERBOSE). */
static uint64_t chains;

static void counting_notify(struct vdev *d, unsigned q)
{
	uint64_t before = d->q[q].vq.pushes;
	rng_backend.notify(d, q);
	chains += d->q[q].vq.pushes - before;
}

static const struct vdev_backend counting_rng = {
	.name = "rng",
	.notify = counting_notify,
};

static void stop_server(void)
{
	vu_close(&srv);
}

static void setup(void)
{
	uint16_t num_max[1] = { 256 };
	char path[64], err[256];

	ram_fd = memfd_create("fuzz-vu-ram", MFD_CLOEXEC);
	small_fd = memfd_create("fuzz-vu-small", MFD_CLOEXEC);
	if (ram_fd < 0 || small_fd < 0 || ftruncate(ram_fd, RAM) < 0 ||
	    ftruncate(small_fd, SMALL) < 0)
		die("memfd");
	ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	if (ram == MAP_FAILED)
		die("mmap");
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	zero_fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
	huge_fd = memfd_create("fuzz-vu-huge", MFD_CLOEXEC);
	sealed_fd = memfd_create("fuzz-vu-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	dir_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	file_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	wronly_fd = memfd_create("fuzz-vu-wronly", MFD_CLOEXEC);
	if (zero_fd < 0 || huge_fd < 0 || sealed_fd < 0 || sock_fd < 0 || dir_fd < 0 ||
	    timer_fd < 0 || file_fd < 0 || wronly_fd < 0 ||
	    ftruncate(huge_fd, 1LL << 40) < 0 || ftruncate(sealed_fd, RAM) < 0 ||
	    ftruncate(wronly_fd, RAM) < 0 ||
	    fcntl(sealed_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		die("odd fds");
	{
		/* A memfd reopened write-only: mapping it shared for reading fails. */
		char p[64];
		int w;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", wronly_fd);
		w = open(p, O_WRONLY | O_CLOEXEC);
		if (w < 0)
			die("reopen memfd");
		close(wronly_fd);
		wronly_fd = w;
	}
	fd_kinds[0] = zero_fd;
	fd_kinds[1] = huge_fd;
	fd_kinds[2] = sealed_fd;
	fd_kinds[3] = sock_fd;
	fd_kinds[4] = dir_fd;
	fd_kinds[5] = timer_fd;
	fd_kinds[6] = file_fd;
	fd_kinds[7] = wronly_fd;
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (null_fd < 0 || kick_fd < 0 || call_fd < 0 ||
	    pipe2(backend, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    pipe2(spare, O_CLOEXEC | O_NONBLOCK) < 0)
		die("fds");

	vdev_init(&dev, VIRTIO_ID_RNG, 1, num_max, RNG_FEATURES, config, sizeof(config));
	dev.backend = &counting_rng;
	memory_init(&mem);
	snprintf(path, sizeof(path), "/tmp/vmlua-fuzz-vu-%d.sock", (int)getpid());
	if (vu_listen(&srv, path, &dev, &mem, err, sizeof(err)) < 0) {
		fprintf(stderr, "vu_listen: %s\n", err);
		abort();
	}
	atexit(stop_server);
}

static void drain(int fd)
{
	char buf[4096];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Let the server do whatever is ready, then take what it sent. */
static void pump(void)
{
	int round;

	for (round = 0; round < 8; round++) {
		struct pollfd pfd[VU_MAX_POLLFDS];
		int n = vu_pollfds(&srv, pfd);
		if (n <= 0 || poll(pfd, (nfds_t)n, 0) <= 0)
			break;
		vu_serve(&srv, pfd, n);
	}
	if (client >= 0) {
		char buf[4096];
		while (recv(client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	drain(call_fd);
	drain(backend[0]);
}

static void hang_up(void)
{
	if (client >= 0) {
		close(client);
		client = -1;
		pump();           /* the server sees EOF and resets */
	}
}

static int connect_client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	hang_up();
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client < 0)
		die("socket");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", srv.path);
	if (connect(client, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	pump();               /* accept */
	return srv.conn_fd >= 0 ? 0 : -1;
}

/* The fds a message carries, by the kind the input names (odd: the
 * byte that picks among fd_kinds[] for kind 7). */
static int pick_fd(unsigned kind, unsigned odd)
{
	switch (kind) {
	case 7: return fd_kinds[odd % 8];
	case 1: return kick_fd;
	case 2: return call_fd;
	case 3: return backend[1];
	case 4: return small_fd;
	case 5: return null_fd;
	case 6: return spare[0];
	default: return ram_fd;
	}
}

/* Send len bytes of message (header included) with nfds fds of kind. */
static void send_message(const uint8_t *msg, size_t len, unsigned nfds, unsigned kind,
                         unsigned odd)
{
	union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * 9)]; } ctl;
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[9];
	unsigned i;

	if (nfds) {
		struct cmsghdr *c;
		for (i = 0; i < nfds; i++)
			fds[i] = pick_fd(kind, odd);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	/* The server may have dropped us already: that is fine. */
	sendmsg(client, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * What the server and the device must agree on after every step: a ring
 * the server counts as running is one the device serves (unless the
 * device already needs a reset), and no queue is served from memory the
 * server has let go of.
 */
static void check_rings(void)
{
	unsigned q;

	for (q = 0; q < dev.nqueues; q++) {
		if (srv.conn_fd >= 0 && srv.ring[q].started && !dev.reason && !dev.q[q].ready) {
			fprintf(stderr, "ring %u runs for the server, not for the device\n", q);
			abort();
		}
		if (dev.q[q].ready && !mem.nregions) {
			fprintf(stderr, "queue %u is served without memory\n", q);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	unsigned steps, connects = 0;
	uint64_t one = 1;

	if (!ram) {
		setup();
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	}
	/* Counted afresh each time: between runs libFuzzer may start a
	 * symbolizer, whose pipes are not the server's to close. */
	baseline_fds = count_fds(0);
	if (ram_now != RAM && ftruncate(ram_fd, RAM) < 0)
		die("ftruncate RAM back");
	ram_now = RAM;
	memset(ram, 0, RAM);
	memcpy(dev.config, config, sizeof(config));
	srv.messages = srv.connections = srv.drops = dev.notifies = chains = 0;
	srv.last_error[0] = 0;
	if (connect_client() < 0)
		abort();
	connects++;

	for (steps = 0; data < end && steps < MAX_STEPS; steps++) {
		uint8_t op = *data++;

		if ((op & 3) != 3 && srv.conn_fd < 0) {
			/* Dropped: a hostile frontend simply comes back. */
			if (connects++ >= MAX_CONNECTS || connect_client() < 0)
				break;
		}
		if ((op & 3) == 0) {
			unsigned nfds = (op >> 2) & 7, kind = op >> 5, odd = 0;
			size_t have;
			uint32_t len;

			if (kind == 7) {
				if (data >= end)
					break;
				odd = *data++;
			}
			have = (size_t)(end - data);

			if (nfds == 7)
				nfds = 9;
			if (have < 12) {
				/* A header cut short: send what there is and stop. */
				send_message(data, have, nfds, kind, odd);
				shutdown(client, SHUT_WR);
				pump();
				break;
			}
			memcpy(&len, data + 8, 4);
			if (len > 512) {
				/* Oversized: the header alone is enough to refuse. */
				send_message(data, 12, nfds, kind, odd);
				data += 12;
			} else if (have < 12 + (size_t)len) {
				send_message(data, have, nfds, kind, odd);
				shutdown(client, SHUT_WR);
				pump();
				break;
			} else {
				send_message(data, 12 + len, nfds, kind, odd);
				data += 12 + len;
			}
		} else if ((op & 3) == 1) {
			if (write(kick_fd, &one, sizeof(one)) < 0)
				drain(kick_fd);
		} else if ((op & 3) == 2) {
			uint64_t limit, w;
			uint16_t off;
			uint8_t n;
			if (end - data < 3)
				break;
			memcpy(&off, data, 2);
			n = data[2];
			data += 3;
			if ((size_t)(end - data) < n)
				n = (uint8_t)(end - data);
			/* Only what is left of RAM: past its end is our SIGBUS. */
			limit = ram_now < RAM ? ram_now : RAM;
			w = (uint64_t)off + n <= limit ? n : off < limit ? limit - off : 0;
			memcpy(ram + off, data, w);
			data += n;
		} else if (op >> 2) {
			ram_now = ram_sizes[(op >> 2) % N_RAM_SIZES];
			if (ftruncate(ram_fd, (off_t)ram_now) < 0)
				die("ftruncate RAM");
		} else {
			if (connects++ >= MAX_CONNECTS || connect_client() < 0)
				break;
		}
		pump();
		check_rings();
	}
	hang_up();
	if (verbose)
		fprintf(stderr, "%llu messages, %llu connections, %llu drops (last: %s), "
		        "%llu notifies, %llu chains\n", (unsigned long long)srv.messages,
		        (unsigned long long)srv.connections, (unsigned long long)srv.drops,
		        srv.last_error[0] ? srv.last_error : "none",
		        (unsigned long long)dev.notifies, (unsigned long long)chains);
	drain(kick_fd);
	drain(spare[0]);
	if (srv.conn_fd >= 0 || mem.nregions) {
		fprintf(stderr, "the server kept a connection or memory after the hang-up\n");
		abort();
	}
	if (count_fds(0) != baseline_fds) {
		fprintf(stderr, "file descriptors leaked: %u open, %u before\n",
		        count_fds(1), baseline_fds);
		abort();
	}
	return 0;
}
