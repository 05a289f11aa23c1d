/*
 * lhelpers.h - the helpers every Lua binding in core/ uses (lhelpers.c).
 */
#ifndef VMLUA_LHELPERS_H
#define VMLUA_LHELPERS_H

#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

/*
 * Process-wide interrupt request (SIGINT).  The executable's signal
 * handler calls vmlua_interrupt(); anything that blocks in a loop
 * (vm:wait) polls vmlua_interrupt_fd() and raises "interrupted" when it
 * becomes readable.  vmlua_interrupt_clear() drains it.  This is the one
 * piece of state shared by every VM in a process, as a signal is.
 */
void vmlua_interrupt(void);
int vmlua_interrupt_fd(void);
void vmlua_interrupt_clear(void);
/* How many stop signals (vmlua_interrupt calls) the process has had. */
unsigned long vmlua_interrupts(void);

/* An object of the Lua state's own, made zeroed (*made = 1) the first
 * time `name` is asked for and kept by the registry for the state's
 * life. */
void *vmlua_state_object(lua_State *L, const char *name, size_t size, int *made);
/* The loop of this Lua state's machines (loop.h), made on first use. */
struct loop;
struct loop *vmlua_loop(lua_State *L);

/*
 * Create metatable `name` with metamethods `meta` and methods `methods`
 * (reached through __index), and leave nothing on the stack.
 */
void vmlua_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                    const luaL_Reg *methods);

/*
 * vmlua_newclass, for objects that also have fields: obj.k is the method
 * k if there is one, else the getter fields[k] called with obj, else
 * other(obj, k) (nil when other is NULL).
 */
void vmlua_newclass_fields(lua_State *L, const char *name, const luaL_Reg *meta,
                           const luaL_Reg *methods, const luaL_Reg *fields,
                           lua_CFunction other);

/*
 * A size argument: an integer number of bytes, or a string such as
 * "256M", "5G", "4096", "64K" (binary units).  Raises an argument error
 * naming `what` otherwise.
 */
uint64_t vmlua_checksize(lua_State *L, int idx, const char *what);

/* Field k of the table at t as an integer, or an argument error on
 * argument `arg`: "<what> must be an integer" (what: "field 'k'" if NULL). */
lua_Integer vmlua_intfield(lua_State *L, int t, const char *k, int arg,
                           const char *what);

/* An unsigned 64-bit address argument (a Lua integer, taken as unsigned). */
uint64_t vmlua_checkaddr(lua_State *L, int idx);

/* luaL_fileresult's sibling for functions that have a message, not errno:
 * pushes nil, msg and returns 2. */
int vmlua_fail(lua_State *L, const char *msg);

/* Check that the function got at most `max` arguments
 * ("no more than 2 arguments expected, got 3"), as luaposix does. */
void vmlua_checknargs(lua_State *L, int max);
/* Raise an argument error naming the first key of the options table at
 * idx that is not one of names (NULL-terminated), and listing them. */
void vmlua_checkoptions(lua_State *L, int idx, const char *const *names);
/* The boolean option `key` of the table at idx, or dflt when it is nil;
 * anything else raises "option 'key' must be a boolean". */
int vmlua_optboolean(lua_State *L, int idx, const char *key, int dflt);
/* A Lua function kept for C to call later (from the main thread). */
struct vmlua_fn {
	lua_State *L;
	int ref;
};
/* The function at idx; NULL when out of memory. */
struct vmlua_fn *vmlua_fn_new(lua_State *L, int idx);
void vmlua_fn_free(struct vmlua_fn *f);

/*
 * Call the function below nargs arguments on top of L, protected, with a
 * traceback, keeping nresults results; an error is reported on stderr as
 * "vmlua: error in <what> hook: ..." (nothing is left on the stack) and
 * its status returned.  Every callback into Lua from C goes through here.
 */
int vmlua_pcall_hook(lua_State *L, int nargs, int nresults, const char *what);

#endif
