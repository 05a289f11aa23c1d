/*
 * clock.h - the monotonic clock that every deadline in core/ is measured
 * on: it never jumps when the wall clock is set.
 */
#ifndef VMLUA_CLOCK_H
#define VMLUA_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Seconds, as the Lua side counts them. */
static inline double clock_now(void) { return (double)clock_ns() / 1e9; }

#endif
