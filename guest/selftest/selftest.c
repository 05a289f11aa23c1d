/*
 * selftest.c - a guest that checks the machine vmlua built for it.
 *
 * It reads what a kernel reads at boot - boot_params and its e820 map,
 * the command line, the ACPI tables - checks each against what vmlua
 * promised (and what the command line says was asked for), reports every
 * finding on the serial port, and switches the machine off the way
 * Linux does, through the FADT's sleep control register.
 *
 * It runs where kernel code is emulated one instruction at a time, so it
 * is small, prints little, and uses only plain integer instructions.
 *
 * Command line: selftest.cpus=N selftest.mem=BYTES (decimal or 0x hex).
 * Output: "selftest: ok <what>" / "selftest: FAIL <what>: <detail>"
 * lines, then "selftest: PASS" or "selftest: FAIL (N checks failed)".
 */
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

extern char _image_start[], _image_end[];

#define UART 0x3f8
#define GiB (1ULL << 30)
#define MiB (1ULL << 20)
#define HOLE_START 0xc0000000ULL
#define HOLE_END 0x100000000ULL

static unsigned failures;

/* ---- tiny libc ---------------------------------------------------- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

void *memset(void *d, int c, size_t n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

static inline void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static u8 rd8(u64 a)  { return *(volatile u8 *)a; }
static u16 rd16(u64 a) { return *(volatile u16 *)a; }
static u32 rd32(u64 a) { return *(volatile u32 *)a; }
static u64 rd64(u64 a) { return *(volatile u64 *)a; }

/* ---- output --------------------------------------------------------- */

static void puts_(const char *s)
{
	while (*s)
		outb(UART, (u8)*s++);
}

static void puthex(u64 v)
{
	char buf[19];
	int i = 18;
	buf[i] = 0;
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	puts_(buf + i);
}

static void putdec(u64 v)
{
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(buf + i);
}

static void ok(const char *what)
{
	puts_("selftest: ok ");
	puts_(what);
	puts_("\n");
}

/* Start a FAIL line; the caller adds detail and "\n". */
static void fail(const char *what)
{
	failures++;
	puts_("selftest: FAIL ");
	puts_(what);
	puts_(": ");
}

/* ---- command line --------------------------------------------------- */

static int parse_u64(const char *s, u64 *out)
{
	u64 v = 0;
	int base = 10, any = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9') d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f') d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F') d = (unsigned)(*s - 'A' + 10);
		else break;
		v = v * (u64)base + d;
		any = 1;
	}
	if (!any || (*s && *s != ' '))
		return 0;
	*out = v;
	return 1;
}

/* The value of "key=" in the command line, if present. */
static int cmdline_u64(const char *cmd, const char *key, u64 *out)
{
	size_t klen = 0;
	while (key[klen])
		klen++;
	for (const char *p = cmd; *p; p++) {
		if ((p == cmd || p[-1] == ' ') && !memcmp(p, key, klen))
			return parse_u64(p + klen, out);
	}
	return 0;
}

/* ---- e820 and RAM --------------------------------------------------- */

struct e820 { u64 addr, size; u32 type; } __attribute__((packed));

/* Page tables of our own, identity-mapping the first 16 GiB with 2 MiB
 * pages, so that RAM above 4 GiB can be touched. */
#define MAP_GIB 16
static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt[512] __attribute__((aligned(4096)));
static u64 pd[MAP_GIB][512] __attribute__((aligned(4096)));

static void map_ram(u64 end)
{
	unsigned gib = (unsigned)((end + GiB - 1) / GiB), i, j;
	if (gib < 4)
		gib = 4;
	if (gib > MAP_GIB)
		gib = MAP_GIB;
	pml4[0] = (u64)pdpt | 3;
	for (i = 0; i < gib; i++) {
		pdpt[i] = (u64)pd[i] | 3;
		for (j = 0; j < 512; j++)
			pd[i][j] = ((u64)i * GiB + (u64)j * 2 * MiB) | 0x83;
	}
	__asm__ volatile("mov %0, %%cr3" : : "r"((u64)pml4) : "memory");
}

/* Is the 8-byte word at a one we must not disturb? */
static int reserved_word(u64 a)
{
	return a < 0x1000 ||
	       (a + 8 > (u64)_image_start && a < (u64)_image_end);
}

/* Write a pattern into a word of RAM, read it back, put it back. */
static int touch(u64 a)
{
	volatile u64 *p = (volatile u64 *)a;
	u64 old, pattern = 0x5a17e57c0ffee000ULL ^ a;
	if (reserved_word(a))
		return 1;
	old = *p;
	*p = pattern;
	if (*p != pattern)
		return 0;
	*p = old;
	return 1;
}

static void check_e820(const u8 *bp, u64 mem)
{
	unsigned n = bp[0x1e8], i, bad = 0;
	const struct e820 *e = (const struct e820 *)(bp + 0x2d0);
	u64 ram = 0, prev_end = 0, top = 0;
	int high = 0;

	if (n == 0 || n > 128) {
		fail("e820");
		puts_("entry count ");
		putdec(n);
		puts_("\n");
		return;
	}
	for (i = 0; i < n; i++) {
		puts_("selftest: e820 ");
		puthex(e[i].addr);
		puts_(" ");
		puthex(e[i].size);
		puts_(" ");
		putdec(e[i].type);
		puts_("\n");
		if (i && e[i].addr < prev_end) {
			fail("e820 order");
			puts_("entry ");
			putdec(i);
			puts_(" overlaps or is out of order\n");
			bad++;
		}
		prev_end = e[i].addr + e[i].size;
		if (e[i].type != 1)
			continue;
		ram += e[i].size;
		if (prev_end > top)
			top = prev_end;
		if (e[i].addr < HOLE_END && prev_end > HOLE_START) {
			fail("e820 hole");
			puts_("RAM in the 32-bit hole at ");
			puthex(e[i].addr);
			puts_("\n");
			bad++;
		}
		if (e[i].addr == HOLE_END)
			high = 1;
	}
	if (mem && (ram > mem || ram + MiB < mem)) {
		fail("e820 size");
		puts_("RAM adds up to ");
		puthex(ram);
		puts_(", selftest.mem is ");
		puthex(mem);
		puts_("\n");
		bad++;
	}
	if (mem > 3 * GiB && !high) {
		fail("e820 high");
		puts_("no RAM at 4 GiB for a guest of ");
		puthex(mem);
		puts_("\n");
		bad++;
	}
	if (!bad)
		ok("e820 (sorted, no RAM in the hole, sizes add up)");

	/* Every RAM range is RAM: its first and last words hold a write. */
	map_ram(top);
	bad = 0;
	for (i = 0; i < n; i++) {
		u64 first = (e[i].addr + 7) & ~7ULL, last = e[i].addr + e[i].size - 8;
		if (e[i].type != 1 || e[i].size < 16)
			continue;
		if (last + 8 > (u64)MAP_GIB * GiB)
			continue;
		if (!touch(first) || !touch(last)) {
			fail("ram");
			puts_("range at ");
			puthex(e[i].addr);
			puts_(" does not hold a write\n");
			bad++;
		}
	}
	if (!bad)
		ok("ram (each range holds writes at both ends)");
}

/* ---- ACPI ------------------------------------------------------------ */

static int sum_ok(u64 a, u32 len)
{
	u8 s = 0;
	for (u32 i = 0; i < len; i++)
		s = (u8)(s + rd8(a + i));
	return s == 0;
}

/* A table header we can trust enough to read: sane length, good sum. */
static int table_ok(u64 a, const char *sig, const char *what)
{
	u32 len;
	if (a == 0 || a >= HOLE_START) {
		fail(what);
		puts_("bad address ");
		puthex(a);
		puts_("\n");
		return 0;
	}
	len = rd32(a + 4);
	if (memcmp((const void *)a, sig, 4) || len < 36 || len > 65536) {
		fail(what);
		puts_("no valid ");
		puts_(sig);
		puts_(" header at ");
		puthex(a);
		puts_("\n");
		return 0;
	}
	if (!sum_ok(a, len)) {
		fail(what);
		puts_(sig);
		puts_(" checksum\n");
		return 0;
	}
	return 1;
}

/* SLP_TYP for S5 from the DSDT's \_S5 package, or -1. */
static int s5_type(u64 dsdt)
{
	u32 len = rd32(dsdt + 4), i;
	for (i = 36; i + 8 < len; i++) {
		u64 a = dsdt + i;
		unsigned skip;
		u8 v;
		if (rd8(a) != '_' || rd8(a + 1) != 'S' || rd8(a + 2) != '5' ||
		    rd8(a + 3) != '_' || rd8(a + 4) != 0x12)
			continue;
		skip = (rd8(a + 5) >> 6) + 1;     /* PkgLength bytes */
		a += 5 + skip + 1;                /* past NumElements */
		v = rd8(a);
		if (v == 0x0a)
			return rd8(a + 1);
		if (v == 0x00 || v == 0x01)
			return v;
		return -1;
	}
	return -1;
}

struct power { u16 sleep_port; int slp_typ; };

static void check_acpi(const u8 *bp, u64 cpus, struct power *pw)
{
	u64 rsdp = rd64((u64)bp + 0x70), xsdt, fadt = 0, madt = 0, dsdt;
	u32 n, i;

	pw->sleep_port = 0;
	pw->slp_typ = 5;
	if (!rsdp || memcmp((const void *)rsdp, "RSD PTR ", 8)) {
		fail("rsdp");
		puts_("no RSDP at acpi_rsdp_addr ");
		puthex(rsdp);
		puts_("\n");
		return;
	}
	if (!sum_ok(rsdp, 20) || rd8(rsdp + 15) < 2 || !sum_ok(rsdp, 36)) {
		fail("rsdp");
		puts_("checksum or revision\n");
		return;
	}
	ok("rsdp (revision 2, both checksums)");
	xsdt = rd64(rsdp + 24);
	if (!table_ok(xsdt, "XSDT", "xsdt"))
		return;
	n = (rd32(xsdt + 4) - 36) / 8;
	for (i = 0; i < n; i++) {
		u64 t = rd64(xsdt + 36 + 8 * i);
		if (t && t < HOLE_START && !memcmp((const void *)t, "FACP", 4))
			fadt = t;
		else if (t && t < HOLE_START && !memcmp((const void *)t, "APIC", 4))
			madt = t;
	}
	ok("xsdt");

	if (!fadt) {
		fail("fadt");
		puts_("not in the XSDT\n");
	} else if (table_ok(fadt, "FACP", "fadt")) {
		u32 flags = rd32(fadt + 112);
		if (!(flags & (1u << 20))) {
			fail("fadt");
			puts_("HW_REDUCED_ACPI not set, flags ");
			puthex(flags);
			puts_("\n");
		} else {
			ok("fadt (hardware-reduced)");
		}
		if (rd32(fadt + 4) >= 256 && rd8(fadt + 244) == 1)
			pw->sleep_port = (u16)rd64(fadt + 248);
		else {
			fail("fadt");
			puts_("no sleep control register in I/O space\n");
		}
		dsdt = rd32(fadt + 4) >= 148 && rd64(fadt + 140) ? rd64(fadt + 140)
		                                                  : rd32(fadt + 40);
		if (table_ok(dsdt, "DSDT", "dsdt")) {
			pw->slp_typ = s5_type(dsdt);
			if (pw->slp_typ < 0) {
				fail("dsdt");
				puts_("no \\_S5 package, using SLP_TYP 5\n");
				pw->slp_typ = 5;
			} else {
				ok("dsdt (\\_S5 found)");
			}
		}
	}

	if (!madt) {
		fail("madt");
		puts_("not in the XSDT\n");
	} else if (table_ok(madt, "APIC", "madt")) {
		u32 len = rd32(madt + 4), off = 44, lapics = 0, ioapics = 0;
		while (off + 2 <= len) {
			u8 type = rd8(madt + off), elen = rd8(madt + off + 1);
			if (elen < 2 || off + elen > len)
				break;
			if (type == 0 && elen == 8 && (rd32(madt + off + 4) & 1))
				lapics++;
			if (type == 1)
				ioapics++;
			off += elen;
		}
		if (off != len) {
			fail("madt");
			puts_("malformed entry at offset ");
			putdec(off);
			puts_("\n");
		} else if (cpus && lapics != cpus) {
			fail("madt");
			putdec(lapics);
			puts_(" enabled CPUs, selftest.cpus is ");
			putdec(cpus);
			puts_("\n");
		} else if (!ioapics) {
			fail("madt");
			puts_("no I/O APIC\n");
		} else {
			puts_("selftest: ok madt (");
			putdec(lapics);
			puts_(" CPUs, an I/O APIC)\n");
		}
	}
}

/* ---- main ------------------------------------------------------------ */

void selftest_main(const u8 *bp);

void selftest_main(const u8 *bp)
{
	u64 cmd_addr, cpus = 0, mem = 0;
	const char *cmd;
	struct power pw;

	puts_("selftest: vmlua selftest guest starting\n");
	cmd_addr = rd32((u64)bp + 0x228) | ((u64)rd32((u64)bp + 0xc8) << 32);
	cmd = cmd_addr ? (const char *)cmd_addr : "";
	if (!cmdline_u64(cmd, "selftest.cpus=", &cpus) ||
	    !cmdline_u64(cmd, "selftest.mem=", &mem)) {
		fail("cmdline");
		puts_("needs selftest.cpus=N selftest.mem=BYTES, got \"");
		puts_(cmd);
		puts_("\"\n");
	}
	check_e820(bp, mem);
	check_acpi(bp, cpus, &pw);

	if (failures) {
		puts_("selftest: FAIL (");
		putdec(failures);
		puts_(" checks failed)\n");
	} else {
		puts_("selftest: PASS\n");
	}
	if (pw.sleep_port)
		outb(pw.sleep_port, (u8)(((pw.slp_typ & 7) << 2) | 0x20));
	puts_("selftest: poweroff did not stop the machine\n");
	/* start.S halts with interrupts off */
	(void)rd16;
}
