/*
 * cow.c - copy-on-write over a read-only master image.
 *
 * The master is opened read-only and never written.  Writes go to an
 * overlay file, a whole cluster at a time: the first write to a cluster
 * copies it up from the master, and a bitmap says which clusters the
 * overlay holds.  Reads take each cluster from wherever it lives.  This
 * is the pristine-master-plus-overlay root that strongSwan's UML test
 * framework kept, done at block level.
 *
 * The overlay is temporary (an unlinked file, gone with vmlua) unless it
 * is named; a named one can be reopened later over the same master.
 * Its layout:
 *
 *   0      header: "VMLUACOW", version, cluster shift, the master's
 *          size and mtime (a changed master makes the overlay invalid)
 *   4096   the bitmap, one bit per cluster, padded to 4 KiB
 *   data   cluster i at data + i << shift, sparse
 *
 * Crash safety: a cluster copied up since the last flush is not in the
 * on-disk bitmap, so after a crash it reads as the master did: the
 * unflushed write is lost, which is allowed, and nothing else is.  Flush
 * syncs the data, then writes and syncs the bitmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cow.h"
#include "errbuf.h"
#include "image.h"
#include "le.h"

#define MAGIC       "VMLUACOW"
#define VERSION     1u
#define SHIFT       16u                 /* 64 KiB clusters */
#define HEADER      4096u

struct cow {
	struct image im;        /* first: a struct cow is a struct image */
	int master, overlay;
	int named;
	unsigned shift;
	uint64_t clusters;
	uint8_t *bitmap;
	uint64_t bitmap_len;    /* bytes, padded to 4 KiB */
	uint64_t data;          /* offset of cluster 0 in the overlay */
	int dirty;              /* the bitmap changed since the last flush */
	uint8_t *buf;           /* one cluster, for copy-up */
};


static int has(const struct cow *c, uint64_t i) { return c->bitmap[i >> 3] >> (i & 7) & 1; }

static int open_temporary(char *err, size_t errlen)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/var/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/vmlua-cow-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return errbuf_set(err, errlen, "a temporary overlay in %s: %s", dir, strerror(errno));
	unlink(path);
	return fd;
}

static int write_header(struct cow *c, const struct stat *mst)
{
	uint8_t h[HEADER] = { 0 };

	memcpy(h, MAGIC, 8);
	put_le32(h + 8, VERSION);
	put_le32(h + 12, c->shift);
	put_le64(h + 16, c->im.size);
	put_le64(h + 24, (uint64_t)mst->st_mtim.tv_sec);
	put_le64(h + 32, (uint64_t)mst->st_mtim.tv_nsec);
	return io_pwrite_all(c->overlay, h, HEADER, 0);
}

/* A named overlay that exists: check it belongs to this master. */
static int read_header(struct cow *c, const struct stat *mst, const char *path,
                       char *err, size_t errlen)
{
	uint8_t h[HEADER];
	int rc = io_pread_zero(c->overlay, h, HEADER, 0);

	if (rc)
		return errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
	if (memcmp(h, MAGIC, 8) || le32(h + 8) != VERSION)
		return errbuf_set(err, errlen, "%s: not a vmlua overlay", path);
	if (le32(h + 12) != c->shift)
		return errbuf_set(err, errlen, "%s: cluster size 2^%u, not 2^%u", path,
		                  le32(h + 12), c->shift);
	if (le64(h + 16) != c->im.size || le64(h + 24) != (uint64_t)mst->st_mtim.tv_sec ||
	    le64(h + 32) != (uint64_t)mst->st_mtim.tv_nsec)
		return errbuf_set(err, errlen, "%s: made over a different master "
		                  "(its size or modification time changed)", path);
	rc = io_pread_zero(c->overlay, c->bitmap, c->bitmap_len, HEADER);
	if (rc)
		return errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
	return 0;
}

static struct cow *cow_of(struct image *im) { return (struct cow *)im; }

static int cow_read(struct image *im, void *buf, size_t len, uint64_t off)
{
	struct cow *c = cow_of(im);

	while (len) {
		uint64_t i = off >> c->shift, in = off & ((1ULL << c->shift) - 1);
		size_t k = (size_t)((1ULL << c->shift) - in);
		int rc;
		if (k > len)
			k = len;
		rc = has(c, i) ? io_pread_zero(c->overlay, buf, k, c->data + off)
		               : io_pread_zero(c->master, buf, k, off);
		if (rc)
			return rc;
		buf = (char *)buf + k, len -= k, off += k;
	}
	return 0;
}

static int cow_write(struct image *im, const void *buf, size_t len, uint64_t off)
{
	struct cow *c = cow_of(im);
	uint64_t cs = 1ULL << c->shift;

	while (len) {
		uint64_t i = off >> c->shift, in = off & (cs - 1);
		size_t k = (size_t)(cs - in);
		int rc;
		if (k > len)
			k = len;
		if (has(c, i)) {
			rc = io_pwrite_all(c->overlay, buf, k, c->data + off);
		} else {
			/* Copy the cluster up, with this write in it. */
			uint64_t start = i << c->shift;
			size_t n = (size_t)(c->im.size - start < cs ? c->im.size - start : cs);
			rc = k == n ? 0 : io_pread_zero(c->master, c->buf, n, start);
			if (!rc) {
				memcpy(c->buf + in, buf, k);
				rc = io_pwrite_all(c->overlay, c->buf, n, c->data + start);
			}
			if (!rc) {
				c->bitmap[i >> 3] |= (uint8_t)(1u << (i & 7));
				c->dirty = 1;
			}
		}
		if (rc)
			return rc;
		buf = (const char *)buf + k, len -= k, off += k;
	}
	return 0;
}

/* Zeros are written: the master's data under them must not show. */
static int cow_zero(struct image *im, uint64_t off, uint64_t len, int unmap)
{
	static const uint8_t zeros[64 << 10];

	(void)unmap;
	while (len) {
		size_t k = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int rc = cow_write(im, zeros, k, off);
		if (rc)
			return rc;
		off += k, len -= k;
	}
	return 0;
}

static int cow_flush(struct image *im)
{
	struct cow *c = cow_of(im);

	if (!c->named)
		return 0;           /* a temporary overlay does not outlive vmlua */
	if (fdatasync(c->overlay))
		return -errno;
	if (c->dirty) {
		int rc = io_pwrite_all(c->overlay, c->bitmap, c->bitmap_len, HEADER);
		if (rc)
			return rc;
		if (fdatasync(c->overlay))
			return -errno;
		c->dirty = 0;
	}
	return 0;
}

static void cow_close(struct image *im)
{
	struct cow *c = cow_of(im);

	if (c->overlay >= 0) {
		if (c->named && c->bitmap)
			(void)cow_flush(im);
		close(c->overlay);
	}
	if (c->master >= 0)
		close(c->master);
	free(c->bitmap);
	free(c->buf);
	free(c);
}

/* Discard is advisory; under copy-on-write the master's data must stay
 * visible as it was or read as zeros, and the overlay keeps it as it was. */
static int cow_discard(struct image *im, uint64_t off, uint64_t len)
{
	(void)im, (void)off, (void)len;
	return 0;
}

static const struct image_ops cow_ops = {
	.read = cow_read,
	.write = cow_write,
	.zero = cow_zero,
	.discard = cow_discard,
	.flush = cow_flush,
	.close = cow_close,
};

struct image *cow_open(const char *master, const char *overlay, char *err, size_t errlen)
{
	struct cow *c = calloc(1, sizeof(*c));
	struct stat mst, ost;
	int64_t size;

	if (!c) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	c->im.ops = &cow_ops;
	c->master = c->overlay = -1;
	c->shift = SHIFT;
	c->master = open(master, O_RDONLY | O_CLOEXEC);
	if (c->master < 0) {
		errbuf_set(err, errlen, "%s: %s", master, strerror(errno));
		goto fail;
	}
	size = image_size(c->master, master, err, errlen);
	if (size < 0)
		goto fail;
	if (fstat(c->master, &mst)) {
		errbuf_set(err, errlen, "%s: %s", master, strerror(errno));
		goto fail;
	}
	c->im.size = (uint64_t)size;
	c->clusters = (c->im.size + (1ULL << c->shift) - 1) >> c->shift;
	c->bitmap_len = ((c->clusters + 7) / 8 + HEADER - 1) / HEADER * HEADER;
	c->data = HEADER + c->bitmap_len;
	c->bitmap = calloc(1, c->bitmap_len);
	c->buf = malloc(1ULL << c->shift);
	if (!c->bitmap || !c->buf) {
		errbuf_set(err, errlen, "%s: out of memory for the overlay's bitmap", master);
		goto fail;
	}
	if (!overlay) {
		c->overlay = open_temporary(err, errlen);
		if (c->overlay < 0 || write_header(c, &mst))
			goto fail;
		return &c->im;
	}
	c->named = 1;
	c->overlay = open(overlay, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (c->overlay < 0 || fstat(c->overlay, &ost)) {
		errbuf_set(err, errlen, "%s: %s", overlay, strerror(errno));
		goto fail;
	}
	if (ost.st_ino == mst.st_ino && ost.st_dev == mst.st_dev) {
		errbuf_set(err, errlen, "%s: the overlay cannot be the master itself", overlay);
		goto fail;
	}
	if (ost.st_size == 0) {
		if (write_header(c, &mst) || io_pwrite_all(c->overlay, c->bitmap, c->bitmap_len, HEADER) ||
		    fdatasync(c->overlay)) {
			errbuf_set(err, errlen, "%s: %s", overlay, strerror(errno));
			goto fail;
		}
	} else if (read_header(c, &mst, overlay, err, errlen)) {
		goto fail;
	}
	return &c->im;
fail:
	cow_close(&c->im);
	return NULL;
}
