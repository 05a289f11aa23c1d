/*
 * kvm_board.c - the kvm backend's board: what a vCPU's port and MMIO
 * accesses reach.  The 8250 UART (its bytes queued for the loop, its
 * input fed from the loop), the registers the ACPI tables point at for
 * power off and reset, pvpanic, and the MMIO regions that the thread
 * running Lua serves (virtio-mmio): a vCPU posts its access and waits,
 * the loop answers in kvm_vm_service.  Also where a machine's end is
 * recorded (kvm_set_exit), whoever finds it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_int.h"
#include "x86.h"

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


/* The board's devices: the UART, whose output the loop takes. */
void board_init(struct kvm_vm *vm)
{
	uart_init(&vm->uart, console_tx, vm);
}


/* Record the first reason the machine stopped and wake the loop. */
void kvm_set_exit(struct kvm_vm *vm, enum vm_exit why, const char *fmt, ...)
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
void board_io(struct vcpu *c, uint16_t port, int out, uint8_t *data,
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
			kvm_set_exit(vm, VM_EXIT_POWEROFF,
			             "guest wrote 0x%02x to the sleep control register",
			             data[0]);
		break;
	case X86_RESET_PORT:
		if (data[0] & 0x04)
			kvm_set_exit(vm, VM_EXIT_REBOOT,
			             "guest wrote 0x%02x to the reset register", data[0]);
		break;
	case X86_I8042_PORT:
		if (data[0] == 0xfe)
			kvm_set_exit(vm, VM_EXIT_REBOOT, "guest pulsed reset through the i8042");
		break;
	case X86_PVPANIC_PORT:
		if (data[0] & 1)
			kvm_set_exit(vm, VM_EXIT_PANIC, "guest signalled pvpanic");
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
void board_mmio(struct vcpu *c, uint64_t addr, uint8_t *data,
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
