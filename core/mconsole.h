/*
 * mconsole.h - the client side of user-mode Linux's management console
 * (mconsole): one command out, one reply back, over a datagram socket.
 * See mconsole.c.
 */
#ifndef VMLUA_MCONSOLE_H
#define VMLUA_MCONSOLE_H

#include <stddef.h>
#include <stdint.h>

/* The protocol's numbers, as UML's arch/um/drivers/mconsole.h has them. */
#define MCONSOLE_MAGIC    0xcafebabeu
#define MCONSOLE_VERSION  2u
#define MCONSOLE_MAX_DATA 512u    /* a command is shorter than this */
/* Our own bound on a reply made of many packets ("proc", "sysrq"). */
#define MCONSOLE_REPLY_MAX (1u << 20)

/* A reply, gathered packet by packet until one says there is no more. */
struct mconsole_reply {
	uint32_t err;      /* nonzero: UML refused the command; text says why */
	char *text;        /* NUL-terminated; malloc'd, mconsole_reply_free */
	size_t len;
	size_t cap;
	int done;          /* the last packet has come */
};

/* A datagram socket, bound to an address of its own (UML replies to it),
 * connected to UML's mconsole socket at path, non-blocking.  0 and the
 * fd in *fd, or -errno with the reason in err (-ENOENT: no socket there
 * yet). */
int mconsole_connect(const char *path, int *fd, char *err, size_t errlen);

/* Send one command (shorter than MCONSOLE_MAX_DATA bytes, no NUL); any
 * stale packet still queued is dropped first.  0, or -errno with the
 * reason in err (-ECONNREFUSED: UML has gone). */
int mconsole_send(int fd, const char *cmd, size_t len, char *err, size_t errlen);

/* Take the packets that have arrived into r: 1 once the reply is whole,
 * 0 when more is to come, -errno with the reason in err (-EPROTO: a
 * malformed packet; -EMSGSIZE: the reply outgrew MCONSOLE_REPLY_MAX). */
int mconsole_recv(int fd, struct mconsole_reply *r, char *err, size_t errlen);

/* Both, waiting up to timeout_ms for the whole reply (-ETIMEDOUT). */
int mconsole_request(int fd, const char *cmd, size_t len, int timeout_ms,
                     struct mconsole_reply *r, char *err, size_t errlen);

void mconsole_reply_free(struct mconsole_reply *r);

#endif
