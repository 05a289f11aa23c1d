/*
 * lhelpers.c - what every Lua binding in core/ shares: classes, argument
 * and option checks, sizes, kept callbacks and calling them, and the
 * interrupt pipe.  It calls no other binding (only memory.c, to step out
 * of a SIGBUS guard around a hook), so every binding can lean on it, as
 * Lua's libraries lean on lauxlib.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lhelpers.h"
#include "loop.h"
#include "memory.h"

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

/* __index of a class made by vmlua_newclass_fields: upvalue 1 holds the
 * methods, upvalue 2 the field getters, upvalue 3 the fallback (or nil). */
static int index_fields(lua_State *L)
{
	lua_settop(L, 2);
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNIL) {
		if (lua_isnil(L, lua_upvalueindex(3)))
			return 1;
		lua_pushvalue(L, lua_upvalueindex(3));
		lua_pushvalue(L, 1);
		lua_pushvalue(L, 2);
		lua_call(L, 2, 1);
		return 1;
	}
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	return 1;
}

void vmlua_newclass_fields(lua_State *L, const char *name, const luaL_Reg *meta,
                           const luaL_Reg *methods, const luaL_Reg *fields,
                           lua_CFunction other)
{
	if (!luaL_newmetatable(L, name)) {
		lua_pop(L, 1);
		return;
	}
	luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_newtable(L);
	luaL_setfuncs(L, fields, 0);
	if (other)
		lua_pushcfunction(L, other);
	else
		lua_pushnil(L);
	lua_pushcclosure(L, index_fields, 3);
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

static int traceback(lua_State *L)
{
	luaL_traceback(L, L, lua_tostring(L, 1), 1);
	return 1;
}

int vmlua_pcall_hook(lua_State *L, int nargs, int nresults, const char *what)
{
	int base = lua_gettop(L) - nargs, rc;
	struct memory_guard *guard;
	lua_pushcfunction(L, traceback);
	lua_insert(L, base);
	/* A transport may call us inside a SIGBUS guard (vhost_user.c); a
	 * jump must never cross Lua's frames, so the hook runs unguarded
	 * (its own accesses to guest memory guard themselves). */
	guard = memory_guard_suspend();
	rc = lua_pcall(L, nargs, nresults, base);
	memory_guard_resume(guard);
	if (rc != LUA_OK) {
		fprintf(stderr, "vmlua: error in %s hook: %s\n", what,
		        lua_tostring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
		fflush(stderr);
		lua_pop(L, 1);
	}
	lua_remove(L, base);
	return rc;
}

void *vmlua_state_object(lua_State *L, const char *name, size_t size, int *made)
{
	void *p;

	*made = 0;
	if (lua_getfield(L, LUA_REGISTRYINDEX, name) == LUA_TUSERDATA) {
		p = lua_touserdata(L, -1);
		lua_pop(L, 1);
		return p;
	}
	lua_pop(L, 1);
	/* Kept by the registry for the state's life: its memory goes only
	 * after every __gc has run, so a machine's can still leave it. */
	p = lua_newuserdatauv(L, size, 0);
	memset(p, 0, size);
	lua_setfield(L, LUA_REGISTRYINDEX, name);
	*made = 1;
	return p;
}

struct loop *vmlua_loop(lua_State *L)
{
	int made;
	return vmlua_state_object(L, "vmlua.loop", sizeof(struct loop), &made);
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

unsigned long vmlua_interrupts(void)
{
	return (unsigned long)interrupt_count;
}
