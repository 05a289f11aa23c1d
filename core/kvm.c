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
 * The devices of this file are the few a PC platform needs to boot and
 * to stop: the 8250 UART for the console, and the registers the ACPI
 * tables point at for power off and reset.  Virtio devices come later.
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
 * Each vCPU thread is named "vcpuN" (as /proc and top show it) and, once
 * it runs, loads the vCPU seccomp filter (sandbox.c) before its first
 * KVM_RUN: the guest's exits are handled by a thread that may only run
 * the vCPU, raise an interrupt, take locks and wake the loop.
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
#include "kvm.h"
#include "sandbox.h"
#include "uart.h"
#include "x86.h"

#define OUTBUF (64 * 1024)
#define INBUF  (4 * 1024)
#define KICK_SIGNAL SIGUSR1

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

/* An access to a loop-served region, posted by a vCPU. */
struct mmio_req {
	unsigned region;
	uint64_t off;
	unsigned size;
	int is_write;
	uint64_t data;
	int state;                     /* 0 idle, 1 posted, 2 answered */
};

struct mmio_region {
	uint64_t base, size;
	kvm_mmio_read_fn rd;
	kvm_mmio_write_fn wr;
	void *opaque;
};

#define KVM_MAX_MMIO 32
#define KVM_MAX_EVENTFDS 512

struct vcpu {
	struct mmio_req req;           /* under vm->lock */
	struct kvm_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	int started;
	uint64_t stat[KSTAT__COUNT];   /* written by this vCPU's thread only */
};

struct kvm_vm {
	int kvm_fd, vm_fd;
	struct memory *mem;
	unsigned ncpus;
	int sandbox;                  /* load the seccomp filter in vCPU threads */
	struct vcpu vcpu[KVM_MAX_VCPUS];
	int event_fd;
	struct mmio_region mmio[KVM_MAX_MMIO];
	unsigned nmmio;
	int fds[KVM_MAX_EVENTFDS];     /* ioeventfds and irqfds to close */
	unsigned nfds;

	/* Everything below is shared between vCPU threads and the loop. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping;                 /* threads must leave */
	int paused;                   /* threads must park */
	unsigned parked;              /* how many have parked */
	enum vm_exit exit;
	char exit_detail[256];
	struct uart uart;
	char out[OUTBUF];             /* console output not yet taken */
	size_t out_len;
	char in[INBUF];               /* console input not yet in the FIFO */
	size_t in_head, in_len;
};

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

/* Called by the UART with vm->lock held: queue a byte for the loop. */
static void console_tx(void *opaque, uint8_t byte)
{
	struct kvm_vm *vm = opaque;
	uint64_t one = 1;

	/* Backpressure: wait for the loop to take what we have. */
	while (vm->out_len == OUTBUF && !vm->stopping)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->out_len == OUTBUF)
		return;
	vm->out[vm->out_len++] = (char)byte;
	if (vm->out_len == 1 || byte == '\n')
		if (write(vm->event_fd, &one, sizeof(one)) < 0) {
			/* eventfd counter full: the loop is behind, no matter */
		}
}

/* Move queued input into the UART FIFO; vm->lock held. */
static void refill_uart(struct kvm_vm *vm)
{
	while (vm->in_len && uart_rx_room(&vm->uart)) {
		uint8_t b = (uint8_t)vm->in[vm->in_head];
		uart_receive(&vm->uart, &b, 1);
		vm->in_head = (vm->in_head + 1) % INBUF;
		vm->in_len--;
	}
}

/* Drive IRQ 4 from the UART's state; vm->lock held. */
static void update_uart_irq(struct kvm_vm *vm)
{
	struct kvm_irq_level irq = {
		.irq = X86_UART_IRQ,
		.level = (uint32_t)uart_irq_level(&vm->uart),
	};
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

/* Record the first reason the machine stopped and wake the loop. */
static void set_exit(struct kvm_vm *vm, enum vm_exit why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_exit(struct kvm_vm *vm, enum vm_exit why, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (vm->exit == VM_EXIT_NONE) {
		vm->exit = why;
		va_start(ap, fmt);
		vsnprintf(vm->exit_detail, sizeof(vm->exit_detail), fmt, ap);
		va_end(ap);
	}
	vm->stopping = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (write(vm->event_fd, &one, sizeof(one)) < 0) {
		/* as above */
	}
}

/*
 * One port access.  `data` points into the kvm_run page, which the guest
 * cannot reach; its size was checked by our caller.  Ports we do not
 * model read as all ones and ignore writes, as an empty ISA bus does.
 */
static void handle_io(struct vcpu *c, uint16_t port, int out, uint8_t *data,
                      unsigned size)
{
	struct kvm_vm *vm = c->vm;

	if (port >= X86_UART_PORT && port < X86_UART_PORT + 8 && size == 1) {
		pthread_mutex_lock(&vm->lock);
		if (out) {
			uart_write(&vm->uart, port - X86_UART_PORT, data[0]);
		} else {
			data[0] = uart_read(&vm->uart, port - X86_UART_PORT);
			refill_uart(vm);
		}
		update_uart_irq(vm);
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	if (!out) {
		memset(data, 0xff, size);
		if (port == X86_PM_SLEEP_STS)
			data[0] = 0;
		return;
	}
	switch (port) {
	case X86_PM_SLEEP_CTL:
		/* SLP_EN with SLP_TYP S5 is soft-off; other sleep types are
		 * not offered by the DSDT and are ignored. */
		if ((data[0] & X86_SLP_EN) &&
		    ((data[0] >> 2) & 7) == X86_SLP_TYP_S5)
			set_exit(vm, VM_EXIT_POWEROFF,
			         "guest wrote 0x%02x to the sleep control register",
			         data[0]);
		break;
	case X86_RESET_PORT:
		if (data[0] & 0x04)
			set_exit(vm, VM_EXIT_REBOOT,
			         "guest wrote 0x%02x to the reset register", data[0]);
		break;
	case X86_I8042_PORT:
		if (data[0] == 0xfe)
			set_exit(vm, VM_EXIT_REBOOT, "guest pulsed reset through the i8042");
		break;
	case X86_PVPANIC_PORT:
		if (data[0] & 1)
			set_exit(vm, VM_EXIT_PANIC, "guest signalled pvpanic");
		break;
	default:
		break;
	}
}

/*
 * An MMIO access.  For a loop-served region we post it and wait for the
 * answer; anywhere else reads see all ones and writes vanish.  `data`
 * is in the kvm_run page and len (from the kernel) is checked.
 */
static void handle_mmio(struct vcpu *c, uint64_t addr, uint8_t *data,
                        uint32_t len, int is_write)
{
	struct kvm_vm *vm = c->vm;
	uint64_t v = 0;
	unsigned i;

	if (len == 0 || len > 8)
		return;
	for (i = 0; i < vm->nmmio; i++)
		if (addr >= vm->mmio[i].base && addr - vm->mmio[i].base < vm->mmio[i].size)
			break;
	if (i == vm->nmmio) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write)
		memcpy(&v, data, len);
	pthread_mutex_lock(&vm->lock);
	c->req = (struct mmio_req){ i, addr - vm->mmio[i].base, len, is_write, v, 1 };
	pthread_mutex_unlock(&vm->lock);
	{
		uint64_t one = 1;
		if (write(vm->event_fd, &one, sizeof(one)) < 0) {
			/* counter full: the loop is awake anyway */
		}
	}
	pthread_mutex_lock(&vm->lock);
	while (c->req.state == 1 && !vm->stopping)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (c->req.state == 2 && !is_write)
		memcpy(data, &c->req.data, len);
	c->req.state = 0;
	pthread_mutex_unlock(&vm->lock);
}

int kvm_vm_service(struct kvm_vm *vm)
{
	unsigned i;
	int served = 0;
	uint64_t n;

	/* Take the wakeup before looking at the requests: one posted after
	 * this read writes the eventfd again, so the loop's next poll sees
	 * it.  Taken after (as kvm_vm_output once did), a request posted
	 * in between lost its wakeup and waited out the poll timeout. */
	if (read(vm->event_fd, &n, sizeof(n)) < 0) {
		/* nothing pending: fine */
	}
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		struct mmio_req r;
		struct mmio_region *m;

		pthread_mutex_lock(&vm->lock);
		r = c->req;
		pthread_mutex_unlock(&vm->lock);
		if (r.state != 1)
			continue;
		/* The handler may run Lua hooks: no lock held here. */
		m = &vm->mmio[r.region];
		if (r.is_write)
			m->wr(m->opaque, r.off, r.size, r.data);
		else
			r.data = m->rd(m->opaque, r.off, r.size);
		pthread_mutex_lock(&vm->lock);
		c->req.data = r.data;
		c->req.state = 2;
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
		served++;
	}
	return served;
}

int kvm_vm_add_mmio(struct kvm_vm *vm, uint64_t base, uint64_t size,
                    kvm_mmio_read_fn rd, kvm_mmio_write_fn wr, void *opaque)
{
	if (vm->nmmio == KVM_MAX_MMIO || vm->vcpu[0].started)
		return -ENOSPC;
	vm->mmio[vm->nmmio++] = (struct mmio_region){ base, size, rd, wr, opaque };
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

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct kvm_vm *vm = c->vm;
	struct kvm_run *run = c->run;
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "vcpu%u", c->id);
	pthread_setname_np(pthread_self(), name);
	if (vm->sandbox && (rc = sandbox_enter(SANDBOX_VCPU)) < 0) {
		set_exit(vm, VM_EXIT_ERROR, "vCPU %u: seccomp filter: %s", c->id,
		         strerror(-rc));
		return NULL;
	}
	while (!park_if_paused(c)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->stat[KSTAT_INTR]++;
				continue;
			}
			set_exit(vm, VM_EXIT_ERROR, "vCPU %u: KVM_RUN: %s", c->id,
			         strerror(errno));
			break;
		}
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
				set_exit(vm, VM_EXIT_ERROR, "vCPU %u: malformed I/O exit", c->id);
				break;
			}
			p = (uint8_t *)run + run->io.data_offset;
			for (i = 0; i < run->io.count; i++)
				handle_io(c, run->io.port,
				          run->io.direction == KVM_EXIT_IO_OUT,
				          p + (size_t)i * run->io.size, run->io.size);
			break;
		}
		case KVM_EXIT_MMIO:
			c->stat[KSTAT_MMIO]++;
			handle_mmio(c, run->mmio.phys_addr, run->mmio.data,
			            run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_HLT:
			/* With the in-kernel irqchip HLT is handled by KVM; if
			 * one reaches us anyway, just go round again. */
			c->stat[KSTAT_HLT]++;
			break;
		case KVM_EXIT_SHUTDOWN:
			c->stat[KSTAT_SHUTDOWN]++;
			set_exit(vm, VM_EXIT_REBOOT, "vCPU %u: triple fault (shutdown)", c->id);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			c->stat[KSTAT_SYSTEM_EVENT]++;
			if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
				set_exit(vm, VM_EXIT_POWEROFF, "system event: shutdown");
			else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
				set_exit(vm, VM_EXIT_REBOOT, "system event: reset");
			else
				set_exit(vm, VM_EXIT_ERROR, "system event %u",
				         run->system_event.type);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			c->stat[KSTAT_INTERNAL_ERROR]++;
			set_exit(vm, VM_EXIT_ERROR,
			         "vCPU %u: KVM internal error, suberror %u%s", c->id,
			         run->internal.suberror,
			         run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
			         ? " (emulation failure)" : "");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			c->stat[KSTAT_FAIL_ENTRY]++;
			set_exit(vm, VM_EXIT_ERROR, "vCPU %u: entry failed, reason 0x%llx",
			         c->id, (unsigned long long)
			         run->fail_entry.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTR:
			c->stat[KSTAT_INTR]++;
			break;
		default:
			c->stat[KSTAT_OTHER]++;
			set_exit(vm, VM_EXIT_ERROR, "vCPU %u: unexpected exit %u", c->id,
			         run->exit_reason);
			break;
		}
	}
	return NULL;
}

static void kick_handler(int sig)
{
	(void)sig;  /* only there to interrupt KVM_RUN */
}

/* Make every vCPU thread leave KVM_RUN soon; vm->lock held. */
static void kick_all(struct kvm_vm *vm)
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
static int setup_cpuid(struct kvm_vm *vm, struct vcpu *c, char *err, size_t len)
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

struct kvm_vm *kvm_vm_create(struct memory *mem, unsigned ncpus,
                             char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = 0 };
	struct kvm_vm *vm;
	int mmap_size;
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
	vm->vm_fd = vm->event_fd = -1;
	vm->mem = mem;
	vm->sandbox = 1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	uart_init(&vm->uart, console_tx, vm);
	for (i = 0; i < KVM_MAX_VCPUS; i++)
		vm->vcpu[i].fd = -1;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		errbuf_set(err, errlen, "/dev/kvm: %s", strerror(errno));
		goto bad;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		errbuf_set(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		goto bad;
	}
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->event_fd < 0) {
		errbuf_set(err, errlen, "eventfd: %s", strerror(errno));
		goto bad;
	}
	/* Intel needs three pages for a TSS just below 4 GiB; elsewhere
	 * the call is harmless.  It sits in the hole, not in RAM. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) {
		errbuf_set(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto bad;
	}
	for (i = 0; i < mem->nregions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = mem->region[i].gpa,
			.memory_size = mem->region[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)mem->region[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
			errbuf_set(err, errlen, "KVM_SET_USER_MEMORY_REGION (slot %u at 0x%llx): %s",
			     i, (unsigned long long)r.guest_phys_addr, strerror(errno));
			goto bad;
		}
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		errbuf_set(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto bad;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		errbuf_set(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
		goto bad;
	}
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		errbuf_set(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto bad;
	}
	vm->ncpus = ncpus;
	for (i = 0; i < ncpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		c->vm = vm;
		c->id = i;
		c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (c->fd < 0) {
			errbuf_set(err, errlen, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			goto bad;
		}
		c->run_size = (size_t)mmap_size;
		c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		              c->fd, 0);
		if (c->run == MAP_FAILED) {
			c->run = NULL;
			errbuf_set(err, errlen, "mmap of vCPU %u: %s", i, strerror(errno));
			goto bad;
		}
		if (setup_cpuid(vm, c, err, errlen) < 0)
			goto bad;
	}
	return vm;
bad:
	kvm_vm_destroy(vm);
	return NULL;
}

/*
 * The boot CPU's state for the 64-bit boot protocol: a flat GDT with a
 * 64-bit code segment at selector 0x10 and data at 0x18 (__BOOT_CS and
 * __BOOT_DS), page tables mapping the first 4 GiB one to one with 2 MiB
 * pages, long mode on, interrupts off, RSI pointing at boot_params.
 */
static int setup_boot_cpu(struct kvm_vm *vm, uint64_t entry,
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

void kvm_vm_set_sandbox(struct kvm_vm *vm, int on)
{
	vm->sandbox = on;
}

int kvm_vm_start(struct kvm_vm *vm, uint64_t entry, uint64_t boot_params,
                 char *err, size_t errlen)
{
	struct sigaction sa;
	sigset_t all, old;
	unsigned i;
	int rc;

	if (vm->vcpu[0].started)
		return errbuf_set(err, errlen, "the machine was started already");
	if (setup_boot_cpu(vm, entry, boot_params, err, errlen) < 0)
		return -1;

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
		rc = pthread_create(&vm->vcpu[i].thread, NULL, vcpu_thread,
		                    &vm->vcpu[i]);
		if (rc) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			kvm_vm_stop(vm);
			return errbuf_set(err, errlen, "pthread_create: %s", strerror(rc));
		}
		vm->vcpu[i].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

void kvm_vm_stop(struct kvm_vm *vm)
{
	unsigned i;

	pthread_mutex_lock(&vm->lock);
	vm->stopping = 1;
	kick_all(vm);
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
	kick_all(vm);
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

size_t kvm_vm_output(struct kvm_vm *vm, char *buf, size_t max)
{
	size_t take;

	pthread_mutex_lock(&vm->lock);
	take = vm->out_len < max ? vm->out_len : max;
	memcpy(buf, vm->out, take);
	memmove(vm->out, vm->out + take, vm->out_len - take);
	vm->out_len -= take;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return take;
}

size_t kvm_vm_input(struct kvm_vm *vm, const char *buf, size_t len)
{
	size_t i;

	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < len && vm->in_len < INBUF; i++) {
		vm->in[(vm->in_head + vm->in_len) % INBUF] = buf[i];
		vm->in_len++;
	}
	refill_uart(vm);
	if (vm->vm_fd >= 0)
		update_uart_irq(vm);
	pthread_mutex_unlock(&vm->lock);
	return i;
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
