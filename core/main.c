/*
 * main.c - the vmlua executable: Lua 5.4 with vmlua built in.
 *
 *   vmlua [options] [script [args]]
 *
 * It behaves like the `lua` interpreter for scripts, -e and arg, so that
 * anything written for one runs under the other; it adds vmlua.core as a
 * built-in module, finds vmlua's Lua modules next to itself, and turns
 * SIGINT into a clean stop of whatever the script is waiting for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "vmlua.h"

static const char usage[] =
"usage: vmlua [options] [script [args]]\n"
"       vmlua boot [options]      (boot a guest; vmlua boot --help)\n"
"       vmlua test [FILE|DIR ...] (run scenarios; vmlua test --help)\n"
"\n"
"Run a Lua script that builds and boots virtual machines.\n"
"\n"
"options:\n"
"  -e CODE     run the Lua code CODE\n"
"  -l NAME     require library NAME into global NAME\n"
"  -i          enter interactive mode after running the script\n"
"  -v          print the version\n"
"  -h, --help  print this help\n"
"  --          stop handling options\n"
"  -           run standard input\n"
"\n"
"With no script, vmlua starts an interactive prompt.  `vmlua boot` runs the\n"
"boot script vmlua ships (scripts/boot.lua), `vmlua test` the regression\n"
"scenarios (a script named boot or test: vmlua ./boot).  See vmlua(1).\n"
"Example: vmlua boot --run 'uname -a'\n";

/* The one Lua state of this process, for the signal handler. */
static lua_State *global_L;

/* A hook set from the signal handler, as lua.c does: the next Lua
 * instruction raises an error, so a busy Lua loop also stops.  The hook
 * the script had (debug.sethook; vmlua test's watch for a stop that a
 * scenario swallowed) is put back first. */
static lua_Hook saved_hook;
static int saved_mask, saved_count;

static void interrupted_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, saved_hook, saved_mask, saved_count);
	luaL_error(L, "interrupted");
}

static void on_sigint(int sig)
{
	(void)sig;
	vmlua_interrupt();
	if (!global_L)
		return;
	if (lua_gethook(global_L) != interrupted_hook) {
		saved_hook = lua_gethook(global_L);
		saved_mask = lua_gethookmask(global_L);
		saved_count = lua_gethookcount(global_L);
	}
	lua_sethook(global_L, interrupted_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Message handler: append a traceback to a string error. */
static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)",
		                      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Call the function on top with nargs arguments, under the traceback
 * handler and with SIGINT caught.  Reports and returns non-zero on error. */
static int docall(lua_State *L, int nargs, int nres)
{
	int base = lua_gettop(L) - nargs;
	int status;
	/* SIGTERM and SIGHUP (a closed terminal) end a run as Ctrl-C does:
	 * the guests stop cleanly, sockets and temporary files go. */
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa, old[3];
	int i;

	lua_pushcfunction(L, traceback);
	lua_insert(L, base);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	status = lua_pcall(L, nargs, nres, base);
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	lua_remove(L, base);
	if (status != LUA_OK) {
		fprintf(stderr, "vmlua: %s\n", lua_tostring(L, -1));
		fflush(stderr);
		lua_pop(L, 1);
	}
	return status;
}

/*
 * Let `require` find vmlua's Lua modules wherever vmlua is: in a build
 * tree they are in ../lua next to build/vmlua; installed under a prefix
 * P they are in P/share/lua/5.4, beside P/bin/vmlua, whether or not P is
 * on Lua's own path.  Whichever of the two is there goes first.
 */
static void setup_path(lua_State *L)
{
	static const char *const trees[] = { "lua", "share/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR };
	char exe[PATH_MAX], probe[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	size_t i;

	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	for (i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		snprintf(probe, sizeof(probe), "%s/../%s/vmlua/init.lua", exe, trees[i]);
		if (access(probe, R_OK) != 0)
			continue;
		lua_getglobal(L, "package");
		lua_pushfstring(L, "%s/../%s/?.lua;%s/../%s/?/init.lua;", exe, trees[i], exe, trees[i]);
		lua_getfield(L, -2, "path");
		lua_concat(L, 2);
		lua_setfield(L, -2, "path");
		lua_pop(L, 1);
		return;
	}
}

/* Make `require "vmlua.core"` find the built-in module. */
int luaopen_vmlua_readline(lua_State *L);

static void preload_core(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_vmlua_core);
	lua_setfield(L, -2, "vmlua.core");
	/* The line editor lives in the executable only (it needs readline). */
	lua_pushcfunction(L, luaopen_vmlua_readline);
	lua_setfield(L, -2, "vmlua.readline");
	lua_pop(L, 1);
}

/*
 * The global `arg`, as lua.c builds it: arg[0] is the script, arg[1..]
 * its arguments, negative indices the interpreter and its options.
 */
static void create_arg(lua_State *L, char **argv, int argc, int script)
{
	int i;
	lua_createtable(L, argc - script, script + 1);
	for (i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
}

/* Push the script's arguments and run it. */
static int run_script(lua_State *L, char **argv, int argc, int script)
{
	const char *name = argv[script];
	int status, i;

	if (strcmp(name, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
		name = NULL;  /* stdin */
	status = luaL_loadfile(L, name);
	if (status != LUA_OK) {
		fprintf(stderr, "vmlua: %s\n", lua_tostring(L, -1));
		lua_pop(L, 1);
		return status;
	}
	for (i = script + 1; i < argc; i++)
		lua_pushstring(L, argv[i]);
	return docall(L, argc - script - 1, 0);
}

static int run_string(lua_State *L, const char *code)
{
	int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
	if (status != LUA_OK) {
		fprintf(stderr, "vmlua: %s\n", lua_tostring(L, -1));
		lua_pop(L, 1);
		return status;
	}
	return docall(L, 0, 0);
}

static int run_library(lua_State *L, const char *name)
{
	int status;
	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	status = docall(L, 1, 1);
	if (status == LUA_OK)
		lua_setglobal(L, name);
	return status;
}

int vmlua_repl(lua_State *L);

/* Lua code run with the state's package path set: the REPL lives in Lua. */
int vmlua_repl(lua_State *L)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "vmlua.repl");
	if (docall(L, 1, 1) != LUA_OK)
		return 1;
	lua_getfield(L, -1, "run");
	lua_remove(L, -2);
	return docall(L, 0, 0) != LUA_OK;
}

struct options {
	int script;        /* index of the script in argv, 0 if none */
	int interactive;
	int version;
	int help;
	int has_exec;      /* -e or -l given */
};

/* First pass: find the script and check options, as lua.c does. */
static int parse_args(int argc, char **argv, struct options *o)
{
	int i;
	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			o->script = i;
			return 0;
		}
		if (strcmp(a, "--") == 0) {
			if (i + 1 < argc)
				o->script = i + 1;
			return 0;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			o->help = 1;
		else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0)
			o->version = 1;
		else if (strcmp(a, "-i") == 0)
			o->interactive = 1;
		else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
			o->has_exec = 1;
			if (++i >= argc) {
				fprintf(stderr, "vmlua: '%s' needs an argument\n%s", a, usage);
				return -1;
			}
		} else if ((a[1] == 'e' || a[1] == 'l') && a[2]) {
			o->has_exec = 1;
		} else {
			fprintf(stderr, "vmlua: unrecognized option '%s'\n%s", a, usage);
			return -1;
		}
	}
	return 0;
}

/* Second pass: run -e and -l in order. */
static int run_options(lua_State *L, char **argv, int last)
{
	int i;
	for (i = 1; i < last; i++) {
		const char *a = argv[i], *v;
		if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
			continue;
		v = a[2] ? a + 2 : argv[++i];
		if ((a[1] == 'e' ? run_string(L, v) : run_library(L, v)) != LUA_OK)
			return 1;
	}
	return 0;
}

/* `vmlua test ...`: the scenario runner, vmlua.test.main(args, exe). */
static int run_test(lua_State *L, int argc, char **argv)
{
	int i, status;

	lua_getglobal(L, "require");
	lua_pushliteral(L, "vmlua.test");
	if (docall(L, 1, 1) != LUA_OK)
		return 126;
	lua_getfield(L, -1, "main");
	lua_remove(L, -2);
	lua_createtable(L, argc - 2, 0);
	for (i = 2; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - 1);
	}
	lua_pushstring(L, argv[0]);
	if (docall(L, 2, 1) != LUA_OK)
		return 126;
	status = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	return status;
}

/* The path of a script vmlua ships (vmlua.paths.shipped), malloc'ed, or
 * NULL after saying why. */
static char *shipped_script(lua_State *L, const char *name)
{
	char *path = NULL;

	lua_getglobal(L, "require");
	lua_pushliteral(L, "vmlua.paths");
	if (docall(L, 1, 1) != LUA_OK)
		return NULL;
	lua_getfield(L, -1, "shipped");
	lua_pushstring(L, name);
	if (docall(L, 1, 2) != LUA_OK) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_isstring(L, -2))
		path = strdup(lua_tostring(L, -2));
	else
		fprintf(stderr, "vmlua: %s\n", luaL_optstring(L, -1, "cannot find the script"));
	lua_pop(L, 3);
	return path;
}

/* The process's Lua state: libraries, vmlua.core, the module path. */
static lua_State *new_state(void)
{
	lua_State *L = luaL_newstate();

	if (!L) {
		fprintf(stderr, "vmlua: cannot create a Lua state: out of memory\n");
		return NULL;
	}
	global_L = L;
	luaL_openlibs(L);
	preload_core(L);
	setup_path(L);
	return L;
}

int main(int argc, char **argv)
{
	struct options o;
	lua_State *L = NULL;
	char *boot = NULL;
	int status = 0, last;

	if (argc >= 2 && strcmp(argv[1], "test") == 0) {
		if (!(L = new_state()))
			return 1;
		status = run_test(L, argc, argv);
		global_L = NULL;
		lua_close(L);
		return status;
	}
	if (argc >= 2 && strcmp(argv[1], "boot") == 0) {
		if (!(L = new_state()))
			return 1;
		if (!(boot = shipped_script(L, "boot.lua"))) {
			lua_close(L);
			return 1;
		}
		argv[1] = boot;     /* vmlua boot ARGS is vmlua PATH/boot.lua ARGS */
	}
	if (parse_args(argc, argv, &o) < 0)
		return 1;
	if (o.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (o.version) {
		printf("%s (%s)\n", VMLUA_VERSION, LUA_RELEASE);
		if (!o.script && !o.has_exec && !o.interactive)
			return 0;
	}
	if (!L && !(L = new_state()))
		return 1;
	create_arg(L, argv, argc, o.script ? o.script : 0);
	lua_gc(L, LUA_GCRESTART);
	lua_gc(L, LUA_GCGEN, 0, 0);

	last = o.script ? o.script : argc;
	if (run_options(L, argv, last))
		status = 1;
	else if (o.script && run_script(L, argv, argc, o.script) != LUA_OK)
		status = 1;
	else if (o.interactive || (!o.script && !o.has_exec && !o.version))
		status = vmlua_repl(L);
	global_L = NULL;
	lua_close(L);   /* runs __gc: guests stop, the tty is restored */
	free(boot);
	return status;
}
