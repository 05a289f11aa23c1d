/*
 * fuzz_loader.c - libFuzzer target for the kernel loader.
 *
 * The input is a kernel file and a few facts about the machine it is
 * loaded into.  A 16-byte header picks the guest memory layout, whether
 * an initrd follows (and how big it is: its bytes are zeros, only its
 * size matters to the loader), whether boot_params are set up, how long
 * the command line is and where the RSDP is; everything after the header
 * is the kernel file, a bzImage or an ELF64 vmlinux or neither.  The
 * loader takes paths, so the kernel and the initrd are memfds reached as
 * /proc/self/fd/N.
 *
 * Besides what ASan and UBSan catch, the harness holds the loader to its
 * promises whenever it says yes: the kernel lies wholly in RAM between
 * 1 MiB and 4 GiB with its entry point inside it; the initrd is
 * page-aligned RAM above the kernel and below initrd_addr_max; the e820
 * map in boot_params is sorted, does not overlap and names only RAM the
 * memory has.  And when it says no, it says why, naming the file.
 *
 *   make fuzz FUZZ_SECONDS=60
 *   FUZZ_VERBOSE=1 build/fuzz_loader fuzz/corpus/loader/SEED
 *                               (what each input did, for seed writers)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loader.h"
#include "memory.h"
#include "x86.h"

#define MiB (1024ULL * 1024)
#define LAYOUTS 4
#define INITRD_MAX (16 * MiB)    /* keep each run quick */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct header {
	uint8_t layout;        /* guest memory, see make_layout() */
	uint8_t flags;         /* bit 0: an initrd; bit 1: boot_params;
	                          bits 2..4: room for this many e820 entries */
	uint16_t cmdline_len;  /* a command line of this many 'x' */
	uint32_t initrd_size;  /* bytes, modulo INITRD_MAX + 1 */
	uint64_t rsdp;
} __attribute__((packed));

static struct memory layouts[LAYOUTS];
static int kernel_fd = -1, initrd_fd = -1;
static char kernel_path[64], initrd_path[64];
static char *cmdline;
static int verbose;

static void die(const char *what)
{
	perror(what);
	abort();
}

/*
 * The machines the kernel meets: the usual x86 layout at 32 MiB (room
 * for a kernel at 16 MiB) and at 2 MiB (none); one with nothing below
 * 1 MiB (so no room for boot_params) and a region that straddles the
 * 4 GiB line; and one whose RAM comes in adjacent pieces (e820 merges
 * them) with a region near the top of the address space, where sums
 * wrap.
 */
static void make_layout(struct memory *m, unsigned which)
{
	int fd;

	memory_init(m);
	if (which == 0 && memory_create_x86(m, 32 * MiB) == 0)
		return;
	if (which == 1 && memory_create_x86(m, 2 * MiB) == 0)
		return;
	fd = memfd_create("fuzz-loader-ram", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 32 * MiB) < 0)
		die("memfd");
	if (which == 2) {
		if (memory_add_region(m, MiB, 2 * MiB, fd, 0) ||
		    memory_add_region(m, X86_HOLE_END - MiB, 2 * MiB, fd, 4 * MiB))
			abort();
	} else {
		if (memory_add_region(m, 0, MiB, fd, 0) ||
		    memory_add_region(m, MiB, 23 * MiB, fd, MiB) ||
		    memory_add_region(m, X86_HOLE_END, MiB, fd, 24 * MiB) ||
		    memory_add_region(m, UINT64_MAX - 2 * MiB + 1, MiB, fd, 26 * MiB))
			abort();
	}
	/* The mappings keep the file. */
	close(fd);
}

static void setup(void)
{
	unsigned i;

	for (i = 0; i < LAYOUTS; i++)
		make_layout(&layouts[i], i);
	kernel_fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
	initrd_fd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
	if (kernel_fd < 0 || initrd_fd < 0)
		die("memfd");
	snprintf(kernel_path, sizeof(kernel_path), "/proc/self/fd/%d", kernel_fd);
	snprintf(initrd_path, sizeof(initrd_path), "/proc/self/fd/%d", initrd_fd);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	cmdline = malloc(UINT16_MAX + 1);
	if (!cmdline)
		abort();
}

static void broken(const char *promise, const struct kernel_info *ki)
{
	fprintf(stderr, "loader broke a promise: %s\n"
	        "  format %d entry 0x%llx load [0x%llx, 0x%llx) initrd 0x%llx+0x%llx "
	        "max 0x%llx\n", promise, (int)ki->format,
	        (unsigned long long)ki->entry64, (unsigned long long)ki->load_start,
	        (unsigned long long)ki->load_end, (unsigned long long)ki->initrd_addr,
	        (unsigned long long)ki->initrd_size, (unsigned long long)ki->initrd_addr_max);
	abort();
}

/* A refusal names the file and says something. */
static void check_refusal(const char *err, const char *path)
{
	size_t n = strlen(path);

	if (verbose)
		fprintf(stderr, "refused: %s\n", err);
	if (strncmp(err, path, n) != 0 || strncmp(err + n, ": ", 2) != 0 || !err[n + 2]) {
		fprintf(stderr, "a refusal without a reason: \"%s\"\n", err);
		abort();
	}
}

static void check_kernel(const struct memory *m, const struct kernel_info *ki)
{
	if (ki->load_start < X86_HIMEM_START || ki->load_end > X86_HOLE_END ||
	    ki->load_start >= ki->load_end)
		broken("the kernel lies between 1 MiB and 4 GiB", ki);
	if (!memory_translate(m, ki->load_start, ki->load_end - ki->load_start))
		broken("the kernel lies in RAM", ki);
	if (ki->entry64 < ki->load_start || ki->entry64 >= ki->load_end)
		broken("the entry point lies inside the kernel", ki);
	if (ki->setup_header_len > sizeof(ki->setup_header))
		broken("the setup header fits", ki);
}

static void check_initrd(const struct memory *m, const struct kernel_info *ki)
{
	if (ki->initrd_addr % 4096 || ki->initrd_addr < ki->load_end ||
	    ki->initrd_addr < X86_HIMEM_START)
		broken("the initrd is page-aligned, above the kernel", ki);
	if (ki->initrd_addr + ki->initrd_size > X86_HOLE_END ||
	    (ki->initrd_addr_max && ki->initrd_addr + ki->initrd_size > ki->initrd_addr_max))
		broken("the initrd ends below initrd_addr_max and 4 GiB", ki);
	if (!memory_translate(m, ki->initrd_addr, ki->initrd_size))
		broken("the initrd lies in RAM", ki);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Is [addr, addr+len) RAM, in one region or in several that touch? */
static int all_ram(const struct memory *m, uint64_t addr, uint64_t len)
{
	while (len) {
		const struct memory_region *r = memory_region_of(m, addr);
		uint64_t in;
		if (!r)
			return 0;
		in = r->gpa + r->size - addr;
		if (in >= len)
			return 1;
		addr += in;
		len -= in;
	}
	return 1;
}

/* boot_params' e820 map: sorted, disjoint, and only where there is RAM. */
static void check_boot_params(const struct memory *m, const struct kernel_info *ki)
{
	const uint8_t *bp = memory_translate(m, X86_BOOT_PARAMS, 4096);
	uint64_t last_end = 0;
	unsigned i, n;

	if (!bp)
		broken("boot_params lie in RAM", ki);
	n = bp[0x1e8];
	if (n > 128)
		broken("at most 128 e820 entries", ki);
	for (i = 0; i < n; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;
		uint64_t addr = get64(e), len = get64(e + 8);
		if (len == 0 || addr + len < addr || addr < last_end)
			broken("e820 entries are sorted and disjoint", ki);
		if (!all_ram(m, addr, len))
			broken("e820 names only RAM", ki);
		last_end = addr + len;
	}
}

/* loader_e820 with little room: it stops at max, and what it gives is
 * still sorted RAM. */
static void check_e820_room(const struct memory *m, unsigned max)
{
	struct e820_entry map[8];
	uint64_t last_end = 0;
	unsigned i, n = loader_e820(m, map, max);

	if (n > max) {
		fprintf(stderr, "loader_e820 wrote %u entries into room for %u\n", n, max);
		abort();
	}
	for (i = 0; i < n; i++) {
		if (map[i].size == 0 || map[i].addr < last_end ||
		    !all_ram(m, map[i].addr, map[i].size)) {
			fprintf(stderr, "loader_e820 entry %u of %u is wrong\n", i, n);
			abort();
		}
		last_end = map[i].addr + map[i].size;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct header h;
	struct kernel_info ki;
	struct memory *m;
	char err[LOADER_ERR_MAX];

	if (kernel_fd < 0)
		setup();
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);
	m = &layouts[h.layout % LAYOUTS];
	check_e820_room(m, (h.flags >> 2) & 7);

	if (ftruncate(kernel_fd, 0) < 0 ||
	    (size && pwrite(kernel_fd, data, size, 0) != (ssize_t)size))
		die("kernel memfd");
	memset(&ki, 0, sizeof(ki));
	err[0] = 0;
	if (loader_load_kernel(m, kernel_path, &ki, err, sizeof(err)) < 0) {
		check_refusal(err, kernel_path);
		return 0;
	}
	check_kernel(m, &ki);
	if (verbose)
		fprintf(stderr, "kernel: format %d, [0x%llx, 0x%llx), entry 0x%llx, pvh 0x%llx\n",
		        (int)ki.format, (unsigned long long)ki.load_start,
		        (unsigned long long)ki.load_end, (unsigned long long)ki.entry64,
		        (unsigned long long)ki.pvh_entry);

	if (h.flags & 1) {
		if (ftruncate(initrd_fd, 0) < 0 ||
		    ftruncate(initrd_fd, (off_t)(h.initrd_size % (INITRD_MAX + 1))) < 0)
			die("initrd memfd");
		err[0] = 0;
		if (loader_load_initrd(m, initrd_path, &ki, err, sizeof(err)) < 0)
			check_refusal(err, initrd_path);
		else {
			check_initrd(m, &ki);
			if (verbose)
				fprintf(stderr, "initrd: 0x%llx + 0x%llx\n",
				        (unsigned long long)ki.initrd_addr,
				        (unsigned long long)ki.initrd_size);
		}
	}
	if (h.flags & 2) {
		memset(cmdline, 'x', h.cmdline_len);
		cmdline[h.cmdline_len] = 0;
		err[0] = 0;
		if (loader_setup_boot_params(m, &ki, cmdline, h.rsdp, err, sizeof(err)) < 0)
			check_refusal(err, kernel_path);
		else {
			check_boot_params(m, &ki);
			if (verbose)
				fprintf(stderr, "boot_params: %u e820 entries\n",
				        ((uint8_t *)memory_translate(m, X86_BOOT_PARAMS, 4096))[0x1e8]);
		}
	}
	return 0;
}
