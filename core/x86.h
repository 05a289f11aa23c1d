/*
 * x86.h - where things sit in the guest-physical address space of an
 * x86-64 vmlua machine.  Facts shared by the loader, the ACPI builder and
 * the kvm backend; docs/memory-map.md explains them for people.
 *
 *   0x0000_0500  GDT (4 entries)
 *   0x0000_7000  boot_params ("zero page")
 *   0x0000_8ff0  initial stack top
 *   0x0000_9000  PML4, 0xA000 PDPT, 0xB000..0xEFFF four page directories:
 *                an identity map of the first 4 GiB with 2 MiB pages
 *   0x0002_0000  kernel command line (up to 64 KiB)
 *   0x0009_fc00  end of low RAM (EBDA and legacy area are reserved)
 *   0x000e_0000  ACPI tables, RSDP first (reserved in e820)
 *   0x0010_0000  high memory: kernel, initrd, free RAM up to the hole
 *   0xc000_0000  the 32-bit hole: virtio-mmio windows, IOAPIC, LAPIC
 *   0x1_0000_0000 the rest of RAM when there is more than 3 GiB
 */
#ifndef VMLUA_X86_H
#define VMLUA_X86_H

#define X86_GDT_ADDR        0x500ULL
#define X86_BOOT_PARAMS     0x7000ULL
#define X86_STACK_TOP       0x8ff0ULL
#define X86_PML4            0x9000ULL
#define X86_PDPT            0xa000ULL
#define X86_PD              0xb000ULL   /* four pages */
#define X86_CMDLINE         0x20000ULL
#define X86_CMDLINE_MAX     0x10000ULL
#define X86_EBDA_START      0x9fc00ULL
#define X86_ACPI_START      0xe0000ULL
#define X86_ACPI_END        0x100000ULL
#define X86_HIMEM_START     0x100000ULL
#define X86_KERNEL_DEFAULT  0x1000000ULL /* 16 MiB: where bzImages go unless they ask */

#define X86_HOLE_START      0xc0000000ULL
#define X86_HOLE_END        0x100000000ULL
#define X86_MMIO_START      0xd0000000ULL /* virtio-mmio windows, 4 KiB apart */
#define X86_MMIO_WINDOW     0x1000ULL
#define X86_MMIO_MAX        32
#define X86_MMIO_IRQ_BASE   5            /* first GSI for virtio-mmio devices */
#define X86_IOAPIC_ADDR     0xfec00000ULL
#define X86_LAPIC_ADDR      0xfee00000ULL

/* Ports. */
#define X86_UART_PORT       0x3f8
#define X86_UART_IRQ        4
#define X86_PM_SLEEP_CTL    0x600   /* FADT SLEEP_CONTROL_REG, 1 byte */
#define X86_PM_SLEEP_STS    0x601   /* FADT SLEEP_STATUS_REG, 1 byte */
#define X86_RESET_PORT      0xcf9   /* FADT RESET_REG */
#define X86_RESET_VALUE     0x06
#define X86_I8042_PORT      0x64    /* writing 0xfe here also resets */
#define X86_PVPANIC_PORT    0x505   /* pvpanic: bit 0 written means panic */

/* Sleep control register: SLP_TYP in bits 2..4, SLP_EN is bit 5.  The
 * DSDT's \_S5 package gives SLP_TYP 5 for soft-off. */
#define X86_SLP_TYP_S5      5
#define X86_SLP_EN          0x20

/* e820 types. */
#define E820_RAM            1
#define E820_RESERVED       2
#define E820_ACPI           3

#endif
