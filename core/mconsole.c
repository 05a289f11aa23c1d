/*
 * mconsole.c - talking to a user-mode Linux kernel through its management
 * console.
 *
 * A UML kernel built with CONFIG_MCONSOLE listens on a datagram socket in
 * its uml_dir (for vmlua: <run directory>/vm/mconsole).  A client sends
 * one request, a small header and the command as text ("version",
 * "sysrq s", "stop", "go", "cad", "config con1", ...), and the kernel
 * answers to the address the request came from: so the client's own
 * socket must have an address.  Ours binds to an unnamed one in the
 * abstract namespace (autobind), which leaves no file behind and needs
 * no permission to be written to.  We connect() the socket too: a
 * connected datagram socket keeps reaching its peer after vmlua has
 * dropped root or entered a chroot, where the socket's path no longer
 * can be.
 *
 * A request is three host-endian 32-bit words, magic 0xcafebabe, version
 * 2 and the length of the command, then the command itself (UML puts the
 * NUL there).  A reply is three words too, err, more and len, then len
 * bytes of text whose last is a NUL.  A long answer comes as several
 * packets, each but the last with more = 1; only the first may carry
 * err.  The reply to "sysrq" is whatever the kernel printed while doing
 * it, then an empty last packet.
 *
 * "stop" is special: the kernel answers "stopped" and then does nothing
 * but read requests from the same socket until a "go" arrives (it still
 * answers the others meanwhile, "version" or "sysrq").  The whole guest
 * stands still, its timers too, without any signal sent to it: unlike a
 * SIGSTOP, which its ptrace machinery takes for a dying init.
 *
 * Everything a reply says is checked before it is believed: it comes
 * from the guest's kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "errbuf.h"
#include "mconsole.h"

/* The packets, as they travel. */
struct mc_request_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t len;
};

struct mc_reply_hdr {
	uint32_t err;
	uint32_t more;
	uint32_t len;
};

_Static_assert(sizeof(struct mc_request_hdr) == 12, "request header is 3 words");
_Static_assert(sizeof(struct mc_reply_hdr) == 12, "reply header is 3 words");

static int fail(char *err, size_t errlen, int e, const char *fmt, const char *arg)
{
	errbuf_set(err, errlen, fmt, arg, strerror(e));
	return -e;
}

int mconsole_connect(const char *path, int *fd, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	size_t n = strlen(path);
	int s, e;

	*fd = -1;
	if (n >= sizeof(sa.sun_path))
		return errbuf_set(err, errlen, "%s: path too long for a socket", path), -ENAMETOOLONG;
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return fail(err, errlen, errno, "socket for %s: %s", path);
	/* Only the family: the kernel picks a fresh abstract address.  The
	 * rest of sa is zeroed all the same (valgrind reads it). */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0) {
		e = errno;
		close(s);
		return fail(err, errlen, e, "bind a socket for %s: %s", path);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n + 1);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(s);
		if (e == ECONNREFUSED)
			return errbuf_set(err, errlen, "%s: nobody listens there (linux.uml has ended?)",
			                  path), -e;
		return fail(err, errlen, e, "%s: %s", path);
	}
	*fd = s;
	return 0;
}

/* Did sending fail because the other side has gone? */
static int gone(int e)
{
	return e == ECONNREFUSED || e == ECONNRESET || e == ENOTCONN || e == EPIPE || e == ENOENT;
}

int mconsole_send(int fd, const char *cmd, size_t len, char *err, size_t errlen)
{
	struct {
		struct mc_request_hdr h;
		char data[MCONSOLE_MAX_DATA];
	} req;
	char junk[16];
	ssize_t n;

	if (len >= MCONSOLE_MAX_DATA)
		return errbuf_set(err, errlen, "command longer than %u bytes",
		                  MCONSOLE_MAX_DATA - 1), -EINVAL;
	if (memchr(cmd, '\0', len))
		return errbuf_set(err, errlen, "command holds a NUL byte"), -EINVAL;
	/* What is still queued answers an earlier request (one we gave up
	 * waiting for): it must not be taken for this one's reply. */
	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_TRUNC) >= 0)
		;
	req.h.magic = MCONSOLE_MAGIC;
	req.h.version = MCONSOLE_VERSION;
	req.h.len = (uint32_t)len;
	memcpy(req.data, cmd, len);
	n = send(fd, &req, sizeof(req.h) + len, MSG_NOSIGNAL);
	if (n < 0 && gone(errno))
		return errbuf_set(err, errlen, "the mconsole socket is closed (linux.uml has ended)"),
		       -errno;
	if (n < 0)
		return fail(err, errlen, errno, "%ssend: %s", "");
	if ((size_t)n != sizeof(req.h) + len)
		return errbuf_set(err, errlen, "send: short write (%zd bytes)", n), -EIO;
	return 0;
}

/* Append one packet's text to the reply. */
static int append(struct mconsole_reply *r, const char *s, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 1024;
		char *p;
		while (cap < r->len + n + 1)
			cap *= 2;
		p = realloc(r->text, cap);
		if (!p)
			return -ENOMEM;
		r->text = p;
		r->cap = cap;
	}
	memcpy(r->text + r->len, s, n);
	r->len += n;
	r->text[r->len] = '\0';
	return 0;
}

int mconsole_recv(int fd, struct mconsole_reply *r, char *err, size_t errlen)
{
	/* One byte more than the largest packet UML sends: a bigger one
	 * shows as a length we did not expect rather than being cut. */
	char buf[sizeof(struct mc_reply_hdr) + MCONSOLE_MAX_DATA + 1];
	struct mc_reply_hdr h;
	ssize_t n;
	size_t text;

	while (!r->done) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0 && gone(errno))
			return errbuf_set(err, errlen, "the mconsole socket is closed (linux.uml has ended)"),
			       -errno;
		if (n < 0)
			return fail(err, errlen, errno, "%srecv: %s", "");
		/* The packet is the guest's word: check each field. */
		if ((size_t)n < sizeof(h))
			return errbuf_set(err, errlen, "bad reply: %zd bytes, shorter than its header", n),
			       -EPROTO;
		memcpy(&h, buf, sizeof(h));
		if (h.len < 1 || h.len > MCONSOLE_MAX_DATA)
			return errbuf_set(err, errlen, "bad reply: length %u (1 to %u expected)",
			                  h.len, MCONSOLE_MAX_DATA), -EPROTO;
		if ((size_t)n != sizeof(h) + h.len)
			return errbuf_set(err, errlen, "bad reply: length %u, but %zu bytes came",
			                  h.len, (size_t)n - sizeof(h)), -EPROTO;
		if (h.more > 1)
			return errbuf_set(err, errlen, "bad reply: 'more' is %u (0 or 1 expected)", h.more),
			       -EPROTO;
		/* The text ends at its NUL, which must be the last byte. */
		text = strnlen(buf + sizeof(h), h.len);
		if (text != h.len - 1)
			return errbuf_set(err, errlen, "bad reply: its text does not end with the "
			                  "packet (a NUL at %zu of %u)", text, h.len), -EPROTO;
		if (r->len + text > MCONSOLE_REPLY_MAX)
			return errbuf_set(err, errlen, "reply longer than %u bytes", MCONSOLE_REPLY_MAX),
			       -EMSGSIZE;
		if (append(r, buf + sizeof(h), text) < 0)
			return errbuf_set(err, errlen, "out of memory"), -ENOMEM;
		if (h.err)
			r->err = h.err;
		r->done = !h.more;
	}
	return 1;
}

int mconsole_request(int fd, const char *cmd, size_t len, int timeout_ms,
                     struct mconsole_reply *r, char *err, size_t errlen)
{
	long long deadline = (clock_ns() / 1000000) + timeout_ms;
	int rc = mconsole_send(fd, cmd, len, err, errlen);

	while (rc == 0) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - (clock_ns() / 1000000);

		rc = mconsole_recv(fd, r, err, errlen);
		if (rc != 0)
			break;
		if (left <= 0)
			return errbuf_set(err, errlen, "no reply within %d ms", timeout_ms), -ETIMEDOUT;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return fail(err, errlen, errno, "%spoll: %s", "");
	}
	return rc < 0 ? rc : 0;
}

void mconsole_reply_free(struct mconsole_reply *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}
