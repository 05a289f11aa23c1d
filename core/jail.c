/*
 * jail.c - a mount namespace that holds only what linux.uml may reach.
 *
 * hostfs, UML's way to the host's files, confines nothing by itself.
 * The guest's kernel is the linux.uml process, and hostfs opens whatever
 * host path it is given, `..` and symlinks included, with that
 * process's rights (docs/shares.md has what was tried).  So the fence
 * goes around the process instead.  Just before exec, linux.uml's child
 * enters a mount namespace of its own (and a user namespace when vmlua
 * is not root, which is what lets it mount at all).  The root of that
 * namespace is a fresh tmpfs holding only what the jail lists, each
 * bound at its own path:
 *
 *   the binary and the system libraries it loads, read-only;
 *   the machine's run directory, for its sockets, initrd and UML's files;
 *   the shares, read-only or not;
 *   a fresh tmpfs for UML's memory file (JAIL_TMP);
 *   an empty read-only tmpfs over /proc when a share would show it
 *   (JAIL_MASK): /proc/PID/root would lead back to the host's root.
 *
 * Every bind is nodev and nosuid, and a read-only one is read-only all
 * the way down (mount_setattr with AT_RECURSIVE), so a writable
 * filesystem mounted inside a read-only share stays read-only.  Then
 * pivot_root, and the old root is detached: `..` from any share ends at
 * the jail's own root, and a symlink is resolved inside the jail.
 *
 * This runs after fork in a process that may have had threads, so it
 * uses only system calls and plain memory moves, no allocation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail.h"

#define JAIL_PATH_MAX 4096

static int fail(char *why, size_t whylen, const char *step, const char *path)
{
	int e = errno;
	snprintf(why, whylen, "%s%s%s: %s", step, path ? " " : "", path ? path : "", strerror(e));
	return -1;
}

/* dst = root + path, or -1 when it does not fit. */
static int join(char *dst, const char *root, const char *path)
{
	size_t a = strlen(root), b = strlen(path);
	if (a + b + 1 > JAIL_PATH_MAX)
		return -1;
	memcpy(dst, root, a);
	memcpy(dst + a, path, b + 1);
	return 0;
}

/* mkdir -p; a component that exists already is fine. */
static int mkdirs(char *path)
{
	char *p;
	for (p = path + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(path, 0755) < 0 && errno != EEXIST) {
				*p = c;
				return -1;
			}
			*p = c;
			if (c == '\0')
				return 0;
		}
	}
}

/* Somewhere to mount `src` on at `dst`: a directory for a directory, an
 * empty file for anything else.  What is there already will do. */
static int make_target(const char *src, char *dst)
{
	struct stat s, d;
	char *slash;
	int fd;

	if (stat(dst, &d) == 0)
		return 0;
	if (src && stat(src, &s) == 0 && !S_ISDIR(s.st_mode)) {
		slash = strrchr(dst, '/');
		if (slash && slash != dst) {
			*slash = '\0';
			if (mkdirs(dst) < 0) {
				*slash = '/';
				return -1;
			}
			*slash = '/';
		}
		fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
		close(fd);
		return 0;
	}
	return mkdirs(dst);
}

/* Map our own uid and gid into a new user namespace, so that this
 * process may mount in its new mount namespace. */
static int map_ids(uid_t uid, gid_t gid, char *why, size_t whylen)
{
	char line[64];
	int fd, n;

	fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "deny", 4) != 4)
		return fail(why, whylen, "write", "/proc/self/setgroups");
	close(fd);
	n = snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, (size_t)n) != n)
		return fail(why, whylen, "write", "/proc/self/uid_map");
	close(fd);
	n = snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, (size_t)n) != n)
		return fail(why, whylen, "write", "/proc/self/gid_map");
	close(fd);
	return 0;
}

int jail_enter(const struct jail *j, char *why, size_t whylen)
{
	char dst[JAIL_PATH_MAX];
	uid_t uid = getuid();
	gid_t gid = getgid();
	unsigned i;

	if (unshare(CLONE_NEWNS | (uid != 0 ? CLONE_NEWUSER : 0)) < 0)
		return fail(why, whylen, uid != 0 ? "unshare (user and mount namespaces)" :
		            "unshare (mount namespace)", NULL);
	if (uid != 0 && map_ids(uid, gid, why, whylen) < 0)
		return -1;
	/* Nothing mounted here reaches the host's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(why, whylen, "make / private", NULL);
	if (mount("vmlua-jail", j->root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return fail(why, whylen, "mount tmpfs on", j->root);
	for (i = 0; i < j->n; i++) {
		const struct jail_bind *b = &j->bind[i];
		struct mount_attr attr = { 0 };

		if (join(dst, j->root, b->path) < 0) {
			errno = ENAMETOOLONG;
			return fail(why, whylen, "jail path", b->path);
		}
		if (b->flags & (JAIL_MASK | JAIL_TMP)) {
			if (make_target(NULL, dst) < 0)
				return fail(why, whylen, "mkdir", dst);
			if (mount("vmlua-jail", dst, "tmpfs", MS_NOSUID | MS_NODEV |
			          ((b->flags & JAIL_MASK) ? MS_RDONLY : 0), "mode=0755") < 0)
				return fail(why, whylen, "mount tmpfs on", dst);
			continue;
		}
		if (make_target(b->path, dst) < 0)
			return fail(why, whylen, "make a mount point for", b->path);
		if (mount(b->path, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			return fail(why, whylen, "bind", b->path);
		attr.attr_set = MOUNT_ATTR_NOSUID | ((b->flags & JAIL_DEV) ? 0 : MOUNT_ATTR_NODEV) |
		                ((b->flags & JAIL_RO) ? MOUNT_ATTR_RDONLY : 0);
		attr.attr_clr = (b->flags & JAIL_DEV) ? MOUNT_ATTR_NODEV : 0;
		if (syscall(SYS_mount_setattr, AT_FDCWD, dst, AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			return fail(why, whylen, "mount_setattr", dst);
	}
	/* Into it; the host's root goes (detached, so lazily). */
	if (chdir(j->root) < 0)
		return fail(why, whylen, "chdir", j->root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(why, whylen, "pivot_root", j->root);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(why, whylen, "detach the host's root", NULL);
	if (chdir("/") < 0)
		return fail(why, whylen, "chdir", "/");
	return 0;
}
