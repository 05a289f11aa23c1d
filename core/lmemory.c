/*
 * lmemory.c - vmlua.Memory: guest memory as seen from Lua.
 *
 * Every method goes through memory_translate(), so a script can no more
 * reach outside guest RAM than the guest can; a bad address raises an
 * error that names it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "memory.h"
#include "vmlua.h"

struct lmemory {
	struct memory mem;
	int closed;
	int busy;       /* > 0 while a running VM uses this memory */
};

static struct lmemory *tolmemory(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, VMLUA_MEMORY);
}

struct memory *vmlua_checkmemory(lua_State *L, int idx)
{
	struct lmemory *lm = tolmemory(L, idx);
	if (lm->closed)
		luaL_error(L, "attempt to use a closed " VMLUA_MEMORY);
	return &lm->mem;
}

int vmlua_memory_closed(struct memory *m)
{
	struct lmemory *lm = (struct lmemory *)((char *)m - offsetof(struct lmemory, mem));
	return lm->closed;
}

void vmlua_memory_busy(struct memory *m, int delta)
{
	struct lmemory *lm = (struct lmemory *)((char *)m - offsetof(struct lmemory, mem));
	lm->busy += delta;
}

/* The host pointer for [addr, addr+len), or a Lua error naming addr. */
static uint8_t *checkrange(lua_State *L, struct memory *m, uint64_t addr,
                           uint64_t len)
{
	uint8_t *p = memory_translate(m, addr, len);
	if (!p) {
		char msg[96];
		snprintf(msg, sizeof(msg), "guest address 0x%" PRIx64 " (+%" PRIu64
		         " bytes) is outside guest RAM", addr, len);
		luaL_error(L, "%s", msg);
	}
	return p;
}

/* A guarded copy failed: the file behind the memory was truncated. */
static int gone(lua_State *L, uint64_t addr, uint64_t len)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "guest address 0x%" PRIx64 " (+%" PRIu64
	         " bytes): the memory is gone (its file was truncated)", addr, len);
	return luaL_error(L, "%s", msg);
}

struct memory *vmlua_newmemory(lua_State *L)
{
	struct lmemory *lm = lua_newuserdatauv(L, sizeof(*lm), 0);
	memory_init(&lm->mem);
	lm->closed = 0;
	lm->busy = 0;
	luaL_setmetatable(L, VMLUA_MEMORY);
	return &lm->mem;
}

/* memory(size) or memory{ size = size }: x86 layout, lazily allocated. */
static int l_memory(lua_State *L)
{
	struct lmemory *lm;
	uint64_t size;
	int rc;

	vmlua_checknargs(L, 1);
	if (lua_istable(L, 1)) {
		lua_getfield(L, 1, "size");
		if (lua_isnil(L, -1))
			luaL_argerror(L, 1, "field 'size' is required");
		size = vmlua_checksize(L, -1, "field 'size'");
		lua_pop(L, 1);
	} else {
		size = vmlua_checksize(L, 1, "size");
	}
	if (size < (1ULL << 20))
		luaL_argerror(L, 1, "size must be at least 1 MiB");
	if (size % 4096)
		luaL_argerror(L, 1, "size must be a multiple of 4 KiB");

	/* Create the handle closed, then acquire: __gc is safe either way. */
	lm = lua_newuserdatauv(L, sizeof(*lm), 0);
	memory_init(&lm->mem);
	lm->closed = 1;
	lm->busy = 0;
	luaL_setmetatable(L, VMLUA_MEMORY);
	rc = memory_create_x86(&lm->mem, size);
	if (rc < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot create %I bytes of guest memory: %s",
		                (lua_Integer)size, strerror(-rc));
		lua_pushinteger(L, -rc);
		return 3;
	}
	lm->closed = 0;
	return 1;
}

static int m_read(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	uint64_t addr = vmlua_checkaddr(L, 2);
	lua_Integer n = luaL_checkinteger(L, 3);
	uint8_t *p;
	luaL_Buffer b;
	char *dst;

	vmlua_checknargs(L, 3);
	luaL_argcheck(L, n >= 0, 3, "length must not be negative");
	luaL_argcheck(L, n <= (1 << 30), 3, "length must be at most 1 GiB");
	p = checkrange(L, m, addr, (uint64_t)n);
	/* Memory a vhost-user frontend shares can shrink under us. */
	dst = luaL_buffinitsize(L, &b, (size_t)n);
	if (memory_copy(dst, p, (size_t)n) < 0)
		return gone(L, addr, (uint64_t)n);
	luaL_pushresultsize(&b, (size_t)n);
	return 1;
}

static int m_write(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	uint64_t addr = vmlua_checkaddr(L, 2);
	size_t n;
	const char *s = luaL_checklstring(L, 3, &n);

	vmlua_checknargs(L, 3);
	if (memory_copy(checkrange(L, m, addr, n), s, n) < 0)
		return gone(L, addr, n);
	return 0;
}

static int m_fill(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	uint64_t addr = vmlua_checkaddr(L, 2);
	lua_Integer n = luaL_checkinteger(L, 3);
	lua_Integer byte = luaL_optinteger(L, 4, 0);

	vmlua_checknargs(L, 4);
	luaL_argcheck(L, n >= 0, 3, "length must not be negative");
	luaL_argcheck(L, byte >= 0 && byte <= 255, 4, "byte must be 0..255");
	if (memory_set(checkrange(L, m, addr, (uint64_t)n), (int)byte, (size_t)n) < 0)
		return gone(L, addr, (uint64_t)n);
	return 0;
}

/*
 * u8/u16/u32/u64(addr [, value]): read, or write when value is given.
 * Little-endian, as x86 is; values wider than the field raise.
 */
static int access_uint(lua_State *L, unsigned width)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	uint64_t addr = vmlua_checkaddr(L, 2);
	uint8_t *p, buf[8];
	uint64_t v = 0;
	unsigned i;

	vmlua_checknargs(L, 3);
	p = checkrange(L, m, addr, width);
	if (lua_isnoneornil(L, 3)) {
		if (memory_copy(buf, p, width) < 0)
			return gone(L, addr, width);
		for (i = 0; i < width; i++)
			v |= (uint64_t)buf[i] << (8 * i);
		lua_pushinteger(L, (lua_Integer)v);
		return 1;
	}
	v = (uint64_t)luaL_checkinteger(L, 3);
	if (width < 8)
		luaL_argcheck(L, v >> (8 * width) == 0, 3,
		              "value does not fit in the field");
	for (i = 0; i < width; i++)
		buf[i] = (uint8_t)(v >> (8 * i));
	if (memory_copy(p, buf, width) < 0)
		return gone(L, addr, width);
	return 0;
}

static int m_u8(lua_State *L)  { return access_uint(L, 1); }
static int m_u16(lua_State *L) { return access_uint(L, 2); }
static int m_u32(lua_State *L) { return access_uint(L, 4); }
static int m_u64(lua_State *L) { return access_uint(L, 8); }

/* regions() -> { { gpa = , size = [, sealed = true] }, ... } sorted by
 * address; sealed: a frontend's file that cannot shrink. */
static int m_regions(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	unsigned i;

	vmlua_checknargs(L, 1);
	lua_createtable(L, (int)m->nregions, 0);
	for (i = 0; i < m->nregions; i++) {
		lua_createtable(L, 0, 2);
		lua_pushinteger(L, (lua_Integer)m->region[i].gpa);
		lua_setfield(L, -2, "gpa");
		lua_pushinteger(L, (lua_Integer)m->region[i].size);
		lua_setfield(L, -2, "size");
		if (m->region[i].sealed) {      /* a frontend's, sealed */
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "sealed");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int m_size(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	vmlua_checknargs(L, 1);
	lua_pushinteger(L, (lua_Integer)m->ram_size);
	return 1;
}

/* One idempotent release, shared by :close(), __close and __gc. */
static void release(struct lmemory *lm)
{
	if (!lm->closed) {
		memory_destroy(&lm->mem);
		lm->closed = 1;
	}
}

/* :close() refuses while a running VM uses the memory. */
static int m_close(lua_State *L)
{
	struct lmemory *lm = tolmemory(L, 1);
	if (lm->busy > 0)
		return luaL_error(L, VMLUA_MEMORY " is in use by a running VM");
	release(lm);
	return 0;
}

/* __close leaves memory a running VM uses to __gc, which cannot run
 * before the VM (which holds a reference) is gone. */
static int m_closemeta(lua_State *L)
{
	struct lmemory *lm = tolmemory(L, 1);
	if (lm->busy == 0)
		release(lm);
	return 0;
}

static int m_gc(lua_State *L)
{
	release(tolmemory(L, 1));
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct lmemory *lm = tolmemory(L, 1);
	if (lm->closed)
		lua_pushliteral(L, VMLUA_MEMORY " (closed)");
	else
		lua_pushfstring(L, VMLUA_MEMORY " (%d MiB in %d regions)",
		                (int)(lm->mem.ram_size >> 20), (int)lm->mem.nregions);
	return 1;
}

static const luaL_Reg memory_meta[] = {
	{"__gc", m_gc},
	{"__close", m_closemeta},
	{"__tostring", m_tostring},
	{NULL, NULL}
};

static const luaL_Reg memory_methods[] = {
	{"read", m_read},
	{"write", m_write},
	{"fill", m_fill},
	{"u8", m_u8},
	{"u16", m_u16},
	{"u32", m_u32},
	{"u64", m_u64},
	{"regions", m_regions},
	{"size", m_size},
	{"close", m_close},
	{NULL, NULL}
};

void vmlua_memory_register(lua_State *L)
{
	vmlua_newclass(L, VMLUA_MEMORY, memory_meta, memory_methods);
	lua_pushcfunction(L, l_memory);
	lua_setfield(L, -2, "memory");
}
