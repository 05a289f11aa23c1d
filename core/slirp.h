/*
 * slirp.h - user-mode networking (libslirp in a thread).  See slirp.c.
 */
#ifndef VMLUA_SLIRP_H
#define VMLUA_SLIRP_H

#include <stddef.h>
#include <stdint.h>

struct slink;

/* forwards: "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" (or udp).
 * With sandbox, the thread runs under the I/O seccomp filter.  NULL
 * with err set on failure. */
struct slink *slink_new(const char *const *forwards, unsigned nforwards, int sandbox,
                        char *err, size_t errlen);
void slink_free(struct slink *s);
/* Readable when frames wait for the guest. */
int slink_fd(const struct slink *s);
void slink_drain_wakeup(struct slink *s);
/* A frame from the guest (copied). */
void slink_send(struct slink *s, const uint8_t *frame, size_t len);
/* The next frame for the guest into buf; its length, or 0 if none. */
size_t slink_recv(struct slink *s, uint8_t *buf, size_t cap);

#endif
