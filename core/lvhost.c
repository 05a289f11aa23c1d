/*
 * lvhost.c - vmlua.VhostUser: a Device served over a vhost-user socket.
 *
 *   local srv = core.vhost_user{ device = dev, path = "/tmp/rng.sock" }
 *   srv:poll(1)          -- serve the frontend for up to a second
 *   srv.memory           -- the frontend's RAM, as a vmlua.Memory
 *
 * The uml backend makes one per device and polls them with the child;
 * a script (or a spec playing a hostile frontend) can poll one alone.
 * A dropped connection is logged on stderr with its reason and kept in
 * srv.last_error; the server goes back to listening.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "vhost_user.h"
#include "vmlua.h"

struct lvhost {
	struct vu_server s;
	int open;
	int quiet;             /* do not log drops on stderr */
};

static struct lvhost *checklv(lua_State *L, int idx)
{
	struct lvhost *v = luaL_checkudata(L, idx, VMLUA_VHOST);
	if (!v->open)
		luaL_error(L, "attempt to use a closed " VMLUA_VHOST);
	return v;
}

struct vu_server *vmlua_checkvhost(lua_State *L, int idx)
{
	return &checklv(L, idx)->s;
}

static void on_drop(struct vu_server *s, const char *why)
{
	struct lvhost *v = s->opaque;
	if (!v->quiet)
		fprintf(stderr, "vmlua: vhost-user %s: %s; connection dropped\n", s->path, why);
}

/* vhost_user{ device = Device, path = PATH [, quiet = bool] }
 * -> VhostUser, or nil, message */
static int l_vhost_user(lua_State *L)
{
	struct lvhost *v;
	struct memory *mem;
	const char *path;
	char err[256];

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getfield(L, 1, "device") == LUA_TNIL ||
	    !luaL_testudata(L, -1, VMLUA_DEVICE))
		return luaL_argerror(L, 1, "field 'device' must be a vmlua.Device");
	if (vmlua_checkdevice(L, -1)->transport)
		return luaL_argerror(L, 1, "field 'device' is already on a transport");
	if (lua_getfield(L, 1, "path") != LUA_TSTRING)
		return luaL_argerror(L, 1, "field 'path' must be a string");
	path = lua_tostring(L, -1);
	lua_getfield(L, 1, "quiet");

	/* Stack: 1 options, 2 device, 3 path, 4 quiet. */
	v = lua_newuserdatauv(L, sizeof(*v), 2);    /* 5: device, memory */
	memset(v, 0, sizeof(*v));
	v->quiet = lua_toboolean(L, 4);
	luaL_setmetatable(L, VMLUA_VHOST);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, 5, 1);
	mem = vmlua_newmemory(L);                   /* 6 */
	vmlua_device_attach(L, 2, 6);
	lua_setiuservalue(L, 5, 2);
	if (vu_listen(&v->s, path, vmlua_checkdevice(L, 2), mem, err, sizeof(err)) < 0)
		return vmlua_fail(L, err);
	v->s.on_drop = on_drop;
	v->s.opaque = v;
	vmlua_memory_busy(mem, 1);
	v->open = 1;
	return 1;
}

/* Idempotent: :close(), __close and __gc. */
static int v_close(lua_State *L)
{
	struct lvhost *v = luaL_checkudata(L, 1, VMLUA_VHOST);
	if (v->open) {
		struct memory *mem = v->s.mem;
		vu_close(&v->s);
		v->s.dev->mem = NULL;
		vmlua_memory_busy(mem, -1);
		v->open = 0;
	}
	return 0;
}

/* srv:poll([timeout]) -> true: serve what arrives within timeout
 * seconds (default 0: only what is there now). */
static int v_poll(lua_State *L)
{
	struct lvhost *v = checklv(L, 1);
	double timeout = luaL_optnumber(L, 2, 0), deadline;

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
	deadline = clock_now() + timeout;
	for (;;) {
		struct pollfd pfd[VU_MAX_POLLFDS + 1];
		int n = vu_pollfds(&v->s, pfd), ms, rc;

		pfd[n] = (struct pollfd){ vmlua_interrupt_fd(), POLLIN, 0 };
		ms = (int)((deadline - clock_now()) * 1000 + 0.999);
		rc = poll(pfd, (nfds_t)n + 1, ms > 0 ? ms : 0);
		if (rc < 0 && errno != EINTR)
			return luaL_error(L, "poll: %s", strerror(errno));
		if (rc > 0 && pfd[n].revents) {
			vmlua_interrupt_clear();
			return luaL_error(L, "interrupted");
		}
		if (rc > 0)
			vu_serve(&v->s, pfd, n);
		if (ms <= 0)
			break;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg v_methods[] = {
	{"poll", v_poll}, {"close", v_close}, {NULL, NULL}
};

/* Fields.  path, closed, connected and the counters outlive the server,
 * for a look after the guest ends; the rest need it open. */
static struct lvhost *anylv(lua_State *L) { return luaL_checkudata(L, 1, VMLUA_VHOST); }

static int f_path(lua_State *L) { lua_pushstring(L, anylv(L)->s.path); return 1; }
static int f_closed(lua_State *L) { lua_pushboolean(L, !anylv(L)->open); return 1; }
static int f_connections(lua_State *L) { lua_pushinteger(L, (lua_Integer)anylv(L)->s.connections); return 1; }
static int f_messages(lua_State *L) { lua_pushinteger(L, (lua_Integer)anylv(L)->s.messages); return 1; }
static int f_drops(lua_State *L) { lua_pushinteger(L, (lua_Integer)anylv(L)->s.drops); return 1; }
static int f_features(lua_State *L) { lua_pushinteger(L, (lua_Integer)checklv(L, 1)->s.features); return 1; }
static int f_protocol(lua_State *L) { lua_pushinteger(L, (lua_Integer)checklv(L, 1)->s.protocol); return 1; }
static int f_device(lua_State *L) { checklv(L, 1); lua_getiuservalue(L, 1, 1); return 1; }
static int f_memory(lua_State *L) { checklv(L, 1); lua_getiuservalue(L, 1, 2); return 1; }

static int f_connected(lua_State *L)
{
	struct lvhost *v = anylv(L);
	lua_pushboolean(L, v->open && v->s.conn_fd >= 0);
	return 1;
}

static int f_last_error(lua_State *L)
{
	struct lvhost *v = anylv(L);
	if (v->s.last_error[0])
		lua_pushstring(L, v->s.last_error);
	else
		lua_pushnil(L);
	return 1;
}

static const luaL_Reg v_fields[] = {
	{"path", f_path}, {"closed", f_closed}, {"connected", f_connected},
	{"connections", f_connections}, {"messages", f_messages}, {"drops", f_drops},
	{"last_error", f_last_error}, {"features", f_features},
	{"protocol_features", f_protocol}, {"device", f_device}, {"memory", f_memory},
	{NULL, NULL}
};

/* Any other key: nil, or the closed error once the server is closed. */
static int other_field(lua_State *L)
{
	checklv(L, 1);
	lua_pushnil(L);
	return 1;
}

static int v_tostring(lua_State *L)
{
	struct lvhost *v = luaL_checkudata(L, 1, VMLUA_VHOST);
	if (!v->open)
		lua_pushliteral(L, VMLUA_VHOST " (closed)");
	else
		lua_pushfstring(L, VMLUA_VHOST " (%s, %s)", v->s.path,
		                v->s.conn_fd >= 0 ? "connected" : "listening");
	return 1;
}

void vmlua_vhost_register(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{"__gc", v_close}, {"__close", v_close}, {"__tostring", v_tostring},
		{NULL, NULL}
	};
	vmlua_newclass_fields(L, VMLUA_VHOST, meta, v_methods, v_fields, other_field);
	lua_pushcfunction(L, l_vhost_user);
	lua_setfield(L, -2, "vhost_user");
}
