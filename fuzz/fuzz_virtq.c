/*
 * fuzz_virtq.c - libFuzzer target for the split-ring walker.
 *
 * The input is a guest's view of the world: a small header choosing the
 * queue layout and features, then bytes that become guest memory (where
 * the rings and buffers live).  We set the queue up, pop every chain the
 * "driver" offers, touch each buffer the walker handed us (so ASan sees
 * any pointer it should not have), push it back, and ask whether an
 * interrupt is due - exactly what a device does.
 *
 *   make fuzz FUZZ_SECONDS=60
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"
#include "virtq.h"

#define RAM (64 * 1024)        /* two regions of 32 KiB with a hole */
#define HOLE 0x10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct memory mem;
static uint8_t *ram_lo, *ram_hi;

static void setup_memory(void)
{
	int fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, RAM) < 0)
		abort();
	memory_init(&mem);
	/* [0, 32K) and [96K, 128K): rings and buffers may straddle the hole. */
	if (memory_add_region(&mem, 0, RAM / 2, fd, 0) ||
	    memory_add_region(&mem, RAM / 2 + HOLE, RAM / 2, fd, RAM / 2))
		abort();
	ram_lo = memory_translate(&mem, 0, RAM / 2);
	ram_hi = memory_translate(&mem, RAM / 2 + HOLE, RAM / 2);
}

struct header {
	uint16_t size;         /* queue size, as the driver wrote it */
	uint8_t flags;         /* bit 0 EVENT_IDX, bit 1 INDIRECT */
	uint8_t base;          /* initial index (vhost-user SET_VRING_BASE) */
	uint32_t desc, avail, used;
	uint32_t written;      /* how much the device claims it wrote */
} __attribute__((packed));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct header h;
	struct virtq q;
	size_t rest;
	int rounds;

	if (!ram_lo)
		setup_memory();
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	rest = size - sizeof(h);
	memset(ram_lo, 0, RAM / 2);
	memset(ram_hi, 0, RAM / 2);
	memcpy(ram_lo, data, rest < RAM / 2 ? rest : RAM / 2);
	if (rest > RAM / 2)
		memcpy(ram_hi, data + RAM / 2, rest - RAM / 2 < RAM / 2 ? rest - RAM / 2 : RAM / 2);

	memset(&q, 0, sizeof(q));
	if (virtq_setup(&q, &mem, h.size, h.desc, h.avail, h.used,
	                (h.flags & 1 ? VIRTQ_F_EVENT_IDX : 0) |
	                (h.flags & 2 ? VIRTQ_F_INDIRECT : 0)) != 0)
		return 0;
	virtq_set_base(&q, h.base);
	for (rounds = 0; rounds < 2 * q.size + 2; rounds++) {
		struct virtq_chain c;
		volatile uint8_t sink = 0;
		unsigned i;
		int rc = virtq_pop(&q, &c);
		if (rc <= 0)
			break;
		for (i = 0; i < c.niov; i++) {
			uint8_t *p = c.iov[i].iov_base;
			size_t n = c.iov[i].iov_len;
			if (n) {
				sink ^= p[0];
				sink ^= p[n - 1];
				if (i >= c.nread)
					p[n - 1] = 0xa5;   /* the device writes */
			}
		}
		(void)sink;
		virtq_push(&q, c.head, h.written <= c.write_len ? h.written
		                                               : (uint32_t)c.write_len);
		virtq_needs_interrupt(&q);
		virtq_chain_release(&c);
	}
	virtq_release(&q);
	return 0;
}
