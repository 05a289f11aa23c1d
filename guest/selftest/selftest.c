/*
 * selftest.c - a guest that checks the machine vmlua built for it.
 *
 * A kernel learns about its machine from a few places: the registers it
 * is entered with, boot_params (the "zero page") with its e820 memory
 * map and command line, and the ACPI tables.  This guest reads each of
 * them the way Linux would, checks what it finds against what vmlua
 * promises (docs/platform.md) and against what the command line says was
 * asked for, reports every finding on the serial port, and switches the
 * machine off the way Linux does: through the FADT's sleep control
 * register, with the SLP_TYP value the DSDT's \_S5 object gives.
 *
 * On our machines guest kernel code is run by KVM's instruction emulator,
 * one instruction at a time (~0.6 us each), and each port access is a VM
 * exit (~8 us).  So the guest is small, prints little, never polls, and
 * uses only plain integer instructions: the Makefile builds it without
 * SSE/x87 and audit.sh rejects an image that contains anything else.
 *
 * Command line:  selftest.cpus=N selftest.mem=BYTES  (decimal or 0x hex)
 * Output: one line per finding,
 *      selftest: ok <what> (<detail>)
 *      selftest: FAIL <what>: <detail>
 * a few information lines (selftest: e820 ..., selftest: acpi ...), and
 * last "selftest: PASS" or "selftest: FAIL (N checks failed)".
 * README.md has the whole contract.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "selftest.h"

static u64 rd64(u64 a) { return *(const volatile u64u *)a; }

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* The platform, as docs/platform.md and core/x86.h describe it. */
#define HOLE_START  0xc0000000ULL   /* the 32-bit hole: no RAM in it */
#define HOLE_END    0x100000000ULL  /* where RAM above 3 GiB continues */
#define LOW_MEM_END 0x100000ULL     /* boot_params and the command line live below */

/* boot_params (Linux Documentation/arch/x86/zero-page.rst). */
#define BP_ACPI_RSDP_ADDR    0x070  /* u64 */
#define BP_EXT_CMD_LINE_PTR  0x0c8  /* u32, bits 32..63 of the command line */
#define BP_E820_ENTRIES      0x1e8  /* u8 */
#define BP_CMD_LINE_PTR      0x228  /* u32 */
#define BP_E820_TABLE        0x2d0  /* 128 entries of 20 bytes */
#define E820_MAX             128

#define E820_RAM  1
#define E820_ACPI 3

/* FADT (ACPI 6.5 table 5.9) and Generic Address Structure offsets. */
#define FADT_DSDT          40
#define FADT_FLAGS         112
#define FADT_RESET_REG     116
#define FADT_RESET_VALUE   128
#define FADT_X_DSDT        140
#define FADT_SLEEP_CONTROL 244
#define FADT_SLEEP_STATUS  256
#define FADT_MIN_LEN       268      /* revision 5+: has the sleep registers */
#define FADT_RESET_REG_SUP   (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)
#define GAS_SPACE   0               /* u8: 1 = System I/O */
#define GAS_WIDTH   1               /* u8: register width in bits */
#define GAS_ADDRESS 4               /* u64 */
#define GAS_SYSTEM_IO 1

#define SLP_EN 0x20

extern char _image_start[], _image_end[];

/* ---- port I/O and CPU ------------------------------------------------ */

static void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static u64 read_cr3(void)
{
	u64 v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

/* Loading CR3 also flushes the TLB of every non-global translation. */
static void write_cr3(u64 v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

/* This CPU's initial APIC id: CPUID leaf 1, EBX bits 24..31. */
static u32 my_apic_id(void)
{
	u32 a = 1, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return b >> 24;
}

/* ---- entry state ----------------------------------------------------- */

/* What start.S saw when vmlua handed over: interrupts must be off, and
 * boot_params must sit in low memory, page-aligned, as a bootloader puts
 * it (vmlua: 0x7000). */
static void check_entry(u64 bp, u64 rflags)
{
	u64 cr3 = read_cr3();
	unsigned bad = 0;

	if (rflags & (1u << 9)) {
		fail("entry", "interrupts enabled (RFLAGS 0x%llx)",
		     (unsigned long long)rflags);
		bad++;
	}
	if (bp == 0 || bp >= LOW_MEM_END || (bp & 0xfff)) {
		fail("entry", "boot_params at 0x%llx, expected a page below 1 MiB",
		     (unsigned long long)bp);
		bad++;
	}
	if (!bad)
		ok("entry (64-bit, interrupts off, boot_params 0x%llx, CR3 0x%llx)",
		   (unsigned long long)bp, (unsigned long long)cr3);
}

/* ---- command line ---------------------------------------------------- */

/* A number in decimal or 0x hex, ending the word. */
static int parse_u64(const char *s, u64 *out)
{
	u64 v = 0;
	unsigned base = 10;
	int any = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v > (~0ULL - d) / base)
			return 0;       /* overflow */
		v = v * base + d;
		any = 1;
	}
	if (!any || (*s && *s != ' ' && *s != '\t' && *s != '\n'))
		return 0;
	*out = v;
	return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* The value of the word "key=VALUE" in the command line: 1 found and
 * valid, 0 absent, -1 present but not a number. */
static int cmdline_u64(const char *cmd, const char *key, u64 *out)
{
	size_t klen = slen(key);
	const char *p;

	for (p = cmd; *p; p++) {
		/* memcmp stops at the first difference, so it never reads
		 * past the command line's terminating NUL. */
		if ((p == cmd || is_space(p[-1])) && !memcmp(p, key, klen))
			return parse_u64(p + klen, out) ? 1 : -1;
	}
	return 0;
}

struct expect {
	u64 cpus;       /* 0: not given */
	u64 mem;        /* 0: not given */
	u64 vreq;       /* selftest.vreq=N: N more requests per device (bench) */
};

static void check_cmdline(u64 bp, struct expect *ex)
{
	u64 addr = rd32(bp + BP_CMD_LINE_PTR) | (u64)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32;
	const char *cmd = "";
	int rc_cpus, rc_mem;
	size_t i;

	ex->cpus = ex->mem = ex->vreq = 0;
	if (addr == 0 || addr >= HOLE_START) {
		fail("cmdline", "cmd_line_ptr is 0x%llx", (unsigned long long)addr);
		return;
	}
	cmd = (const char *)addr;
	say("selftest: cmdline \"");
	for (i = 0; cmd[i] && i < 200; i++)
		putch(cmd[i] >= ' ' && cmd[i] < 127 ? cmd[i] : '?');
	say("%s\"\n", cmd[i] ? "..." : "");

	rc_cpus = cmdline_u64(cmd, "selftest.cpus=", &ex->cpus);
	rc_mem = cmdline_u64(cmd, "selftest.mem=", &ex->mem);
	if (cmdline_u64(cmd, "selftest.vreq=", &ex->vreq) < 0)
		fail("cmdline", "selftest.vreq= is not a number");
	if (rc_cpus != 1 || rc_mem != 1 || ex->cpus == 0 || ex->mem == 0) {
		fail("cmdline", "needs selftest.cpus=N and selftest.mem=BYTES (N, BYTES > 0);"
		     " the checks that need them are skipped");
		if (rc_cpus != 1)
			ex->cpus = 0;
		if (rc_mem != 1)
			ex->mem = 0;
		return;
	}
	ok("cmdline (selftest.cpus=%llu selftest.mem=%llu)",
	   (unsigned long long)ex->cpus, (unsigned long long)ex->mem);
}

/* ---- e820 ------------------------------------------------------------ */

static u64 e820_base;           /* gpa of the table in boot_params */
static unsigned e820_n;

static u64 e820_addr(unsigned i) { return rd64(e820_base + 20 * i); }
static u64 e820_size(unsigned i) { return rd64(e820_base + 20 * i + 8); }
static u32 e820_type(unsigned i) { return rd32(e820_base + 20 * i + 16); }

/* The type of the e820 entry that holds all of [a, a+len), 0 if none. */
static u32 e820_type_of(u64 a, u64 len)
{
	unsigned i;
	for (i = 0; i < e820_n; i++) {
		u64 s = e820_addr(i), e = s + e820_size(i);
		if (a >= s && a + len <= e && a + len >= a)
			return e820_type(i);
	}
	return 0;
}

/*
 * The map as a kernel would read it: entries sorted and apart, no RAM
 * in the 32-bit hole, RAM adding up to what was asked for (the EBDA,
 * 0x9fc00..0xa0000, is reserved and 0xa0000..0x100000 is not RAM, so up
 * to 1 MiB may be missing), RAM at 4 GiB when there is more than 3 GiB,
 * and this image and boot_params in RAM.
 */
static void check_e820(u64 bp, const struct expect *ex)
{
	u64 ram = 0, prev_end = 0;
	unsigned i, bad = 0, high = 0;

	e820_base = bp + BP_E820_TABLE;
	e820_n = rd8(bp + BP_E820_ENTRIES);
	if (e820_n == 0 || e820_n > E820_MAX) {
		fail("e820", "%u entries", e820_n);
		e820_n = 0;
		return;
	}
	for (i = 0; i < e820_n; i++) {
		u64 a = e820_addr(i), n = e820_size(i), end = a + n;
		u32 t = e820_type(i);

		say("selftest: e820 0x%llx 0x%llx type %u\n",
		    (unsigned long long)a, (unsigned long long)n, t);
		if (n == 0 || end < a) {
			fail("e820", "entry %u at 0x%llx has size 0x%llx", i,
			     (unsigned long long)a, (unsigned long long)n);
			bad++;
			continue;
		}
		if (i && a < prev_end) {
			fail("e820", "entry %u at 0x%llx overlaps or precedes the one before"
			     " (which ends at 0x%llx)", i, (unsigned long long)a,
			     (unsigned long long)prev_end);
			bad++;
		}
		prev_end = end;
		if (t != E820_RAM)
			continue;
		ram += n;
		if (a < HOLE_END && end > HOLE_START) {
			fail("e820", "RAM 0x%llx..0x%llx in the 32-bit hole",
			     (unsigned long long)a, (unsigned long long)end);
			bad++;
		}
		if (a == HOLE_END)
			high = 1;
	}
	if (ex->mem && (ram > ex->mem || ram + MiB < ex->mem)) {
		fail("e820", "RAM adds up to 0x%llx bytes, selftest.mem is 0x%llx",
		     (unsigned long long)ram, (unsigned long long)ex->mem);
		bad++;
	}
	if (ex->mem > 3 * GiB && !high) {
		fail("e820", "no RAM entry at 4 GiB for a guest of 0x%llx bytes",
		     (unsigned long long)ex->mem);
		bad++;
	}
	if (e820_type_of((u64)_image_start, (u64)(_image_end - _image_start)) != E820_RAM) {
		fail("e820", "this image (0x%llx..0x%llx) is not in RAM",
		     (unsigned long long)(u64)_image_start, (unsigned long long)(u64)_image_end);
		bad++;
	}
	if (e820_type_of(bp, 4 * KiB) != E820_RAM) {
		fail("e820", "boot_params (0x%llx) is not in RAM", (unsigned long long)bp);
		bad++;
	}
	if (!bad)
		ok("e820 (%u entries, sorted, apart, no RAM in the hole, %llu MiB of RAM)",
		   e820_n, (unsigned long long)(ram / MiB));
}

/* ---- RAM -------------------------------------------------------------- */

/*
 * vmlua's boot page tables map the first 4 GiB.  RAM above that we reach
 * through page tables of our own: the same identity map of the first
 * 4 GiB (2 MiB pages), plus a 2 MiB window at WINDOW_VA (PML4 slot 1)
 * that we point at whichever 2 MiB of physical memory we want to touch.
 * start.S zeroed these tables with the rest of .bss.
 */
#define PTE_P   0x1ULL
#define PTE_RW  0x2ULL
#define PTE_PS  0x80ULL         /* 2 MiB page, in a PDE */
#define WINDOW_VA 0x8000000000ULL  /* 512 GiB */
#define PAGE_2M (2 * MiB)

static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt[512] __attribute__((aligned(4096)));
static u64 pd[4][512] __attribute__((aligned(4096)));
static u64 win_pdpt[512] __attribute__((aligned(4096)));
static u64 win_pd[512] __attribute__((aligned(4096)));
static int own_tables;

static void load_own_tables(void)
{
	unsigned i, j;

	if (own_tables)
		return;
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 512; j++)
			pd[i][j] = ((u64)i * GiB + (u64)j * PAGE_2M) | PTE_PS | PTE_RW | PTE_P;
		pdpt[i] = (u64)pd[i] | PTE_RW | PTE_P;
	}
	pml4[0] = (u64)pdpt | PTE_RW | PTE_P;
	win_pdpt[0] = (u64)win_pd | PTE_RW | PTE_P;
	pml4[1] = (u64)win_pdpt | PTE_RW | PTE_P;
	write_cr3((u64)pml4);
	own_tables = 1;
}

/* A pointer through which the word at physical `a` can be touched. */
static volatile u64 *map_word(u64 a)
{
	if (a + 8 <= HOLE_END)
		return (volatile u64 *)a;       /* identity-mapped */
	load_own_tables();
	if (win_pd[0] != ((a & ~(PAGE_2M - 1)) | PTE_PS | PTE_RW | PTE_P)) {
		win_pd[0] = (a & ~(PAGE_2M - 1)) | PTE_PS | PTE_RW | PTE_P;
		write_cr3((u64)pml4);           /* forget the old window */
	}
	return (volatile u64 *)(WINDOW_VA + (a & (PAGE_2M - 1)));
}

/* vmlua's boot page tables (the CR3 we were entered with, and the PDPT
 * and four page directories that follow it) and boot_params: set by
 * selftest_main before check_ram. */
static u64 boot_cr3, boot_bp;
#define BOOT_TABLES_SIZE (6 * 4 * KiB)

/* Words we must not disturb even for a moment: the first page, the page
 * tables we run on (writing a pattern into a live page-table entry could
 * send a page walk astray), boot_params, and this image (code, data,
 * stack and the page tables above). */
static int keep_out(u64 a)
{
	return a < 4 * KiB ||
	       (a + 8 > boot_cr3 && a < boot_cr3 + BOOT_TABLES_SIZE) ||
	       (a + 8 > boot_bp && a < boot_bp + 4 * KiB) ||
	       (a + 8 > (u64)_image_start && a < (u64)_image_end);
}

/* Write a pattern into the word at `a`, read it back, put the old value
 * back.  Returns 1 if the pattern held; else 0 with what came back. */
static int touch(u64 a, u64 *got, u64 *want)
{
	volatile u64 *p = map_word(a);
	u64 old = *p, pattern = 0x5a17e57c0ffee000ULL ^ a;

	*p = pattern;
	*got = *p;
	*want = pattern;
	*p = old;
	return *got == pattern;
}

/*
 * Every RAM range must be RAM: its first and last words keep what we
 * write.  The ones below 4 GiB we reach through vmlua's own page tables,
 * so this also checks that those map all of low RAM.
 */
static void check_ram(void)
{
	unsigned i, ranges = 0, bad = 0;

	for (i = 0; i < e820_n; i++) {
		u64 start = e820_addr(i), end = start + e820_size(i);
		u64 first = (start + 7) & ~7ULL, last = (end - 8) & ~7ULL;
		u64 probe[2], got, want;
		int k, tried;

		if (e820_type(i) != E820_RAM || end < start || end - start < 16)
			continue;
		/* Step past what we must not touch, a page at a time: the
		 * regions kept out are a few pages each. */
		while (first + 8 <= end && keep_out(first))
			first = (first | 0xfff) + 1;
		while (last >= first + 8 && keep_out(last))
			last = (last & ~0xfffULL) - 8;
		probe[0] = first;
		probe[1] = last;
		tried = 0;
		for (k = 0; k < 2; k++) {
			if (probe[k] < start || probe[k] + 8 > end || keep_out(probe[k]))
				continue;
			tried = 1;
			if (!touch(probe[k], &got, &want)) {
				fail("ram", "0x%llx (in 0x%llx..0x%llx) read back 0x%llx after"
				     " 0x%llx was written", (unsigned long long)probe[k],
				     (unsigned long long)start, (unsigned long long)end,
				     (unsigned long long)got, (unsigned long long)want);
				bad++;
			}
		}
		ranges += tried;    /* a range that is all kept out is not counted */
	}
	if (!bad && ranges)
		ok("ram (%u ranges hold writes at both ends%s)", ranges,
		   own_tables ? "; above 4 GiB through our own page tables" : "");
	else if (!bad) {
		fail("ram", "no RAM range to test");
	}
}

/* ---- ACPI ------------------------------------------------------------- */

static int sum_ok(u64 a, u32 len)
{
	u8 s = 0;
	u32 i;
	for (i = 0; i < len; i++)
		s = (u8)(s + rd8(a + i));
	return s == 0;
}

/* ACPI tables must lie in memory e820 keeps from the kernel's allocator:
 * reserved (2) or ACPI reclaimable (3). */
static int in_reserved(u64 a, u64 len)
{
	u32 t = e820_type_of(a, len);
	return t == 2 || t == E820_ACPI;
}

/*
 * Is there a table at `a` we can trust enough to read: mapped, in
 * reserved memory, a sane length, its bytes summing to zero, and (if
 * `sig` is given) that signature?  Says why not under `what`.
 */
static int table_ok(u64 a, const char *sig, const char *what)
{
	u32 len;

	if (a == 0 || a + 36 > HOLE_START) {
		fail(what, "table address 0x%llx", (unsigned long long)a);
		return 0;
	}
	len = rd32(a + 4);
	if (sig && memcmp((const void *)a, sig, 4)) {
		fail(what, "no %s signature at 0x%llx", sig, (unsigned long long)a);
		return 0;
	}
	if (len < 36 || len > 64 * KiB || a + len > HOLE_START) {
		fail(what, "%.4s at 0x%llx has length %u", (const char *)a,
		     (unsigned long long)a, len);
		return 0;
	}
	if (!sum_ok(a, len)) {
		fail(what, "%.4s at 0x%llx: checksum", (const char *)a, (unsigned long long)a);
		return 0;
	}
	if (!in_reserved(a, len)) {
		fail(what, "%.4s at 0x%llx is not in reserved memory in e820",
		     (const char *)a, (unsigned long long)a);
		return 0;
	}
	return 1;
}

/* What the FADT and DSDT tell us about switching off. */
struct power {
	u16 port;       /* SLEEP_CONTROL_REG, 0 if unusable */
	u8 width;       /* its width in bits */
	u8 slp_typ;     /* from \_S5 */
};

/*
 * SLP_TYP for S5 from the DSDT's \_S5 object, or -1.  The AML is
 *   NameOp(0x08) "_S5_" PackageOp(0x12) PkgLength NumElements Element...
 * where the first element (SLP_TYPa) is BytePrefix(0x0a) n, ZeroOp(0x00),
 * OneOp(0x01), or (unusually) WordPrefix/DWordPrefix.  PkgLength is one
 * to four bytes; the top two bits of the first say how many follow.
 */
static int s5_type(u64 dsdt)
{
	u32 len = rd32(dsdt + 4), i;

	for (i = 36; i + 10 <= len; i++) {
		u64 a = dsdt + i;
		u8 op;
		if (rd8(a) != '_' || rd8(a + 1) != 'S' || rd8(a + 2) != '5' ||
		    rd8(a + 3) != '_' || rd8(a + 4) != 0x12)
			continue;
		a += 5;                         /* at PkgLength */
		a += 1 + (rd8(a) >> 6);         /* at NumElements */
		a += 1;                         /* at the first element */
		if (a + 2 > dsdt + len)
			return -1;
		op = rd8(a);
		if (op == 0x00 || op == 0x01)
			return op;
		if (op == 0x0a || op == 0x0b || op == 0x0c)
			return rd8(a + 1) <= 7 ? rd8(a + 1) : -1;
		return -1;
	}
	return -1;
}

/* How many times the 8-byte string `s` appears in the table at `t`. */
static unsigned count_in_table(u64 t, const char *s)
{
	u32 len = rd32(t + 4), i, n = 0;
	for (i = 36; i + 8 <= len; i++)
		if (rd8(t + i) == (u8)s[0] && !memcmp((const void *)(t + i), s, 8))
			n++;
	return n;
}

/* The DSDT, once found and checked, for the virtio probe. */
static u64 dsdt_addr;

static void check_dsdt(u64 fadt, struct power *pw)
{
	u32 flen = rd32(fadt + 4);
	u64 dsdt32 = rd32(fadt + FADT_DSDT);
	u64 xdsdt = flen >= FADT_X_DSDT + 8 ? rd64(fadt + FADT_X_DSDT) : 0;
	u64 dsdt = xdsdt ? xdsdt : dsdt32;
	int typ;

	if (xdsdt && dsdt32 && xdsdt != dsdt32) {
		fail("dsdt", "FADT's DSDT 0x%llx and X_DSDT 0x%llx differ",
		     (unsigned long long)dsdt32, (unsigned long long)xdsdt);
		return;
	}
	if (!table_ok(dsdt, "DSDT", "dsdt"))
		return;
	say("selftest: acpi DSDT at 0x%llx, %u bytes, revision %u\n",
	    (unsigned long long)dsdt, rd32(dsdt + 4), rd8(dsdt + 8));
	typ = s5_type(dsdt);
	if (typ < 0) {
		fail("dsdt", "no usable \\_S5 package; powering off with SLP_TYP 5");
		return;
	}
	pw->slp_typ = (u8)typ;
	dsdt_addr = dsdt;
	ok("dsdt (\\_S5 SLP_TYP %d, %u LNRO0005 virtio-mmio devices)", typ,
	   count_in_table(dsdt, "LNRO0005"));
}

/* A Generic Address Structure in System I/O space at a 16-bit port. */
static int gas_io(u64 g, u16 *port, u8 *width)
{
	u64 addr = rd64(g + GAS_ADDRESS);
	if (rd8(g + GAS_SPACE) != GAS_SYSTEM_IO || addr == 0 || addr > 0xffff)
		return 0;
	*port = (u16)addr;
	*width = rd8(g + GAS_WIDTH);
	return 1;
}

static void check_fadt(u64 fadt, struct power *pw)
{
	u32 len = rd32(fadt + 4), flags;
	u16 sts_port = 0, reset_port = 0;
	u8 sts_width = 0, reset_width = 0;
	unsigned bad = 0;

	if (len < FADT_MIN_LEN) {
		fail("fadt", "%u bytes, revision %u: too short for the sleep registers"
		     " (need %u, FADT revision 5+)", len, rd8(fadt + 8), FADT_MIN_LEN);
		return;
	}
	flags = rd32(fadt + FADT_FLAGS);
	if (!(flags & FADT_HW_REDUCED_ACPI)) {
		fail("fadt", "HW_REDUCED_ACPI not set (flags 0x%x)", flags);
		bad++;
	}
	if (!gas_io(fadt + FADT_SLEEP_CONTROL, &pw->port, &pw->width)) {
		fail("fadt", "SLEEP_CONTROL_REG is not an I/O port (space %u, address 0x%llx)",
		     rd8(fadt + FADT_SLEEP_CONTROL + GAS_SPACE),
		     (unsigned long long)rd64(fadt + FADT_SLEEP_CONTROL + GAS_ADDRESS));
		pw->port = 0;
		bad++;
	} else if (pw->width != 8 && pw->width != 16 && pw->width != 32) {
		fail("fadt", "SLEEP_CONTROL_REG is %u bits wide", pw->width);
		bad++;
	}
	if (!gas_io(fadt + FADT_SLEEP_STATUS, &sts_port, &sts_width)) {
		fail("fadt", "SLEEP_STATUS_REG is not an I/O port");
		bad++;
	}
	if (!(flags & FADT_RESET_REG_SUP) ||
	    !gas_io(fadt + FADT_RESET_REG, &reset_port, &reset_width)) {
		fail("fadt", "no reset register in I/O space (flags 0x%x)", flags);
		bad++;
	}
	if (!bad)
		ok("fadt (revision %u, hardware-reduced; sleep control 0x%x, status 0x%x,"
		   " reset 0x%x value 0x%x)", rd8(fadt + 8), pw->port, sts_port,
		   reset_port, rd8(fadt + FADT_RESET_VALUE));
	check_dsdt(fadt, pw);
}

/*
 * MADT: one enabled local APIC per vCPU (type 0, or type 9 x2APIC) with
 * distinct APIC ids, ours among them, and at least one I/O APIC.
 */
static void check_madt(u64 madt, const struct expect *ex)
{
	u32 len = rd32(madt + 4), off = 44, cpus = 0, ioapics = 0, overrides = 0;
	u64 ioapic_addr = 0;
	u32 me = my_apic_id();
	int found_me = 0;
	u8 seen[256 / 8];
	unsigned bad = 0;

	memset(seen, 0, sizeof seen);
	if (len < 44) {
		fail("madt", "%u bytes", len);
		return;
	}
	while (off + 2 <= len) {
		u64 e = madt + off;
		u8 type = rd8(e), elen = rd8(e + 1);
		u32 id = 0;
		int enabled = 0;

		if (elen < 2 || off + elen > len)
			break;
		if (type == 0 && elen >= 8) {           /* Processor Local APIC */
			id = rd8(e + 3);
			enabled = rd32(e + 4) & 1;
		} else if (type == 9 && elen >= 16) {   /* Processor Local x2APIC */
			id = rd32(e + 4);
			enabled = rd32(e + 8) & 1;
		} else if (type == 1 && elen >= 12) {   /* I/O APIC */
			ioapics++;
			if (!ioapic_addr)
				ioapic_addr = rd32(e + 4);
		} else if (type == 2) {                 /* Interrupt Source Override */
			overrides++;
		}
		if (enabled) {
			cpus++;
			if (id == me)
				found_me = 1;
			if (id < 256) {
				if (seen[id / 8] & (1u << (id % 8))) {
					fail("madt", "APIC id %u appears twice", id);
					bad++;
				}
				seen[id / 8] = (u8)(seen[id / 8] | (1u << (id % 8)));
			}
		}
		off += elen;
	}
	if (off != len) {
		fail("madt", "malformed entry at offset %u", off);
		return;
	}
	if (ex->cpus && cpus != ex->cpus) {
		fail("madt", "%u enabled CPUs, selftest.cpus is %llu", cpus,
		     (unsigned long long)ex->cpus);
		bad++;
	}
	if (!found_me) {
		fail("madt", "this CPU's APIC id %u is not among the enabled CPUs", me);
		bad++;
	}
	if (!ioapics) {
		fail("madt", "no I/O APIC");
		bad++;
	}
	if (!bad)
		ok("madt (enabled CPUs %u, boot CPU APIC id %u, I/O APICs %u, the first at 0x%llx,"
		   " interrupt overrides %u, local APIC 0x%x)", cpus, me, ioapics,
		   (unsigned long long)ioapic_addr, overrides, rd32(madt + 36));
}

static void check_acpi(u64 bp, const struct expect *ex, struct power *pw)
{
	u64 rsdp = rd64(bp + BP_ACPI_RSDP_ADDR), xsdt, fadt = 0, madt = 0;
	u32 xlen, n, i, nfadt = 0, nmadt = 0, bad = 0;

	if (rsdp == 0 || rsdp + 36 > HOLE_START ||
	    memcmp((const void *)rsdp, "RSD PTR ", 8)) {
		fail("rsdp", "no \"RSD PTR \" at acpi_rsdp_addr 0x%llx",
		     (unsigned long long)rsdp);
		return;
	}
	if (!sum_ok(rsdp, 20)) {
		fail("rsdp", "checksum of the first 20 bytes");
		return;
	}
	if (rd8(rsdp + 15) != 2 || rd32(rsdp + 20) < 36 || rd32(rsdp + 20) > 4 * KiB) {
		fail("rsdp", "revision %u, length %u (want revision 2, length 36)",
		     rd8(rsdp + 15), rd32(rsdp + 20));
		return;
	}
	if (!sum_ok(rsdp, rd32(rsdp + 20))) {
		fail("rsdp", "extended checksum");
		return;
	}
	if (!in_reserved(rsdp, 36)) {
		fail("rsdp", "0x%llx is not in reserved memory in e820",
		     (unsigned long long)rsdp);
		return;
	}
	xsdt = rd64(rsdp + 24);
	ok("rsdp (0x%llx, revision 2, both checksums, XSDT 0x%llx)",
	   (unsigned long long)rsdp, (unsigned long long)xsdt);

	if (!table_ok(xsdt, "XSDT", "xsdt"))
		return;
	xlen = rd32(xsdt + 4);
	if ((xlen - 36) % 8) {
		fail("xsdt", "length %u is not 36 + 8n", xlen);
		return;
	}
	n = (xlen - 36) / 8;
	for (i = 0; i < n; i++) {
		u64 t = rd64(xsdt + 36 + 8 * i);
		if (!table_ok(t, NULL, "xsdt")) {
			bad++;
			continue;
		}
		say("selftest: acpi %.4s at 0x%llx, %u bytes, revision %u\n",
		    (const char *)t, (unsigned long long)t, rd32(t + 4), rd8(t + 8));
		if (!memcmp((const void *)t, "FACP", 4)) {
			fadt = t;
			nfadt++;
		} else if (!memcmp((const void *)t, "APIC", 4)) {
			madt = t;
			nmadt++;
		}
	}
	if (nfadt > 1 || nmadt > 1) {
		fail("xsdt", "%u FADTs and %u MADTs", nfadt, nmadt);
		bad++;
	}
	if (!bad)
		ok("xsdt (%u tables, each with a valid checksum, in reserved memory)", n);

	if (fadt)
		check_fadt(fadt, pw);
	else
		fail("fadt", "no FACP table in the XSDT");
	if (madt)
		check_madt(madt, ex);
	else
		fail("madt", "no APIC table in the XSDT");
}

/* ---- power off ---------------------------------------------------------- */

/* Write SLP_TYP|SLP_EN to the sleep control register, as Linux's
 * acpi_hw_extended_sleep() does.  vmlua stops the machine on this write. */
static void power_off(const struct power *pw)
{
	u32 v = ((u32)(pw->slp_typ & 7) << 2) | SLP_EN;

	if (!pw->port) {
		say("selftest: no usable sleep control register; halting\n");
		return;
	}
	if (pw->width == 32)
		outl(pw->port, v);
	else if (pw->width == 16)
		outw(pw->port, (u16)v);
	else
		outb(pw->port, (u8)v);
	say("selftest: poweroff did not stop the machine\n");
}

/* ---- main ----------------------------------------------------------------- */

void selftest_main(u64 bp, u64 rflags);

/* Called by start.S on our own stack with boot_params and the RFLAGS we
 * were entered with.  Returns only if the machine did not switch off;
 * start.S then halts with interrupts off. */
void selftest_main(u64 bp, u64 rflags)
{
	struct expect ex;
	struct power pw = { 0, 8, 5 };

	say("selftest: vmlua selftest guest starting\n");
	check_entry(bp, rflags);
	if (bp != 0 && bp < HOLE_START) {
		check_cmdline(bp, &ex);
		check_e820(bp, &ex);
		boot_cr3 = read_cr3() & ~0xfffULL;
		boot_bp = bp & ~0xfffULL;
		check_ram();
		check_acpi(bp, &ex, &pw);
		if (dsdt_addr)
			check_virtio(dsdt_addr, ex.vreq);
	}

	if (failures())
		say("selftest: FAIL (%u checks failed)\n", failures());
	else
		say("selftest: PASS\n");
	power_off(&pw);
}
