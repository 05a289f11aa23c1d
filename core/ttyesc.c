/*
 * ttyesc.c - the escape key of an interactive console (see ttyesc.h).
 */
#include "ttyesc.h"

size_t ttyesc_filter(struct ttyesc *e, const char *in, size_t n, char *out, int *quit)
{
	size_t i, m = 0;

	*quit = 0;
	for (i = 0; i < n; i++) {
		char c = in[i];

		if (!e->armed) {
			if (c == TTYESC_KEY)
				e->armed = 1;
			else
				out[m++] = c;
			continue;
		}
		e->armed = 0;
		if (c == TTYESC_QUIT) {
			*quit = 1;
			break;
		}
		if (c != TTYESC_KEY)
			out[m++] = TTYESC_KEY;
		out[m++] = c;
	}
	return m;
}

