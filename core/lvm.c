/*
 * lvm.c - vmlua.VM for the kvm backend, as seen from Lua.
 *
 * This binding gives Lua the primitives: create a machine over a Memory,
 * start it at an entry point, poll it for console output and its exit,
 * send it console input, pause, resume, stop.  Policy (teeing the
 * console, logs, events, the state machine, timeouts) lives in the Lua
 * layer, lua/vmlua/vm.lua, which is what scripts use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdlib.h>

#include "loop.h"
#include "clock.h"
#include "device.h"
#include "kvm.h"
#include "memory.h"
#include "mmio.h"
#include "ttyesc.h"
#include "vmlua.h"
#include "x86.h"

#define LVM_OTHER_FDS 256     /* the other machines' fds a poll watches */
#define LVM_MAX_DEVICES 32

/* A virtio device on this machine's virtio-mmio transport. */
struct lvm_dev {
	struct mmio_transport t;
	struct vdev *dev;
	int irqfd;                         /* -1 if KVM had none */
	int notify_fd[VDEV_MAX_QUEUES];    /* ioeventfds, -1 where none */
};

struct lvm {
	struct kvm_vm *vm;     /* NULL once closed */
	struct memory *mem;
	int started;
	int input_fd;          /* console input polled by :poll(), or -1 */
	int escape;            /* input is a person's keys: Ctrl-A x quits */
	struct ttyesc esc;
	struct lvm_dev *devs[LVM_MAX_DEVICES];
	unsigned ndevs;
};

static struct lvm *checkvm(lua_State *L, int idx)
{
	struct lvm *v = luaL_checkudata(L, idx, VMLUA_VM);
	if (!v->vm)
		luaL_error(L, "attempt to use a closed " VMLUA_VM);
	return v;
}

/* vm{ memory = Memory, cpus = N, sandbox = bool } -> VM, or nil, message
 * (sandbox: the vCPU threads' seccomp filter, on unless false) */
static int l_vm(lua_State *L)
{
	char err[256];
	struct memory *mem;
	struct lvm *v;
	lua_Integer cpus;
	int sandbox;

	vmlua_checknargs(L, 1);
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getfield(L, 1, "memory") == LUA_TNIL)
		luaL_argerror(L, 1, "field 'memory' is required");
	if (!luaL_testudata(L, -1, VMLUA_MEMORY))
		luaL_argerror(L, 1, "field 'memory' must be a vmlua.Memory");
	mem = vmlua_checkmemory(L, -1);
	lua_getfield(L, 1, "cpus");
	if (lua_isnil(L, -1))
		cpus = 1;
	else if (!lua_isinteger(L, -1))
		return luaL_argerror(L, 1, "field 'cpus' must be an integer");
	else
		cpus = lua_tointeger(L, -1);
	if (cpus < 1 || cpus > KVM_MAX_VCPUS)
		return luaL_argerror(L, 1, lua_pushfstring(L,
		        "field 'cpus' must be 1..%d, got %I", KVM_MAX_VCPUS, cpus));
	lua_pop(L, 1);
	sandbox = vmlua_optboolean(L, 1, "sandbox", 1);

	v = lua_newuserdatauv(L, sizeof(*v), 2);
	memset(v, 0, sizeof(*v));
	v->mem = mem;
	v->input_fd = -1;
	luaL_setmetatable(L, VMLUA_VM);
	/* The VM keeps its Memory and its Devices alive. */
	lua_pushvalue(L, -2);
	lua_setiuservalue(L, -2, 1);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 2);
	v->vm = kvm_vm_create(mem, (unsigned)cpus, err, sizeof(err));
	if (!v->vm)
		return vmlua_fail(L, err);
	kvm_vm_set_sandbox(v->vm, sandbox);
	return 1;
}

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
	struct lvm_dev *ld = opaque;
	return mmio_read(&ld->t, off, size);
}

static void dev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct lvm_dev *ld = opaque;
	mmio_write(&ld->t, off, size, val);
}

/* The device wants the guest's attention: an edge on its GSI. */
static void dev_interrupt(struct vdev *d, int q)
{
	(void)q;   /* one line for every cause: the guest reads InterruptStatus */
	struct lvm_dev *ld = d->transport;
	uint64_t one = 1;
	if (ld && ld->irqfd >= 0 && write(ld->irqfd, &one, sizeof(one)) < 0) {
		/* counter full: an interrupt is pending anyway */
	}
}

/*
 * vm:add_device(device, base, gsi): put a vmlua.Device on the machine's
 * virtio-mmio transport at window `base` with interrupt `gsi` (the ACPI
 * tables must say the same).  Before start.
 */
static int m_add_device(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	struct vdev *d = vmlua_checkdevice(L, 2);
	uint64_t base = vmlua_checkaddr(L, 3);
	lua_Integer gsi = luaL_checkinteger(L, 4);
	struct lvm_dev *ld;
	unsigned q;
	int rc;

	vmlua_checknargs(L, 4);
	if (v->started)
		return luaL_error(L, "devices are added before the machine starts");
	luaL_argcheck(L, base >= 0xc0000000ULL && base + MMIO_WINDOW_SIZE <= 0xfec00000ULL &&
	              base % 0x200 == 0, 3, "window must be 512-byte aligned in the 32-bit hole");
	luaL_argcheck(L, gsi >= 5 && gsi <= 23, 4, "gsi must be 5..23");
	if (d->transport)
		return luaL_argerror(L, 2, "device is already on a machine");
	if (v->ndevs == LVM_MAX_DEVICES)
		return luaL_error(L, "at most %d devices", LVM_MAX_DEVICES);
	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return luaL_error(L, "out of memory");
	mmio_init(&ld->t, d);
	ld->dev = d;
	/* The interrupt first: once the MMIO table holds ld, ld must live
	 * as long as the machine, so nothing may fail after it. */
	ld->irqfd = kvm_vm_irqfd(v->vm, (unsigned)gsi);
	if (ld->irqfd < 0) {
		int e = -ld->irqfd;
		free(ld);
		lua_pushnil(L);
		lua_pushfstring(L, "KVM_IRQFD (gsi %d): %s", (int)gsi, strerror(e));
		return 2;
	}
	rc = kvm_vm_add_mmio(v->vm, base, MMIO_WINDOW_SIZE, dev_read, dev_write, ld);
	if (rc < 0) {
		free(ld);       /* its irqfd is the machine's, closed with it */
		return vmlua_fail(L, "no room for another MMIO region");
	}
	/* Kicks go straight to an eventfd; where KVM cannot, they arrive
	 * as MMIO writes to QueueNotify, which work too, only slower. */
	for (q = 0; q < VDEV_MAX_QUEUES; q++)
		ld->notify_fd[q] = q < d->nqueues ? kvm_vm_ioeventfd(v->vm, base + 0x50, 4, q) : -1;
	for (q = 0; q < VDEV_MAX_QUEUES; q++)
		if (ld->notify_fd[q] < 0)
			ld->notify_fd[q] = -1;
	d->transport = ld;
	d->on_interrupt = dev_interrupt;
	vdev_attach(d, v->mem);
	v->devs[v->ndevs++] = ld;
	lua_getiuservalue(L, 1, 2);
	lua_pushvalue(L, 2);
	lua_rawseti(L, -2, (lua_Integer)v->ndevs);
	lua_pushboolean(L, 1);
	return 1;
}

/* Kicks that arrived on ioeventfds while we slept. */
static void serve_notifies(struct lvm *v, struct pollfd *pfd, int nfd)
{
	int k;
	for (k = 0; k < nfd; k++) {
		unsigned i, q;
		uint64_t n;
		if (!pfd[k].revents)
			continue;
		for (i = 0; i < v->ndevs; i++)
			for (q = 0; q < VDEV_MAX_QUEUES; q++)
				if (v->devs[i]->notify_fd[q] == pfd[k].fd &&
				    read(pfd[k].fd, &n, sizeof(n)) == sizeof(n))
					vdev_notify(v->devs[i]->dev, q);
		for (i = 0; i < v->ndevs; i++)
			if (vdev_pollfd(v->devs[i]->dev) == pfd[k].fd)
				vdev_ready(v->devs[i]->dev);
	}
}

/* vm:start(entry, boot_params) -> true, or nil, message */
static int m_start(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	uint64_t entry = vmlua_checkaddr(L, 2);
	uint64_t bp = vmlua_checkaddr(L, 3);
	char err[256];

	vmlua_checknargs(L, 3);
	if (v->started)
		return luaL_error(L, "the machine was started already");
	if (kvm_vm_start(v->vm, entry, bp, err, sizeof(err)) < 0)
		return vmlua_fail(L, err);
	v->started = 1;
	vmlua_memory_busy(v->mem, 1);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * vm:poll([timeout]) -> output, exit, detail
 *
 * Wait up to timeout seconds (default 0) for console output, the
 * machine's exit, or a round of device work (whose hooks may have run
 * Lua); return the output taken ("" if none), and the exit
 * reason and its detail once the machine has stopped.  Console input
 * from the attached fd is forwarded meanwhile; with its escape on, a
 * Ctrl-A x there returns the reason "quit" with the machine still to be
 * stopped.  SIGINT raises "interrupted".
 */
static int m_poll(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	double timeout = luaL_optnumber(L, 2, 0);
	char buf[16384], detail[256];
	struct pollfd pfd[3 + LVM_MAX_DEVICES * (VDEV_MAX_QUEUES + 1) + LVM_OTHER_FDS];
	struct loop *loop = vmlua_loop(L);
	struct loop_round others;
	double deadline;
	enum vm_exit e;
	size_t n;
	int nfd;

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
	deadline = clock_now() + timeout;
	for (;;) {
		int ms, rc, base, first_other, served;
		unsigned i, q;
		kvm_vm_service(v->vm);
		n = kvm_vm_output(v->vm, buf, sizeof(buf));
		e = kvm_vm_exit_reason(v->vm, detail, sizeof(detail));
		if (n || e != VM_EXIT_NONE)
			break;
		ms = (int)((deadline - clock_now()) * 1000 + 0.999);
		if (ms <= 0)
			break;
		pfd[0] = (struct pollfd){ kvm_vm_event_fd(v->vm), POLLIN, 0 };
		pfd[1] = (struct pollfd){ vmlua_interrupt_fd(), POLLIN, 0 };
		nfd = 2;
		if (v->input_fd >= 0)
			pfd[nfd++] = (struct pollfd){ v->input_fd, POLLIN, 0 };
		base = nfd;
		for (i = 0; i < v->ndevs; i++)
			for (q = 0; q < VDEV_MAX_QUEUES; q++)
				if (v->devs[i]->notify_fd[q] >= 0)
					pfd[nfd++] = (struct pollfd){ v->devs[i]->notify_fd[q], POLLIN, 0 };
		for (i = 0; i < v->ndevs; i++)
			if (vdev_pollfd(v->devs[i]->dev) >= 0)
				pfd[nfd++] = (struct pollfd){ vdev_pollfd(v->devs[i]->dev), POLLIN, 0 };
		/* The other machines' devices (uml ones), served meanwhile. */
		first_other = nfd;
		nfd += loop_fds(loop, NULL, pfd + nfd, LVM_OTHER_FDS, &others);
		rc = poll(pfd, (nfds_t)nfd, loop_timeout(loop, ms));
		if (rc == 0)
			loop_quiet(loop);
		served = 0;
		if (rc > 0) {
			int j;
			serve_notifies(v, pfd + base, first_other - base);
			for (j = base; j < first_other; j++)
				served |= pfd[j].revents != 0;
			served |= loop_serve(loop, &others, pfd + first_other);
		}
		if (rc < 0 && errno != EINTR)
			return luaL_error(L, "poll: %s", strerror(errno));
		if (rc > 0 && pfd[1].revents) {
			vmlua_interrupt_clear();
			return luaL_error(L, "interrupted");
		}
		if (rc > 0 && v->input_fd >= 0 && pfd[2].revents) {
			char in[256], out[sizeof(in) + 1];
			ssize_t got = read(v->input_fd, in, sizeof(in));
			size_t m = (size_t)got;
			int quit = 0;

			if (got <= 0) {
				v->input_fd = -1;   /* EOF or error: stop reading */
				continue;
			}
			if (v->escape)
				m = ttyesc_filter(&v->esc, in, m, out, &quit);
			kvm_vm_input(v->vm, v->escape ? out : in, m);
			if (quit) {
				lua_pushliteral(L, "");
				lua_pushliteral(L, "quit");
				lua_pushliteral(L, "Ctrl-A x at the terminal");
				return 3;
			}
		}
		/* A device's hooks may have run Lua: let the caller look. */
		if (served)
			break;
	}
	/* A guest writes its console a byte per exit; rather than wake Lua
	 * for each, give a line a few milliseconds to finish. */
	for (int rounds = 0; n > 0 && n < sizeof(buf) && buf[n - 1] != '\n' &&
	                     e == VM_EXIT_NONE && rounds < 5; rounds++) {
		struct pollfd more = { kvm_vm_event_fd(v->vm), POLLIN, 0 };
		size_t got;
		if (poll(&more, 1, 2) <= 0)
			break;
		kvm_vm_service(v->vm);
		got = kvm_vm_output(v->vm, buf + n, sizeof(buf) - n);
		n += got;
		e = kvm_vm_exit_reason(v->vm, detail, sizeof(detail));
	}
	lua_pushlstring(L, buf, n);
	if (e == VM_EXIT_NONE)
		return 1;
	lua_pushstring(L, vm_exit_name(e));
	lua_pushstring(L, detail);
	return 3;
}

/* vm:send(s) -> bytes queued for the UART */
static int m_send(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);
	vmlua_checknargs(L, 2);
	lua_pushinteger(L, (lua_Integer)kvm_vm_input(v->vm, s, len));
	return 1;
}

/* vm:input(fd or nil [, escape]): forward bytes read from fd to the
 * console; with escape, they are a person's keys (see ttyesc.h) and
 * Ctrl-A x makes :poll() return the reason "quit". */
static int m_input(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	vmlua_checknargs(L, 3);
	v->input_fd = (int)luaL_optinteger(L, 2, -1);
	v->escape = lua_toboolean(L, 3);
	v->esc.armed = 0;
	return 0;
}

static void stop(struct lvm *v)
{
	kvm_vm_stop(v->vm);
	if (v->started) {
		vmlua_memory_busy(v->mem, -1);
		v->started = 0;
	}
}

static int m_stop(lua_State *L)
{
	vmlua_checknargs(L, 1);
	stop(checkvm(L, 1));
	return 0;
}

static int m_pause(lua_State *L)
{
	vmlua_checknargs(L, 1);
	kvm_vm_pause(checkvm(L, 1)->vm);
	return 0;
}

static int m_resume(lua_State *L)
{
	vmlua_checknargs(L, 1);
	kvm_vm_resume(checkvm(L, 1)->vm);
	return 0;
}

/* vm:stats() -> { cpus = N, exits = { io = n, mmio = n, ... } } */
static int m_stats(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	uint64_t s[KSTAT__COUNT];
	int i;

	vmlua_checknargs(L, 1);
	kvm_vm_stats(v->vm, s);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, (lua_Integer)kvm_vm_ncpus(v->vm));
	lua_setfield(L, -2, "cpus");
	lua_createtable(L, 0, KSTAT__COUNT);
	for (i = 0; i < KSTAT__COUNT; i++) {
		lua_pushinteger(L, (lua_Integer)s[i]);
		lua_setfield(L, -2, kvm_stat_name((enum kvm_stat)i));
	}
	lua_setfield(L, -2, "exits");
	return 1;
}

/* vm:regs([cpu]) -> table of registers (paused or stopped machines) */
static int m_regs(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	lua_Integer i = luaL_optinteger(L, 2, 0);
	struct kvm_vcpu_regs r;
	int rc;

	vmlua_checknargs(L, 2);
	luaL_argcheck(L, i >= 0 && i < (lua_Integer)kvm_vm_ncpus(v->vm), 2,
	              "no such vCPU");
	rc = kvm_vm_regs(v->vm, (unsigned)i, &r);
	if (rc == -EBUSY)
		return luaL_error(L, "vm:regs() needs a paused or stopped machine");
	if (rc < 0)
		return vmlua_fail(L, strerror(-rc));
	lua_createtable(L, 0, 22);
#define R(name) lua_pushinteger(L, (lua_Integer)r.name); lua_setfield(L, -2, #name)
	R(rax); R(rbx); R(rcx); R(rdx); R(rsi); R(rdi); R(rsp); R(rbp);
	R(r8); R(r9); R(r10); R(r11); R(r12); R(r13); R(r14); R(r15);
	R(rip); R(rflags); R(cr0); R(cr3); R(cr4); R(efer);
#undef R
	return 1;
}

static int m_close(lua_State *L)
{
	struct lvm *v = luaL_checkudata(L, 1, VMLUA_VM);
	if (v->vm) {
		unsigned i;
		stop(v);
		kvm_vm_destroy(v->vm);
		v->vm = NULL;
		for (i = 0; i < v->ndevs; i++) {
			v->devs[i]->dev->transport = NULL;
			v->devs[i]->dev->on_interrupt = NULL;
			free(v->devs[i]);
		}
		v->ndevs = 0;
	}
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct lvm *v = luaL_checkudata(L, 1, VMLUA_VM);
	if (!v->vm)
		lua_pushliteral(L, VMLUA_VM " (kvm, closed)");
	else
		lua_pushfstring(L, VMLUA_VM " (kvm, %d vCPUs, %s)",
		                (int)kvm_vm_ncpus(v->vm),
		                v->started ? "started" : "not started");
	return 1;
}

/* kvm_supported() -> true, or false, reason */
static int l_kvm_supported(lua_State *L)
{
	char why[256];
	vmlua_checknargs(L, 0);
	if (kvm_supported(why, sizeof(why))) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, why);
	return 2;
}

/* kvm_hardware() -> true, or false, reason */
static int l_kvm_hardware(lua_State *L)
{
	char why[256];
	vmlua_checknargs(L, 0);
	if (kvm_hardware(why, sizeof(why))) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, why);
	return 2;
}

static const luaL_Reg vm_meta[] = {
	{"__gc", m_close},
	{"__close", m_close},
	{"__tostring", m_tostring},
	{NULL, NULL}
};

static const luaL_Reg vm_methods[] = {
	{"start", m_start},
	{"add_device", m_add_device},
	{"poll", m_poll},
	{"send", m_send},
	{"input", m_input},
	{"stop", m_stop},
	{"pause", m_pause},
	{"resume", m_resume},
	{"stats", m_stats},
	{"regs", m_regs},
	{"close", m_close},
	{NULL, NULL}
};

void vmlua_vm_register(lua_State *L)
{
	vmlua_newclass(L, VMLUA_VM, vm_meta, vm_methods);
	lua_pushcfunction(L, l_vm);
	lua_setfield(L, -2, "kvm_vm");
	lua_pushcfunction(L, l_kvm_supported);
	lua_setfield(L, -2, "kvm_supported");
	lua_pushcfunction(L, l_kvm_hardware);
	lua_setfield(L, -2, "kvm_hardware");
	/* Where virtio-mmio devices go (core/x86.h). */
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)X86_MMIO_START);
	lua_setfield(L, -2, "mmio_start");
	lua_pushinteger(L, (lua_Integer)X86_MMIO_WINDOW);
	lua_setfield(L, -2, "mmio_window");
	lua_pushinteger(L, MMIO_WINDOW_SIZE);
	lua_setfield(L, -2, "mmio_size");
	lua_pushinteger(L, X86_MMIO_IRQ_BASE);
	lua_setfield(L, -2, "mmio_irq_base");
	lua_setfield(L, -2, "x86");
}
