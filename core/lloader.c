/*
 * lloader.c - vmlua.Kernel: the loader as seen from Lua.
 *
 *     local k, err = core.kernel(mem, { kernel = "vmlinuz", initrd = "initrd.img",
 *                                       cmdline = "console=ttyS0", rsdp = rsdp })
 *     vm:start(k.entry, k.boot_params)
 *
 * A Kernel is a record of what loader.c did: read-only fields, no
 * methods.  It keeps its Memory alive (user value 1) so `k.memory` is
 * always usable, and keeps the command line it was given (user value 2).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "vmlua.h"
#include "x86.h"

#define UV_MEMORY  1
#define UV_CMDLINE 2

struct lkernel {
	struct kernel_info ki;
};

const struct kernel_info *vmlua_checkkernel(lua_State *L, int idx)
{
	struct lkernel *lk = luaL_checkudata(L, idx, VMLUA_KERNEL);
	return &lk->ki;
}

/* Raise "bad argument #2 to 'kernel' (<fmt>)". */
static int opterror(lua_State *L, const char *fmt, const char *field)
{
	lua_pushfstring(L, fmt, field);
	return luaL_argerror(L, 2, lua_tostring(L, -1));
}

/*
 * Push opts[field] and return it as a C string, or NULL when it is nil
 * and not required.  Anything but a string (numbers included: a path or
 * a command line that is a number is a mistake) raises; so does a string
 * with a NUL byte, which C would silently cut short.
 */
static const char *optstring(lua_State *L, const char *field, int required)
{
	size_t len;
	const char *s;

	lua_getfield(L, 2, field);
	if (lua_isnil(L, -1)) {
		if (required)
			opterror(L, "field '%s' is required", field);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		opterror(L, "field '%s' must be a string", field);
	s = lua_tolstring(L, -1, &len);
	if (strlen(s) != len)
		opterror(L, "field '%s' must not contain a NUL byte", field);
	return s;
}

/* Refuse option names we do not know: a typo ("initramfs") must not
 * boot a machine without its initrd. */
static void checkoptions(lua_State *L)
{
	static const char *const known[] = { "kernel", "initrd", "cmdline", "rsdp", NULL };

	lua_pushnil(L);
	while (lua_next(L, 2)) {
		int i, ok = 0;
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			lua_pushfstring(L, "options must be named, got a %s key",
			                luaL_typename(L, -1));
			luaL_argerror(L, 2, lua_tostring(L, -1));
		}
		for (i = 0; known[i]; i++)
			if (strcmp(lua_tostring(L, -1), known[i]) == 0)
				ok = 1;
		if (!ok)
			opterror(L, "unknown option '%s'", lua_tostring(L, -1));
	}
}

/*
 * kernel(memory, opts) -> Kernel, or nil and a message.
 * Load opts.kernel (and opts.initrd) into memory and write boot_params
 * with opts.cmdline (default "") and opts.rsdp (default 0).  Script
 * mistakes raise; a bad file returns nil and the loader's message.
 */
static int l_kernel(lua_State *L)
{
	struct memory *m;
	struct lkernel *lk;
	const char *kpath, *ipath, *cmdline;
	uint64_t rsdp = 0;
	char err[LOADER_ERR_MAX];

	vmlua_checknargs(L, 2);
	m = vmlua_checkmemory(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	checkoptions(L);
	kpath = optstring(L, "kernel", 1);      /* stack: 3 */
	ipath = optstring(L, "initrd", 0);      /* 4 */
	cmdline = optstring(L, "cmdline", 0);   /* 5 */
	if (!cmdline) {
		lua_pop(L, 1);
		lua_pushliteral(L, "");
		cmdline = lua_tostring(L, -1);
	}
	lua_getfield(L, 2, "rsdp");             /* 6 */
	if (!lua_isnil(L, -1)) {
		if (!lua_isinteger(L, -1))
			opterror(L, "field '%s' must be an integer", "rsdp");
		rsdp = (uint64_t)lua_tointeger(L, -1);
	}

	lk = lua_newuserdatauv(L, sizeof(*lk), 2);
	memset(lk, 0, sizeof(*lk));
	luaL_setmetatable(L, VMLUA_KERNEL);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, UV_MEMORY);
	lua_pushvalue(L, 5);
	lua_setiuservalue(L, -2, UV_CMDLINE);

	if (loader_load_kernel(m, kpath, &lk->ki, err, sizeof(err)) < 0 ||
	    (ipath && loader_load_initrd(m, ipath, &lk->ki, err, sizeof(err)) < 0) ||
	    loader_setup_boot_params(m, &lk->ki, cmdline, rsdp, err, sizeof(err)) < 0)
		return vmlua_fail(L, err);
	return 1;
}

static const char *e820_type(uint32_t type)
{
	switch (type) {
	case E820_RAM:      return "ram";
	case E820_RESERVED: return "reserved";
	case E820_ACPI:     return "acpi";
	default:            return "unknown";
	}
}

/* e820(memory) -> { { addr =, size =, type = "ram"|"reserved"|"acpi" }, ... },
 * the map loader_setup_boot_params() writes into boot_params. */
static int l_e820(lua_State *L)
{
	struct e820_entry map[128];
	struct memory *m;
	unsigned i, n;

	vmlua_checknargs(L, 1);
	m = vmlua_checkmemory(L, 1);
	n = loader_e820(m, map, 128);
	lua_createtable(L, (int)n, 0);
	for (i = 0; i < n; i++) {
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, (lua_Integer)map[i].addr);
		lua_setfield(L, -2, "addr");
		lua_pushinteger(L, (lua_Integer)map[i].size);
		lua_setfield(L, -2, "size");
		lua_pushstring(L, e820_type(map[i].type));
		lua_setfield(L, -2, "type");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* Push an address or size, or nil when it is zero (absent). */
static void pushopt(lua_State *L, uint64_t v)
{
	if (v)
		lua_pushinteger(L, (lua_Integer)v);
	else
		lua_pushnil(L);
}

/* __index: the Kernel's fields, computed from kernel_info. Unknown keys
 * read as nil, as in a table. */
static int k_index(lua_State *L)
{
	const struct kernel_info *ki = vmlua_checkkernel(L, 1);
	const char *key = lua_tostring(L, 2);

	if (!key || lua_type(L, 2) != LUA_TSTRING)
		lua_pushnil(L);
	else if (strcmp(key, "format") == 0)
		lua_pushstring(L, ki->format == KERNEL_BZIMAGE ? "bzImage" : "elf");
	else if (strcmp(key, "entry") == 0)
		lua_pushinteger(L, (lua_Integer)ki->entry64);
	else if (strcmp(key, "pvh_entry") == 0)
		pushopt(L, ki->pvh_entry);
	else if (strcmp(key, "protocol") == 0) {
		if (ki->protocol)
			lua_pushfstring(L, "%d.%s%d", ki->protocol >> 8,
			                (ki->protocol & 0xff) < 10 ? "0" : "",
			                ki->protocol & 0xff);
		else
			lua_pushnil(L);
	} else if (strcmp(key, "load_start") == 0)
		lua_pushinteger(L, (lua_Integer)ki->load_start);
	else if (strcmp(key, "load_end") == 0)
		lua_pushinteger(L, (lua_Integer)ki->load_end);
	else if (strcmp(key, "initrd_addr") == 0)
		pushopt(L, ki->initrd_size ? ki->initrd_addr : 0);
	else if (strcmp(key, "initrd_size") == 0)
		pushopt(L, ki->initrd_size);
	else if (strcmp(key, "boot_params") == 0)
		lua_pushinteger(L, (lua_Integer)ki->boot_params);
	else if (strcmp(key, "cmdline") == 0)
		lua_getiuservalue(L, 1, UV_CMDLINE);
	else if (strcmp(key, "memory") == 0)
		lua_getiuservalue(L, 1, UV_MEMORY);
	else
		lua_pushnil(L);
	return 1;
}

static int k_newindex(lua_State *L)
{
	return luaL_error(L, VMLUA_KERNEL " fields are read-only");
}

static int k_tostring(lua_State *L)
{
	const struct kernel_info *ki = vmlua_checkkernel(L, 1);
	char buf[160];

	snprintf(buf, sizeof(buf), VMLUA_KERNEL " (%s, entry 0x%" PRIx64
	         ", 0x%" PRIx64 "-0x%" PRIx64 ")",
	         ki->format == KERNEL_BZIMAGE ? "bzImage" : "elf", ki->entry64,
	         ki->load_start, ki->load_end);
	lua_pushstring(L, buf);
	return 1;
}

static const luaL_Reg kernel_meta[] = {
	{"__newindex", k_newindex},
	{"__tostring", k_tostring},
	{NULL, NULL}
};

static const luaL_Reg kernel_methods[] = {
	{NULL, NULL}
};

void vmlua_loader_register(lua_State *L)
{
	vmlua_newclass(L, VMLUA_KERNEL, kernel_meta, kernel_methods);
	/* Fields, not methods: replace the method table with a function. */
	luaL_getmetatable(L, VMLUA_KERNEL);
	lua_pushcfunction(L, k_index);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	lua_pushcfunction(L, l_kernel);
	lua_setfield(L, -2, "kernel");
	lua_pushcfunction(L, l_e820);
	lua_setfield(L, -2, "e820");
}
