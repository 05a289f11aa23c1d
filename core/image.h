/*
 * image.h - a disk image: the bytes behind a virtio-blk device.  A raw
 * file (or block device) here, or copy-on-write over a master (cow.c),
 * behind one set of operations, so blk.c never asks which it has.
 */
#ifndef VMLUA_IMAGE_H
#define VMLUA_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "fileio.h"

#define IMAGE_SECTOR 512u

struct image;

/* Each returns 0 or -errno. */
struct image_ops {
	int (*read)(struct image *im, void *buf, size_t len, uint64_t off);
	int (*write)(struct image *im, const void *buf, size_t len, uint64_t off);
	/* Zeros over [off, off+len); unmap: the range may become a hole. */
	int (*zero)(struct image *im, uint64_t off, uint64_t len, int unmap);
	/* Advisory: the range's contents may be dropped. */
	int (*discard)(struct image *im, uint64_t off, uint64_t len);
	/* Returns once what was written is on stable storage. */
	int (*flush)(struct image *im);
	void (*close)(struct image *im);
};

struct image {
	const struct image_ops *ops;
	uint64_t size;          /* bytes, whole sectors, never 0 */
};

/* A raw image opened read-only or read-write.  NULL with err set. */
struct image *image_open_raw(const char *path, int readonly, char *err, size_t errlen);
/* Flushes what needs flushing (a named overlay), then frees everything. */
static inline void image_close(struct image *im) { if (im) im->ops->close(im); }

/*
 * The size in bytes of an open image: a regular file or a block device,
 * whole sectors, not empty.  -1 with err set otherwise.
 */
int64_t image_size(int fd, const char *path, char *err, size_t errlen);

#endif
