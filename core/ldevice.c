/*
 * ldevice.c - vmlua.Device: a virtio device as a Lua object.
 *
 * Hooks (dev:on("notify", fn) and friends) run through one protected
 * call with a traceback: an error in a hook is reported on stderr, marks
 * the device NEEDS_RESET ("hook_error") and never unwinds into the
 * caller.  With no hook registered, nothing here enters Lua.
 *
 * Hooks run on the thread that owns the Lua state; transports that
 * receive guest accesses on other threads (vCPUs) post them to the loop.
 */
#include <stdio.h>
#include <string.h>

#include "device.h"
#include "virtio.h"
#include "vmlua.h"

struct ldev {
	struct vdev d;
	lua_State *L;          /* the main thread of the owning state */
	int closed;
	unsigned hooks;        /* bit per event with a hook */
};

/* Registry: lightuserdata(struct vdev *) -> Device, with weak values. */
static const char DEVICES[] = "vmlua.devices";

static struct ldev *toldev(struct vdev *d)
{
	return (struct ldev *)((char *)d - offsetof(struct ldev, d));
}

static struct ldev *checkdev(lua_State *L, int idx)
{
	struct ldev *v = luaL_checkudata(L, idx, VMLUA_DEVICE);
	if (v->closed)
		luaL_error(L, "attempt to use a closed " VMLUA_DEVICE);
	return v;
}

struct vdev *vmlua_checkdevice(lua_State *L, int idx)
{
	return &checkdev(L, idx)->d;
}

/* Push the Device userdata for d (it is alive: we were called from it). */
static int push_self(lua_State *L, struct vdev *d)
{
	lua_getfield(L, LUA_REGISTRYINDEX, DEVICES);
	lua_rawgetp(L, -1, d);
	lua_remove(L, -2);
	return lua_isuserdata(L, -1);
}

/* The Virtqueue object for queue i of the Device at idx (cached). */
static void push_queue(lua_State *L, int idx, unsigned i)
{
	struct ldev *v = luaL_checkudata(L, idx, VMLUA_DEVICE);
	idx = lua_absindex(L, idx);
	lua_getiuservalue(L, idx, 2);
	if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TNIL) {
		lua_pop(L, 1);
		vmlua_push_virtq(L, &v->d.q[i].vq, idx);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, (lua_Integer)i);
	}
	lua_remove(L, -2);
}

static void on_event(struct vdev *d, enum vdev_event e, unsigned arg)
{
	struct ldev *v = toldev(d);
	lua_State *L = v->L;
	int self, nargs = 1;

	if (!(v->hooks & (1u << e)))
		return;           /* no hook: stay out of Lua */
	if (!lua_checkstack(L, 8))
		return;           /* nothing pushed */
	if (!push_self(L, d)) {
		lua_pop(L, 1);    /* the nil push_self left */
		return;
	}
	self = lua_gettop(L);
	lua_getiuservalue(L, self, 1);
	lua_getfield(L, -1, vdev_event_name(e));
	lua_remove(L, -2);
	lua_pushvalue(L, self);
	switch (e) {
	case VDEV_EV_NOTIFY:
		push_queue(L, self, arg);
		nargs = 2;
		break;
	case VDEV_EV_STATUS:
		lua_pushinteger(L, d->status);
		lua_pushinteger(L, arg);
		nargs = 3;
		break;
	case VDEV_EV_CONFIG:
		lua_pushinteger(L, arg);
		nargs = 2;
		break;
	case VDEV_EV_ERROR:
		lua_pushstring(L, vdev_reason_name((int)arg));
		nargs = 2;
		break;
	default:
		break;
	}
	if (vmlua_pcall_hook(L, nargs, 0, vdev_event_name(e)) != LUA_OK &&
	    e != VDEV_EV_ERROR)
		vdev_fail(d, VDEV_HOOK_ERROR);
	lua_settop(L, self - 1);
}

/* Bit numbers from a list of integers, or a mask given as one integer. */
static uint64_t check_features(lua_State *L, int t)
{
	uint64_t f = 0;
	lua_Integer i, n;

	if (lua_isnoneornil(L, t))
		return 0;
	if (lua_isinteger(L, t))
		return (uint64_t)lua_tointeger(L, t);
	if (!lua_istable(L, t))
		luaL_error(L, "bad argument #1 to 'device' (field 'features' must be a list of bit numbers)");
	n = (lua_Integer)lua_rawlen(L, t);
	for (i = 1; i <= n; i++) {
		lua_Integer b;
		lua_rawgeti(L, t, i);
		b = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
		if (b < 0 || b > 63)
			luaL_error(L, "bad argument #1 to 'device' (features[%d] must be a bit number 0..63)", (int)i);
		f |= 1ULL << b;
		lua_pop(L, 1);
	}
	return f;
}

/* device{ id = N, queues = { num_max, ... }, features = {...}, config = "" } */
static int l_device(lua_State *L)
{
	uint16_t num_max[VDEV_MAX_QUEUES];
	lua_Integer id, n, i;
	const char *config = NULL;
	size_t config_len = 0;
	uint64_t features;

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "id");
	if (!lua_isinteger(L, -1) || (id = lua_tointeger(L, -1)) < 1 || id > 0xffff)
		return luaL_argerror(L, 1, "field 'id' must be a virtio device id (1..65535)");
	lua_getfield(L, 1, "queues");
	if (!lua_istable(L, -1))
		return luaL_argerror(L, 1, "field 'queues' must be a list of queue sizes");
	n = (lua_Integer)lua_rawlen(L, -1);
	if (n < 1 || n > VDEV_MAX_QUEUES)
		return luaL_argerror(L, 1, lua_pushfstring(L,
		        "field 'queues' must list 1..%d queue sizes", VDEV_MAX_QUEUES));
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		lua_pushfstring(L, "queues[%I]", i);
		num_max[i - 1] = vmlua_queuesize(L, -2, 1, lua_tostring(L, -1), 1);
		lua_pop(L, 2);
	}
	lua_getfield(L, 1, "features");
	features = check_features(L, lua_gettop(L));
	lua_getfield(L, 1, "config");
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_argerror(L, 1, "field 'config' must be a string of bytes");
		config = lua_tolstring(L, -1, &config_len);
		if (config_len > VDEV_CONFIG_MAX)
			return luaL_argerror(L, 1, "field 'config' is longer than 256 bytes");
	}

	vmlua_newdevice(L, (uint32_t)id, (unsigned)n, num_max, features, config,
	                (uint32_t)config_len);
	return 1;
}

struct vdev *vmlua_newdevice(lua_State *L, uint32_t id, unsigned nqueues,
                             const uint16_t *num_max, uint64_t features,
                             const void *config, uint32_t config_len)
{
	struct ldev *v = lua_newuserdatauv(L, sizeof(*v), 2);

	memset(v, 0, sizeof(*v));
	luaL_setmetatable(L, VMLUA_DEVICE);
	vdev_init(&v->d, id, nqueues, num_max, features, config, config_len);
	v->d.on_event = on_event;
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	v->L = lua_tothread(L, -1);
	lua_pop(L, 1);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);            /* hooks */
	lua_newtable(L);
	lua_setiuservalue(L, -2, 2);            /* Virtqueue objects */
	lua_getfield(L, LUA_REGISTRYINDEX, DEVICES);
	lua_pushvalue(L, -2);
	lua_rawsetp(L, -2, &v->d);
	lua_pop(L, 1);
	return &v->d;
}

/*
 * A C backend's own Lua function (the net device's frame hook) is kept
 * in its Device's hooks table under `key`, a name no event has, and not
 * in the registry.  The registry is a root: a function held there keeps
 * alive everything it reaches, and a hook that reaches its machine
 * reaches the machine's devices, this one among them, whose __gc is
 * what would let the function go.  So an unstarted machine dropped by
 * its script, its disks and its sockets, would stay for ever.  In the
 * Device's user value the same cycle is the collector's to break.
 */
void vmlua_device_setfn(lua_State *L, int dev, const char *key, int fn)
{
	dev = lua_absindex(L, dev);
	fn = lua_absindex(L, fn);
	luaL_checkudata(L, dev, VMLUA_DEVICE);
	lua_getiuservalue(L, dev, 1);
	lua_pushvalue(L, fn);
	lua_setfield(L, -2, key);
	lua_pop(L, 1);
}

lua_State *vmlua_device_pushfn(struct vdev *d, const char *key, int extra)
{
	lua_State *L = toldev(d)->L;

	if (!lua_checkstack(L, extra + 3))
		return NULL;
	if (!push_self(L, d)) {
		lua_pop(L, 1);          /* the nil push_self left */
		return NULL;
	}
	lua_getiuservalue(L, -1, 1);
	lua_getfield(L, -1, key);
	lua_replace(L, -3);             /* the function where the Device was */
	lua_pop(L, 1);                  /* the hooks table */
	if (!lua_isfunction(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	return L;
}

/* dev:on(event, fn or nil) */
static int d_on(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	const char *e = luaL_checkstring(L, 2);
	int i;

	vmlua_checknargs(L, 3);
	for (i = 0; i < VDEV_EV__COUNT; i++)
		if (strcmp(e, vdev_event_name((enum vdev_event)i)) == 0)
			break;
	if (i == VDEV_EV__COUNT)
		return luaL_argerror(L, 2, lua_pushfstring(L,
		        "unknown event '%s' (notify, status, reset, config or error)", e));
	if (!lua_isnil(L, 3))
		luaL_checktype(L, 3, LUA_TFUNCTION);
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 3);
	lua_setfield(L, -2, e);
	if (lua_isnil(L, 3))
		v->hooks &= ~(1u << i);
	else
		v->hooks |= 1u << i;
	lua_settop(L, 1);
	return 1;
}

static unsigned check_queue(lua_State *L, struct ldev *v, int idx)
{
	lua_Integer i = luaL_checkinteger(L, idx);
	luaL_argcheck(L, i >= 0 && i < (lua_Integer)v->d.nqueues, idx, "no such queue");
	return (unsigned)i;
}

static int d_queue(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	unsigned i = check_queue(L, v, 2);
	vmlua_checknargs(L, 2);
	push_queue(L, 1, i);
	return 1;
}

/* Driver side. */
uint16_t vmlua_queuesize(lua_State *L, int idx, int arg, const char *what, unsigned min)
{
	lua_Integer n = lua_isinteger(L, idx) ? lua_tointeger(L, idx) : 0;

	if (n < min || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a power of 2 from %d to %d",
		                                      what, (int)min, VIRTQ_MAX_SIZE));
	return (uint16_t)n;
}

void vmlua_device_attach(lua_State *L, int dev, int mem)
{
	struct ldev *v = checkdev(L, dev);
	struct memory *m = vmlua_checkmemory(L, mem);
	dev = lua_absindex(L, dev);
	mem = lua_absindex(L, mem);
	vdev_attach(&v->d, m);
	/* The device keeps the memory alive while attached. */
	lua_getiuservalue(L, dev, 2);
	lua_pushvalue(L, mem);
	lua_setfield(L, -2, "memory");
	lua_pop(L, 1);
}

static int d_attach(lua_State *L)
{
	vmlua_checknargs(L, 2);
	vmlua_device_attach(L, 1, 2);
	return 0;
}

static int d_set_status(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	lua_Integer s = luaL_checkinteger(L, 2);
	vmlua_checknargs(L, 2);
	luaL_argcheck(L, s >= 0 && s <= 255, 2, "status is a byte");
	vdev_set_status(&v->d, (uint8_t)s);
	return 0;
}

static int d_set_driver_features(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	uint64_t f = (uint64_t)luaL_checkinteger(L, 2);
	vmlua_checknargs(L, 2);
	vdev_set_driver_features(&v->d, f);
	return 0;
}

/* dev:set_queue(i, { num=, desc=, driver=, device= }) */
static int d_set_queue(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	unsigned i = check_queue(L, v, 2);
	lua_Integer f[4];
	static const char *const k[4] = { "num", "desc", "driver", "device" };
	int j;

	vmlua_checknargs(L, 3);
	luaL_checktype(L, 3, LUA_TTABLE);
	for (j = 0; j < 4; j++) {
		lua_getfield(L, 3, k[j]);
		if (!lua_isinteger(L, -1))
			return luaL_argerror(L, 3, lua_pushfstring(L, "field '%s' must be an integer", k[j]));
		f[j] = lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	luaL_argcheck(L, f[0] >= 0 && f[0] <= 0xffff, 3, "field 'num' out of range");
	vdev_set_queue(&v->d, i, (unsigned)f[0], (uint64_t)f[1], (uint64_t)f[2], (uint64_t)f[3]);
	return 0;
}

static int d_set_queue_ready(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	unsigned i = check_queue(L, v, 2);
	vmlua_checknargs(L, 3);
	luaL_checktype(L, 3, LUA_TBOOLEAN);
	vdev_set_queue_ready(&v->d, i, lua_toboolean(L, 3));
	return 0;
}

/* The device's rings live in its Memory: refuse once it is closed. */
static void check_dev_memory(lua_State *L, struct ldev *v)
{
	if (v->d.mem && vmlua_memory_closed(v->d.mem))
		luaL_error(L, "attempt to use a closed " VMLUA_MEMORY);
}

static int d_notify(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	lua_Integer i = luaL_checkinteger(L, 2);
	vmlua_checknargs(L, 2);
	check_dev_memory(L, v);
	vdev_notify(&v->d, i < 0 || i > 0xffff ? 0xffff : (unsigned)i);
	return 0;
}

/* dev:read_config(offset, n) -> bytes (zeros beyond the config space) */
static int d_read_config(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	lua_Integer off = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
	char buf[VDEV_CONFIG_MAX];
	vmlua_checknargs(L, 3);
	luaL_argcheck(L, off >= 0 && off <= 0xffff, 2, "offset out of range");
	luaL_argcheck(L, n >= 0 && n <= VDEV_CONFIG_MAX, 3, "length must be 0..256");
	vdev_config_read(&v->d, (uint32_t)off, buf, (uint32_t)n);
	lua_pushlstring(L, buf, (size_t)n);
	return 1;
}

static int d_write_config(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	lua_Integer off = luaL_checkinteger(L, 2);
	size_t n;
	const char *s = luaL_checklstring(L, 3, &n);
	vmlua_checknargs(L, 3);
	luaL_argcheck(L, off >= 0 && off <= 0xffff, 2, "offset out of range");
	luaL_argcheck(L, n <= VDEV_CONFIG_MAX, 3, "longer than the config space");
	vdev_config_write(&v->d, (uint32_t)off, s, (uint32_t)n);
	return 0;
}

/* dev:ack_interrupt([bits]) -> the interrupt status before clearing bits */
static int d_ack_interrupt(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	lua_Integer bits = luaL_optinteger(L, 2, 3);
	vmlua_checknargs(L, 2);
	lua_pushinteger(L, vdev_ack_interrupt(&v->d, (uint32_t)bits));
	return 1;
}

/* Device side. */
static int d_set_config(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	lua_Integer off = luaL_checkinteger(L, 2);
	size_t n;
	const char *s = luaL_checklstring(L, 3, &n);
	vmlua_checknargs(L, 3);
	luaL_argcheck(L, off >= 0 && (size_t)off + n <= VDEV_CONFIG_MAX, 2,
	              "config space is 256 bytes");
	vdev_update_config(&v->d, (uint32_t)off, s, (uint32_t)n);
	return 0;
}

/* dev:interrupt(queue): queue is an index or one of this device's
 * Virtqueues; raises the interrupt if the driver wants one now. */
static int d_interrupt(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	unsigned i;

	vmlua_checknargs(L, 2);
	if (lua_isuserdata(L, 2)) {
		struct virtq *q = vmlua_virtq(vmlua_checkvirtq(L, 2));
		for (i = 0; i < v->d.nqueues && q != &v->d.q[i].vq; i++)
			;
		luaL_argcheck(L, i < v->d.nqueues, 2, "not a queue of this device");
	} else {
		i = check_queue(L, v, 2);
	}
	check_dev_memory(L, v);
	vdev_interrupt(&v->d, i);
	return 0;
}

/* dev:queue_max(i) -> the largest size queue i accepts */
static int d_queue_max(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	unsigned i = check_queue(L, v, 2);
	vmlua_checknargs(L, 2);
	lua_pushinteger(L, v->d.q[i].num_max);
	return 1;
}

static int d_fail(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	vmlua_checknargs(L, 1);
	vdev_fail(&v->d, VDEV_HOOK_ERROR);
	return 0;
}

static int d_reset(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	vmlua_checknargs(L, 1);
	vdev_reset(&v->d);
	return 0;
}

static int d_close(lua_State *L)
{
	struct ldev *v = luaL_checkudata(L, 1, VMLUA_DEVICE);
	if (!v->closed) {
		unsigned i;
		for (i = 0; i < v->d.nqueues; i++)
			virtq_release(&v->d.q[i].vq);
		if (v->d.backend && v->d.backend->destroy)
			v->d.backend->destroy(&v->d);
		v->d.backend = NULL;
		v->closed = 1;
	}
	return 0;
}

static const luaL_Reg d_methods[] = {
	{"on", d_on}, {"queue", d_queue}, {"queue_max", d_queue_max}, {"attach", d_attach},
	{"set_status", d_set_status}, {"set_driver_features", d_set_driver_features},
	{"set_queue", d_set_queue}, {"set_queue_ready", d_set_queue_ready},
	{"notify", d_notify}, {"read_config", d_read_config},
	{"write_config", d_write_config}, {"ack_interrupt", d_ack_interrupt},
	{"set_config", d_set_config}, {"interrupt", d_interrupt},
	{"fail", d_fail}, {"reset", d_reset}, {"close", d_close},
	{NULL, NULL}
};

/* Fields: id, status, features, accepted, generation, broken, isr,
 * queues (count), notifies, then the C backend's counters. */
static int f_id(lua_State *L) { lua_pushinteger(L, checkdev(L, 1)->d.id); return 1; }
static int f_status(lua_State *L) { lua_pushinteger(L, checkdev(L, 1)->d.status); return 1; }
static int f_features(lua_State *L) { lua_pushinteger(L, (lua_Integer)checkdev(L, 1)->d.offered); return 1; }
static int f_accepted(lua_State *L) { lua_pushinteger(L, (lua_Integer)checkdev(L, 1)->d.accepted); return 1; }
static int f_generation(lua_State *L) { lua_pushinteger(L, checkdev(L, 1)->d.generation); return 1; }
static int f_isr(lua_State *L) { lua_pushinteger(L, checkdev(L, 1)->d.isr); return 1; }
static int f_queues(lua_State *L) { lua_pushinteger(L, checkdev(L, 1)->d.nqueues); return 1; }
static int f_notifies(lua_State *L) { lua_pushinteger(L, (lua_Integer)checkdev(L, 1)->d.notifies); return 1; }

static int f_broken(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	if (v->d.reason)
		lua_pushstring(L, vdev_reason_name(v->d.reason));
	else
		lua_pushnil(L);
	return 1;
}

static const luaL_Reg d_fields[] = {
	{"id", f_id}, {"status", f_status}, {"features", f_features},
	{"accepted", f_accepted}, {"generation", f_generation}, {"isr", f_isr},
	{"queues", f_queues}, {"notifies", f_notifies}, {"broken", f_broken},
	{NULL, NULL}
};

/* A counter of the C backend's (blk's reads, net's drops, ...), or nil. */
static int backend_field(lua_State *L)
{
	struct ldev *v = checkdev(L, 1);
	const char *k = lua_tostring(L, 2);
	int64_t n;

	if (k && v->d.backend && v->d.backend->field && v->d.backend->field(&v->d, k, &n))
		lua_pushinteger(L, (lua_Integer)n);
	else
		lua_pushnil(L);
	return 1;
}

static int d_tostring(lua_State *L)
{
	struct ldev *v = luaL_checkudata(L, 1, VMLUA_DEVICE);
	if (v->closed)
		lua_pushliteral(L, VMLUA_DEVICE " (closed)");
	else {
		char buf[128];
		snprintf(buf, sizeof(buf), VMLUA_DEVICE " (id %u, %u queues, status 0x%02x%s%s)",
		         (unsigned)v->d.id, v->d.nqueues, (unsigned)v->d.status,
		         v->d.reason ? ", needs reset: " : "",
		         v->d.reason ? vdev_reason_name(v->d.reason) : "");
		lua_pushstring(L, buf);
	}
	return 1;
}

static const luaL_Reg d_meta[] = {
	{"__gc", d_close},
	{"__close", d_close},
	{"__tostring", d_tostring},
	{NULL, NULL}
};

void vmlua_device_register(lua_State *L)
{
	vmlua_newclass_fields(L, VMLUA_DEVICE, d_meta, d_methods, d_fields, backend_field);
	/* The weak map from C device to Lua object, for hooks. */
	if (lua_getfield(L, LUA_REGISTRYINDEX, DEVICES) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "v");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_setfield(L, LUA_REGISTRYINDEX, DEVICES);
	} else {
		lua_pop(L, 1);
	}
	lua_pushcfunction(L, l_device);
	lua_setfield(L, -2, "device");
}
