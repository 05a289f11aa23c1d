/*
 * memory.h - guest-physical memory.  See memory.c for the story.
 */
#ifndef VMLUA_MEMORY_H
#define VMLUA_MEMORY_H

#include <setjmp.h>
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
	int sealed;            /* fd was sealed against shrinking (F_SEAL_SHRINK) */
};

struct memory {
	struct memory_region region[MEMORY_MAX_REGIONS];
	unsigned nregions;     /* sorted by gpa, never overlapping */
	int fd;                /* memfd this object created, or -1 */
	uint64_t ram_size;     /* sum of region sizes */
	/* Bumped by every memory_destroy(): a pointer taken before (a ring,
	 * a popped chain) belongs to memory that is gone. */
	uint32_t generation;
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

/* Unmap everything and close the memfd; idempotent.  The object is left
 * empty (as memory_init leaves it) with its generation bumped. */
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

/*
 * Guarded access to memory someone else can shrink under us.
 *
 * A vhost-user frontend hands us its RAM as a file and may truncate that
 * file after we mapped it; touching a page past the new end is SIGBUS.
 * Accesses to such memory run inside a guard: a SIGBUS there jumps back
 * to the guard's sigsetjmp instead of killing the process, and the
 * caller turns it into an error (the device: NEEDS_RESET; Lua: an
 * error).  A fault outside any guard is passed on to whatever handled
 * SIGBUS before (the default: the process dies, as it should for a bug
 * of ours).  Guards nest and are per thread:
 *
 *     struct memory_guard g;
 *     if (sigsetjmp(g.env, 0))
 *             return -EFAULT;           // the guard is already left
 *     memory_guard_enter(&g);
 *     ... touch guest memory, call nothing that enters Lua ...
 *     memory_guard_leave(&g);
 *
 * Keep the guarded stretch in a function of its own, with no local that
 * changes after sigsetjmp.  Code that calls out to Lua inside a guarded
 * stretch suspends it first (memory_guard_suspend/resume), so that a
 * jump never crosses a Lua frame.
 */
struct memory_guard {
	sigjmp_buf env;
	struct memory_guard *prev;
};
/* Install the process-wide SIGBUS handler (once; thread-safe). */
void memory_guard_init(void);
void memory_guard_enter(struct memory_guard *g);
void memory_guard_leave(struct memory_guard *g);
struct memory_guard *memory_guard_suspend(void);
void memory_guard_resume(struct memory_guard *saved);
/* memcpy/memset under a guard: 0, or -EFAULT if the memory is gone. */
int memory_copy(void *dst, const void *src, size_t n);
int memory_set(void *dst, int byte, size_t n);

#endif
