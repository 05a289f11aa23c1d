/*
 * memory.c - the guest's "physical" memory.
 *
 * A guest believes it owns a machine whose RAM starts at address 0.  We
 * give it that illusion the way lguest's launcher did: we map a file into
 * our own address space and tell the hypervisor (or the vhost-user peer)
 * that this stretch of our memory is the guest's RAM.  The file is a
 * memfd, so nothing is written to disk, and it is sized with ftruncate,
 * so pages are only allocated when the guest first touches them: a 64 GiB
 * guest costs nothing until it uses its memory.
 *
 * The address space is a short, sorted list of regions.  Between them are
 * holes (on x86, the 32-bit hole where devices live).  Each region is
 * mapped between two PROT_NONE guard pages, so that a bug of ours that
 * runs off the end of a region faults at once instead of scribbling over
 * whatever happened to be mapped next.
 *
 * Every address the guest hands us passes through memory_translate(), the
 * one gate: it answers with a host pointer only when the whole range lies
 * inside one region, and it catches ranges that wrap around 2^64.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"
#include "x86.h"

#define PAGE 4096ULL

void memory_init(struct memory *m)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

/* Does [a, a+alen) overlap [b, b+blen)?  Both are known not to wrap. */
static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int memory_add_region(struct memory *m, uint64_t gpa, uint64_t size, int fd,
                      uint64_t fd_offset)
{
	struct memory_region *r;
	uint8_t *res;
	size_t len;
	unsigned i;

	if (size == 0 || gpa % PAGE || size % PAGE || fd_offset % PAGE)
		return -EINVAL;
	if (gpa + size < gpa || gpa + size - 1 < gpa)
		return -EINVAL;
	if (size > SIZE_MAX - 2 * PAGE)
		return -EINVAL;
	if (m->nregions == MEMORY_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < m->nregions; i++)
		if (overlaps(gpa, size, m->region[i].gpa, m->region[i].size))
			return -EINVAL;

	/* Reserve the region and its two guard pages, then map the file
	 * over the middle.  MAP_NORESERVE: the guest's memory is allocated
	 * when it is touched, not now. */
	len = size + 2 * PAGE;
	res = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	           -1, 0);
	if (res == MAP_FAILED)
		return -errno;
	if (mmap(res + PAGE, size, PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, (off_t)fd_offset)
	    == MAP_FAILED) {
		int e = errno;
		munmap(res, len);
		return -e;
	}

	/* Keep the list sorted by address. */
	for (i = m->nregions; i > 0 && m->region[i - 1].gpa > gpa; i--)
		m->region[i] = m->region[i - 1];
	r = &m->region[i];
	r->gpa = gpa;
	r->size = size;
	r->host = res + PAGE;
	r->fd = fd;
	r->fd_offset = fd_offset;
	r->reservation = res;
	r->reservation_len = len;
	m->nregions++;
	m->ram_size += size;
	return 0;
}

int memory_create_x86(struct memory *m, uint64_t size)
{
	uint64_t low, high;
	int fd, rc;

	memory_init(m);
	if (size < (1ULL << 20) || size % PAGE)
		return -EINVAL;
	/* Beyond 1 TiB something is wrong with the request, not with us. */
	if (size > (1ULL << 40))
		return -E2BIG;
	fd = memfd_create("vmlua-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	m->fd = fd;

	/* RAM up to the 32-bit hole, the rest above 4 GiB. */
	low = size < X86_HOLE_START ? size : X86_HOLE_START;
	high = size - low;
	rc = memory_add_region(m, 0, low, fd, 0);
	if (rc == 0 && high)
		rc = memory_add_region(m, X86_HOLE_END, high, fd, low);
	if (rc < 0)
		memory_destroy(m);
	return rc;
}

void memory_destroy(struct memory *m)
{
	unsigned i;

	for (i = 0; i < m->nregions; i++)
		munmap(m->region[i].reservation, m->region[i].reservation_len);
	m->nregions = 0;
	m->ram_size = 0;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->generation++;
}

const struct memory_region *memory_region_of(const struct memory *m,
                                             uint64_t gpa)
{
	unsigned i;

	for (i = 0; i < m->nregions; i++) {
		const struct memory_region *r = &m->region[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *memory_translate(const struct memory *m, uint64_t gpa, uint64_t len)
{
	unsigned i;

	/* A range that wraps past 2^64 is never valid. */
	if (gpa + len < gpa)
		return NULL;
	for (i = 0; i < m->nregions; i++) {
		const struct memory_region *r = &m->region[i];
		uint64_t off;

		if (gpa < r->gpa)
			continue;
		off = gpa - r->gpa;
		/* off <= size and len <= size - off: no addition can overflow. */
		if (off <= r->size && len <= r->size - off) {
			if (len == 0 && off == r->size && i + 1 < m->nregions &&
			    m->region[i + 1].gpa == gpa)
				continue;
			return r->host + off;
		}
	}
	return NULL;
}

/*
 * The SIGBUS guard (see memory.h).  One handler for the process,
 * installed once; the guard stack is per thread, so two VMs on two
 * threads never share one.  The handler only reads a thread-local
 * pointer and jumps: both are async-signal-safe.  SA_NODEFER keeps
 * SIGBUS unblocked after the jump, so sigsetjmp need not save the signal
 * mask (no system call per guarded access).
 */
static __thread struct memory_guard *guard_top;
static struct sigaction guard_old;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
	struct memory_guard *g = guard_top;

	if (g) {
		guard_top = g->prev;
		siglongjmp(g->env, 1);
	}
	/* Not ours: whoever handled SIGBUS before us, or the default
	 * (restored, so that the faulting access kills us on return). */
	if (guard_old.sa_flags & SA_SIGINFO) {
		if (guard_old.sa_sigaction)
			guard_old.sa_sigaction(sig, si, uc);
		return;
	}
	if (guard_old.sa_handler != SIG_DFL && guard_old.sa_handler != SIG_IGN) {
		guard_old.sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
}

static void guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &guard_old);
}

void memory_guard_init(void)
{
	pthread_once(&guard_once, guard_install);
}

void memory_guard_enter(struct memory_guard *g)
{
	g->prev = guard_top;
	guard_top = g;
}

void memory_guard_leave(struct memory_guard *g)
{
	guard_top = g->prev;
}

struct memory_guard *memory_guard_suspend(void)
{
	struct memory_guard *saved = guard_top;
	guard_top = NULL;
	return saved;
}

void memory_guard_resume(struct memory_guard *saved)
{
	guard_top = saved;
}

int memory_copy(void *dst, const void *src, size_t n)
{
	struct memory_guard g;

	if (sigsetjmp(g.env, 0))
		return -EFAULT;
	memory_guard_enter(&g);
	memcpy(dst, src, n);
	memory_guard_leave(&g);
	return 0;
}

int memory_set(void *dst, int byte, size_t n)
{
	struct memory_guard g;

	if (sigsetjmp(g.env, 0))
		return -EFAULT;
	memory_guard_enter(&g);
	memset(dst, byte, n);
	memory_guard_leave(&g);
	return 0;
}
