/*
 * memory.h - guest-physical memory.  See memory.c for the story.
 */
#ifndef VMLUA_MEMORY_H
#define VMLUA_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define MEMORY_MAX_REGIONS 16

struct memory_region {
	uint64_t gpa;          /* first guest-physical address */
	uint64_t size;         /* bytes, a multiple of the page size */
	uint8_t *host;         /* where gpa is mapped in this process */
	int fd;                /* backing file (not owned), or -1 */
	uint64_t fd_offset;    /* offset of gpa in fd */
	void *reservation;     /* the whole mapping, guard pages included */
	size_t reservation_len;
};

struct memory {
	struct memory_region region[MEMORY_MAX_REGIONS];
	unsigned nregions;     /* sorted by gpa, never overlapping */
	int fd;                /* memfd this object created, or -1 */
	uint64_t ram_size;     /* sum of region sizes */
};

/* An empty address space: no regions, nothing to free. */
void memory_init(struct memory *m);

/*
 * RAM of `size` bytes in the x86 layout (x86.h): from 0 up to the 32-bit
 * hole, the rest from 4 GiB.  Backed by one memfd, allocated lazily.
 * Returns 0 or -errno (-EINVAL for a size below 1 MiB or not a multiple
 * of 4 KiB).
 */
int memory_create_x86(struct memory *m, uint64_t size);

/*
 * Map `size` bytes of `fd` at `fd_offset` as guest-physical [gpa,
 * gpa+size), between two PROT_NONE guard pages.  fd stays the caller's.
 * Returns 0, -EINVAL (overlap, wrap, unaligned, zero size), -ENOSPC (too
 * many regions) or -errno from mmap.
 */
int memory_add_region(struct memory *m, uint64_t gpa, uint64_t size, int fd,
                      uint64_t fd_offset);

/* Unmap everything and close the memfd; idempotent. */
void memory_destroy(struct memory *m);

/*
 * The one gate for guest addresses: the host pointer for [gpa, gpa+len)
 * if that range lies wholly inside one region, else NULL (outside RAM, in
 * a hole, across two regions, or wrapping past 2^64).  len 0 asks only
 * that gpa be inside a region or at its end.  Never aborts.
 */
void *memory_translate(const struct memory *m, uint64_t gpa, uint64_t len);

/* The region holding gpa, or NULL. */
const struct memory_region *memory_region_of(const struct memory *m,
                                             uint64_t gpa);

#endif
