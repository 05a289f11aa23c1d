/*
 * lvirtq.c - vmlua.Virtqueue and vmlua.Chain: a split virtqueue and the
 * chains popped from it, as Lua objects.
 *
 * A Virtqueue keeps its Memory alive; a Chain keeps its Virtqueue and
 * its Memory alive and holds host pointers into guest memory that the
 * ring walker has already checked.  A chain is pushed once; after that
 * it is closed.
 *
 * Keeping the Memory object alive is not keeping the mapping: a script
 * may close the Memory, and a vhost-user frontend that hangs up (or
 * sends a new memory table) takes its memory with it.  So each use of a
 * chain first checks that the memory is open and still the mapping it
 * was popped from (struct memory's generation) and that its queue was
 * not reset since; a chain that fails raises instead of touching freed
 * pages.  Copies to and from guest memory run under the SIGBUS guard
 * (memory.h): a frontend may truncate the file behind it.
 */
#include <string.h>

#include "memory.h"
#include "virtq.h"
#include "vmlua.h"

struct lvirtq {
	struct virtq own;      /* a queue of its own (virtqueue()) ... */
	struct virtq *q;       /* ... or one a Device owns */
	int ready;
};

struct lchain {
	struct virtq_chain c;
	int open;
	unsigned rd_iov;  size_t rd_off;    /* read cursor in the readable part */
	unsigned wr_iov;  size_t wr_off;    /* write cursor in the writable part */
	uint64_t written;
	uint32_t epoch;                     /* the queue's epoch when popped */
	struct virtq *q;                    /* the queue it came from */
	struct memory *mem;                 /* pinned: user value 2 */
	uint32_t mem_gen;                   /* mem->generation when popped */
};

struct lvirtq *vmlua_checkvirtq(lua_State *L, int idx)
{
	struct lvirtq *v = luaL_checkudata(L, idx, VMLUA_VIRTQUEUE);
	if (!v->ready)
		luaL_error(L, "attempt to use a closed " VMLUA_VIRTQUEUE);
	return v;
}

struct virtq *vmlua_virtq(struct lvirtq *v)
{
	return v->q;
}

void vmlua_push_virtq(lua_State *L, struct virtq *q, int owner)
{
	struct lvirtq *v;
	owner = lua_absindex(L, owner);
	v = lua_newuserdatauv(L, sizeof(*v), 2);
	memset(v, 0, sizeof(*v));
	luaL_setmetatable(L, VMLUA_VIRTQUEUE);
	v->q = q;
	v->ready = 1;
	lua_pushvalue(L, owner);
	lua_setiuservalue(L, -2, 1);           /* keep the owner alive */
}

/* A queue whose memory was closed by the script must not be touched. */
static void check_queue_memory(lua_State *L, struct virtq *q)
{
	if (q->mem && vmlua_memory_closed(q->mem))
		luaL_error(L, "attempt to use a closed " VMLUA_MEMORY);
}

static struct lchain *checkchain(lua_State *L, int idx)
{
	struct lchain *c = luaL_checkudata(L, idx, VMLUA_CHAIN);
	if (!c->open)
		luaL_error(L, "attempt to use a closed " VMLUA_CHAIN);
	return c;
}

/* A chain whose buffers may be touched: open, its memory open and still
 * mapped as when it was popped, its queue not reset since. */
static struct lchain *checklivechain(lua_State *L, int idx)
{
	struct lchain *c = checkchain(L, idx);
	if (vmlua_memory_closed(c->mem))
		luaL_error(L, "attempt to use a closed " VMLUA_MEMORY);
	if (c->mem->generation != c->mem_gen)
		luaL_error(L, "attempt to use a chain whose memory is gone");
	if (c->epoch != c->q->epoch)
		luaL_error(L, "chain was popped before the queue was reset");
	return c;
}

/* A copy into a chain's buffers faulted: the file behind them was
 * truncated.  The queue (and so its device) breaks, and the script hears. */
static int chain_gone(lua_State *L, struct lchain *c)
{
	virtq_break(c->q, VQ_MEMORY_GONE);
	return luaL_error(L, "attempt to use a chain whose memory is gone "
	                  "(its file was truncated)");
}

/* Push the Memory object behind the Virtqueue at qidx: its own (a
 * virtqueue()), or its owner's, which an owner keeps at field "memory" of
 * its second user value (see vmlua_push_virtq). */
static void push_queue_memory(lua_State *L, int qidx)
{
	lua_getiuservalue(L, qidx, 1);
	if (!luaL_testudata(L, -1, VMLUA_MEMORY)) {
		if (lua_getiuservalue(L, -1, 2) == LUA_TTABLE)
			lua_getfield(L, -1, "memory");
		else
			lua_pushnil(L);
		lua_replace(L, -3);
		lua_pop(L, 1);
	}
}

static int opt_bool(lua_State *L, int t, const char *k)
{
	int b;
	lua_getfield(L, t, k);
	if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
		luaL_argerror(L, t, lua_pushfstring(L, "field '%s' must be a boolean", k));
	b = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return b;
}

/*
 * virtqueue(memory, { size=, desc=, avail=, used=, event_idx=, indirect= })
 *   -> Virtqueue, or nil and the reason the layout is refused
 */
static int l_virtqueue(lua_State *L)
{
	struct memory *m = vmlua_checkmemory(L, 1);
	lua_Integer size, desc, avail, used;
	unsigned flags = 0;
	struct lvirtq *v;
	int rc;

	vmlua_checknargs(L, 2);
	luaL_checktype(L, 2, LUA_TTABLE);
	size = vmlua_intfield(L, 2, "size", 2, NULL);
	desc = vmlua_intfield(L, 2, "desc", 2, NULL);
	avail = vmlua_intfield(L, 2, "avail", 2, NULL);
	used = vmlua_intfield(L, 2, "used", 2, NULL);
	if (opt_bool(L, 2, "event_idx"))
		flags |= VIRTQ_F_EVENT_IDX;
	if (opt_bool(L, 2, "indirect"))
		flags |= VIRTQ_F_INDIRECT;
	luaL_argcheck(L, size >= 0 && size <= 0xffffffffLL, 2, "field 'size' out of range");

	v = lua_newuserdatauv(L, sizeof(*v), 2);
	memset(v, 0, sizeof(*v));
	luaL_setmetatable(L, VMLUA_VIRTQUEUE);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);           /* keep the Memory alive */
	v->q = &v->own;
	rc = virtq_setup(v->q, m, (unsigned)size, (uint64_t)desc, (uint64_t)avail,
	                 (uint64_t)used, flags);
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushstring(L, rc < 0 ? "out of memory" : virtq_reason_name(rc));
		return 2;
	}
	lua_getfield(L, 2, "base");
	if (!lua_isnil(L, -1)) {
		lua_Integer base = vmlua_intfield(L, 2, "base", 2, NULL);
		luaL_argcheck(L, base >= 0 && base <= 0xffff, 2, "field 'base' must be 0..65535");
		virtq_set_base(v->q, (uint16_t)base);
	}
	lua_pop(L, 1);
	v->ready = 1;
	return 1;
}

/* Call the error hook, if any, as fn(queue, reason). */
static void report(lua_State *L, int qidx, int reason)
{
	if (lua_getiuservalue(L, qidx, 2) == LUA_TFUNCTION) {
		lua_pushvalue(L, qidx);
		lua_pushstring(L, virtq_reason_name(reason));
		lua_call(L, 2, 0);
	} else {
		lua_pop(L, 1);
	}
}

/* q:pop() -> Chain, or nil (empty), or nil, reason (the queue broke) */
static int q_pop(lua_State *L)
{
	struct lvirtq *v = vmlua_checkvirtq(L, 1);
	struct lchain *c;
	int was_broken = v->q->broken, rc;

	vmlua_checknargs(L, 1);
	check_queue_memory(L, v->q);
	c = lua_newuserdatauv(L, sizeof(*c), 2);
	memset(c, 0, sizeof(*c));
	luaL_setmetatable(L, VMLUA_CHAIN);
	rc = virtq_pop(v->q, &c->c);
	if (rc == 0) {
		lua_pushnil(L);
		return 1;
	}
	if (rc < 0) {
		if (!was_broken)
			report(L, 1, -rc);
		lua_pushnil(L);
		lua_pushstring(L, virtq_reason_name(-rc));
		return 2;
	}
	c->open = 1;
	c->epoch = v->q->epoch;
	c->q = v->q;
	c->mem = v->q->mem;
	c->mem_gen = v->q->mem->generation;
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);           /* keep the queue alive */
	push_queue_memory(L, 1);
	lua_setiuservalue(L, -2, 2);           /* and the memory */
	return 1;
}

/* q:push(chain [, written]): written defaults to what chain:write wrote. */
static int q_push(lua_State *L)
{
	struct lvirtq *v = vmlua_checkvirtq(L, 1);
	struct lchain *c = checkchain(L, 2);
	lua_Integer written = luaL_optinteger(L, 3, (lua_Integer)c->written);

	vmlua_checknargs(L, 3);
	lua_getiuservalue(L, 2, 1);
	luaL_argcheck(L, lua_rawequal(L, -1, 1), 2, "chain was popped from another queue");
	checklivechain(L, 2);
	luaL_argcheck(L, written >= 0 && (uint64_t)written <= c->c.write_len &&
	              written <= 0xffffffffLL, 3,
	              "written exceeds the chain's writable length");
	virtq_push(v->q, c->c.head, (uint32_t)written);
	virtq_chain_release(&c->c);
	c->open = 0;
	return 0;
}

static int q_interrupt(lua_State *L)
{
	struct lvirtq *v = vmlua_checkvirtq(L, 1);
	vmlua_checknargs(L, 1);
	check_queue_memory(L, v->q);
	lua_pushboolean(L, virtq_needs_interrupt(v->q));
	return 1;
}

static int q_on_error(lua_State *L)
{
	vmlua_checkvirtq(L, 1);
	vmlua_checknargs(L, 2);
	if (!lua_isnil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	lua_setiuservalue(L, 1, 2);
	return 0;
}

static int q_stats(lua_State *L)
{
	struct lvirtq *v = vmlua_checkvirtq(L, 1);
	vmlua_checknargs(L, 1);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)v->q->pops);
	lua_setfield(L, -2, "pops");
	lua_pushinteger(L, (lua_Integer)v->q->pushes);
	lua_setfield(L, -2, "pushes");
	lua_pushinteger(L, (lua_Integer)v->q->interrupts);
	lua_setfield(L, -2, "interrupts");
	lua_pushinteger(L, (lua_Integer)v->q->suppressed);
	lua_setfield(L, -2, "suppressed");
	return 1;
}

static int q_close(lua_State *L)
{
	struct lvirtq *v = luaL_checkudata(L, 1, VMLUA_VIRTQUEUE);
	if (v->ready) {
		if (v->q == &v->own)
			virtq_release(v->q);
		v->ready = 0;
	}
	return 0;
}

static const luaL_Reg q_methods[] = {
	{"pop", q_pop},
	{"push", q_push},
	{"interrupt", q_interrupt},
	{"on_error", q_on_error},
	{"stats", q_stats},
	{"close", q_close},
	{NULL, NULL}
};

/* Fields: size, broken (reason name or nil), last_avail, used_idx. */
static int q_index(lua_State *L)
{
	struct lvirtq *v = luaL_checkudata(L, 1, VMLUA_VIRTQUEUE);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "size") == 0)
		lua_pushinteger(L, v->q->size);
	else if (strcmp(k, "broken") == 0) {
		if (v->q->broken)
			lua_pushstring(L, virtq_reason_name(v->q->broken));
		else
			lua_pushnil(L);
	} else if (strcmp(k, "last_avail") == 0)
		lua_pushinteger(L, v->q->last_avail);
	else if (strcmp(k, "used_idx") == 0)
		lua_pushinteger(L, v->q->used_idx);
	else {
		const luaL_Reg *r;
		for (r = q_methods; r->name; r++)
			if (strcmp(r->name, k) == 0) {
				lua_pushcfunction(L, r->func);
				return 1;
			}
		lua_pushnil(L);
	}
	return 1;
}

static int q_tostring(lua_State *L)
{
	struct lvirtq *v = luaL_checkudata(L, 1, VMLUA_VIRTQUEUE);
	if (!v->ready)
		lua_pushliteral(L, VMLUA_VIRTQUEUE " (closed)");
	else
		lua_pushfstring(L, VMLUA_VIRTQUEUE " (size %d, %s)", (int)v->q->size,
		                v->q->broken ? virtq_reason_name(v->q->broken) : "ok");
	return 1;
}

/* chain:read([n]) -> up to n bytes (default all) from the readable part */
static int c_read(lua_State *L)
{
	struct lchain *c = checklivechain(L, 1);
	lua_Integer want = luaL_optinteger(L, 2, LUA_MAXINTEGER);
	luaL_Buffer b;

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, want >= 0, 2, "length must not be negative");
	luaL_buffinit(L, &b);
	while (want > 0 && c->rd_iov < c->c.nread) {
		const struct iovec *io = &c->c.iov[c->rd_iov];
		size_t left = io->iov_len - c->rd_off;
		size_t take = (uint64_t)want < left ? (size_t)want : left;
		/* A buffer the walker checked lies inside guest RAM, which
		 * checklivechain says is still mapped; guarded for SIGBUS. */
		if (memory_copy(luaL_prepbuffsize(&b, take),
		                (const char *)io->iov_base + c->rd_off, take) < 0)
			return chain_gone(L, c);
		luaL_addsize(&b, take);
		c->rd_off += take;
		want -= (lua_Integer)take;
		if (c->rd_off == io->iov_len) {
			c->rd_iov++;
			c->rd_off = 0;
		}
	}
	luaL_pushresult(&b);
	return 1;
}

/* chain:write(s): append s to the writable part; raises if it won't fit. */
static int c_write(lua_State *L)
{
	struct lchain *c = checklivechain(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);
	unsigned i;

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, c->written + len <= c->c.write_len, 2,
	              "does not fit in the chain's writable buffers");
	if (c->wr_iov < c->c.nread)
		c->wr_iov = c->c.nread;
	for (i = c->wr_iov; len > 0 && i < c->c.niov; ) {
		const struct iovec *io = &c->c.iov[i];
		size_t room = io->iov_len - c->wr_off;
		size_t take = len < room ? len : room;
		/* Inside guest RAM, still mapped; guarded for SIGBUS. */
		if (memory_copy((char *)io->iov_base + c->wr_off, s, take) < 0)
			return chain_gone(L, c);
		s += take;
		len -= take;
		c->wr_off += take;
		c->written += take;
		if (c->wr_off == io->iov_len) {
			i++;
			c->wr_off = 0;
		}
	}
	c->wr_iov = i;
	return 0;
}

static int c_index(lua_State *L)
{
	struct lchain *c = luaL_checkudata(L, 1, VMLUA_CHAIN);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "read") == 0)
		lua_pushcfunction(L, c_read);
	else if (strcmp(k, "write") == 0)
		lua_pushcfunction(L, c_write);
	else if (!c->open)
		return luaL_error(L, "attempt to use a closed " VMLUA_CHAIN);
	else if (strcmp(k, "readable") == 0)
		lua_pushinteger(L, (lua_Integer)c->c.read_len);
	else if (strcmp(k, "writable") == 0)
		lua_pushinteger(L, (lua_Integer)c->c.write_len);
	else if (strcmp(k, "written") == 0)
		lua_pushinteger(L, (lua_Integer)c->written);
	else if (strcmp(k, "head") == 0)
		lua_pushinteger(L, c->c.head);
	else if (strcmp(k, "buffers") == 0)
		lua_pushinteger(L, (lua_Integer)c->c.niov);
	else
		lua_pushnil(L);
	return 1;
}

static int c_gc(lua_State *L)
{
	struct lchain *c = luaL_checkudata(L, 1, VMLUA_CHAIN);
	virtq_chain_release(&c->c);
	c->open = 0;
	return 0;
}

static int c_tostring(lua_State *L)
{
	struct lchain *c = luaL_checkudata(L, 1, VMLUA_CHAIN);
	if (!c->open)
		lua_pushliteral(L, VMLUA_CHAIN " (closed)");
	else
		lua_pushfstring(L, VMLUA_CHAIN " (head %d, %d readable, %d writable bytes)",
		                (int)c->c.head, (int)c->c.read_len, (int)c->c.write_len);
	return 1;
}

static const luaL_Reg q_meta[] = {
	{"__index", q_index},
	{"__gc", q_close},
	{"__close", q_close},
	{"__tostring", q_tostring},
	{NULL, NULL}
};

static const luaL_Reg c_meta[] = {
	{"__index", c_index},
	{"__gc", c_gc},
	{"__tostring", c_tostring},
	{NULL, NULL}
};

static const luaL_Reg none[] = { {NULL, NULL} };

void vmlua_virtq_register(lua_State *L)
{
	vmlua_newclass(L, VMLUA_VIRTQUEUE, q_meta, none);
	vmlua_newclass(L, VMLUA_CHAIN, c_meta, none);
	/* __index is a function here, not the methods table. */
	luaL_getmetatable(L, VMLUA_VIRTQUEUE);
	lua_pushcfunction(L, q_index);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_getmetatable(L, VMLUA_CHAIN);
	lua_pushcfunction(L, c_index);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_virtqueue);
	lua_setfield(L, -2, "virtqueue");
}
