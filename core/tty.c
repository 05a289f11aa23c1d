/*
 * tty.c - the terminal, borrowed while a guest console uses it.
 *
 * When a person types into a guest's console, each key must reach the
 * guest at once and unechoed: the guest's shell echoes it.  So we put the
 * terminal in raw mode while we forward stdin, and we put it back however
 * we leave: a normal return, a Lua error, lua_close, or exit().  ISIG
 * goes too, as in a terminal emulator: Ctrl-C, Ctrl-Z and Ctrl-\ are
 * bytes for the guest, whose shell interrupts its own foreground
 * command.  The way out is the escape Ctrl-A x (ttyesc.h); signals sent
 * with kill(1) still reach vmlua.  Like the signal, the terminal belongs
 * to the process, so its saved state is the process's too.
 */
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmlua.h"

static struct termios saved;
static int saved_fd = -1;
static int atexit_done;

static void tty_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved);
		saved_fd = -1;
	}
}

/* tty_raw(fd) -> true if fd is a terminal now in raw mode, else false */
static int l_tty_raw(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	struct termios t;

	vmlua_checknargs(L, 1);
	if (saved_fd >= 0 || !isatty(fd) || tcgetattr(fd, &saved) < 0) {
		lua_pushboolean(L, saved_fd == fd);
		return 1;
	}
	if (!atexit_done) {
		atexit(tty_restore);
		atexit_done = 1;
	}
	t = saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | IEXTEN | ISIG);
	t.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSAFLUSH, &t) < 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	saved_fd = fd;
	lua_pushboolean(L, 1);
	return 1;
}

static int l_tty_restore(lua_State *L)
{
	vmlua_checknargs(L, 0);
	tty_restore();
	return 0;
}

void vmlua_tty_register(lua_State *L)
{
	lua_pushcfunction(L, l_tty_raw);
	lua_setfield(L, -2, "tty_raw");
	lua_pushcfunction(L, l_tty_restore);
	lua_setfield(L, -2, "tty_restore");
}
