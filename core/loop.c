/*
 * loop.c - the sources of one Lua state's machines, watched together.
 * See loop.h.
 */
#include <stddef.h>
#include "loop.h"

void loop_add(struct loop *l, struct loop_source *s)
{
	if (s->attached)
		return;
	s->next = l->head;
	l->head = s;
	s->attached = 1;
}

void loop_remove(struct loop *l, struct loop_source *s)
{
	struct loop_source **p;

	if (!s->attached)
		return;
	for (p = &l->head; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	s->attached = 0;
	s->next = NULL;
	l->generation++;
}

int loop_fds(struct loop *l, const struct loop_source *self, struct pollfd *pfd, int max,
             struct loop_round *r)
{
	struct loop_source *s;
	int n = 0;

	r->nsrc = 0;
	r->generation = l->generation;
	for (s = l->head; s && r->nsrc < LOOP_MAX_SOURCES; s = s->next) {
		int k;
		if (s == self)
			continue;
		k = s->fds(s->o, pfd + n, max - n);
		r->src[r->nsrc] = s;
		r->count[r->nsrc++] = k;
		n += k;
	}
	return n;
}

int loop_serve(struct loop *l, struct loop_round *r, struct pollfd *pfd)
{
	int i, j, any = 0;

	for (i = 0; i < r->nsrc; i++) {
		int ready = 0;
		for (j = 0; j < r->count[i]; j++)
			ready |= pfd[j].revents != 0;
		if (ready) {
			/* A hook may close (and free) any machine: stop at once. */
			if (l->generation != r->generation)
				return 1;
			any |= !r->src[i]->passive;
			r->src[i]->serve(r->src[i]->o, pfd, r->count[i]);
		}
		pfd += r->count[i];
	}
	return any;
}

int loop_timeout(struct loop *l, int ms)
{
	struct loop_source *s;

	for (s = l->head; s; s = s->next)
		if (s->poll_ms)
			ms = s->poll_ms(s->o, ms);
	return ms;
}

void loop_quiet(struct loop *l)
{
	struct loop_source *s;

	for (s = l->head; s; s = s->next)
		if (s->quiet)
			s->quiet(s->o);
}

