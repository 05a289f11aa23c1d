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

/* The wall clock, ns since the epoch: for what a guest shows as the
 * time of day, never for a deadline. */
static inline uint64_t clock_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Seconds, as the Lua side counts them. */
static inline double clock_now(void) { return (double)clock_ns() / 1e9; }

#endif
