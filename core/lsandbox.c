/*
 * lsandbox.c - core.drop_privileges{ … } and core.sandbox_probe(…), the
 * sandbox (sandbox.c) as seen from Lua.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "sandbox.h"
#include "vmlua.h"

/*
 * drop_privileges{ user = NAME, chroot = DIR, check = bool }
 *   -> true, or nil, message
 *
 * chroot into DIR and become NAME (sandbox_drop).  With check = true
 * only see that it could be done, so a script can refuse bad options
 * before it boots anything.  After a real drop, a Lua module that was
 * not yet required can no longer be found: require it before.
 */
static int l_drop_privileges(lua_State *L)
{
	static const char *const options[] = { "user", "chroot", "check", NULL };
	const char *user = NULL, *dir = NULL;
	char err[256];
	int check;

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	vmlua_checkoptions(L, 1, options);
	if (lua_getfield(L, 1, "user") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
			return luaL_argerror(L, 1, "option 'user' must be a user name");
		user = lua_tostring(L, -1);
	}
	if (lua_getfield(L, 1, "chroot") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
			return luaL_argerror(L, 1, "option 'chroot' must be a directory");
		dir = lua_tostring(L, -1);
	}
	check = vmlua_optboolean(L, 1, "check", 0);
	if (!user && !dir)
		return luaL_argerror(L, 1, "option 'user' or 'chroot' is required");
	/* The strings stay referenced by the options table meanwhile. */
	if (sandbox_drop(user, dir, check, err, sizeof(err)) < 0)
		return vmlua_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* The calls sandbox_probe can try; each is harmless if it succeeds. */
enum probe_call { PROBE_EXECVE, PROBE_OPEN_READ, PROBE_OPEN_WRITE, PROBE_SOCKET_UNIX,
                  PROBE_SOCKET_INET, PROBE__COUNT };
static const char *const probe_names[PROBE__COUNT + 1] = {
	[PROBE_EXECVE] = "execve", [PROBE_OPEN_READ] = "open_read",
	[PROBE_OPEN_WRITE] = "open_write", [PROBE_SOCKET_UNIX] = "socket_unix",
	[PROBE_SOCKET_INET] = "socket_inet", [PROBE__COUNT] = NULL,
};
_Static_assert(sizeof(probe_names) / sizeof(probe_names[0]) == PROBE__COUNT + 1,
               "one name per probe call");

struct probe {
	int kind;                 /* a sandbox_kind, or -1 for no filter */
	enum probe_call call;
	const char *path;
	int entered;              /* sandbox_enter's result */
	int rc, err;              /* the call's result and errno */
};

static void *probe_thread(void *arg)
{
	struct probe *p = arg;
	int fd = -1;

	pthread_setname_np(pthread_self(), "probe");
	if (p->kind >= 0 && (p->entered = sandbox_enter((enum sandbox_kind)p->kind)) < 0)
		return NULL;
	errno = 0;
	switch (p->call) {
	case PROBE_EXECVE: {
		/* A path that does not exist: unfiltered the kernel says
		 * ENOENT, so a filter that failed cannot replace us. */
		char *const argv[] = { (char *)p->path, NULL };
		p->rc = execve(p->path, argv, argv + 1);
		break;
	}
	case PROBE_OPEN_READ:
		p->rc = fd = open(p->path, O_RDONLY | O_CLOEXEC);
		break;
	case PROBE_OPEN_WRITE:
		p->rc = fd = open(p->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		break;
	case PROBE_SOCKET_UNIX:
		p->rc = fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		break;
	case PROBE_SOCKET_INET:
		p->rc = fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		break;
	default:
		p->rc = -1, errno = EINVAL;
		break;
	}
	p->err = errno;
	if (fd >= 0)
		close(fd);
	return NULL;
}

/*
 * sandbox_probe(kind, call [, path]) -> true, or nil, message, errno
 *
 * For specs: start a thread, load the filter of `kind` ("vcpu", "io",
 * or "none" for no filter) into it exactly as the real threads do, make
 * `call` there ("execve", "open_read", "open_write", "socket_unix",
 * "socket_inet"; the first three on `path`) and say how it went.
 */
static int l_sandbox_probe(lua_State *L)
{
	static const char *const kinds[] = { "vcpu", "io", "none", NULL };
	struct probe p;
	pthread_t t;
	int rc;

	vmlua_checknargs(L, 3);
	memset(&p, 0, sizeof(p));
	p.kind = luaL_checkoption(L, 1, NULL, kinds);
	if (p.kind == 2)
		p.kind = -1;
	else
		p.kind = sandbox_kind_by_name(kinds[p.kind]);
	p.call = (enum probe_call)luaL_checkoption(L, 2, NULL, probe_names);
	p.path = luaL_optstring(L, 3, NULL);
	if (!p.path && (p.call == PROBE_EXECVE || p.call == PROBE_OPEN_READ ||
	                p.call == PROBE_OPEN_WRITE))
		return luaL_argerror(L, 3, lua_pushfstring(L, "'%s' needs a path", probe_names[p.call]));
	if ((rc = pthread_create(&t, NULL, probe_thread, &p)) != 0)
		return luaL_error(L, "pthread_create: %s", strerror(rc));
	pthread_join(t, NULL);
	if (p.entered < 0)
		return luaL_error(L, "seccomp: %s", strerror(-p.entered));
	if (p.rc >= 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, strerror(p.err));
	lua_pushinteger(L, p.err);
	return 3;
}

void vmlua_sandbox_register(lua_State *L)
{
	lua_pushcfunction(L, l_drop_privileges);
	lua_setfield(L, -2, "drop_privileges");
	lua_pushcfunction(L, l_sandbox_probe);
	lua_setfield(L, -2, "sandbox_probe");
}
