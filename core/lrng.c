/*
 * lrng.c - core.rng{ queue = N }: a virtio-rng Device fed by getrandom.
 */
#include <string.h>
#include "rng.h"
#include "vmlua.h"

static int l_rng(lua_State *L)
{
	uint16_t size = 64;
	uint16_t num_max[1];
	struct vdev *d;

	vmlua_checknargs(L, 1);
	if (!lua_isnoneornil(L, 1)) {
		luaL_checktype(L, 1, LUA_TTABLE);
		static const char *const options[] = { "queue", NULL };
		vmlua_checkoptions(L, 1, options);
		if (lua_getfield(L, 1, "queue") != LUA_TNIL) {
			size = vmlua_queuesize(L, -1, 1, "option 'queue'", 1);
		}
		lua_pop(L, 1);
	}
	num_max[0] = size;
	d = vmlua_newdevice(L, VIRTIO_ID_RNG, 1, num_max, RNG_FEATURES, NULL, 0);
	d->backend = &rng_backend;
	return 1;
}

void vmlua_rng_register(lua_State *L)
{
	lua_pushcfunction(L, l_rng);
	lua_setfield(L, -2, "rng");
}
