/*
 * fuzz_scenario.c - libFuzzer target for the Lua side of `vmlua test`:
 * the scenario file loader with its option checks, and the command-line
 * parser (lua/vmlua/test.lua, lua-argparse).
 *
 * The parsers are Lua, so this embeds Lua 5.4 and runs them there; the
 * input's format and the rules that must hold are in fuzz_scenario.lua,
 * the driver.  libFuzzer cannot see into Lua by itself, so a line hook
 * gives it coverage: every (file, line before, line) step in a Lua file
 * other than the input bumps one of the extra counters below, which
 * libFuzzer reads as it reads its own edge counters.  A count hook ends
 * an input that runs too long (a scenario file may loop), and the
 * allocator refuses to go past MEM_LIMIT: both are the input's fault and
 * not findings.  Anything else the driver raises is a finding: abort().
 *
 *   make fuzz FUZZ_TARGETS=scenario
 *   build/fuzz_scenario fuzz/corpus/scenario/SEED   (one input)
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VMLUA_SRC
#define VMLUA_SRC "."
#endif

#define COUNTERS 65536
#define MEM_LIMIT (256u << 20)
#define STEP_LIMIT 2000000          /* VM instructions an input may run */
#define BUDGET_MSG "fuzz: out of steps"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t lua_counters[COUNTERS];

static lua_State *L;
static size_t mem_used;
static long steps;
static int prev_line;

/* lua_Alloc with a ceiling: past it Lua gets NULL, a memory error. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	if (!ptr)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		mem_used -= osize;
		return NULL;
	}
	if (nsize > osize && mem_used + (nsize - osize) > MEM_LIMIT)
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr)
		mem_used += nsize - osize;
	return ptr;
}

static uint32_t hash_source(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void hook(lua_State *l, lua_Debug *ar)
{
	if (ar->event == LUA_HOOKCOUNT) {
		steps += 1000;
		if (steps > STEP_LIMIT)
			luaL_error(l, BUDGET_MSG);
		return;
	}
	if (ar->event != LUA_HOOKLINE || !lua_getinfo(l, "S", ar) || ar->source[0] != '@' ||
	    strstr(ar->source, "fuzz-scenario.lua"))
		return;
	lua_counters[(hash_source(ar->source) ^ (uint32_t)prev_line * 40503u ^
	              (uint32_t)ar->currentline) % COUNTERS]++;
	prev_line = ar->currentline;
}

static int traceback(lua_State *l)
{
	luaL_traceback(l, l, lua_tostring(l, 1), 1);
	return 1;
}

static void setup(void)
{
	L = lua_newstate(limited_alloc, NULL);
	if (!L)
		abort();
	luaL_openlibs(L);
	lua_getglobal(L, "package");
	lua_pushstring(L, VMLUA_SRC "/lua/?.lua;" VMLUA_SRC "/lua/?/init.lua;");
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
	lua_pushcfunction(L, traceback);
	if (luaL_loadfile(L, VMLUA_SRC "/fuzz/fuzz_scenario.lua") != LUA_OK ||
	    lua_pcall(L, 0, 1, -2) != LUA_OK) {
		fprintf(stderr, "fuzz_scenario.lua: %s\n", lua_tostring(L, -1));
		abort();
	}
	/* The driver's table stays at index 2, the traceback at 1. */
}

/* Is the error on top of the stack the input's doing (too long, too
 * big) rather than a finding? */
static int input_limit(int rc)
{
	const char *msg = lua_tostring(L, -1);

	if (rc == LUA_ERRMEM)
		return 1;
	if (!msg || strstr(msg, "fuzz: invariant"))
		return 0;
	return strstr(msg, BUDGET_MSG) != NULL || strstr(msg, "not enough memory") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc;

	if (!L)
		setup();
	steps = 0;
	prev_line = 0;
	lua_sethook(L, hook, LUA_MASKLINE | LUA_MASKCOUNT, 1000);
	lua_getfield(L, 2, "run");
	lua_pushlstring(L, (const char *)data, size);
	rc = lua_pcall(L, 1, 0, 1);
	lua_sethook(L, NULL, 0, 0);
	if (rc != LUA_OK) {
		if (!input_limit(rc)) {
			const char *msg = lua_tostring(L, -1);
			fprintf(stderr, "fuzz_scenario: %s\n", msg ? msg : "(an error that is not a string)");
			abort();
		}
		lua_pop(L, 1);
	}
	lua_getfield(L, 2, "restore");
	if (lua_pcall(L, 0, 0, 1) != LUA_OK) {
		fprintf(stderr, "fuzz_scenario: restoring the globals: %s\n", lua_tostring(L, -1));
		abort();
	}
	lua_gc(L, LUA_GCSTEP, 0);
	return 0;
}
