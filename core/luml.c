/*
 * luml.c - the uml backend as seen from Lua: a machine object with the
 * same poll/send/stop shape as the kvm one, so that lua/vmlua/vm.lua can
 * drive either; and UML's management console (mconsole.c) on it, which
 * pauses and resumes the guest and passes it sysrq keys and commands.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "calendar.h"
#include "clock.h"
#include "errbuf.h"
#include "mconsole.h"
#include "ttyesc.h"
#include "jail.h"
#include "uml.h"
#include "vhost_user.h"
#include "vmlua.h"

#define VMLUA_UML "vmlua.UmlVM"

#define LUML_MAX_SERVERS 16
#define LUML_OTHER_FDS   256    /* the other machines' fds a poll watches */

struct luml {
	struct uml_vm *vm;     /* NULL once closed */
	int input_fd;
	int escape;            /* input is a person's keys: Ctrl-A x quits */
	struct ttyesc esc;
	/* The vhost-user servers of its devices, polled with it.  A table
	 * of our own, the userdata's user value, keeps them alive: the
	 * script's list of them may be emptied while we poll. */
	struct vu_server *srv[LUML_MAX_SERVERS];
	unsigned nsrv;
	/* How deep we are in a server's callbacks (Lua hooks run there),
	 * and a :close() made from such a hook, carried out on the way
	 * out: the loop still holds u->vm. */
	int busy;
	int close_pending;
	/* Its servers as a source of the state's loop (loop.h): served
	 * while the script waits on another machine. */
	struct loop *loop;
	struct loop_source src;
	int src_n[LUML_MAX_SERVERS];
	/* Its mconsole, connected as soon as UML has made the socket (see
	 * mcon_connect), or -1. */
	int mcon_fd;
	/* Console output read while waiting for an mconsole reply, which
	 * the next :poll() returns first. */
	size_t npend;
	char pend[16384];
	/* On virtual time: its place on the state's calendar (tt.cal is
	 * NULL when it has none). */
	struct cal_guest tt;
};

/* The name of a virtual-time guest's calendar socket in its run
 * directory; vm.lua gives linux.uml time-travel=ext:LUML_TIME_SOCKET. */
#define LUML_TIME_SOCKET "time"

/* The calendar of the state's virtual-time guests (calendar.h), made
 * with the first; kept by the registry for the state's life, as the
 * loop it is a source of. */
static struct calendar *state_calendar(lua_State *L)
{
	int made;
	struct calendar *c = vmlua_state_object(L, "vmlua.calendar", sizeof(*c), &made);

	if (made)
		calendar_init(c, vmlua_loop(L));
	return c;
}

/* Off the calendar, if on it: its servers, which the script may keep,
 * no longer point into this machine. */
static void leave_calendar(struct luml *u)
{
	if (!u->tt.cal)
		return;
	calendar_leave(&u->tt);
	for (unsigned k = 0; k < u->nsrv; k++)
		if (u->srv[k]->on_call_o == &u->tt)
			u->srv[k]->on_call = NULL, u->srv[k]->on_call_o = NULL;
}

static struct luml *checkuml(lua_State *L, int idx)
{
	struct luml *u = luaL_checkudata(L, idx, VMLUA_UML);
	if (!u->vm || u->close_pending)
		luaL_error(L, "attempt to use a closed " VMLUA_VM);
	return u;
}

/* uml_find([path]) -> full path, or nil, reason */
static int l_uml_find(lua_State *L)
{
	const char *path = luaL_optstring(L, 1, NULL);
	char out[4096], why[256];
	vmlua_checknargs(L, 1);
	if (!uml_find(path, out, sizeof(out), why, sizeof(why)))
		return vmlua_fail(L, why);
	lua_pushstring(L, out);
	return 1;
}

/* core.uml_rundir() -> path | fail, message: a fresh private directory
 * for one machine's sockets; core.uml_vm{rundir = path} takes it over. */
static int l_uml_rundir(lua_State *L)
{
	char path[256], err[256];

	vmlua_checknargs(L, 0);
	if (uml_rundir_make(path, sizeof(path), err, sizeof(err)) < 0)
		return vmlua_fail(L, err);
	lua_pushstring(L, path);
	return 1;
}

static int mcon_connect(struct luml *u, char *err, size_t errlen);
static void destroy(struct luml *u);
static int leave(struct luml *u);
static int src_fds(void *o, struct pollfd *pfd, int max);
static void src_serve(void *o, struct pollfd *pfd, int n);

/* The jail field: { root = DIR, { path = P, ro =, dev =, mask =, tmp = }, ... }
 * (jail.h), checked into j; the table keeps the strings alive. */
static void check_jail(lua_State *L, int t, struct jail *j)
{
	static const struct { const char *key; unsigned flag; } FLAGS[] = {
		{ "ro", JAIL_RO }, { "dev", JAIL_DEV }, { "mask", JAIL_MASK }, { "tmp", JAIL_TMP },
	};
	lua_Integer n, i;
	unsigned f;

	if (!lua_istable(L, t))
		luaL_argerror(L, 1, "field 'jail' must be a table");
	if (lua_getfield(L, t, "root") != LUA_TSTRING)
		luaL_argerror(L, 1, "field 'jail.root' must be a directory's path");
	j->root = lua_tostring(L, -1);
	lua_pop(L, 1);
	n = (lua_Integer)lua_rawlen(L, t);
	if (n > JAIL_MAX)
		luaL_argerror(L, 1, "field 'jail' has more than 64 entries");
	for (i = 1; i <= n; i++) {
		struct jail_bind *b = &j->bind[i - 1];
		lua_rawgeti(L, t, i);
		if (!lua_istable(L, -1) || lua_getfield(L, -1, "path") != LUA_TSTRING ||
		    lua_tostring(L, -1)[0] != '/')
			luaL_argerror(L, 1, lua_pushfstring(L, "jail[%I].path must be an absolute path", i));
		b->path = lua_tostring(L, -1);
		lua_pop(L, 1);
		b->flags = 0;
		for (f = 0; f < sizeof(FLAGS) / sizeof(FLAGS[0]); f++) {
			lua_getfield(L, -1, FLAGS[f].key);
			if (lua_toboolean(L, -1))
				b->flags |= FLAGS[f].flag;
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	j->n = (unsigned)n;
}

/* uml_vm{ binary = PATH, args = { ... }, rundir = PATH, jail = { ... } }
 * -> machine, or nil, message */
static int l_uml_vm(lua_State *L)
{
	const char *args[257];
	const char *binary, *rundir = NULL;
	struct jail jail, *jailp = NULL;
	char err[256];
	struct luml *u;
	lua_Integer n, i;
	int virtual_time;

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "binary");
	if (lua_type(L, -1) != LUA_TSTRING)
		return luaL_argerror(L, 1, "field 'binary' must be a string");
	binary = lua_tostring(L, -1);
	lua_getfield(L, 1, "args");
	if (!lua_istable(L, -1))
		return luaL_argerror(L, 1, "field 'args' must be a list of strings");
	n = (lua_Integer)lua_rawlen(L, -1);
	if (n > 256)
		return luaL_argerror(L, 1, "field 'args' has more than 256 entries");
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_argerror(L, 1, lua_pushfstring(L, "args[%I] must be a string", i));
		args[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);       /* still referenced by the args table */
	}
	args[n] = NULL;
	if (lua_getfield(L, 1, "rundir") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_argerror(L, 1, "field 'rundir' must be a string");
		rundir = lua_tostring(L, -1);     /* the table keeps it alive */
	}
	lua_pop(L, 1);
	if (lua_getfield(L, 1, "jail") != LUA_TNIL) {
		check_jail(L, lua_gettop(L), &jail);
		jailp = &jail;
	}
	lua_pop(L, 1);     /* the options table keeps it alive */
	lua_getfield(L, 1, "virtual_time");
	virtual_time = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (virtual_time && !rundir)
		return luaL_argerror(L, 1, "field 'virtual_time' needs a 'rundir' for its socket");
	u = lua_newuserdatauv(L, sizeof(*u), 1);
	memset(u, 0, sizeof(*u));
	u->input_fd = -1;
	u->mcon_fd = -1;
	luaL_setmetatable(L, VMLUA_UML);
	/* Its servers stay alive as long as it does, in a copy of the
	 * list that no script can reach. */
	if (lua_getfield(L, 1, "servers") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			return luaL_argerror(L, 1, "field 'servers' must be a list of vmlua.VhostUser");
		n = (lua_Integer)lua_rawlen(L, -1);
		if (n > LUML_MAX_SERVERS)
			return luaL_argerror(L, 1, "field 'servers' has more than 16 entries");
		lua_createtable(L, (int)n, 0);
		for (i = 1; i <= n; i++) {
			lua_rawgeti(L, -2, i);
			if (!luaL_testudata(L, -1, VMLUA_VHOST))
				return luaL_argerror(L, 1, lua_pushfstring(L,
				        "servers[%I] must be a vmlua.VhostUser", i));
			u->srv[u->nsrv++] = vmlua_checkvhost(L, -1);
			lua_rawseti(L, -2, i);
		}
		lua_setiuservalue(L, -3, 1);
	}
	lua_pop(L, 1);
	if (virtual_time) {
		char path[256];
		if (snprintf(path, sizeof(path), "%s/" LUML_TIME_SOCKET, rundir) >= (int)sizeof(path))
			return vmlua_fail(L, "run directory path too long for its time socket");
		if (calendar_listen(state_calendar(L), &u->tt, path, err, sizeof(err)) < 0)
			return vmlua_fail(L, err);
		/* Its devices' interrupts hold the clock until it has
		 * taken them. */
		for (unsigned k = 0; k < u->nsrv; k++) {
			u->srv[k]->on_call = calendar_owe;
			u->srv[k]->on_call_o = &u->tt;
		}
	}
	u->vm = uml_vm_spawn(binary, args, rundir, jailp, err, sizeof(err));
	if (!u->vm) {
		leave_calendar(u);
		return vmlua_fail(L, err);
	}
	u->loop = vmlua_loop(L);
	u->src = (struct loop_source){ .fds = src_fds, .serve = src_serve, .o = u };
	loop_add(u->loop, &u->src);
	return 1;
}


/*
 * Serve what the servers' fds in pfd have to say (srv_n[k] of them for
 * server k).  Their callbacks run Lua hooks, which may stop or close the
 * machine: a close is carried out here, once no server is on the stack.
 * 1 when the machine is still open.
 */
static int serve(struct luml *u, struct pollfd *pfd, const int *srv_n)
{
	unsigned k;

	u->busy++;
	for (k = 0; k < u->nsrv; k++) {
		vu_serve(u->srv[k], pfd, srv_n[k]);
		pfd += srv_n[k];
	}
	return leave(u);
}

/* The machine as a loop source: its servers' fds, and serving them. */
static int src_fds(void *o, struct pollfd *pfd, int max)
{
	struct luml *u = o;
	unsigned k;
	int n = 0;

	if (!u->vm || u->close_pending)
		return 0;
	for (k = 0; k < u->nsrv && n + VU_MAX_POLLFDS <= max; k++) {
		u->src_n[k] = vu_pollfds(u->srv[k], pfd + n);
		n += u->src_n[k];
	}
	for (; k < u->nsrv; k++)
		u->src_n[k] = 0;
	return n;
}

static void src_serve(void *o, struct pollfd *pfd, int n)
{
	(void)n;
	serve(o, pfd, ((struct luml *)o)->src_n);
}

/* Out of a stretch in which hooks ran (u->busy was raised): a close made
 * meanwhile is carried out now.  1 when the machine is still open. */
static int leave(struct luml *u)
{
	if (--u->busy == 0 && u->close_pending) {
		destroy(u);
		return 0;
	}
	return !u->close_pending;
}

/* Why the child ended, from its wait status. */
static void push_end(lua_State *L, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		lua_pushliteral(L, "poweroff");
		lua_pushliteral(L, "linux.uml exited with status 0");
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
		lua_pushliteral(L, "panic");
		lua_pushliteral(L, "linux.uml aborted (kernel panic)");
	} else if (WIFSIGNALED(status)) {
		lua_pushliteral(L, "error");
		lua_pushfstring(L, "linux.uml was killed by signal %d (%s)", WTERMSIG(status),
		                strsignal(WTERMSIG(status)));
	} else {
		lua_pushliteral(L, "error");
		lua_pushfstring(L, "linux.uml exited with status %d", WEXITSTATUS(status));
	}
}

/* machine:poll([timeout]) -> output [, reason, detail]: as the kvm one */
static int u_poll(lua_State *L)
{
	struct luml *u = checkuml(L, 1);
	double timeout = luaL_optnumber(L, 2, 0), deadline;
	char buf[16384];
	size_t n = 0;
	int status;

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
	deadline = clock_now() + timeout;
	/* What came while an mconsole request waited comes first. */
	memcpy(buf, u->pend, u->npend);
	n = u->npend;
	u->npend = 0;
	for (;;) {
		struct pollfd pfd[4 + LUML_MAX_SERVERS * VU_MAX_POLLFDS + LUML_OTHER_FDS];
		struct loop_round others;
		int nfd = 0, ms, rc, out_fd = uml_vm_output_fd(u->vm);
		int exit_fd = uml_vm_exit_fd(u->vm), first_srv, first_other, srv_n[LUML_MAX_SERVERS];
		int served;
		unsigned k;

		/* First, every time: the socket may have come since the
		 * last wakeup (and before vhost-user devices connect). */
		if (u->mcon_fd < 0)
			mcon_connect(u, NULL, 0);
		n += uml_vm_read(u->vm, buf + n, sizeof(buf) - n);
		/* Its last words are in the pipe before it is reaped; take
		 * them first (a killed UML's helpers may keep the pipe open,
		 * so EOF is not awaited). */
		if (uml_vm_reap(u->vm, &status)) {
			size_t got;
			while (n < sizeof(buf) && (got = uml_vm_read(u->vm, buf + n, sizeof(buf) - n)) > 0)
				n += got;
			if (n == sizeof(buf))
				break;  /* more to come: the end on the next call */
			lua_pushlstring(L, buf, n);
			push_end(L, status);
			return 3;
		}
		if (n)
			break;
		ms = (int)((deadline - clock_now()) * 1000 + 0.999);
		if (ms <= 0)
			break;
		if (out_fd >= 0)
			pfd[nfd++] = (struct pollfd){ out_fd, POLLIN, 0 };
		if (exit_fd >= 0)
			pfd[nfd++] = (struct pollfd){ exit_fd, POLLIN, 0 };
		pfd[nfd++] = (struct pollfd){ vmlua_interrupt_fd(), POLLIN, 0 };
		if (u->input_fd >= 0)
			pfd[nfd++] = (struct pollfd){ u->input_fd, POLLIN, 0 };
		first_srv = nfd;
		for (k = 0; k < u->nsrv; k++) {
			srv_n[k] = vu_pollfds(u->srv[k], pfd + nfd);
			nfd += srv_n[k];
		}
		/* The other machines' devices, served while we wait here. */
		first_other = nfd;
		nfd += loop_fds(u->loop, &u->src, pfd + nfd, LUML_OTHER_FDS, &others);
		/* Without a pidfd we look for the exit in small steps; a
		 * calendar waiting for a quiet round does not wait at all. */
		rc = poll(pfd, (nfds_t)nfd, loop_timeout(u->loop, exit_fd >= 0 ? ms : (ms < 10 ? ms : 10)));
		if (rc < 0 && errno != EINTR)
			return luaL_error(L, "poll: %s", strerror(errno));
		if (rc == 0)
			loop_quiet(u->loop);
		/* The devices first: UML waits for their answers.  Their
		 * hooks may have run Lua (a console's output, a device's
		 * notify): after this round the caller looks again, so that
		 * what a hook saw is seen within one turn. */
		served = 0;
		if (rc > 0) {
			int j;
			for (j = first_srv; j < first_other; j++)
				served |= pfd[j].revents != 0;
			if (!serve(u, pfd + first_srv, srv_n))
				break;       /* a hook closed the machine */
			u->busy++;
			served |= loop_serve(u->loop, &others, pfd + first_other);
			if (!leave(u))
				break;
		}
		if (rc > 0) {
			int j;
			for (j = 0; j < nfd; j++) {
				if (!pfd[j].revents || j >= first_srv)
					continue;
				if (pfd[j].fd == vmlua_interrupt_fd()) {
					vmlua_interrupt_clear();
					return luaL_error(L, "interrupted");
				}
				if (pfd[j].fd == u->input_fd) {
					char in[256], out[sizeof(in) + 1];
					ssize_t got = read(u->input_fd, in, sizeof(in));
					size_t m = (size_t)got;
					int quit = 0;

					if (got <= 0) {
						u->input_fd = -1;
						continue;
					}
					if (u->escape)
						m = ttyesc_filter(&u->esc, in, m, out, &quit);
					uml_vm_input(u->vm, u->escape ? out : in, m);
					if (quit) {
						lua_pushlstring(L, buf, n);
						lua_pushliteral(L, "quit");
						lua_pushliteral(L, "Ctrl-A x at the terminal");
						return 3;
					}
				}
			}
		}
		if (served)
			break;
	}
	lua_pushlstring(L, buf, n);
	return 1;
}

static int u_send(lua_State *L)
{
	struct luml *u = checkuml(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);
	vmlua_checknargs(L, 2);
	lua_pushinteger(L, (lua_Integer)uml_vm_input(u->vm, s, len));
	return 1;
}

/* machine:input(fd or nil [, escape]): forward bytes read from fd to the
 * console; with escape, they are a person's keys (see ttyesc.h) and
 * Ctrl-A x makes :poll() return the reason "quit". */
static int u_input(lua_State *L)
{
	struct luml *u = checkuml(L, 1);
	vmlua_checknargs(L, 3);
	u->input_fd = (int)luaL_optinteger(L, 2, -1);
	u->escape = lua_toboolean(L, 3);
	u->esc.armed = 0;
	return 0;
}

static int u_stop(lua_State *L)
{
	vmlua_checknargs(L, 1);
	uml_vm_kill(checkuml(L, 1)->vm);
	return 0;
}

/* The default wait for an mconsole reply, in seconds: generous, as the
 * guest may be slow to schedule the worker that answers. */
#define MCON_TIMEOUT 30.0

/*
 * Connect the machine's mconsole once UML has made its socket, in the
 * run directory.  Tried at each wakeup of :poll() as well, so that the
 * connection is there before vmlua drops root (sandbox.md), when the
 * socket's path may no longer be reached: UML makes the socket before
 * its vhost-user devices connect, and boot.lua drops root after that.  0, -ENOENT while there is no socket yet, or
 * another -errno with the reason in err (which may be NULL).
 */
static int mcon_connect(struct luml *u, char *err, size_t errlen)
{
	char path[256], why[256];
	const char *dir = uml_vm_rundir(u->vm);
	int rc;

	if (u->mcon_fd >= 0)
		return 0;
	if (!err)
		err = why, errlen = sizeof(why);
	if (!dir[0])
		return errbuf_set(err, errlen, "this machine has no run directory, so no mconsole"),
		       -ENOTSUP;
	if (uml_vm_pid(u->vm) == 0)
		return errbuf_set(err, errlen, "linux.uml has ended"), -ESRCH;
	if (snprintf(path, sizeof(path), "%s/vm/mconsole", dir) >= (int)sizeof(path))
		return errbuf_set(err, errlen, "run directory path too long: %s", dir), -ENAMETOOLONG;
	/* Cheap while UML has not made it yet: no socket to open. */
	rc = access(path, F_OK) < 0 ? -ENOENT : mconsole_connect(path, &u->mcon_fd, err, errlen);
	if (rc == -ENOENT)
		errbuf_set(err, errlen, "no mconsole socket at %s (a linux.uml without "
		           "CONFIG_MCONSOLE?)", path);
	return rc;
}

/*
 * Send cmd on the machine's mconsole and wait up to timeout seconds for
 * the whole reply.  Meanwhile the machine goes on being served: its
 * vhost-user devices answered (UML may be waiting on one before it gets
 * to the mconsole), its console output kept for the next :poll().  A
 * guest still booting gets until the timeout to make its socket.  0
 * with r filled in; -1 with the reason in err; -2 when interrupted
 * (SIGINT), for the caller to raise once r is freed.
 */
static int mcon_request(struct luml *u, const char *cmd, size_t len, double timeout,
                        struct mconsole_reply *r, char *err, size_t errlen)
{
	double deadline = clock_now() + timeout;
	int sent = 0, rc, ended = 0;

	for (;;) {
		struct pollfd pfd[4 + LUML_MAX_SERVERS * VU_MAX_POLLFDS + LUML_OTHER_FDS];
		struct loop_round others;
		int nfd = 0, ms, first_srv, first_other, srv_n[LUML_MAX_SERVERS], j;
		int out_fd = uml_vm_output_fd(u->vm), exit_fd = uml_vm_exit_fd(u->vm);
		unsigned k;

		if (!sent) {
			rc = mcon_connect(u, err, errlen);
			if (rc == 0) {
				if (mconsole_send(u->mcon_fd, cmd, len, err, errlen) < 0)
					return -1;
				sent = 1;
			} else if (rc != -ENOENT || ended) {
				return -1;
			}
		}
		if (sent) {
			rc = mconsole_recv(u->mcon_fd, r, err, errlen);
			if (rc < 0)
				return -1;
			if (rc > 0)
				return 0;
		}
		if (ended || uml_vm_reap(u->vm, NULL))
			return errbuf_set(err, errlen, "linux.uml ended before it answered"), -1;
		ms = (int)((deadline - clock_now()) * 1000 + 0.999);
		if (ms <= 0) {
			if (sent)
				return errbuf_set(err, errlen, "no reply within %g s", timeout), -1;
			return -1;   /* err says there is no socket */
		}
		/* Until the socket is there, look for it in small steps; so
		 * too for the end of a child we have no pidfd for. */
		if (!sent || exit_fd < 0)
			ms = ms < 10 ? ms : 10;
		if (sent)
			pfd[nfd++] = (struct pollfd){ u->mcon_fd, POLLIN, 0 };
		if (out_fd >= 0 && u->npend < sizeof(u->pend))
			pfd[nfd++] = (struct pollfd){ out_fd, POLLIN, 0 };
		if (exit_fd >= 0)
			pfd[nfd++] = (struct pollfd){ exit_fd, POLLIN, 0 };
		pfd[nfd++] = (struct pollfd){ vmlua_interrupt_fd(), POLLIN, 0 };
		first_srv = nfd;
		for (k = 0; k < u->nsrv; k++) {
			srv_n[k] = vu_pollfds(u->srv[k], pfd + nfd);
			nfd += srv_n[k];
		}
		/* The other machines' devices and the calendar, meanwhile. */
		first_other = nfd;
		nfd += loop_fds(u->loop, &u->src, pfd + nfd, LUML_OTHER_FDS, &others);
		rc = poll(pfd, (nfds_t)nfd, loop_timeout(u->loop, ms));
		if (rc < 0 && errno != EINTR)
			return errbuf_set(err, errlen, "poll: %s", strerror(errno)), -1;
		if (rc == 0)
			loop_quiet(u->loop);
		if (rc <= 0)
			continue;
		if (!serve(u, pfd + first_srv, srv_n))
			return errbuf_set(err, errlen, "the machine was closed meanwhile"), -1;
		u->busy++;
		loop_serve(u->loop, &others, pfd + first_other);
		if (!leave(u))
			return errbuf_set(err, errlen, "the machine was closed meanwhile"), -1;
		for (j = 0; j < first_srv; j++) {
			if (!pfd[j].revents)
				continue;
			if (pfd[j].fd == vmlua_interrupt_fd()) {
				vmlua_interrupt_clear();
				return -2;
			}
			if (pfd[j].fd == out_fd)
				u->npend += uml_vm_read(u->vm, u->pend + u->npend,
				                        sizeof(u->pend) - u->npend);
			/* Gone: one more look for a reply that came first. */
			if (pfd[j].fd == exit_fd)
				ended = 1;
		}
	}
}

/* Run cmd on the mconsole of the machine at 1: 1 with the reply in r
 * (r->err says whether UML accepted it), or pushes nil and a message
 * and returns 0.  Raises "interrupted" on SIGINT. */
static int mcon_call(lua_State *L, struct luml *u, const char *cmd, size_t len, double timeout,
                     struct mconsole_reply *r)
{
	char err[512];
	int rc;

	memset(r, 0, sizeof(*r));
	rc = mcon_request(u, cmd, len, timeout, r, err, sizeof(err));
	if (rc == -2) {
		mconsole_reply_free(r);
		luaL_error(L, "interrupted");
	}
	if (rc < 0) {
		mconsole_reply_free(r);
		lua_pushnil(L);
		lua_pushfstring(L, "mconsole '%s': %s", cmd, err);
		return 0;
	}
	return 1;
}

static double checktimeout(lua_State *L, int idx)
{
	double t = luaL_optnumber(L, idx, MCON_TIMEOUT);
	luaL_argcheck(L, t > 0, idx, "timeout must be positive");
	return t;
}

/* An mconsole command at idx: a non-empty string that fits one request
 * and holds no NUL (the kernel reads it as a C string). */
static const char *checkcommand(lua_State *L, int idx, size_t *len)
{
	const char *cmd = luaL_checklstring(L, idx, len);

	luaL_argcheck(L, *len > 0, idx, "empty command");
	luaL_argcheck(L, *len < MCONSOLE_MAX_DATA, idx, "command longer than 511 bytes");
	luaL_argcheck(L, !memchr(cmd, '\0', *len), idx, "command holds a NUL byte");
	return cmd;
}

/* machine:mconsole(cmd [, timeout]) -> reply text | nil, message: any
 * mconsole command; a command UML refuses gives nil and its answer. */
static int u_mconsole(lua_State *L)
{
	struct luml *u = checkuml(L, 1);
	size_t len;
	const char *cmd = checkcommand(L, 2, &len);
	double timeout = checktimeout(L, 3);
	struct mconsole_reply r;
	uint32_t failed;

	vmlua_checknargs(L, 3);
	if (!mcon_call(L, u, cmd, len, timeout, &r))
		return 2;
	failed = r.err;
	if (failed) {
		lua_pushnil(L);
		lua_pushfstring(L, "mconsole '%s': %s", cmd, r.text ? r.text : "failed");
	} else {
		lua_pushlstring(L, r.text ? r.text : "", r.len);
	}
	mconsole_reply_free(&r);
	return failed ? 2 : 1;
}

/* Send cmd and expect UML to accept it: true, or nil and a message. */
static int mcon_expect(lua_State *L, const char *cmd)
{
	struct luml *u = checkuml(L, 1);
	double timeout = checktimeout(L, 2);
	struct mconsole_reply r;
	uint32_t failed;

	vmlua_checknargs(L, 2);
	if (!mcon_call(L, u, cmd, strlen(cmd), timeout, &r))
		return 2;
	failed = r.err;
	if (failed) {
		lua_pushnil(L);
		lua_pushfstring(L, "mconsole '%s': %s", cmd, r.text ? r.text : "failed");
	} else {
		lua_pushboolean(L, 1);
	}
	mconsole_reply_free(&r);
	return failed ? 2 : 1;
}

/* machine:pause([timeout]) -> true | nil, message: mconsole "stop"; the
 * whole guest stands still until :resume(). */
static int u_pause(lua_State *L)
{
	return mcon_expect(L, "stop");
}

/* machine:resume([timeout]) -> true | nil, message: mconsole "go". */
static int u_resume(lua_State *L)
{
	return mcon_expect(L, "go");
}

/* machine:stats() -> { cpus = 1, pid = N or nil, exits = {} } */
static int u_stats(lua_State *L)
{
	struct luml *u = checkuml(L, 1);
	pid_t pid = uml_vm_pid(u->vm);
	vmlua_checknargs(L, 1);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, 1);
	lua_setfield(L, -2, "cpus");
	if (pid > 0) {
		lua_pushinteger(L, pid);
		lua_setfield(L, -2, "pid");
	}
	lua_newtable(L);
	lua_setfield(L, -2, "exits");
	return 1;
}

static void destroy(struct luml *u)
{
	if (u->loop)
		loop_remove(u->loop, &u->src);
	leave_calendar(u);
	if (u->vm) {
		uml_vm_destroy(u->vm);
		u->vm = NULL;
	}
	if (u->mcon_fd >= 0) {
		close(u->mcon_fd);
		u->mcon_fd = -1;
	}
}

/* :close(), __close and __gc.  From a hook that a server called inside
 * :poll(), the machine is killed now and let go when :poll() is out of
 * the servers (see serve). */
static int u_close(lua_State *L)
{
	struct luml *u = luaL_checkudata(L, 1, VMLUA_UML);
	if (u->busy && u->vm) {
		uml_vm_kill(u->vm);
		u->close_pending = 1;
		return 0;
	}
	destroy(u);
	return 0;
}

static int u_regs(lua_State *L)
{
	checkuml(L, 1);
	return luaL_error(L, "vm:regs() is not available on the uml backend");
}

static const luaL_Reg u_meta[] = {
	{"__gc", u_close},
	{"__close", u_close},
	{NULL, NULL}
};

static const luaL_Reg u_methods[] = {
	{"poll", u_poll}, {"send", u_send}, {"input", u_input}, {"stop", u_stop},
	{"pause", u_pause}, {"resume", u_resume}, {"stats", u_stats},
	{"regs", u_regs}, {"mconsole", u_mconsole}, {"close", u_close},
	{NULL, NULL}
};

/* core.mconsole(path, cmd [, timeout]) -> reply text | nil, message:
 * one command to the mconsole socket at path, of any UML. */
static int l_mconsole(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	const char *cmd = checkcommand(L, 2, &len);
	double timeout = checktimeout(L, 3);
	struct mconsole_reply r;
	char err[512];
	int fd, rc;

	vmlua_checknargs(L, 3);
	memset(&r, 0, sizeof(r));
	rc = mconsole_connect(path, &fd, err, sizeof(err));
	if (rc == 0) {
		rc = mconsole_request(fd, cmd, len, (int)(timeout * 1000), &r, err, sizeof(err));
		close(fd);
	}
	if (rc == 0 && r.err)
		errbuf_set(err, sizeof(err), "%s", r.text ? r.text : "failed");
	if (rc < 0 || r.err) {
		mconsole_reply_free(&r);
		lua_pushnil(L);
		lua_pushfstring(L, "mconsole '%s': %s", cmd, err);
		return 2;
	}
	lua_pushlstring(L, r.text ? r.text : "", r.len);
	mconsole_reply_free(&r);
	return 1;
}

void vmlua_uml_register(lua_State *L)
{
	lua_pushcfunction(L, l_mconsole);
	lua_setfield(L, -2, "mconsole");
	vmlua_newclass(L, VMLUA_UML, u_meta, u_methods);
	lua_pushcfunction(L, l_uml_vm);
	lua_setfield(L, -2, "uml_vm");
	lua_pushcfunction(L, l_uml_find);
	lua_setfield(L, -2, "uml_find");
	lua_pushcfunction(L, l_uml_rundir);
	lua_setfield(L, -2, "uml_rundir");
}
