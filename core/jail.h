/*
 * jail.h - a mount namespace that holds only what linux.uml may reach.
 * See jail.c.
 */
#ifndef VMLUA_JAIL_H
#define VMLUA_JAIL_H

#include <stddef.h>

#define JAIL_MAX 64

enum {
	JAIL_RO   = 1,      /* read-only */
	JAIL_DEV  = 2,      /* device nodes work (otherwise nodev) */
	JAIL_MASK = 4,      /* not the host's: an empty read-only tmpfs */
	JAIL_TMP  = 8,      /* not the host's: a fresh writable tmpfs */
};

struct jail_bind {
	const char *path;   /* absolute; the same path inside as outside */
	unsigned flags;
};

struct jail {
	const char *root;   /* an empty directory to build it on */
	unsigned n;
	struct jail_bind bind[JAIL_MAX];   /* parents before children */
};

/* In a child that is about to exec (async-signal-safe calls only): a
 * new mount namespace (and user namespace, when not root) whose root
 * is a tmpfs holding just the jail's paths, then pivot_root into it.
 * 0, or -1 with the step and errno's text in why. */
int jail_enter(const struct jail *j, char *why, size_t whylen);

#endif
