/*
 * sandbox.c - confining vmlua once a machine is set up.
 *
 * A guest talks to vmlua all day long: through its vCPUs' exits, its
 * rings, the frames it sends to libslirp.  Each of those is parsed by C
 * code that may have a bug, and a bug a guest can steer is the way out
 * of a virtual machine.  So the threads that do that parsing are told,
 * once they are set up, what they will ever need to ask of the kernel,
 * and the kernel refuses them everything else: a seccomp filter, built
 * with libseccomp, one allow-list per kind of thread.
 *
 * A vCPU thread enters KVM_RUN, plays the UART and the power registers,
 * and wakes the loop; it needs a few ioctls on its KVM descriptors,
 * futexes for its locks and writes to eventfds, and no more.  libslirp's
 * thread is a small TCP/IP stack that opens real sockets for the guest:
 * it needs the socket calls, but only for IPv4 and IPv6, and poll.
 *
 * What happens to a call outside the list?  Firecracker kills the whole
 * process (SIGSYS): loud, but a guest that pokes an unusual corner of
 * glibc or libslirp then takes vmlua down with every other guest of the
 * process, and the only trace is a core.  We return EPERM instead.  The
 * call still does not happen, which is the whole point; the code that
 * made it sees an ordinary failure it already handles (libslirp drops
 * that connection, a vCPU stops the machine with "Operation not
 * permitted" in the reason), and `strace -f` shows the refused call by
 * name.  The loop thread, which runs Lua, spawns linux.uml and opens
 * whatever a script asks for, gets no filter; it is confined instead by
 * dropping root (sandbox_drop(), below).
 *
 * Three oddities every list carries:
 *  - setgroups, setresgid and setresuid.  glibc makes a credential
 *    change apply to the whole process by having every thread make the
 *    call itself (a signal to each), and aborts if some thread fails.
 *    They cannot raise privileges a thread has not got: once the loop
 *    thread has become `nobody`, so has every other thread.  The
 *    signal's handler checks the sender with getpid, allowed too.
 *  - mmap and mprotect, never with PROT_EXEC: malloc grows its arenas
 *    with them; new executable memory is what an exploit wants.
 *  - exit, munmap and madvise, which glibc calls as the thread ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "errbuf.h"
#include "sandbox.h"

/* Built with AddressSanitizer (make test SANITIZE=1; clang says so with
 * __has_feature, GCC with __SANITIZE_ADDRESS__)? */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif
#ifdef SANDBOX_ASAN
#include <stdint.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

static const char *const kind_names[SANDBOX__COUNT] = {
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_IO] = "io",
};
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == SANDBOX__COUNT,
               "one name per kind of thread");

const char *sandbox_kind_name(enum sandbox_kind k)
{
	return (unsigned)k < SANDBOX__COUNT ? kind_names[k] : "?";
}

int sandbox_kind_by_name(const char *name)
{
	int k;
	for (k = 0; k < SANDBOX__COUNT; k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	return -1;
}

/* Every thread: locks, memory, the end of the thread, signals (the vCPU
 * kick, glibc's own), and the credential calls explained above.
 * sigaltstack only swaps the thread's own signal stack; AddressSanitizer
 * takes its stack back with it as a thread ends (make test SANITIZE=1). */
static const int common_calls[] = {
	SCMP_SYS(futex), SCMP_SYS(write), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall), SCMP_SYS(sigaltstack),
	SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(brk),
	SCMP_SYS(clock_gettime), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(setgroups), SCMP_SYS(setresgid), SCMP_SYS(setresuid),
	SCMP_SYS(getpid), SCMP_SYS(gettid),
};

/* libslirp's thread, unconditionally: its poll loop and eventfds, and
 * the socket calls it makes for the guest's connections (as strace -f
 * shows them on a guest that fetches a page and looks up a name).
 * newfstatat and read-only openat serve one purpose: libslirp reads
 * /etc/resolv.conf (when it changes) to forward the guest's DNS. */
static const int io_calls[] = {
	SCMP_SYS(read), SCMP_SYS(close), SCMP_SYS(poll),
	SCMP_SYS(connect), SCMP_SYS(accept), SCMP_SYS(accept4),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt), SCMP_SYS(shutdown), SCMP_SYS(recvfrom),
	SCMP_SYS(sendto), SCMP_SYS(recvmsg), SCMP_SYS(newfstatat),
};

static int allow_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0)) < 0)
			return rc;
	return 0;
}

/* One call, allowed when argument `arg` compares as given. */
static int allow_if(scmp_filter_ctx ctx, int call, unsigned arg,
                    enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	struct scmp_arg_cmp cmp = { arg, op, a, b };
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, call, 1, &cmp);
}

static int build(scmp_filter_ctx ctx, enum sandbox_kind kind)
{
	static const scmp_datum_t fcntl_cmds[] = { F_GETFL, F_SETFL, F_GETFD, F_SETFD };
	int rc = allow_all(ctx, common_calls, sizeof(common_calls) / sizeof(common_calls[0]));
	size_t i;

	/* Memory, but never executable memory. */
	if (!rc)
		rc = allow_if(ctx, SCMP_SYS(mmap), 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (!rc)
		rc = allow_if(ctx, SCMP_SYS(mprotect), 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (rc)
		return rc;
	switch (kind) {
	case SANDBOX_VCPU:
		/* Run the vCPU; raise and lower the UART's interrupt line. */
		rc = allow_if(ctx, SCMP_SYS(ioctl), 1, SCMP_CMP_EQ, KVM_RUN, 0);
		if (!rc)
			rc = allow_if(ctx, SCMP_SYS(ioctl), 1, SCMP_CMP_EQ, KVM_IRQ_LINE, 0);
		return rc;
	case SANDBOX_IO:
		rc = allow_all(ctx, io_calls, sizeof(io_calls) / sizeof(io_calls[0]));
		/* Sockets of the internet families only: no AF_UNIX (our
		 * own vhost-user sockets), no AF_NETLINK (routing). */
		if (!rc)
			rc = allow_if(ctx, SCMP_SYS(socket), 0, SCMP_CMP_EQ, AF_INET, 0);
		if (!rc)
			rc = allow_if(ctx, SCMP_SYS(socket), 0, SCMP_CMP_EQ, AF_INET6, 0);
		/* Non-blocking and close-on-exec flags, nothing else. */
		for (i = 0; !rc && i < sizeof(fcntl_cmds) / sizeof(fcntl_cmds[0]); i++)
			rc = allow_if(ctx, SCMP_SYS(fcntl), 1, SCMP_CMP_EQ, fcntl_cmds[i], 0);
		/* How much a datagram socket has waiting. */
		if (!rc)
			rc = allow_if(ctx, SCMP_SYS(ioctl), 1, SCMP_CMP_EQ, FIONREAD, 0);
		/* Read-only opens (resolv.conf): no write, create,
		 * truncate or anonymous file. */
		if (!rc)
			rc = allow_if(ctx, SCMP_SYS(openat), 2, SCMP_CMP_MASKED_EQ,
			              O_ACCMODE | O_CREAT | O_TRUNC | (O_TMPFILE & ~O_DIRECTORY),
			              O_RDONLY);
		return rc;
	default:
		return -EINVAL;
	}
}

int sandbox_enter(enum sandbox_kind kind)
{
	scmp_filter_ctx ctx;
	int rc;

	if ((unsigned)kind >= SANDBOX__COUNT)
		return -EINVAL;
	/* libseccomp sets no_new_privs for this thread (by default), so
	 * the filter can be loaded without CAP_SYS_ADMIN; it applies to
	 * this thread alone, not to the process (no TSYNC). */
	ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return -ENOMEM;
	rc = build(ctx, kind);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc < 0 ? rc : 0;
}

/*
 * The sanitizers need what a drop takes away.  LeakSanitizer lists
 * /proc/PID/task at exit, which a chroot hides: it then dies with "Can't
 * open /proc/PID/task", and vmlua exits 1 whatever the guest said.  A
 * report goes to a file under log_path, which the chroot hides too and
 * nobody may not create: the runtime then spins at 100 % CPU and the
 * process never ends.  So, in a sanitized build only, before the drop:
 * the leak check runs now, while it can (and not again at exit); the
 * memory maps are read for symbolizing later reports; and those reports
 * go to stderr, the one place still open.
 */
static void sanitizers_before_drop(void)
{
#ifdef SANDBOX_ASAN
	__sanitizer_sandbox_arguments args = { 0, -1, 0 };

	__lsan_do_leak_check();
	__sanitizer_sandbox_on_notify(&args);
	__sanitizer_set_report_fd((void *)(intptr_t)STDERR_FILENO);
#endif
}

/*
 * The launcher's last step in lguest: once everything that needs root
 * is open (/dev/kvm, the sockets, the log, linux.uml started), lock
 * ourselves in `dir` and become `user`.  The user is looked up before
 * the chroot, while /etc/passwd is still in reach.
 */
int sandbox_drop(const char *user, const char *dir, int check_only,
                 char *err, size_t errlen)
{
	uid_t uid = 0, ruid, euid, suid;
	gid_t gid = 0, rgid, egid, sgid;
	struct passwd *pw;
	struct stat st;

	if (!user && !dir)
		return 0;
	if (geteuid() != 0)
		return errbuf_set(err, errlen, "%s needs root (running as uid %u)",
		                  user ? "user" : "chroot", (unsigned)geteuid());
	if (user) {
		errno = 0;
		pw = getpwnam(user);
		if (!pw)
			return errbuf_set(err, errlen, "user '%s': %s", user,
			                  errno ? strerror(errno) : "no such user");
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (uid == 0)
			return errbuf_set(err, errlen, "user '%s': is root, which drops nothing", user);
	}
	if (dir) {
		if (stat(dir, &st) < 0)
			return errbuf_set(err, errlen, "chroot '%s': %s", dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return errbuf_set(err, errlen, "chroot '%s': not a directory", dir);
	}
	if (check_only)
		return 0;
	sanitizers_before_drop();
	if (dir && (chroot(dir) < 0 || chdir("/") < 0))
		return errbuf_set(err, errlen, "chroot '%s': %s", dir, strerror(errno));
	if (!user)
		return 0;
	/* Groups first: once we are not root we may not change them. */
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return errbuf_set(err, errlen, "user '%s': %s", user, strerror(errno));
	/* Nor may anything we exec give root back (a set-uid program). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errbuf_set(err, errlen, "user '%s': no_new_privs: %s", user, strerror(errno));
	/* Prove it: every id is the user's, and root cannot be had back.
	 * The raw call tries in this thread only, without glibc's
	 * every-thread broadcast. */
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != uid || euid != uid || suid != uid ||
	    rgid != gid || egid != gid || sgid != gid)
		return errbuf_set(err, errlen, "user '%s': the ids did not change", user);
	if (syscall(SYS_setuid, 0) == 0 || syscall(SYS_setgid, 0) == 0)
		return errbuf_set(err, errlen, "user '%s': root could be regained", user);
	return 0;
}
