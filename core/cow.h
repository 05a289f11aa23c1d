/*
 * cow.h - copy-on-write over a read-only master image.  See cow.c.
 */
#ifndef VMLUA_COW_H
#define VMLUA_COW_H

#include <stddef.h>
#include <stdint.h>

struct cow;

/* overlay NULL: a temporary one.  NULL with err set on failure. */
struct cow *cow_open(const char *master, const char *overlay, char *err, size_t errlen);
uint64_t cow_size(const struct cow *c);
/* Each returns 0 or -errno. */
int cow_read(struct cow *c, void *buf, size_t len, uint64_t off);
int cow_write(struct cow *c, const void *buf, size_t len, uint64_t off);
int cow_zero(struct cow *c, uint64_t off, uint64_t len);
int cow_flush(struct cow *c);
/* Flushes a named overlay, then frees everything. */
void cow_close(struct cow *c);

#endif
