/*
 * lblk.c - core.blk{ path = …, readonly, cow, serial, queue }: a
 * virtio-blk Device over an image file (blk.c, cow.c).
 */
#include <string.h>
#include "blk.h"
#include "virtio.h"
#include "vmlua.h"

static const char *const OPTIONS[] = { "path", "readonly", "cow", "serial", "queue", NULL };

static int l_blk(lua_State *L)
{
	struct blk_opts o = { 0 };
	uint16_t size = 128;
	uint16_t num_max[1];
	uint8_t config[BLK_CONFIG_LEN];
	char err[512];
	struct blk *b;
	struct vdev *d;
	int t;

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	vmlua_checkoptions(L, 1, OPTIONS);
	if (lua_getfield(L, 1, "path") != LUA_TSTRING)
		return luaL_argerror(L, 1, "option 'path' must be the image's file name");
	o.path = lua_tostring(L, -1);
	o.readonly = vmlua_optboolean(L, 1, "readonly", 0);
	t = lua_getfield(L, 1, "cow");
	if (t == LUA_TSTRING) {
		o.cow = 1;
		o.overlay = lua_tostring(L, -1);
	} else if (t == LUA_TBOOLEAN) {
		o.cow = lua_toboolean(L, -1);
	} else if (t != LUA_TNIL) {
		return luaL_argerror(L, 1, "option 'cow' must be true (a temporary overlay) "
		                     "or an overlay file name");
	}
	if (o.cow && o.readonly)
		return luaL_argerror(L, 1, "options 'readonly' and 'cow' exclude each other");
	t = lua_getfield(L, 1, "serial");
	if (t != LUA_TNIL) {
		if (t != LUA_TSTRING || lua_rawlen(L, -1) > BLK_ID_BYTES)
			return luaL_argerror(L, 1, "option 'serial' must be a string of at most 20 bytes");
		o.serial = lua_tostring(L, -1);
	}
	if (lua_getfield(L, 1, "queue") != LUA_TNIL) {
		/* a request is at least a header, a buffer and a status */
		size = vmlua_queuesize(L, -1, 1, "option 'queue'", 4);
	}
	b = blk_open(&o, err, sizeof(err));
	if (!b)
		return vmlua_fail(L, err);
	num_max[0] = size;
	blk_config(b, (unsigned)size, config);
	d = vmlua_newdevice(L, VIRTIO_ID_BLOCK, 1, num_max, blk_features(b), config,
	                    BLK_CONFIG_LEN);
	d->backend = &blk_backend;
	d->backend_data = b;
	return 1;
}

void vmlua_blk_register(lua_State *L)
{
	lua_pushcfunction(L, l_blk);
	lua_setfield(L, -2, "blk");
}
