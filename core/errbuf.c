/*
 * errbuf.c - one formatted error line for the caller; see errbuf.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "errbuf.h"

int errbuf_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}
