/*
 * kvm_int.h - what the kvm backend's three files share: the machine and
 * its vCPUs as structs, and the calls between them.  kvm.c (the VM) uses
 * kvm_vcpu.c (the vCPUs), which uses kvm_board.c (what their exits
 * reach); nothing calls back up.  Nothing outside these files includes
 * this header: the rest of vmlua sees kvm.h.
 */
#ifndef VMLUA_KVM_INT_H
#define VMLUA_KVM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm.h"
#include "uart.h"

#define OUTBUF (64 * 1024)
#define INBUF  (4 * 1024)
#define KICK_SIGNAL SIGUSR1
#define KVM_MAX_MMIO 32
#define KVM_MAX_EVENTFDS 512

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

/* kvm_board.c */
void board_init(struct kvm_vm *vm);
void board_io(struct vcpu *c, uint16_t port, int out, uint8_t *data, unsigned size);
void board_mmio(struct vcpu *c, uint64_t addr, uint8_t *data, uint32_t len, int is_write);
/* Record the first reason the machine stopped and wake the loop. */
void kvm_set_exit(struct kvm_vm *vm, enum vm_exit why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* kvm_vcpu.c */
int vcpu_setup_cpuid(struct kvm_vm *vm, struct vcpu *c, char *err, size_t len);
int vcpu_setup_boot(struct kvm_vm *vm, uint64_t entry, uint64_t boot_params,
                    char *err, size_t len);
int vcpu_start_all(struct kvm_vm *vm, char *err, size_t errlen);
/* Make every vCPU thread leave KVM_RUN soon; vm->lock held. */
void vcpu_kick_all(struct kvm_vm *vm);

#endif
