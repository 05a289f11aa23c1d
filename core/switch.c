/*
 * switch.c - an in-process L2 learning switch.
 *
 * Each net device of one vmlua process can be a port.  A frame coming in
 * on a port teaches the switch where its source address lives; it then
 * goes out of the port its destination was learned on, or out of every
 * other port when the destination is unknown, broadcast or multicast.
 * The table is small and forgets the least recently seen address first.
 * A frame shorter than an Ethernet header is dropped.  No root, no tap:
 * guests of one process reach each other through memory.
 */
#include <string.h>
#include "switch.h"

#define ETH_HLEN 14

void sw_init(struct sw *s)
{
	memset(s, 0, sizeof(*s));
}

int sw_attach(struct sw *s, struct sw_port *p)
{
	if (s->nports == SW_MAX_PORTS)
		return -1;
	s->ports[s->nports++] = p;
	p->sw = s;
	return 0;
}

void sw_detach(struct sw_port *p)
{
	struct sw *s = p->sw;
	unsigned i;

	if (!s)
		return;
	for (i = 0; i < s->nports; i++)
		if (s->ports[i] == p) {
			s->ports[i] = s->ports[--s->nports];
			break;
		}
	for (i = 0; i < SW_TABLE; i++)
		if (s->table[i].port == p)
			memset(&s->table[i], 0, sizeof(s->table[i]));
	p->sw = NULL;
}

static struct sw_entry *lookup(struct sw *s, const uint8_t *mac)
{
	unsigned i;
	for (i = 0; i < SW_TABLE; i++)
		if (s->table[i].port && !memcmp(s->table[i].mac, mac, 6))
			return &s->table[i];
	return NULL;
}

static void learn(struct sw *s, struct sw_port *p, const uint8_t *mac)
{
	struct sw_entry *e = lookup(s, mac);
	unsigned i;

	if (mac[0] & 1)
		return;                 /* a multicast source is a lie */
	if (!e) {
		e = &s->table[0];
		for (i = 0; i < SW_TABLE; i++) {
			if (!s->table[i].port) {
				e = &s->table[i];
				break;
			}
			if (s->table[i].used < e->used)
				e = &s->table[i];
		}
		memcpy(e->mac, mac, 6);
	}
	e->port = p;
	e->used = ++s->tick;
}

void sw_input(struct sw_port *from, const uint8_t *frame, size_t len)
{
	struct sw *s = from->sw;
	struct sw_entry *e;
	unsigned i;

	if (!s || len < ETH_HLEN || s->depth > 0) {
		/* Too short, or sent from inside a delivery (a hook that
		 * answers at once): dropped rather than recursing. */
		if (s)
			s->dropped++;
		return;
	}
	s->depth++;
	s->frames++;
	learn(s, from, frame + 6);
	e = (frame[0] & 1) ? NULL : lookup(s, frame);
	if (e) {
		if (e->port != from)
			e->port->deliver(e->port, frame, len);
	} else {
		s->flooded++;
		for (i = 0; i < s->nports; i++)
			if (s->ports[i] != from)
				s->ports[i]->deliver(s->ports[i], frame, len);
	}
	s->depth--;
}
