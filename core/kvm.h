/*
 * kvm.h - the kvm backend: one x86-64 machine on /dev/kvm.  See kvm.c.
 * Nothing here knows Lua; lvm.c binds it.
 */
#ifndef VMLUA_KVM_H
#define VMLUA_KVM_H

#include <stddef.h>
#include <stdint.h>
#include "memory.h"

#define KVM_MAX_VCPUS 64

enum vm_exit {
	VM_EXIT_NONE = 0,     /* still running (or never started) */
	VM_EXIT_POWEROFF,     /* FADT sleep register, SLP_TYP S5 */
	VM_EXIT_REBOOT,       /* reset register, i8042 0xfe, triple fault */
	VM_EXIT_PANIC,        /* pvpanic (the console watcher is in Lua) */
	VM_EXIT_ERROR,        /* KVM could not go on: internal error, bad entry */
	VM_EXIT__COUNT
};
const char *vm_exit_name(enum vm_exit e);

/* Exit statistics, by KVM exit reason, summed over vCPUs. */
enum kvm_stat {
	KSTAT_IO, KSTAT_MMIO, KSTAT_HLT, KSTAT_SHUTDOWN, KSTAT_INTR,
	KSTAT_INTERNAL_ERROR, KSTAT_FAIL_ENTRY, KSTAT_SYSTEM_EVENT, KSTAT_OTHER,
	KSTAT__COUNT
};
const char *kvm_stat_name(enum kvm_stat s);

struct kvm_vm;

/* Is /dev/kvm usable?  1, or 0 with the reason in why. */
int kvm_supported(char *why, size_t len);
/* Is it backed by vmx/svm?  1, or 0 with the reason in why. */
int kvm_hardware(char *why, size_t len);

/* A machine with `ncpus` vCPUs over `mem`, not yet running. */
struct kvm_vm *kvm_vm_create(struct memory *mem, unsigned ncpus,
                             char *err, size_t errlen);
/* Whether vCPU threads load their seccomp filter (sandbox.c) before
 * they first run the guest; on unless turned off before start. */
void kvm_vm_set_sandbox(struct kvm_vm *vm, int on);
/* Write the boot CPU state (GDT, identity page tables, long mode) and
 * start one thread per vCPU at `entry` with RSI = boot_params. */
int kvm_vm_start(struct kvm_vm *vm, uint64_t entry, uint64_t boot_params,
                 char *err, size_t errlen);
/* Stop every vCPU thread; idempotent.  The exit reason stays. */
void kvm_vm_stop(struct kvm_vm *vm);
void kvm_vm_destroy(struct kvm_vm *vm);

/* Pause (threads park outside KVM_RUN) and resume. */
void kvm_vm_pause(struct kvm_vm *vm);
void kvm_vm_resume(struct kvm_vm *vm);

/* Readable when there is console output, a posted MMIO access or the
 * machine has exited; kvm_vm_service() clears it. */
int kvm_vm_event_fd(const struct kvm_vm *vm);
/* Take up to max bytes of console output. */
size_t kvm_vm_output(struct kvm_vm *vm, char *buf, size_t max);
/* Queue bytes for the UART; returns how many were taken. */
size_t kvm_vm_input(struct kvm_vm *vm, const char *buf, size_t len);
/* Why the machine stopped, and a detail line. */
enum vm_exit kvm_vm_exit_reason(struct kvm_vm *vm, char *detail, size_t len);
void kvm_vm_stats(struct kvm_vm *vm, uint64_t out[KSTAT__COUNT]);
unsigned kvm_vm_ncpus(const struct kvm_vm *vm);

/*
 * Guest-physical regions whose accesses are served on the loop thread
 * (the thread that runs Lua): a vCPU that touches one posts the access
 * and waits for kvm_vm_service() to answer it.  Added before start.
 */
typedef uint64_t (*kvm_mmio_read_fn)(void *opaque, uint64_t off, unsigned size);
typedef void (*kvm_mmio_write_fn)(void *opaque, uint64_t off, unsigned size,
                                  uint64_t val);
int kvm_vm_add_mmio(struct kvm_vm *vm, uint64_t base, uint64_t size,
                    kvm_mmio_read_fn rd, kvm_mmio_write_fn wr, void *opaque);
/* Clear the event, then serve the accesses vCPUs have posted; returns
 * how many.  Call it before kvm_vm_output() and before polling. */
int kvm_vm_service(struct kvm_vm *vm);
/* An eventfd KVM signals when the guest writes `datamatch` (len bytes)
 * at `addr`, without an exit to us; or -errno. */
int kvm_vm_ioeventfd(struct kvm_vm *vm, uint64_t addr, unsigned len,
                     uint64_t datamatch);
/* An eventfd that injects an edge on `gsi` when written; or -errno. */
int kvm_vm_irqfd(struct kvm_vm *vm, unsigned gsi);

/* General registers of vCPU i (only while paused or stopped). */
struct kvm_vcpu_regs { uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp,
	r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags, cr0, cr3, cr4, efer; };
int kvm_vm_regs(struct kvm_vm *vm, unsigned i, struct kvm_vcpu_regs *r);

#endif
