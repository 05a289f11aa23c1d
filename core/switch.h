/*
 * switch.h - an in-process L2 learning switch.  See switch.c.
 */
#ifndef VMLUA_SWITCH_H
#define VMLUA_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#define SW_MAX_PORTS 64
#define SW_TABLE     256          /* learned MAC addresses */

struct sw_port {
	struct sw *sw;
	/* Called with each frame the switch sends out of this port. */
	void (*deliver)(struct sw_port *p, const uint8_t *frame, size_t len);
	void *opaque;
};

struct sw_entry {
	uint8_t mac[6];
	struct sw_port *port;
	uint64_t used;             /* a tick of the last time it was seen */
};

struct sw {
	struct sw_port *ports[SW_MAX_PORTS];
	unsigned nports;
	struct sw_entry table[SW_TABLE];
	uint64_t tick;
	uint64_t frames, flooded, dropped;
	int depth;                 /* deliveries in progress (no loops) */
};

void sw_init(struct sw *s);
/* 0, or -1 when the switch has no free port. */
int sw_attach(struct sw *s, struct sw_port *p);
void sw_detach(struct sw_port *p);
/* A frame that came in on port `from`: learn its source, send it on. */
void sw_input(struct sw_port *from, const uint8_t *frame, size_t len);

#endif
