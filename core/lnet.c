/*
 * lnet.c - core.switch() (vmlua.Switch) and core.net{ … }: virtio-net
 * Devices joined by an in-process switch, with a Lua frame hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "net.h"
#include "virtio.h"
#include "vmlua.h"

#define VMLUA_SWITCH "vmlua.Switch"
#define NET_MAX_FORWARDS 16
/* Registry: Device -> its Switch, weak keys, so a switch lives as long as
 * a device on it does. */
static const char SWITCH_OF[] = "vmlua.net.switch_of";

struct lsw {
	struct sw s;
};

static int l_switch(lua_State *L)
{
	struct lsw *w;

	vmlua_checknargs(L, 0);
	w = lua_newuserdatauv(L, sizeof(*w), 0);
	sw_init(&w->s);
	luaL_setmetatable(L, VMLUA_SWITCH);
	return 1;
}

static int sw_index(lua_State *L)
{
	struct lsw *w = luaL_checkudata(L, 1, VMLUA_SWITCH);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "ports")) lua_pushinteger(L, w->s.nports);
	else if (!strcmp(k, "frames")) lua_pushinteger(L, (lua_Integer)w->s.frames);
	else if (!strcmp(k, "flooded")) lua_pushinteger(L, (lua_Integer)w->s.flooded);
	else if (!strcmp(k, "dropped")) lua_pushinteger(L, (lua_Integer)w->s.dropped);
	else lua_pushnil(L);
	return 1;
}

static int sw_tostring(lua_State *L)
{
	struct lsw *w = luaL_checkudata(L, 1, VMLUA_SWITCH);
	lua_pushfstring(L, VMLUA_SWITCH " (%d ports, %I frames)", (int)w->s.nports,
	                (lua_Integer)w->s.frames);
	return 1;
}

/* The Lua frame hook: fn(frame, "tx"|"rx") -> nil/true (pass), false
 * (drop) or a string (the frame to pass instead).  The Device keeps it
 * (vmlua_device_setfn), so a hook that reaches its machine does not keep
 * the machine alive. */
static int call_hook(struct net *n, enum net_dir dir, uint8_t *frame, size_t *len,
                     size_t cap)
{
	lua_State *L = vmlua_device_pushfn(n->dev, "frame", 2);
	int rc = 0;

	if (!L)
		return -1;      /* no hook to ask: the frame is dropped */
	lua_pushlstring(L, (const char *)frame, *len);
	lua_pushstring(L, dir == NET_DIR_TX ? "tx" : "rx");
	if (vmlua_pcall_hook(L, 2, 1, "frame") != LUA_OK)
		return -1;      /* the frame is dropped */
	if (lua_type(L, -1) == LUA_TSTRING) {
		size_t l;
		const char *s = lua_tolstring(L, -1, &l);
		if (l > cap) {
			fprintf(stderr, "vmlua: frame hook returned %zu bytes (at most %zu); frame dropped\n",
			        l, cap);
			rc = -1;
		} else {
			memcpy(frame, s, l);
			*len = l;
		}
	} else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
		rc = -1;
	}
	lua_pop(L, 1);
	return rc;
}

/* "52:54:00:12:34:56" -> 6 bytes; 0 if malformed. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;
	int i;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
	           &end) != 6 || strlen(s) != 17)
		return 0;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return !(mac[0] & 1);       /* not a multicast address */
}

static const char *const OPTIONS[] = { "mac", "switch", "tap", "user", "hook", "queue", "sandbox", NULL };

/* What vmlua.virtio.net{} was asked for. */
struct net_opts {
	uint8_t mac[6];
	struct lsw *w;          /* the switch, or NULL */
	const char *tap;        /* the tap device's name, or NULL */
	int user;               /* libslirp user networking */
	const char *forwards[NET_MAX_FORWARDS];
	unsigned nforwards;
	int has_hook, sandbox;
	uint16_t size;
};

/* mac: given, or 52:54:00 and three random bytes. */
static void opt_mac(lua_State *L, struct net_opts *o)
{
	o->mac[0] = 0x52, o->mac[1] = 0x54, o->mac[2] = 0x00;
	if (lua_getfield(L, 1, "mac") != LUA_TNIL) {
		if (!lua_isstring(L, -1) || !parse_mac(lua_tostring(L, -1), o->mac))
			luaL_argerror(L, 1, "option 'mac' must be a unicast address like "
			              "\"52:54:00:12:34:56\"");
	} else if (getrandom(o->mac + 3, 3, 0) != 3) {
		luaL_error(L, "getrandom failed for a MAC address");
	}
	lua_pop(L, 1);
}

/* user = true | { forwards = { "tcp:...", ... } }.  The strings stay
 * referenced by the options table, argument 1. */
static void opt_user(lua_State *L, struct net_opts *o)
{
	int t = lua_getfield(L, 1, "user");
	lua_Integer i, k = 0;

	if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TBOOLEAN && t != LUA_TTABLE)
		luaL_argerror(L, 1, "option 'user' must be true or { forwards = { ... } }");
	if (o->w || o->tap)
		luaL_argerror(L, 1, "options 'switch', 'tap' and 'user' exclude each other");
	o->user = 1;
	if (t == LUA_TTABLE && lua_getfield(L, -1, "forwards") != LUA_TNIL) {
		if (!lua_istable(L, -1) || (k = (lua_Integer)lua_rawlen(L, -1)) > NET_MAX_FORWARDS)
			luaL_argerror(L, 1, "option 'user': 'forwards' must be a list of "
			              "at most 16 \"tcp:[HOSTADDR]:PORT-[GUESTADDR]:PORT\"");
		for (i = 1; i <= k; i++) {
			if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
				luaL_argerror(L, 1, lua_pushfstring(L,
				        "option 'user': forwards[%I] must be a string", i));
			o->forwards[o->nforwards++] = lua_tostring(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_settop(L, 1);
}

/* Where frames go (switch, tap or user, at most one), and the rest. */
static void check_net_options(lua_State *L, struct net_opts *o)
{
	vmlua_checkoptions(L, 1, OPTIONS);
	opt_mac(L, o);
	if (lua_getfield(L, 1, "switch") != LUA_TNIL) {
		o->w = luaL_testudata(L, -1, VMLUA_SWITCH);
		if (!o->w)
			luaL_argerror(L, 1, "option 'switch' must be a vmlua.Switch");
		if (o->w->s.nports == SW_MAX_PORTS)
			luaL_argerror(L, 1, "option 'switch': the switch has no free port");
	}
	if (lua_getfield(L, 1, "tap") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
			luaL_argerror(L, 1, "option 'tap' must be the tap device's name");
		if (o->w)
			luaL_argerror(L, 1, "options 'switch' and 'tap' exclude each other");
		o->tap = lua_tostring(L, -1);
	}
	lua_settop(L, 1);
	opt_user(L, o);
	if (lua_getfield(L, 1, "hook") != LUA_TNIL) {
		if (!lua_isfunction(L, -1))
			luaL_argerror(L, 1, "option 'hook' must be a function(frame, direction)");
		o->has_hook = 1;
	}
	o->size = 256;
	if (lua_getfield(L, 1, "queue") != LUA_TNIL)
		o->size = vmlua_queuesize(L, -1, 1, "option 'queue'", 4);
	o->sandbox = vmlua_optboolean(L, 1, "sandbox", 1);
	lua_settop(L, 1);
}

/* The frame hook (option 'hook', a function) on n, whose Device is on
 * top of the stack and keeps the function. */
static void set_hook(lua_State *L, struct net *n)
{
	lua_getfield(L, 1, "hook");
	vmlua_device_setfn(L, -2, "frame", -1);
	lua_pop(L, 1);
	n->hook = call_hook;
}

static int l_net(lua_State *L)
{
	struct net_opts o = { 0 };
	uint8_t config[NET_CONFIG_LEN];
	uint16_t num_max[2];
	struct net *n;
	struct vdev *d;
	char err[256];

	vmlua_checknargs(L, 1);
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	check_net_options(L, &o);
	n = net_new(o.mac);
	if (!n)
		return luaL_error(L, "out of memory");
	if ((o.tap && net_open_tap(n, o.tap, err, sizeof(err))) ||
	    (o.user && net_open_user(n, o.forwards, o.nforwards, o.sandbox, err, sizeof(err)))) {
		net_free(n);
		return vmlua_fail(L, err);
	}
	num_max[0] = num_max[1] = o.size;
	net_config(n, config);
	d = vmlua_newdevice(L, VIRTIO_ID_NET, 2, num_max, net_features(), config, NET_CONFIG_LEN);
	d->backend = &net_backend;
	d->backend_data = n;
	n->dev = d;
	if (o.has_hook)
		set_hook(L, n);
	if (o.w) {
		sw_attach(&o.w->s, &n->port);
		lua_getfield(L, LUA_REGISTRYINDEX, SWITCH_OF);
		lua_pushvalue(L, -2);                   /* the device */
		lua_getfield(L, 1, "switch");
		lua_rawset(L, -3);
		lua_pop(L, 1);
	}
	return 1;
}

void vmlua_net_register(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{"__index", sw_index}, {"__tostring", sw_tostring}, {NULL, NULL}
	};
	if (luaL_newmetatable(L, VMLUA_SWITCH))
		luaL_setfuncs(L, meta, 0);
	lua_pop(L, 1);
	if (lua_getfield(L, LUA_REGISTRYINDEX, SWITCH_OF) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_newtable(L);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_setfield(L, LUA_REGISTRYINDEX, SWITCH_OF);
	} else {
		lua_pop(L, 1);
	}
	lua_pushcfunction(L, l_switch);
	lua_setfield(L, -2, "switch");
	lua_pushcfunction(L, l_net);
	lua_setfield(L, -2, "net");
}
