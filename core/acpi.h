/*
 * acpi.h - the ACPI tables that describe a vmlua x86 machine to its
 * guest: RSDP, XSDT, FADT (hardware-reduced), MADT, DSDT.  See acpi.c.
 */
#ifndef VMLUA_ACPI_H
#define VMLUA_ACPI_H

#include <stdint.h>
#include "memory.h"
#include "x86.h"

struct acpi_mmio_device {
	uint64_t base, size;   /* virtio-mmio window */
	uint32_t gsi;          /* its interrupt */
};

struct acpi_config {
	unsigned ncpus;                        /* 1..255 */
	unsigned nmmio;                        /* virtio-mmio devices to declare */
	struct acpi_mmio_device mmio[X86_MMIO_MAX];
};

/*
 * Build the tables in [X86_ACPI_START, X86_ACPI_END) of `m`, RSDP first.
 * Returns 0 and the RSDP's gpa in *rsdp, or -1 with a message in err.
 */
int acpi_build(struct memory *m, const struct acpi_config *cfg,
               uint64_t *rsdp, char *err, size_t errlen);

#endif
