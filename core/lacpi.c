/*
 * lacpi.c - acpi(memory, opts): build a machine's ACPI tables from Lua.
 */
#include <string.h>

#include "acpi.h"
#include "memory.h"
#include "vmlua.h"

/***
 * Write the ACPI tables of an x86 machine into its guest memory.
 * @function acpi
 * @tparam vmlua.Memory memory the guest's RAM (must cover 0xe0000..0xfffff)
 * @tparam table opts `cpus` (1..255, required) and `mmio`, a list of
 *   `{ base =, size =, gsi = }` virtio-mmio windows (at most 32)
 * @treturn[1] integer the RSDP's guest-physical address
 * @return[2] nil
 * @treturn[2] string what could not be built
 */
static int l_acpi(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	struct acpi_config cfg;
	char err[256];
	uint64_t rsdp;

	vmlua_checknargs(L, 2);
	luaL_checktype(L, 2, LUA_TTABLE);
	memset(&cfg, 0, sizeof(cfg));
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		if (!k || (strcmp(k, "cpus") && strcmp(k, "mmio")))
			return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'",
			        k ? k : luaL_typename(L, -2)));
		lua_pop(L, 1);
	}
	if (lua_getfield(L, 2, "cpus") == LUA_TNIL)
		return luaL_argerror(L, 2, "field 'cpus' is required");
	lua_pop(L, 1);
	{
		lua_Integer c = vmlua_intfield(L, 2, "cpus", 2, NULL);
		if (c < 1 || c > 255)
			return luaL_argerror(L, 2, lua_pushfstring(L,
			        "field 'cpus' must be 1..255, got %I", c));
		cfg.ncpus = (unsigned)c;
	}
	if (lua_getfield(L, 2, "mmio") != LUA_TNIL) {
		int t = lua_gettop(L);
		lua_Integer n, i;
		if (!lua_istable(L, t))
			return luaL_argerror(L, 2, "field 'mmio' must be a table");
		n = (lua_Integer)lua_rawlen(L, t);
		if (n > X86_MMIO_MAX)
			return luaL_argerror(L, 2, lua_pushfstring(L,
			        "field 'mmio' has more than %d devices", X86_MMIO_MAX));
		for (i = 1; i <= n; i++) {
			lua_Integer base, size, gsi;
			if (lua_rawgeti(L, t, i) != LUA_TTABLE)
				return luaL_argerror(L, 2, lua_pushfstring(L,
				        "mmio[%I] must be a table", i));
			base = vmlua_intfield(L, lua_gettop(L), "base", 2, "mmio base");
			size = vmlua_intfield(L, lua_gettop(L), "size", 2, "mmio size");
			gsi = vmlua_intfield(L, lua_gettop(L), "gsi", 2, "mmio gsi");
			if (base < 0 || size <= 0 || gsi < 0 || gsi > 23)
				return luaL_argerror(L, 2, lua_pushfstring(L,
				        "mmio[%I] needs base >= 0, size > 0 and gsi 0..23", i));
			cfg.mmio[i - 1] = (struct acpi_mmio_device){
				(uint64_t)base, (uint64_t)size, (uint32_t)gsi };
			lua_pop(L, 1);
		}
		cfg.nmmio = (unsigned)n;
	}
	lua_pop(L, 1);
	if (acpi_build(m, &cfg, &rsdp, err, sizeof(err)) < 0)
		return vmlua_fail(L, err);
	lua_pushinteger(L, (lua_Integer)rsdp);
	return 1;
}

void vmlua_acpi_register(lua_State *L)
{
	lua_pushcfunction(L, l_acpi);
	lua_setfield(L, -2, "acpi");
}
