/*
 * kvm.c - the kvm backend: vmlua's own x86-64 machine on /dev/kvm.
 *
 * A KVM virtual machine is a file descriptor.  We give it our guest
 * memory as "memory slots", ask the kernel for the interrupt controllers
 * a PC has (the PIC, the IOAPIC, a local APIC per CPU) and its timer
 * (the PIT), and create one vCPU per processor.  Each vCPU gets a thread
 * of its own that calls KVM_RUN in a loop: the guest runs until it does
 * something the kernel does not handle itself, usually an access to an
 * I/O port, and then KVM_RUN returns and tells us what it was.  We play
 * the device it touched and go round again.
 *
 * The devices are the few a PC platform needs to boot and to stop (the
 * 8250 UART for the console, and the registers the ACPI tables point at
 * for power off and reset), and virtio-mmio windows served by the loop.
 *
 * A Linux kernel expects to be entered in 64-bit mode with paging on, so
 * before the first KVM_RUN we write a GDT and an identity map of the
 * first 4 GiB into guest memory and load the boot CPU's registers as the
 * boot protocol describes.  The other CPUs wait for the boot CPU's
 * INIT/SIPI in the in-kernel local APIC, as on real hardware.
 *
 * The thread that runs Lua never enters KVM_RUN: it waits on an eventfd
 * that the vCPU threads signal when there is console output to show or
 * when the machine stops.
 *
 * This file is the VM: /dev/kvm, memory slots, the irqchip and PIT, the
 * eventfds, and the machine's life (start, pause, resume, stop).  The
 * vCPUs are in kvm_vcpu.c, what their exits reach in kvm_board.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errbuf.h"
#include "kvm_int.h"
#include "memory.h"

static const char *const exit_names[VM_EXIT__COUNT] = {
	[VM_EXIT_NONE] = "none",
	[VM_EXIT_POWEROFF] = "poweroff",
	[VM_EXIT_REBOOT] = "reboot",
	[VM_EXIT_PANIC] = "panic",
	[VM_EXIT_ERROR] = "error",
};
_Static_assert(sizeof(exit_names) / sizeof(exit_names[0]) == VM_EXIT__COUNT,
               "one name per exit reason");

static const char *const stat_names[KSTAT__COUNT] = {
	[KSTAT_IO] = "io", [KSTAT_MMIO] = "mmio", [KSTAT_HLT] = "hlt",
	[KSTAT_SHUTDOWN] = "shutdown", [KSTAT_INTR] = "intr",
	[KSTAT_INTERNAL_ERROR] = "internal_error",
	[KSTAT_FAIL_ENTRY] = "fail_entry", [KSTAT_SYSTEM_EVENT] = "system_event",
	[KSTAT_OTHER] = "other",
};
_Static_assert(sizeof(stat_names) / sizeof(stat_names[0]) == KSTAT__COUNT,
               "one name per statistic");

const char *vm_exit_name(enum vm_exit e)
{
	return (unsigned)e < VM_EXIT__COUNT ? exit_names[e] : "?";
}

const char *kvm_stat_name(enum kvm_stat s)
{
	return (unsigned)s < KSTAT__COUNT ? stat_names[s] : "?";
}

int kvm_supported(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int v;

	if (fd < 0) {
		if (errno == ENOENT)
			errbuf_set(why, len, "/dev/kvm: not found: load the kvm module, or use the uml backend");
		else
			errbuf_set(why, len, "/dev/kvm: %s", strerror(errno));
		return 0;
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		errbuf_set(why, len, "/dev/kvm: API version %d, need %d", v, KVM_API_VERSION);
		close(fd);
		return 0;
	}
	if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0 ||
	    ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) <= 0) {
		errbuf_set(why, len, "/dev/kvm: lacks the in-kernel irqchip, PIT or immediate exit");
		close(fd);
		return 0;
	}
	close(fd);
	return 1;
}

int kvm_hardware(char *why, size_t len)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (f) {
		while (!found && fgets(line, sizeof(line), f))
			if (strncmp(line, "flags", 5) == 0)
				found = strstr(line, " vmx") || strstr(line, " svm");
		fclose(f);
	}
	if (found)
		return 1;
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		errbuf_set(why, len, "no hardware virtualization (kvm_pvm): stock kernels cannot boot here; use the uml backend");
	else
		errbuf_set(why, len, "no hardware virtualization (no vmx/svm CPU flag): stock kernels cannot boot here; use the uml backend");
	return 0;
}

static int keep_fd(struct kvm_vm *vm, int fd)
{
	if (vm->nfds == KVM_MAX_EVENTFDS) {
		close(fd);
		return -ENOSPC;
	}
	vm->fds[vm->nfds++] = fd;
	return fd;
}

int kvm_vm_ioeventfd(struct kvm_vm *vm, uint64_t addr, unsigned len,
                     uint64_t datamatch)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), e;
	struct kvm_ioeventfd io = {
		.datamatch = datamatch, .addr = addr, .len = len,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};

	if (fd < 0)
		return -errno;
	io.fd = fd;
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return keep_fd(vm, fd);
}

int kvm_vm_irqfd(struct kvm_vm *vm, unsigned gsi)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), e;
	struct kvm_irqfd irq = { .gsi = gsi };

	if (fd < 0)
		return -errno;
	irq.fd = (uint32_t)fd;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return keep_fd(vm, fd);
}

/* /dev/kvm, the VM, the loop's eventfd and the TSS Intel wants. */
static int open_vm(struct kvm_vm *vm, char *err, size_t errlen)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return errbuf_set(err, errlen, "/dev/kvm: %s", strerror(errno));
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return errbuf_set(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->event_fd < 0)
		return errbuf_set(err, errlen, "eventfd: %s", strerror(errno));
	/* Intel needs three pages for a TSS just below 4 GiB; elsewhere
	 * the call is harmless.  It sits in the hole, not in RAM. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		return errbuf_set(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	return 0;
}

/* Each RAM region of the Memory a memory slot. */
static int set_memory(struct kvm_vm *vm, const struct memory *mem, char *err, size_t errlen)
{
	unsigned i;

	for (i = 0; i < mem->nregions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = mem->region[i].gpa,
			.memory_size = mem->region[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)mem->region[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return errbuf_set(err, errlen, "KVM_SET_USER_MEMORY_REGION (slot %u at 0x%llx): %s",
			                  i, (unsigned long long)r.guest_phys_addr, strerror(errno));
	}
	return 0;
}

/* The PC's interrupt controllers and timer, in the kernel. */
static int create_irqchip(struct kvm_vm *vm, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = 0 };

	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return errbuf_set(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return errbuf_set(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
	return 0;
}

/* ncpus vCPUs, each with its kvm_run page mapped and its CPUID set. */
static int create_vcpus(struct kvm_vm *vm, unsigned ncpus, char *err, size_t errlen)
{
	int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	unsigned i;

	if (mmap_size < (int)sizeof(struct kvm_run))
		return errbuf_set(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->ncpus = ncpus;
	for (i = 0; i < ncpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		c->vm = vm;
		c->id = i;
		c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (c->fd < 0)
			return errbuf_set(err, errlen, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
		c->run_size = (size_t)mmap_size;
		c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (c->run == MAP_FAILED) {
			c->run = NULL;
			return errbuf_set(err, errlen, "mmap of vCPU %u: %s", i, strerror(errno));
		}
		if (vcpu_setup_cpuid(vm, c, err, errlen) < 0)
			return -1;
	}
	return 0;
}

struct kvm_vm *kvm_vm_create(struct memory *mem, unsigned ncpus,
                             char *err, size_t errlen)
{
	struct kvm_vm *vm;
	unsigned i;

	if (ncpus < 1 || ncpus > KVM_MAX_VCPUS) {
		errbuf_set(err, errlen, "cpus must be 1..%d, got %u", KVM_MAX_VCPUS, ncpus);
		return NULL;
	}
	if (!kvm_supported(err, errlen))
		return NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	vm->kvm_fd = vm->vm_fd = vm->event_fd = -1;
	vm->mem = mem;
	vm->sandbox = 1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	board_init(vm);
	for (i = 0; i < KVM_MAX_VCPUS; i++)
		vm->vcpu[i].fd = -1;
	if (open_vm(vm, err, errlen) || set_memory(vm, mem, err, errlen) ||
	    create_irqchip(vm, err, errlen) || create_vcpus(vm, ncpus, err, errlen)) {
		kvm_vm_destroy(vm);
		return NULL;
	}
	return vm;
}

void kvm_vm_set_sandbox(struct kvm_vm *vm, int on)
{
	vm->sandbox = on;
}

int kvm_vm_start(struct kvm_vm *vm, uint64_t entry, uint64_t boot_params,
                 char *err, size_t errlen)
{
	if (vm->vcpu[0].started)
		return errbuf_set(err, errlen, "the machine was started already");
	if (vcpu_setup_boot(vm, entry, boot_params, err, errlen) < 0)
		return -1;
	if (vcpu_start_all(vm, err, errlen) < 0) {
		kvm_vm_stop(vm);
		return -1;
	}
	return 0;
}

void kvm_vm_stop(struct kvm_vm *vm)
{
	unsigned i;

	pthread_mutex_lock(&vm->lock);
	vm->stopping = 1;
	vcpu_kick_all(vm);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	for (i = 0; i < vm->ncpus; i++) {
		if (!vm->vcpu[i].started)
			continue;
		/* A thread may have been between its check and KVM_RUN when
		 * we kicked; immediate_exit catches that, and a second kick
		 * costs nothing. */
		pthread_kill(vm->vcpu[i].thread, KICK_SIGNAL);
		pthread_join(vm->vcpu[i].thread, NULL);
		vm->vcpu[i].started = 0;
	}
}

void kvm_vm_pause(struct kvm_vm *vm)
{
	unsigned running = 0, i;

	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < vm->ncpus; i++)
		running += vm->vcpu[i].started;
	vm->paused = 1;
	vcpu_kick_all(vm);
	while (vm->parked < running && !vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		/* A thread blocked in KVM_RUN (an AP waiting for SIPI, a
		 * halted CPU) needs the signal to come out. */
		for (i = 0; i < vm->ncpus; i++)
			if (vm->vcpu[i].started)
				pthread_kill(vm->vcpu[i].thread, KICK_SIGNAL);
		/* A vCPU waiting for its MMIO answer cannot park until the
		 * loop - this thread - gives it. */
		kvm_vm_service(vm);
		usleep(1000);
		pthread_mutex_lock(&vm->lock);
	}
	pthread_mutex_unlock(&vm->lock);
}

void kvm_vm_resume(struct kvm_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->paused = 0;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void kvm_vm_destroy(struct kvm_vm *vm)
{
	unsigned i;

	if (!vm)
		return;
	kvm_vm_stop(vm);
	for (i = 0; i < KVM_MAX_VCPUS; i++) {
		if (vm->vcpu[i].run)
			munmap(vm->vcpu[i].run, vm->vcpu[i].run_size);
		if (vm->vcpu[i].fd >= 0)
			close(vm->vcpu[i].fd);
	}
	for (i = 0; i < vm->nfds; i++)
		close(vm->fds[i]);
	if (vm->event_fd >= 0)
		close(vm->event_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	free(vm);
}

int kvm_vm_event_fd(const struct kvm_vm *vm)
{
	return vm->event_fd;
}

enum vm_exit kvm_vm_exit_reason(struct kvm_vm *vm, char *detail, size_t len)
{
	enum vm_exit e;
	pthread_mutex_lock(&vm->lock);
	e = vm->exit;
	if (detail)
		snprintf(detail, len, "%s", vm->exit_detail);
	pthread_mutex_unlock(&vm->lock);
	return e;
}

void kvm_vm_stats(struct kvm_vm *vm, uint64_t out[KSTAT__COUNT])
{
	unsigned i, s;

	/* Counters are written by their own threads without a lock; a
	 * 64-bit aligned load is atomic on x86-64, and a count read while
	 * it runs is at most one behind. */
	memset(out, 0, KSTAT__COUNT * sizeof(out[0]));
	for (i = 0; i < vm->ncpus; i++)
		for (s = 0; s < KSTAT__COUNT; s++)
			out[s] += __atomic_load_n(&vm->vcpu[i].stat[s], __ATOMIC_RELAXED);
}

unsigned kvm_vm_ncpus(const struct kvm_vm *vm)
{
	return vm->ncpus;
}

