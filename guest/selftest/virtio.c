/*
 * virtio.c - the selftest guest's virtio-mmio driver.
 *
 * For each LNRO0005 device the DSDT declares, do what Linux's
 * virtio_mmio driver does, in miniature: check the window's magic and
 * version, reset, negotiate VERSION_1 and nothing else, set up queue 0
 * with 8 entries in our own memory, go DRIVER_OK, send one request,
 * wait (polling, interrupts stay off) for the used ring to move, check
 * the answer, acknowledge the interrupt and reset the device again.
 *
 * Requests: an rng (id 4) gets one 16-byte writable buffer; a block
 * device (id 2) a GET_ID: its 20-byte serial and the status byte; vmlua's
 * echo device (id 0xffff) gets "ping" and a writable buffer and must
 * answer "ping".  Other ids are only probed.
 */
#include "selftest.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC 0x080
#define R_QUEUE_DRIVER 0x090
#define R_QUEUE_DEVICE 0x0a0

#define QSIZE 8

struct desc { u64 addr; u32 len; u16 flags, next; };

static struct desc vq_desc[QSIZE] __attribute__((aligned(4096)));
static volatile u16 vq_avail[2 + QSIZE + 1] __attribute__((aligned(4096)));
static volatile u32 vq_used[1 + 2 * QSIZE + 1] __attribute__((aligned(4096)));
static u8 req[64], resp[64];

static u32 r32(u64 base, u64 off) { return *(volatile u32 *)(base + off); }
static void w32(u64 base, u64 off, u32 v) { *(volatile u32 *)(base + off) = v; }

static void w64(u64 base, u64 off, u64 v)
{
	w32(base, off, (u32)v);
	w32(base, off + 4, (u32)(v >> 32));
}

/* The Memory32Fixed base that follows "LNRO0005" in the DSDT at `at`. */
static u64 window_after(u64 dsdt, u32 at, u32 len)
{
	u32 i;
	for (i = at; i + 12 <= len && i < at + 64; i++)
		if (rd8(dsdt + i) == 0x86 && rd8(dsdt + i + 1) == 9 && rd8(dsdt + i + 2) == 0)
			return rd32(dsdt + i + 4);
	return 0;
}

/* selftest.vreq=N: N more requests on the same queue, the way a busy
 * driver sends them: post the chain again, notify, wait for the used
 * ring, then read and acknowledge the interrupt status as its interrupt
 * handler would.  Nothing is printed inside the loop, so a bench can
 * count what each request costs in exits. */
static int more_requests(u64 base, u64 n)
{
	volatile u16 *used_idx = (volatile u16 *)vq_used + 1;
	u16 idx = vq_avail[1];
	u64 k;
	u32 i;

	for (k = 0; k < n; k++) {
		vq_avail[2 + idx % QSIZE] = 0;     /* the same chain, head 0 */
		__asm__ volatile("" ::: "memory");
		vq_avail[1] = ++idx;
		w32(base, R_QUEUE_NOTIFY, 0);
		for (i = 0; i < 2000000 && *used_idx != idx; i++)
			;
		if (*used_idx != idx)
			return 0;
		w32(base, R_INTERRUPT_ACK, r32(base, R_INTERRUPT_STATUS));
	}
	return 1;
}

static void run_device(u64 base, u64 more)
{
	u32 id, status, got, i;

	if (r32(base, R_MAGIC) != 0x74726976 || r32(base, R_VERSION) != 2) {
		fail("virtio", "window 0x%llx: magic 0x%x version %u",
		     (unsigned long long)base, r32(base, R_MAGIC), r32(base, R_VERSION));
		return;
	}
	id = r32(base, R_DEVICE_ID);
	w32(base, R_STATUS, 0);
	w32(base, R_STATUS, 1);                    /* ACKNOWLEDGE */
	w32(base, R_STATUS, 3);                    /* DRIVER */
	w32(base, R_DEVICE_FEATURES_SEL, 1);
	if (!(r32(base, R_DEVICE_FEATURES) & 1)) { /* VERSION_1 is bit 32 */
		fail("virtio", "device %u at 0x%llx does not offer VERSION_1", id,
		     (unsigned long long)base);
		return;
	}
	w32(base, R_DRIVER_FEATURES_SEL, 0);
	w32(base, R_DRIVER_FEATURES, 0);
	w32(base, R_DRIVER_FEATURES_SEL, 1);
	w32(base, R_DRIVER_FEATURES, 1);
	w32(base, R_STATUS, 0x0b);                 /* FEATURES_OK */
	if (!(r32(base, R_STATUS) & 8)) {
		fail("virtio", "device %u refused FEATURES_OK", id);
		return;
	}
	w32(base, R_QUEUE_SEL, 0);
	if (r32(base, R_QUEUE_NUM_MAX) < QSIZE) {
		fail("virtio", "device %u: queue 0 smaller than %u", id, QSIZE);
		return;
	}
	memset(vq_desc, 0, sizeof(vq_desc));
	memset((void *)vq_avail, 0, sizeof(vq_avail));
	memset((void *)vq_used, 0, sizeof(vq_used));
	memset(resp, 0, sizeof(resp));
	w32(base, R_QUEUE_NUM, QSIZE);
	w64(base, R_QUEUE_DESC, (u64)vq_desc);
	w64(base, R_QUEUE_DRIVER, (u64)vq_avail);
	w64(base, R_QUEUE_DEVICE, (u64)vq_used);
	w32(base, R_QUEUE_READY, 1);
	w32(base, R_STATUS, 0x0f);                 /* DRIVER_OK */

	if (id == 0xffff) {
		memcpy(req, "ping", 4);
		vq_desc[0] = (struct desc){ (u64)req, 4, 1, 1 };
		vq_desc[1] = (struct desc){ (u64)resp, 16, 2, 0 };
	} else if (id == 2) {
		memset(req, 0, 16);
		req[0] = 8;                        /* VIRTIO_BLK_T_GET_ID */
		vq_desc[0] = (struct desc){ (u64)req, 16, 1, 1 };
		vq_desc[1] = (struct desc){ (u64)resp, 21, 2, 0 };
	} else {
		vq_desc[0] = (struct desc){ (u64)resp, 16, 2, 0 };
	}
	vq_avail[2] = 0;                           /* ring[0] = head 0 */
	__asm__ volatile("" ::: "memory");         /* x86: stores stay in order */
	vq_avail[1] = 1;                           /* idx */
	w32(base, R_QUEUE_NOTIFY, 0);

	/* Poll the used index: interrupts stay off in this guest. */
	for (i = 0; i < 2000000 && ((volatile u16 *)vq_used)[1] == 0; i++)
		;
	if (((volatile u16 *)vq_used)[1] != 1) {
		fail("virtio", "device %u at 0x%llx: no answer", id, (unsigned long long)base);
		w32(base, R_STATUS, 0);
		return;
	}
	got = vq_used[1];                          /* used ring[0]: id, len */
	if (got != 0 || vq_used[2] != (id == 0xffff ? 4u : id == 2 ? 21u : 16u)) {
		fail("virtio", "device %u: used id %u len %u", id, got, vq_used[2]);
	} else if (id == 0xffff && memcmp(resp, "ping", 4)) {
		fail("virtio", "echo answered \"%.4s\"", (const char *)resp);
	} else {
		say("selftest: virtio %u bytes:", vq_used[2]);
		for (i = 0; i < vq_used[2]; i++)
			say(" %x", resp[i]);
		say("\n");
		status = r32(base, R_INTERRUPT_STATUS);
		w32(base, R_INTERRUPT_ACK, status);
		ok("virtio-mmio device %u at 0x%llx (round trip, interrupt status %u)", id,
		   (unsigned long long)base, status);
		if (more && more_requests(base, more))
			ok("virtio-mmio device %u: %llu more requests", id, (unsigned long long)more);
		else if (more)
			fail("virtio", "device %u: no answer within %llu more requests", id,
			     (unsigned long long)more);
	}
	w32(base, R_STATUS, 0);                    /* leave it reset */
}

void check_virtio(u64 dsdt, u64 more)
{
	u32 len = rd32(dsdt + 4), i;
	for (i = 36; i + 8 <= len; i++)
		if (rd8(dsdt + i) == 'L' && !memcmp((const void *)(dsdt + i), "LNRO0005", 8)) {
			u64 base = window_after(dsdt, i + 8, len);
			if (base)
				run_device(base, more);
			else
				fail("virtio", "LNRO0005 at DSDT offset %u has no window", i);
		}
}
