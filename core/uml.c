/*
 * uml.c - the uml backend: user-mode Linux as a child process.
 *
 * User-mode Linux is the Linux kernel built as an ordinary program: it
 * boots in a second or two with no virtualization at all, which is how
 * real Linux guests run on machines whose /dev/kvm cannot.  We start
 * Debian's linux.uml with its first console on a pair of pipes
 * (con0=fd:3,fd:4) and its own stdout and stderr on the output pipe too,
 * so that everything it says reaches the VM's console; in a process
 * group of its own, so that a Ctrl-C at the terminal reaches vmlua, which
 * decides what to do, and so that stopping it stops every process UML
 * made.  A guardian process stands between (see guard()), so that even a
 * vmlua killed outright leaves nothing running.  When it ends we reap it
 * and say why (see luml.c).
 *
 * Once started, vmlua may drop root (sandbox.c) while linux.uml and its
 * guardian stay as they were; a signal from `nobody` could not reach
 * them.  So stopping the machine also writes a byte into the guardian's
 * stop pipe, and the guardian, which may, does the killing.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <dirent.h>
#include <poll.h>
#include <unistd.h>

#include "errbuf.h"
#include "jail.h"
#include "uml.h"

#define UML_MAX_ARGS 256
#define UML_RUNDIR_MAX 200

struct uml_vm {
	pid_t pid;          /* the guardian, also its process group; 0 once reaped */
	pid_t uml;          /* linux.uml, which makes a process group of its own */
	int in_fd;          /* our end of the console input pipe */
	int out_fd;         /* our end of the output pipe */
	int exit_fd;        /* a pidfd: readable once the child ends; or -1 */
	int stop_fd;        /* a byte here asks the guardian to kill linux.uml */
	int eof;
	int status;         /* wait status once reaped */
	int reaped;
	char rundir[UML_RUNDIR_MAX];   /* "" when none */
};

static int executable(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/*
 * Is path a program this host can run as linux.uml, rather than a kernel
 * image meant for the kvm backend?  A linux.uml is an x86-64 ELF program
 * linked like any other, so it has a PT_INTERP or a PT_GNU_STACK header;
 * a bzImage is not ELF at all, and a vmlinux or the selftest guest has
 * neither header.  Says why not in why.
 */
static int uml_program(const char *path, char *why, size_t whylen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;
	unsigned i;

	if (fd < 0) {
		errbuf_set(why, whylen, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64 || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
		errbuf_set(why, whylen, "%s: not a linux.uml program (not an x86-64 ELF executable; "
		           "a bzImage boots on the kvm backend)", path);
		goto out;
	}
	for (i = 0; i < eh.e_phnum && i < 256 && !ok; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			break;
		ok = ph.p_type == PT_INTERP || ph.p_type == PT_GNU_STACK;
	}
	if (!ok)
		errbuf_set(why, whylen, "%s: not a linux.uml program (a kernel image? "
		           "it boots on the kvm backend)", path);
out:
	close(fd);
	return ok;
}

int uml_find(const char *path, char *out, size_t outlen, char *why, size_t whylen)
{
	const char *env;
	char *dirs, *dir, *save = NULL;

	if (path && *path) {
		if (!executable(path)) {
			errbuf_set(why, whylen, "%s: not an executable file", path);
			return 0;
		}
		if (!uml_program(path, why, whylen))
			return 0;
		snprintf(out, outlen, "%s", path);
		return 1;
	}
	env = getenv("PATH");
	dirs = strdup(env && *env ? env : "/usr/bin:/bin");
	if (!dirs) {
		errbuf_set(why, whylen, "out of memory");
		return 0;
	}
	for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, outlen, "%s/linux.uml", dir);
		if (executable(out)) {
			free(dirs);
			return 1;
		}
	}
	free(dirs);
	errbuf_set(why, whylen, "linux.uml not found: apt-get install user-mode-linux");
	return 0;
}

int uml_rundir_make(char *out, size_t outlen, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	n = snprintf(out, outlen, "%s/vmlua-XXXXXX", tmp);
	if (n < 0 || (size_t)n >= outlen || (size_t)n >= UML_RUNDIR_MAX)
		return errbuf_set(err, errlen, "TMPDIR is too long: %s", tmp), -1;
	if (!mkdtemp(out))
		return errbuf_set(err, errlen, "cannot make a directory in %s: %s", tmp,
		                  strerror(errno)), -1;
	return 0;
}

/*
 * Empty the directory open as fd, then close it, going `depth` levels of
 * subdirectories down (UML's uml_dir holds one: <umid>/ with its pid file
 * and mconsole socket).  System calls only, no malloc: the guardian runs
 * this in a child forked from a vmlua that may have threads.  Entries are
 * removed while the directory is read, so read it again until a pass
 * finds nothing.
 */
static void empty_dir(int fd, int depth)
{
	char buf[2048];
	int pass, found;
	ssize_t n, off;

	for (pass = 0, found = 1; found && pass < 8; pass++) {
		found = 0;
		lseek(fd, 0, SEEK_SET);
		while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
			for (off = 0; off < n; ) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				int sub;

				off += d->d_reclen;
				if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
					continue;
				found = 1;
				if (unlinkat(fd, d->d_name, 0) == 0 || errno != EISDIR || depth == 0)
					continue;
				sub = openat(fd, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub >= 0)
					empty_dir(sub, depth - 1);
				unlinkat(fd, d->d_name, AT_REMOVEDIR);
			}
		}
	}
	close(fd);
}

static void remove_rundir(const char *path)
{
	int fd;

	if (!path[0])
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		empty_dir(fd, 2);
	rmdir(path);
}

/* In the guardian process only (after fork): linux.uml's pid. */
static volatile pid_t guarded;

/* Kill linux.uml and its process group (it calls setsid). */
static void kill_uml(pid_t uml)
{
	kill(-uml, SIGKILL);
	kill(uml, SIGKILL);
}

/* The guardian's SIGTERM: vmlua has died (PR_SET_PDEATHSIG).  Kill
 * linux.uml's group; guard() then sees it end, tidies up and follows. */
static void guardian_orphaned(int sig)
{
	(void)sig;
	if (guarded > 0)
		kill_uml(guarded);
	else
		kill(0, SIGKILL);
}

/*
 * Between vmlua and linux.uml stands a guardian: this forked child of
 * vmlua, which runs linux.uml as its own child and then only waits for
 * it.  PR_SET_PDEATHSIG takes one process along when its parent dies, and
 * linux.uml forks helpers of its own; if vmlua is killed outright
 * (SIGKILL, a closed terminal) those helpers would live on.  The guardian
 * is told instead, and kills the whole process group.  When linux.uml
 * ends, the guardian removes the run directory and ends the same way, so
 * vmlua reads linux.uml's exit from it.  Only async-signal-safe calls
 * here: vmlua may have threads.  A byte (or the end) on `stop` is vmlua
 * asking for linux.uml to go, which it may no longer be allowed to do
 * itself.
 */
static void guard(const char *binary, const char *const *argv, char *const *envp,
                  const char *rundir, const struct jail *jail, int report, int stop)
{
	struct sigaction sa;
	pid_t uml, self = getpid();
	int status, pidfd;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = guardian_orphaned;
	sigaction(SIGTERM, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	uml = fork();
	if (uml < 0)
		_exit(127);
	if (uml == 0) {
		/* linux.uml: dies with its guardian, whatever kills it. */
		signal(SIGTERM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(127);
		/* With shares: in a mount namespace that holds only what it
		 * may reach (jail.c). */
		if (jail) {
			char why[256];
			if (jail_enter(jail, why, sizeof(why)) < 0) {
				dprintf(2, "vmlua: cannot confine linux.uml: %s\n", why);
				_exit(127);
			}
		}
		/* Run in the run directory: the sockets and the initrd are named
		 * relative to it on the command line, which UML splits at spaces
		 * and virtio_uml at colons, whatever TMPDIR holds. */
		if (rundir[0] && chdir(rundir) < 0) {
			dprintf(2, "vmlua: cannot enter %s: %s\n", rundir, strerror(errno));
			_exit(127);
		}
		execve(binary, (char *const *)argv, envp);
		dprintf(2, "vmlua: cannot run %s: %s\n", binary, strerror(errno));
		_exit(127);
	}
	guarded = uml;
	/* vmlua learns linux.uml's pid, to reach its group too. */
	if (write(report, &uml, sizeof(uml)) != (ssize_t)sizeof(uml))
		_exit(127);
	close(report);
	/* Wait for linux.uml to end, or for vmlua to ask it to.  Without
	 * pidfds (before Linux 5.3) only the first can be waited for. */
	pidfd = (int)syscall(SYS_pidfd_open, uml, 0);
	while (pidfd >= 0) {
		struct pollfd p[2] = { { stop, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			kill_uml(uml);
			break;
		}
	}
	while (waitpid(uml, &status, 0) < 0)
		if (errno != EINTR)
			_exit(127);
	/* What linux.uml left behind in its group goes with it, and so do
	 * its sockets and files. */
	kill(-uml, SIGKILL);
	remove_rundir(rundir);
	if (WIFSIGNALED(status)) {
		/* End by the same signal, without a core of our own. */
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);
		signal(WTERMSIG(status), SIG_DFL);
		kill(self, WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

static int on_tmpfs(const char *dir)
{
	struct statfs st;

	return dir && statfs(dir, &st) == 0 && st.f_type == TMPFS_MAGIC;
}

/*
 * linux.uml keeps the guest's RAM in an unlinked file under $TMPDIR (it
 * only warns when that is not tmpfs), and a disk-backed TMPDIR has the
 * guest's memory written back to disk.  Where TMPDIR is set, is not
 * tmpfs and /dev/shm is, linux.uml gets TMPDIR=/dev/shm; our own files
 * stay where TMPDIR says.  Returns a malloc'ed environment (its strings
 * are the process's, but for TMPDIR), or environ itself; built before
 * fork, as nothing after fork may allocate.
 */
static char **uml_environ(int jailed)
{
	extern char **environ;
	static char shm[] = "TMPDIR=/dev/shm";
	const char *tmp = getenv("TMPDIR");
	char **env;
	size_t n = 0, i;

	/* A jailed linux.uml has a fresh tmpfs on /dev/shm, and no TMPDIR
	 * of the host's. */
	if (!jailed && (!tmp || !*tmp || on_tmpfs(tmp) || !on_tmpfs("/dev/shm")))
		return environ;
	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return environ;
	for (i = 0; i < n; i++)
		env[i] = strncmp(environ[i], "TMPDIR=", 7) == 0 ? shm : environ[i];
	if (jailed && !tmp)
		env[n] = shm;
	return env;
}

struct uml_vm *uml_vm_spawn(const char *binary, const char *const *args,
                            const char *rundir, const struct jail *jail,
                            char *err, size_t errlen)
{
	extern char **environ;
	char **envp;
	const char *argv[UML_MAX_ARGS + 4];
	char uml_dir[UML_RUNDIR_MAX + 16];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, report[2] = { -1, -1 };
	int stop[2] = { -1, -1 };
	struct uml_vm *vm;
	unsigned n = 0;
	pid_t pid, parent;

	argv[n++] = binary;
	while (args && args[n - 1] && n <= UML_MAX_ARGS)
		argv[n] = args[n - 1], n++;
	if (rundir && strlen(rundir) >= UML_RUNDIR_MAX) {
		errbuf_set(err, errlen, "run directory path too long: %s", rundir);
		return NULL;
	}
	if (rundir) {
		/* UML's pid file and mconsole socket, in <rundir>/vm/ (UML runs
		 * in rundir). */
		snprintf(uml_dir, sizeof(uml_dir), "uml_dir=.");
		argv[n++] = uml_dir;
		argv[n++] = "umid=vm";
	}
	argv[n] = NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	if (rundir)
		snprintf(vm->rundir, sizeof(vm->rundir), "%s", rundir);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0 ||
	    pipe2(stop, O_CLOEXEC) < 0) {
		errbuf_set(err, errlen, "pipe: %s", strerror(errno));
		goto bad;
	}
	parent = getpid();
	envp = uml_environ(jail != NULL);
	pid = fork();
	if (envp != environ && pid != 0)
		free(envp);
	if (pid < 0) {
		errbuf_set(err, errlen, "fork: %s", strerror(errno));
		goto bad;
	}
	if (pid == 0) {
		/* The child: console on fds 3 (in) and 4 (out), stdout and
		 * stderr to the output pipe, stdin from nowhere. */
		int devnull = open("/dev/null", O_RDONLY);
		sigset_t none;
		setpgid(0, 0);
		/* If vmlua dies without a chance to clean up, so does UML. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		int cin = fcntl(in[0], F_DUPFD, 10), cout = fcntl(out[1], F_DUPFD, 10);
		/* Moved clear of 0-4 first: a pipe end that already sits on
		 * fd 3 or 4 would otherwise be clobbered, or keep CLOEXEC
		 * (dup2 onto itself does nothing). */
		if (devnull < 0 || cin < 0 || cout < 0 || dup2(devnull, 0) < 0 ||
		    dup2(cin, 3) < 0 || dup2(cout, 4) < 0 || dup2(cout, 1) < 0 ||
		    dup2(cout, 2) < 0)
			_exit(127);
		close(stop[1]);
		guard(binary, argv, envp, vm->rundir, jail, report[1], stop[0]);
	}
	/* UML's processes outlive one another in any order; as subreaper
	 * the orphans come to us rather than to an init that may not reap
	 * them, and no zombie or stray process is left behind. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* Also from here, so the group exists before anyone signals it. */
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	close(report[1]);
	close(stop[0]);
	vm->stop_fd = stop[1];
	if (read(report[0], &vm->uml, sizeof(vm->uml)) != (ssize_t)sizeof(vm->uml))
		vm->uml = 0;       /* the guardian failed; it exits 127 */
	close(report[0]);
	vm->pid = pid;
	vm->in_fd = in[1];
	vm->out_fd = out[0];
	vm->exit_fd = (int)syscall(SYS_pidfd_open, pid, 0);
	fcntl(vm->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(vm->in_fd, F_SETFL, O_NONBLOCK);
	return vm;
bad:
	if (in[0] >= 0) { close(in[0]); close(in[1]); }
	if (out[0] >= 0) { close(out[0]); close(out[1]); }
	if (report[0] >= 0) { close(report[0]); close(report[1]); }
	if (stop[0] >= 0) { close(stop[0]); close(stop[1]); }
	remove_rundir(vm->rundir);
	free(vm);
	return NULL;
}

pid_t uml_vm_pid(const struct uml_vm *vm) { return vm->reaped ? 0 : vm->pid; }
int uml_vm_output_fd(const struct uml_vm *vm) { return vm->eof ? -1 : vm->out_fd; }
int uml_vm_exit_fd(const struct uml_vm *vm) { return vm->reaped ? -1 : vm->exit_fd; }
int uml_vm_eof(const struct uml_vm *vm) { return vm->eof; }

size_t uml_vm_read(struct uml_vm *vm, char *buf, size_t max)
{
	ssize_t n;
	if (vm->eof)
		return 0;
	n = read(vm->out_fd, buf, max);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		vm->eof = 1;
	return n > 0 ? (size_t)n : 0;
}

/* write() to a pipe whose reader may have gone, which must not kill us
 * with SIGPIPE: hold the signal for the call and take it back if it
 * came.  errno is write's. */
static ssize_t write_nopipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	ssize_t n;
	int e;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	e = errno;
	if (n < 0 && e == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

size_t uml_vm_input(struct uml_vm *vm, const char *buf, size_t len)
{
	ssize_t n;

	if (vm->in_fd < 0)
		return 0;
	/* A console UML has closed is closed here too. */
	n = write_nopipe(vm->in_fd, buf, len);
	if (n < 0 && errno == EPIPE) {
		close(vm->in_fd);
		vm->in_fd = -1;
	}
	return n > 0 ? (size_t)n : 0;
}

/* Once linux.uml itself has ended, kill what is left of its group and
 * reap it: being the subreaper, we inherited UML's helpers and the
 * host processes of its guest processes. */
static void reap_group(struct uml_vm *vm)
{
	pid_t groups[2] = { vm->pid, vm->uml };
	int tries, g;

	for (g = 0; g < 2; g++) {
		if (groups[g] <= 0)
			continue;
		kill(-groups[g], SIGKILL);
		for (tries = 0; tries < 200; tries++) {
			pid_t r = waitpid(-groups[g], NULL, WNOHANG);
			if (r < 0)
				break;          /* ECHILD: none left */
			if (r == 0)
				usleep(5000);
		}
	}
}

int uml_vm_reap(struct uml_vm *vm, int *status)
{
	if (!vm->reaped && waitpid(vm->pid, &vm->status, WNOHANG) == vm->pid) {
		vm->reaped = 1;
		reap_group(vm);
	}
	if (vm->reaped && status)
		*status = vm->status;
	return vm->reaped;
}

const char *uml_vm_rundir(const struct uml_vm *vm) { return vm->rundir; }

void uml_vm_kill(struct uml_vm *vm)
{
	if (vm->reaped)
		return;
	/* The guardian kills for us when we may not (dropped root). */
	if (vm->stop_fd >= 0 && write_nopipe(vm->stop_fd, "k", 1) < 0) {
		/* the guardian has gone already */
	}
	if (vm->uml > 0)
		kill_uml(vm->uml);
	kill(-vm->pid, SIGKILL);
	kill(vm->pid, SIGKILL);
	if (waitpid(vm->pid, &vm->status, 0) == vm->pid)
		vm->reaped = 1;
	reap_group(vm);
}

void uml_vm_destroy(struct uml_vm *vm)
{
	if (!vm)
		return;
	uml_vm_kill(vm);
	remove_rundir(vm->rundir);
	if (vm->in_fd >= 0)
		close(vm->in_fd);
	if (vm->out_fd >= 0)
		close(vm->out_fd);
	if (vm->exit_fd >= 0)
		close(vm->exit_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	free(vm);
}
