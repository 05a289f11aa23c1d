/*
 * iov.h - copying between a flat buffer and a chain's iovecs (already
 * checked to lie in guest memory by virtq.c), from a byte offset on.
 */
#ifndef VMLUA_IOV_H
#define VMLUA_IOV_H

#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

/* Copy up to len bytes at offset off of iov[0..n) into buf; how many. */
static inline size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off,
                                void *buf, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, k;
		if (off >= l) {
			off -= l;
			continue;
		}
		k = l - off < len - done ? l - off : len - done;
		memcpy((char *)buf + done, (char *)iov[i].iov_base + off, k);
		done += k;
		off = 0;
	}
	return done;
}

/* Copy up to len bytes of buf into iov[0..n) from offset off; how many. */
static inline size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off,
                                  const void *buf, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, k;
		if (off >= l) {
			off -= l;
			continue;
		}
		k = l - off < len - done ? l - off : len - done;
		memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, k);
		done += k;
		off = 0;
	}
	return done;
}

#endif
