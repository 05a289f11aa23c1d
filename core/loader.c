/*
 * loader.c - putting a Linux kernel into guest memory.
 *
 * On a PC, a bootloader such as GRUB reads the kernel from disk, puts it
 * somewhere in memory, fills in a page of facts about the machine (the
 * "zero page", struct boot_params: where RAM is, where the command line
 * and the initrd are) and jumps to it.  We are that bootloader.  The
 * contract between the two is Linux's Documentation/x86/boot.rst, the
 * "boot protocol", and this file follows it.
 *
 * Two kinds of kernel are accepted:
 *
 *  - A bzImage, what distributions ship as /boot/vmlinuz.  It starts with
 *    some 512-byte sectors of 16-bit "setup" code that a BIOS bootloader
 *    would run; at offset 0x1f1 in those sectors sits the "setup header",
 *    which tells us which version of the protocol the kernel speaks, how
 *    much memory it needs and where it likes to be.  We skip the 16-bit
 *    code entirely: the rest of the file (the "protected-mode kernel", a
 *    decompressor with the real kernel packed inside) is copied to its
 *    load address, and the vCPU starts in 64-bit mode at load address +
 *    0x200, the 64-bit entry point every x86-64 bzImage has.
 *
 *  - An ELF64 executable: an uncompressed vmlinux, or vmlua's own
 *    selftest guest.  Each PT_LOAD segment goes to its physical address
 *    (p_paddr) and execution starts at e_entry, which for these kernels
 *    is a physical address.  If the ELF carries a Xen PVH note, its
 *    32-bit entry point is recorded too.
 *
 * Then an initrd, if there is one, goes as high in low memory as the
 * kernel allows, and boot_params gets the setup header, the command line,
 * the initrd's place, the e820 memory map and the ACPI RSDP address.
 *
 * Everything in a kernel file is treated as untrusted input: each value
 * read from the file is checked before it decides where anything goes,
 * each addition that could overflow is checked, and guest memory is
 * reached only through memory_translate(), which refuses any range that
 * is not wholly RAM.  A problem becomes a one-line message naming the
 * file, never a crash and never a half-checked load.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "le.h"
#include "loader.h"
#include "x86.h"

#define PAGE 4096ULL

/* Offsets in a bzImage file, which are also offsets in boot_params: the
 * setup header sits at the same place in both. */
#define HDR_START           0x1f1   /* first byte of the setup header */
#define HDR_END_MAX         0x290   /* where boot_params' copy must stop */
#define HDR_SETUP_SECTS     0x1f1   /* u8: 512-byte setup sectors, 0 means 4 */
#define HDR_SYSSIZE         0x1f4   /* u32: protected-mode size in 16-byte units */
#define HDR_BOOT_FLAG       0x1fe   /* u16: 0xAA55 */
#define HDR_JUMP            0x200   /* u8 0xEB, then the header length - 2 */
#define HDR_MAGIC           0x202   /* "HdrS" */
#define HDR_VERSION         0x206   /* u16: boot protocol, 0x20f is 2.15 */
#define HDR_TYPE_OF_LOADER  0x210   /* u8 */
#define HDR_LOADFLAGS       0x211   /* u8 */
#define HDR_CODE32_START    0x214   /* u32 */
#define HDR_RAMDISK_IMAGE   0x218   /* u32 */
#define HDR_RAMDISK_SIZE    0x21c   /* u32 */
#define HDR_HEAP_END_PTR    0x224   /* u16 */
#define HDR_CMD_LINE_PTR    0x228   /* u32 */
#define HDR_INITRD_ADDR_MAX 0x22c   /* u32, 2.03+ */
#define HDR_KERNEL_ALIGN    0x230   /* u32, 2.05+ */
#define HDR_RELOCATABLE     0x234   /* u8, 2.05+ */
#define HDR_XLOADFLAGS      0x236   /* u16, 2.12+ */
#define HDR_CMDLINE_SIZE    0x238   /* u32, 2.06+ */
#define HDR_PAYLOAD_OFFSET  0x248   /* u32, 2.08+: from the protected-mode start */
#define HDR_PAYLOAD_LENGTH  0x24c   /* u32, 2.08+ */
#define HDR_PREF_ADDRESS    0x258   /* u64, 2.10+ */
#define HDR_INIT_SIZE       0x260   /* u32, 2.10+ */
/* Not in the header: where the 64-bit entry point sits in the
 * protected-mode kernel, the same for every x86-64 bzImage. */
#define HDR_ENTRY64         0x200

/* Other boot_params fields. */
#define BP_SIZE             4096
#define BP_ACPI_RSDP_ADDR   0x070   /* u64 */
#define BP_EXT_RAMDISK_IMAGE 0x0c0  /* u32: bits 32..63 of ramdisk_image */
#define BP_EXT_RAMDISK_SIZE 0x0c4   /* u32 */
#define BP_EXT_CMD_LINE_PTR 0x0c8   /* u32 */
#define BP_E820_ENTRIES     0x1e8   /* u8 */
#define BP_E820_TABLE       0x2d0   /* 128 packed entries of 20 bytes */
#define BP_E820_MAX         128
#define BP_E820_ENTRY_SIZE  20

#define LOADED_HIGH         0x01
#define CAN_USE_HEAP        0x80
#define XLF_KERNEL_64       0x0001
#define LOADER_TYPE_UNKNOWN 0xff    /* "a bootloader with no assigned id" */
/* heap_end_ptr: end of the real-mode heap relative to the setup code.
 * The 64-bit entry never runs that code; 0xfe00 is the customary value. */
#define HEAP_END            0xfe00

#define ELF_EHDR_SIZE       64
#define ELF_PHDR_SIZE       56
#define ELFCLASS32          1
#define ELFCLASS64          2
#define ELFDATA2LSB         1
#define ELFDATA2MSB         2
#define EM_X86_64           62
#define PT_LOAD             1
#define PT_NOTE             4
#define PN_XNUM             0xffff
#define XEN_ELFNOTE_PHYS32_ENTRY 18

_Static_assert(sizeof(((struct kernel_info *)0)->setup_header)
               == HDR_END_MAX - HDR_START, "setup_header holds 0x1f1..0x290");
_Static_assert(BP_E820_TABLE + BP_E820_MAX * BP_E820_ENTRY_SIZE <= BP_SIZE,
               "the e820 table fits in boot_params");


/* Write "PATH: message" (or just the message when path is NULL) into err
 * and return -1, so that every failure is one `return fail(...)`. */
static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!err || errlen == 0)
		return -1;
	if (path)
		n = snprintf(err, errlen, "%s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* An open kernel or initrd file and what we know about it. */
struct kfile {
	const char *path;
	int fd;
	uint64_t size;
};

/*
 * Open `path` for reading and learn its size.  The three ways a path can
 * be useless before we look inside it each get their own message: it
 * cannot be opened, it is a directory, it is empty.
 */
static int kfile_open(struct kfile *f, const char *path, char *err, size_t errlen)
{
	struct stat st;

	f->path = path;
	f->size = 0;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return fail(err, errlen, path, "cannot open: %s", strerror(errno));
	if (fstat(f->fd, &st) < 0) {
		int e = errno;
		close(f->fd);
		return fail(err, errlen, path, "cannot stat: %s", strerror(e));
	}
	if (S_ISDIR(st.st_mode)) {
		close(f->fd);
		return fail(err, errlen, path, "is a directory");
	}
	if (st.st_size <= 0) {
		close(f->fd);
		return fail(err, errlen, path, "empty file");
	}
	f->size = (uint64_t)st.st_size;
	return 0;
}

static void kfile_close(struct kfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/*
 * Read exactly `len` bytes at `off` into `buf`.  The callers have checked
 * the range against the size fstat reported; a short read here means the
 * file shrank under us, which is reported rather than ignored.
 */
static int kfile_read(const struct kfile *f, uint64_t off, void *buf,
                      uint64_t len, char *err, size_t errlen)
{
	int64_t n = io_pread_all(f->fd, buf, (size_t)len, off);

	if (n < 0)
		return fail(err, errlen, f->path, "read error at offset %" PRIu64
		            ": %s", off, strerror((int)-n));
	if ((uint64_t)n < len)
		return fail(err, errlen, f->path, "unexpected end of file at offset %"
		            PRIu64 " (did it change while loading?)", off + (uint64_t)n);
	return 0;
}

/* Is [addr, addr+len) wholly RAM, at or above 1 MiB (below lies vmlua's
 * own boot data: GDT, page tables, boot_params, command line, ACPI) and
 * below 4 GiB (what the boot page tables map)?  len > 0. */
static int fits_high(const struct memory *m, uint64_t addr, uint64_t len)
{
	if (addr < X86_HIMEM_START || addr + len < addr || addr + len > X86_HOLE_END)
		return 0;
	return memory_translate(m, addr, len) != NULL;
}

/* Round v up to a multiple of align (a power of two); 0 if that wraps. */
static uint64_t align_up(uint64_t v, uint64_t align)
{
	if (v + (align - 1) < v)
		return 0;
	return (v + (align - 1)) & ~(align - 1);
}

/*
 * Does p (4 bytes, inside the loaded kernel) start a payload a bzImage
 * can carry: one of the compressors the kernel's decompressor knows, or
 * an uncompressed ELF?
 */
static int known_payload(const uint8_t *p)
{
	static const uint8_t magic[][4] = {
		{ 0x1f, 0x8b, 0, 0 },       /* gzip (2 bytes) */
		{ 'B', 'Z', 'h', 0 },       /* bzip2 (3 bytes) */
		{ 0x5d, 0x00, 0, 0 },       /* lzma (2 bytes) */
		{ 0xfd, '7', 'z', 'X' },    /* xz */
		{ 0x89, 'L', 'Z', 'O' },    /* lzo */
		{ 0x02, 0x21, 0x4c, 0x18 }, /* lz4 (legacy frame) */
		{ 0x28, 0xb5, 0x2f, 0xfd }, /* zstd */
		{ 0x7f, 'E', 'L', 'F' },    /* uncompressed */
	};
	static const unsigned len[] = { 2, 3, 2, 4, 4, 4, 4, 4 };
	size_t i;

	_Static_assert(sizeof(magic) / sizeof(magic[0]) == sizeof(len) / sizeof(len[0]),
	               "one length per magic");
	for (i = 0; i < sizeof(len) / sizeof(len[0]); i++)
		if (memcmp(p, magic[i], len[i]) == 0)
			return 1;
	return 0;
}

/*
 * The bzImage path.  `head` holds the file's first bytes (zero-padded to
 * HDR_END_MAX); the caller has seen the boot flag and "HdrS".
 *
 * Which protocol features exist depends on the version, so each field is
 * read only when the version says it is there.  The load address: a
 * relocatable kernel goes where it prefers (pref_address, 2.10+) if that
 * is in high memory and the kernel fits there, else to 16 MiB, in both
 * cases rounded up to kernel_alignment; a kernel that cannot move goes
 * to code32_start, the address it was linked for (normally 1 MiB).  From its load address
 * the kernel needs init_size bytes (2.10+) to decompress itself in
 * place, so that whole stretch must be RAM, not just the file's bytes.
 */
/* What the checks of a bzImage learn, for the steps after them. */
struct bz_scan {
	uint16_t version;
	uint64_t hdr_end;               /* where the setup header ends, cut at 0x290 */
	unsigned sects;                 /* setup sectors */
	uint64_t setup_size, pm_size;   /* the real-mode part, the protected-mode part */
	uint64_t payload_off, payload_len;
	uint64_t need, addr;            /* bytes of RAM from the load address */
};

/* The setup header: long enough for its protocol (2.06 or later), with a
 * 64-bit entry point. */
static int bz_check_header(const struct kfile *f, const uint8_t *head,
                           struct bz_scan *z, char *err, size_t errlen)
{
	uint64_t hdr_need;
	uint16_t xlf;

	/* The byte after the 0xEB jump opcode at 0x200 is the jump's
	 * displacement from 0x202, which is where the header ends. */
	z->version = le16(head + HDR_VERSION);
	z->hdr_end = 0x202 + (uint64_t)head[HDR_JUMP + 1];
	if (z->hdr_end > f->size)
		return fail(err, errlen, f->path, "truncated header (the file is %" PRIu64
		            " bytes, the setup header ends at %" PRIu64 ")", f->size, z->hdr_end);
	if (z->version < 0x206)
		return fail(err, errlen, f->path, "boot protocol %u.%02u too old, need "
		            "2.06 or later", z->version >> 8, z->version & 0xff);
	hdr_need = z->version >= 0x20a ? HDR_INIT_SIZE + 4 : HDR_CMDLINE_SIZE + 4;
	if (z->hdr_end < hdr_need)
		return fail(err, errlen, f->path, "bad setup header (protocol %u.%02u "
		            "needs it to reach 0x%" PRIx64 ", it ends at 0x%" PRIx64 ")",
		            z->version >> 8, z->version & 0xff, hdr_need, z->hdr_end);
	/* A header that grew past what boot_params has room for is cut at
	 * 0x290: the fields beyond belong to boot_params, not to us. */
	if (z->hdr_end > HDR_END_MAX)
		z->hdr_end = HDR_END_MAX;
	/* xloadflags appeared in 2.12; an older kernel declares no 64-bit
	 * entry, and the 64-bit entry is the only one we use. */
	xlf = z->version >= 0x20c ? le16(head + HDR_XLOADFLAGS) : 0;
	if (!(xlf & XLF_KERNEL_64))
		return fail(err, errlen, f->path, "no 64-bit entry point (xloadflags "
		            "lacks XLF_KERNEL_64)");
	return 0;
}

/* The header and the file agree on where the kernel is. */
static int bz_check_layout(const struct kfile *f, const uint8_t *head,
                           struct bz_scan *z, char *err, size_t errlen)
{
	uint64_t syssize;

	z->sects = head[HDR_SETUP_SECTS] ? head[HDR_SETUP_SECTS] : 4;
	z->setup_size = ((uint64_t)z->sects + 1) * 512;
	if (z->setup_size >= f->size)
		return fail(err, errlen, f->path, "truncated header (the file is %" PRIu64
		            " bytes, its %u setup sectors end at %" PRIu64 " and the kernel "
		            "follows them)", f->size, z->sects, z->setup_size);
	z->pm_size = f->size - z->setup_size;
	/* The 64-bit entry point is 0x200 bytes into the protected-mode
	 * kernel: a file that stops before it would send the vCPU into
	 * whatever memory happens to follow. */
	if (z->pm_size <= HDR_ENTRY64)
		return fail(err, errlen, f->path, "truncated kernel (its protected-mode "
		            "part is %" PRIu64 " bytes, the 64-bit entry point is at offset "
		            "0x%x in it)", z->pm_size, HDR_ENTRY64);

	/* syssize may fall short of the file (a signature is appended to
	 * signed kernels) but never past it.  A wrong setup_sects moves the
	 * start of the protected-mode part; the compressed payload then does
	 * not begin where payload_offset says (checked once it is read). */
	syssize = (uint64_t)le32(head + HDR_SYSSIZE) * 16;
	if (syssize > z->pm_size)
		return fail(err, errlen, f->path, "setup header disagrees with the file "
		            "(syssize says %" PRIu64 " bytes of kernel after the %u setup "
		            "sectors, the file holds %" PRIu64 ")", syssize, z->sects, z->pm_size);
	if (z->version >= 0x208) {
		z->payload_off = le32(head + HDR_PAYLOAD_OFFSET);
		z->payload_len = le32(head + HDR_PAYLOAD_LENGTH);
		if (z->payload_len && (z->payload_off + z->payload_len > z->pm_size ||
		                       z->payload_len < 4))
			return fail(err, errlen, f->path, "setup header disagrees with the file "
			            "(the payload at %" PRIu64 "+%" PRIu64 " does not fit in the "
			            "%" PRIu64 " bytes after the %u setup sectors)", z->payload_off,
			            z->payload_len, z->pm_size, z->sects);
	}
	return 0;
}

/* Where the kernel goes: its preferred address if it is relocatable and
 * that fits, else the default; code32_start if it is not relocatable. */
static int bz_place(const struct memory *m, const struct kfile *f, const uint8_t *head,
                    struct bz_scan *z, char *err, size_t errlen)
{
	uint64_t align = 1, pref = 0, init_size = 0;
	int relocatable = head[HDR_RELOCATABLE] != 0;

	if (relocatable) {
		align = le32(head + HDR_KERNEL_ALIGN);
		if (align == 0 || (align & (align - 1)))
			return fail(err, errlen, f->path, "bad kernel_alignment 0x%" PRIx64
			            " (not a power of two)", align);
	}
	if (z->version >= 0x20a) {
		pref = le64(head + HDR_PREF_ADDRESS);
		init_size = le32(head + HDR_INIT_SIZE);
	}
	z->need = init_size > z->pm_size ? init_size : z->pm_size;

	if (relocatable) {
		z->addr = pref >= X86_HIMEM_START ? pref : X86_KERNEL_DEFAULT;
		z->addr = align_up(z->addr, align);
		/* A preference we cannot honour is only a preference. */
		if (!fits_high(m, z->addr, z->need))
			z->addr = align_up(X86_KERNEL_DEFAULT, align);
	} else {
		z->addr = le32(head + HDR_CODE32_START);
	}
	if (z->addr == 0 || !fits_high(m, z->addr, z->need))
		return fail(err, errlen, f->path, "kernel does not fit in RAM: needs %"
		            PRIu64 " bytes at 0x%" PRIx64, z->need, z->addr);
	return 0;
}

static int load_bzimage(struct memory *m, const struct kfile *f,
                        const uint8_t *head, struct kernel_info *ki,
                        char *err, size_t errlen)
{
	struct bz_scan z = { 0 };
	void *dst;

	if (bz_check_header(f, head, &z, err, errlen) ||
	    bz_check_layout(f, head, &z, err, errlen) ||
	    bz_place(m, f, head, &z, err, errlen))
		return -1;

	/* bz_place checked [addr, addr+need), and pm_size <= need. */
	dst = memory_translate(m, z.addr, z.pm_size);
	if (kfile_read(f, z.setup_size, dst, z.pm_size, err, errlen) < 0)
		return -1;
	if (z.payload_len && !known_payload((const uint8_t *)dst + z.payload_off))
		return fail(err, errlen, f->path, "setup header disagrees with the file (no "
		            "compressed kernel at payload offset %" PRIu64 " after the %u setup "
		            "sectors: is setup_sects right?)", z.payload_off, z.sects);

	ki->format = KERNEL_BZIMAGE;
	ki->protocol = z.version;
	ki->entry64 = z.addr + HDR_ENTRY64;
	ki->pvh_entry = 0;
	ki->load_start = z.addr;
	ki->load_end = z.addr + z.need;
	ki->initrd_addr_max = z.version >= 0x203
		? (uint64_t)le32(head + HDR_INITRD_ADDR_MAX) + 1 : 0x38000000ULL;
	ki->cmdline_size = le32(head + HDR_CMDLINE_SIZE);
	if (ki->cmdline_size == 0)  /* the limit before 2.06 said otherwise */
		ki->cmdline_size = 255;
	ki->setup_header_len = (size_t)(z.hdr_end - HDR_START);
	memcpy(ki->setup_header, head + HDR_START, ki->setup_header_len);
	return 0;
}

/*
 * Look through one PT_NOTE segment's bytes for Xen's PHYS32_ENTRY note,
 * the PVH entry point.  Notes are (namesz, descsz, type, name, desc) with
 * name and desc each padded to 4 bytes; every size is checked against
 * what is left before it is used.
 */
static int find_pvh_note(const uint8_t *p, uint64_t len, unsigned seg,
                         const struct kfile *f, struct kernel_info *ki,
                         char *err, size_t errlen)
{
	uint64_t off = 0;

	while (len - off >= 12) {
		uint64_t namesz = le32(p + off), descsz = le32(p + off + 4);
		uint32_t type = le32(p + off + 8);
		uint64_t name = off + 12;
		uint64_t desc = name + ((namesz + 3) & ~3ULL);
		uint64_t next = desc + ((descsz + 3) & ~3ULL);

		/* namesz, descsz < 2^32, so none of these sums can wrap. */
		if (desc > len || next > len || desc + descsz > len)
			return fail(err, errlen, f->path, "malformed note in segment %u at "
			            "offset %" PRIu64, seg, off);
		if (namesz == 4 && memcmp(p + name, "Xen", 4) == 0 &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (descsz == 4)
				ki->pvh_entry = le32(p + desc);
			else if (descsz == 8)
				ki->pvh_entry = le64(p + desc);
			else
				return fail(err, errlen, f->path, "Xen PVH entry note in segment "
				            "%u has %" PRIu64 " bytes, need 4 or 8", seg, descsz);
		}
		off = next;
	}
	return 0;
}

/*
 * The ELF64 path: check the ELF header and every program header first,
 * then load.  So a malformed file leaves guest memory as it was, and the
 * order of checks gives each problem one message: the file's own
 * consistency (sizes, offsets within the file), then where the segments
 * go (in RAM, not over vmlua's low memory, not over each other).
 */
/* What the checks of an ELF64 vmlinux learn, for the steps after them. */
struct elf_scan {
	uint64_t entry;
	unsigned phnum;
	uint8_t *ph;            /* the program headers, read from the file */
	uint64_t lo, hi;        /* the PT_LOAD segments' extent */
};

/* The ELF header: a little-endian x86-64 ELF64 with program headers we
 * can read; they are read into e->ph. */
static int elf_read_header(const struct kfile *f, const uint8_t *head,
                           struct elf_scan *e, char *err, size_t errlen)
{
	uint64_t phoff, phsize;

	/* The class byte comes first: an ELF32 header is only 52 bytes, and
	 * "ELF32" says more than "truncated" about such a file. */
	if (f->size > 4 && head[4] == ELFCLASS32)
		return fail(err, errlen, f->path, "ELF32 kernel, need ELF64");
	if (f->size < ELF_EHDR_SIZE)
		return fail(err, errlen, f->path, "truncated header (the file is %" PRIu64
		            " bytes, an ELF64 header needs %d)", f->size, ELF_EHDR_SIZE);
	if (head[4] != ELFCLASS64)
		return fail(err, errlen, f->path, "bad ELF class %u, need ELF64 (2)", head[4]);
	if (head[5] == ELFDATA2MSB)
		return fail(err, errlen, f->path, "big-endian ELF, need little-endian");
	if (head[5] != ELFDATA2LSB)
		return fail(err, errlen, f->path, "bad ELF data encoding %u, need "
		            "little-endian (1)", head[5]);
	if (le16(head + 18) != EM_X86_64)
		return fail(err, errlen, f->path, "ELF for machine %u, need x86-64 (62)",
		            le16(head + 18));

	e->entry = le64(head + 24);
	phoff = le64(head + 32);
	e->phnum = le16(head + 56);
	if (le16(head + 54) != ELF_PHDR_SIZE)
		return fail(err, errlen, f->path, "program header size %u, need %d",
		            le16(head + 54), ELF_PHDR_SIZE);
	if (e->phnum == 0)
		return fail(err, errlen, f->path, "no loadable segments");
	if (e->phnum == PN_XNUM)
		return fail(err, errlen, f->path, "too many program headers (PN_XNUM)");
	phsize = (uint64_t)e->phnum * ELF_PHDR_SIZE;
	if (phoff + phsize < phoff || phoff + phsize > f->size)
		return fail(err, errlen, f->path, "truncated header (the file is %" PRIu64
		            " bytes, the program headers end at %" PRIu64 ")", f->size,
		            phoff + phsize < phoff ? UINT64_MAX : phoff + phsize);
	e->ph = malloc(phsize);
	if (!e->ph)
		return fail(err, errlen, f->path, "out of memory for program headers");
	return kfile_read(f, phoff, e->ph, phsize, err, errlen);
}

/* Every segment on its own: inside the file, inside RAM between 1 MiB
 * and 4 GiB; the entry point inside one of them. */
static int elf_check_segments(const struct memory *m, const struct kfile *f,
                              struct elf_scan *e, char *err, size_t errlen)
{
	unsigned i, nload = 0;
	int entry_ok = 0;

	e->lo = UINT64_MAX, e->hi = 0;
	for (i = 0; i < e->phnum; i++) {
		const uint8_t *p = e->ph + (uint64_t)i * ELF_PHDR_SIZE;
		uint32_t type = le32(p);
		uint64_t off = le64(p + 8), paddr = le64(p + 24);
		uint64_t filesz = le64(p + 32), memsz = le64(p + 40);

		if (type != PT_LOAD && type != PT_NOTE)
			continue;
		if (off + filesz < off || off + filesz > f->size)
			return fail(err, errlen, f->path, "segment %u truncated (it ends at file "
			            "offset %" PRIu64 ", the file is %" PRIu64 " bytes)", i,
			            off + filesz < off ? UINT64_MAX : off + filesz, f->size);
		if (type != PT_LOAD)
			continue;
		if (filesz > memsz)
			return fail(err, errlen, f->path, "segment %u: file size %" PRIu64 " is "
			            "larger than its memory size %" PRIu64, i, filesz, memsz);
		if (memsz == 0)
			continue;
		if (paddr + memsz < paddr || !memory_translate(m, paddr, memsz))
			return fail(err, errlen, f->path, "kernel does not fit in RAM: segment %u "
			            "needs %" PRIu64 " bytes at 0x%" PRIx64, i, memsz, paddr);
		if (paddr < X86_HIMEM_START)
			return fail(err, errlen, f->path, "segment %u at 0x%" PRIx64 " is below "
			            "1 MiB, where vmlua keeps its boot data", i, paddr);
		if (paddr + memsz > X86_HOLE_END)
			return fail(err, errlen, f->path, "segment %u at 0x%" PRIx64 " ends above "
			            "4 GiB, beyond the boot page tables", i, paddr);
		if (e->entry >= paddr && e->entry - paddr < memsz)
			entry_ok = 1;
		if (paddr < e->lo)
			e->lo = paddr;
		if (paddr + memsz > e->hi)
			e->hi = paddr + memsz;
		nload++;
	}
	if (nload == 0)
		return fail(err, errlen, f->path, "no loadable segments");
	if (!entry_ok)
		return fail(err, errlen, f->path, "entry point 0x%" PRIx64 " is not inside "
		            "any PT_LOAD segment", e->entry);
	return 0;
}

/* Segments against each other: none overlap.  A vmlinux has a handful of
 * them, so comparing every pair costs nothing. */
static int elf_check_overlaps(const struct kfile *f, const struct elf_scan *e,
                              char *err, size_t errlen)
{
	unsigned i, j;

	for (i = 0; i < e->phnum; i++) {
		const uint8_t *a = e->ph + (uint64_t)i * ELF_PHDR_SIZE;
		if (le32(a) != PT_LOAD || le64(a + 40) == 0)
			continue;
		for (j = i + 1; j < e->phnum; j++) {
			const uint8_t *b = e->ph + (uint64_t)j * ELF_PHDR_SIZE;
			if (le32(b) != PT_LOAD || le64(b + 40) == 0)
				continue;
			/* elf_check_segments showed neither range wraps. */
			if (le64(a + 24) < le64(b + 24) + le64(b + 40) &&
			    le64(b + 24) < le64(a + 24) + le64(a + 40))
				return fail(err, errlen, f->path, "segments %u and %u overlap", i, j);
		}
	}
	return 0;
}

/* Copy the PT_LOAD segments into guest memory (zeroing their tails) and
 * look for the PVH entry among the notes. */
static int elf_load_segments(struct memory *m, const struct kfile *f,
                             const struct elf_scan *e, struct kernel_info *ki,
                             char *err, size_t errlen)
{
	unsigned i;

	ki->pvh_entry = 0;
	for (i = 0; i < e->phnum; i++) {
		const uint8_t *p = e->ph + (uint64_t)i * ELF_PHDR_SIZE;
		uint32_t type = le32(p);
		uint64_t off = le64(p + 8), paddr = le64(p + 24);
		uint64_t filesz = le64(p + 32), memsz = le64(p + 40);

		if (type == PT_LOAD && memsz > 0) {
			/* Checked: [paddr, paddr+memsz) is RAM. */
			uint8_t *dst = memory_translate(m, paddr, memsz);
			if (kfile_read(f, off, dst, filesz, err, errlen) < 0)
				return -1;
			memset(dst + filesz, 0, memsz - filesz);
		} else if (type == PT_NOTE && filesz >= 12) {
			uint8_t *note = malloc(filesz);
			int rc;
			if (!note)
				return fail(err, errlen, f->path, "out of memory for segment %u", i);
			rc = kfile_read(f, off, note, filesz, err, errlen);
			if (rc == 0)
				rc = find_pvh_note(note, filesz, i, f, ki, err, errlen);
			free(note);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

/* An ELF64 vmlinux: checked whole before a byte of it is loaded. */
static int load_elf(struct memory *m, const struct kfile *f,
                    const uint8_t *head, struct kernel_info *ki,
                    char *err, size_t errlen)
{
	struct elf_scan e = { 0 };
	int rc = elf_read_header(f, head, &e, err, errlen);

	if (!rc)
		rc = elf_check_segments(m, f, &e, err, errlen);
	if (!rc)
		rc = elf_check_overlaps(f, &e, err, errlen);
	if (!rc)
		rc = elf_load_segments(m, f, &e, ki, err, errlen);
	free(e.ph);
	if (rc)
		return -1;
	ki->format = KERNEL_ELF;
	ki->protocol = 0;
	ki->entry64 = e.entry;
	ki->load_start = e.lo;
	ki->load_end = e.hi;
	ki->initrd_addr_max = X86_HOLE_END;
	ki->cmdline_size = (uint32_t)(X86_CMDLINE_MAX - 1);
	ki->setup_header_len = 0;
	return 0;
}

/*
 * Load a kernel: open it, tell bzImage from ELF by their magic numbers,
 * and hand over to the loader for that format.  `ki` is rewritten from
 * scratch except for the initrd and boot_params fields, which belong to
 * the calls that follow.
 */
int loader_load_kernel(struct memory *m, const char *path,
                       struct kernel_info *ki, char *err, size_t errlen)
{
	uint8_t head[HDR_END_MAX];
	struct kfile f;
	uint64_t n;
	int rc;

	if (kfile_open(&f, path, err, errlen) < 0)
		return -1;
	snprintf(ki->path, sizeof(ki->path), "%s", path);
	memset(head, 0, sizeof(head));
	n = f.size < sizeof(head) ? f.size : sizeof(head);
	rc = kfile_read(&f, 0, head, n, err, errlen);
	if (rc == 0) {
		if (n >= 4 && memcmp(head, "\x7f" "ELF", 4) == 0) {
			rc = load_elf(m, &f, head, ki, err, errlen);
		} else if (n >= HDR_VERSION && le16(head + HDR_BOOT_FLAG) == 0xaa55 &&
		           memcmp(head + HDR_MAGIC, "HdrS", 4) == 0) {
			/* A bzImage's version field is at 0x206: n >= 0x206 holds it
			 * only when the file is longer still. */
			if (f.size < HDR_VERSION + 2)
				rc = fail(err, errlen, path, "truncated header (the file is %"
				          PRIu64 " bytes, the setup header needs %d)", f.size,
				          HDR_VERSION + 2);
			else
				rc = load_bzimage(m, &f, head, ki, err, errlen);
		} else {
			rc = fail(err, errlen, path, "bad magic: not a bzImage or ELF64 kernel");
		}
	}
	kfile_close(&f);
	return rc;
}

/*
 * Load an initrd.  It goes as high as it can, page-aligned, in the RAM
 * region that holds the kernel's high memory (low RAM, below the 32-bit
 * hole), but no higher than the kernel says it can reach
 * (initrd_addr_max) and not over the kernel's own init_size area.  High
 * is where bootloaders customarily put it: it keeps clear of the space
 * the kernel decompresses into.
 */
int loader_load_initrd(struct memory *m, const char *path,
                       struct kernel_info *ki, char *err, size_t errlen)
{
	const struct memory_region *r = memory_region_of(m, X86_HIMEM_START);
	uint64_t top = 0, bottom, addr = 0, avail;
	struct kfile f;
	void *dst;
	int rc;

	if (kfile_open(&f, path, err, errlen) < 0)
		return -1;
	bottom = align_up(ki->load_end > X86_HIMEM_START ? ki->load_end
	                                                 : X86_HIMEM_START, PAGE);
	if (r) {
		top = r->gpa + r->size;     /* memory_add_region refused wrapping */
		if (ki->initrd_addr_max && ki->initrd_addr_max < top)
			top = ki->initrd_addr_max;
		top &= ~(PAGE - 1);
	}
	avail = bottom && top > bottom ? top - bottom : 0;
	if (f.size > avail) {
		kfile_close(&f);
		return fail(err, errlen, path, "initrd does not fit in RAM (%" PRIu64
		            " bytes, %" PRIu64 " free below 0x%" PRIx64 ")",
		            f.size, avail, top);
	}
	/* top - size >= bottom and bottom is page-aligned, so rounding down
	 * keeps the initrd above the kernel. */
	addr = (top - f.size) & ~(PAGE - 1);
	dst = memory_translate(m, addr, f.size);
	if (!dst)
		rc = fail(err, errlen, path, "initrd does not fit in RAM");
	else
		rc = kfile_read(&f, 0, dst, f.size, err, errlen);
	kfile_close(&f);
	if (rc < 0)
		return -1;
	ki->initrd_addr = addr;
	ki->initrd_size = f.size;
	return 0;
}

/* Append [addr, end) of `type` to the map, merging with the entry before
 * when they touch and agree; drop it when the map is full. */
static void e820_add(struct e820_entry *out, unsigned max, unsigned *n,
                     uint64_t addr, uint64_t end, uint32_t type)
{
	if (end <= addr)
		return;
	if (*n > 0 && out[*n - 1].type == type &&
	    out[*n - 1].addr + out[*n - 1].size == addr) {
		out[*n - 1].size += end - addr;
		return;
	}
	if (*n >= max)
		return;
	out[*n].addr = addr;
	out[*n].size = end - addr;
	out[*n].type = type;
	(*n)++;
}

/*
 * The e820 map a PC BIOS would give: each RAM region of `m` is cut by the
 * legacy windows of the first megabyte.  Below X86_EBDA_START is usable
 * RAM; the EBDA up to 0xA0000 is reserved; 0xA0000..X86_ACPI_START (VGA
 * and option ROMs on a PC) is left out; the ACPI tables at
 * X86_ACPI_START..X86_ACPI_END are reserved; from 1 MiB on, RAM is RAM.
 * Regions come sorted, and the windows are visited in order, so the map
 * comes out sorted.
 */
unsigned loader_e820(const struct memory *m, struct e820_entry *out,
                     unsigned max)
{
	static const struct { uint64_t start, end; uint32_t type; } win[] = {
		{ 0, X86_EBDA_START, E820_RAM },
		{ X86_EBDA_START, 0xa0000, E820_RESERVED },
		{ X86_ACPI_START, X86_ACPI_END, E820_RESERVED },
		{ X86_HIMEM_START, UINT64_MAX, E820_RAM },
	};
	unsigned i, w, n = 0;

	for (i = 0; i < m->nregions; i++) {
		uint64_t a = m->region[i].gpa, b = a + m->region[i].size;
		for (w = 0; w < sizeof(win) / sizeof(win[0]); w++) {
			uint64_t s = a > win[w].start ? a : win[w].start;
			uint64_t e = b < win[w].end ? b : win[w].end;
			e820_add(out, max, &n, s, e, win[w].type);
		}
	}
	return n;
}

/*
 * Fill in the zero page.  For a bzImage it starts as a copy of the
 * kernel's own setup header, as boot.rst asks; an ELF kernel has none, so
 * it gets the few fields that say "this is a boot_params" (boot flag,
 * "HdrS", protocol 2.15).  Then the loader's part: who we are, where the
 * command line and initrd are, the memory map, the RSDP.
 */
int loader_setup_boot_params(struct memory *m, struct kernel_info *ki,
                             const char *cmdline, uint64_t rsdp_addr,
                             char *err, size_t errlen)
{
	struct e820_entry map[BP_E820_MAX];
	uint64_t limit, len = strlen(cmdline);
	const char *path = ki->path[0] ? ki->path : NULL;
	unsigned n, i;
	uint8_t *bp, *cl;

	limit = ki->cmdline_size < X86_CMDLINE_MAX - 1 ? ki->cmdline_size
	                                               : X86_CMDLINE_MAX - 1;
	if (len > limit)
		return fail(err, errlen, path, "command line is %" PRIu64 " bytes, the "
		            "kernel takes at most %" PRIu64, len, limit);
	bp = memory_translate(m, X86_BOOT_PARAMS, BP_SIZE);
	cl = memory_translate(m, X86_CMDLINE, len + 1);
	if (!bp || !cl)
		return fail(err, errlen, path, "boot_params at 0x%llx or the command "
		            "line at 0x%llx is outside RAM", X86_BOOT_PARAMS, X86_CMDLINE);
	if (ki->setup_header_len > sizeof(ki->setup_header))
		return fail(err, errlen, path, "corrupt kernel_info: setup header of "
		            "%zu bytes", ki->setup_header_len);

	memset(bp, 0, BP_SIZE);
	if (ki->format == KERNEL_BZIMAGE) {
		memcpy(bp + HDR_START, ki->setup_header, ki->setup_header_len);
		if (ki->load_start < X86_HOLE_END)
			put_le32(bp + HDR_CODE32_START, (uint32_t)ki->load_start);
	} else {
		put_le16(bp + HDR_BOOT_FLAG, 0xaa55);
		memcpy(bp + HDR_MAGIC, "HdrS", 4);
		put_le16(bp + HDR_VERSION, 0x20f);
	}
	bp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNKNOWN;
	bp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	put_le16(bp + HDR_HEAP_END_PTR, HEAP_END);

	memcpy(cl, cmdline, len + 1);
	put_le32(bp + HDR_CMD_LINE_PTR, (uint32_t)X86_CMDLINE);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(X86_CMDLINE >> 32));

	if (ki->initrd_size) {
		put_le32(bp + HDR_RAMDISK_IMAGE, (uint32_t)ki->initrd_addr);
		put_le32(bp + HDR_RAMDISK_SIZE, (uint32_t)ki->initrd_size);
		put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(ki->initrd_addr >> 32));
		put_le32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(ki->initrd_size >> 32));
	}

	n = loader_e820(m, map, BP_E820_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;
		put_le64(e, map[i].addr);
		put_le64(e + 8, map[i].size);
		put_le32(e + 16, map[i].type);
	}

	put_le64(bp + BP_ACPI_RSDP_ADDR, rsdp_addr);
	ki->boot_params = X86_BOOT_PARAMS;
	ki->cmdline_addr = X86_CMDLINE;
	return 0;
}
