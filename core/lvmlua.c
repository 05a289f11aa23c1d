/*
 * lvmlua.c - the Lua C module vmlua.core: one table built from every
 * binding in core/, plus the helpers those bindings share.  It sets no
 * globals; `require "vmlua.core"` returns the table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmlua.h"

void vmlua_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                    const luaL_Reg *methods)
{
	if (!luaL_newmetatable(L, name)) {   /* already made by another state? */
		lua_pop(L, 1);
		return;
	}
	luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

uint64_t vmlua_checksize(lua_State *L, int idx, const char *what)
{
	const char *s, *end;
	unsigned long long v;
	unsigned shift = 0;

	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Integer n;
		if (!lua_isinteger(L, idx) || (n = lua_tointeger(L, idx)) < 0) {
			lua_pushfstring(L, "%s must be a whole number of bytes", what);
			luaL_argerror(L, idx, lua_tostring(L, -1));
		}
		return (uint64_t)lua_tointeger(L, idx);
	}
	if (lua_type(L, idx) != LUA_TSTRING) {
		lua_pushfstring(L, "%s must be a size (bytes, or a string like '256M'), got %s",
		                what, luaL_typename(L, idx));
		luaL_argerror(L, idx, lua_tostring(L, -1));
	}
	s = lua_tostring(L, idx);
	errno = 0;
	v = strtoull(s, (char **)&end, 0);
	if (end == s || errno || *s == '-')
		goto bad;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	}
	if (*end == 'i' && shift) end++;
	if ((*end == 'B' || *end == 'b') && shift) end++;
	if (*end != '\0' || (shift && v > (~0ULL >> shift)))
		goto bad;
	return (uint64_t)v << shift;
bad:
	lua_pushfstring(L, "%s: cannot read '%s' as a size (try '256M' or '5G')",
	                what, s);
	luaL_argerror(L, idx, lua_tostring(L, -1));
	return 0;
}

lua_Integer vmlua_intfield(lua_State *L, int t, const char *k, int arg,
                           const char *what)
{
	lua_Integer v;
	lua_getfield(L, t, k);
	if (!lua_isinteger(L, -1)) {
		if (what)
			luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer", what));
		luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be an integer", k));
	}
	v = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

uint64_t vmlua_checkaddr(lua_State *L, int idx)
{
	return (uint64_t)luaL_checkinteger(L, idx);
}

int vmlua_fail(lua_State *L, const char *msg)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	return 2;
}

void vmlua_checknargs(lua_State *L, int max)
{
	int n = lua_gettop(L);
	if (n > max)
		luaL_error(L, "no more than %d argument%s expected, got %d", max,
		           max == 1 ? "" : "s", n);
}

void vmlua_checkoptions(lua_State *L, int idx, const char *const *names)
{
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
		int i;
		for (i = 0; names[i] && strcmp(names[i], k); i++)
			;
		if (!names[i]) {
			luaL_Buffer b;
			luaL_buffinit(L, &b);
			luaL_addstring(&b, "unknown option '");
			luaL_addstring(&b, k);
			luaL_addstring(&b, "' (");
			for (i = 0; names[i]; i++) {
				if (i)
					luaL_addstring(&b, ", ");
				luaL_addstring(&b, names[i]);
			}
			luaL_addstring(&b, ")");
			luaL_pushresult(&b);
			luaL_argerror(L, idx, lua_tostring(L, -1));
		}
		lua_pop(L, 1);
	}
}

int vmlua_optboolean(lua_State *L, int idx, const char *key, int dflt)
{
	int t = lua_getfield(L, idx, key), b = dflt;

	if (t == LUA_TBOOLEAN)
		b = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a boolean", key));
	lua_pop(L, 1);
	return b;
}

struct vmlua_fn *vmlua_fn_new(lua_State *L, int idx)
{
	struct vmlua_fn *f = malloc(sizeof(*f));

	if (!f)
		return NULL;
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	f->L = lua_tothread(L, -1);
	lua_pop(L, 1);
	lua_pushvalue(L, idx);
	f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return f;
}

void vmlua_fn_free(struct vmlua_fn *f)
{
	if (!f)
		return;
	luaL_unref(f->L, LUA_REGISTRYINDEX, f->ref);
	free(f);
}

/*
 * The interrupt pipe.  A signal is process-wide, so this is the one
 * global: a non-blocking pipe that the SIGINT handler writes a byte to
 * (write() is async-signal-safe) and loops poll.
 */
static int interrupt_pipe[2] = { -1, -1 };
static pthread_once_t interrupt_once = PTHREAD_ONCE_INIT;

static void interrupt_init(void)
{
	if (pipe2(interrupt_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		interrupt_pipe[0] = interrupt_pipe[1] = -1;
}

int vmlua_interrupt_fd(void)
{
	pthread_once(&interrupt_once, interrupt_init);
	return interrupt_pipe[0];
}

/* How many interrupts (SIGINT, SIGTERM, SIGHUP) this process has had:
 * unlike the pipe, which the first loop to wake drains, this stays, so a
 * runner can tell that a stop was asked for even when a script caught
 * the "interrupted" error. */
static volatile sig_atomic_t interrupt_count;

void vmlua_interrupt(void)
{
	int saved = errno;
	interrupt_count++;
	if (interrupt_pipe[1] >= 0 && write(interrupt_pipe[1], "!", 1) < 0) {
		/* full pipe: an interrupt is already pending */
	}
	errno = saved;
}

void vmlua_interrupt_clear(void)
{
	char buf[64];
	int fd = vmlua_interrupt_fd();
	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

/* interrupts() -> how many stop signals this process has had */
static int l_interrupts(lua_State *L)
{
	vmlua_checknargs(L, 0);
	lua_pushinteger(L, (lua_Integer)interrupt_count);
	return 1;
}

/* monotonic() -> seconds on a clock that never jumps, as a float */
static int l_monotonic(lua_State *L)
{
	struct timespec ts;
	vmlua_checknargs(L, 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
	return 1;
}

/* size(s) -> bytes: "256M", "5G", or a whole number */
static int l_size(lua_State *L)
{
	vmlua_checknargs(L, 1);
	lua_pushinteger(L, (lua_Integer)vmlua_checksize(L, 1, "size"));
	return 1;
}

int luaopen_vmlua_core(lua_State *L)
{
	lua_newtable(L);
	lua_pushcfunction(L, l_monotonic);
	lua_setfield(L, -2, "monotonic");
	lua_pushcfunction(L, l_interrupts);
	lua_setfield(L, -2, "interrupts");
	lua_pushcfunction(L, l_size);
	lua_setfield(L, -2, "size");
	vmlua_memory_register(L);
	vmlua_loader_register(L);
	vmlua_acpi_register(L);
	vmlua_vm_register(L);
	vmlua_tty_register(L);
	vmlua_virtq_register(L);
	vmlua_device_register(L);
	vmlua_uml_register(L);
	vmlua_vhost_register(L);
	vmlua_rng_register(L);
	vmlua_blk_register(L);
	vmlua_net_register(L);
	vmlua_console_register(L);
	vmlua_sandbox_register(L);
	lua_pushliteral(L, VMLUA_VERSION);
	lua_setfield(L, -2, "_VERSION");
	return 1;
}
