/*
 * calendar.h - one virtual clock for the uml guests of a Lua state.
 *
 * A guest started with time-travel=ext:SOCKET (UML_TIME_TRAVEL_SUPPORT)
 * keeps no time of its own: it asks a calendar to run at the time of
 * its next timer (REQUEST), says it has nothing to do (WAIT) and runs
 * again when told (RUN, with the time).  vmlua is that calendar.  Its
 * clock moves only when every guest waits and vmlua has no device work
 * left, and then straight to the earliest request: a guest's sleep
 * takes no wall time, and guests that talk over vmlua's devices see
 * each other's answers at the virtual time they were sent.
 *
 * A waiting guest runs only at the time it asked for (its kernel insists
 * on it).  Its vhost-user devices wake it sooner: their interrupts come
 * in-band (VHOST_USER_BACKEND_VRING_CALL), and the kernel's handler for
 * them asks the calendar for the present time (GET) and to run at it
 * (REQUEST).  Until a guest has asked, once for each interrupt sent to
 * it, the clock does not move (for a second of wall time at most: a
 * guest that never asks does not stop the others).  Should a RUN still
 * cross such a request, the guest takes it inside its request and goes
 * on waiting for one: the calendar sees that and runs it again.  Other input (its console, the
 * mconsole) is taken when it next runs: at its next timer.
 *
 * The protocol is UML's (include/uapi/linux/um_timetravel.h): 16-byte
 * messages { u32 op, u32 seq, u64 time } on a stream socket, each
 * answered by an ACK with the same seq.  A guest is as untrusted here
 * as on its devices: a malformed message or an unknown op ends its
 * connection (its kernel then panics), and nothing it sends moves the
 * clock backwards or past what another guest asked.
 */
#ifndef VMLUA_CALENDAR_H
#define VMLUA_CALENDAR_H

#include <stddef.h>
#include <stdint.h>
#include "loop.h"

#define CAL_NEVER UINT64_MAX
#define CAL_FOREVER ((uint64_t)INT64_MAX)   /* UML's S64_MAX: it has no timer */
#define CAL_MSG 16
#define CAL_MAX_FDS 64

enum cal_state { CAL_UNCONNECTED, CAL_RUNNING, CAL_WAITING, CAL_GONE };

struct cal_guest {
	int listen_fd;          /* until the guest connects, or -1 */
	int fd;                 /* its connection, or -1 */
	char path[256];         /* the listening socket, removed on connect */
	enum cal_state state;
	uint64_t request;       /* when it asked to run next, or CAL_NEVER */
	unsigned owed;          /* interrupts sent that it has not yet asked the time for */
	int64_t owed_since;     /* when the clock first waited on it (clock_ns), or 0 */
	uint32_t run_seq;       /* our last RUN, */
	int run_unacked;        /* until it acknowledges it */
	int missed_run;         /* that RUN crossed a request of its own: see calendar.c */
	int await_request;      /* it will ask for a time before it waits again */
	uint8_t in[CAL_MSG];
	size_t have;
	struct calendar *cal;
	struct cal_guest *next;
};

struct calendar {
	uint64_t now;           /* ns since the calendar began */
	uint64_t tod_base;      /* the wall clock then, ns since the epoch */
	uint32_t seq;
	struct cal_guest *head;
	struct loop_source src;
	/* What fds() handed the loop, entry by entry: whose, and which. */
	struct cal_guest *polled[CAL_MAX_FDS];
	int polled_n;
};

/* Start the calendar at time 0 and make it a source of loop l. */
void calendar_init(struct calendar *c, struct loop *l);
/*
 * Make g a guest of c: a listening socket at path (the guest connects
 * to it as time-travel=ext:path).  0, or -1 with the reason in err.
 */
int calendar_listen(struct calendar *c, struct cal_guest *g, const char *path,
                    char *err, size_t errlen);
/* Leave the calendar: close g's sockets.  The others go on. */
void calendar_leave(struct cal_guest *g);
/* An interrupt was sent to g (a vu_server's on_call): hold the clock
 * until g has asked for the time. */
void calendar_owe(void *g);

#endif
