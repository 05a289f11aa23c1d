/*
 * ttyesc.h - the escape key of an interactive console, as QEMU's
 * -nographic and screen have one.
 *
 * While a person types into a guest's console, the terminal is raw and
 * sends every key to the guest, Ctrl-C included: the guest's shell, not
 * vmlua, decides what a Ctrl-C means.  The way out is then a key the
 * guest rarely needs, Ctrl-A, followed by a command:
 *
 *   Ctrl-A x        quit: vmlua stops the guest and exits
 *   Ctrl-A Ctrl-A   one Ctrl-A for the guest
 *   Ctrl-A other    both keys for the guest, as typed
 *
 * The filter runs where the bytes are forwarded (luml.c, lvm.c), in C,
 * and keeps its state between reads, so a Ctrl-A at the end of one read
 * pairs with the key at the start of the next.  One small function
 * that both bindings share.
 */
#ifndef VMLUA_TTYESC_H
#define VMLUA_TTYESC_H

#include <stddef.h>

#define TTYESC_KEY 0x01           /* Ctrl-A */
#define TTYESC_QUIT 'x'

struct ttyesc {
	int armed;                /* the last key was a Ctrl-A */
};

/*
 * Filter n bytes of keyboard input from in into out, which has room for
 * n + 1 bytes (a Ctrl-A held over from the last read may come out now).
 * Returns the bytes to forward.  On Ctrl-A x sets *quit and forwards
 * nothing typed after it.
 */
size_t ttyesc_filter(struct ttyesc *e, const char *in, size_t n, char *out, int *quit);

#endif
