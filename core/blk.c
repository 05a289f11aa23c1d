/*
 * blk.c - virtio-blk (device id 2) over a raw image file.
 *
 * A request is a chain: a 16-byte header the device reads (type,
 * reserved, sector), the data (read for OUT, DISCARD and WRITE_ZEROES,
 * written for IN and GET_ID), and one status byte the device writes, the
 * chain's last writable byte.  The ring code (virtq.c) has already kept
 * every buffer inside guest memory; here each request is checked against
 * the disk: a header short of 16 bytes, a length that is not whole
 * sectors, a range past the end (with overflow checks), a write to a
 * read-only disk all answer IOERR; an unknown type answers UNSUPP.  A
 * chain with no writable byte cannot be answered at all: it is returned
 * with nothing written and counted as an error.  None of this touches
 * the host beyond the image.
 *
 * FLUSH answers only after fdatasync has returned, so what the guest was
 * told is on disk is on disk.  With copy-on-write (cow.c) every write
 * goes to an overlay and the master is opened read-only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "blk.h"
#include "cow.h"
#include "errbuf.h"
#include "image.h"
#include "iov.h"
#include "le.h"
#include "virtio.h"

/* Request types and status values (virtio 1.2, 5.2.6). */
#define T_IN            0
#define T_OUT           1
#define T_FLUSH         4
#define T_GET_ID        8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

/* Feature bits (5.2.3). */
#define F_SEG_MAX       2
#define F_RO            5
#define F_BLK_SIZE      6
#define F_FLUSH         9
#define F_DISCARD      13
#define F_WRITE_ZEROES 14

#define SEGMENTS_MAX   32            /* discard / write-zeroes ranges per request */
#define RANGE_SECTORS  0x400000u     /* 2 GiB per discard / write-zeroes range */

struct blk {
	struct image *img;      /* raw, or copy-on-write over a master */
	int readonly;
	uint64_t sectors;
	char serial[BLK_ID_BYTES];
	int64_t reads, writes, flushes, discards, zeroes, errors, unsupported;
	int64_t bytes_read, bytes_written;
};


/* ---- chains ---------------------------------------------------------- */

/* Move `len` bytes between the image at `pos` and the iovecs from offset
 * off on, in place: `in` reads the image into them, else writes them. */
static int transfer(struct blk *b, const struct iovec *iov, unsigned n, size_t off,
                    uint64_t len, uint64_t pos, int in)
{
	unsigned i;

	for (i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len, k;
		char *p;
		int rc;
		if (off >= l) {
			off -= l;
			continue;
		}
		p = (char *)iov[i].iov_base + off;
		k = l - off < len ? l - off : (size_t)len;
		rc = in ? b->img->ops->read(b->img, p, k, pos)
		        : b->img->ops->write(b->img, p, k, pos);
		if (rc)
			return rc;
		pos += k, len -= k, off = 0;
	}
	return 0;
}

/* Is [sector, sector + count) on the disk?  No overflow either way. */
static int in_range(const struct blk *b, uint64_t sector, uint64_t count)
{
	return count <= b->sectors && sector <= b->sectors - count;
}

/* DISCARD and WRITE_ZEROES: 16-byte ranges (sector, count, flags). */
static int ranges(struct blk *b, const struct virtq_chain *c, uint32_t type)
{
	uint64_t len = c->read_len - 16, i;
	uint8_t seg[16];

	if (b->readonly)
		return S_IOERR;
	if (len == 0 || len % 16 || len / 16 > SEGMENTS_MAX)
		return S_IOERR;
	for (i = 0; i < len / 16; i++) {
		uint64_t sector;
		uint32_t count, flags;
		int rc;

		iov_to_buf(c->iov, c->nread, 16 + i * 16, seg, 16);
		sector = le64(seg), count = le32(seg + 8), flags = le32(seg + 12);
		/* Bit 0 is "unmap", allowed for WRITE_ZEROES only. */
		if (flags & ~(type == T_WRITE_ZEROES ? 1u : 0u))
			return S_UNSUPP;
		if (count > RANGE_SECTORS || !in_range(b, sector, count))
			return S_IOERR;
		rc = type == T_DISCARD
		   ? b->img->ops->discard(b->img, sector * BLK_SECTOR, (uint64_t)count * BLK_SECTOR)
		   : b->img->ops->zero(b->img, sector * BLK_SECTOR, (uint64_t)count * BLK_SECTOR, flags & 1);
		if (rc)
			return S_IOERR;
	}
	return S_OK;
}

/* One request; returns its status. */
static int request(struct blk *b, const struct virtq_chain *c)
{
	const struct iovec *wiov = c->iov + c->nread;
	unsigned nw = c->niov - c->nread;
	uint64_t data = c->write_len - 1;   /* writable bytes before the status */
	uint8_t hdr[16];
	uint32_t type;
	uint64_t sector, len;

	if (c->read_len < 16)
		return S_IOERR;
	iov_to_buf(c->iov, c->nread, 0, hdr, 16);
	type = le32(hdr), sector = le64(hdr + 8);
	switch (type) {
	case T_IN:
		len = data;
		if (len % BLK_SECTOR || !in_range(b, sector, len / BLK_SECTOR))
			return S_IOERR;
		if (transfer(b, wiov, nw, 0, len, sector * BLK_SECTOR, 1))
			return S_IOERR;
		b->reads++, b->bytes_read += (int64_t)len;
		return S_OK;
	case T_OUT:
		len = c->read_len - 16;
		if (b->readonly || len % BLK_SECTOR || !in_range(b, sector, len / BLK_SECTOR))
			return S_IOERR;
		if (transfer(b, c->iov, c->nread, 16, len, sector * BLK_SECTOR, 0))
			return S_IOERR;
		b->writes++, b->bytes_written += (int64_t)len;
		return S_OK;
	case T_FLUSH:
		b->flushes++;
		return b->img->ops->flush(b->img) ? S_IOERR : S_OK;
	case T_GET_ID:
		/* At most 20 bytes, and never over the status byte. */
		iov_from_buf(wiov, nw, 0, b->serial, data < BLK_ID_BYTES ? data : BLK_ID_BYTES);
		return S_OK;
	case T_DISCARD:
	case T_WRITE_ZEROES: {
		int st = ranges(b, c, type);
		if (st == S_OK)
			*(type == T_DISCARD ? &b->discards : &b->zeroes) += 1;
		return st;
	}
	default:
		return S_UNSUPP;
	}
}

/* The status byte: the last writable byte of the chain. */
static void put_status(const struct virtq_chain *c, uint8_t st)
{
	unsigned i = c->niov;

	while (i-- > c->nread)
		if (c->iov[i].iov_len) {
			((uint8_t *)c->iov[i].iov_base)[c->iov[i].iov_len - 1] = st;
			return;
		}
}

static void blk_notify(struct vdev *d, unsigned qi)
{
	struct blk *b = d->backend_data;
	struct virtq *q = &d->q[qi].vq;
	struct virtq_chain c;

	while (virtq_pop(q, &c) > 0) {
		uint32_t written = 0;
		if (c.write_len == 0) {
			b->errors++;        /* nowhere to say so */
		} else {
			int st = request(b, &c);
			if (st == S_IOERR)
				b->errors++;
			else if (st == S_UNSUPP)
				b->unsupported++;
			put_status(&c, (uint8_t)st);
			written = c.write_len > UINT32_MAX ? UINT32_MAX : (uint32_t)c.write_len;
		}
		virtq_push(q, c.head, written);
		virtq_chain_release(&c);
	}
	vdev_interrupt(d, qi);
}

static int blk_field(struct vdev *d, const char *name, int64_t *v)
{
	static const struct vdev_counter counters[] = {
		{ "reads", offsetof(struct blk, reads) },
		{ "writes", offsetof(struct blk, writes) },
		{ "flushes", offsetof(struct blk, flushes) },
		{ "discards", offsetof(struct blk, discards) },
		{ "write_zeroes", offsetof(struct blk, zeroes) },
		{ "errors", offsetof(struct blk, errors) },
		{ "unsupported", offsetof(struct blk, unsupported) },
		{ "bytes_read", offsetof(struct blk, bytes_read) },
		{ "bytes_written", offsetof(struct blk, bytes_written) },
	};
	const struct blk *b = d->backend_data;

	if (b && !strcmp(name, "sectors")) {
		*v = (int64_t)b->sectors;
		return 1;
	}
	if (b && !strcmp(name, "readonly")) {
		*v = b->readonly;
		return 1;
	}
	return vdev_counter(b, counters, sizeof(counters) / sizeof(counters[0]), name, v);
}

static void blk_destroy(struct vdev *d)
{
	blk_close(d->backend_data);
	d->backend_data = NULL;
}

const struct vdev_backend blk_backend = {
	.name = "blk",
	.notify = blk_notify,
	.field = blk_field,
	.destroy = blk_destroy,
};

/* ---- opening --------------------------------------------------------- */

struct blk *blk_open(const struct blk_opts *o, char *err, size_t errlen)
{
	struct blk *b = calloc(1, sizeof(*b));
	const char *base;

	if (!b) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	b->readonly = o->readonly;
	b->img = o->cow ? cow_open(o->path, o->overlay, err, errlen)
	                : image_open_raw(o->path, o->readonly, err, errlen);
	if (!b->img)
		goto fail;
	b->sectors = b->img->size / BLK_SECTOR;
	base = o->serial;
	if (!base) {
		base = strrchr(o->path, '/');
		base = base ? base + 1 : o->path;
	}
	/* Zero-padded, and not terminated when it fills all 20 bytes. */
	memcpy(b->serial, base, strnlen(base, sizeof(b->serial)));
	return b;
fail:
	blk_close(b);
	return NULL;
}

void blk_close(struct blk *b)
{
	if (!b)
		return;
	image_close(b->img);
	free(b);
}

uint64_t blk_features(const struct blk *b)
{
	uint64_t f = 1ULL << F_SEG_MAX | 1ULL << F_BLK_SIZE | 1ULL << F_FLUSH |
	             1ULL << VIRTIO_RING_F_INDIRECT_DESC | 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (b->readonly)
		f |= 1ULL << F_RO;
	else
		f |= 1ULL << F_DISCARD | 1ULL << F_WRITE_ZEROES;
	return f;
}

void blk_config(const struct blk *b, unsigned queue, uint8_t c[BLK_CONFIG_LEN])
{
	memset(c, 0, BLK_CONFIG_LEN);
	put_le64(c + 0, b->sectors);                    /* capacity */
	put_le32(c + 12, queue > 2 ? queue - 2 : 1);    /* seg_max */
	put_le32(c + 20, BLK_SECTOR);                   /* blk_size */
	put_le32(c + 36, RANGE_SECTORS);                /* max_discard_sectors */
	put_le32(c + 40, SEGMENTS_MAX);                 /* max_discard_seg */
	put_le32(c + 44, 8);                            /* discard_sector_alignment: 4 KiB */
	put_le32(c + 48, RANGE_SECTORS);                /* max_write_zeroes_sectors */
	put_le32(c + 52, SEGMENTS_MAX);                 /* max_write_zeroes_seg */
	c[56] = 1;                                   /* write_zeroes_may_unmap */
}
