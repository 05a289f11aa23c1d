/*
 * image.c - raw disk images, and the size check every image passes.
 *
 * A raw image is the file itself: reads and writes go straight to it,
 * zeros become a punched hole or a zeroed range where the filesystem can
 * make one (written out otherwise), a flush is fdatasync.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include "errbuf.h"
#include "image.h"

#define ZERO_CHUNK (64u << 10)

int64_t image_size(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	uint64_t bytes;

	if (fstat(fd, &st))
		return errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes))
			return errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		return errbuf_set(err, errlen, "%s: not a regular file or block device", path);
	}
	if (bytes == 0)
		return errbuf_set(err, errlen, "%s: empty image", path);
	if (bytes % IMAGE_SECTOR)
		return errbuf_set(err, errlen, "%s: size %llu is not a whole number of 512-byte sectors",
		                  path, (unsigned long long)bytes);
	return (int64_t)bytes;
}

/* ---- raw ------------------------------------------------------------- */

struct raw {
	struct image im;
	int fd;
};

static int raw_fd(struct image *im) { return ((struct raw *)im)->fd; }

static int raw_read(struct image *im, void *buf, size_t len, uint64_t off)
{
	return io_pread_zero(raw_fd(im), buf, len, off);
}

static int raw_write(struct image *im, const void *buf, size_t len, uint64_t off)
{
	return io_pwrite_all(raw_fd(im), buf, len, off);
}

static int raw_zero(struct image *im, uint64_t off, uint64_t len, int unmap)
{
	static const uint8_t zeros[ZERO_CHUNK];
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
	                 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (fallocate(raw_fd(im), mode, (off_t)off, (off_t)len) == 0)
		return 0;
	/* Not every filesystem (or a block device) can: write the zeros. */
	while (len) {
		size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
		int rc = io_pwrite_all(raw_fd(im), zeros, n, off);
		if (rc)
			return rc;
		off += n, len -= n;
	}
	return 0;
}

static int raw_discard(struct image *im, uint64_t off, uint64_t len)
{
	/* A hole where the filesystem can punch one, else nothing. */
	(void)fallocate(raw_fd(im), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	                (off_t)off, (off_t)len);
	return 0;
}

static int raw_flush(struct image *im)
{
	return fdatasync(raw_fd(im)) ? -errno : 0;
}

static void raw_close(struct image *im)
{
	struct raw *r = (struct raw *)im;

	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

static const struct image_ops raw_ops = {
	.read = raw_read,
	.write = raw_write,
	.zero = raw_zero,
	.discard = raw_discard,
	.flush = raw_flush,
	.close = raw_close,
};

struct image *image_open_raw(const char *path, int readonly, char *err, size_t errlen)
{
	struct raw *r = calloc(1, sizeof(*r));
	int64_t size;

	if (!r) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	r->im.ops = &raw_ops;
	r->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (r->fd < 0) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		raw_close(&r->im);
		return NULL;
	}
	size = image_size(r->fd, path, err, errlen);
	if (size < 0) {
		raw_close(&r->im);
		return NULL;
	}
	r->im.size = (uint64_t)size;
	return &r->im;
}
