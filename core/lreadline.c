/*
 * lreadline.c - the REPL's line editor: GNU readline in callback mode,
 * so that the prompt can wait for a key and for guests at once.
 *
 *   local rl = require "vmlua.readline"   (in the vmlua executable only)
 *   rl.open{ prompt =, history = path, complete = fn(line, point) -> list }
 *   rl.poll(timeout) -> line, or false at end of input, or nil
 *   rl.print(text)           output above the prompt, the line intact
 *   rl.prompt(prompt)
 *   rl.close()
 *
 * readline has one terminal and keeps its state in globals, so this file
 * does too: one editor per process, for the one REPL there is.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <readline/readline.h>
#include <readline/history.h>
#include "vmlua.h"

static struct {
	int open;
	int installed;         /* the prompt is showing, keys go to readline */
	char *line;            /* a finished line, or NULL */
	int eof;
	char history[4096];    /* "" for none */
	lua_State *L;          /* for the completer */
	int complete_ref;
	char prompt[64];
} ed = { .complete_ref = LUA_NOREF };

/* A finished line (or EOF): leave callback mode until the REPL has run
 * it, so that what it prints comes before the next prompt. */
static void on_line(char *line)
{
	rl_callback_handler_remove();
	ed.installed = 0;
	if (!line) {
		ed.eof = 1;
		return;
	}
	free(ed.line);
	ed.line = line;
}

/* Candidates for `text` from the Lua completer, one per call. */
static char *candidate(const char *text, int state)
{
	static int i, n;
	lua_State *L = ed.L;
	char *out = NULL;

	(void)text;
	if (!L || ed.complete_ref == LUA_NOREF)
		return NULL;
	if (state == 0) {
		/* Ask once per completion; keep the list for the calls that follow. */
		lua_rawgeti(L, LUA_REGISTRYINDEX, ed.complete_ref);
		lua_pushstring(L, rl_line_buffer ? rl_line_buffer : "");
		lua_pushinteger(L, rl_point);
		if (vmlua_pcall_hook(L, 2, 1, "completion") != LUA_OK)
			return NULL;
		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			return NULL;
		}
		i = 0;
		n = (int)lua_rawlen(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, "vmlua.rl.candidates");
	}
	if (i < n) {
		lua_getfield(L, LUA_REGISTRYINDEX, "vmlua.rl.candidates");
		lua_rawgeti(L, -1, ++i);
		if (lua_isstring(L, -1))
			out = strdup(lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	return out;
}

static char **complete(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1;      /* no file names */
	rl_completion_append_character = '\0'; /* "vm.con" -> "vm.console", no space */
	return rl_completion_matches(text, candidate);
}

static int l_open(lua_State *L)
{
	const char *prompt = "> ", *hist = "";

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getfield(L, 1, "prompt") == LUA_TSTRING)
		prompt = lua_tostring(L, -1);
	if (lua_getfield(L, 1, "history") == LUA_TSTRING)
		hist = lua_tostring(L, -1);
	lua_getfield(L, 1, "complete");
	luaL_unref(L, LUA_REGISTRYINDEX, ed.complete_ref);
	ed.complete_ref = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : LUA_NOREF;
	if (ed.complete_ref == LUA_NOREF)
		lua_pop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	ed.L = lua_tothread(L, -1);
	lua_pop(L, 1);
	snprintf(ed.history, sizeof(ed.history), "%s", hist);
	snprintf(ed.prompt, sizeof(ed.prompt), "%s", prompt);
	rl_readline_name = "vmlua";
	rl_catch_signals = 0;                  /* vmlua's SIGINT handler stays */
	rl_attempted_completion_function = complete;
	rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{(+-*/%^~#,[]";
	using_history();
	if (ed.history[0])
		read_history(ed.history);      /* a missing file is fine */
	free(ed.line);
	ed.line = NULL;
	ed.eof = 0;
	ed.open = 1;
	ed.installed = 0;
	return 0;
}

static int l_prompt(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	vmlua_checknargs(L, 1);
	snprintf(ed.prompt, sizeof(ed.prompt), "%s", p);
	if (ed.installed)
		rl_set_prompt(ed.prompt);
	return 0;
}

/* Keep a line: in memory, and appended to the history file. */
static void remember(const char *line)
{
	FILE *f;
	if (!line[0])
		return;
	add_history(line);
	if (ed.history[0] && (f = fopen(ed.history, "a"))) {
		fclose(f);                     /* append_history needs the file */
		append_history(1, ed.history);
	}
}

static int l_poll(lua_State *L)
{
	double timeout = luaL_optnumber(L, 1, 0);
	struct pollfd pfd[2] = {
		{ STDIN_FILENO, POLLIN, 0 },
		{ vmlua_interrupt_fd(), POLLIN, 0 },
	};
	int rc;

	vmlua_checknargs(L, 1);
	if (!ed.open)
		return luaL_error(L, "readline.poll: the editor is not open");
	if (ed.eof) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (!ed.installed) {
		rl_callback_handler_install(ed.prompt, on_line);   /* shows the prompt */
		ed.installed = 1;
	}
	rc = poll(pfd, 2, (int)(timeout * 1000));
	if (rc < 0 && errno != EINTR)
		return luaL_error(L, "poll: %s", strerror(errno));
	if (rc > 0 && pfd[1].revents) {
		/* Ctrl-C at the prompt: drop the line, start afresh. */
		vmlua_interrupt_clear();
		lua_sethook(L, NULL, 0, 0);    /* the handler's pending error */
		rl_replace_line("", 0);
		rl_crlf();
		rl_on_new_line();
		rl_redisplay();
		return 0;
	}
	if (rc > 0 && pfd[0].revents)
		rl_callback_read_char();
	if (ed.eof) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (ed.line) {
		remember(ed.line);
		lua_pushstring(L, ed.line);
		free(ed.line);
		ed.line = NULL;
		return 1;
	}
	return 0;
}

static int l_print(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);

	vmlua_checknargs(L, 1);
	if (!ed.installed) {
		fwrite(s, 1, len, stdout);
		fflush(stdout);
		return 0;
	}
	/* Clear the prompt line, print, then draw prompt and line again. */
	rl_clear_visible_line();
	fwrite(s, 1, len, stdout);
	if (len && s[len - 1] != '\n')
		fputc('\n', stdout);
	fflush(stdout);
	rl_on_new_line();
	rl_redisplay();
	return 0;
}

static int l_close(lua_State *L)
{
	(void)L;
	if (ed.installed)
		rl_callback_handler_remove();
	ed.installed = 0;
	ed.open = 0;
	free(ed.line);
	ed.line = NULL;
	return 0;
}

int luaopen_vmlua_readline(lua_State *L);

static int l_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
	return 1;
}

int luaopen_vmlua_readline(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"open", l_open}, {"poll", l_poll}, {"print", l_print},
		{"prompt", l_prompt}, {"close", l_close}, {"isatty", l_isatty}, {NULL, NULL}
	};
	luaL_newlib(L, f);
	return 1;
}
