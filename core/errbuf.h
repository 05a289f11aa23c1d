/*
 * errbuf.h - how logic files in core/ report a failure: a one-line
 * message formatted into the caller's buffer, and -1.
 */
#ifndef VMLUA_ERRBUF_H
#define VMLUA_ERRBUF_H

#include <stddef.h>

/* vsnprintf into err (always NUL-terminated); returns -1. */
int errbuf_set(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
