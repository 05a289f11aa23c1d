/*
 * kvm_vcpu.c - the kvm backend's vCPUs: their CPUID, the boot CPU's
 * 64-bit entry state, and the thread per vCPU that calls KVM_RUN and
 * hands each exit to the board (kvm_board.c).  A thread parks while the
 * machine is paused and leaves when it stops; the kick signal brings it
 * out of KVM_RUN.
 *
 * Each vCPU thread is named "vcpuN" (as /proc and top show it) and, once
 * it runs, loads the vCPU seccomp filter (sandbox.c) before its first
 * KVM_RUN: the guest's exits are handled by a thread that may only run
 * the vCPU, raise an interrupt, take locks and wake the loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "errbuf.h"
#include "kvm_int.h"
#include "memory.h"
#include "sandbox.h"
#include "x86.h"

/* Wait while paused; returns non-zero when the thread must leave. */
static int park_if_paused(struct vcpu *c)
{
	struct kvm_vm *vm = c->vm;
	int leave;

	pthread_mutex_lock(&vm->lock);
	if (vm->paused && !vm->stopping) {
		vm->parked++;
		pthread_cond_broadcast(&vm->cond);
		while (vm->paused && !vm->stopping)
			pthread_cond_wait(&vm->cond, &vm->lock);
		vm->parked--;
	}
	leave = vm->stopping;
	c->run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->lock);
	return leave;
}


/* One exit from KVM_RUN: to the board, or the machine's end. */
static void handle_exit(struct vcpu *c)
{
	struct kvm_vm *vm = c->vm;
	struct kvm_run *run = c->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		/* data_offset and size come from the kernel, but check
		 * them against the mapping before we trust them. */
		uint64_t bytes = (uint64_t)run->io.size * run->io.count;
		uint8_t *p;
		uint32_t i;

		c->stat[KSTAT_IO]++;
		if (run->io.size == 0 || run->io.size > 4 ||
		    run->io.data_offset > c->run_size ||
		    bytes > c->run_size - run->io.data_offset) {
			kvm_set_exit(vm, VM_EXIT_ERROR, "vCPU %u: malformed I/O exit", c->id);
			break;
		}
		p = (uint8_t *)run + run->io.data_offset;
		for (i = 0; i < run->io.count; i++)
			board_io(c, run->io.port,
			         run->io.direction == KVM_EXIT_IO_OUT,
			         p + (size_t)i * run->io.size, run->io.size);
		break;
	}
	case KVM_EXIT_MMIO:
		c->stat[KSTAT_MMIO]++;
		board_mmio(c, run->mmio.phys_addr, run->mmio.data,
		           run->mmio.len, run->mmio.is_write);
		break;
	case KVM_EXIT_HLT:
		/* With the in-kernel irqchip HLT is handled by KVM; if
		 * one reaches us anyway, just go round again. */
		c->stat[KSTAT_HLT]++;
		break;
	case KVM_EXIT_SHUTDOWN:
		c->stat[KSTAT_SHUTDOWN]++;
		kvm_set_exit(vm, VM_EXIT_REBOOT, "vCPU %u: triple fault (shutdown)", c->id);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		c->stat[KSTAT_SYSTEM_EVENT]++;
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			kvm_set_exit(vm, VM_EXIT_POWEROFF, "system event: shutdown");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			kvm_set_exit(vm, VM_EXIT_REBOOT, "system event: reset");
		else
			kvm_set_exit(vm, VM_EXIT_ERROR, "system event %u",
			             run->system_event.type);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		c->stat[KSTAT_INTERNAL_ERROR]++;
		kvm_set_exit(vm, VM_EXIT_ERROR,
		             "vCPU %u: KVM internal error, suberror %u%s", c->id,
		             run->internal.suberror,
		             run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
		             ? " (emulation failure)" : "");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		c->stat[KSTAT_FAIL_ENTRY]++;
		kvm_set_exit(vm, VM_EXIT_ERROR, "vCPU %u: entry failed, reason 0x%llx",
		             c->id, (unsigned long long)
		         run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTR:
		c->stat[KSTAT_INTR]++;
		break;
	default:
		c->stat[KSTAT_OTHER]++;
		kvm_set_exit(vm, VM_EXIT_ERROR, "vCPU %u: unexpected exit %u", c->id,
		             run->exit_reason);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct kvm_vm *vm = c->vm;
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "vcpu%u", c->id);
	pthread_setname_np(pthread_self(), name);
	if (vm->sandbox && (rc = sandbox_enter(SANDBOX_VCPU)) < 0) {
		kvm_set_exit(vm, VM_EXIT_ERROR, "vCPU %u: seccomp filter: %s", c->id,
		             strerror(-rc));
		return NULL;
	}
	while (!park_if_paused(c)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->stat[KSTAT_INTR]++;
				continue;
			}
			kvm_set_exit(vm, VM_EXIT_ERROR, "vCPU %u: KVM_RUN: %s", c->id,
			             strerror(errno));
			break;
		}
		handle_exit(c);
	}
	return NULL;
}


static void kick_handler(int sig)
{
	(void)sig;  /* only there to interrupt KVM_RUN */
}


/* Make every vCPU thread leave KVM_RUN soon; vm->lock held. */
void vcpu_kick_all(struct kvm_vm *vm)
{
	unsigned i;
	for (i = 0; i < vm->ncpus; i++) {
		/* immediate_exit covers a thread that is about to enter
		 * KVM_RUN; the signal covers one that is inside it. */
		vm->vcpu[i].run->immediate_exit = 1;
		if (vm->vcpu[i].started)
			pthread_kill(vm->vcpu[i].thread, KICK_SIGNAL);
	}
}


/* A thread per vCPU, each running vcpu_thread; -1 with err set when one
 * cannot be made (the caller stops those that were). */
int vcpu_start_all(struct kvm_vm *vm, char *err, size_t errlen)
{
	struct sigaction sa;
	sigset_t all, old;
	unsigned i;
	int rc;

	/* The kick signal only interrupts KVM_RUN; it must not kill. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);

	/* vCPU threads take no signal but the kick: SIGINT and friends
	 * belong to the thread that runs Lua. */
	sigfillset(&all);
	sigdelset(&all, KICK_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < vm->ncpus; i++) {
		rc = pthread_create(&vm->vcpu[i].thread, NULL, vcpu_thread, &vm->vcpu[i]);
		if (rc) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return errbuf_set(err, errlen, "pthread_create: %s", strerror(rc));
		}
		vm->vcpu[i].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}


/*
 * CPUID as KVM supports it, with each vCPU's APIC id filled in, and the
 * two leaf-1 bits KVM leaves for the VMM to set (QEMU sets them too):
 *
 * - "hypervisor" (ECX bit 31).  Linux looks for KVM's signature leaf
 *   0x40000000 only when this bit is set.  Without it a guest takes
 *   itself for bare metal: no kvmclock, so no TSC frequency from the
 *   host; it calibrates the TSC against the PIT, and where the clock is
 *   slow and noisy (nested, a busy host) that fails.  With no HPET or PM
 *   timer to fall back on, the TSC is then marked unstable and the boot
 *   may hang ("tsc: Unable to calibrate against PIT").
 * - "TSC deadline timer" (ECX bit 24), which KVM's local APIC always
 *   emulates: the guest's APIC timer then needs no calibration either.
 */
int vcpu_setup_cpuid(struct kvm_vm *vm, struct vcpu *c, char *err, size_t len)
{
	struct kvm_cpuid2 *cpuid;
	unsigned n = 256, i;
	int rc = 0;
	int deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;

	cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return errbuf_set(err, len, "out of memory");
	cpuid->nent = n;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		rc = errbuf_set(err, len, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffff) | (c->id << 24);
			e->ebx = (e->ebx & 0xff00ffff) | (vm->ncpus << 16);
			e->ecx |= 1u << 31;
			if (deadline)
				e->ecx |= 1u << 24;
		}
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = c->id;
	}
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		rc = errbuf_set(err, len, "KVM_SET_CPUID2: %s", strerror(errno));
out:
	free(cpuid);
	return rc;
}


/*
 * The boot CPU's state for the 64-bit boot protocol: a flat GDT with a
 * 64-bit code segment at selector 0x10 and data at 0x18 (__BOOT_CS and
 * __BOOT_DS), page tables mapping the first 4 GiB one to one with 2 MiB
 * pages, long mode on, interrupts off, RSI pointing at boot_params.
 */
int vcpu_setup_boot(struct kvm_vm *vm, uint64_t entry,
                           uint64_t boot_params, char *err, size_t len)
{
	static const uint64_t gdt[4] = {
		0,
		0,
		0x00af9b000000ffffULL,   /* 0x10: code, 64-bit, present, DPL 0 */
		0x00cf93000000ffffULL,   /* 0x18: data, 4 GiB flat, writable */
	};
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x18, .type = 3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t *pml4, *pdpt, *pd, *g;
	struct vcpu *c = &vm->vcpu[0];
	unsigned i;

	g = memory_translate(vm->mem, X86_GDT_ADDR, sizeof(gdt));
	pml4 = memory_translate(vm->mem, X86_PML4, 4096);
	pdpt = memory_translate(vm->mem, X86_PDPT, 4096);
	pd = memory_translate(vm->mem, X86_PD, 4 * 4096);
	if (!g || !pml4 || !pdpt || !pd)
		return errbuf_set(err, len, "guest memory too small for the boot page tables");
	memcpy(g, gdt, sizeof(gdt));
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_PDPT | 0x3;                     /* present, writable */
	for (i = 0; i < 4; i++)
		pdpt[i] = (X86_PD + i * 4096ULL) | 0x3;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;       /* 2 MiB, present, writable */

	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		return errbuf_set(err, len, "KVM_GET_SREGS: %s", strerror(errno));
	sregs.gdt.base = X86_GDT_ADDR;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.cr3 = X86_PML4;
	sregs.cr4 = 0x20;                             /* PAE */
	sregs.cr0 = 0x80000011;                       /* PG, ET, PE */
	sregs.efer = 0x500;                           /* LME, LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0)
		return errbuf_set(err, len, "KVM_SET_SREGS: %s", strerror(errno));

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry;
	regs.rsi = boot_params;
	regs.rsp = X86_STACK_TOP;
	if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return errbuf_set(err, len, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}


int kvm_vm_regs(struct kvm_vm *vm, unsigned i, struct kvm_vcpu_regs *r)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (i >= vm->ncpus)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (vm->vcpu[i].started && !vm->paused && !vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&vm->lock);
	if (ioctl(vm->vcpu[i].fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vm->vcpu[i].fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	*r = (struct kvm_vcpu_regs){
		regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi,
		regs.rsp, regs.rbp, regs.r8, regs.r9, regs.r10, regs.r11,
		regs.r12, regs.r13, regs.r14, regs.r15, regs.rip, regs.rflags,
		sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer,
	};
	return 0;
}
