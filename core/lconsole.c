/*
 * lconsole.c - core.console_device{ output = fn, input = "stdin"|path }
 * and core.console_send(dev, bytes): the C side of virtio.console (whose
 * Console object lives in lua/vmlua/console.lua).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vcon.h"
#include "virtio.h"
#include "vmlua.h"

static void call_output(struct vcon *c, const uint8_t *data, size_t len, void *opaque)
{
	struct vmlua_fn *o = opaque;
	lua_State *L = o->L;

	(void)c;
	if (!lua_checkstack(L, 3))
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, o->ref);
	lua_pushlstring(L, (const char *)data, len);
	vmlua_pcall_hook(L, 1, 0, "console output");
}

static void free_output(struct vcon *c)
{
	vmlua_fn_free(c->opaque);
	c->opaque = NULL;
	c->on_output = NULL;
}

static int l_console_device(lua_State *L)
{
	uint16_t num_max[2] = { 64, 64 };
	uint8_t config[VCON_CONFIG_LEN] = { 0 };
	struct vcon *c;
	struct vdev *d;
	int in_fd = -1, own = 0, t;

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	t = lua_getfield(L, 1, "output");
	if (t != LUA_TNIL && t != LUA_TFUNCTION)
		return luaL_argerror(L, 1, "field 'output' must be a function(data)");
	if (lua_getfield(L, 1, "input") != LUA_TNIL) {
		const char *src = lua_tostring(L, -1);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_argerror(L, 1, "field 'input' must be \"stdin\" or a file name");
		if (!strcmp(src, "stdin")) {
			in_fd = 0;
		} else {
			in_fd = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
			if (in_fd < 0)
				return vmlua_fail(L, lua_pushfstring(L, "%s: %s", src, strerror(errno)));
			own = 1;
		}
	}
	c = vcon_new();
	if (!c)
		return luaL_error(L, "out of memory");
	c->in_fd = in_fd;
	c->own_fd = own;
	d = vmlua_newdevice(L, VIRTIO_ID_CONSOLE, 2, num_max, 0, config, VCON_CONFIG_LEN);
	d->backend = &vcon_backend;
	d->backend_data = c;
	c->dev = d;
	if (t == LUA_TFUNCTION) {
		struct vmlua_fn *o;
		lua_getfield(L, 1, "output");
		o = vmlua_fn_new(L, -1);
		lua_pop(L, 1);
		if (!o)
			return luaL_error(L, "out of memory");
		c->on_output = call_output;
		c->opaque = o;
		c->on_free = free_output;
	}
	return 1;
}

/* console_send(dev, bytes) -> how many bytes were queued */
static int l_console_send(lua_State *L)
{
	struct vdev *d = vmlua_checkdevice(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, d->backend == &vcon_backend, 1, "not a console device");
	lua_pushinteger(L, (lua_Integer)vcon_input(d->backend_data, (const uint8_t *)s, len));
	return 1;
}

void vmlua_console_register(lua_State *L)
{
	lua_pushcfunction(L, l_console_device);
	lua_setfield(L, -2, "console_device");
	lua_pushcfunction(L, l_console_send);
	lua_setfield(L, -2, "console_send");
}
