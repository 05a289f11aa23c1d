/*
 * loader.h - puts a Linux kernel, its initrd and its boot_params into
 * guest memory, the way a bootloader would.  See loader.c.
 *
 * Every function reports failure as -1 with a one-line message in `err`
 * that names the file and what is wrong with it ("vmlinuz: bad magic:
 * not a bzImage or ELF64 kernel").  Nothing here touches Lua or KVM.
 */
#ifndef VMLUA_LOADER_H
#define VMLUA_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "memory.h"

#define LOADER_ERR_MAX 256
#define LOADER_PATH_MAX 4096

enum kernel_format { KERNEL_BZIMAGE, KERNEL_ELF };

struct kernel_info {
	enum kernel_format format;
	uint64_t entry64;          /* 64-bit entry point (gpa) */
	uint64_t pvh_entry;        /* XEN_ELFNOTE_PHYS32_ENTRY, 0 if absent */
	uint64_t load_start;       /* lowest gpa the kernel occupies */
	uint64_t load_end;         /* one past the highest */
	uint16_t protocol;         /* bzImage boot protocol (0x20f...), 0 for ELF */
	uint64_t initrd_addr_max;  /* highest address the initrd may end at, +1 */
	uint64_t initrd_addr;      /* 0 if no initrd */
	uint64_t initrd_size;
	uint64_t boot_params;      /* gpa of boot_params once set up, else 0 */
	uint64_t cmdline_addr;
	uint32_t cmdline_size;     /* kernel's cmdline_size limit (bzImage) */
	uint8_t setup_header[0x290 - 0x1f1]; /* bzImage header, copied into boot_params */
	size_t setup_header_len;   /* 0 for ELF */
	char path[LOADER_PATH_MAX]; /* the kernel file, for later messages */
};

/* Load a bzImage or ELF64 vmlinux from `path`. */
int loader_load_kernel(struct memory *m, const char *path,
                       struct kernel_info *ki, char *err, size_t errlen);

/* Load an initrd from `path` below initrd_addr_max and above the kernel. */
int loader_load_initrd(struct memory *m, const char *path,
                       struct kernel_info *ki, char *err, size_t errlen);

/*
 * Write boot_params at X86_BOOT_PARAMS and the command line at
 * X86_CMDLINE: the setup header, initrd place, e820 map derived from
 * `m` (x86.h says what is RAM and what is reserved) and acpi_rsdp_addr.
 */
int loader_setup_boot_params(struct memory *m, struct kernel_info *ki,
                             const char *cmdline, uint64_t rsdp_addr,
                             char *err, size_t errlen);

/* The e820 map for `m`: fills up to `max` entries, returns how many. */
struct e820_entry { uint64_t addr, size; uint32_t type; };
unsigned loader_e820(const struct memory *m, struct e820_entry *out,
                     unsigned max);

#endif
