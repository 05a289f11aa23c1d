/*
 * luml.c - the uml backend as seen from Lua: a machine object with the
 * same poll/send/stop shape as the kvm one, so that lua/vmlua/vm.lua can
 * drive either.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ttyesc.h"
#include "uml.h"
#include "vhost_user.h"
#include "vmlua.h"

#define VMLUA_UML "vmlua.UmlVM"

#define LUML_MAX_SERVERS 16

struct luml {
	struct uml_vm *vm;     /* NULL once closed */
	int input_fd;
	int escape;            /* input is a person's keys: Ctrl-A x quits */
	struct ttyesc esc;
	/* The vhost-user servers of its devices, polled with it. */
	struct vu_server *srv[LUML_MAX_SERVERS];
	unsigned nsrv;
};

static struct luml *checkuml(lua_State *L, int idx)
{
	struct luml *u = luaL_checkudata(L, idx, VMLUA_UML);
	if (!u->vm)
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

/* uml_vm{ binary = PATH, args = { ... }, rundir = PATH } -> machine, or
 * nil, message */
static int l_uml_vm(lua_State *L)
{
	const char *args[257];
	const char *binary, *rundir = NULL;
	char err[256];
	struct luml *u;
	lua_Integer n, i;

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
	u = lua_newuserdatauv(L, sizeof(*u), 1);
	memset(u, 0, sizeof(*u));
	u->input_fd = -1;
	luaL_setmetatable(L, VMLUA_UML);
	/* Its servers stay alive as long as it does. */
	if (lua_getfield(L, 1, "servers") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			return luaL_argerror(L, 1, "field 'servers' must be a list of vmlua.VhostUser");
		n = (lua_Integer)lua_rawlen(L, -1);
		if (n > LUML_MAX_SERVERS)
			return luaL_argerror(L, 1, "field 'servers' has more than 16 entries");
		for (i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, i);
			if (!luaL_testudata(L, -1, VMLUA_VHOST))
				return luaL_argerror(L, 1, lua_pushfstring(L,
				        "servers[%I] must be a vmlua.VhostUser", i));
			u->srv[u->nsrv++] = vmlua_checkvhost(L, -1);
			lua_pop(L, 1);
		}
		lua_setiuservalue(L, -2, 1);
	} else {
		lua_pop(L, 1);
	}
	u->vm = uml_vm_spawn(binary, args, rundir, err, sizeof(err));
	if (!u->vm)
		return vmlua_fail(L, err);
	return 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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
	deadline = now() + timeout;
	for (;;) {
		struct pollfd pfd[4 + LUML_MAX_SERVERS * VU_MAX_POLLFDS];
		int nfd = 0, ms, rc, out_fd = uml_vm_output_fd(u->vm);
		int exit_fd = uml_vm_exit_fd(u->vm), first_srv, srv_n[LUML_MAX_SERVERS];
		unsigned k;

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
		ms = (int)((deadline - now()) * 1000 + 0.999);
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
		/* Without a pidfd we look for the exit in small steps. */
		rc = poll(pfd, (nfds_t)nfd, exit_fd >= 0 ? ms : (ms < 10 ? ms : 10));
		if (rc < 0 && errno != EINTR)
			return luaL_error(L, "poll: %s", strerror(errno));
		/* The devices first: UML waits for their answers. */
		if (rc > 0) {
			int at = first_srv;
			for (k = 0; k < u->nsrv; k++) {
				vu_serve(u->srv[k], pfd + at, srv_n[k]);
				at += srv_n[k];
			}
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

static int u_pause(lua_State *L)
{
	vmlua_checknargs(L, 1);
	uml_vm_pause(checkuml(L, 1)->vm);
	return 0;
}

static int u_resume(lua_State *L)
{
	vmlua_checknargs(L, 1);
	uml_vm_resume(checkuml(L, 1)->vm);
	return 0;
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

static int u_close(lua_State *L)
{
	struct luml *u = luaL_checkudata(L, 1, VMLUA_UML);
	if (u->vm) {
		uml_vm_destroy(u->vm);
		u->vm = NULL;
	}
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
	{"regs", u_regs}, {"close", u_close},
	{NULL, NULL}
};

void vmlua_uml_register(lua_State *L)
{
	vmlua_newclass(L, VMLUA_UML, u_meta, u_methods);
	lua_pushcfunction(L, l_uml_vm);
	lua_setfield(L, -2, "uml_vm");
	lua_pushcfunction(L, l_uml_find);
	lua_setfield(L, -2, "uml_find");
	lua_pushcfunction(L, l_uml_rundir);
	lua_setfield(L, -2, "uml_rundir");
}
