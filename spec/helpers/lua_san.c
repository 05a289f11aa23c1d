/*
 * A bare `lua script [args]` for `make test SANITIZE=1`.  busted runs in
 * it so that vmlua.core, built with ASan and UBSan, is loaded into a
 * process that was itself linked with the sanitizers: their runtime must
 * come first, and Debian's lua5.4 would need it through LD_PRELOAD, which
 * every child (the shell, tmux, linux.uml) would then inherit.
 *
 * It does what lua.c does for a script: the global `arg`, the arguments
 * as the chunk's varargs, a traceback on error, and lua_close at the end
 * (busted leaves through os.exit(code, true), which closes too), so
 * LeakSanitizer sees only memory that was really lost.
 */
#include <stdio.h>
#include <dlfcn.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/*
 * lua_close unloads the C modules (vmlua.core among them) before the
 * process exits, and LeakSanitizer, which runs at exit, could then no
 * longer name the functions that allocated what leaked.  This dlclose
 * takes the place of libc's for the whole process: modules stay mapped.
 */
int dlclose(void *handle)
{
	(void)handle;
	return 0;
}

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int main(int argc, char **argv)
{
	lua_State *L;
	int i, status;

	if (argc < 2) {
		fprintf(stderr, "usage: %s script [args]\n", argv[0]);
		return 1;
	}
	if (!(L = luaL_newstate())) {
		fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
		return 1;
	}
	luaL_openlibs(L);
	/* arg[-1] the interpreter, arg[0] the script, arg[1..] its arguments. */
	lua_createtable(L, argc - 2, 2);
	for (i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - 1);
	}
	lua_setglobal(L, "arg");

	lua_pushcfunction(L, traceback);
	status = luaL_loadfile(L, argv[1]);
	if (status == LUA_OK) {
		for (i = 2; i < argc; i++)
			lua_pushstring(L, argv[i]);
		status = lua_pcall(L, argc - 2, 0, 1);
	}
	if (status != LUA_OK)
		fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
	lua_close(L);
	return status == LUA_OK ? 0 : 1;
}
