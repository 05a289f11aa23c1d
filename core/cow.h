/*
 * cow.h - copy-on-write over a read-only master image.  See cow.c.
 */
#ifndef VMLUA_COW_H
#define VMLUA_COW_H

#include <stddef.h>
#include "image.h"

/* An image whose writes go to `overlay` (NULL: a temporary one) and
 * never to `master`.  NULL with err set on failure. */
struct image *cow_open(const char *master, const char *overlay, char *err, size_t errlen);

#endif
