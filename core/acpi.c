/*
 * acpi.c - the tables that describe a vmlua machine to its guest.
 *
 * A PC kernel learns what it runs on from ACPI: how many CPUs there are
 * and where their interrupt controllers live (MADT), how to switch the
 * machine off or reset it (FADT), and which devices sit where (DSDT, in
 * AML bytecode).  We write a minimal set, as QEMU's microvm does:
 *
 *   RSDP -> XSDT -> FADT -> DSDT
 *                -> MADT
 *
 * The FADT says the machine is "hardware-reduced": no legacy PM1 blocks,
 * no SCI; power off and reset are single registers in I/O space that
 * core/kvm.c watches.  The DSDT names \_S5 (so the kernel knows which
 * SLP_TYP value means soft-off), the serial port, and each virtio-mmio
 * window as an LNRO0005 device, the id Linux's virtio_mmio driver binds.
 *
 * All of it lives in [X86_ACPI_START, X86_ACPI_END), which e820 marks
 * reserved.  Each table is checksummed so that the bytes sum to zero.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "errbuf.h"
#include "le.h"
#include "x86.h"

/* Where each table goes inside the ACPI area. */
#define RSDP_AT  (X86_ACPI_START)
#define XSDT_AT  (X86_ACPI_START + 0x40)
#define FADT_AT  (X86_ACPI_START + 0x100)
#define MADT_AT  (X86_ACPI_START + 0x400)
#define DSDT_AT  (X86_ACPI_START + 0x1000)
#define DSDT_MAX (X86_ACPI_END - DSDT_AT)

#define HDR 36
#define FADT_LEN 276
#define FADT_HW_REDUCED_ACPI (1u << 20)
#define FADT_RESET_REG_SUP   (1u << 10)
#define BOOT_ARCH_NO_VGA     (1u << 2)
#define BOOT_ARCH_NO_CMOS    (1u << 5)
#define GAS_SYSTEM_IO 1


/* The byte that makes p[0..len) sum to zero. */
static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

/* The common 36-byte header; the checksum is filled in last. */
static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = rev;
	t[9] = 0;
	memcpy(t + 10, "VMLUA ", 6);
	memcpy(t + 16, "VMLUAMCH", 8);
	put_le32(t + 24, 1);
	memcpy(t + 28, "VMLA", 4);
	put_le32(t + 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = checksum(t, len);
}

/* A Generic Address Structure for a byte-wide I/O port. */
static void gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;       /* register bit width */
	g[2] = 0;       /* bit offset */
	g[3] = 1;       /* access size: byte */
	put_le64(g + 4, port);
}

/*
 * AML, the DSDT's bytecode, written into a bounded buffer.  Nested
 * objects (Scope, Device, Package, Buffer) start with a PkgLength that
 * counts itself, so each is built into its own buffer first and then
 * wrapped.  An overflow sets `bad` and is reported once at the end.
 */
struct aml {
	uint8_t b[4096];
	size_t n;
	int bad;
};

static void emit(struct aml *a, const void *p, size_t len)
{
	if (a->bad || len > sizeof(a->b) - a->n) {
		a->bad = 1;
		return;
	}
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void emit1(struct aml *a, uint8_t v) { emit(a, &v, 1); }

/* op [PkgLength] body: PkgLength is 1..4 bytes and includes itself. */
static void emit_pkg(struct aml *a, const uint8_t *op, size_t oplen,
                     const struct aml *body)
{
	size_t total;
	uint8_t len[4];
	unsigned n;

	if (body->bad) {
		a->bad = 1;
		return;
	}
	for (n = 1; n <= 4; n++) {
		total = body->n + n;
		if ((n == 1 && total < 0x40) || (n > 1 && total < (1u << (4 + 8 * (n - 1)))))
			break;
	}
	if (n > 4) {
		a->bad = 1;
		return;
	}
	if (n == 1) {
		len[0] = (uint8_t)total;
	} else {
		unsigned i;
		len[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (i = 1; i < n; i++)
			len[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	emit(a, op, oplen);
	emit(a, len, n);
	emit(a, body->b, body->n);
}

/* Name(NAME, <integer>) with the shortest integer encoding. */
static void emit_name_int(struct aml *a, const char name[4], uint32_t v)
{
	emit1(a, 0x08);
	emit(a, name, 4);
	if (v == 0) {
		emit1(a, 0x00);             /* ZeroOp */
	} else if (v == 1) {
		emit1(a, 0x01);             /* OneOp */
	} else if (v <= 0xff) {
		emit1(a, 0x0a);             /* BytePrefix */
		emit1(a, (uint8_t)v);
	} else {
		uint8_t d[4];
		emit1(a, 0x0c);             /* DWordPrefix */
		put_le32(d, v);
		emit(a, d, 4);
	}
}

static void emit_name_string(struct aml *a, const char name[4], const char *s)
{
	emit1(a, 0x08);
	emit(a, name, 4);
	emit1(a, 0x0d);                     /* StringPrefix */
	emit(a, s, strlen(s) + 1);
}

/* Name(_CRS, ResourceTemplate () { <res> EndTag }) */
static void emit_crs(struct aml *a, const uint8_t *res, size_t len)
{
	static const uint8_t name[5] = { 0x08, '_', 'C', 'R', 'S' };
	static const uint8_t bufop = 0x11;
	struct aml body = { .n = 0 };
	uint8_t end[2] = { 0x79, 0x00 };   /* End Tag, checksum 0 = none */

	emit1(&body, 0x0a);                 /* BufferSize as a byte */
	emit1(&body, (uint8_t)(len + 2));
	emit(&body, res, len);
	emit(&body, end, 2);
	emit(a, name, 5);
	emit_pkg(a, &bufop, 1, &body);
}

/* Device (VRnn) { _HID "LNRO0005", _UID n, _CRS { Memory32Fixed, Interrupt } } */
static void emit_virtio_mmio(struct aml *a, unsigned i, const struct acpi_mmio_device *d)
{
	static const uint8_t devop[2] = { 0x5b, 0x82 };
	struct aml body = { .n = 0 };
	uint8_t res[12 + 9];
	char name[5];

	snprintf(name, sizeof(name), "VR%02X", i & 0xff);
	emit(&body, name, 4);
	emit_name_string(&body, "_HID", "LNRO0005");
	emit_name_int(&body, "_UID", i);
	/* Memory32Fixed (ReadWrite, base, size) */
	res[0] = 0x86;
	put_le16(res + 1, 9);
	res[3] = 1;
	put_le32(res + 4, (uint32_t)d->base);
	put_le32(res + 8, (uint32_t)d->size);
	/* Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi } */
	res[12] = 0x89;
	put_le16(res + 13, 6);
	res[15] = 0x03;                     /* consumer | edge */
	res[16] = 1;
	put_le32(res + 17, d->gsi);
	emit_crs(&body, res, sizeof(res));
	emit_pkg(a, devop, 2, &body);
}

/* Device (COM1) { _HID EISAID("PNP0501"), _UID 0, IO 0x3f8/8, IRQ 4 } */
static void emit_com1(struct aml *a)
{
	static const uint8_t devop[2] = { 0x5b, 0x82 };
	struct aml body = { .n = 0 };
	uint8_t res[8 + 3];

	emit(&body, "COM1", 4);
	emit_name_int(&body, "_HID", 0x0105d041);   /* EISAID("PNP0501") */
	emit_name_int(&body, "_UID", 0);
	res[0] = 0x47;                      /* IO (Decode16, min, max, align, len) */
	res[1] = 1;
	put_le16(res + 2, X86_UART_PORT);
	put_le16(res + 4, X86_UART_PORT);
	res[6] = 1;
	res[7] = 8;
	res[8] = 0x22;                      /* IRQNoFlags () { 4 } */
	put_le16(res + 9, 1u << X86_UART_IRQ);
	emit_crs(&body, res, sizeof(res));
	emit_pkg(a, devop, 2, &body);
}

/*
 * Device (PEVT) { _HID "QEMU0001", IO 0x505/1 }: the pvpanic port, under
 * the id Linux's pvpanic-mmio driver binds, so a guest that loads it
 * tells us about a panic without our reading the console.
 */
static void emit_pvpanic(struct aml *a)
{
	static const uint8_t devop[2] = { 0x5b, 0x82 };
	struct aml body = { .n = 0 };
	uint8_t res[8];

	emit(&body, "PEVT", 4);
	emit_name_string(&body, "_HID", "QEMU0001");
	res[0] = 0x47;                      /* IO (Decode16, 0x505, 0x505, 1, 1) */
	res[1] = 1;
	put_le16(res + 2, X86_PVPANIC_PORT);
	put_le16(res + 4, X86_PVPANIC_PORT);
	res[6] = 1;
	res[7] = 1;
	emit_crs(&body, res, sizeof(res));
	emit_pkg(a, devop, 2, &body);
}

static void build_dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	static const uint8_t s5[] = {
		0x08, '_', 'S', '5', '_',       /* Name (_S5, */
		0x12, 0x08, 0x04,               /*   Package (4) { */
		0x0a, X86_SLP_TYP_S5,           /*     SLP_TYPa */
		0x0a, X86_SLP_TYP_S5,           /*     SLP_TYPb */
		0x00, 0x00,                     /*     reserved } ) */
	};
	static const uint8_t scopeop = 0x10;
	struct aml sb = { .n = 0 };
	unsigned i;

	emit(a, s5, sizeof(s5));
	emit(&sb, "\\_SB_", 5);
	emit_com1(&sb);
	emit_pvpanic(&sb);
	for (i = 0; i < cfg->nmmio; i++)
		emit_virtio_mmio(&sb, i, &cfg->mmio[i]);
	emit_pkg(a, &scopeop, 1, &sb);
}

/* The configuration fits the tables: CPUs, windows below 4 GiB. */
static int check_config(const struct acpi_config *cfg, char *err, size_t errlen)
{
	unsigned i;

	if (cfg->ncpus < 1 || cfg->ncpus > 255)
		return errbuf_set(err, errlen, "acpi: cpus must be 1..255, got %u", cfg->ncpus);
	if (cfg->nmmio > X86_MMIO_MAX)
		return errbuf_set(err, errlen, "acpi: at most %d virtio-mmio devices, got %u",
		                  X86_MMIO_MAX, cfg->nmmio);
	/* Memory32Fixed holds a 32-bit base and a 32-bit size: the window
	 * must be non-empty and end at or below 4 GiB.  Comparing against
	 * the room left above base, never base + size, keeps a huge size
	 * from wrapping past the check. */
	for (i = 0; i < cfg->nmmio; i++) {
		const struct acpi_mmio_device *w = &cfg->mmio[i];
		if (w->size == 0)
			return errbuf_set(err, errlen, "acpi: virtio-mmio window %u is empty", i);
		if (w->base >= X86_HOLE_END || w->size > X86_HOLE_END - w->base ||
		    w->size > 0xffffffffULL)
			return errbuf_set(err, errlen,
			                  "acpi: virtio-mmio window %u (0x%llx, 0x%llx bytes) is not below 4 GiB",
			                  i, (unsigned long long)w->base, (unsigned long long)w->size);
	}
	return 0;
}

/* The DSDT at t: the devices in AML. */
static int build_dsdt(uint8_t *t, const struct acpi_config *cfg, char *err, size_t errlen)
{
	struct aml dsdt, *d = &dsdt;
	uint32_t len;

	memset(d, 0, sizeof(*d));
	build_dsdt_body(d, cfg);
	if (d->bad || HDR + d->n > DSDT_MAX)
		return errbuf_set(err, errlen, "acpi: the DSDT does not fit");
	len = (uint32_t)(HDR + d->n);
	header(t, "DSDT", len, 2);
	memcpy(t + HDR, d->b, d->n);
	finish(t, len);
	return 0;
}

/* The FADT at t: hardware-reduced, with sleep and reset registers. */
static void build_fadt(uint8_t *t)
{
	header(t, "FACP", FADT_LEN, 6);
	put_le32(t + 40, (uint32_t)DSDT_AT);
	put_le16(t + 109, BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_CMOS);
	put_le32(t + 112, FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP);
	gas_io8(t + 116, X86_RESET_PORT);
	t[128] = X86_RESET_VALUE;
	t[131] = 5;                                   /* FADT minor version */
	put_le64(t + 140, DSDT_AT);
	gas_io8(t + 244, X86_PM_SLEEP_CTL);
	gas_io8(t + 256, X86_PM_SLEEP_STS);
	memcpy(t + 268, "VMLUA\0\0\0", 8);             /* hypervisor vendor */
	finish(t, FADT_LEN);
}

/* The MADT at t: a local APIC per vCPU, the IOAPIC, IRQ0 -> GSI 2. */
static void build_madt(uint8_t *t, unsigned ncpus)
{
	uint32_t len = 44;
	unsigned i;

	for (i = 0; i < ncpus; i++) {
		uint8_t *e = t + len;
		e[0] = 0;                             /* Processor Local APIC */
		e[1] = 8;
		e[2] = (uint8_t)i;                    /* ACPI processor UID */
		e[3] = (uint8_t)i;                    /* APIC id */
		put_le32(e + 4, 1);                   /* enabled */
		len += 8;
	}
	t[len] = 1;                                   /* I/O APIC */
	t[len + 1] = 12;
	t[len + 2] = (uint8_t)ncpus;                  /* its id, after the CPUs' */
	put_le32(t + len + 4, (uint32_t)X86_IOAPIC_ADDR);
	put_le32(t + len + 8, 0);                     /* GSI base */
	len += 12;
	t[len] = 2;                                   /* Interrupt Source Override */
	t[len + 1] = 10;
	t[len + 2] = 0;                               /* ISA */
	t[len + 3] = 0;                               /* IRQ 0 (the PIT) */
	put_le32(t + len + 4, 2);                     /* is GSI 2 */
	put_le16(t + len + 8, 0);                     /* conforms to the bus */
	len += 10;
	header(t, "APIC", len, 5);
	put_le32(t + 36, (uint32_t)X86_LAPIC_ADDR);
	put_le32(t + 40, 1);                          /* PCAT_COMPAT */
	finish(t, len);
}

/* The XSDT at t (FADT and MADT), and the RSDP at r, revision 2: the
 * XSDT is the one to use. */
static void build_roots(uint8_t *t, uint8_t *r)
{
	header(t, "XSDT", HDR + 16, 1);
	put_le64(t + HDR, FADT_AT);
	put_le64(t + HDR + 8, MADT_AT);
	finish(t, HDR + 16);

	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "VMLUA ", 6);
	r[15] = 2;
	put_le32(r + 16, 0);                          /* no RSDT */
	put_le32(r + 20, 36);
	put_le64(r + 24, XSDT_AT);
	r[8] = checksum(r, 20);
	r[32] = checksum(r, 36);
}

int acpi_build(struct memory *m, const struct acpi_config *cfg,
               uint64_t *rsdp, char *err, size_t errlen)
{
	uint8_t *area;

	if (check_config(cfg, err, errlen))
		return -1;
	area = memory_translate(m, X86_ACPI_START, X86_ACPI_END - X86_ACPI_START);
	if (!area)
		return errbuf_set(err, errlen, "acpi: guest RAM does not cover 0x%llx..0x%llx",
		                  (unsigned long long)X86_ACPI_START,
		                  (unsigned long long)X86_ACPI_END - 1);
	memset(area, 0, X86_ACPI_END - X86_ACPI_START);
#define AT(gpa) (area + ((gpa) - X86_ACPI_START))
	/* The DSDT first: the FADT points at it. */
	if (build_dsdt(AT(DSDT_AT), cfg, err, errlen))
		return -1;
	build_fadt(AT(FADT_AT));
	build_madt(AT(MADT_AT), cfg->ncpus);
	build_roots(AT(XSDT_AT), AT(RSDP_AT));
#undef AT
	*rsdp = RSDP_AT;
	return 0;
}
