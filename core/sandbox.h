/*
 * sandbox.h - confining vmlua once a machine is set up: a seccomp
 * allow-list per kind of thread, and dropping root (chroot, user).
 * See sandbox.c.  Nothing here knows Lua; lsandbox.c binds it.
 */
#ifndef VMLUA_SANDBOX_H
#define VMLUA_SANDBOX_H

#include <stddef.h>

/* The kinds of thread that get a filter of their own. */
enum sandbox_kind {
	SANDBOX_VCPU,         /* a vCPU thread: KVM_RUN and the UART */
	SANDBOX_IO,           /* a device I/O thread (libslirp's) */
	SANDBOX__COUNT
};
const char *sandbox_kind_name(enum sandbox_kind k);
/* The kind called `name`, or -1. */
int sandbox_kind_by_name(const char *name);

/* Load the filter for `kind` into the calling thread only; from then on
 * a call outside its list fails with EPERM.  0, or -errno. */
int sandbox_enter(enum sandbox_kind kind);

/*
 * Give up root: chroot(dir) and chdir("/") if dir is given, then become
 * `user` (its uid, its primary group and no other) if given, and check
 * that root cannot be had back.  With check_only, only see that it
 * could be done (root, the user exists, dir is a directory).  0, or -1
 * with a message naming what was wrong in err.
 */
int sandbox_drop(const char *user, const char *dir, int check_only,
                 char *err, size_t errlen);

#endif
