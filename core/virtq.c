/*
 * virtq.c - the split virtqueue, from the device's side.
 *
 * A virtqueue is three arrays in guest memory that the driver (the
 * guest) and the device (us) share.  The driver writes buffers into the
 * descriptor table, chains them with "next" indexes, and puts the index
 * of each chain's first descriptor into the available ring.  We take
 * chains from there, do the work, and put the head index and the number
 * of bytes we wrote into the used ring.
 *
 * Everything in those arrays is written by the guest, who may be wrong
 * or hostile, and may change them while we read.  So: each shared field
 * is read exactly once into a local before it is checked and used;
 * every rule below is checked in one place, never clamped to something
 * "safe"; and the first broken rule breaks the queue for good, with a
 * named reason, until the driver resets the device.  The host pointers
 * for the rings are computed once, at setup, after checking that each
 * ring lies wholly inside one RAM region.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "virtio.h"
#include "virtq.h"

static const char *const reason_names[VQ_REASON__COUNT] = {
	[VQ_OK] = "ok",
	[VQ_SIZE_NOT_POWER_OF_2] = "size_not_power_of_2",
	[VQ_SIZE_TOO_LARGE] = "size_too_large",
	[VQ_DESC_MISALIGNED] = "desc_misaligned",
	[VQ_AVAIL_MISALIGNED] = "avail_misaligned",
	[VQ_USED_MISALIGNED] = "used_misaligned",
	[VQ_RING_OUTSIDE_RAM] = "ring_outside_ram",
	[VQ_AVAIL_IDX_JUMP] = "avail_idx_jump",
	[VQ_HEAD_OUT_OF_RANGE] = "head_out_of_range",
	[VQ_NEXT_OUT_OF_RANGE] = "next_out_of_range",
	[VQ_CHAIN_TOO_LONG] = "chain_too_long",
	[VQ_INDIRECT_NOT_NEGOTIATED] = "indirect_not_negotiated",
	[VQ_INDIRECT_EMPTY] = "indirect_empty",
	[VQ_INDIRECT_BAD_SIZE] = "indirect_bad_size",
	[VQ_INDIRECT_NESTED] = "indirect_nested",
	[VQ_INDIRECT_WITH_NEXT] = "indirect_with_next",
	[VQ_BUFFER_OUTSIDE_RAM] = "buffer_outside_ram",
	[VQ_READABLE_AFTER_WRITABLE] = "readable_after_writable",
	[VQ_MEMORY_GONE] = "memory_gone",
};
_Static_assert(sizeof(reason_names) / sizeof(reason_names[0]) == VQ_REASON__COUNT,
               "one name per reason");

const char *virtq_reason_name(int reason)
{
	if (reason < 0)
		reason = -reason;
	return reason < VQ_REASON__COUNT && reason_names[reason]
	       ? reason_names[reason] : "unknown";
}

/* One descriptor, as laid out in guest memory (little-endian x86). */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct desc) == 16, "a descriptor is 16 bytes");

/* Loads and stores of shared ring fields: each happens once, as written. */
static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

int virtq_setup(struct virtq *q, struct memory *m, unsigned size,
                uint64_t desc, uint64_t avail, uint64_t used, unsigned flags)
{
	uint64_t extra = (flags & VIRTQ_F_EVENT_IDX) ? 2 : 0;
	void (*on_broken)(struct virtq *, int, void *) = q->on_broken;
	void *opaque = q->opaque;
	uint32_t epoch = q->epoch + 1;
	uint8_t *d, *a, *u;

	memset(q, 0, sizeof(*q));
	q->on_broken = on_broken;
	q->opaque = opaque;
	q->epoch = epoch;
	if (size == 0 || (size & (size - 1)))
		return VQ_SIZE_NOT_POWER_OF_2;
	if (size > VIRTQ_MAX_SIZE)
		return VQ_SIZE_TOO_LARGE;
	if (desc % 16)
		return VQ_DESC_MISALIGNED;
	if (avail % 2)
		return VQ_AVAIL_MISALIGNED;
	if (used % 4)
		return VQ_USED_MISALIGNED;
	/* Each ring, with the event word when negotiated, inside RAM. */
	d = memory_translate(m, desc, 16ULL * size);
	a = memory_translate(m, avail, 4 + 2ULL * size + extra);
	u = memory_translate(m, used, 4 + 8ULL * size + extra);
	if (!d || !a || !u)
		return VQ_RING_OUTSIDE_RAM;
	q->scratch = calloc(size, sizeof(*q->scratch));
	q->scratch_write = calloc(size, 1);
	if (!q->scratch || !q->scratch_write) {
		virtq_release(q);
		return -ENOMEM;
	}
	q->mem = m;
	q->mem_gen = m->generation;
	q->size = (uint16_t)size;
	q->desc_gpa = desc;
	q->avail_gpa = avail;
	q->used_gpa = used;
	q->desc = d;
	q->avail = a;
	q->used = u;
	q->flags = flags;
	return VQ_OK;
}

void virtq_release(struct virtq *q)
{
	free(q->scratch);
	free(q->scratch_write);
	q->scratch = NULL;
	q->scratch_write = NULL;
	q->desc = q->avail = q->used = NULL;
	q->epoch++;
}

void virtq_set_base(struct virtq *q, uint16_t base)
{
	q->last_avail = q->used_idx = q->signalled_used = base;
}

/* walk()'s "out of memory", apart from every reason. */
#define POP_NOMEM (-1000)

static int broke(struct virtq *q, int reason)
{
	q->broken = reason;
	if (q->on_broken)
		q->on_broken(q, reason, q->opaque);
	return -reason;
}

/*
 * Walk the chain starting at `head`.  The walk is bounded: a direct
 * chain may not be longer than the queue, an indirect one not longer
 * than its table, which is how a loop in the "next" links is caught.
 */
static int walk(struct virtq *q, uint16_t head, struct virtq_chain *c)
{
	const uint8_t *table = q->desc;
	uint32_t tsize = q->size, count = 0, idx = head;
	uint32_t limit = tsize;
	int indirect = 0, seen_write = 0;
	unsigned n = 0;

	c->read_len = c->write_len = 0;
	for (;;) {
		struct desc d;
		void *buf;

		/* Guest-written descriptor: copied once, then checked. */
		memcpy(&d, table + 16ULL * idx, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!(q->flags & VIRTQ_F_INDIRECT))
				return -(VQ_INDIRECT_NOT_NEGOTIATED);
			if (indirect)
				return -(VQ_INDIRECT_NESTED);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return -(VQ_INDIRECT_WITH_NEXT);
			if (d.len == 0)
				return -(VQ_INDIRECT_EMPTY);
			if (d.len % 16)
				return -(VQ_INDIRECT_BAD_SIZE);
			if (d.len / 16 > q->size)
				return -(VQ_CHAIN_TOO_LONG);
			table = memory_translate(q->mem, d.addr, d.len);
			if (!table)
				return -(VQ_BUFFER_OUTSIDE_RAM);
			tsize = limit = d.len / 16;
			indirect = 1;
			count = 0;
			idx = 0;
			continue;
		}
		if (++count > limit || n >= q->size)
			return -(VQ_CHAIN_TOO_LONG);
		buf = memory_translate(q->mem, d.addr, d.len);
		if (!buf)
			return -(VQ_BUFFER_OUTSIDE_RAM);
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			seen_write = 1;
			c->write_len += d.len;
		} else {
			if (seen_write)
				return -(VQ_READABLE_AFTER_WRITABLE);
			c->read_len += d.len;
		}
		q->scratch[n].iov_base = buf;
		q->scratch[n].iov_len = d.len;
		q->scratch_write[n] = seen_write;
		n++;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		idx = d.next;
		if (idx >= tsize)
			return -(VQ_NEXT_OUT_OF_RANGE);
	}
	c->iov = malloc((n ? n : 1) * sizeof(*c->iov));
	if (!c->iov)
		return POP_NOMEM;
	memcpy(c->iov, q->scratch, n * sizeof(*c->iov));
	c->niov = n;
	c->nread = 0;
	while (c->nread < n && !q->scratch_write[c->nread])
		c->nread++;
	c->head = head;
	return 1;
}

/* The body of virtq_pop, run under a SIGBUS guard: every access to the
 * rings is here.  1, 0, -reason, or POP_NOMEM; it breaks nothing itself. */
static int pop_guarded(struct virtq *q, struct virtq_chain *c)
{
	uint16_t avail_idx, pending, head;
	int rc;

	avail_idx = load16(q->avail + 2);
	/* Acquire: the ring entries the driver published before this idx
	 * must be read after it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending > q->size)
		return -(VQ_AVAIL_IDX_JUMP);
	if (pending == 0)
		return 0;
	head = load16(q->avail + 4 + 2 * (q->last_avail % q->size));
	if (head >= q->size)
		return -(VQ_HEAD_OUT_OF_RANGE);
	rc = walk(q, head, c);
	if (rc < 0)
		return rc;
	if (q->flags & VIRTQ_F_EVENT_IDX) {
		/* avail_event: kick us again once past what we have taken. */
		store16(q->used + 4 + 8 * q->size, (uint16_t)(q->last_avail + 1));
		/* The driver must see avail_event before it reads used->idx
		 * for its next decision to kick. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	q->last_avail++;
	q->pops++;
	return 1;
}

void virtq_break(struct virtq *q, int reason)
{
	if (!q->broken)
		broke(q, reason);
}

int virtq_live(const struct virtq *q)
{
	return q->desc && q->mem && q->mem->generation == q->mem_gen;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	struct memory_guard g;
	int rc;

	memset(c, 0, sizeof(*c));
	if (q->broken)
		return -q->broken;
	if (!virtq_live(q))
		return 0;         /* not set up, or its memory was unmapped */
	if (q->budgeted && (q->budget_chains == 0 || q->budget_bytes == 0)) {
		q->throttled = 1;
		return 0;
	}
	/* The frontend may truncate the file behind the rings at any time:
	 * a SIGBUS while we walk them breaks the queue, not the process. */
	if (sigsetjmp(g.env, 0)) {
		virtq_chain_release(c);
		return broke(q, VQ_MEMORY_GONE);
	}
	memory_guard_enter(&g);
	rc = pop_guarded(q, c);
	memory_guard_leave(&g);
	if (rc == POP_NOMEM)
		return -ENOMEM;
	if (rc < 0)
		return broke(q, -rc);
	if (rc > 0 && q->budgeted) {
		uint64_t len = c->read_len + c->write_len;
		q->budget_chains--;
		q->budget_bytes -= len < q->budget_bytes ? len : q->budget_bytes;
	}
	return rc;
}

void virtq_set_budget(struct virtq *q, uint32_t chains, uint64_t bytes)
{
	q->budgeted = 1;
	q->throttled = 0;
	q->budget_chains = chains;
	q->budget_bytes = bytes;
}

int virtq_end_budget(struct virtq *q)
{
	int was = q->throttled;
	q->budgeted = q->throttled = 0;
	return was;
}

static void push_guarded(struct virtq *q, uint16_t head, uint32_t written)
{
	uint8_t *elem;

	elem = q->used + 4 + 8 * (q->used_idx % q->size);
	memcpy(elem, &(uint32_t){ head }, 4);
	memcpy(elem + 4, &written, 4);
	/* Release: the element must be visible before the index that
	 * publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->used_idx++;
	store16(q->used + 2, q->used_idx);
	q->pushes++;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct memory_guard g;

	if (!virtq_live(q) || q->broken == VQ_MEMORY_GONE)
		return;         /* reset under us: nothing to give back to */
	if (sigsetjmp(g.env, 0)) {
		broke(q, VQ_MEMORY_GONE);
		return;
	}
	memory_guard_enter(&g);
	push_guarded(q, head, written);
	memory_guard_leave(&g);
}

static int needs_interrupt_guarded(struct virtq *q)
{
	uint16_t old, now, event;
	int need;

	/* Full barrier: our used->idx store must be ordered before we read
	 * the driver's flags or used_event, or we could miss a wakeup. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->signalled_valid && q->used_idx == q->signalled_used) {
		need = 0;         /* nothing new in the used ring */
	} else if (!(q->flags & VIRTQ_F_EVENT_IDX)) {
		need = !(load16(q->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
		q->signalled_used = q->used_idx;
		q->signalled_valid = 1;
	} else {
		event = load16(q->avail + 4 + 2 * q->size);
		old = q->signalled_used;
		now = q->used_idx;
		/* Interrupt if used_event lies in (old, now]: the driver asked
		 * to hear about this entry.  All arithmetic is modulo 2^16. */
		need = !q->signalled_valid ||
		       (uint16_t)(now - event - 1) < (uint16_t)(now - old);
		q->signalled_used = now;
		q->signalled_valid = 1;
	}
	if (need)
		q->interrupts++;
	else
		q->suppressed++;
	return need;
}

int virtq_needs_interrupt(struct virtq *q)
{
	struct memory_guard g;
	int need;

	if (!virtq_live(q))
		return 0;
	if (sigsetjmp(g.env, 0)) {
		broke(q, VQ_MEMORY_GONE);
		return 0;
	}
	memory_guard_enter(&g);
	need = needs_interrupt_guarded(q);
	memory_guard_leave(&g);
	return need;
}

void virtq_chain_release(struct virtq_chain *c)
{
	free(c->iov);
	c->iov = NULL;
	c->niov = c->nread = 0;
}
