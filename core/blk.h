/*
 * blk.h - virtio-blk over a raw image, or copy-on-write over a read-only
 * master.  See blk.c.
 */
#ifndef VMLUA_BLK_H
#define VMLUA_BLK_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"

#define BLK_SECTOR     512u          /* = IMAGE_SECTOR */
#define BLK_ID_BYTES   20u           /* GET_ID answers this many bytes */
#define BLK_CONFIG_LEN 60u           /* struct virtio_blk_config */

struct blk_opts {
	const char *path;
	int readonly;
	const char *serial;     /* NULL: the file's name */
	int cow;                /* writes go to an overlay; the master is never written */
	const char *overlay;    /* cow: a named overlay file (kept), NULL: temporary */
};

struct blk;

struct blk *blk_open(const struct blk_opts *o, char *err, size_t errlen);
void blk_close(struct blk *b);
/* The device's features and config space for a queue of `queue` entries. */
uint64_t blk_features(const struct blk *b);
void blk_config(const struct blk *b, unsigned queue, uint8_t config[BLK_CONFIG_LEN]);

/* The backend: backend_data is the struct blk, which destroy closes. */
extern const struct vdev_backend blk_backend;

#endif
