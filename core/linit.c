/*
 * linit.c - the Lua C module vmlua.core: one table built from every
 * binding in core/ (as Lua's linit.c opens its libraries).  It sets no
 * globals; `require "vmlua.core"` returns the table.
 */
#include "clock.h"
#include "vmlua.h"

/* monotonic() -> seconds on a clock that never jumps, as a float */
static int l_monotonic(lua_State *L)
{
	vmlua_checknargs(L, 0);
	lua_pushnumber(L, clock_now());
	return 1;
}

/* interrupts() -> how many stop signals this process has had */
static int l_interrupts(lua_State *L)
{
	vmlua_checknargs(L, 0);
	lua_pushinteger(L, (lua_Integer)vmlua_interrupts());
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
