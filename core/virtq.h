/*
 * virtq.h - a split virtqueue, seen from the device.  See virtq.c.
 * No Lua here: lvirtq.c binds it, C device backends use it directly.
 */
#ifndef VMLUA_VIRTQ_H
#define VMLUA_VIRTQ_H

#include <stdint.h>
#include <sys/uio.h>
#include "memory.h"

#define VIRTQ_DESC_F_NEXT      1
#define VIRTQ_DESC_F_WRITE     2
#define VIRTQ_DESC_F_INDIRECT  4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

#define VIRTQ_F_EVENT_IDX  1u   /* flags for virtq_setup */
#define VIRTQ_F_INDIRECT   2u

/* Why a queue broke: each a rule the driver must keep.  Stable names. */
enum virtq_reason {
	VQ_OK = 0,
	VQ_SIZE_NOT_POWER_OF_2,
	VQ_SIZE_TOO_LARGE,
	VQ_DESC_MISALIGNED,
	VQ_AVAIL_MISALIGNED,
	VQ_USED_MISALIGNED,
	VQ_RING_OUTSIDE_RAM,
	VQ_AVAIL_IDX_JUMP,
	VQ_HEAD_OUT_OF_RANGE,
	VQ_NEXT_OUT_OF_RANGE,
	VQ_CHAIN_TOO_LONG,
	VQ_INDIRECT_NOT_NEGOTIATED,
	VQ_INDIRECT_EMPTY,
	VQ_INDIRECT_BAD_SIZE,
	VQ_INDIRECT_NESTED,
	VQ_INDIRECT_WITH_NEXT,
	VQ_BUFFER_OUTSIDE_RAM,
	VQ_READABLE_AFTER_WRITABLE,
	VQ_MEMORY_GONE,             /* the rings' memory faulted (SIGBUS) */
	VQ_REASON__COUNT
};
const char *virtq_reason_name(int reason);

struct virtq {
	struct memory *mem;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint8_t *desc, *avail, *used;   /* host views, checked at setup */
	unsigned flags;
	uint16_t last_avail;            /* next avail entry to take */
	uint16_t used_idx;              /* our copy of used->idx */
	uint16_t signalled_used;        /* used_idx at the last interrupt */
	int signalled_valid;
	int broken;                     /* an enum virtq_reason, 0 if fine */
	struct iovec *scratch;          /* `size` entries for one walk */
	uint8_t *scratch_write;
	uint64_t pops, pushes, interrupts, suppressed;
	/* Told once, when the queue breaks (the device marks NEEDS_RESET). */
	void (*on_broken)(struct virtq *q, int reason, void *opaque);
	void *opaque;
	uint32_t epoch;    /* bumped by setup and release: old chains are stale */
	uint32_t mem_gen;  /* mem->generation at setup: rings gone if it moved */
	/* A transport's bound on one round of work (virtq_set_budget). */
	int budgeted, throttled;
	uint32_t budget_chains;
	uint64_t budget_bytes;
};

/* A popped chain: readable buffers first, then writable ones. */
struct virtq_chain {
	uint16_t head;
	unsigned niov, nread;           /* iov[0..nread) readable, rest writable */
	uint64_t read_len, write_len;
	struct iovec *iov;              /* owned: virtq_chain_release */
};

/* Validate and take the layout; 0 or a reason (the queue stays unset).
 * on_broken and opaque survive setup. */
int virtq_setup(struct virtq *q, struct memory *m, unsigned size,
                uint64_t desc, uint64_t avail, uint64_t used, unsigned flags);
void virtq_release(struct virtq *q);
/* Start both indexes at `base` (vhost-user SET_VRING_BASE, or a test). */
void virtq_set_base(struct virtq *q, uint16_t base);

/* 1 with *c filled, 0 when empty, or -reason (the queue is broken). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);
/* Return a chain to the driver with `written` bytes in its writable part. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);
/* Is an interrupt due for what was pushed since the last one? */
int virtq_needs_interrupt(struct virtq *q);
void virtq_chain_release(struct virtq_chain *c);

/*
 * Fairness: until virtq_end_budget(), virtq_pop() hands out at most
 * `chains` chains and stops once their buffers add up to `bytes`,
 * answering "empty" after that.  virtq_end_budget() lifts the bound and
 * says whether it was reached (chains may be waiting: serve the queue
 * again on a later round).
 */
void virtq_set_budget(struct virtq *q, uint32_t chains, uint64_t bytes);
int virtq_end_budget(struct virtq *q);
/* Break the queue for a reason found outside the ring walk (a chain's
 * buffer faulted: VQ_MEMORY_GONE); the first reason stays. */
void virtq_break(struct virtq *q, int reason);
/* Do the rings still lie in mapped memory (set up, memory unchanged)? */
int virtq_live(const struct virtq *q);

#endif
