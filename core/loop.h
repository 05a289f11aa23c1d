/*
 * loop.h - the machines of one Lua state, served together.
 *
 * Each machine (a uml child's vhost-user servers, a kvm machine's kick
 * eventfds) is a source: fds to watch and a function that serves them.
 * Whichever machine's poll the script sits in watches every source of
 * the state, so a guest whose devices need serving is served while the
 * script waits on another (two guests on one switch, say).
 */
#ifndef VMLUA_LOOP_H
#define VMLUA_LOOP_H

#include <poll.h>

#define LOOP_MAX_SOURCES 64

struct loop_source {
	/* Fill pfd (room for max) with the fds to watch; how many. */
	int (*fds)(void *o, struct pollfd *pfd, int max);
	/* Serve those n entries, now with revents. */
	void (*serve)(void *o, struct pollfd *pfd, int n);
	void *o;
	struct loop_source *next;
	int attached;
	/* Optional, for the calendar (calendar.h).  A passive source's
	 * serving is not device work: it neither ends a poll's wait nor
	 * wakes a guest. */
	int passive;
	/* The longest a poll may block, given ms: 0 while it waits for a
	 * quiet round, one in which nothing at all was ready. */
	int (*poll_ms)(void *o, int ms);
	/* Such a round happened. */
	void (*quiet)(void *o);
};

struct loop {
	struct loop_source *head;
	unsigned generation;    /* bumped by every removal */
};

/* What one poll watches of the sources other than the caller's. */
struct loop_round {
	struct loop_source *src[LOOP_MAX_SOURCES];
	int count[LOOP_MAX_SOURCES];
	int nsrc;
	unsigned generation;
};

void loop_add(struct loop *l, struct loop_source *s);
void loop_remove(struct loop *l, struct loop_source *s);
/*
 * Append to pfd (room for max) the fds of every source but `self`,
 * noting in r which came from where.  Returns how many were added.
 */
int loop_fds(struct loop *l, const struct loop_source *self, struct pollfd *pfd, int max,
             struct loop_round *r);
/*
 * Serve the sources of r whose fds (from pfd on, as loop_fds laid them
 * out) have revents.  A source removed meanwhile (its machine closed by
 * a hook) ends the round: what the rest have waits for the next poll.
 * Returns 1 if any of those fds had revents (a passive source's aside).
 */
int loop_serve(struct loop *l, struct loop_round *r, struct pollfd *pfd);
/* A poll's timeout in ms, as short as a source needs it (0 when one
 * waits for a quiet round). */
int loop_timeout(struct loop *l, int ms);
/* A poll found nothing ready: tell the sources that wait for that. */
void loop_quiet(struct loop *l);

#endif
